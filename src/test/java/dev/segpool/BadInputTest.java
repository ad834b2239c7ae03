package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every public method of {@link SegmentPool} given something it must refuse: the documented exception,
 * a message that says what was wrong, and a pool left exactly as it was (same metrics, live contents
 * untouched).
 */
class BadInputTest {
    private static final int PAGE = 4096;
    private static final int CHUNK = 65536;

    private SegmentPool pool;
    /** Live allocations of every kind, filled with their patterns; the pattern id is the position. */
    private final List<MemorySegment> live = new ArrayList<>();
    /** Positions in {@link #live} that a test has freed itself: no longer checked. */
    private final java.util.Set<Integer> released = new java.util.HashSet<>();

    private static SegmentPool.Builder smallPool(String name) {
        return SegmentPool.builder().name(name).pageSize(PAGE).chunkSize(CHUNK).arenas(1);
    }

    @BeforeEach
    void createPool() {
        pool = smallPool("bad-input").build();
        for (long size : new long[] {0, 1, 16, 100, 3000, PAGE, 20_000, 3 * PAGE + 1, CHUNK, CHUNK + 1, 3 * CHUNK}) {
            MemorySegment segment = pool.allocate(size, 16);
            Patterns.fill(segment, live.size());
            live.add(segment);
        }
    }

    @AfterEach
    void closePool() {
        if (!pool.isClosed()) {
            pool.close();
        }
    }

    /** Runs a call that must be refused and checks that nothing changed. */
    private <T extends Throwable> T assertRefusedAndUnchanged(Class<T> type, Executable call, String... messageParts) {
        PoolMetrics before = pool.metrics();
        T thrown = assertThrows(type, call);
        for (String part : messageParts) {
            assertTrue(thrown.getMessage() != null && thrown.getMessage().contains(part),
                    "message '" + thrown.getMessage() + "' should contain '" + part + "'");
        }
        assertEquals(before, pool.metrics(), "metrics changed by a refused call");
        for (int i = 0; i < live.size(); i++) {
            if (!released.contains(i)) {
                Patterns.verify(live.get(i), i);
            }
        }
        assertTrue(pool.arenas()[0].checkConsistency());
        return thrown;
    }

    // ---- allocate ----

