package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/** Thread caches: binding, flushing, trimming, release at thread end, and their metrics. */
class ThreadCacheTest {
    private static final int PAGE = 4096;
    private static final int CHUNK = 65536;
    private static final long DEADLINE_NANOS = 10_000_000_000L;

    private static SegmentPool.Builder smallPool() {
        return SegmentPool.builder().pageSize(PAGE).chunkSize(CHUNK);
    }

    /** Runs {@code task} on a new platform thread and waits for it; rethrows what it threw. */
    private static void onNewThread(Runnable task) throws InterruptedException {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread thread = Thread.ofPlatform().start(() -> {
            try {
                task.run();
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        thread.join();
        if (failure.get() != null) {
            throw new AssertionError("thread failed", failure.get());
        }
    }

    /** Runs {@code task} for ids 0 to {@code count - 1}, each on a virtual thread of its own; fails with the first failure. */
    private static void onVirtualThreads(int count, java.util.function.IntConsumer task) {
        AtomicReference<Throwable> failure = new AtomicReference<>();
        try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < count; i++) {
                int id = i;
                executor.execute(() -> {
                    try {
                        task.accept(id);
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                });
            }
        }
        if (failure.get() != null) {
            throw new AssertionError("a virtual thread failed", failure.get());
        }
    }

    /** Polls {@code condition}, asking for garbage collection between polls, until it holds or 10 s pass. */
    private static boolean awaitWithGc(BooleanSupplier condition) throws InterruptedException {
        long start = System.nanoTime();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - start > DEADLINE_NANOS) {
                return false;
            }
            System.gc();
            Thread.sleep(10);
        }
        return true;
    }

    private static long usedElementsOf(SegmentPool pool, int elementSize) {
        return pool.metrics().arenas().stream().flatMap(a -> a.sizeClasses().stream())
                .filter(c -> c.elementSize() == elementSize).mapToLong(PoolMetrics.SizeClassMetrics::usedElements).sum();
    }

    // ---- metrics ----

    @Test
    void cachedUnits_areCountedInCachedBytes_notInActiveBytes() throws InterruptedException {
        try (SegmentPool pool = smallPool().arenas(1).build()) {
            onNewThread(() -> {
                MemorySegment segment = pool.allocate(64);
                PoolMetrics m = pool.metrics();
                assertEquals(64, m.activeBytes(), "only the handed-out element is active");
                assertTrue(m.cachedBytes() > 0, "a refill leaves elements in the cache");
                assertEquals(1, m.threadCaches());
                assertEquals(1, m.cacheMisses());
                assertEquals(m.reservedBytes(), m.activeBytes() + m.cachedBytes() + m.freeBytes());
                pool.free(segment);
                pool.free(pool.allocate(64));
                PoolMetrics after = pool.metrics();
                assertEquals(0, after.activeBytes());
                assertEquals(1, after.cacheHits());
                assertEquals(m.cachedBytes() + 64, after.cachedBytes());
                assertTrue(pool.trimCurrentThreadCache());
                assertEquals(0, pool.metrics().cachedBytes());
            });
        }
    }

    /**
     * A platform thread that only frees (a consumer) makes its cache on its first free, as its first
     * allocation would: its frees go into that cache, and back to the arena in batches, instead of one
     * arena lock per free.
     */
    @Test
    void aThreadThatOnlyFrees_makesItsCacheOnItsFirstFree() throws InterruptedException {
        try (SegmentPool pool = smallPool().arenas(1).build()) {
            List<MemorySegment> segments = new ArrayList<>();
            onNewThread(() -> {
                for (int i = 0; i < 100; i++) {
                    MemorySegment segment = pool.allocate(256);
                    Patterns.fill(segment, i);
                    segments.add(segment);
                }
                pool.trimCurrentThreadCache(); // the producer keeps nothing cached
            });
            onNewThread(() -> {
                PoolMetrics before = pool.metrics();
                assertEquals(0, before.cachedBytes());
                assertEquals(100 * 256, before.activeBytes());
                assertFalse(pool.trimCurrentThreadCache(), "no cache before the first free");
                for (int i = 0; i < segments.size(); i++) {
                    Patterns.verify(segments.get(i), i);
                    pool.free(segments.get(i));
                }
                PoolMetrics after = pool.metrics();
                // (the ended producer's cache may be released at any time, so the count of caches is not compared)
                assertEquals(0, after.activeBytes());
                assertEquals(100 * 256, after.cachedBytes(), "every freed element sits in the consumer's own cache");
                assertEquals(after.reservedBytes(), after.activeBytes() + after.cachedBytes() + after.freeBytes());
                assertTrue(pool.trimCurrentThreadCache());
                assertEquals(0, pool.metrics().cachedBytes());
            });
            for (PoolArena arena : pool.arenas()) {
                assertTrue(arena.checkConsistency());
            }
        }
    }

