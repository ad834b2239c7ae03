package dev.segpool;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * The free side of a {@link PoolCore}: takes segments back by address. Each unit is claimed with one
 * compare-and-exchange of its {@link UnitState} (what makes a bad or racing double free harmless),
 * then kept in the calling thread's cache, a shared stripe a virtual thread claims for the free, or
 * its arena. {@link SegmentPool#free}, {@link MemoryBudget#free}, {@link Reallocation} and pooled
 * arenas' closes ({@link ScratchArena}) all come here.
 *
 * <p>Shape, as on the allocation side: the entries ({@link #free}, {@link #freeOwned},
 * {@link #giveBackArenaUnit}, {@link #giveBackArenaBlock}) are small fast paths that inline into their
 * callers, and everything that explains a refusal is in {@link #freeSlow}. Thread-safe: it keeps no
 * state of its own; see {@link PoolCore} and {@link Lifecycle} for what may run while the pool closes.
 */
final class Deallocator {
    private final PoolCore core;
    // The core's parts the fast paths use, kept here one load nearer (all final in PoolCore).
    private final ChunkRegistry registry;
    private final ThreadCaches caches;
    private final Lifecycle lifecycle;
    private final NativeMemory memory;
    /** The size class of pooled arenas' blocks ({@link PoolCore#arenaBlockClass}). */
    private final int arenaBlockClass;

    Deallocator(PoolCore core) {
        this.core = core;
        this.registry = core.registry;
        this.caches = core.caches;
        this.lifecycle = core.lifecycle;
        this.memory = core.memory;
        this.arenaBlockClass = core.arenaBlockClass;
    }

    /**
     * {@link SegmentPool#free}: finds the chunk by address, checks that the segment is a slice of it
     * (same scope), claims the unit with one compare-and-exchange and keeps it in the calling thread's
     * cache. Anything else, valid or not, goes to {@link #freeSlow}, which explains a refusal.
     */
    void free(MemorySegment segment) {
        // Its own body, as freeOwned has, not a call of one body shared with the state as an argument:
        // C2 compiles a hot entry on its own too, and a caller inlines it only while that code is under
        // InlineSmallCode (2,500 B), else the caller's segment escapes (40 B per pair). With the state a
        // constant the other state's checks drop out: 2,488-2,568 B here against 2,888-3,048 B for the
        // shared body (docs/DESIGN.md, "Inlining margins").
        long address = Objects.requireNonNull(segment, "segment").address();
        PoolChunk chunk = registry.find(address);
        if (chunk == null || segment.scope() != chunk.scope || !core.fastPaths
                || claimToCache(chunk, address, UnitState.LIVE, null, null) < 0) {
            if (!segment.isNative()) {
                throw refusedHeapSegment(segment);
            }
            freeSlow(address, segment.scope(), null);
        }
    }

    /**
     * {@link MemoryBudget#free}: as {@link #free}, for a unit in state {@code BUDGET} that {@code owner}
     * holds; returns the bytes the unit reserved, which the budget then gives back.
     */
    long freeOwned(MemorySegment segment, MemoryBudget owner) {
        long address = Objects.requireNonNull(segment, "segment").address();
        PoolChunk chunk = registry.find(address);
        long bytes = chunk == null || segment.scope() != chunk.scope || !core.fastPaths ? -1
                : claimToCache(chunk, address, UnitState.BUDGET, owner, null);
        if (bytes < 0) {
            if (!segment.isNative()) {
                throw refusedHeapSegment(segment);
            }
            bytes = freeSlow(address, segment.scope(), owner);
        }
        return bytes;
    }

    /**
     * The refusal of a heap segment; a closed pool is reported first, as {@link #checkFreeable} does.
     * The only call on the way to {@link #freeSlow} that takes the segment itself, in a branch no
     * native segment reaches, which the JIT leaves out of the compiled code: {@code freeSlow} takes the
     * address and scope, because a segment passed to a call that is not inlined escapes on every path
     * (escape analysis does not tell paths apart), and huge frees, which take the rare path, are
     * common where one call site frees every size.
     */
    private IllegalArgumentException refusedHeapSegment(MemorySegment segment) {
        core.ensureOpen();
        return Errors.heapSegment(core.name, segment);
    }

    /**
     * The fast path's claim: the unit in state {@code state} (owned by {@code owner}) that starts at
     * {@code address} in {@code chunk} goes to {@code cache} (null: the calling thread's), or to its
     * arena; returns the bytes it reserved, or -1, changing nothing, when no such unit starts there.
     * What the unit's way back needs (an element's class and size, the calling thread's cache) is read
     * before the claim: the claim's atomic write orders every later load after it, so whatever is read
     * after it waits for it, while loads before it run beside the chain of dependent loads that finds
     * the unit. A pooled arena's unit ({@code ARENA}) stays claimed when the pool is closing: the
     * close releases its chunk.
     */
    private long claimToCache(PoolChunk chunk, long address, byte state, MemoryBudget owner, PoolThreadCache cache) {
        PoolThreadCache target = cache != null ? cache : caches.current();
        return target != null ? claimInto(chunk, address, state, owner, target)
                : claimIntoStripe(chunk, address, state, owner);
    }

    /**
     * {@link #claimToCache} for a thread without a cache: into a shared stripe claimed for this one
     * free (virtual threads), else {@link #giveBackShared}.
     */
    private long claimIntoStripe(PoolChunk chunk, long address, byte state, MemoryBudget owner) {
        PoolThreadCache stripe = caches.claimStripe();
        long bytes = claimInto(chunk, address, state, owner, stripe);
        if (stripe != null) { // no finally: what claimInto calls throws only on a full heap (a stack's arrays)
            stripe.unclaim();
        }
        return bytes;
    }

    /**
     * {@link #claimToCache} into {@code target}: the calling thread's cache, a stripe it claimed, or
     * null when it has neither.
     */
    private long claimInto(PoolChunk chunk, long address, byte state, MemoryBudget owner, PoolThreadCache target) {
        PoolSubpage subpage = chunk.subpageAt(address);
        long handle;
        int sizeIndex;
        long bytes;
        CacheStack stack = null;
        if (subpage != null) {
            sizeIndex = subpage.sizeIndex;
            bytes = subpage.elementSize;
            stack = target != null ? target.stackFor(sizeIndex) : null;
            handle = chunk.claimElement(subpage, address, state, owner);
        } else {
            // A run's class comes from its handle as the claim reads it (a reallocate may have resized it).
            handle = chunk.claimRun(address, state, owner);
            sizeIndex = chunk.runSizeIndex(handle);
            bytes = chunk.runBytes(handle);
        }
        // One way on for elements and runs: a call site that frees runs too (which puts this branch in
        // the profile) then compiles one push, not two, and its free still inlines into its caller.
        return handle == Handle.NONE ? -1 : keptBytes(chunk, handle, sizeIndex, bytes, state, target, stack);
    }

    /**
     * The second half of {@link #claimToCache}, for a claimed unit of class {@code sizeIndex} and
     * {@code bytes}: onto {@code stack} of {@code cache} (the calling thread's; null when it has none),
     * the stack of that class which the caller looked up ahead, or null to look it up now.
     */
    private long keptBytes(PoolChunk chunk, long handle, int sizeIndex, long bytes, byte state, PoolThreadCache cache,
                           CacheStack stack) {
        if (state != UnitState.ARENA || lifecycle.isOpen()) {
            giveBackTo(cache, stack, chunk, handle, sizeIndex);
        }
        return bytes;
    }

    /** A claimed unit goes to the calling thread's cache (or a stripe it claims for this), or to its arena. */
    void giveBack(PoolChunk chunk, long handle) {
        PoolThreadCache cache = caches.current();
        PoolThreadCache stripe = cache == null ? caches.claimStripe() : null;
        try {
            giveBackTo(cache != null ? cache : stripe, null, chunk, handle, chunk.sizeIndex(handle));
        } finally {
            if (stripe != null) {
                stripe.unclaim();
            }
        }
    }

    /**
     * A claimed unit of class {@code sizeIndex} goes to {@code cache} (the calling thread's, or null
     * when it has none), onto {@code stack} when the caller looked that class's stack up ahead (else
     * null), or to its arena.
     */
    private void giveBackTo(PoolThreadCache cache, CacheStack stack, PoolChunk chunk, long handle,
                            int sizeIndex) {
        if (cache == null) {
            giveBackShared(chunk, handle, sizeIndex);
        } else if (!cache.push(stack != null ? stack : cache.stackFor(sizeIndex), chunk, handle, sizeIndex)) {
            chunk.arena.free(chunk, handle, sizeIndex);
        }
    }

    /**
     * A claimed unit of a thread without a cache, or stripe: a platform thread makes its cache now, as
     * its first allocation would, so that a thread that only frees (the consumer of a
     * producer/consumer pair) gives units back to the arenas in batches, not one lock per free.
     * Otherwise (caches off, a fork of a scoped binding, a virtual thread that found every probed
     * stripe busy) the unit goes to its arena.
     */
    private void giveBackShared(PoolChunk chunk, long handle, int sizeIndex) {
        PoolThreadCache own = caches.createForCaller();
        if (own != null) {
            giveBackTo(own, null, chunk, handle, sizeIndex);
        } else {
            chunk.arena.free(chunk, handle, sizeIndex);
        }
    }

    /**
     * The rest of {@link #free} ({@code owner} null) and {@link #freeOwned}, for the native segment at
     * {@code address} in {@code scope}: huge units, a closing pool, and every refusal, explained.
     */
    private long freeSlow(long address, MemorySegment.Scope scope, MemoryBudget owner) {
        checkOpenAndAlive(address, scope);
        byte state = owner == null ? UnitState.LIVE : UnitState.BUDGET;
        PoolChunk chunk = registry.find(address);
        long bytes;
        if (chunk == null) {
            bytes = memory.freeHuge(address, state, owner);
            if (bytes < 0) {
                throw lifecycle.isOpen() ? memory.notHuge(address) : Errors.closed(core.name);
            }
        } else {
            long handle = chunk.claim(address, state, owner);
            if (handle == Handle.NONE) {
                throw chunk.claimFailure(address, owner);
            }
            bytes = chunk.unitBytes(handle);
            giveBack(chunk, handle);
        }
        if (core.trackLeaks) {
            core.leaks.freed(address);
        }
        return bytes;
    }

    /** The checks every segment passed back to the pool goes through first: open pool, native, alive. */
    void checkFreeable(MemorySegment segment) {
        if (!segment.isNative()) {
            throw refusedHeapSegment(segment);
        }
        checkOpenAndAlive(segment.address(), segment.scope());
    }

    /**
     * Refuses a closed pool, then a native segment whose scope is no longer alive: its chunk released,
     * by a decay tick or a racing close.
     */
    private void checkOpenAndAlive(long address, MemorySegment.Scope scope) {
        core.ensureOpen();
        if (!scope.isAlive()) {
            throw lifecycle.isOpen() ? Errors.staleSegment(core.name, address) : Errors.closed(core.name);
        }
    }

    // ---- units of pooled arenas ----

    /**
     * Gives back the unit at {@code address} that a pooled arena held ({@code ARENA}, or
     * {@code ORPHANED} once the pool closed): while the pool is open into {@code cache} (when it is
     * the calling thread's) or the calling thread's cache or its arena. An orphaned unit's chunk is
     * released once its last orphan is back; after close, a unit in a released chunk is gone already.
     */
    void giveBackArenaUnit(long address, PoolThreadCache cache) {
        PoolChunk chunk = registry.find(address);
        if (chunk == null || claimToCache(chunk, address, UnitState.ARENA, null, cache) < 0) {
            giveBackArenaUnitSlow(address, chunk);
        }
    }

    /**
     * As {@link #giveBackArenaUnit}, for the block {@code handle} at {@code address} of {@code chunk}
     * that a confined arena took from its opener's cache and kept with its handle: no lookup by
     * address. When the claim fails, the closing pool orphaned the block (it kept the chunk for it).
     */
    void giveBackArenaBlock(PoolChunk chunk, long handle, long address, PoolThreadCache cache) {
        CacheStack stack = cache.stackFor(arenaBlockClass); // before the claim, as claimToCache does
        if (chunk.claimHeld(handle, UnitState.ARENA)) {
            keptBytes(chunk, handle, arenaBlockClass, ScratchArena.BLOCK_SIZE, UnitState.ARENA, cache, stack);
        } else {
            giveBackArenaUnitSlow(address, chunk);
        }
    }

    /** The rest of {@link #giveBackArenaUnit}: a huge unit, or a unit the closing pool orphaned. */
    private void giveBackArenaUnitSlow(long address, PoolChunk chunk) {
        if (chunk == null) {
            memory.freeHuge(address, UnitState.ARENA, null);
        } else if (chunk.claim(address, UnitState.ORPHANED, null) != Handle.NONE) {
            awaitClosed();
            memory.releaseOrphan(chunk);
        }
    }

    /** Waits for a close in progress to finish: it never waits for anything this thread holds. */
    private void awaitClosed() {
        while (lifecycle.state() != Lifecycle.CLOSED) {
            Thread.onSpinWait();
        }
    }
}