    @ParameterizedTest(name = "byteSize {0}")
    @ValueSource(longs = {-1, -16, -65537, Long.MIN_VALUE})
    void allocate_negativeSize_throwsNamingTheSize_andChangesNothing(long byteSize) {
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.allocate(byteSize, 8),
                "byteSize", "was " + byteSize);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.allocate(byteSize),
                "byteSize", "was " + byteSize);
    }

    @ParameterizedTest(name = "byteAlignment {0}")
    @ValueSource(longs = {0, 3, -8, 6, 24, 65535, Long.MIN_VALUE, -1})
    void allocate_alignmentNotAPowerOfTwo_throwsNamingTheAlignment_andChangesNothing(long byteAlignment) {
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.allocate(64, byteAlignment),
                "byteAlignment", "power of two", "was " + byteAlignment);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.allocate(CHUNK * 2L, byteAlignment),
                "byteAlignment", "was " + byteAlignment);
    }

    // ---- free: segments that never came from this pool ----

    @Test
    void free_null_throwsNullPointerException_andChangesNothing() {
        assertRefusedAndUnchanged(NullPointerException.class, () -> pool.free(null), "segment");
    }

    @Test
    void free_heapSegment_throwsSayingHeap_andChangesNothing() {
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(MemorySegment.ofArray(new byte[64])),
                "heap segment", "bad-input");
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(MemorySegment.ofArray(new long[0])),
                "heap segment");
    }

    @Test
    void free_jdkArenaSegment_throwsSayingNotFromThisPool_andChangesNothing() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment foreign = arena.allocate(64);
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(foreign),
                    "not allocated by pool 'bad-input'", Errors.hex(foreign.address()));
            MemorySegment aligned = arena.allocate(CHUNK, CHUNK);
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(aligned),
                    "not allocated by pool 'bad-input'");
        }
        MemorySegment global = Arena.global().allocate(16);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(global), "not allocated");
    }

    @Test
    void free_closedJdkArenaSegment_throws_andChangesNothing() {
        MemorySegment stale;
        try (Arena arena = Arena.ofConfined()) {
            stale = arena.allocate(64);
        }
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(stale), "no longer alive");
    }

    @Test
    void free_anotherPoolsSegments_throwsSayingNotFromThisPool_andChangesNothing() {
        try (SegmentPool other = smallPool("other").build()) {
            for (long size : new long[] {0, 100, PAGE, 20_000, CHUNK, CHUNK + 1}) {
                MemorySegment theirs = other.allocate(size);
                PoolMetrics otherBefore = other.metrics();
                assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(theirs),
                        "not allocated by pool 'bad-input'");
                assertEquals(otherBefore, other.metrics(), "the other pool changed");
                other.free(theirs);
            }
        }
    }

    // ---- free: this pool's segments that are not live allocation starts ----

    @Test
    void free_alreadyFreedSmallSegment_heldInTheThreadCache_throwsSayingAlreadyFreed() {
        MemorySegment segment = pool.allocate(48);
        pool.free(segment);
        assertTrue(pool.metrics().cachedBytes() > 0, "the freed element sits in this thread's cache");
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(segment), "already freed",
                Errors.hex(segment.address()));
    }

    @Test
    void free_alreadyFreedSegments_backInTheArena_throw_andChangeNothing() {
        MemorySegment small = pool.allocate(48);
        MemorySegment normal = pool.allocate(5 * PAGE);
        MemorySegment neighbour = pool.allocate(5 * PAGE);
        pool.free(small);
        pool.free(normal);
        pool.trimCurrentThreadCache();
        assertEquals(0, pool.metrics().cachedBytes());
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(small), "already freed");
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(normal), "already freed");
        pool.free(neighbour);
        pool.trimCurrentThreadCache();
        // now merged into one free run with its neighbour: its first page maps to nothing
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(neighbour), "already freed");
    }

    @Test
    void free_alreadyFreedHugeSegment_throwsSayingNoLongerAlive() {
        MemorySegment huge = pool.allocate(CHUNK * 2L);
        pool.free(huge);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(huge), "no longer alive",
                Errors.hex(huge.address()));
    }

    @Test
    void free_segmentOfAChunkReleasedByTrim_throwsSayingNoLongerAlive() {
        // fill a fresh chunk with one run, free it, and let trim() give the chunk back
        MemorySegment wholeChunk = pool.allocate(CHUNK);
        pool.free(wholeChunk);
        long reservedBefore = pool.metrics().reservedBytes();
        assertTrue(pool.trim() >= CHUNK);
        assertTrue(pool.metrics().reservedBytes() < reservedBefore);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(wholeChunk), "no longer alive");
    }

    @Test
    void free_interiorSliceOfSmallElement_throwsSayingItPointsInside_andChangesNothing() {
        MemorySegment element = live.get(3); // 100 bytes in a 112-byte class
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(element.asSlice(1)),
                "points inside", Errors.hex(element.address()));
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(element.asSlice(99)),
                "points inside");
    }

    @Test
    void free_interiorSliceOfRun_throwsSayingItPointsInside_andChangesNothing() {
        MemorySegment run = live.get(6); // 20,000 bytes: a run of 5 pages
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(run.asSlice(8)),
                "points inside", Errors.hex(run.address()));
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(run.asSlice(PAGE)),
                "points inside");
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(run.asSlice(4 * PAGE + 1)),
                "points inside");
        MemorySegment wholeChunk = live.get(8);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(wholeChunk.asSlice(CHUNK - 1)),
                "points inside");
    }

    @Test
    void free_interiorSliceOfHugeAllocation_throwsSayingItPointsInside_andChangesNothing() {
        MemorySegment huge = live.get(9);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(huge.asSlice(1)),
                "points inside", Errors.hex(huge.address()));
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(huge.asSlice(CHUNK)),
                "points inside");
    }

    @Test
    void free_sliceStartingAtTheAllocation_freesIt() {
        MemorySegment segment = live.get(4); // 3000 bytes
        released.add(4);
        long activeBefore = pool.metrics().activeBytes();
        pool.free(segment.asSlice(0, 10));
        assertEquals(activeBefore - 3072, pool.metrics().activeBytes());
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(segment), "already freed");
    }

    // ---- caches and tasks ----

    @Test
    void runAndCallWithThreadCache_nullTask_throwNullPointerException_andChangeNothing() {
        assertRefusedAndUnchanged(NullPointerException.class, () -> pool.runWithThreadCache(null), "task");
        assertRefusedAndUnchanged(NullPointerException.class, () -> pool.callWithThreadCache(null), "task");
    }

    @Test
    void runWithThreadCache_taskThatThrows_propagates_andStillReleasesTheCache() {
        int cachesBefore = pool.metrics().threadCaches();
        IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> pool.runWithThreadCache(() -> {
            pool.free(pool.allocate(64));
            assertTrue(pool.metrics().cachedBytes() > 0);
            throw new IllegalStateException("task failed");
        }));
        assertEquals("task failed", thrown.getMessage());
        assertEquals(cachesBefore, pool.metrics().threadCaches());
    }

    @Test
    void callWithThreadCache_taskThatThrowsChecked_propagates_andStillReleasesTheCache() throws Exception {
        PoolMetrics before = pool.metrics();
        Thread.ofVirtual().start(() -> {
            Exception thrown = assertThrows(java.io.IOException.class, () -> pool.callWithThreadCache(() -> {
                pool.free(pool.allocate(64));
                throw new java.io.IOException("no disk");
            }));
            assertEquals("no disk", thrown.getMessage());
        }).join();
        PoolMetrics after = pool.metrics();
        assertEquals(before.cachedBytes(), after.cachedBytes());
        assertEquals(before.activeBytes(), after.activeBytes());
        assertEquals(before.threadCaches(), after.threadCaches());
    }

    // ---- limits and native failures ----

    @Test
    void allocate_beyondMaxMemory_throwsNamingTheLimitAndTheUse_andPoolStaysUsable() {
        try (SegmentPool limited = smallPool("limited").maxMemory(CHUNK).build()) {
            MemorySegment all = limited.allocate(CHUNK);
            PoolMetrics before = limited.metrics();
            MemoryLimitExceededException small = assertThrows(MemoryLimitExceededException.class,
                    () -> limited.allocate(16));
            assertTrue(small.getMessage().contains("maxMemory") && small.getMessage().contains("65536 bytes")
                    && small.getMessage().contains("holds 65536") && small.getMessage().contains("limited"),
                    small.getMessage());
            assertEquals(CHUNK, small.limitBytes());
            assertEquals(CHUNK, small.reservedBytes());
            assertEquals(CHUNK, small.requestedBytes());
            MemoryLimitExceededException huge = assertThrows(MemoryLimitExceededException.class,
                    () -> limited.allocate(CHUNK + 1L));
            assertEquals(CHUNK + 1L, huge.requestedBytes());
            assertEquals(before, limited.metrics());
            limited.free(all);
            MemorySegment again = limited.allocate(16);
            assertEquals(16, again.byteSize());
            assertEquals(CHUNK, limited.metrics().reservedBytes());
        }
    }

    @Test
    void allocate_thatTheOperatingSystemCannotServe_throwsOutOfMemoryError_andChangesNothing() {
        assertRefusedAndUnchanged(OutOfMemoryError.class, () -> pool.allocate(Long.MAX_VALUE / 4));
    }

    // ---- after close ----

    @Test
    void everyMethod_afterClose_throwsSayingThePoolIsClosed() {
        MemorySegment small = live.get(2);
        MemorySegment huge = live.get(9);
        pool.close();
        List<Executable> calls = List.of(
                () -> pool.allocate(16),
                () -> pool.allocate(16, 16),
                () -> pool.allocate(CHUNK * 2L, 16),
                () -> pool.allocate(0),
                () -> pool.free(small),
                () -> pool.free(huge),
                () -> pool.free(MemorySegment.ofArray(new byte[4])),
                () -> pool.runWithThreadCache(() -> {}),
                () -> pool.callWithThreadCache(() -> 1),
                () -> pool.trimCurrentThreadCache(),
                () -> pool.trim(),
                () -> pool.metrics(),
                () -> pool.dumpStats(),
                () -> pool.close());
        for (Executable call : calls) {
            IllegalStateException thrown = assertThrows(IllegalStateException.class, call);
            assertEquals("pool 'bad-input' is closed", thrown.getMessage());
        }
    }

    @Test
    void segmentsHandedOutBeforeClose_becomeInaccessible() {
        pool.close();
        for (MemorySegment segment : live) {
            if (segment.byteSize() > 0) {
                assertThrows(IllegalStateException.class, () -> segment.get(ValueLayout.JAVA_BYTE, 0));
            }
        }
    }
}
