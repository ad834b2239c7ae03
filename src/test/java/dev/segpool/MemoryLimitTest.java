package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** {@code maxMemory}: the hard limit on reserved bytes. */
class MemoryLimitTest {
    private static final int CHUNK = 1 << 16;

    /**
     * At the limit, with every reserved chunk empty but in another thread's arena, a cached allocation
     * (the fast path's refill) gives those chunks back and succeeds, as an uncached one does.
     */
    @Test
    void fastPathRefill_atTheLimit_reclaimsOtherArenasEmptyChunks() throws Exception {
        try (SegmentPool pool = SegmentPool.builder().name("refill-at-limit").pageSize(4096).chunkSize(CHUNK)
                .arenas(2).maxMemory(3L * CHUNK).decay(java.time.Duration.ofDays(1)).build()) {
            MemorySegment big = pool.allocate(56 * 1024); // this thread's arena: 14 of 16 pages in use
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread other = Thread.ofPlatform().start(() -> { // the other arena: two chunks, then empty
                try {
                    MemorySegment a = pool.allocate(40_000);
                    MemorySegment b = pool.allocate(40_000);
                    pool.free(a);
                    pool.free(b);
                    pool.trimCurrentThreadCache();
                } catch (Throwable t) {
                    failure.set(t);
                }
            });
            other.join();
            assertEquals(null, failure.get());
            assertEquals(3L * CHUNK, pool.metrics().reservedBytes());
            MemorySegment cached = pool.allocate(16_384); // 4 pages: its refill needs a chunk
            assertEquals(16_384, cached.byteSize());
            pool.free(cached);
            pool.free(big);
        }
    }

