package dev.segpool;

import static dev.segpool.StressPools.bit;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import java.lang.foreign.MemorySegment;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;
import org.openjdk.jcstress.infra.results.IIII_Result;

/**
 * Races around a {@link PoolThreadCache}: its entries flushed back to the arena while other threads
 * allocate there, and threads that are not its owner reaching it through an inherited scoped binding.
 * The caches hold 8 small entries per class. A cache attached for a test refills 4 at a time (64-byte
 * class); a task's scoped cache starts with refills of one unit.
 */
public final class ThreadCacheRaces {
    private ThreadCacheRaces() {}

    /**
     * The owner of a scoped cache trims it (a first refill of one unit, element 0; one allocate/free;
     * then {@code trimCurrentThreadCache}) while a thread without a cache allocates an element of the
     * same class from the arena. Property: the arena never hands out an element the cache still holds.
     * The other thread's element b is element 0 (before the refill, or after the trim) or element 1
     * (while the cache held 0); it keeps its pattern, and after the task ends b is the only element in
     * use.
     */
    @JCStressTest
    @Outcome(id = "0, 1, 1", expect = ACCEPTABLE, desc = "b allocated before the refill or after the trim gave 0 back")
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "b allocated while the cache held element 0")
    @Outcome(expect = FORBIDDEN, desc = "b was also in the cache, its pattern was overwritten, or a count is off")
    @State
    public static class TrimWhileAllocate {
        final SegmentPool pool = StressPools.tiny().build();
        MemorySegment b;

        @Actor
        public void owner() {
            pool.runWithThreadCache(() -> {
                MemorySegment a = StressPools.fill(pool.allocate(StressPools.SMALL), (byte) 0xA1);
                pool.free(a);
                pool.trimCurrentThreadCache();
            });
        }

        @Actor
        public void other() {
            b = StressPools.fill(pool.allocate(StressPools.SMALL), (byte) 0xB2);
        }

        @Arbiter
        public void check(III_Result r) {
            r.r1 = StressPools.elementIndex(b, StressPools.SMALL);
            r.r2 = bit(StressPools.holds(b, (byte) 0xB2));
            PoolMetrics m = pool.metrics();
            r.r3 = bit(StressPools.usedElements(pool, StressPools.SMALL) == 1 && m.cachedBytes() == 0
                    && m.activeBytes() == StressPools.SMALL && m.threadCaches() == 0 && StressPools.consistent(pool));
            pool.close();
        }
    }

    /**
     * A cache whose owner has ended is released (as the {@link java.lang.ref.Cleaner} does, from
     * another thread) while a thread without a cache allocates a small element and a 4-page run in the
     * same arena. The cache holds small elements 0-3 (page 0) and the free run at pages 1-4. Property:
     * the allocating thread never gets a unit the cache holds; b is element 0 or 4, the run r is
     * pages 1-4 of the same chunk (1) or comes from a new chunk (2); both keep their patterns, and
     * afterwards exactly b and r are in use, no cache is left and the bound-cache count is 0.
     */
    @JCStressTest
    @Outcome(id = "0, 1, 1, 1", expect = ACCEPTABLE, desc = "release first: b and r reuse what the cache gave back")
    @Outcome(id = "4, 2, 1, 1", expect = ACCEPTABLE, desc = "allocations first: b is the next element, r needs a new chunk")
    @Outcome(id = "4, 1, 1, 1", expect = ACCEPTABLE, desc = "b before the release, r after it")
    @Outcome(id = "0, 2, 1, 1", expect = ACCEPTABLE, desc = "b after the small entries went back, r before the run did")
    @Outcome(expect = FORBIDDEN, desc = "a unit held by the cache was handed out, a pattern was overwritten, or a count is off")
    @State
    public static class ReleaseWhileAllocate {
        final SegmentPool pool = StressPools.tiny().build();
        final PoolThreadCache cache = pool.attach(Thread.currentThread());
        MemorySegment b;
        MemorySegment r;

        public ReleaseWhileAllocate() {
            ScopedValue.where(pool.scopedCache(), cache).run(() -> {
                pool.free(pool.allocate(StressPools.SMALL));
                pool.free(pool.allocate(StressPools.RUN));
            });
        }

        @Actor
        public void cleaner() {
            cache.release();
        }

        @Actor
        public void other() {
            b = StressPools.fill(pool.allocate(StressPools.SMALL), (byte) 0xB2);
            r = StressPools.fill(pool.allocate(StressPools.RUN), (byte) 0xC3);
        }

        @Arbiter
        public void check(IIII_Result result) {
            result.r1 = StressPools.elementIndex(b, StressPools.SMALL);
            long chunk = StressPools.chunkOf(b, StressPools.CHUNK_SIZE);
            if (StressPools.chunkOf(r, StressPools.CHUNK_SIZE) != chunk) {
                result.r2 = 2;
            } else if (StressPools.offsetInChunk(r, StressPools.CHUNK_SIZE) == StressPools.PAGE_SIZE) {
                result.r2 = 1;
            }
            result.r3 = bit(StressPools.holds(b, (byte) 0xB2) && StressPools.holds(r, (byte) 0xC3));
            PoolMetrics m = pool.metrics();
            result.r4 = bit(StressPools.usedElements(pool, StressPools.SMALL) == 1 && m.cachedBytes() == 0
                    && m.activeBytes() == StressPools.SMALL + StressPools.RUN && m.threadCaches() == 0
                    && StressPools.boundCaches(pool) == 0 && StressPools.consistent(pool));
            pool.close();
        }
    }

    /**
     * Two forks of a task reach their parent's scoped cache through the inherited binding (as
     * {@code StructuredTaskScope} forks do; the parent waits in {@code join}). Each allocates a small
     * element and writes it; the first also frees a segment the parent allocated. Property: a thread
     * that does not own a cache never touches it: the parent's cached bytes, hits and misses are
     * unchanged, the forks' elements are none of the cached ones (1-4) and keep their patterns, and the
     * parent's segment went to the arena, not into the cache. The parent is a thread of its own, since
     * JCStress may build a state on one of the actor threads.
     */
    @JCStressTest
    @Outcome(id = "1, 1, 6", expect = ACCEPTABLE, desc = "both forks went to the arena; the cache saw nothing")
    @Outcome(expect = FORBIDDEN, desc = "a fork popped from or pushed into the parent's cache, or an element was handed out twice")
    @State
    public static class ForksReachParentCache {
        final SegmentPool pool = StressPools.tiny().build();
        final MemorySegment parents = pool.allocate(StressPools.SMALL);   // element 0, outside the cache
        final PoolThreadCache cache;
        final long cachedBytes;
        final long hits;
        final long misses;
        MemorySegment s1;
        MemorySegment s2;

        public ForksReachParentCache() {
            PoolThreadCache[] made = new PoolThreadCache[1];
            Thread parent = Thread.ofPlatform().start(() -> {
                PoolThreadCache own = pool.attach(Thread.currentThread());
                ScopedValue.where(pool.scopedCache(), own).run(() ->
                        pool.free(pool.allocate(StressPools.SMALL)));             // cache holds elements 1-4
                made[0] = own;
            });
            StressPools.joinQuietly(parent);
            cache = made[0];
            cachedBytes = cache.cachedBytes();
            hits = cache.hits();
            misses = cache.misses();
        }

        @Actor
        public void fork1() {
            ScopedValue.where(pool.scopedCache(), cache).run(() -> {
                s1 = StressPools.fill(pool.allocate(StressPools.SMALL), (byte) 0x51);
                pool.free(parents);
            });
        }

        @Actor
        public void fork2() {
            ScopedValue.where(pool.scopedCache(), cache).run(() ->
                    s2 = StressPools.fill(pool.allocate(StressPools.SMALL), (byte) 0x52));
        }

        @Arbiter
        public void check(III_Result r) {
            r.r1 = bit(cache.cachedBytes() == cachedBytes && cache.hits() == hits && cache.misses() == misses);
            int i1 = StressPools.elementIndex(s1, StressPools.SMALL);
            int i2 = StressPools.elementIndex(s2, StressPools.SMALL);
            r.r2 = bit(i1 != i2 && (i1 == 0 || i1 > 4) && (i2 == 0 || i2 > 4)
                    && StressPools.holds(s1, (byte) 0x51) && StressPools.holds(s2, (byte) 0x52));
            r.r3 = (int) StressPools.usedElements(pool, StressPools.SMALL);
            cache.release();
            pool.close();
        }
    }

    /**
     * Two virtual threads at once, each started by its actor: one frees a small element x that it took
     * earlier and then allocates a, the other allocates b. Virtual threads have no cache of their own:
     * each call claims one of the pool's shared stripes (a compare-and-set of its claim field) on the
     * fast path, refills it from the arena when empty (on the rare path), and gives it back. Property:
     * a stripe serves one thread at a time, so a and b are different units that both keep their
     * patterns (x's unit may come back as either, but only after its free); when both are freed,
     * nothing is in use, the freed units sit in the stripes, no thread has a cache of its own, and the
     * arena is consistent.
     */
    @JCStressTest
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "a and b are different units, both intact; the pool balances")
    @Outcome(expect = FORBIDDEN, desc = "one unit went to both threads, a pattern was overwritten, or a count is off")
    @State
    public static class VirtualThreadsShareStripes {
        final SegmentPool pool = StressPools.tiny().threadLocalCaches(true).build();
        final MemorySegment x = StressPools.onVirtualThread(
                () -> StressPools.fill(pool.allocate(StressPools.SMALL), (byte) 0x5C));
        MemorySegment a;
        MemorySegment b;

        @Actor
        public void freeThenAllocate() {
            a = StressPools.onVirtualThread(() -> {
                pool.free(x);
                return StressPools.fill(pool.allocate(StressPools.SMALL), (byte) 0xA1);
            });
        }

        @Actor
        public void allocate() {
            b = StressPools.onVirtualThread(() -> StressPools.fill(pool.allocate(StressPools.SMALL), (byte) 0xB2));
        }

        @Arbiter
        public void check(III_Result r) {
            r.r1 = bit(StressPools.disjoint(a, b));
            r.r2 = bit(StressPools.holds(a, (byte) 0xA1) && StressPools.holds(b, (byte) 0xB2));
            StressPools.onVirtualThread(() -> {
                pool.free(a);
                pool.free(b);
                return null;
            });
            PoolMetrics m = pool.metrics();
            r.r3 = bit(m.activeBytes() == 0 && m.cachedBytes() > 0 && m.threadCaches() == 0
                    && StressPools.consistent(pool));
            pool.close();
        }
    }
}
