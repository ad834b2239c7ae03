package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Sizes, alignments, zero-size and huge allocations through the public API. */
class AllocationTest {
    private static final int PAGE = 4096;
    private static final int CHUNK = 65536;

    /** A pool without thread caches, so activeBytes moves by exactly one class size per call. */
    private static SegmentPool uncached(int pageSize, int chunkSize) {
        return SegmentPool.builder().pageSize(pageSize).chunkSize(chunkSize).arenas(1).threadLocalCaches(false).build();
    }

    private static void assertReservedIsActivePlusCachedPlusFree(PoolMetrics m) {
        assertEquals(m.reservedBytes(), m.activeBytes() + m.cachedBytes() + m.freeBytes(), m.toString());
    }

    @Test
    void aRunAboveMaxCachedSize_takesTheWholePagesItNeeds_oneACacheMayHold_itsClass() {
        long request = 80 * 1024 + 1; // class 96 KiB (12 pages of 8 KiB); 11 pages hold it
        for (int maxCachedSize : new int[] {32 * 1024, 128 * 1024}) {
            try (SegmentPool pool = SegmentPool.builder().arenas(1).threadLocalCaches(false)
                    .maxCachedSize(maxCachedSize).build()) {
                MemorySegment segment = pool.allocate(request);
                assertEquals(request, segment.byteSize());
                PoolMetrics m = pool.metrics();
                assertEquals(maxCachedSize < 96 * 1024 ? 11 * 8192 : 96 * 1024, m.activeBytes(),
                        "maxCachedSize " + maxCachedSize);
                assertReservedIsActivePlusCachedPlusFree(m);
                pool.free(segment);
                assertEquals(0, pool.metrics().activeBytes());
                assertTrue(pool.arenas()[0].checkConsistency());
            }
        }
    }

    @ParameterizedTest(name = "pageSize {0}")
    @ValueSource(ints = {4096, 8192})
    void everyClassBoundary_sizeMinusOneSizeAndPlusOne_getsExactSizeAndItsClass(int pageSize) {
        int chunkSize = pageSize == 4096 ? CHUNK : 4 << 20;
        try (SegmentPool pool = uncached(pageSize, chunkSize)) {
            SizeClasses classes = pool.sizeClasses();
            long id = 0;
            for (int i = 0; i < classes.classes(); i++) {
                int classSize = classes.size(i);
                for (long size : new long[] {classSize - 1, classSize, classSize + 1L}) {
                    long activeBefore = pool.metrics().activeBytes();
                    long reservedBefore = pool.metrics().reservedBytes();
                    MemorySegment segment = pool.allocate(size);
                    assertEquals(size, segment.byteSize());
                    assertEquals(0, segment.address() % 16, "every class honours 16 bytes");
                    Patterns.fill(segment, ++id);
                    PoolMetrics after = pool.metrics();
                    long classBytes = classes.size(classes.sizeIndex(Math.min(size, chunkSize)));
                    // classes above maxCachedSize (32 KiB) get runs of the whole pages they need
                    long expected = size > chunkSize ? size
                            : classBytes > 32 * 1024 ? (size + pageSize - 1) / pageSize * pageSize : classBytes;
                    assertEquals(expected, after.activeBytes() - activeBefore, "size " + size);
                    if (size > chunkSize) {
                        assertEquals(size, after.reservedBytes() - reservedBefore, "huge counted exactly");
                        assertEquals(size, after.hugeBytes());
                    }
                    assertReservedIsActivePlusCachedPlusFree(after);
                    Patterns.verify(segment, id);
                    pool.free(segment);
                    assertEquals(activeBefore, pool.metrics().activeBytes());
                }
            }
            assertEquals(0, pool.metrics().activeBytes());
            assertTrue(pool.arenas()[0].checkConsistency());
        }
    }

