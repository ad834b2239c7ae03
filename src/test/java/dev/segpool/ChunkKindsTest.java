package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * An arena keeps the units a thread cache may hold (subpages and runs up to maxCachedSize) in chunks
 * apart from larger runs, so that what an idle thread's cache keeps pins only those chunks.
 */
class ChunkKindsTest {
    private static final int LARGE = 700 * 1024;

    private static Set<PoolChunk> chunksOf(SegmentPool pool, List<MemorySegment> segments) {
        Set<PoolChunk> chunks = new HashSet<>();
        for (MemorySegment segment : segments) {
            chunks.add(pool.core().registry.find(segment.address()));
        }
        return chunks;
    }

    /** Allocates large runs and small units of many classes, interleaved. */
    private static void allocateInterleaved(SegmentPool pool, List<MemorySegment> large, List<MemorySegment> small) {
        for (int i = 0; i < 40; i++) {
            large.add(pool.allocate(LARGE));
            small.add(pool.allocate(1024 + i * 700)); // 1 KiB to 28 KiB: subpages of many classes
            small.add(pool.allocate(32 * 1024)); // a run of the largest class a cache holds
        }
    }

    @Test
    void smallUnitsAndLargeRuns_neverShareAChunk() {
        try (SegmentPool pool = SegmentPool.builder().arenas(1).build()) {
            List<MemorySegment> large = new ArrayList<>();
            List<MemorySegment> small = new ArrayList<>();
            allocateInterleaved(pool, large, small);
            Set<PoolChunk> largeChunks = chunksOf(pool, large);
            Set<PoolChunk> smallChunks = chunksOf(pool, small);
            assertTrue(smallChunks.stream().noneMatch(largeChunks::contains), "no chunk holds both");
            assertEquals(1, smallChunks.size(), "the small units are packed in one chunk");
            large.forEach(pool::free);
            small.forEach(pool::free);
            assertTrue(pool.arenas()[0].checkConsistency());
        }
    }

    @Test
    void whatAnIdleThreadsCacheKeeps_pinsOnlyTheChunkOfSmallUnits() {
        AtomicLong now = new AtomicLong();
        try (SegmentPool pool = ((PoolBuilder) SegmentPool.builder()).arenas(1).decay(Duration.ofSeconds(1))
                .ticker(now::get).scheduler((tick, period) -> new CompletableFuture<>()).build()) {
            List<MemorySegment> large = new ArrayList<>();
            List<MemorySegment> small = new ArrayList<>();
            allocateInterleaved(pool, large, small);
            assertTrue(pool.metrics().chunks() >= 8, "28 MiB of large runs");
            large.forEach(pool::free);
            small.forEach(pool::free); // into this thread's cache, which this test then leaves alone
            assertTrue(pool.metrics().cachedBytes() > 0);
            for (int tick = 0; tick < 4; tick++) {
                now.addAndGet(Duration.ofSeconds(2).toNanos());
                pool.decayNow();
            }
            PoolMetrics m = pool.metrics();
            assertEquals(1, m.chunks(), "every chunk of large runs is released; the cache pins one chunk");
            assertEquals(m.reservedBytes(), m.activeBytes() + m.cachedBytes() + m.freeBytes());
            assertTrue(pool.arenas()[0].checkConsistency());
        }
    }

    @Test
    void anEmptyChunkOfOneKind_servesTheOtherBeforeANewChunkIsMapped() {
        try (SegmentPool pool = SegmentPool.builder().arenas(1).threadLocalCaches(false).build()) {
            MemorySegment big = pool.allocate(4 << 20); // a whole chunk of large runs
            pool.free(big); // now empty, kept until the decay
            MemorySegment unit = pool.allocate(1000);
            assertEquals(1, pool.metrics().chunks(), "the empty chunk changed kind");
            pool.free(unit);
            assertTrue(pool.arenas()[0].checkConsistency());
        }
    }
}
