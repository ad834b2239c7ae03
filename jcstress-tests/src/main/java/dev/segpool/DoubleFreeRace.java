package dev.segpool;

import java.lang.foreign.MemorySegment;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.III_Result;

import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

/**
 * Two threads free the same segment at once. Property: exactly one free succeeds, the other gets
 * IllegalArgumentException, and the pool's active bytes return to zero (the unit is not returned twice).
 */
@JCStressTest
@Outcome(id = {"1, 0, 0", "0, 1, 0"}, expect = ACCEPTABLE, desc = "one free won, the other was rejected")
@Outcome(expect = FORBIDDEN, desc = "both frees succeeded, both failed, or the pool lost count")
@State
public class DoubleFreeRace {
    private final SegmentPool pool = SegmentPool.builder().pageSize(4096).chunkSize(32768).arenas(1)
            .threadLocalCaches(false).build();
    private final MemorySegment segment = pool.allocate(64);

    private int tryFree() {
        try {
            pool.free(segment);
            return 1;
        } catch (IllegalArgumentException e) {
            return 0;
        }
    }

    @Actor
    public void first(III_Result r) {
        r.r1 = tryFree();
    }

    @Actor
    public void second(III_Result r) {
        r.r2 = tryFree();
    }

    @Arbiter
    public void check(III_Result r) {
        r.r3 = (int) pool.metrics().activeBytes();
        pool.close();
    }
}
