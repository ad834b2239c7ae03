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
 * {@link MemoryBudget}'s protocols under races: a budget's use changes only by compare-and-set, never
 * above its limit (a charge refused higher up is taken back from the budgets below it); a charge writes
 * the use and then reads the budget's state while {@code close()} writes the state and then reads the
 * use, so an allocation racing close either counts (and close throws) or fails and charges nothing;
 * and a reallocate claims its unit as a free does, so of the two racing on one segment one takes it.
 *
 * <p>Result fields: {@code r1} and {@code r2} are the two actors' calls (1: returned; 0: threw
 * {@link IllegalArgumentException}; 2: threw {@link IllegalStateException}; 3: threw
 * {@link MemoryLimitExceededException}; 9: threw anything else); {@code r3} is 1 when the arbiter
 * found the books right (each race says what it checks) and 0 otherwise. Pools are tiny (4 KiB pages,
 * 32 KiB chunks, one arena, no thread-local caches) and every arbiter closes its pool.
 */
public final class BudgetRaces {
    private BudgetRaces() {}

    static final int RETURNED = 1;
    static final int IAE = 0;
    static final int ISE = 2;
    static final int LIMIT = 3;
    static final int OTHER = 9;

    /** What a call's exception stands for in a result field. */
    static int thrown(Throwable t) {
        return t instanceof MemoryLimitExceededException ? LIMIT
                : t instanceof IllegalArgumentException ? IAE
                : t instanceof IllegalStateException ? ISE : OTHER;
    }

    /** Allocates 64 bytes from {@code budget} and fills them with {@code pattern}; null when refused. */
    static MemorySegment allocate(MemoryBudget budget, byte pattern, int[] outcome) {
        try {
            MemorySegment segment = StressPools.fill(budget.allocate(StressPools.SMALL), pattern);
            outcome[0] = RETURNED;
            return segment;
        } catch (Throwable t) {
            outcome[0] = thrown(t);
            return null;
        }
    }

    /**
     * {@code close()} of a budget races a 64-byte allocation from it. Property: exactly one of them
     * succeeds. Either the allocation's charge came first: it is counted, close throws
     * {@link IllegalStateException} saying the budget holds 64 bytes, and the budget stays open (the
     * arbiter frees the segment and closes it); or close came first: the allocation throws
     * {@code IllegalStateException} and nothing stays charged, neither to the budget nor to its parent,
     * whose peak stays 0. {@code r3}: the uses (and the parent's peak) agree with the outcome, the
     * segment holds what was written, and the pool holds nothing at the end.
     */
    @JCStressTest
    @Outcome(id = "2, 1, 1", expect = ACCEPTABLE, desc = "the allocation was charged first: close threw naming 64 bytes held")
    @Outcome(id = "1, 2, 1", expect = ACCEPTABLE, desc = "close came first: the allocation threw IllegalStateException, nothing charged")
    @Outcome(expect = FORBIDDEN, desc = "both succeeded, both failed, another exception or message, or a use left behind")
    @State
    public static class CloseWhileAllocate {
        final SegmentPool pool = StressPools.tiny().build();
        final MemoryBudget parent = pool.newBudget("tenant", 1 << 20);
        final MemoryBudget budget = parent.newBudget("query", 1 << 20);
        MemorySegment segment;

        @Actor
        public void close(III_Result r) {
            try {
                budget.close();
                r.r1 = RETURNED;
            } catch (IllegalStateException e) {
                r.r1 = e.getMessage().contains("budget 'tenant/query' cannot close: it holds 64 bytes") ? ISE : OTHER;
            } catch (Throwable t) {
                r.r1 = OTHER;
            }
        }

        @Actor
        public void allocate(III_Result r) {
            int[] outcome = new int[1];
            segment = BudgetRaces.allocate(budget, (byte) 0x5A, outcome);
            r.r2 = outcome[0];
        }