    // ---- trimCurrentThreadCache ----

    @Test
    void trimCurrentThreadCache_isTrueOnlyWhenTheCacheHeldSomething() throws InterruptedException {
        try (SegmentPool pool = smallPool().build()) {
            onNewThread(() -> {
                assertFalse(pool.trimCurrentThreadCache(), "no cache yet");
                assertEquals(0, pool.metrics().threadCaches(), "trimming does not create a cache");
                MemorySegment segment = pool.allocate(100);
                assertTrue(pool.trimCurrentThreadCache(), "refill leftovers");
                assertFalse(pool.trimCurrentThreadCache(), "already empty");
                pool.free(segment);
                assertTrue(pool.trimCurrentThreadCache(), "the freed element");
                assertFalse(pool.trimCurrentThreadCache());
                MemorySegment huge = pool.allocate(CHUNK + 1);
                pool.free(huge);
                assertFalse(pool.trimCurrentThreadCache(), "huge allocations are never cached");
            });
        }
    }

    @Test
    void trimCurrentThreadCache_onAVirtualThreadOrWithCachesOff_isFalse() throws InterruptedException {
        try (SegmentPool pool = smallPool().build()) {
            Thread.ofVirtual().start(() -> {
                pool.free(pool.allocate(100));
                assertFalse(pool.trimCurrentThreadCache());
            }).join();
            assertEquals(0, pool.metrics().threadCaches());
        }
        try (SegmentPool pool = smallPool().smallCacheSize(0).normalCacheSize(0).build()) {
            onNewThread(() -> {
                pool.free(pool.allocate(100));
                pool.free(pool.allocate(20_000));
                assertFalse(pool.trimCurrentThreadCache());
                assertEquals(0, pool.metrics().threadCaches());
            });
        }
    }

    // ---- stack limits and periodic trim ----

    @Test
    void fullStack_givesItsOlderHalfBackToTheArena() throws InterruptedException {
        try (SegmentPool pool = smallPool().arenas(1).smallCacheSize(8).build()) {
            onNewThread(() -> {
                List<MemorySegment> segments = new ArrayList<>();
                for (int i = 0; i < 9; i++) {
                    segments.add(pool.allocate(16));
                }
                pool.trimCurrentThreadCache();
                assertEquals(9, usedElementsOf(pool, 16));
                for (int i = 0; i < 8; i++) {
                    pool.free(segments.get(i));
                }
                assertEquals(8 * 16, pool.metrics().cachedBytes(), "8 entries fill the stack");
                assertEquals(9, usedElementsOf(pool, 16));
                pool.free(segments.get(8)); // full: 4 go back, then it is pushed
                assertEquals(5 * 16, pool.metrics().cachedBytes());
                assertEquals(5, usedElementsOf(pool, 16), "the arena got 4 back");
                assertEquals(0, pool.metrics().activeBytes());
            });
        }
    }

    @Test
    void stackOfOneEntry_whenFull_stillTakesTheFreedUnit() throws InterruptedException {
        try (SegmentPool pool = smallPool().arenas(1).smallCacheSize(1).normalCacheSize(1).build()) {
            onNewThread(() -> {
                for (long size : new long[] {16, 20_000}) {
                    MemorySegment a = pool.allocate(size);
                    MemorySegment b = pool.allocate(size);
                    pool.free(a);
                    pool.free(b); // the stack of one is full
                    assertEquals(0, pool.metrics().activeBytes());
                    assertEquals(pool.sizeClasses().size(pool.sizeClasses().sizeIndex(size)),
                            pool.metrics().cachedBytes());
                    assertTrue(pool.trimCurrentThreadCache());
                }
                assertTrue(pool.arenas()[0].checkConsistency());
            });
        }
    }