    @Test
    void limit_isNeverCrossed_whileThreadsRace() throws Exception {
        long limit = 16L * CHUNK;
        try (SegmentPool pool = SegmentPool.builder().name("racing-limit").pageSize(4096).chunkSize(CHUNK).arenas(4)
                .maxMemory(limit).build()) {
            AtomicBoolean running = new AtomicBoolean(true);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            AtomicLong highest = new AtomicLong();
            AtomicLong refused = new AtomicLong();
            Thread monitor = Thread.ofPlatform().start(() -> {
                while (running.get()) {
                    highest.accumulateAndGet(pool.metrics().reservedBytes(), Math::max);
                }
            });
            CountDownLatch start = new CountDownLatch(1);
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int seed = t;
                workers.add(Thread.ofPlatform().uncaughtExceptionHandler((thread, e) -> failure.compareAndSet(null, e)).start(() -> {
                    SplittableRandom random = new SplittableRandom(seed);
                    List<MemorySegment> live = new ArrayList<>();
                    try {
                        start.await();
                    } catch (InterruptedException e) {
                        throw new AssertionError(e);
                    }
                    for (int i = 0; i < 3000; i++) {
                        if (!live.isEmpty() && (live.size() > 40 || random.nextInt(3) == 0)) {
                            MemorySegment s = live.remove(random.nextInt(live.size()));
                            assertEquals((byte) s.byteSize(), s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1));
                            pool.free(s);
                            continue;
                        }
                        long size = switch (random.nextInt(3)) {
                            case 0 -> 1 + random.nextInt(4000);
                            case 1 -> 16_384 + random.nextInt(CHUNK - 16_384);
                            default -> CHUNK + 1 + random.nextInt(3 * CHUNK); // huge
                        };
                        try {
                            MemorySegment s = pool.allocate(size);
                            s.set(ValueLayout.JAVA_BYTE, size - 1, (byte) size);
                            live.add(s);
                        } catch (MemoryLimitExceededException e) {
                            refused.incrementAndGet();
                        }
                    }
                    live.forEach(pool::free);
                    pool.trimCurrentThreadCache();
                }));
            }
            start.countDown();
            for (Thread w : workers) {
                w.join();
            }
            running.set(false);
            monitor.join();
            if (failure.get() != null) {
                throw new AssertionError("a worker failed", failure.get());
            }
            assertTrue(highest.get() <= limit, "reserved " + highest.get() + " crossed the limit " + limit);
            assertTrue(refused.get() > 0, "the workload should have hit the limit");
            assertEquals(0, pool.metrics().activeBytes());
            assertTrue(pool.arenas()[0].checkConsistency());
            MemorySegment after = pool.allocate(CHUNK / 2); // still usable
            pool.free(after);
        }
    }

    @Test
    void limitExceeded_messageNamesLimitUseAndRequest_andChangesNothing() {
        try (SegmentPool pool = SegmentPool.builder().name("capped").pageSize(4096).chunkSize(CHUNK)
                .maxMemory(2L * CHUNK).build()) {
            MemorySegment a = pool.allocate(CHUNK);
            MemorySegment b = pool.allocate(CHUNK / 2);
            PoolMetrics before = pool.metrics();
            MemoryLimitExceededException e = assertThrows(MemoryLimitExceededException.class,
                    () -> pool.allocate(CHUNK + 1));
            assertTrue(e.getMessage().contains("'capped'"), e.getMessage());
            assertTrue(e.getMessage().contains("limit (maxMemory) is " + 2 * CHUNK), e.getMessage());
            assertTrue(e.getMessage().contains("holds " + 2 * CHUNK), e.getMessage());
            assertTrue(e.getMessage().contains("reserve " + (CHUNK + 1)), e.getMessage());
            assertEquals(2L * CHUNK, e.limitBytes());
            assertEquals(2L * CHUNK, e.reservedBytes());
            assertEquals(CHUNK + 1, e.requestedBytes());
            assertEquals(before.reservedBytes(), pool.metrics().reservedBytes());
            assertEquals(before.activeBytes(), pool.metrics().activeBytes());
            pool.free(a);
            pool.free(b);
            pool.free(pool.allocate(CHUNK + 1)); // room again: empty chunks are given back first
            assertTrue(pool.metrics().reservedBytes() <= 2L * CHUNK);
        }
    }

    @Test
    void smallLimit_shrinksDefaultArenas_andPoolStaysUsable() {
        assertEquals(1, PoolBuilder.defaultArenas(4L << 20, 4 << 20));
        assertTrue(PoolBuilder.defaultArenas(Long.MAX_VALUE, 4 << 20) >= 1);
        try (SegmentPool pool = SegmentPool.builder().maxMemory(4 << 20).build()) {
            assertEquals(1, pool.arenas().length);
            List<MemorySegment> live = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                live.add(pool.allocate(30_000));
            }
            live.forEach(pool::free);
        }
    }

    @Test
    void emptyChunksOfOtherArenas_areGivenBackAtTheLimit() throws Exception {
        try (SegmentPool pool = SegmentPool.builder().pageSize(4096).chunkSize(CHUNK).arenas(2)
                .maxMemory(2L * CHUNK).build()) {
            // This thread's cache binds to arena 0; while it lives, the other thread's binds to arena 1.
            // 40,000 bytes is a normal class above maxCachedSize, so each free goes back to its chunk.
            // This thread's unit is still held when the other allocates, so arena 1 has no empty chunk
            // of arena 0's to take and maps its own.
            MemorySegment held = pool.allocate(40_000);
            Thread other = Thread.ofPlatform().start(() -> pool.free(pool.allocate(40_000)));
            other.join();
            pool.free(held);
            PoolMetrics m = pool.metrics();
            assertEquals(2L * CHUNK, m.reservedBytes());
            assertEquals(1, m.arenas().get(0).chunks());
            assertEquals(1, m.arenas().get(1).chunks());
            MemorySegment whole = pool.allocate(2L * CHUNK - 4096); // huge: needs the room of both chunks
            assertEquals(2L * CHUNK - 4096, pool.metrics().reservedBytes());
            pool.free(whole);
        }
    }

    @Test
    void maxMemory_badValues_areRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SegmentPool.builder().maxMemory(0));
        assertTrue(e.getMessage().startsWith("maxMemory must be"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> SegmentPool.builder().maxMemory(-5));
        e = assertThrows(IllegalArgumentException.class,
                () -> SegmentPool.builder().chunkSize(4 << 20).maxMemory(1 << 20).build());
        assertTrue(e.getMessage().contains("maxMemory") && e.getMessage().contains("chunkSize"), e.getMessage());
    }
}
