package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Four threads allocate, reallocate and free against budgets held near their limits, with thread caches
 * on: a single budget shared by all (under a roomier parent), or two sibling budgets whose parent's
 * limit is below the sum of theirs, so that the parent refuses. A limit is never crossed: a watcher
 * thread samples every budget's used bytes while the threads run, and each thread checks, right after
 * each allocation it got, that no budget of its chain is above its limit. Every allocation is filled
 * with a pattern of its own and verified before it is freed (or after it was reallocated). At the end
 * every budget's use is exactly 0, its peak at most its limit, and the pool holds nothing. Bounded by
 * iteration counts, not by time.
 */
class BudgetConcurrencyTest {
    private static final int THREADS = 4;
    private static final int ITERATIONS = 4000;
    private static final int MAX_LIVE_PER_THREAD = 12;

    private record Allocation(MemorySegment segment, long id) {}

    private static long randomSize(SplittableRandom random) {
        int kind = random.nextInt(100);
        if (kind < 70) {
            return random.nextInt(0, 3001);
        }
        if (kind < 95) {
            return random.nextInt(3001, 12_001);
        }
        return random.nextInt(20_000, 40_001); // runs of pages
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"one budget", "siblings under a tighter parent"})
    void threadsRacingNearTheLimit_neverCrossIt_andEverythingIsGivenBack(String shape) throws Exception {
        try (SegmentPool pool = SegmentPool.builder().name("budget-race").pageSize(4096).chunkSize(1 << 18).arenas(2)
                .decay(Duration.ofDays(1)).build()) {
            MemoryBudget parent;
            MemoryBudget[] budgetOf = new MemoryBudget[THREADS];
            List<MemoryBudget> all = new ArrayList<>();
            if (shape.equals("one budget")) {
                parent = pool.newBudget("tenant", 1 << 20);
                MemoryBudget shared = parent.newBudget("shared", 48 << 10);
                java.util.Arrays.fill(budgetOf, shared);
                all.addAll(List.of(parent, shared));
            } else {
                parent = pool.newBudget("tenant", 48 << 10);
                MemoryBudget a = parent.newBudget("a", 40 << 10);
                MemoryBudget b = parent.newBudget("b", 40 << 10);
                for (int t = 0; t < THREADS; t++) {
                    budgetOf[t] = t % 2 == 0 ? a : b;
                }
                all.addAll(List.of(parent, a, b));
            }
            long[] limits = all.stream().mapToLong(MemoryBudget::maxBytes).toArray();
            AtomicLongArray highestSeen = new AtomicLongArray(all.size());
            AtomicBoolean running = new AtomicBoolean(true);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            AtomicLong refused = new AtomicLong();
            AtomicLong allocated = new AtomicLong();
            Thread watcher = Thread.ofPlatform().name("watcher").start(() -> {
                while (running.get()) {
                    for (int i = 0; i < all.size(); i++) {
                        long used = all.get(i).usedBytes();
                        highestSeen.accumulateAndGet(i, used, Math::max);
                    }
                }
            });
            CountDownLatch start = new CountDownLatch(1);
            List<Thread> workers = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                int self = t;
                MemoryBudget budget = budgetOf[t];
                List<MemoryBudget> chain = List.of(budget, parent);
                workers.add(Thread.ofPlatform().name("worker-" + t).start(() -> {
                    SplittableRandom random = new SplittableRandom(97 * self + shape.hashCode());
                    List<Allocation> live = new ArrayList<>();
                    try {
                        start.await();
                        for (int i = 0; i < ITERATIONS && failure.get() == null; i++) {
                            int dice = random.nextInt(100);
                            long id = ((long) self << 32) | i;
                            if (live.size() < MAX_LIVE_PER_THREAD && dice < 55) {
                                long size = randomSize(random);
                                MemorySegment segment;
                                try {
                                    segment = budget.allocate(size);
                                } catch (MemoryLimitExceededException e) {
                                    refused.incrementAndGet();
                                    continue;
                                }
                                assertWithinLimits(chain);
                                allocated.incrementAndGet();
                                assertEquals(size, segment.byteSize());
                                Patterns.fill(segment, id);
                                live.add(new Allocation(segment, id));
                            } else if (!live.isEmpty() && dice < 65) {
                                int index = random.nextInt(live.size());
                                Allocation old = live.get(index);
                                long size = randomSize(random);
                                MemorySegment grown;
                                try {
                                    grown = budget.reallocate(old.segment(), size);
                                } catch (MemoryLimitExceededException e) {
                                    refused.incrementAndGet();
                                    Patterns.verify(old.segment(), old.id()); // still valid and unchanged
                                    continue;
                                }
                                assertWithinLimits(chain);
                                Patterns.verify(grown.asSlice(0, Math.min(size, old.segment().byteSize())), old.id());
                                Patterns.fill(grown, id);
                                live.set(index, new Allocation(grown, id));
                            } else if (!live.isEmpty()) {
                                Allocation victim = live.remove(random.nextInt(live.size()));
                                Patterns.verify(victim.segment(), victim.id());
                                budget.free(victim.segment());
                            }
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                    try {
                        for (Allocation allocation : live) {
                            Patterns.verify(allocation.segment(), allocation.id());
                            budget.free(allocation.segment());
                        }
                        pool.trimCurrentThreadCache();
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                }));
            }
            start.countDown();
            for (Thread worker : workers) {
                worker.join();
            }
            running.set(false);
            watcher.join();
            assertNull(failure.get(), () -> "a thread failed: " + failure.get());
            assertTrue(refused.get() > 0, "the threads met the limits: " + refused.get() + " refusals");
            // Only that the race ran: how many allocations the limits let through depends on how the
            // threads interleave (3,763 of about 8,800 attempts in one run on 2 cores).
            assertTrue(allocated.get() > ITERATIONS / 2, "allocations succeeded: " + allocated.get());
            for (int i = 0; i < all.size(); i++) {
                MemoryBudget b = all.get(i);
                assertTrue(highestSeen.get(i) <= limits[i],
                        b.path() + ": the watcher saw " + highestSeen.get(i) + " of " + limits[i]);
                assertEquals(0, b.usedBytes(), b.path() + " gave everything back");
                assertTrue(b.peakBytes() <= limits[i], b.path() + ": peak " + b.peakBytes() + " of " + limits[i]);
                assertTrue(b.peakBytes() > 0, b.path() + " was used");
            }
            for (int i = all.size() - 1; i >= 0; i--) {
                all.get(i).close(); // children first
            }
            pool.trimCurrentThreadCache();
            PoolMetrics end = pool.metrics();
            assertEquals(0, end.activeBytes(), end.toString());
            assertEquals(0, end.cachedBytes());
            for (PoolArena arena : pool.arenas()) {
                assertTrue(arena.checkConsistency(), "arena " + arena.index);
            }
        }
    }

    /** Right after an allocation: no budget of the chain (the thread's budget and its parent) is above its limit. */
    private static void assertWithinLimits(List<MemoryBudget> chain) {
        for (MemoryBudget b : chain) {
            long used = b.usedBytes();
            assertTrue(used <= b.maxBytes(), b.path() + " holds " + used + " of " + b.maxBytes());
        }
    }
}