    @Test
    void periodicTrim_givesBackEntriesUnusedForATrimInterval() throws InterruptedException {
        for (int interval : new int[] {16, 8192}) {
            try (SegmentPool pool = smallPool().arenas(1).cacheTrimInterval(interval).build()) {
                onNewThread(() -> {
                    List<MemorySegment> segments = new ArrayList<>();
                    for (int i = 0; i < 10; i++) {
                        segments.add(pool.allocate(1024));
                    }
                    segments.forEach(pool::free);
                    assertTrue(usedElementsOf(pool, 1024) >= 10, "the freed elements sit in the cache");
                    // keep allocating another class: two trims pass without a 1024-byte allocation
                    for (int i = 0; i < 40; i++) {
                        pool.free(pool.allocate(16));
                    }
                    if (interval == 16) {
                        assertEquals(0, usedElementsOf(pool, 1024), "unused entries went back");
                    } else {
                        assertTrue(usedElementsOf(pool, 1024) >= 10, "no trim yet");
                    }
                    assertEquals(0, pool.metrics().activeBytes());
                });
            }
        }
    }

    @Test
    void periodicTrim_keepsEntriesThatAreInUse() throws InterruptedException {
        try (SegmentPool pool = smallPool().arenas(1).cacheTrimInterval(16).build()) {
            onNewThread(() -> {
                for (int i = 0; i < 100; i++) {
                    pool.free(pool.allocate(16));
                }
                assertTrue(pool.metrics().cachedBytes() >= 16, "a class in steady use keeps cached entries");
                assertTrue(pool.metrics().cacheHits() > 90);
            });
        }
    }

    @Test
    void cacheSettingsOfZero_disableCaching() throws InterruptedException {
        try (SegmentPool pool = smallPool().smallCacheSize(0).normalCacheSize(0).build()) {
            onNewThread(() -> {
                pool.free(pool.allocate(16));
                pool.free(pool.allocate(16_384));
                assertEquals(0, pool.metrics().threadCaches());
                assertEquals(0, pool.metrics().cachedBytes());
            });
            pool.runWithThreadCache(() -> assertEquals(0, pool.metrics().threadCaches(), "no scoped cache either"));
        }
        try (SegmentPool pool = smallPool().maxCachedSize(0).build()) {
            onNewThread(() -> {
                pool.free(pool.allocate(16));
                assertEquals(0, pool.metrics().threadCaches());
                assertEquals(0, pool.metrics().cachedBytes());
            });
        }
        try (SegmentPool pool = smallPool().smallCacheSize(0).build()) {
            onNewThread(() -> {
                pool.free(pool.allocate(16));
                assertEquals(0, pool.metrics().cachedBytes(), "small classes not cached");
                pool.free(pool.allocate(16_384));
                assertEquals(16_384, pool.metrics().cachedBytes(), "normal classes still cached");
            });
        }
        try (SegmentPool pool = smallPool().maxCachedSize(1024).build()) {
            onNewThread(() -> {
                pool.free(pool.allocate(1025));
                assertEquals(0, pool.metrics().cachedBytes(), "classes above maxCachedSize not cached");
                pool.free(pool.allocate(1024));
                assertTrue(pool.metrics().cachedBytes() >= 1024);
            });
        }
    }

    // ---- binding ----

    @Test
    void newCaches_bindToTheArenaWithTheFewestCaches() throws InterruptedException {
        try (SegmentPool pool = smallPool().arenas(4).build()) {
            CountDownLatch done = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                CountDownLatch bound = new CountDownLatch(1);
                threads.add(Thread.ofPlatform().start(() -> {
                    pool.free(pool.allocate(16));
                    bound.countDown();
                    try {
                        done.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }));
                bound.await();
            }
            for (PoolMetrics.ArenaMetrics arena : pool.metrics().arenas()) {
                assertEquals(1, arena.threadCaches(), "arena " + arena.index());
            }
            done.countDown();
            for (Thread thread : threads) {
                thread.join();
            }
        }
    }

