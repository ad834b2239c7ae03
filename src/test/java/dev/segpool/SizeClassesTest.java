package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SizeClassesTest {
    private static final int KIB = 1024;
    private static final int MIB = 1024 * KIB;

    private final SizeClasses defaults = new SizeClasses(8 * KIB, 4 * MIB);

    /** The class sizes written out from DESIGN.md's rule: 16-byte steps to 64, then four per doubling. */
    static List<Integer> expectedClassSizes(int chunkSize) {
        List<Integer> sizes = new ArrayList<>();
        for (int size = 16; size <= 64; size += 16) {
            sizes.add(size);
        }
        for (long group = 64; group < chunkSize; group *= 2) {
            for (int step = 1; step <= 4; step++) {
                sizes.add((int) (group + step * group / 4));
            }
        }
        return sizes;
    }

    @Test
    void defaultTable_has68Classes_39Small_endingAt28KiB() {
        assertEquals(68, defaults.classes());
        assertEquals(39, defaults.smallClasses);
        assertEquals(28 * KIB, defaults.size(38));
        assertEquals(32 * KIB, defaults.size(39));
        assertTrue(defaults.isSmall(38));
        assertFalse(defaults.isSmall(39));
        assertEquals(4 * MIB, defaults.size(67));
    }

    @Test
    void defaultTable_startsWithTheDocumentedClasses() {
        int[] first = {16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320};
        int[] actual = new int[first.length];
        for (int i = 0; i < first.length; i++) {
            actual[i] = defaults.size(i);
        }
        assertArrayEquals(first, actual);
    }

    @ParameterizedTest(name = "pageSize {0}, chunkSize {1}")
    @CsvSource({"8192, 4194304", "4096, 65536", "4096, 32768", "16384, 16777216", "65536, 1048576", "4096, 67108864"})
    void table_matchesTheRule_andSplitsSmallAtFourPages(int pageSize, int chunkSize) {
        SizeClasses classes = new SizeClasses(pageSize, chunkSize);
        List<Integer> expected = expectedClassSizes(chunkSize);
        assertEquals(expected.size(), classes.classes());
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(expected.get(i), classes.size(i), "class " + i);
            assertEquals(expected.get(i) < 4 * pageSize, classes.isSmall(i), "class " + i + " small");
        }
        assertEquals(chunkSize, classes.size(classes.classes() - 1));
    }

    @ParameterizedTest(name = "pageSize {0}, chunkSize {1}")
    @CsvSource({"8192, 4194304", "4096, 65536", "16384, 16777216", "65536, 1048576"})
    void subpageRuns_holdAtMostPageSizeOver16Elements_withNoWaste(int pageSize, int chunkSize) {
        SizeClasses classes = new SizeClasses(pageSize, chunkSize);
        for (int i = 0; i < classes.smallClasses; i++) {
            int size = classes.size(i);
            int runPages = classes.subpageRunPages(i);
            int elements = classes.subpageElements(i);
            assertTrue(elements >= 1 && elements <= pageSize / 16, "class " + size + ": " + elements + " elements");
            assertEquals((long) runPages * pageSize, (long) elements * size,
                    "class " + size + ": " + runPages + " pages for " + elements + " elements");
            // the smallest such run: one page fewer cannot hold the elements evenly or reaches the cap
            assertTrue(runPages == 1 || ((long) (runPages - 1) * pageSize % size != 0)
                    && (long) (runPages - 1) * pageSize / size < pageSize / 16, "class " + size + " run too long");
        }
    }

    @Test
    void sizeIndex_ofEverySizeUpTo64KiB_isTheSmallestClassThatHoldsIt() {
        List<Integer> sizes = expectedClassSizes(4 * MIB);
        int expected = 0;
        for (int size = 1; size <= 64 * KIB; size++) {
            while (sizes.get(expected) < size) {
                expected++;
            }
            assertEquals(expected, defaults.sizeIndex(size), "size " + size);
        }
        assertEquals(0, defaults.sizeIndex(0), "size 0 gets the smallest class");
    }

    @Test
    void sizeIndex_atEveryClassBoundary_picksThatClassOrTheNext() {
        for (int i = 0; i < defaults.classes(); i++) {
            int size = defaults.size(i);
            assertEquals(i, defaults.sizeIndex(size), "size " + size);
            assertEquals(i, defaults.sizeIndex(size - 1), "size " + (size - 1));
            if (i + 1 < defaults.classes()) {
                assertEquals(i + 1, defaults.sizeIndex(size + 1L), "size " + (size + 1));
            }
        }
    }

    @Test
    void sizeIndexWithAlignment_upToThePageSize_picksAClassThatIsAMultipleOfTheAlignment() {
        for (long alignment = 32; alignment <= 8 * KIB; alignment <<= 1) {
            for (long size : new long[] {0, 1, 15, 16, 17, 100, 1000, 5000, 40_000, 1 << 20, 4 * MIB}) {
                int index = defaults.sizeIndex(size, alignment);
                long classSize = defaults.size(index);
                assertEquals(0, classSize % alignment, size + " aligned to " + alignment);
                assertTrue(classSize >= size, size + " aligned to " + alignment);
                for (int smaller = 0; smaller < index; smaller++) {
                    long candidate = defaults.size(smaller);
                    assertFalse(candidate >= size && candidate % alignment == 0,
                            "class " + candidate + " would have done for " + size + " aligned to " + alignment);
                }
            }
        }
    }

    @Test
    void sizeIndexWithAlignment_abovePageSize_takesANormalRun_orIsHugeWhenNoChunkCanHoldIt() {
        SizeClasses small = new SizeClasses(4096, 65536);
        // 16 pages per chunk; the smallest normal class is 4 pages (16 KiB)
        assertEquals(small.smallClasses, small.sizeIndex(0, 8192));
        assertEquals(4, small.runPages(small.sizeIndex(0, 8192)));
        assertEquals(small.sizeIndex(40_000), small.sizeIndex(40_000, 8192));
        // 4 pages aligned to 8 pages may need 11 pages: fits; aligned to 16 pages may need 19: huge
        assertTrue(small.sizeIndex(16384, 32768) >= 0);
        assertEquals(-1, small.sizeIndex(16384, 65536));
        assertEquals(-1, small.sizeIndex(1, 131072), "alignment above the chunk size");
        assertEquals(-1, small.sizeIndex(65537, 32), "size above the chunk size");
        assertEquals(2, small.alignmentPages(8192));
        assertEquals(1, small.alignmentPages(4096));
        assertEquals(1, small.alignmentPages(64));
    }

    @Test
    void runClasses_floorAndCeiling_matchALinearSearch() {
        for (SizeClasses classes : List.of(defaults, new SizeClasses(4096, 65536))) {
            List<Integer> runPages = new ArrayList<>();
            for (int i = 0; i < classes.classes(); i++) {
                if (classes.size(i) % classes.pageSize == 0) {
                    runPages.add(classes.size(i) / classes.pageSize);
                }
            }
            assertEquals(runPages.size(), classes.runClasses());
            for (int pages = 1; pages <= classes.chunkPages; pages++) {
                int floor = 0;
                while (floor + 1 < runPages.size() && runPages.get(floor + 1) <= pages) {
                    floor++;
                }
                int ceiling = 0;
                while (runPages.get(ceiling) < pages) {
                    ceiling++;
                }
                assertEquals(floor, classes.runClassFloor(pages), pages + " pages floor");
                assertEquals(ceiling, classes.runClassCeiling(pages), pages + " pages ceiling");
            }
        }
    }

    @Test
    void runSizeIndex_ofEveryNormalClassRun_isThatClass() {
        for (int i = defaults.smallClasses; i < defaults.classes(); i++) {
            assertEquals(i, defaults.runSizeIndex(defaults.runPages(i)));
            assertEquals((long) defaults.runPages(i) * defaults.pageSize, defaults.size(i));
        }
    }
}
