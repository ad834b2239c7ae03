package dev.segpool;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE_INTERESTING;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.CountDownLatch;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;
import org.openjdk.jcstress.infra.results.IIII_Result;

/**
 * Races on {@link PoolArena#boundCaches}, the counts that spread new thread caches over a pool's
 * arenas (two here). The choice of the arena with the fewest caches is a heuristic read of two
 * counters, so two threads may pick the same arena; what must hold is the bookkeeping: the sum of
 * the counts always equals the number of live caches, and no increment or decrement is lost.
 */
public final class ArenaBindingRaces {
    private ArenaBindingRaces() {}

    /**
     * Two new platform threads make their first allocation at once, each creating its thread-local
     * cache. The threads stay alive until the arbiter has read the counts. Property: the counts add up
     * to 2 and equal the pool's live caches. Each thread reports the arena its cache bound to: (0, 1)
     * or (1, 0) when one saw the other's binding; (0, 0) when both read the counts first; (1, 1)
     * would mean a thread saw a binding nobody made.
     */
    @JCStressTest
    @Outcome(id = {"0, 1, 2, 2", "1, 0, 2, 2"}, expect = ACCEPTABLE, desc = "the second thread saw the first one's binding")
    @Outcome(id = "0, 0, 2, 2", expect = ACCEPTABLE_INTERESTING,
            desc = "both read the counts before either bound: both took arena 0 (the choice is not atomic)")
    @Outcome(expect = FORBIDDEN, desc = "a count was lost or invented, or a cache is not counted")
    @State
    public static class FirstAllocations {
        final SegmentPool pool = SegmentPool.builder().pageSize(StressPools.PAGE_SIZE)
                .chunkSize(StressPools.CHUNK_SIZE).arenas(2).smallCacheSize(8).normalCacheSize(4).build();
        final CountDownLatch end = new CountDownLatch(1);
        Thread t1;
        Thread t2;

        /** Starts a thread that allocates once and then waits for the arbiter; returns its arena. */
        private int newThreadAllocates(Thread[] out) {
            CountDownLatch allocated = new CountDownLatch(1);
            int[] arena = {-1};
            Thread t = Thread.ofPlatform().daemon().start(() -> {
                try {
                    MemorySegment s = pool.allocate(StressPools.SMALL);
                    arena[0] = StressPools.arenaOf(pool, s);
                    pool.free(s);
                } finally {
                    allocated.countDown();
                }
                StressPools.awaitQuietly(end);
            });
            out[0] = t;
            StressPools.awaitQuietly(allocated);
            return arena[0];
        }

        @Actor
        public void thread1(IIII_Result r) {
            Thread[] t = new Thread[1];
            r.r1 = newThreadAllocates(t);
            t1 = t[0];
        }

        @Actor
        public void thread2(IIII_Result r) {
            Thread[] t = new Thread[1];
            r.r2 = newThreadAllocates(t);
            t2 = t[0];
        }

        @Arbiter
        public void check(IIII_Result r) {
            r.r3 = StressPools.boundCaches(pool);
            r.r4 = pool.metrics().threadCaches();
            end.countDown();
            StressPools.joinQuietly(t1);
            StressPools.joinQuietly(t2);
            pool.close();
        }
    }

    /**
     * The cache of an ended thread is released (from the Cleaner's thread) while a new cache is
     * attached. Property: afterwards the counts add up to 1 and equal the live caches; the new cache
     * binds to arena 0 when the release came first, to arena 1 when it saw the old cache still bound.
     */
    @JCStressTest
    @Outcome(id = "0, 1, 1", expect = ACCEPTABLE, desc = "release first: arena 0 had no cache left")
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "attach first: arena 0 still held the old cache")
    @Outcome(expect = FORBIDDEN, desc = "the decrement or the increment was lost")
    @State
    public static class AttachWhileRelease {
        final SegmentPool pool = SegmentPool.builder().pageSize(StressPools.PAGE_SIZE)
                .chunkSize(StressPools.CHUNK_SIZE).arenas(2).threadLocalCaches(false)
                .smallCacheSize(8).normalCacheSize(4).build();
        final PoolThreadCache old = pool.attach(Thread.currentThread());
        PoolThreadCache attached;

        @Actor
        public void cleaner() {
            old.release();
        }

        @Actor
        public void attach() {
            attached = pool.attach(Thread.currentThread());
        }

        @Arbiter
        public void check(III_Result r) {
            r.r1 = attached.arena.index;
            r.r2 = StressPools.boundCaches(pool);
            r.r3 = pool.metrics().threadCaches();
            attached.release();
            pool.close();
        }
    }
}