    @Test
    void threadEnd_givesItsCachedMemoryBack_withoutFinalize() throws InterruptedException {
        try (SegmentPool pool = smallPool().arenas(2).build()) {
            int threads = 8;
            CountDownLatch allCached = new CountDownLatch(threads);
            CountDownLatch finish = new CountDownLatch(1);
            List<Thread> started = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int seed = t;
                started.add(Thread.ofPlatform().start(() -> {
                    SplittableRandom random = new SplittableRandom(seed);
                    List<MemorySegment> live = new ArrayList<>();
                    for (int i = 0; i < 300; i++) {
                        live.add(pool.allocate(random.nextInt(0, 20_000)));
                        if (live.size() > 20) {
                            pool.free(live.remove(random.nextInt(live.size())));
                        }
                    }
                    live.forEach(pool::free);
                    allCached.countDown();
                    try {
                        finish.await();
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }));
            }
            allCached.await();
            PoolMetrics during = pool.metrics();
            assertEquals(threads, during.threadCaches());
            assertTrue(during.cachedBytes() > 0);
            assertEquals(0, during.activeBytes());
            assertEquals(threads, pool.arenas()[0].boundCaches.get() + pool.arenas()[1].boundCaches.get());
            finish.countDown();
            for (Thread thread : started) {
                thread.join();
            }
            started.clear();
            assertTrue(awaitWithGc(() -> pool.metrics().threadCaches() == 0),
                    "caches of ended threads still live: " + pool.metrics().threadCaches());
            PoolMetrics after = pool.metrics();
            assertEquals(0, after.cachedBytes());
            assertEquals(0, after.activeBytes());
            assertEquals(after.reservedBytes(), after.freeBytes());
            assertEquals(0, pool.arenas()[0].boundCaches.get());
            assertEquals(0, pool.arenas()[1].boundCaches.get());
            assertTrue(after.cacheHits() + after.cacheMisses() > 0, "counts of released caches are kept");
        }
    }

    // ---- scoped caches and virtual threads ----

    @Test
    void runWithThreadCache_usesAScopedCache_andFlushesItWhenTheTaskEnds() throws InterruptedException {
        try (SegmentPool pool = smallPool().threadLocalCaches(false).build()) {
            onNewThread(() -> {
                pool.free(pool.allocate(64));
                assertEquals(0, pool.metrics().threadCaches(), "no thread-local cache");
                pool.runWithThreadCache(() -> {
                    pool.free(pool.allocate(64));
                    pool.free(pool.allocate(20_000));
                    PoolMetrics inside = pool.metrics();
                    assertEquals(1, inside.threadCaches());
                    assertTrue(inside.cachedBytes() >= 64 + 20_480);
                    pool.runWithThreadCache(() -> assertEquals(1, pool.metrics().threadCaches(), "nested: same cache"));
                });
                PoolMetrics after = pool.metrics();
                assertEquals(0, after.threadCaches());
                assertEquals(0, after.cachedBytes());
                assertEquals(0, after.activeBytes());
            });
        }
    }

    @Test
    void threadWithItsOwnCache_runningAScopedTask_usesTheTaskCacheInside_andItsOwnAgainAfter() throws InterruptedException {
        try (SegmentPool pool = smallPool().build()) {
            onNewThread(() -> {
                pool.free(pool.allocate(64)); // the thread's own cache now holds units of 64 B
                long ownCached = pool.metrics().cachedBytes();
                assertTrue(ownCached >= 64);
                pool.runWithThreadCache(() -> {
                    pool.free(pool.allocate(256));
                    assertTrue(pool.trimCurrentThreadCache(), "the task's cache held the 256 B unit");
                    assertEquals(ownCached, pool.metrics().cachedBytes(), "the thread's own cache was not used");
                });
                assertThrows(IllegalStateException.class, () -> pool.runWithThreadCache(() -> {
                    pool.free(pool.allocate(256));
                    throw new IllegalStateException("the task fails");
                }));
                assertEquals(ownCached, pool.metrics().cachedBytes(), "both tasks' caches were flushed");
                pool.free(pool.allocate(1024)); // the own cache again, also after a task that threw
                assertTrue(pool.metrics().cachedBytes() >= ownCached + 1024);
                assertEquals(0, pool.core().caches.current().bindingsAbove, "the front table answers again");
                assertTrue(pool.trimCurrentThreadCache());
                assertEquals(0, pool.metrics().cachedBytes());
            });
        }
    }

