package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Four threads allocate random sizes from 0 to 2 MiB, write a per-allocation pattern, and verify every
 * allocation before it is freed, by its own thread or, for about a third of them, by another thread.
 * The run is bounded by iteration counts, not by time.
 */
class ConcurrentStressTest {
    private static final int THREADS = 4;
    private static final int ITERATIONS = 2500;
    private static final int MAX_LIVE_PER_THREAD = 16;
    private static final int MAX_SIZE = 2 << 20;

    /** An allocation in flight, with the pattern id it was filled with. */
    private record Allocation(MemorySegment segment, long id) {}

    private static SegmentPool.Builder config(String name) {
        return switch (name) {
            case "default" -> SegmentPool.builder().name("stress-default");
            // 256 KiB chunks: everything above is huge, and chunks come and go often
            case "smallChunks" -> SegmentPool.builder().name("stress-small").pageSize(4096).chunkSize(256 << 10)
                    .arenas(2).smallCacheSize(32).normalCacheSize(8).cacheTrimInterval(64);
            // a limit that the threads hit now and then
            case "limited" -> SegmentPool.builder().name("stress-limited").chunkSize(1 << 20).maxMemory(24 << 20);
            default -> throw new IllegalArgumentException(name);
        };
    }

    private static long randomSize(SplittableRandom random) {
        int kind = random.nextInt(100);
        if (kind < 55) {
            return random.nextInt(0, 1025);
        }
        if (kind < 85) {
            return random.nextInt(1025, 65537);
        }
        return random.nextInt(65537, MAX_SIZE + 1);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"default", "smallChunks", "limited"})
    void randomAllocateAndFree_onFourThreads_withCrossThreadFrees_keepsEveryAllocationIntact(String name)
            throws Exception {
        SegmentPool.Builder builder = config(name);
        try (SegmentPool pool = builder.build()) {
            long limit = pool.arenas()[0].memory.limit;
            List<Queue<Allocation>> inboxes = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                inboxes.add(new ConcurrentLinkedQueue<>());
            }
            AtomicReference<Throwable> failure = new AtomicReference<>();
            AtomicLong crossThreadFrees = new AtomicLong();
            AtomicLong refusedByLimit = new AtomicLong();
            AtomicLong maxReserved = new AtomicLong();
            CyclicBarrier phaseEnd = new CyclicBarrier(THREADS);
            List<Thread> threads = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int self = t;
                threads.add(Thread.ofPlatform().name("stress-" + t).start(() -> {
                    SplittableRandom random = new SplittableRandom(31 * self + name.hashCode());
                    List<Allocation> live = new ArrayList<>();
                    Queue<Allocation> inbox = inboxes.get(self);
                    try {
                        for (int i = 0; i < ITERATIONS && failure.get() == null; i++) {
                            drain(pool, inbox);
                            if (live.size() < MAX_LIVE_PER_THREAD && random.nextInt(100) < 55) {
                                long size = randomSize(random);
                                long alignment = random.nextInt(4) == 0 ? 1L << random.nextInt(13) : 1;
                                MemorySegment segment;
                                try {
                                    segment = pool.allocate(size, alignment);
                                } catch (MemoryLimitExceededException e) {
                                    refusedByLimit.incrementAndGet();
                                    continue;
                                }
                                assertEquals(size, segment.byteSize());
                                assertEquals(0, segment.address() % alignment);
                                long id = ((long) self << 32) | i;
                                Patterns.fill(segment, id);
                                live.add(new Allocation(segment, id));
                            } else if (!live.isEmpty()) {
                                Allocation victim = live.remove(random.nextInt(live.size()));
                                if (random.nextInt(3) == 0) {
                                    inboxes.get((self + 1 + random.nextInt(THREADS - 1)) % THREADS).add(victim);
                                    crossThreadFrees.incrementAndGet();
                                } else {
                                    Patterns.verify(victim.segment(), victim.id());
                                    pool.free(victim.segment());
                                }
                            }
                            if (i % 100 == 0) {
                                maxReserved.accumulateAndGet(pool.metrics().reservedBytes(), Math::max);
                            }
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                    try {
                        phaseEnd.await(); // nobody sends any more
                        drain(pool, inbox);
                        for (Allocation allocation : live) {
                            Patterns.verify(allocation.segment(), allocation.id());
                            pool.free(allocation.segment());
                        }
                        pool.trimCurrentThreadCache();
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            for (Thread thread : threads) {
                thread.join();
            }
            assertNull(failure.get(), () -> "a thread failed: " + failure.get());
            assertTrue(crossThreadFrees.get() > 100, "cross-thread frees happened: " + crossThreadFrees.get());
            assertTrue(maxReserved.get() <= limit, "reserved " + maxReserved.get() + " crossed the limit " + limit);
            PoolMetrics end = pool.metrics();
            assertEquals(0, end.activeBytes(), end.toString());
            assertEquals(0, end.cachedBytes());
            assertEquals(0, end.hugeBytes());
            assertEquals(end.reservedBytes(), end.freeBytes());
            assertTrue(end.reservedBytes() <= limit);
            for (PoolArena arena : pool.arenas()) {
                assertTrue(arena.checkConsistency(), "arena " + arena.index);
            }
            pool.trim();
            assertEquals(0, pool.metrics().reservedBytes());
        }
    }

    private static void drain(SegmentPool pool, Queue<Allocation> inbox) {
        Allocation received;
        while ((received = inbox.poll()) != null) {
            Patterns.verify(received.segment(), received.id());
            pool.free(received.segment());
        }
    }
}
