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

/**
 * Two threads free the same segment at once. A free claims its unit with one compare-and-exchange on
 * the unit's {@link UnitState} (a huge allocation: one removal from a concurrent map), so exactly one
 * free succeeds and the other is rejected with {@link IllegalArgumentException}, whatever the kind of
 * allocation and wherever the winner puts the unit. Each arbiter then checks that the unit went back
 * exactly once: nothing left active, counts and free pages exact, and (for pooled units) two new
 * allocations get different addresses, which a unit returned twice would not.
 */
public final class DoubleFreeRaces {
    private DoubleFreeRaces() {}

    /** Frees of one small element, straight into its subpage (no caches). */
    @JCStressTest
    @Outcome(id = {"1, 0, 1", "0, 1, 1"}, expect = ACCEPTABLE, desc = "one free won, the other was rejected")
    @Outcome(expect = FORBIDDEN, desc = "both frees succeeded, both failed, or the element came back twice")
    @State
    public static class SmallElement {
        final SegmentPool pool = StressPools.tiny().build();
        final MemorySegment segment = pool.allocate(StressPools.SMALL);

        @Actor
        public void first(III_Result r) {
            r.r1 = StressPools.tryFree(pool, segment);
        }

        @Actor
        public void second(III_Result r) {
            r.r2 = StressPools.tryFree(pool, segment);
        }

        @Arbiter
        public void check(III_Result r) {
            boolean once = pool.metrics().activeBytes() == 0 && StressPools.usedElements(pool, StressPools.SMALL) == 0;
            r.r3 = bit(once && distinctReallocations(pool, StressPools.SMALL));
            pool.close();
        }
    }

    /** Frees of one 4-page run, straight into its chunk (no caches). */
    @JCStressTest
    @Outcome(id = {"1, 0, 1", "0, 1, 1"}, expect = ACCEPTABLE, desc = "one free won, the other was rejected")
    @Outcome(expect = FORBIDDEN, desc = "both frees succeeded, both failed, or the run came back twice")
    @State
    public static class NormalRun {
        final SegmentPool pool = StressPools.tiny().build();
        final MemorySegment segment = pool.allocate(StressPools.RUN);

        @Actor
        public void first(III_Result r) {
            r.r1 = StressPools.tryFree(pool, segment);
        }

        @Actor
        public void second(III_Result r) {
            r.r2 = StressPools.tryFree(pool, segment);
        }

        @Arbiter
        public void check(III_Result r) {
            PoolMetrics m = pool.metrics();
            boolean once = m.activeBytes() == 0 && m.freeBytes() == StressPools.CHUNK_SIZE && StressPools.consistent(pool);
            r.r3 = bit(once && distinctReallocations(pool, StressPools.RUN) && m.chunks() == 1);
            pool.close();
        }
    }

    /**
     * Frees of one small element by two threads that each run under a scoped cache of their own: the
     * winner pushes the unit into its cache, which gives it back to the arena when the task ends.
     */
    @JCStressTest
    @Outcome(id = {"1, 0, 1", "0, 1, 1"}, expect = ACCEPTABLE, desc = "one free won (into its cache), the other was rejected")
    @Outcome(expect = FORBIDDEN, desc = "both frees succeeded, both failed, or the element came back twice")
    @State
    public static class IntoThreadCaches {
        final SegmentPool pool = StressPools.tiny().build();
        final MemorySegment segment = pool.allocate(StressPools.SMALL);

        @Actor
        public void first(III_Result r) {
            pool.runWithThreadCache(() -> r.r1 = StressPools.tryFree(pool, segment));
        }

        @Actor
        public void second(III_Result r) {
            pool.runWithThreadCache(() -> r.r2 = StressPools.tryFree(pool, segment));
        }

        @Arbiter
        public void check(III_Result r) {
            PoolMetrics m = pool.metrics();
            boolean once = m.activeBytes() == 0 && m.cachedBytes() == 0 && m.threadCaches() == 0
                    && StressPools.usedElements(pool, StressPools.SMALL) == 0;
            r.r3 = bit(once && distinctReallocations(pool, StressPools.SMALL));
            pool.close();
        }
    }

    /** Frees of one huge allocation (a dedicated native segment above the chunk size). */
    @JCStressTest
    @Outcome(id = {"1, 0, 1", "0, 1, 1"}, expect = ACCEPTABLE, desc = "one free won, the other was rejected")
    @Outcome(expect = FORBIDDEN, desc = "both frees succeeded, both failed, or the bytes were given back twice")
    @State
    public static class Huge {
        final SegmentPool pool = StressPools.tiny().build();
        final MemorySegment segment = pool.allocate(StressPools.CHUNK_SIZE + 1);

        @Actor
        public void first(III_Result r) {
            r.r1 = StressPools.tryFree(pool, segment);
        }

        @Actor
        public void second(III_Result r) {
            r.r2 = StressPools.tryFree(pool, segment);
        }

        @Arbiter
        public void check(III_Result r) {
            PoolMetrics m = pool.metrics();
            r.r3 = bit(m.reservedBytes() == 0 && m.hugeBytes() == 0 && m.hugeDeallocations() == 1);
            pool.close();
        }
    }

    /** Two allocations of {@code byteSize} after the race: a unit returned twice would be handed out twice. */
    static boolean distinctReallocations(SegmentPool pool, long byteSize) {
        MemorySegment a = pool.allocate(byteSize);
        MemorySegment b = pool.allocate(byteSize);
        return StressPools.disjoint(a, b);
    }
}
