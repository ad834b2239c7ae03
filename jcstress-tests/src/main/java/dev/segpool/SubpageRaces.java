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
import org.openjdk.jcstress.infra.results.IIII_Result;

/**
 * Races on one {@link PoolSubpage}: its bitmap, its place in the size class's {@link SubpageList}, and
 * the run it gives back to the chunk when it empties. No thread caches: every free and allocation
 * takes the size-class lock.
 */
public final class SubpageRaces {
    private SubpageRaces() {}

    /**
     * Two threads free the two elements of one subpage (2048-byte class: two elements in a one-page
     * run) while another subpage of the class is listed. Property: both frees succeed, whichever runs
     * second finds the subpage empty and not the only one, unlists it and gives its page back; the
     * class ends with one subpage and one used element, and the chunk with exactly seven free pages.
     */
    @JCStressTest
    @Outcome(id = "2, 1, 1, 1", expect = ACCEPTABLE,
            desc = "both frees landed (either order); the second one gave the emptied subpage's page back")
    @Outcome(expect = FORBIDDEN, desc = "a free was lost or rejected, or the subpage list or page count is off")
    @State
    public static class FreeTwoElements {
        static final int SIZE = 2048;
        final SegmentPool pool = StressPools.tiny().build();
        final MemorySegment kept;
        final MemorySegment a;
        final MemorySegment b;

        public FreeTwoElements() {
            MemorySegment x = pool.allocate(SIZE);
            kept = pool.allocate(SIZE);      // first subpage full
            a = pool.allocate(SIZE);
            b = pool.allocate(SIZE);         // second subpage full
            pool.free(x);                    // first subpage listed again
        }

        @Actor
        public void freeA(IIII_Result r) {
            r.r1 = StressPools.tryFree(pool, a);
        }

        @Actor
        public void freeB(IIII_Result r) {
            r.r2 = StressPools.tryFree(pool, b);
        }

        @Arbiter
        public void check(IIII_Result r) {
            PoolMetrics m = pool.metrics();
            PoolMetrics.SizeClassMetrics c = StressPools.smallClass(m, SIZE);
            r.r1 += r.r2;
            r.r2 = (int) c.usedElements();
            r.r3 = c.subpages();
            r.r4 = bit(StressPools.consistent(pool)
                    && m.freeBytes() == 7L * StressPools.PAGE_SIZE + SIZE
                    && m.activeBytes() == SIZE);
            pool.close();
        }
    }

    /**
     * One thread allocates from a subpage while another frees an element of it. Property: no element
     * is handed out twice. Elements 0 (x, being freed) and 1 (y, live) are taken; the new element z is
     * element 0 if the free came first, else element 2, and never element 1. Each segment carries its
     * own byte pattern; y and z must still hold theirs, and two elements stay in use.
     */
    @JCStressTest
    @Outcome(id = "0, 1, 1, 2", expect = ACCEPTABLE, desc = "free first: z reuses x's element")
    @Outcome(id = "2, 1, 1, 2", expect = ACCEPTABLE, desc = "allocation first: z takes the next free element")
    @Outcome(expect = FORBIDDEN, desc = "an element handed out twice, a pattern overwritten, or a count lost")
    @State
    public static class AllocateWhileFree {
        final SegmentPool pool = StressPools.tiny().build();
        final MemorySegment x = pool.allocate(StressPools.SMALL);
        final MemorySegment y = StressPools.fill(pool.allocate(StressPools.SMALL), (byte) 0x11);
        MemorySegment z;
        int freed;

        @Actor
        public void free() {
            StressPools.fill(x, (byte) 0x33);
            freed = StressPools.tryFree(pool, x);
        }

        @Actor
        public void allocate() {
            z = StressPools.fill(pool.allocate(StressPools.SMALL), (byte) 0x5A);
        }

        @Arbiter
        public void check(IIII_Result r) {
            r.r1 = StressPools.elementIndex(z, StressPools.SMALL);
            r.r2 = freed;
            r.r3 = bit(StressPools.holds(y, (byte) 0x11) && StressPools.holds(z, (byte) 0x5A)
                    && StressPools.disjoint(y, z) && StressPools.consistent(pool));
            r.r4 = (int) StressPools.usedElements(pool, StressPools.SMALL);
            pool.close();
        }
    }
}