    @Test
    void alignment_from1To64KiB_isHonoured_forSmallNormalAndHugeSizes() {
        for (SegmentPool pool : List.of(uncached(PAGE, CHUNK), uncached(8192, 4 << 20), SegmentPool.create())) {
            try (pool) {
                List<MemorySegment> live = new ArrayList<>();
                long id = 0;
                for (long alignment = 1; alignment <= 65536; alignment <<= 1) {
                    for (long size : new long[] {0, 1, 15, 16, 17, 100, 1000, 4095, 4096, 5000, 20_000, 40_000, 65535,
                            65536, 65537, 200_000}) {
                        MemorySegment segment = pool.allocate(size, alignment);
                        assertEquals(0, segment.address() % alignment, size + " aligned to " + alignment);
                        assertEquals(size, segment.byteSize());
                        Patterns.fill(segment, ++id);
                        live.add(segment);
                    }
                }
                assertNoOverlap(live);
                for (int i = 0; i < live.size(); i++) {
                    Patterns.verify(live.get(i), i + 1);
                    pool.free(live.get(i));
                }
                pool.trimCurrentThreadCache();
                assertEquals(0, pool.metrics().activeBytes());
                assertEquals(0, pool.metrics().hugeBytes());
                for (PoolArena arena : pool.arenas()) {
                    assertTrue(arena.checkConsistency());
                }
            }
        }
    }

    @Test
    void alignmentAboveTheChunkSize_givesAHugeAllocation_honouringIt() {
        try (SegmentPool pool = uncached(PAGE, CHUNK)) {
            MemorySegment segment = pool.allocate(100, 1 << 20);
            assertEquals(0, segment.address() % (1 << 20));
            assertEquals(100, pool.metrics().hugeBytes());
            assertEquals(100, pool.metrics().reservedBytes());
            pool.free(segment);
            assertEquals(0, pool.metrics().reservedBytes());
        }
    }