    @Test
    void platformThreadThatInheritsAnotherThreadsBinding_neverTouchesThatCache() throws InterruptedException {
        try (SegmentPool pool = smallPool().build()) {
            PoolThreadCache[] parent = new PoolThreadCache[1];
            onNewThread(() -> parent[0] = pool.attach(Thread.currentThread()));
            onNewThread(() -> {
                pool.free(pool.allocate(64)); // a fork with a cache of its own, in the front table
                long before = pool.metrics().cachedBytes();
                ScopedValue.where(pool.scopedCache(), parent[0]).run(() -> {
                    pool.free(pool.allocate(64));
                    pool.free(pool.allocate(2048));
                });
                assertEquals(0, parent[0].cachedBytes(), "the inherited binding's cache was not touched");
                assertEquals(0, parent[0].hits() + parent[0].misses());
                assertTrue(pool.metrics().cachedBytes() >= before + 2048, "the fork's own cache served it");
            });
            onNewThread(() -> {
                ScopedValue.where(pool.scopedCache(), parent[0]).run(() -> pool.free(pool.allocate(64)));
                assertEquals(0, parent[0].cachedBytes(), "a fork without a cache of its own uses the arena");
            });
            parent[0].release();
        }
    }

    @Test
    void scopedTasks_oneAfterAnother_reuseOneParkedCache_countedOnlyWhileATaskHoldsIt() throws InterruptedException {
        try (SegmentPool pool = smallPool().threadLocalCaches(false).arenas(1).build()) {
            onNewThread(() -> {
                for (int task = 1; task <= 3; task++) {
                    pool.runWithThreadCache(() -> {
                        pool.free(pool.allocate(64));
                        PoolMetrics inside = pool.metrics();
                        assertEquals(1, inside.threadCaches());
                        assertEquals(1, inside.arenas().get(0).threadCaches());
                    });
                    PoolMetrics after = pool.metrics();
                    assertEquals(0, after.threadCaches(), "a parked cache is no thread's cache");
                    assertEquals(0, after.arenas().get(0).threadCaches(), "nor counted in its arena's figures");
                    assertEquals(0, after.cachedBytes(), "the task's end flushed it");
                    assertEquals(1, pool.arenas()[0].boundCaches.get(), "one cache, parked, serves every task");
                    assertEquals(task, after.cacheHits() + after.cacheMisses(), "its figures carry over");
                }
            });
        }
    }