        @Arbiter
        public void check(III_Result r) {
            boolean right;
            if (r.r1 == RETURNED) {
                right = segment == null && budget.used() == 0 && parent.used() == 0 && parent.peak() == 0
                        && pool.metrics().activeBytes() == 0;
            } else {
                right = segment != null && budget.used() == 64 && parent.used() == 64
                        && StressPools.holds(segment, (byte) 0x5A);
                if (right) {
                    budget.free(segment);
                    budget.close();
                    right = parent.used() == 0 && pool.metrics().activeBytes() == 0;
                }
            }
            r.r3 = bit(right && StressPools.consistent(pool));
            pool.close();
        }
    }

    /**
     * Two 64-byte allocations from one budget with room for only one (limit 100). Property: the use is
     * changed by compare-and-set and never above the limit, so exactly one allocation succeeds and the
     * other throws {@link MemoryLimitExceededException}. {@code r3}: the budget holds 64 bytes, its
     * peak is 64, the winner's segment holds its pattern, and after the free it holds 0.
     */
    @JCStressTest
    @Outcome(id = {"1, 3, 1", "3, 1, 1"}, expect = ACCEPTABLE, desc = "one allocation took the room, the other was refused at the limit")
    @Outcome(expect = FORBIDDEN, desc = "both succeeded (the limit crossed), both were refused, or the use is wrong")
    @State
    public static class TwoAllocatesOneRoom {
        final SegmentPool pool = StressPools.tiny().build();
        final MemoryBudget budget = pool.newBudget("tight", 100);
        MemorySegment first;
        MemorySegment second;

        @Actor
        public void first(III_Result r) {
            int[] outcome = new int[1];
            first = allocate(budget, (byte) 1, outcome);
            r.r1 = outcome[0];
        }

        @Actor
        public void second(III_Result r) {
            int[] outcome = new int[1];
            second = allocate(budget, (byte) 2, outcome);
            r.r2 = outcome[0];
        }

        @Arbiter
        public void check(III_Result r) {
            MemorySegment won = first != null ? first : second;
            boolean right = (first == null) != (second == null) && budget.used() == 64 && budget.peak() == 64
                    && StressPools.holds(won, (byte) (first != null ? 1 : 2));
            if (right) {
                budget.free(won);
                right = budget.used() == 0 && pool.metrics().activeBytes() == 0;
            }
            r.r3 = bit(right);
            pool.close();
        }
    }

    /**
     * Two 64-byte allocations from two sibling budgets (limits 1 MiB) whose parent has room for only
     * one (limit 100). Property: each child takes the charge, then the parent; the parent refuses one,
     * whose charge is taken back from its child before it throws {@link MemoryLimitExceededException}
     * naming the parent. {@code r3}: the parent holds 64 bytes and so does the winning child, the
     * loser holds 0 and its peak is 0 (a charge taken back does not count), and every use is 0 after
     * the winner's free.
     */
    @JCStressTest
    @Outcome(id = {"1, 3, 1", "3, 1, 1"}, expect = ACCEPTABLE, desc = "one child's allocation took the parent's room, the other was refused by the parent")
    @Outcome(expect = FORBIDDEN, desc = "both succeeded (the parent's limit crossed), both were refused, or a use or peak is wrong")
    @State
    public static class SiblingsShareParentRoom {
        final SegmentPool pool = StressPools.tiny().build();
        final MemoryBudget parent = pool.newBudget("tenant", 100);
        final MemoryBudget a = parent.newBudget("a", 1 << 20);
        final MemoryBudget b = parent.newBudget("b", 1 << 20);
        MemorySegment fromA;
        MemorySegment fromB;

        @Actor
        public void first(III_Result r) {
            int[] outcome = new int[1];
            fromA = allocate(a, (byte) 1, outcome);
            r.r1 = outcome[0];
        }

        @Actor
        public void second(III_Result r) {
            int[] outcome = new int[1];
            fromB = allocate(b, (byte) 2, outcome);
            r.r2 = outcome[0];
        }

