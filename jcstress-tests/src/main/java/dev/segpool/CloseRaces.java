package dev.segpool;

import static dev.segpool.StressPools.bit;
import static org.openjdk.jcstress.annotations.Expect.ACCEPTABLE;
import static org.openjdk.jcstress.annotations.Expect.FORBIDDEN;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import org.openjdk.jcstress.annotations.Actor;
import org.openjdk.jcstress.annotations.Arbiter;
import org.openjdk.jcstress.annotations.JCStressTest;
import org.openjdk.jcstress.annotations.Outcome;
import org.openjdk.jcstress.annotations.State;
import org.openjdk.jcstress.infra.results.IIII_Result;
import org.openjdk.jcstress.infra.results.III_Result;

/**
 * {@code pool.close()} against each operation that touches native memory outside a segment's scope
 * (the {@link Lifecycle} protocol): {@code trim()}, a decay tick, a huge allocation, an allocation that
 * maps a new chunk, and a pooled arena's allocation. Close moves the pool to {@code CLOSING}, waits
 * until no such operation is in flight, releases the memory, then moves to {@code CLOSED}; an
 * operation either runs entirely before the release or backs out with {@link IllegalStateException}.
 *
 * <p>Result fields, in every race: {@code r1} is close (1: returned, 9: threw); {@code r2} is the other
 * thread's operation (1: it succeeded, 2: it threw {@code IllegalStateException}, other values as each
 * race says; 9: anything else was thrown, an {@code AssertionError} such as a purge of a released
 * chunk included); {@code r3} is 1 when the pool holds no native bytes once the arbiter has given back
 * whatever was still held (0: memory leaked). Pools are tiny (4 KiB pages, 32 KiB chunks, one arena,
 * no thread-local caches) and their decay timer is a no-op, so the only tick is the one a race runs.
 */
public final class CloseRaces {
    private CloseRaces() {}

    static final int RETURNED = 1;
    static final int ISE = 2;
    static final int OTHER = 9;

    /** A tiny pool whose decay task is never scheduled (ticks only run when a test calls decayNow()). */
    static PoolBuilder manualDecay() {
        PoolBuilder builder = (PoolBuilder) StressPools.tiny();
        return builder.scheduler((tick, periodNanos) -> new CompletableFuture<Void>());
    }

    /** What a thrown exception stands for in {@code r2}. */
    static int thrown(Throwable t) {
        return t instanceof IllegalStateException ? ISE : OTHER;
    }

    /** Closes the pool; 1 when close returned, 9 when it threw anything. */
    static int close(SegmentPool pool) {
        try {
            pool.close();
            return RETURNED;
        } catch (Throwable t) {
            return OTHER;
        }
    }

    /** 1 when the (closed) pool holds no native bytes any more. */
    static int nothingHeld(SegmentPool pool) {
        return bit(pool.isClosed() && pool.reservedBytes() == 0);
    }

    /**
     * A pool with one chunk in use that has free pages to purge (a 64-byte element pins page 0;
     * pages 1-7 are free) and a second chunk that is empty. Both 4-page runs were freed; the pin stays
     * live until close.
     */
    static MemorySegment pinAndFreeTwoChunks(SegmentPool pool) {
        MemorySegment pin = pool.allocate(StressPools.SMALL);
        MemorySegment first = pool.allocate(StressPools.RUN); // pages 1-4 of chunk A
        MemorySegment second = pool.allocate(StressPools.RUN); // does not fit in A's 3 free pages: chunk B
        pool.free(first);
        pool.free(second);
        return pin;
    }