    @Test
    void callWithThreadCache_returnsTheResult_andFlushesTheCache() throws Exception {
        try (SegmentPool pool = smallPool().build()) {
            Thread.ofVirtual().start(() -> {
                try {
                    long address = pool.callWithThreadCache(() -> {
                        MemorySegment segment = pool.allocate(300);
                        pool.free(segment);
                        assertTrue(pool.trimCurrentThreadCache(), "a virtual thread in a task has a cache");
                        return segment.address();
                    });
                    assertTrue(address != 0);
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            }).join();
            assertEquals(0, pool.metrics().threadCaches());
            assertEquals(0, pool.metrics().cachedBytes());
        }
    }

    /**
     * A task's cache answers from its thread's slot of the front table while the task runs, so its calls
     * ask no scoped value; the slot is empty again when the task ends, also when it throws, and a nested
     * task keeps the outer task's cache there.
     */
    @Test
    void scopedTaskOnAVirtualThread_holdsItsFrontSlotOnlyWhileItRuns() {
        try (SegmentPool pool = smallPool().build()) {
            ThreadCaches caches = pool.core().caches;
            onVirtualThreads(1, id -> {
                Thread self = Thread.currentThread();
                assertNull(caches.frontSlot(self), "a fresh virtual thread's slot is free");
                pool.runWithThreadCache(() -> {
                    PoolThreadCache bound = caches.current();
                    assertTrue(bound != null && bound.owner == self, "the task's own cache");
                    assertEquals(bound, caches.frontSlot(self), "it sits in the thread's slot");
                    pool.free(pool.allocate(256));
                    pool.runWithThreadCache(() -> assertEquals(bound, caches.frontSlot(self), "nested: same cache"));
                    assertEquals(bound, caches.frontSlot(self), "the nested task left it there");
                });
                assertNull(caches.frontSlot(self), "the task's end emptied the slot");
                assertNull(caches.current(), "and the thread has no cache after it");
                assertThrows(IllegalStateException.class, () -> pool.runWithThreadCache(() -> {
                    pool.free(pool.allocate(64));
                    throw new IllegalStateException("the task fails");
                }));
                assertNull(caches.frontSlot(self), "a task that threw emptied it too");
            });
            assertEquals(0, pool.metrics().activeBytes());
        }
    }

    /** A platform thread whose own cache holds its slot runs a task: the slot keeps the own cache. */
    @Test
    void scopedTaskOnAThreadWhoseOwnCacheHoldsTheSlot_leavesTheSlotAlone() throws InterruptedException {
        try (SegmentPool pool = smallPool().build()) {
            ThreadCaches caches = pool.core().caches;
            onNewThread(() -> {
                Thread self = Thread.currentThread();
                pool.free(pool.allocate(64));
                PoolThreadCache own = caches.frontSlot(self);
                assertTrue(own != null && own.owner == self && !own.scoped, "the thread's own cache holds the slot");
                pool.runWithThreadCache(() -> {
                    assertEquals(own, caches.frontSlot(self), "the task's cache does not take the slot");
                    PoolThreadCache bound = caches.current();
                    assertTrue(bound != own && bound.scoped && bound.owner == self, "the task is served by its own cache");
                });
                assertEquals(own, caches.frontSlot(self));
                assertEquals(own, caches.current(), "the own cache answers again");
            });
        }
    }

    @Test
    void manyVirtualThreads_withoutBinding_shareABoundedSetOfStripes() throws InterruptedException {
        try (SegmentPool pool = smallPool().build()) {
            AtomicInteger maxCaches = new AtomicInteger();
            onVirtualThreads(100_000, id -> {
                MemorySegment segment = pool.allocate(id % 3000);
                Patterns.fill(segment, id);
                Patterns.verify(segment, id);
                pool.free(segment);
                if (id % 5000 == 0) {
                    maxCaches.accumulateAndGet(pool.metrics().threadCaches(), Math::max);
                }
            });
            assertEquals(0, maxCaches.get(), "100,000 virtual threads share the pool's stripes: no cache each");
            PoolMetrics after = pool.metrics();
            assertEquals(0, after.activeBytes());
            assertTrue(after.cachedBytes() > 0, "the stripes keep freed units for the next virtual thread");
            assertEquals(after.reservedBytes(), after.activeBytes() + after.cachedBytes() + after.freeBytes());
            pool.trim();
            assertEquals(0, pool.metrics().cachedBytes(), "trim() empties the stripes");
            Thread.ofVirtual().start(() -> pool.runWithThreadCache(() -> {
                pool.free(pool.allocate(64));
                assertEquals(1, pool.metrics().threadCaches(), "inside the task the virtual thread has a cache");
                assertTrue(pool.metrics().cachedBytes() > 0);
            })).join();
            assertEquals(0, pool.metrics().threadCaches());
        }
    }

    @Test
    void virtualThreads_allocatingThroughABudget_useTheStripes_andTheBudgetOwnsEveryUnit() {
        try (SegmentPool pool = smallPool().build(); MemoryBudget budget = pool.newBudget("tasks", 1L << 30)) {
            onVirtualThreads(20_000, id -> {
                MemorySegment segment = budget.allocate(1 + id % 3000);
                Patterns.fill(segment, id);
                if (id % 100 == 0) {
                    assertThrows(IllegalArgumentException.class, () -> pool.free(segment),
                            "a budget's unit, even one from a shared stripe, is freed through its budget only");
                }
                Patterns.verify(segment, id);
                budget.free(segment);
            });
            assertEquals(0, budget.usedBytes());
            assertTrue(budget.peakBytes() > 0);
            PoolMetrics after = pool.metrics();
            assertEquals(0, after.threadCaches(), "virtual threads make no cache of their own");
            assertEquals(0, after.activeBytes());
            assertTrue(after.cachedBytes() > 0, "the units went back to the stripes");
        }
    }

    @Test
    void virtualThread_atTheMemoryLimit_getsTheLimitError_andThePoolIsUnchanged() throws InterruptedException {
        try (SegmentPool pool = smallPool().maxMemory(CHUNK).build()) {
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread.ofVirtual().start(() -> {
                try {
                    MemorySegment whole = pool.allocate(CHUNK); // the one chunk the limit allows
                    long reserved = pool.metrics().reservedBytes();
                    assertThrows(MemoryLimitExceededException.class, () -> pool.allocate(64),
                            "a stripe's refill needs a second chunk");
                    assertEquals(reserved, pool.metrics().reservedBytes());
                    assertEquals(0, pool.metrics().cachedBytes());
                    pool.free(whole);
                    MemorySegment small = pool.allocate(64); // the room is back: the stripe refills
                    Patterns.fill(small, 7);
                    Patterns.verify(small, 7);
                    pool.free(small);
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }).join();
            assertNull(failure.get());
            assertEquals(0, pool.metrics().activeBytes());
        }
    }

    // ---- cross-thread frees ----

    @Test
    void producerConsumer_everyFreeOnAnotherThread_contentsIntact_andBalancedAtTheEnd() throws InterruptedException {
        try (SegmentPool pool = smallPool().arenas(2).build()) {
            int items = 20_000;
            BlockingQueue<MemorySegment> queue = new ArrayBlockingQueue<>(128);
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread producer = Thread.ofPlatform().start(() -> {
                try {
                    SplittableRandom random = new SplittableRandom(11);
                    for (int id = 0; id < items; id++) {
                        MemorySegment segment = pool.allocate(random.nextInt(0, 40_000));
                        Patterns.fill(segment, id);
                        queue.put(segment);
                    }
                    pool.trimCurrentThreadCache();
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            });
            Thread consumer = Thread.ofPlatform().start(() -> {
                try {
                    for (int id = 0; id < items; id++) {
                        MemorySegment segment = queue.take();
                        Patterns.verify(segment, id);
                        pool.free(segment);
                    }
                    pool.trimCurrentThreadCache();
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            });
            producer.join();
            consumer.join();
            assertNull(failure.get());
            PoolMetrics after = pool.metrics();
            assertEquals(0, after.activeBytes());
            assertEquals(0, after.cachedBytes());
            assertEquals(after.reservedBytes(), after.freeBytes());
            assertTrue(after.cacheHits() > 0, "the producer's cache served allocations");
            for (PoolArena arena : pool.arenas()) {
                assertTrue(arena.checkConsistency());
            }
        }
    }

    /**
     * Two live threads whose ids share a slot of the cache lookup's front table each get their own
     * cache: the second falls back to the ThreadLocal, and neither is ever handed the other's units.
     */
    @Test
    void threadsSharingALookupSlot_eachUseTheirOwnCache() throws Exception {
        try (SegmentPool pool = SegmentPool.builder().name("shared-slot").pageSize(4096).chunkSize(1 << 16).build()) {
            CountDownLatch firstReady = new CountDownLatch(1);
            CountDownLatch done = new CountDownLatch(1);
            AtomicReference<Long> firstAddress = new AtomicReference<>();
            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread first = Thread.ofPlatform().uncaughtExceptionHandler((t, e) -> failure.set(e)).start(() -> {
                MemorySegment held = pool.allocate(96);
                pool.free(held); // now the top of this thread's cache
                firstAddress.set(held.address());
                firstReady.countDown();
                try {
                    done.await();
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
                MemorySegment again = pool.allocate(96);
                pool.free(again);
                assertEquals(firstAddress.get(), again.address(), "its own cache, untouched");
            });
            firstReady.await();
            List<Long> seen = new ArrayList<>();
            Runnable body = () -> {
                for (int round = 0; round < 50; round++) {
                    MemorySegment mine = pool.allocate(96);
                    seen.add(mine.address());
                    pool.free(mine);
                }
            };
            Thread colliding = null;
            for (int i = 0; i < 4096 && colliding == null; i++) { // ids are handed out in order
                Thread candidate = Thread.ofPlatform().unstarted(body);
                if ((candidate.threadId() & 255) == (first.threadId() & 255)) {
                    colliding = candidate;
                }
            }
            assertTrue(colliding != null, "no thread id in the same slot");
            colliding.start();
            colliding.join();
            done.countDown();
            first.join();
            assertNull(failure.get());
            assertFalse(seen.contains(firstAddress.get()), "the colliding thread was handed the other thread's unit");
            assertEquals(1, seen.stream().distinct().count(), "its own cache serves it, last in first out");
        }
    }
}