        @Arbiter
        public void check(III_Result r) {
            boolean right = (fromA == null) != (fromB == null) && parent.used() == 64 && parent.peak() == 64;
            if (right) {
                MemoryBudget winner = fromA != null ? a : b;
                MemoryBudget loser = fromA != null ? b : a;
                MemorySegment won = fromA != null ? fromA : fromB;
                right = winner.used() == 64 && winner.peak() == 64 && loser.used() == 0 && loser.peak() == 0
                        && StressPools.holds(won, (byte) (fromA != null ? 1 : 2));
                winner.free(won);
                right &= parent.used() == 0 && winner.used() == 0 && pool.metrics().activeBytes() == 0;
            }
            r.r3 = bit(right);
            pool.close();
        }
    }

    /**
     * A budget's reallocate of a 64-byte segment to 256 bytes (another size class: a move) races a
     * free of the same segment through the budget. Property: both claim the unit with one
     * compare-and-exchange, so exactly one succeeds and the other throws
     * {@link IllegalArgumentException}; after a move the old address is free, so a free that comes
     * later is refused too. {@code r3}: when the reallocate won, its result holds the 64 bytes written;
     * after the arbiter frees it, the budget holds 0, the pool has nothing active, its chunk's
     * bookkeeping agrees with its queues, and two new 64-byte allocations are distinct (a unit given
     * back twice would be handed out twice).
     */
    @JCStressTest
    @Outcome(id = "1, 0, 1", expect = ACCEPTABLE, desc = "the reallocate took the segment (and moved it); the free was refused")
    @Outcome(id = "0, 1, 1", expect = ACCEPTABLE, desc = "the free took the segment; the reallocate was refused")
    @Outcome(expect = FORBIDDEN, desc = "both succeeded (the unit taken twice), both were refused, another exception, or the books are wrong")
    @State
    public static class ReallocateMoveWhileFree {
        final SegmentPool pool = StressPools.tiny().build();
        final MemoryBudget budget = pool.newBudget("buffers", 1 << 20);
        final MemorySegment segment = StressPools.fill(budget.allocate(StressPools.SMALL), (byte) 0x33);
        MemorySegment result;

        @Actor
        public void reallocate(III_Result r) {
            try {
                result = budget.reallocate(segment, 256);
                r.r1 = RETURNED;
            } catch (Throwable t) {
                r.r1 = thrown(t);
            }
        }

        @Actor
        public void free(III_Result r) {
            try {
                budget.free(segment);
                r.r2 = RETURNED;
            } catch (Throwable t) {
                r.r2 = thrown(t);
            }
        }

        @Arbiter
        public void check(III_Result r) {
            boolean right = true;
            if (r.r1 == RETURNED && r.r2 == IAE) {
                right = result.address() != segment.address() && budget.used() == 256
                        && StressPools.holds(result.asSlice(0, StressPools.SMALL), (byte) 0x33);
                budget.free(result);
            }
            right &= budget.used() == 0 && pool.metrics().activeBytes() == 0 && StressPools.consistent(pool);
            r.r3 = bit(right && DoubleFreeRaces.distinctReallocations(pool, StressPools.SMALL));
            pool.close();
        }
    }