    /**
     * {@code trim()} (release the empty chunk, purge the free pages of the chunk in use) against
     * close. Property: trim runs as one lifecycle operation, so close releases memory only after trim
     * is done and trim never purges a released chunk ({@link PoolChunk#purge} throws
     * {@code AssertionError}); trim either returns the bytes it released (at least the empty chunk), or
     * throws {@code IllegalStateException} (before it started, or after it ran when the pool began
     * closing meanwhile). Close releases everything: no native bytes left. {@code r2} 0: trim returned
     * having released nothing.
     */
    @JCStressTest
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "trim ran before close released the memory and returned the bytes it gave back")
    @Outcome(id = "1, 2, 1", expect = ACCEPTABLE, desc = "trim threw IllegalStateException: the pool was closing or closed")
    @Outcome(expect = FORBIDDEN, desc = "another exception (a purge after release), a trim that released nothing, or memory left after close")
    @State
    public static class Trim {
        final SegmentPool pool = manualDecay().build();
        final MemorySegment pin = pinAndFreeTwoChunks(pool);

        @Actor
        public void close(III_Result r) {
            r.r1 = CloseRaces.close(pool);
        }

        @Actor
        public void trim(III_Result r) {
            try {
                r.r2 = pool.trim() >= StressPools.CHUNK_SIZE ? RETURNED : 0;
            } catch (Throwable t) {
                r.r2 = thrown(t);
            }
        }

        @Arbiter
        public void check(III_Result r) {
            r.r3 = nothingHeld(pool);
        }
    }

    /**
     * A decay tick against close. The pool's decay time is 0 and its clock is injected: the state
     * builds the pool at time 0, empties chunk B and runs one tick (which records the free pages of
     * chunk A for the next purge), then moves the clock one hour on, so the raced tick has an empty
     * chunk to release and long-free pages to purge. Property: the tick runs as one lifecycle
     * operation; it reads the clock only once it has entered, so {@code r2} tells whether it ran (1)
     * or found the pool closing and did nothing (0); it never purges or releases a chunk close
     * released, and close leaves no native bytes. {@code IllegalStateException} (2) would also be
     * an allowed answer, though a tick does not throw it.
     */
    @JCStressTest
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "the tick ran (released the empty chunk, purged pages) before close released the rest")
    @Outcome(id = "1, 0, 1", expect = ACCEPTABLE, desc = "the tick found the pool closing or closed and did nothing")
    @Outcome(id = "1, 2, 1", expect = ACCEPTABLE, desc = "the tick threw IllegalStateException (pool closed)")
    @Outcome(expect = FORBIDDEN, desc = "another exception (a purge after release), or memory left after close")
    @State
    public static class DecayTick {
        static final long HOUR = Duration.ofHours(1).toNanos();
        final AtomicLong now = new AtomicLong();
        final AtomicLong clockReads = new AtomicLong();
        final SegmentPool pool;
        final MemorySegment pin;
        final long readsBefore;

        public DecayTick() {
            pool = manualDecay().decay(Duration.ZERO).ticker(() -> {
                clockReads.incrementAndGet();
                return now.get();
            }).build();
            pin = pinAndFreeTwoChunks(pool);
            pool.decayNow(); // at time 0: nothing is old enough to release; records A's free pages
            now.set(HOUR);
            readsBefore = clockReads.get();
        }

        @Actor
        public void close(III_Result r) {
            r.r1 = CloseRaces.close(pool);
        }

        @Actor
        public void tick(III_Result r) {
            try {
                pool.decayNow();
                r.r2 = clockReads.get() > readsBefore ? RETURNED : 0;
            } catch (Throwable t) {
                r.r2 = thrown(t);
            }
        }

        @Arbiter
        public void check(III_Result r) {
            r.r3 = nothingHeld(pool);
        }
    }

    /**
     * A huge allocation (above the chunk size: a dedicated native allocation) against close; the
     * actor frees it if it got it. Property: the allocation is one lifecycle operation, so close either
     * sees it (and releases it if the actor could not free it first) or the allocation fails with
     * {@code IllegalStateException}; a free that comes after close began throws
     * {@code IllegalStateException} too. No native bytes are left after close. {@code r2}: 1 allocated
     * and freed, 2 the allocation threw {@code IllegalStateException}, 3 allocated, then the free
     * threw {@code IllegalStateException}, 4 allocated, then the free threw
     * {@code IllegalArgumentException} (it lost the race to close inside the free and called the
     * segment stale: the pool's documented answer for a closed pool is {@code IllegalStateException}).
     */
    @JCStressTest
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "allocated and freed before close began")
    @Outcome(id = "1, 2, 1", expect = ACCEPTABLE, desc = "the allocation threw IllegalStateException: the pool was closing or closed")
    @Outcome(id = "1, 3, 1", expect = ACCEPTABLE, desc = "allocated, then the free threw IllegalStateException; close released the allocation")
    @Outcome(id = "1, 4, 1", expect = FORBIDDEN, desc = "the free lost to close and threw IllegalArgumentException (stale segment) instead of IllegalStateException")
    @Outcome(expect = FORBIDDEN, desc = "another exception, or memory left after close")
    @State
    public static class HugeAllocation {
        final SegmentPool pool = manualDecay().build();

        @Actor
        public void close(III_Result r) {
            r.r1 = CloseRaces.close(pool);
        }

        @Actor
        public void allocate(III_Result r) {
            MemorySegment segment;
            try {
                segment = pool.allocate(StressPools.CHUNK_SIZE + 1);
            } catch (Throwable t) {
                r.r2 = thrown(t);
                return;
            }
            try {
                pool.free(segment);
                r.r2 = RETURNED;
            } catch (IllegalStateException e) {
                r.r2 = 3;
            } catch (IllegalArgumentException e) {
                r.r2 = 4;
            } catch (Throwable t) {
                r.r2 = OTHER;
            }
        }

        @Arbiter
        public void check(III_Result r) {
            r.r3 = nothingHeld(pool);
        }
    }

    /**
     * An allocation that has to map the pool's first chunk against close; the actor frees it if it
     * got it. Property: mapping a chunk is one lifecycle operation, so close either waits for it and
     * releases the new chunk, or the mapping does not start and the allocation throws
     * {@code IllegalStateException}. No native bytes are left after close. {@code r2}: 1 allocated and
     * freed, 2 the allocation threw {@code IllegalStateException}, 3 allocated, then the free threw
     * {@code IllegalStateException}.
     */
    @JCStressTest
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "allocated (new chunk mapped) and freed before close began")
    @Outcome(id = "1, 2, 1", expect = ACCEPTABLE, desc = "the allocation threw IllegalStateException: no chunk was mapped")
    @Outcome(id = "1, 3, 1", expect = ACCEPTABLE, desc = "allocated, then the free threw IllegalStateException; close released the chunk")
    @Outcome(expect = FORBIDDEN, desc = "another exception, or memory left after close (a chunk mapped while close released)")
    @State
    public static class NewChunk {
        final SegmentPool pool = manualDecay().build();

        @Actor
        public void close(III_Result r) {
            r.r1 = CloseRaces.close(pool);
        }

        @Actor
        public void allocate(III_Result r) {
            MemorySegment segment;
            try {
                segment = pool.allocate(StressPools.RUN);
            } catch (Throwable t) {
                r.r2 = thrown(t);
                return;
            }
            try {
                pool.free(segment);
                r.r2 = RETURNED;
            } catch (IllegalStateException e) {
                r.r2 = 3;
            } catch (Throwable t) {
                r.r2 = OTHER;
            }
        }

        @Arbiter
        public void check(III_Result r) {
            r.r3 = nothingHeld(pool);
        }
    }

    /**
     * An open shared pooled arena allocates 64 bytes against close. The arena is opened, empty, in the
     * state (so the allocation takes a 4 KiB block from the pool), and the pool has one empty chunk to
     * cut it from. The block is handed out in state {@code ARENA} with a volatile store and the arena
     * then reads the pool's state; close writes {@code CLOSING} and then marks the open arenas' units
     * {@code ORPHANED}, keeping their chunk. Property: either close sees the unit and keeps its chunk
     * mapped (the arena's segment stays valid until the arena closes), or the arena sees the pool
     * closing, gives the block back and throws {@code IllegalStateException}. A segment handed out is
     * zero-filled, reads back what the actor wrote, and still holds it in the arbiter (the pool closed,
     * the arena not yet); when the arbiter closes the arena, the pool holds no native bytes.
     * {@code r2}: 1 allocated, zeroed, written and read back; 2 the allocation threw
     * {@code IllegalStateException}; 3 allocated, but not zeroed, not read back, or the access threw.
     * {@code r4}: 1 the segment still held the pattern in the arbiter (or there was none), 0 it did not.
     */
    @JCStressTest
    @Outcome(id = "1, 1, 1, 1", expect = ACCEPTABLE, desc = "allocated before close began, or close saw the unit and kept its chunk: the segment stays valid until the arena closes")
    @Outcome(id = "1, 2, 1, 1", expect = ACCEPTABLE, desc = "the allocation threw IllegalStateException: the pool was closing or closed (the block went back)")
    @Outcome(expect = FORBIDDEN, desc = "another exception, a segment that lost its contents or became inaccessible while its arena was open, or memory left once the arena closed")
    @State
    public static class ArenaAllocate {
        static final byte PATTERN = (byte) 0x5A;
        final SegmentPool pool;
        final Arena arena;
        MemorySegment segment;

        public ArenaAllocate() {
            pool = manualDecay().build();
            pool.free(pool.allocate(StressPools.RUN)); // maps one chunk, now empty
            arena = pool.newSharedArena();
        }

        @Actor
        public void close(IIII_Result r) {
            r.r1 = CloseRaces.close(pool);
        }

        @Actor
        public void allocate(IIII_Result r) {
            MemorySegment s;
            try {
                s = arena.allocate(StressPools.SMALL);
            } catch (Throwable t) {
                r.r2 = thrown(t);
                return;
            }
            try {
                boolean zeroed = StressPools.holds(s, (byte) 0);
                StressPools.fill(s, PATTERN);
                r.r2 = zeroed && StressPools.holds(s, PATTERN) ? RETURNED : 3;
                segment = s;
            } catch (Throwable t) {
                r.r2 = 3;
            }
        }

        @Arbiter
        public void check(IIII_Result r) {
            boolean held = true;
            if (segment != null) {
                try {
                    held = StressPools.holds(segment, PATTERN);
                } catch (Throwable t) {
                    held = false;
                }
            }
            r.r4 = bit(held);
            boolean closed;
            try {
                arena.close();
                closed = true;
            } catch (Throwable t) {
                closed = false;
            }
            r.r3 = bit(closed) & nothingHeld(pool);
        }
    }

    /**
     * A whole confined arena (open, allocate, write, close) on one thread against close, with thread
     * caches on and 8 KiB pages, so the arena takes a 4 KiB subpage element from its thread's cache
     * and its close claims that block by the chunk and handle it kept, with no lookup by address.
     * Property: the block goes back exactly once, whichever comes first: the arena's claim (the pool
     * still open: into the cache, which close then releases; closing: kept for close), or close's
     * orphaning of the block (the arena's claim by handle then fails and the block goes back as an
     * orphan, releasing its chunk). Opening or allocating after close began throws
     * {@code IllegalStateException}; so does touching the segment once close released its chunk
     * without native access. {@code r2}: 1 opened, allocated, wrote and read back, closed; 2 opening,
     * allocating or touching threw {@code IllegalStateException}; 3 the segment did not hold what was
     * written; 9 anything else thrown (the arena's close included).
     */
    @JCStressTest
    @Outcome(id = "1, 1, 1", expect = ACCEPTABLE, desc = "the arena ran before close released anything, or close orphaned its block and the arena's close gave it back")
    @Outcome(id = "1, 2, 1", expect = ACCEPTABLE, desc = "opening, allocating or touching threw IllegalStateException: the pool was closing or closed")
    @Outcome(expect = FORBIDDEN, desc = "another exception (from the arena's close too), a segment that lost what was written, or memory left after both")
    @State
    public static class ConfinedArenaLifetime {
        static final byte PATTERN = (byte) 0x3C;
        final SegmentPool pool = manualDecay().pageSize(8192).chunkSize(1 << 16).threadLocalCaches(true).build();

        @Actor
        public void close(III_Result r) {
            r.r1 = CloseRaces.close(pool);
        }

        @Actor
        public void arena(III_Result r) {
            Arena arena;
            try {
                arena = pool.newArena();
            } catch (Throwable t) {
                r.r2 = thrown(t);
                return;
            }
            int result;
            try {
                MemorySegment s = arena.allocate(StressPools.SMALL);
                StressPools.fill(s, PATTERN);
                result = StressPools.holds(s, PATTERN) ? RETURNED : 3;
            } catch (Throwable t) {
                result = thrown(t);
            }
            try {
                arena.close();
            } catch (Throwable t) {
                result = OTHER;
            }
            r.r2 = result;
        }

        @Arbiter
        public void check(III_Result r) {
            r.r3 = nothingHeld(pool);
        }
    }
}