    @Test
    void zeroSizeAllocations_haveDistinctAddresses_andAreFreeable() {
        try (SegmentPool pool = uncached(PAGE, CHUNK)) {
            Set<Long> addresses = new HashSet<>();
            List<MemorySegment> segments = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                MemorySegment segment = pool.allocate(0, 1 << (i % 17));
                assertEquals(0, segment.byteSize());
                assertTrue(addresses.add(segment.address()), "address reused while live");
                segments.add(segment);
            }
            assertTrue(pool.metrics().activeBytes() >= 16 * 1000L);
            for (MemorySegment segment : segments) {
                pool.free(segment);
            }
            assertEquals(0, pool.metrics().activeBytes());
            assertEquals(0, pool.metrics().hugeBytes());
        }
    }

    @Test
    void hugeAllocation_isCountedExactlyInReservedBytes_andReleasedOnFree() {
        try (SegmentPool pool = uncached(PAGE, CHUNK)) {
            MemorySegment small = pool.allocate(100);
            PoolMetrics base = pool.metrics();
            long[] sizes = {CHUNK + 1, CHUNK * 3L + 7, 1 << 20};
            List<MemorySegment> huge = new ArrayList<>();
            long total = 0;
            for (long size : sizes) {
                MemorySegment segment = pool.allocate(size);
                Patterns.fill(segment, size);
                huge.add(segment);
                total += size;
                PoolMetrics m = pool.metrics();
                assertEquals(base.reservedBytes() + total, m.reservedBytes());
                assertEquals(base.activeBytes() + total, m.activeBytes());
                assertEquals(total, m.hugeBytes());
                assertEquals(huge.size(), m.hugeAllocations());
                assertEquals(base.chunks(), m.chunks(), "huge allocations are not chunks");
                assertReservedIsActivePlusCachedPlusFree(m);
            }
            for (int i = 0; i < huge.size(); i++) {
                MemorySegment segment = huge.get(i);
                Patterns.verify(segment, sizes[i]);
                pool.free(segment);
                total -= sizes[i];
                assertEquals(base.reservedBytes() + total, pool.metrics().reservedBytes());
                assertEquals(i + 1, pool.metrics().hugeDeallocations());
                // released: the segment's memory is gone, and access throws instead of reading it
                assertThrows(IllegalStateException.class, () -> segment.get(ValueLayout.JAVA_BYTE, 0));
            }
            PoolMetrics end = pool.metrics();
            assertEquals(base.reservedBytes(), end.reservedBytes());
            assertEquals(base.activeBytes(), end.activeBytes());
            assertEquals(0, end.hugeBytes());
            pool.free(small);
        }
    }

    @Test
    void sizeEqualToTheChunk_isPooled_andOneByteMoreIsHuge() {
        try (SegmentPool pool = uncached(PAGE, CHUNK)) {
            MemorySegment whole = pool.allocate(CHUNK);
            assertEquals(1, pool.metrics().chunks());
            assertEquals(0, pool.metrics().hugeBytes());
            assertEquals(0, whole.address() % CHUNK, "a whole-chunk run starts the chunk");
            MemorySegment huge = pool.allocate(CHUNK + 1);
            assertEquals(1, pool.metrics().chunks());
            assertEquals(CHUNK + 1, pool.metrics().hugeBytes());
            pool.free(whole);
            pool.free(huge);
        }
    }

    @Test
    void freedRuns_areReused_lowestAddressFirst() {
        try (SegmentPool pool = uncached(8192, 4 << 20)) {
            int run = 32768; // the smallest normal class: a run of 4 pages
            List<MemorySegment> runs = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                runs.add(pool.allocate(run));
            }
            pool.free(runs.get(5));
            pool.free(runs.get(2));
            pool.free(runs.get(6));
            assertEquals(runs.get(2).address(), pool.allocate(run).address());
            assertEquals(runs.get(5).address(), pool.allocate(run).address());
            assertEquals(runs.get(6).address(), pool.allocate(run).address());
            assertEquals(runs.get(7).address() + run, pool.allocate(run).address());
            assertEquals(1, pool.metrics().chunks(), "no second chunk while the first has room");
        }
    }

    @Test
    void trim_releasesEmptyChunks_andReturnsTheBytes() {
        try (SegmentPool pool = uncached(PAGE, CHUNK)) {
            List<MemorySegment> runs = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                runs.add(pool.allocate(CHUNK));
            }
            MemorySegment kept = pool.allocate(16);
            assertEquals(4, pool.metrics().chunks());
            runs.forEach(pool::free);
            assertEquals(4L * CHUNK, pool.metrics().reservedBytes(), "freed chunks are kept until trimmed");
            // With native access on Linux, trim also purges the free pages of the chunk it keeps (all
            // but the page of the 16 B subpage), and counts them.
            boolean purges = TestModes.nativeAccess() && OsMemory.AVAILABLE;
            assertEquals(3L * CHUNK + (purges ? CHUNK - PAGE : 0), pool.trim());
            assertEquals(1, pool.metrics().chunks());
            assertEquals(CHUNK, pool.metrics().reservedBytes());
            assertEquals(0, pool.trim());
            pool.free(kept);
            assertEquals(CHUNK, pool.trim(), "the last subpage's run goes too");
            assertEquals(0, pool.metrics().reservedBytes());
        }
    }

    @Test
    void dumpStats_namesThePool_itsArenasAndChunks() {
        try (SegmentPool pool = SegmentPool.builder().name("dumped").pageSize(PAGE).chunkSize(CHUNK).arenas(2).build()) {
            MemorySegment segment = pool.allocate(20_000);
            String stats = pool.dumpStats();
            assertTrue(stats.startsWith("SegmentPool 'dumped'"), stats);
            assertTrue(stats.contains("arena 0") && stats.contains("arena 1"), stats);
            assertTrue(stats.contains("chunk 0x"), stats);
            assertTrue(stats.contains("#####"), stats);
            pool.free(segment);
        }
    }

    static void assertNoOverlap(List<MemorySegment> segments) {
        List<MemorySegment> sorted = new ArrayList<>(segments);
        sorted.sort((a, b) -> Long.compareUnsigned(a.address(), b.address()));
        for (int i = 1; i < sorted.size(); i++) {
            MemorySegment previous = sorted.get(i - 1);
            MemorySegment current = sorted.get(i);
            long end = previous.address() + Math.max(1, previous.byteSize());
            assertTrue(Long.compareUnsigned(end, current.address()) <= 0,
                    "overlap: " + previous + " and " + current);
        }
    }
}