    /**
     * A budget's reallocate of a 4-page run to 5 pages, which grows in place (the pages after it are
     * free), races a free of the same segment through the budget. Property: when the two overlap, one
     * claims the unit and the other throws {@link IllegalArgumentException}; when the free comes after
     * the reallocate finished, it frees the result, which starts at the same address: both succeed.
     * Never both refused. {@code r3}: a result has the old address and holds the bytes written; once
     * it is freed (by the free, or by the arbiter), the budget holds 0 and the chunk is whole again
     * (nothing active, all pages free, bookkeeping consistent).
     */
    @JCStressTest
    @Outcome(id = "1, 0, 1", expect = ACCEPTABLE, desc = "the reallocate took the run and grew it in place; the free was refused")
    @Outcome(id = "0, 1, 1", expect = ACCEPTABLE, desc = "the free took the run; the reallocate was refused")
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "the reallocate finished first; the free then freed its in-place result")
    @Outcome(expect = FORBIDDEN, desc = "both refused, another exception, a result elsewhere, or the books are wrong")
    @State
    public static class ReallocateInPlaceWhileFree {
        static final long GROWN = StressPools.RUN + StressPools.PAGE_SIZE;
        final SegmentPool pool = StressPools.tiny().build();
        final MemoryBudget budget = pool.newBudget("buffers", 1 << 20);
        final MemorySegment segment = StressPools.fill(budget.allocate(StressPools.RUN), (byte) 0x44);
        MemorySegment result;

        @Actor
        public void reallocate(III_Result r) {
            try {
                result = budget.reallocate(segment, GROWN);
                r.r1 = RETURNED;
            } catch (Throwable t) {
                r.r1 = thrown(t);
            }
        }

        @Actor
        public void free(III_Result r) {
            try {
                budget.free(segment);
                r.r2 = RETURNED;
            } catch (Throwable t) {
                r.r2 = thrown(t);
            }
        }

        @Arbiter
        public void check(III_Result r) {
            boolean right = true;
            if (r.r1 == RETURNED) {
                right = result.address() == segment.address();
                if (r.r2 == IAE) {
                    right &= budget.used() == GROWN && StressPools.holds(result.asSlice(0, StressPools.RUN), (byte) 0x44);
                    budget.free(result);
                }
            }
            PoolMetrics m = pool.metrics();
            right &= budget.used() == 0 && m.activeBytes() == 0 && m.freeBytes() == StressPools.CHUNK_SIZE
                    && StressPools.consistent(pool);
            r.r3 = bit(right);
            pool.close();
        }
    }

    /**
     * The pool's own reallocate of a 5-page run to 4 pages, which shrinks it in place (its last page
     * goes back to the chunk), races the pool's free of the same segment; no budget. Property: as for
     * {@link ReallocateInPlaceWhileFree}: one claims the run when they overlap, the other throws
     * {@link IllegalArgumentException}; a free after the reallocate finished frees the 4-page result;
     * never both refused. A free that claimed the run with the handle it read before the reallocate
     * resized it would give back 5 pages, one of them free already. {@code r3}: a result has the old
     * address and holds the bytes written; once it is freed, the chunk is whole again (nothing active,
     * all pages free, bookkeeping consistent).
     */
    @JCStressTest
    @Outcome(id = "1, 0, 1", expect = ACCEPTABLE, desc = "the reallocate took the run and shrank it in place; the free was refused")
    @Outcome(id = "0, 1, 1", expect = ACCEPTABLE, desc = "the free took the run; the reallocate was refused")
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "the reallocate finished first; the free then freed its in-place result")
    @Outcome(expect = FORBIDDEN, desc = "both refused, another exception, a result elsewhere, or the chunk's books are wrong")
    @State
    public static class PoolShrinkInPlaceWhileFree {
        static final long RUN5 = StressPools.RUN + StressPools.PAGE_SIZE;
        final SegmentPool pool = StressPools.tiny().build();
        final MemorySegment segment = StressPools.fill(pool.allocate(RUN5), (byte) 0x55);
        MemorySegment result;

        @Actor
        public void reallocate(III_Result r) {
            try {
                result = pool.reallocate(segment, StressPools.RUN);
                r.r1 = RETURNED;
            } catch (Throwable t) {
                r.r1 = thrown(t);
            }
        }

        @Actor
        public void free(III_Result r) {
            try {
                pool.free(segment);
                r.r2 = RETURNED;
            } catch (Throwable t) {
                r.r2 = thrown(t);
            }
        }

        @Arbiter
        public void check(III_Result r) {
            boolean right = true;
            if (r.r1 == RETURNED) {
                right = result.address() == segment.address();
                if (r.r2 == IAE) {
                    right &= StressPools.holds(result, (byte) 0x55);
                    pool.free(result);
                }
            }
            PoolMetrics m = pool.metrics();
            right &= m.activeBytes() == 0 && m.freeBytes() == StressPools.CHUNK_SIZE && StressPools.consistent(pool);
            r.r3 = bit(right);
            pool.close();
        }
    }
}
