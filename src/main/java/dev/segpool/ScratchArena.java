package dev.segpool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * The {@link java.lang.foreign.Arena} of {@link SegmentPool#newArena()} and
 * {@link SegmentPool#newSharedArena()}: memory from the pool, confined to the thread that opened it or
 * shared. Every segment is zero-filled; {@link #close()} gives them all back at once. Like the JDK's
 * own arenas, it cuts small segments from a 4 KiB block by bumping an offset (zeroing only what it
 * hands out); larger ones are pool units of their own.
 *
 * <p>With native access (decided once per pool), the block and every larger unit are re-bound to the
 * scope of a JDK arena that this arena closes first, so an access after {@code close()} throws
 * {@link IllegalStateException} and a confined arena's segments throw {@link WrongThreadException} on
 * other threads. Without it, segments are plain slices of their chunk: they stay accessible until the
 * pool closes, and {@link #scope()} is a scope of its own that ends at {@code close()}.
 *
 * <p>If the pool closes while this arena is open, in native mode the pool keeps the chunks under its
 * units ({@link UnitState#ORPHANED}) until it closes: its segments stay valid, and throw after this
 * arena's close, never reaching released memory. A unit is handed out in state {@code ARENA} with a
 * volatile store and the pool's state is read after it, so either the closing pool sees the unit, or
 * this arena sees the pool closing and gives the unit back before any segment of it is returned.
 * Without native access the pool releases every chunk at close and the arena's segments, slices of
 * those chunks, throw from then on; the unit is handed out with a release store.
 *
 * <p>Protocol: a confined arena is used by its owner only (checked); a shared arena serialises
 * {@code allocate} and {@code close} on itself. Leaks: an arena that becomes unreachable without
 * {@code close()} keeps its units until the pool closes, unless leak detection sampled it: then a
 * {@link java.lang.ref.Cleaner} gives its memory back and reports where it was opened.
 */
final class ScratchArena implements Arena {
    /**
     * Requests up to this size (and alignment up to {@link #BLOCK_SIZE}) are cut from the arena's current
     * block, so that a scratch arena makes one pool allocation, not one per segment.
     */
    static final int BUMP_MAX_SIZE = 1024;
    /** Size, and alignment, of the blocks small requests are cut from (each cut is zeroed, not the block). */
    static final int BLOCK_SIZE = 4096;

    private final PoolCore core;
    /** The owner of a confined arena; null when shared. */
    private final Thread owner;
    private final boolean bindScope;
    /** The opener's cache, for a confined arena: blocks come from it and go back to it. */
    private final PoolThreadCache cache;
    /** The JDK arena whose scope segments carry (native mode); in degraded mode made on demand by scope(). */
    private Arena scopeArena;
    private boolean closed;
    /** The block small requests are cut from (a confined arena takes its first when it opens), and its used bytes. */
    private MemorySegment block;
    private long blockUsed;
    /** Addresses of the pool units held: the first inline, the rest in {@link #moreUnits}. */
    private long firstUnit;
    /**
     * The chunk and handle of the first unit when the arena took it from its opener's cache
     * ({@link #openConfined}), so that its close needs no lookup by address; else null and 0.
     */
    private final PoolChunk firstChunk;
    private final long firstHandle;
    private long[] moreUnits;
    private int units;
    /** Set for arenas that leak detection sampled: watches this arena and reports it if it leaks. */
    private final ArenaLeakWatch watch;
    /** What this arena holds charged to its budget; null for the pool's own arenas (one field: arenas stay small). */
    private final ArenaCharges charges;

    /**
     * Opens a confined arena of the pool's own for the calling thread ({@link SegmentPool#newArena()});
     * the caller checked that the pool is open.
     *
     * <p>The common case, a thread with a cache that holds a block, does all its work first and makes
     * the arena last, with every field in its constructor: small enough for the JIT to inline into the
     * caller (the size of its compiled code decides), so that an arena which does not escape is
     * scalar-replaced, with its JDK session in native mode. A miss refills the cache and goes on here: a
     * second place that made the block or the arena would merge with this one and keep the caller's
     * escape analysis from removing them. Everything else is in {@link #open}.
     */
    static ScratchArena openConfined(PoolCore core) {
        PoolThreadCache cache = core.caches.current();
        CacheStack blocks = cache == null | core.trackLeaks ? null : core.arenaBlocks(cache);
        // A branch on a value every call computes, so that the JIT sees it never taken and leaves the
        // other path out: a branch on the refill's result alone has too few samples for that, and the
        // other path's arena would merge with this one and keep it on the heap.
        if (blocks == null) {
            return open(core, false, null);
        }
        Arena scopeArena = core.nativeAccess ? Arena.ofConfined() : null;
        PoolChunk chunk = blocks.topChunk();
        long handle = blocks.topHandle();
        MemorySegment block = cache.popArenaBlock(blocks, scopeArena);
        if (!core.lifecycle.isOpen()) {
            giveBackAndThrow(core, scopeArena, block.address());
        }
        cache.arenasOpened++; // the opener's own cache: the owner thread is the caller
        // Made after every other allocation, so that no safepoint separates it from its field stores
        // and the JIT leaves out their GC barriers (which made this method's code twice as large).
        return new ScratchArena(core, Thread.currentThread(), cache, scopeArena, null, null, block, chunk, handle);
    }

    /**
     * The pool began closing while {@link #openConfined} took a block (state {@code ARENA}; no segment
     * of it left the method): closes the scope made for it, gives the block back and throws.
     */
    private static void giveBackAndThrow(PoolCore core, Arena scopeArena, long address) {
        if (scopeArena != null) {
            scopeArena.close();
        }
        giveBackAndThrow(core, address);
    }

    /**
     * {@code raw} bound to the scope of {@code scopeArena} (native mode): its segments throw once that
     * arena closes.
     */
    private static MemorySegment bind(MemorySegment raw, Arena scopeArena) {
        return raw.reinterpret(scopeArena, null);
    }

    /**
     * Opens an arena of {@code core}: shared, a budget's ({@code budget} not null), one that leak
     * detection samples, or one on a thread without a cache (or whose cache cannot hold a block now).
     * The caller checked that the pool is open.
     */
    static ScratchArena open(PoolCore core, boolean shared, MemoryBudget budget) {
        LeakTracker.AllocationSite site = core.leaks.enabled()
                ? core.leaks.sample((shared ? "shared" : "confined") + " Arena opened") : null;
        boolean bindScope = core.nativeAccess;
        Arena scopeArena = !bindScope ? null : shared ? Arena.ofShared() : Arena.ofConfined();
        ArenaCharges charges = budget == null ? null : new ArenaCharges(budget);
        if (budget != null) {
            budget.arenaOpened();
        }
        ArenaLeakWatch watch = site == null ? null
                : new ArenaLeakWatch(core, shared ? "shared" : "confined", site, charges);
        ScratchArena arena = new ScratchArena(core, shared ? null : Thread.currentThread(),
                shared ? null : core.caches.current(), scopeArena, watch, charges, null, null, 0);
        if (watch != null) {
            watch.watch(bindScope ? scopeArena.scope() : arena);
        }
        if (!shared) {
            arena.takeFirstBlock();
        }
        arena.opened(1);
        return arena;
    }

    /**
     * Stores the fields only. {@code block}, when not null, is the first block (handed out in state
     * {@code ARENA}) and the arena's one unit, {@code blockChunk} its chunk and {@code blockHandle} its
     * handle; else the arena holds nothing yet.
     */
    private ScratchArena(PoolCore core, Thread owner, PoolThreadCache cache, Arena scopeArena,
                         ArenaLeakWatch watch, ArenaCharges charges, MemorySegment block, PoolChunk blockChunk,
                         long blockHandle) {
        this.core = core;
        this.owner = owner;
        this.cache = cache;
        this.bindScope = scopeArena != null;
        this.scopeArena = scopeArena;
        this.watch = watch;
        this.charges = charges;
        this.block = block;
        this.blockUsed = block != null ? 0 : BLOCK_SIZE;
        this.firstUnit = block != null ? block.address() : 0;
        this.units = block != null ? 1 : 0;
        this.firstChunk = blockChunk;
        this.firstHandle = blockHandle;
    }

    /**
     * A confined arena takes its first block when it opens, so that allocate() is only a bump of an
     * offset; when it cannot, what opening did is undone.
     */
    private void takeFirstBlock() {
        try {
            takeBlock();
        } catch (RuntimeException | Error e) {
            abandon();
            throw e;
        }
    }

    /**
     * As {@code allocate(byteSize, 1)}; declared here so that the JIT profiles an arena's calls apart
     * from other allocators'.
     */
    @Override
    public MemorySegment allocate(long byteSize) {
        return allocate(byteSize, 1);
    }

    /**
     * The owner's path is one small method, with no call to rely on the profile for, so that it inlines
     * into the caller: a bump of the offset in the current block, a slice and its zeroing. Everything
     * else (a new block, a unit of its own, a shared arena, a sampled one, errors) is in
     * {@link #allocateOther}.
     */
    @Override
    public MemorySegment allocate(long byteSize, long byteAlignment) {
        long offset = (blockUsed + byteAlignment - 1) & -byteAlignment;
        long end = offset + Math.max(byteSize, 1); // every segment gets an address of its own
        if (Thread.currentThread() != owner | closed | watch != null | end > BLOCK_SIZE
                | byteSize < 0 | byteSize > BUMP_MAX_SIZE | byteAlignment <= 0 | byteAlignment > BLOCK_SIZE
                | (byteAlignment & (byteAlignment - 1)) != 0 || !core.lifecycle.isOpen()) {
            return allocateOther(byteSize, byteAlignment);
        }
        blockUsed = end;
        return block.asSlice(offset, byteSize).fill((byte) 0);
    }

    /** Whether a request is cut from a block: size 0 to {@link #BUMP_MAX_SIZE}, a power-of-two alignment up to a block. */
    private static boolean fitsBlock(long byteSize, long byteAlignment) {
        return byteSize >= 0 & byteSize <= BUMP_MAX_SIZE & byteAlignment > 0 & byteAlignment <= BLOCK_SIZE
                & (byteAlignment & (byteAlignment - 1)) == 0;
    }

    /** Cuts a zeroed segment from the current block, or from a new one; arguments checked. */
    private MemorySegment cut(long byteSize, long byteAlignment) {
        long offset = (blockUsed + byteAlignment - 1) & -byteAlignment;
        long end = offset + Math.max(byteSize, 1); // every segment gets an address of its own
        if (end > BLOCK_SIZE) {
            return cutFromNewBlock(byteSize);
        }
        blockUsed = end;
        if (watch != null) {
            watch.counted(byteSize);
        }
        return block.asSlice(offset, byteSize).fill((byte) 0);
    }

    /** A confined arena that could not take its first block: undoes what the constructor did. */
    private void abandon() {
        closed = true;
        if (scopeArena != null) {
            scopeArena.close();
        }
        if (watch != null) {
            watch.closed();
        }
        if (charges != null) {
            charges.budget.arenaClosed();
        }
    }

    /** Takes a new block from the pool, bound to this arena's scope, to cut from its start. */
    private void takeBlock() {
        MemorySegment raw = take(true, BLOCK_SIZE, BLOCK_SIZE);
        block = bindScope ? bind(raw, scopeArena) : raw;
        blockUsed = 0;
    }

    /**
     * Takes a pool unit for this arena and keeps it: a block when {@code block} (not zeroed: its cuts
     * are), else a zeroed unit of its own for the request. A budget's arena charges the budget first
     * (what the pool reserves for the unit) and gives the charge back when the unit cannot be had.
     */
    private MemorySegment take(boolean block, long byteSize, long byteAlignment) {
        long charged = charges == null ? 0 : charges.charge(block ? BLOCK_SIZE : core.unitSize(byteSize, byteAlignment));
        MemorySegment raw;
        try {
            raw = block ? core.allocateArenaBlock(cache)
                    : core.allocateSlow(byteSize, byteAlignment, UnitState.ARENA, null, true);
            keep(raw.address());
        } catch (RuntimeException | Error e) {
            if (charged != 0) {
                charges.budget.discharge(charged);
            }
            throw e;
        }
        if (charged != 0) {
            charges.held(charged);
        }
        return raw;
    }

    /** Cuts a segment from the start of a new block. */
    private MemorySegment cutFromNewBlock(long byteSize) {
        takeBlock();
        blockUsed = Math.max(byteSize, 1);
        if (watch != null) {
            watch.counted(byteSize);
        }
        return block.asSlice(0, byteSize).fill((byte) 0);
    }

    /** A shared arena's allocation, a confined arena's from the wrong thread, or a request not cut from a block. */
    private MemorySegment allocateOther(long byteSize, long byteAlignment) {
        if (owner == null) {
            synchronized (this) {
                return allocateChecked(byteSize, byteAlignment);
            }
        }
        if (Thread.currentThread() != owner) {
            throw Errors.wrongThread(core.name, owner);
        }
        return allocateChecked(byteSize, byteAlignment);
    }

    private MemorySegment allocateChecked(long byteSize, long byteAlignment) {
        if (closed || !core.lifecycle.isOpen()) {
            throw closed ? Errors.arenaClosed(core.name) : Errors.closed(core.name);
        }
        if (fitsBlock(byteSize, byteAlignment)) {
            return cut(byteSize, byteAlignment);
        }
        return allocateUnit(byteSize, byteAlignment);
    }

    /** A request too large (or too aligned) to cut from a block: a pool unit of its own, zeroed. */
    private MemorySegment allocateUnit(long byteSize, long byteAlignment) {
        MemorySegment raw = take(false, byteSize, byteAlignment);
        if (watch != null) {
            watch.counted(byteSize);
        }
        return bindScope ? bind(raw, scopeArena) : raw;
    }

    /**
     * Records a unit just handed out in state {@code ARENA}; if the pool began closing meanwhile, gives
     * it back before any segment of it is bound, and throws.
     */
    private void keep(long address) {
        if (!core.lifecycle.isOpen()) {
            giveBackAndThrow(core, address);
        }
        if (units == 0 & watch == null) {
            firstUnit = address;
            units = 1;
        } else {
            keepMore(address);
        }
    }

    /** Gives back a unit that a closing pool may no longer see (state {@code ARENA}), and throws. */
    private static void giveBackAndThrow(PoolCore core, long address) {
        core.frees.giveBackArenaUnit(address, null);
        throw Errors.closed(core.name);
    }

    private void keepMore(long address) {
        if (units == 0) {
            firstUnit = address;
        } else {
            if (moreUnits == null) {
                moreUnits = new long[4];
            } else if (units - 1 == moreUnits.length) {
                moreUnits = Arrays.copyOf(moreUnits, moreUnits.length * 2);
            }
            moreUnits[units - 1] = address;
        }
        units++;
        if (watch != null) {
            watch.kept(address);
        }
    }

    @Override
    public MemorySegment.Scope scope() {
        if (owner == null) {
            synchronized (this) {
                return scopeLocked();
            }
        }
        return scopeLocked();
    }

    private MemorySegment.Scope scopeLocked() {
        if (scopeArena == null) {
            // Degraded mode: a scope of its own, alive until close(); shared so any thread may ask.
            scopeArena = Arena.ofShared();
            if (closed) {
                scopeArena.close();
            }
        }
        return scopeArena.scope();
    }

    /**
     * Closes the arena: first its JDK scope (its segments become inaccessible), then its units go back
     * to the pool. The owner's close of an arena holding one block is small enough to inline; the rest
     * is in {@link #closeOther}.
     */
    @Override
    public void close() {
        PoolThreadCache own = cache;
        if (Thread.currentThread() != owner || closed || units != 1 || watch != null || charges != null
                || own == null || own.owner != owner) {
            closeOther();
            return;
        }
        closed = true;
        if (scopeArena != null) {
            scopeArena.close(); // first: no segment of this arena is reachable when its memory is reused
        }
        if (firstChunk != null) {
            core.frees.giveBackArenaBlock(firstChunk, firstHandle, firstUnit, own);
        } else {
            core.frees.giveBackArenaUnit(firstUnit, own);
        }
        own.arenasClosed++;
    }

    private void closeOther() {
        if (owner == null) {
            synchronized (this) {
                closeChecked();
            }
        } else {
            if (Thread.currentThread() != owner) {
                throw Errors.wrongThread(core.name, owner);
            }
            closeChecked();
        }
    }

    private void closeChecked() {
        if (closed) {
            throw Errors.arenaClosed(core.name);
        }
        closed = true;
        if (scopeArena != null) {
            scopeArena.close();
        }
        PoolThreadCache own = cache != null && cache.owner == Thread.currentThread() ? cache : null;
        if (units > 0) {
            core.frees.giveBackArenaUnit(firstUnit, own);
            for (int i = 0; i < units - 1; i++) {
                core.frees.giveBackArenaUnit(moreUnits[i], own);
            }
        }
        if (watch != null) {
            watch.closed();
        }
        if (charges != null) {
            charges.giveBack();
        }
        opened(-1);
    }

    /** Counts this arena in {@code openArenas}: in the owner's cache, else in the pool's adders. */
    private void opened(int delta) {
        PoolThreadCache counting = cache != null && cache.owner == Thread.currentThread() ? cache : null;
        if (counting != null) {
            if (delta > 0) {
                counting.arenasOpened++;
            } else {
                counting.arenasClosed++;
            }
        } else if (delta > 0) {
            core.caches.arenasOpened.increment();
        } else {
            core.caches.arenasClosed.increment();
        }
    }

    @Override
    public String toString() {
        return "ScratchArena[" + core.name + (owner == null ? ", shared" : ", confined to " + owner.getName())
                + (closed ? ", closed]" : "]");
    }
}
