package dev.segpool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A limit and an account for part of a program's use of one {@link SegmentPool}: a tenant, a table, a
 * query. Budgets form a tree ({@link SegmentPool#newBudget}, then {@link #newBudget} for children);
 * each allocation through a budget comes from its pool and is charged to the budget and to every
 * ancestor, at the size the pool reserves for it (its size class; a huge allocation at its own size).
 *
 * <pre>{@code
 * try (MemoryBudget tenant = pool.newBudget("tenant-7", 256 << 20);
 *      MemoryBudget query = tenant.newBudget("query-42", 64 << 20)) {
 *     MemorySegment rows = query.allocate(4096);
 *     rows = query.reallocate(rows, 16384);        // charged the difference; in place when it can be
 *     try (Arena scratch = query.newArena()) {     // charged to query-42 until it closes
 *         MemorySegment key = scratch.allocate(64);
 *     }
 *     query.free(rows);
 * }
 * }</pre>
 *
 * <ul>
 * <li>A request that would take any budget of the chain over its limit throws
 *     {@link MemoryLimitExceededException} naming that budget, its limit, its use and the request;
 *     nothing is charged. No limit is ever crossed, whatever the threads do: each budget's use is
 *     changed by compare-and-set, never above the limit, and a charge refused higher up is taken back
 *     from the budgets below before the request fails. A request fails only when the budget that
 *     refused it still holds too much once that is done.</li>
 * <li>A segment is freed (or reallocated) through the budget that allocated it:
 *     {@link IllegalArgumentException} for any other segment, and through {@link SegmentPool#free}.
 *     Which budget owns a segment is kept beside the allocation's state in the pool, so finding it
 *     costs no lookup.</li>
 * <li>{@link #close()} with allocations, arenas or child budgets still open throws
 *     {@link IllegalStateException} naming what is left (with allocation sites when leak detection is
 *     on), and the budget stays open and usable: free what is left and close again. After a
 *     successful close, every method but {@link #name()} and {@link #toString()} throws
 *     {@link IllegalStateException}. An allocation racing {@code close()} either counts (and close
 *     throws) or fails with {@link IllegalStateException}, charging nothing.</li>
 * <li>Closing the pool closes its budgets; the pool's leak report names what each still held.</li>
 * </ul>
 *
 * <p>Cost: an allocate/free pair through a budget adds one compare-and-set and one atomic add per
 * level of the tree to the pool's pair, and no lock. Thread-safe.
 */
public final class MemoryBudget implements SegmentAllocator, AutoCloseable {
    private static final VarHandle USED;
    private static final VarHandle PEAK;
    private static final VarHandle STATE;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            USED = lookup.findVarHandle(MemoryBudget.class, "used", long.class);
            PEAK = lookup.findVarHandle(MemoryBudget.class, "peak", long.class);
            STATE = lookup.findVarHandle(MemoryBudget.class, "state", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** States: usable; closing (between close's check and its verdict: charges wait); closed. */
    private static final int OPEN = 0;
    private static final int CLOSING = 1;
    private static final int CLOSED = 2;

    private final PoolCore core;
    private final MemoryBudget parent;
    private final String name;
    private final String path;
    /** The limit on {@link #used}. */
    final long limit;
    /** Bytes charged: this budget's allocations and arenas, and its children's uses. */
    private volatile long used;
    private volatile long peak;
    private volatile int state;
    private final AtomicInteger openChildren = new AtomicInteger();
    private final AtomicInteger openArenas = new AtomicInteger();

    private MemoryBudget(PoolCore core, MemoryBudget parent, String name, long limit) {
        this.core = core;
        this.parent = parent;
        this.name = name;
        this.path = parent == null ? name : parent.path + "/" + name;
        this.limit = limit;
    }

    /** A new budget of {@code core} under {@code parent} (null: a top-level budget), registered with the pool. */
    static MemoryBudget open(PoolCore core, MemoryBudget parent, String name, long maxBytes) {
        PoolBuilder.checkName(name);
        if (maxBytes < 0) {
            throw Errors.badSetting("maxBytes", maxBytes, ">= 0");
        }
        core.ensureOpen();
        MemoryBudget budget = new MemoryBudget(core, parent, name, maxBytes);
        if (parent != null) {
            parent.childOpened();
        }
        core.budgets.add(budget);
        if (!core.lifecycle.isOpen()) { // the pool began closing: it may not have seen this budget
            budget.state = CLOSED;
            core.budgets.remove(budget);
            if (parent != null) {
                parent.openChildren.decrementAndGet();
            }
            throw Errors.closed(core.name);
        }
        return budget;
    }

    // ---- allocate, free, reallocate ----

    /**
     * Allocates a segment of exactly {@code byteSize} bytes, aligned to 1, charged to this budget: as
     * {@link #allocate(long, long) allocate(byteSize, 1)}. (Declared here so that the JIT profiles this
     * allocator's calls apart from other allocators'.)
     *
     * @param byteSize the size in bytes, at least 0
     * @return the segment; give it back with {@link #free}
     * @throws IllegalArgumentException     if {@code byteSize < 0}
     * @throws MemoryLimitExceededException if this budget, an ancestor or the pool would cross its limit;
     *                                      nothing is charged
     * @throws IllegalStateException        if this budget or the pool is closed
     */
    @Override
    public MemorySegment allocate(long byteSize) {
        return allocate(byteSize, 1);
    }

    /**
     * Allocates a segment of exactly {@code byteSize} bytes aligned to {@code byteAlignment} from the
     * pool, charged to this budget and its ancestors. Contents unspecified, as for
     * {@link SegmentPool#allocate(long, long)}.
     *
     * @param byteSize      the size in bytes, at least 0
     * @param byteAlignment the alignment in bytes, a power of two
     * @return the segment; give it back with {@link #free}
     * @throws IllegalArgumentException     if {@code byteSize < 0} or {@code byteAlignment} is not a power
     *                                      of two
     * @throws MemoryLimitExceededException if this budget, an ancestor or the pool would cross its limit;
     *                                      nothing is charged
     * @throws IllegalStateException        if this budget or the pool is closed
     */
    @Override
    public MemorySegment allocate(long byteSize, long byteAlignment) {
        ensureNotClosed(); // first: a closed budget charges nothing up the tree, and its limit is not checked
        long bytes = core.unitSize(byteSize, byteAlignment);
        charge(bytes);
        MemorySegment segment;
        try {
            segment = core.allocateOwned(byteSize, byteAlignment, this);
        } catch (RuntimeException | Error e) {
            discharge(bytes);
            throw e;
        }
        raisePeaks();
        return segment;
    }

    /**
     * Gives back a segment this budget allocated; its charge goes back to this budget and its ancestors.
     *
     * @param segment the segment to give back
     * @throws IllegalArgumentException if this budget did not allocate it (another budget's, the pool's
     *                                  own, an arena's, a foreign or heap segment), or it was already
     *                                  freed; nothing changes
     * @throws NullPointerException     if {@code segment} is null
     * @throws IllegalStateException    if this budget or the pool is closed
     */
    public void free(MemorySegment segment) {
        ensureNotClosed();
        discharge(core.frees.freeOwned(segment, this));
    }

    /**
     * As {@link #reallocate(MemorySegment, long, long)} with alignment 1.
     *
     * @param segment     a live segment this budget allocated
     * @param newByteSize the new size in bytes, at least 0
     * @return the segment of {@code newByteSize} bytes; {@code segment} must not be used again
     * @throws IllegalArgumentException     as for {@link #free}, or if {@code newByteSize < 0}
     * @throws MemoryLimitExceededException if growing would cross a limit; {@code segment} stays valid
     * @throws IllegalStateException        if this budget or the pool is closed
     */
    public MemorySegment reallocate(MemorySegment segment, long newByteSize) {
        return reallocate(segment, newByteSize, 1);
    }

    /**
     * Changes the size of a segment this budget allocated, as {@link SegmentPool#reallocate(MemorySegment,
     * long, long)} does; the charge changes by the difference between what the pool reserves for the
     * new size and for the old one, so a buffer can grow up to this budget's limit. On any failure the
     * old segment stays valid and unchanged, and nothing is charged.
     *
     * @param segment       a live segment this budget allocated
     * @param newByteSize   the new size in bytes, at least 0
     * @param byteAlignment the alignment the result must have, a power of two
     * @return the segment of {@code newByteSize} bytes; {@code segment} must not be used again
     * @throws IllegalArgumentException     as for {@link #free}, or for a bad size or alignment
     * @throws MemoryLimitExceededException if growing would cross a limit; {@code segment} stays valid
     * @throws IllegalStateException        if this budget or the pool is closed
     */
    public MemorySegment reallocate(MemorySegment segment, long newByteSize, long byteAlignment) {
        ensureNotClosed();
        return core.reallocate(segment, newByteSize, byteAlignment, this);
    }

    /**
     * A confined pooled {@link Arena}, as {@link SegmentPool#newArena()}, whose memory is charged to this
     * budget until it closes: each 4 KiB block its small segments are cut from, and each larger segment
     * at the size the pool reserves for it. An allocation that would cross a limit throws
     * {@link MemoryLimitExceededException}.
     *
     * @return a new confined arena
     * @throws MemoryLimitExceededException if the arena's first block would cross a limit
     * @throws IllegalStateException        if this budget or the pool is closed
     */
    public Arena newArena() {
        ensureNotClosed();
        core.ensureOpen();
        return ScratchArena.open(core, false, this);
    }

    /**
     * A child budget: what it charges is charged to this budget too. Its limit may be above this
     * budget's (the smaller binds). Names need not be unique; reports show the path
     * ({@code tenant/query-42}).
     *
     * @param name     the child's name (1 to 200 characters, not blank, without , = : " * ? or newline)
     * @param maxBytes the child's limit in bytes, at least 0
     * @return the open child budget; close it before this one
     * @throws IllegalArgumentException if the name or {@code maxBytes} is not allowed
     * @throws IllegalStateException    if this budget or the pool is closed
     */
    public MemoryBudget newBudget(String name, long maxBytes) {
        ensureNotClosed();
        return open(core, this, name, maxBytes);
    }

    // ---- observing ----

    /** {@return this budget's name, as given (see {@link #toString()} for its path)} */
    public String name() {
        return name;
    }

    /**
     * {@return the limit in bytes}
     *
     * @throws IllegalStateException if this budget is closed
     */
    public long maxBytes() {
        ensureNotClosed();
        return limit;
    }

    /**
     * {@return the bytes charged now: this budget's allocations and arenas, and its children's uses}
     * Exact whenever no operation on this budget's subtree is in flight.
     *
     * @throws IllegalStateException if this budget is closed
     */
    public long usedBytes() {
        ensureNotClosed();
        return used;
    }

    /**
     * {@return the most bytes ever charged at once} Charges that were refused higher up in the tree
     * (and taken back) do not count, nor charges for allocations that then failed (at the pool's limit,
     * or for want of native memory). So the peak is raised once an allocation has succeeded: while one
     * is in flight on another thread, {@link #usedBytes()} may already count it and this not yet.
     *
     * @throws IllegalStateException if this budget is closed
     */
    public long peakBytes() {
        ensureNotClosed();
        return peak;
    }

    /**
     * Closes this budget, which must hold nothing: no allocation, no open arena, no open child budget.
     *
     * @throws IllegalStateException if something is still held (the message says what; the budget stays
     *                               open and usable), or this budget is already closed
     */
    @Override
    public void close() {
        for (;;) {
            int s = state;
            if (s == CLOSED) {
                throw Errors.budgetClosed(this);
            }
            if (s == OPEN && STATE.compareAndSet(this, OPEN, CLOSING)) {
                break;
            }
            Thread.onSpinWait(); // another close is deciding
        }
        // A charge writes used, then reads state; close writes state, then reads used: one sees the other.
        long held = used;
        int children = openChildren.get();
        int arenas = openArenas.get();
        if (held != 0 || children != 0 || arenas != 0) {
            state = OPEN;
            throw notEmpty(held, children, arenas);
        }
        state = CLOSED;
        closed();
    }

    /** Takes a closed budget out of its pool's and its parent's books. */
    private void closed() {
        core.budgets.remove(this);
        if (parent != null) {
            parent.openChildren.decrementAndGet();
        }
    }

    private IllegalStateException notEmpty(long held, int children, int arenas) {
        long[] own = core.countOwned(this);
        StringBuilder text = new StringBuilder("budget '").append(path).append("' cannot close: it holds ")
                .append(held).append(" bytes: ").append(own[0]).append(" allocations (").append(own[1])
                .append(" bytes), ").append(arenas).append(" open arenas, ").append(children)
                .append(" open child budgets");
        String sep = " (";
        for (MemoryBudget b : core.budgets) {
            if (b.parent == this) {
                text.append(sep).append('\'').append(b.path).append("' ").append(b.used).append(" bytes");
                sep = ", ";
            }
        }
        text.append(sep.equals(", ") ? ")" : "")
                .append("; free and close them, then close it again (it stays open)");
        List<LeakTracker.AllocationSite> sites = core.leaks.enabled() ? core.sitesOf(this) : List.of();
        if (!core.leaks.enabled() && own[0] > 0) {
            text.append("; set leakDetection to see where they were allocated");
        }
        IllegalStateException e = new IllegalStateException(text.toString());
        sites.forEach(e::addSuppressed);
        return e;
    }

    /** The budget's path from its top-level ancestor, as {@code tenant/query-42}. */
    String path() {
        return path;
    }

    /** Bytes charged now, for reports and the statistics event (no closed check). */
    long used() {
        return used;
    }

    /** The highest charge seen, for reports and the statistics event (no closed check). */
    long peak() {
        return peak;
    }

    @Override
    public String toString() {
        return state == CLOSED ? "MemoryBudget[" + path + ", closed]"
                : "MemoryBudget[" + path + ", " + used + " of " + limit + " bytes]";
    }

    // ---- accounting ----

    /**
     * Charges {@code bytes} to this budget and every ancestor, or throws
     * {@link MemoryLimitExceededException} having charged nothing; {@link IllegalStateException}
     * (charging nothing) when this budget closed first. Peaks are not raised here: the caller calls
     * {@link #raisePeaks()} once what the charge is for has succeeded, or {@link #discharge} if it failed.
     */
    void charge(long bytes) {
        for (;;) {
            MemoryBudget refused = chargeChain(this, bytes);
            if (refused == null) {
                break;
            }
            long seen = refused.used; // after this charge was taken back from the budgets below
            if (bytes > refused.limit - seen) {
                throw Errors.budgetLimit(refused, seen, bytes);
            }
            // the use that refused it has dropped since (a free, or another charge taken back): retry
        }
        if (state != OPEN) {
            chargedWhileClosing(bytes);
        }
    }

    /**
     * Charges {@code budget} and its ancestors, top last; returns null, or the budget that refused,
     * after taking the charge back from those below it.
     */
    private static MemoryBudget chargeChain(MemoryBudget budget, long bytes) {
        if (budget.tryAdd(bytes) < 0) {
            return budget;
        }
        MemoryBudget refused = budget.parent == null ? null : chargeChain(budget.parent, bytes);
        if (refused != null) {
            USED.getAndAdd(budget, -bytes);
        }
        return refused;
    }

    /**
     * After what a {@link #charge} was for succeeded (an allocation, a growth in place, an arena's
     * unit): raises the peak of this budget and every ancestor to its use now, which holds that charge.
     */
    void raisePeaks() {
        for (MemoryBudget b = this; b != null; b = b.parent) {
            long now = b.used;
            if (now > b.peak) {
                b.raisePeak(now);
            }
        }
    }

    /** Adds {@code bytes} to {@link #used} unless that would cross the limit; returns the new use, or -1. */
    private long tryAdd(long bytes) {
        long u = used;
        for (;;) {
            if (bytes > limit - u) {
                return -1;
            }
            long witness = (long) USED.compareAndExchange(this, u, u + bytes);
            if (witness == u) {
                return u + bytes;
            }
            u = witness;
        }
    }

    private void raisePeak(long now) {
        long p = peak;
        while (now > p) {
            long witness = (long) PEAK.compareAndExchange(this, p, now);
            if (witness == p) {
                return;
            }
            p = witness;
        }
    }

    /** A charge that met a close: waits for its verdict; if the budget closed, takes the charge back and throws. */
    private void chargedWhileClosing(long bytes) {
        if (settledState() == CLOSED) {
            discharge(bytes);
            throw closedError();
        }
    }

    /**
     * The state once a close in progress has decided ({@code OPEN} or {@code CLOSED}), read after the
     * caller published what that close must see (a charge, an open arena or child).
     */
    private int settledState() {
        int s = state;
        while (s == CLOSING) {
            Thread.onSpinWait();
            s = state;
        }
        return s;
    }

    /** Gives back {@code bytes} charged to this budget and every ancestor. */
    void discharge(long bytes) {
        for (MemoryBudget b = this; b != null; b = b.parent) {
            USED.getAndAdd(b, -bytes);
        }
    }

    void arenaOpened() {
        opened(openArenas);
    }

    void arenaClosed() {
        openArenas.decrementAndGet();
    }

    private void childOpened() {
        opened(openChildren);
    }

    /**
     * Counts an arena or child as open, unless this budget closed first (then throws): as with a
     * charge, the count is written before the state is read, and close does the reverse.
     */
    private void opened(AtomicInteger count) {
        count.incrementAndGet();
        if (settledState() == CLOSED) {
            count.decrementAndGet();
            throw Errors.budgetClosed(this);
        }
    }

    private void ensureNotClosed() {
        if (state == CLOSED) {
            throw closedError();
        }
    }

    /** The exception for a call on a closed budget: its own close, or its pool's. */
    private IllegalStateException closedError() {
        return core.lifecycle.isOpen() ? Errors.budgetClosed(this) : Errors.closed(core.name);
    }

    /**
     * At the pool's close (no operation in flight): marks this budget closed whatever it holds and
     * returns a line for the leak report, or null when it held nothing.
     */
    String closeByPool() {
        state = CLOSED;
        long held = used;
        int arenas = openArenas.get();
        if (held == 0 && arenas == 0) {
            return null;
        }
        long[] own = core.countOwned(this);
        return "budget '" + path + "' held " + held + " bytes (" + own[0] + " allocations of its own, "
                + arenas + " open arenas)";
    }
}
