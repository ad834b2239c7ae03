package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/** One thread cache holds at most maxCachedBytesPerThread bytes, whatever its thread frees. */
class CacheBudgetTest {
    /** More than the 256 entries a small class's stack may hold. */
    private static final int PER_CLASS = 300;

    /**
     * Allocates {@value #PER_CLASS} units of every class a cache may hold, then frees them all on the
     * same thread, checking the cache's bytes as it goes; returns the most it held.
     */
    private static long fillEveryClass(SegmentPool pool, long budget) {
        SizeClasses classes = pool.sizeClasses();
        List<MemorySegment> live = new ArrayList<>();
        for (int i = 0; i < classes.classes() && classes.size(i) <= 32 * 1024; i++) {
            for (int n = 0; n < PER_CLASS; n++) {
                live.add(pool.allocate(classes.size(i)));
            }
        }
        long most = 0;
        for (int i = 0; i < live.size(); i++) {
            pool.free(live.get(i));
            if (i % 97 == 0 || i == live.size() - 1) {
                long cached = pool.metrics().cachedBytes();
                assertTrue(cached <= budget, "cached " + cached + " > budget " + budget + " after " + (i + 1) + " frees");
                most = Math.max(most, cached);
            }
        }
        return most;
    }

    @ParameterizedTest(name = "maxCachedBytesPerThread({0})")
    @ValueSource(longs = {64 * 1024, 1 << 20, 3 << 20})
    void fillingEveryClass_keepsTheCacheWithinItsBudget(long budget) {
        try (SegmentPool pool = SegmentPool.builder().arenas(1).maxCachedBytesPerThread(budget).build()) {
            long most = fillEveryClass(pool, budget);
            assertTrue(most > budget / 2, "the budget is used: " + most);
            assertTrue(pool.trimCurrentThreadCache());
            assertEquals(0, pool.metrics().cachedBytes());
            assertEquals(0, pool.metrics().activeBytes());
            assertTrue(pool.arenas()[0].checkConsistency());
        }
    }

    @Test
    void theDefaultBudget_boundsACacheAtItsValue() {
        try (SegmentPool pool = SegmentPool.create()) {
            fillEveryClass(pool, PoolBuilder.DEFAULT_MAX_CACHED_BYTES_PER_THREAD);
        }
    }

    @Test
    void withoutABudget_theEntryCountsAloneBoundTheCache() {
        try (SegmentPool pool = SegmentPool.builder().arenas(1).maxCachedBytesPerThread(Long.MAX_VALUE).build()) {
            long most = fillEveryClass(pool, Long.MAX_VALUE);
            assertTrue(most > 20L << 20, "256 entries of each small class and 64 of 32 KiB: " + most);
        }
    }

    @Test
    void aBudgetOfZero_turnsCachesOff() {
        try (SegmentPool pool = SegmentPool.builder().maxCachedBytesPerThread(0).build()) {
            pool.free(pool.allocate(256));
            PoolMetrics m = pool.metrics();
            assertEquals(0, m.threadCaches());
            assertEquals(0, m.cachedBytes());
        }
    }

    @Test
    void aBudgetBelowAClassSize_servesThatClassFromTheArena() {
        try (SegmentPool pool = SegmentPool.builder().arenas(1).maxCachedBytesPerThread(20_000).build()) {
            MemorySegment big = pool.allocate(24 * 1024); // its class is above the budget
            MemorySegment small = pool.allocate(64);
            pool.free(big);
            pool.free(small);
            PoolMetrics m = pool.metrics();
            assertTrue(m.cachedBytes() <= 20_000, "cached " + m.cachedBytes());
            assertEquals(0, m.activeBytes());
            assertTrue(m.cachedBytes() >= 64, "the small class is cached");
        }
    }
}
