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
 * Races on the runs of one {@link PoolChunk}: a freed run merging with its free neighbours while
 * another thread cuts a run, or two neighbours freed at once. Runs here are normal allocations
 * (4 KiB pages; 16 KiB is a 4-page run), with no thread caches, so both sides take the arena lock.
 * After the race, the free pages counted by the chunk must equal those of its free-run queues
 * ({@link PoolArena#checkConsistency}) and the number the interleaving implies, and live runs must
 * not overlap and must keep their contents.
 */
public final class ChunkRunRaces {
    /** What the freed run A holds when it is freed, and what the allocated run B is written with. */
    private static final byte A_PATTERN = (byte) 0x0A;
    private static final byte B_PATTERN = (byte) 0x0B;

    private ChunkRunRaces() {}

    /** The freeing actor of every race here: writes A (so that a reuse still in flight would show) and frees it. */
    private static void writeAndFree(SegmentPool pool, MemorySegment a) {
        StressPools.fill(a, A_PATTERN);
        pool.free(a);
    }

    /** The allocating actor's run B of {@code bytes}, written with {@link #B_PATTERN}. */
    private static MemorySegment allocateB(SegmentPool pool, int bytes) {
        return StressPools.fill(pool.allocate(bytes), B_PATTERN);
    }

    /**
     * A 16-page chunk holds X (pages 0-3, freed), A (4-7, live), Y (8-11, freed) and Z (12-15, live).
     * One thread frees A, which merges with both free neighbours into pages 0-11; the other allocates
     * an 8-page run B. Property: B fits in the chunk only after the merge (B at pages 0-7 of the same
     * chunk, 4 pages left free: pages 8-11) and otherwise comes from a new chunk (then the old chunk
     * has 12 free pages and the new one 8: 20 in all); B and Z keep their patterns and do not overlap.
     */
    @JCStressTest
    @Outcome(id = "0, 0, 4, 1", expect = ACCEPTABLE, desc = "free first: B cut from the merged run 0-11")
    @Outcome(id = "1, 0, 20, 1", expect = ACCEPTABLE, desc = "allocation first: no 8 free pages in a row yet, B from a new chunk")
    @Outcome(expect = FORBIDDEN, desc = "overlapping runs, a lost merge, or free pages counted wrong")
    @State
    public static class FreeMergesBothSidesWhileAllocate {
        static final int CHUNK = 16 * StressPools.PAGE_SIZE;
        final SegmentPool pool = StressPools.tiny().chunkSize(CHUNK).build();
        final MemorySegment a;
        final MemorySegment z;
        MemorySegment b;

        public FreeMergesBothSidesWhileAllocate() {
            MemorySegment x = pool.allocate(StressPools.RUN);
            a = pool.allocate(StressPools.RUN);
            MemorySegment y = pool.allocate(StressPools.RUN);
            z = StressPools.fill(pool.allocate(StressPools.RUN), (byte) 0x2A);
            pool.free(x);
            pool.free(y);
        }

        @Actor
        public void free() {
            writeAndFree(pool, a);
        }

        @Actor
        public void allocate() {
            b = allocateB(pool, 2 * StressPools.RUN);
        }

        @Arbiter
        public void check(IIII_Result r) {
            r.r1 = bit(StressPools.chunkOf(b, CHUNK) != StressPools.chunkOf(z, CHUNK));
            r.r2 = (int) (StressPools.offsetInChunk(b, CHUNK) / StressPools.PAGE_SIZE);
            PoolMetrics m = pool.metrics();
            r.r3 = (int) (m.freeBytes() / StressPools.PAGE_SIZE);
            r.r4 = bit(StressPools.consistent(pool) && StressPools.disjoint(b, z)
                    && StressPools.holds(b, B_PATTERN) && StressPools.holds(z, (byte) 0x2A)
                    && m.activeBytes() == 3L * StressPools.RUN);
            pool.close();
        }
    }

    /**
     * A 8-page chunk holds A (pages 0-3, live) and the free run 4-7. One thread frees A (which merges
     * with 4-7 into the whole chunk, moving the chunk to the empty list); the other allocates a 4-page
     * run B. Property: B is pages 4-7 (before the free) or pages 0-3 (after it), always in the same
     * chunk, and exactly 4 pages are free afterwards.
     */
    @JCStressTest
    @Outcome(id = "4, 4, 1", expect = ACCEPTABLE, desc = "allocation first: B takes the free run 4-7")
    @Outcome(id = "0, 4, 1", expect = ACCEPTABLE, desc = "free first: A merged into an empty chunk, B cut at page 0")
    @Outcome(expect = FORBIDDEN, desc = "overlapping runs, a new chunk, or free pages counted wrong")
    @State
    public static class FreeMergesRightWhileAllocate {
        final SegmentPool pool = StressPools.tiny().build();
        final MemorySegment a = pool.allocate(StressPools.RUN);
        MemorySegment b;

        @Actor
        public void free() {
            writeAndFree(pool, a);
        }

        @Actor
        public void allocate() {
            b = allocateB(pool, StressPools.RUN);
        }

        @Arbiter
        public void check(III_Result r) {
            r.r1 = (int) (StressPools.offsetInChunk(b, StressPools.CHUNK_SIZE) / StressPools.PAGE_SIZE);
            PoolMetrics m = pool.metrics();
            r.r2 = (int) (m.freeBytes() / StressPools.PAGE_SIZE);
            r.r3 = bit(StressPools.consistent(pool) && m.chunks() == 1 && StressPools.holds(b, B_PATTERN)
                    && m.activeBytes() == StressPools.RUN);
            pool.close();
        }
    }

    /**
     * Two threads free the two 4-page runs that fill an 8-page chunk. Property: whichever free runs
     * second merges with the first into one 8-page run: the chunk is empty, its queues agree with its
     * count, and a chunk-sized run then fits without a new chunk.
     */
    @JCStressTest
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "both frees landed (either order) and merged into one run")
    @Outcome(expect = FORBIDDEN, desc = "a free was rejected, or the two halves did not merge")
    @State
    public static class NeighboursFreedAtOnce {
        final SegmentPool pool = StressPools.tiny().build();
        final MemorySegment a = pool.allocate(StressPools.RUN);
        final MemorySegment b = pool.allocate(StressPools.RUN);

        @Actor
        public void freeA(III_Result r) {
            r.r1 = StressPools.tryFree(pool, a);
        }

        @Actor
        public void freeB(III_Result r) {
            r.r2 = StressPools.tryFree(pool, b);
        }

        @Arbiter
        public void check(III_Result r) {
            PoolMetrics m = pool.metrics();
            boolean empty = m.freeBytes() == StressPools.CHUNK_SIZE && m.activeBytes() == 0 && StressPools.consistent(pool);
            MemorySegment whole = pool.allocate(StressPools.CHUNK_SIZE);
            r.r3 = bit(empty && pool.metrics().chunks() == 1
                    && StressPools.chunkOf(whole, StressPools.CHUNK_SIZE) == StressPools.chunkOf(a, StressPools.CHUNK_SIZE));
            pool.close();
        }
    }

    /**
     * Two arenas. A 16 KiB run A fills half of an 8-page chunk C of one arena; one thread frees A, which
     * leaves C empty in that arena's list, while the other thread (on either arena: the arena of a
     * thread without a cache follows its id) allocates an 8-page run B, which only an empty chunk holds.
     * Property: B is cut from C once A is free (C moving to the allocating thread's arena if that is the
     * other one, under both arenas' locks) and from a new chunk otherwise; the chunk B is in belongs to
     * the allocating thread's arena; both arenas stay consistent; B keeps its pattern, and once B is
     * freed through the chunk's arena nothing is in use.
     */
    @JCStressTest
    @Outcome(id = "1, 1, 1, 1", expect = ACCEPTABLE, desc = "free first: B takes C, which moves to B's arena")
    @Outcome(id = "1, 1, 1, 0", expect = ACCEPTABLE, desc = "free first: B takes C in C's own arena")
    @Outcome(id = "0, 1, 1, [01]", expect = ACCEPTABLE, desc = "allocation first: C not empty yet, B from a new chunk")
    @Outcome(expect = FORBIDDEN, desc = "B's chunk listed in the wrong arena, arenas inconsistent, or B damaged")
    @State
    public static class EmptyChunkMovesWhileAllocate {
        final SegmentPool pool = StressPools.tiny().arenas(2).build();
        final MemorySegment a = pool.allocate(StressPools.RUN);
        final PoolArena arenaOfA = pool.core().registry.find(a.address()).arena;
        MemorySegment b;
        PoolArena arenaOfB;

        @Actor
        public void free() {
            writeAndFree(pool, a);
        }

        @Actor
        public void allocate() {
            b = allocateB(pool, 2 * StressPools.RUN);
            arenaOfB = pool.arenas()[(int) (Thread.currentThread().threadId() % pool.arenas().length)];
        }

        @Arbiter
        public void check(IIII_Result r) {
            PoolChunk chunk = pool.core().registry.find(b.address());
            r.r4 = bit(arenaOfB != arenaOfA);
            r.r1 = bit(StressPools.chunkOf(b, StressPools.CHUNK_SIZE) == StressPools.chunkOf(a, StressPools.CHUNK_SIZE));
            r.r2 = bit(chunk.arena == arenaOfB);
            boolean intact = StressPools.consistent(pool) && StressPools.holds(b, B_PATTERN);
            pool.free(b);
            r.r3 = bit(intact && StressPools.consistent(pool) && pool.metrics().activeBytes() == 0);
            pool.close();
        }
    }
}
