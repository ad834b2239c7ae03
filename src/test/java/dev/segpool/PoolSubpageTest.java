package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** The bitmap of one subpage, for every small class of a pool with 4 KiB pages and 64 KiB chunks. */
class PoolSubpageTest {
    private static final int PAGE = 4096;
    private static final int CHUNK = 65536;

    private final SizeClasses sizeClasses = new SizeClasses(PAGE, CHUNK);
    private final NativeMemory memory = new NativeMemory("subpage-test", CHUNK, Long.MAX_VALUE, false, new Lifecycle());
    private final PoolArena arena = new PoolArena(0, sizeClasses, memory, 0);

    @AfterEach
    void release() {
        memory.releaseAll(false);
    }

    private PoolSubpage newSubpage(int sizeIndex) {
        PoolChunk chunk = memory.allocateChunk(arena);
        long run = chunk.allocateRun(sizeClasses.subpageRunPages(sizeIndex), 1);
        return chunk.newSubpage(run, sizeIndex);
    }

    static int[] smallClassIndices() {
        return java.util.stream.IntStream.range(0, new SizeClasses(PAGE, CHUNK).smallClasses).toArray();
    }

    @ParameterizedTest(name = "class #{0}")
    @org.junit.jupiter.params.provider.MethodSource("smallClassIndices")
    void allocate_handsOutEveryElementOnceInOrder_firstToLast_thenReportsFull(int sizeIndex) {
        PoolSubpage subpage = newSubpage(sizeIndex);
        int max = subpage.maxElements;
        assertEquals(sizeClasses.subpageElements(sizeIndex), max);
        assertTrue(subpage.isEmpty());
        for (int i = 0; i < max; i++) {
            long handle = subpage.allocate();
            assertEquals(i, Handle.bitmapIndex(handle), "element " + i);
            assertEquals(subpage.runOffset, Handle.runOffset(handle));
            assertTrue(Handle.isSubpage(handle));
            assertTrue(subpage.isAllocated(i));
        }
        assertEquals(0, subpage.available);
        assertEquals(Handle.NONE, subpage.allocate(), "full");
        assertEquals(Handle.NONE, subpage.allocate(), "still full");
        assertEquals(0, subpage.available);
        // last element: offset of the last element ends exactly at the end of the run
        assertEquals((long) (subpage.runOffset + subpage.runPages) * PAGE,
                subpage.elementOffset(max - 1) + subpage.elementSize);
    }

    @ParameterizedTest(name = "class #{0}")
    @org.junit.jupiter.params.provider.MethodSource("smallClassIndices")
    void free_ofFirstAndLastElement_ofAFullSubpage_makesExactlyThemAvailableAgain(int sizeIndex) {
        PoolSubpage subpage = newSubpage(sizeIndex);
        int max = subpage.maxElements;
        while (subpage.allocate() != Handle.NONE) {
            // fill
        }
        subpage.free(max - 1);
        assertFalse(subpage.isAllocated(max - 1));
        assertEquals(max - 1, Handle.bitmapIndex(subpage.allocate()));
        assertEquals(Handle.NONE, subpage.allocate());
        subpage.free(0);
        if (max > 1) {
            subpage.free(max - 1);
        }
        assertEquals(0, Handle.bitmapIndex(subpage.allocate()), "lowest first");
        if (max > 1) {
            assertEquals(max - 1, Handle.bitmapIndex(subpage.allocate()));
        }
        assertEquals(Handle.NONE, subpage.allocate());
    }

    @ParameterizedTest(name = "{0} bytes")
    @ValueSource(ints = {16, 48, 1024, 2560, 12288})
    void free_ofEveryElementInRandomOrder_emptiesTheSubpage_andLowestFreeComesBackFirst(int elementSize) {
        int sizeIndex = sizeClasses.sizeIndex(elementSize);
        PoolSubpage subpage = newSubpage(sizeIndex);
        int max = subpage.maxElements;
        List<Integer> indices = new ArrayList<>();
        for (int i = 0; i < max; i++) {
            indices.add(Handle.bitmapIndex(subpage.allocate()));
        }
        Collections.shuffle(indices, new Random(elementSize));
        List<Integer> freed = new ArrayList<>();
        for (int index : indices) {
            subpage.free(index);
            freed.add(index);
            assertEquals(freed.size(), subpage.available);
            assertEquals(Collections.min(freed), Handle.bitmapIndex(subpage.allocate()), "lowest free first");
            subpage.free(Collections.min(freed));
        }
        assertTrue(subpage.isEmpty());
        assertEquals(max, subpage.available);
    }

    @Test
    void bitmap_ofAClassWhoseElementCountIsNotAMultipleOf64_neverHandsOutBitsPastTheEnd() {
        PoolSubpage subpage = newSubpage(sizeClasses.sizeIndex(2560)); // 5 pages, 8 elements
        assertEquals(8, subpage.maxElements);
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < 8; i++) {
                assertEquals(i, Handle.bitmapIndex(subpage.allocate()));
            }
            assertEquals(Handle.NONE, subpage.allocate());
            for (int i = 0; i < 8; i++) {
                subpage.free(i);
            }
        }
    }

    @Test
    void subpage_ofTheSmallestClass_spansWordsOfTheBitmap() {
        PoolSubpage subpage = newSubpage(0); // 16 bytes: 256 elements, 4 words
        assertEquals(256, subpage.maxElements);
        for (int i = 0; i < 256; i++) {
            subpage.allocate();
        }
        subpage.free(200);
        subpage.free(64);
        subpage.free(63);
        assertEquals(63, Handle.bitmapIndex(subpage.allocate()));
        assertEquals(64, Handle.bitmapIndex(subpage.allocate()));
        assertEquals(200, Handle.bitmapIndex(subpage.allocate()));
        assertEquals(Handle.NONE, subpage.allocate());
    }

    /** {@code indexAt} replaces a division on the free path: it must equal it for every offset a run can hold. */
    @ParameterizedTest(name = "page {0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {4096, 8192, 65536, 1 << 20})
    void indexAt_equalsTheDivision_atEveryElementBoundary_forEveryClassAndPageSize(int pageSize) {
        SizeClasses classes = new SizeClasses(pageSize, pageSize * 64);
        for (int sizeIndex = 0; sizeIndex < classes.smallClasses; sizeIndex++) {
            int size = classes.size(sizeIndex);
            int pages = classes.subpageRunPages(sizeIndex);
            PoolSubpage subpage = new PoolSubpage(null, sizeIndex, size, Handle.subpageRun(0, pages),
                    classes.subpageElements(sizeIndex));
            long runBytes = (long) pages * pageSize;
            for (long element = 0; element * size < runBytes; element++) {
                for (long inRun = Math.max(0, element * size - 1); inRun <= element * size + 1 && inRun < runBytes; inRun++) {
                    assertEquals(inRun / size, subpage.indexAt(inRun), "size " + size + ", offset " + inRun);
                }
            }
            assertEquals((runBytes - 1) / size, subpage.indexAt(runBytes - 1), "size " + size + ", last byte");
        }
    }
}
