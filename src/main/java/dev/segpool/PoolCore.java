package dev.segpool;

import java.lang.foreign.MemorySegment;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The allocator behind a {@link SegmentPool}: routes requests to thread caches, arenas and huge
 * allocations, takes segments back by address, and owns the pool's {@link Lifecycle}. The public
 * class, pooled arenas ({@link ScratchArena}) and thread caches all go through it.
 *
 * <p>Shape: every entry is a small fast path followed by one call to a rare path. The fast paths
 * ({@link #allocate}, {@link #free}) read the lifecycle state, take one thread-local lookup and touch
 * only the caller's cache, the chunk registry and one unit's state byte, so that they inline into
 * their callers and the segment they make can be scalar-replaced. Everything else (validation
 * errors, refills, huge and aligned requests, the memory limit's retry, leak tracking) is in the
 * {@code *Slow} methods.
 *
 * <p>Thread-safe; see {@link Lifecycle} for what may run while the pool closes.
 */
final class PoolCore {
    final String name;
    final SizeClasses sizeClasses;
    final int chunkSize;
    final Lifecycle lifecycle = new Lifecycle();
    final NativeMemory memory;
    final ChunkRegistry registry;
    final PoolArena[] arenas;
    final ThreadCaches caches;
    final LeakTracker leaks;
    /** The pool's open budgets, at every depth: for reports, the statistics event and close. */
    final Set<MemoryBudget> budgets = ConcurrentHashMap.newKeySet();
    /** The decay's time source, in nanoseconds (the system's, or one a test advances). */
    final java.util.function.LongSupplier ticker;
    /** The size class of the blocks pooled arenas cut small segments from ({@link ScratchArena#BLOCK_SIZE}). */
    final int arenaBlockClass;
    /** Whether pooled arenas bind their segments to their scope; decided once, when the pool is built. */
    final boolean nativeAccess;
    /** Largest request the fast path serves: the largest class thread-local caches hold, or -1 without them. */
    private final long fastMaxSize;
    final boolean trackLeaks;
    private final Reallocation reallocation = new Reallocation(this);
    /**
     * Whether {@link #allocate} and {@link #free} may take their fast paths: false with leak tracking,
     * and from the moment {@link #close} starts. One volatile read on each fast path.
     */
    private volatile boolean fastPaths;

    PoolCore(PoolSettings settings) {
        this.name = settings.name();
        this.sizeClasses = new SizeClasses(settings.pageSize(), settings.chunkSize());
        this.chunkSize = settings.chunkSize();
        this.arenaBlockClass = sizeClasses.lookupIndex(ScratchArena.BLOCK_SIZE);
        this.nativeAccess = PoolCore.class.getModule().isNativeAccessEnabled();
        this.ticker = settings.ticker();
        this.memory = new NativeMemory(name, chunkSize, settings.maxMemory(), nativeAccess && OsMemory.AVAILABLE,
                lifecycle);
        this.registry = memory.registry;
        this.arenas = new PoolArena[settings.arenas()];
        for (int i = 0; i < arenas.length; i++) {
            arenas[i] = new PoolArena(i, sizeClasses, memory, settings.maxCachedSize());
        }
        for (PoolArena arena : arenas) {
            arena.joinSiblings(arenas);
        }
        PoolThreadCache.CacheConfig config = settings.cacheConfig();
        this.caches = new ThreadCaches(this, arenas, config, settings.threadLocalCaches());
        // Without thread-local caches most calls find no cache: they skip the fast path's lookups.
        this.fastMaxSize = config.enabled() && settings.threadLocalCaches()
                ? Math.min(config.maxCachedSize(), Math.min(SizeClasses.LOOKUP_MAX_SIZE, chunkSize)) : -1;
        this.leaks = new LeakTracker(settings.leakDetection());
        this.trackLeaks = leaks.enabled();
        this.fastPaths = !trackLeaks;
    }

    // ---- allocate ----

    /**
     * {@link SegmentPool#allocate(long, long)}: the calling thread's cache, or on a virtual thread a
     * shared stripe claimed for this one pop; else the rare path ({@link #allocateSlow}).
     * A cache miss only prepares the cache ({@link #preparedCache}) and the pop follows, so that a
     * cached class has one allocation site here whether it hit or missed, from a thread's cache or a
     * stripe: the caller's escape analysis can remove the segment.
     */
    MemorySegment allocate(long byteSize, long byteAlignment) {
        if (fastRequest(byteSize, byteAlignment) && fastPaths) {
            int sizeIndex = sizeClasses.lookupIndex(byteSize);
            PoolThreadCache cache = cacheFor(sizeIndex);
            if (cache != null) {
                return cache.pop(sizeIndex, byteSize, UnitState.LIVE, null);
            }
        }
        return allocateSlow(byteSize, byteAlignment, UnitState.LIVE, null, false);
    }

    /**
     * {@link MemoryBudget#allocate}, after the budget charged {@link #unitSize}: as {@link #allocate},
     * for a unit handed out in state {@code BUDGET}, owned by {@code owner}.
     */
    MemorySegment allocateOwned(long byteSize, long byteAlignment, MemoryBudget owner) {
        if (fastRequest(byteSize, byteAlignment) && fastPaths) {
            int sizeIndex = sizeClasses.lookupIndex(byteSize);
            PoolThreadCache cache = cacheFor(sizeIndex);
            if (cache != null) {
                return cache.pop(sizeIndex, byteSize, UnitState.BUDGET, owner);
            }
        }
        return allocateSlow(byteSize, byteAlignment, UnitState.BUDGET, owner, false);
    }

    /**
     * A unit of class {@code sizeIndex} from a shared stripe claimed for this one pop (virtual threads
     * only), the stripe refilled first if it lacks the class; handed out as {@link PoolThreadCache#pop}
     * says, which gives the stripe back. Null when the caller gets no stripe, or the stripe does not
     * hold the class.
     *
     * @throws MemoryLimitExceededException when the stripe's refill meets the memory limit
     */
    private MemorySegment popFromStripe(int sizeIndex, long byteSize, byte state, MemoryBudget owner) {
        PoolThreadCache stripe = caches.claimStripe();
        if (stripe == null) {
            return null;
        }
        boolean ready = false;
        try {
            ready = stripe.prepare(sizeIndex);
        } finally {
            if (!ready) {
                stripe.unclaim();
            }
        }
        return ready ? stripe.pop(sizeIndex, byteSize, state, owner) : null;
    }

    /** 0 <= byteSize <= fastMaxSize, and byteAlignment a power of two from 1 to QUANTUM: one branch. */
    private boolean fastRequest(long byteSize, long byteAlignment) {
        return byteSize >= 0 & byteSize <= fastMaxSize
                & ((byteAlignment - 1) >>> SizeClasses.LOG2_QUANTUM | (byteAlignment - 1) & byteAlignment) == 0;
    }

    /**
     * The bytes the pool reserves for a request (what a budget is charged): the size of its small
     * class, the pages of its run, or {@link NativeMemory#hugeUnit} when huge; the class comes from
     * {@link #classOf}, as in {@link #allocateChecked}.
     *
     * @throws IllegalArgumentException for a negative size or a bad alignment
     */
    long unitSize(long byteSize, long byteAlignment) {
        if (fastRequest(byteSize, byteAlignment)) {
            return sizeClasses.size(sizeClasses.lookupIndex(byteSize));
        }
        checkRequest(byteSize, byteAlignment);
        int sizeIndex = classOf(byteSize, byteAlignment);
        if (sizeIndex < 0) {
            return NativeMemory.hugeUnit(byteSize);
        }
        return sizeClasses.isSmall(sizeIndex) ? sizeClasses.size(sizeIndex)
                : (long) arenas[0].runPages(sizeIndex, byteSize) << sizeClasses.pageShifts;
    }

    /**
     * The size class that serves a checked request: the smallest that holds {@code byteSize} (and, for
     * an alignment above {@link SizeClasses#QUANTUM}, can honour it), or -1 when the request is huge.
     */
    private int classOf(long byteSize, long byteAlignment) {
        if (byteAlignment <= SizeClasses.QUANTUM) {
            return byteSize > chunkSize ? -1 : sizeClasses.sizeIndex(byteSize);
        }
        return sizeClasses.sizeIndex(byteSize, byteAlignment);
    }

    static void checkRequest(long byteSize, long byteAlignment) {
        if (byteSize < 0) {
            throw Errors.badSize(byteSize);
        }
        if (byteAlignment <= 0 || (byteAlignment & (byteAlignment - 1)) != 0) {
            throw Errors.badAlignment(byteAlignment);
        }
    }

    /**
     * The calling thread's cache with class {@code sizeIndex} ready to pop: at once when it holds one,
     * else {@link #preparedCache}; for a virtual thread without a binding, a shared stripe claimed for
     * one pop when it holds the class ({@link ThreadCaches#claimStripeWith}: a stripe that lacks it is
     * refilled on the rare path). Null when neither can serve the class now.
     */
    private PoolThreadCache cacheFor(int sizeIndex) {
        PoolThreadCache cache = caches.current();
        if (cache != null && cache.has(sizeIndex)) {
            return cache;
        }
        return cache == null && Thread.currentThread().isVirtual() ? caches.claimStripeWith(sizeIndex)
                : preparedCache(cache, sizeIndex);
    }

    /**
     * The calling thread's cache ({@code current}, what {@link ThreadCaches#current} returned, else
     * made now) with class {@code sizeIndex} ready to pop; null when the thread gets no cache, the
     * cache does not hold the class, or its refill met the memory limit: {@link #allocateSlow} then
     * gives back what the pool can (empty chunks of other arenas too) and tries again, which the fast
     * path does not.
     */
    private PoolThreadCache preparedCache(PoolThreadCache current, int sizeIndex) {
        PoolThreadCache cache = current != null ? current : caches.createForCaller();
        return cache != null && prepared(cache, sizeIndex) ? cache : null;
    }

    /**
     * {@link PoolThreadCache#prepare}, where a refill that meets the memory limit is a miss like any
     * other: the caller's rare path gives back what the pool can and tries again.
     */
    private static boolean prepared(PoolThreadCache cache, int sizeIndex) {
        try {
            return cache.prepare(sizeIndex);
        } catch (MemoryLimitExceededException atLimit) {
            return false;
        }
    }

    /**
     * Everything {@link #allocate} does not do on its fast path, for a unit handed out in {@code state}
     * (LIVE for users, BUDGET for {@code owner}, ARENA for pooled arenas), zeroed if {@code zero}. At the
     * memory limit, gives back what the pool can (this thread's cache, idle subpages, empty chunks) and
     * tries once more.
     */
    MemorySegment allocateSlow(long byteSize, long byteAlignment, byte state, MemoryBudget owner, boolean zero) {
        checkRequest(byteSize, byteAlignment);
        ensureOpen();
        MemorySegment segment;
        try {
            segment = allocateChecked(byteSize, byteAlignment, state, owner, zero);
        } catch (MemoryLimitExceededException first) {
            segment = retryAtLimit(byteSize, byteAlignment, state, owner, zero, first);
        }
        if (trackLeaks && state != UnitState.ARENA) {
            leaks.allocated(segment.address(), byteSize);
        }
        return segment;
    }

    private MemorySegment retryAtLimit(long byteSize, long byteAlignment, byte state, MemoryBudget owner,
                                       boolean zero, MemoryLimitExceededException first) {
        long reserved = memory.reservedBytes();
        reclaim(0, Long.MAX_VALUE, false, "limit");
        if (memory.reservedBytes() < reserved) {
            try {
                return allocateChecked(byteSize, byteAlignment, state, owner, zero);
            } catch (MemoryLimitExceededException second) {
                first = second;
            }
        }
        PoolEvents.limitExceeded(name, first.limitBytes(), first.reservedBytes(), first.requestedBytes());
        throw first;
    }

    private MemorySegment allocateChecked(long byteSize, long byteAlignment, byte state, MemoryBudget owner,
                                          boolean zero) {
        int sizeIndex = classOf(byteSize, byteAlignment);
        if (sizeIndex < 0) {
            return memory.allocateHuge(byteSize, byteAlignment, state, owner);
        }
        int alignPages = byteAlignment <= SizeClasses.QUANTUM ? 1 : sizeClasses.alignmentPages(byteAlignment);
        PoolThreadCache cache = caches.currentOrCreate();
        if (cache == null) {
            MemorySegment segment = alignPages == 1 ? popFromStripe(sizeIndex, byteSize, state, owner) : null;
            if (segment != null) {
                return zero ? segment.fill((byte) 0) : segment;
            }
            return uncachedArena().allocate(sizeIndex, alignPages, byteSize, state, owner, zero);
        }
        if (alignPages == 1 && cache.prepare(sizeIndex)) {
            MemorySegment segment = cache.pop(sizeIndex, byteSize, state, owner);
            return zero ? segment.fill((byte) 0) : segment;
        }
        return cache.arena.allocate(sizeIndex, alignPages, byteSize, state, owner, zero);
    }

    /** The arena of a thread without a cache. */
    private PoolArena uncachedArena() {
        return arenas[(int) (Thread.currentThread().threadId() % arenas.length)];
    }

    // ---- free ----

    /**
     * {@link SegmentPool#free}: finds the chunk by address, checks that the segment is a slice of it
     * (same scope), claims the unit with one compare-and-exchange and keeps it in the calling thread's
     * cache. Anything else, valid or not, goes to {@link #freeSlow}, which explains a refusal.
     */
    void free(MemorySegment segment) {
        long address = Objects.requireNonNull(segment, "segment").address();
        PoolChunk chunk = registry.find(address);
        if (chunk == null || segment.scope() != chunk.scope || !fastPaths
                || claimToCache(chunk, address, UnitState.LIVE, null, null) < 0) {
            freeSlow(segment, null);
        }
    }

    /**
     * {@link MemoryBudget#free}: as {@link #free}, for a unit in state {@code BUDGET} that {@code owner}
     * holds; returns the bytes the unit reserved, which the budget then gives back.
     */
    long freeOwned(MemorySegment segment, MemoryBudget owner) {
        long address = Objects.requireNonNull(segment, "segment").address();
        PoolChunk chunk = registry.find(address);
        long bytes = chunk == null || segment.scope() != chunk.scope || !fastPaths ? -1
                : claimToCache(chunk, address, UnitState.BUDGET, owner, null);
        return bytes >= 0 ? bytes : freeSlow(segment, owner);
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
        if (subpage != null) {
            int sizeIndex = subpage.sizeIndex;
            int elementSize = subpage.elementSize;
            CacheStack stack = target != null ? target.stackFor(sizeIndex) : null;
            long handle = chunk.claimElement(subpage, address, state, owner);
            return handle == Handle.NONE ? -1 : keptBytes(chunk, handle, sizeIndex, elementSize, state, target, stack);
        }
        // A run's class comes from its handle as the claim reads it (a reallocate may have resized it).
        long handle = chunk.claimRun(address, state, owner);
        return handle == Handle.NONE ? -1
                : keptBytes(chunk, handle, chunk.sizeIndex(handle), chunk.unitBytes(handle), state, target, null);
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

    /** The rest of {@link #free} ({@code owner} null) and {@link #freeOwned}: explains every refusal. */
    private long freeSlow(MemorySegment segment, MemoryBudget owner) {
        checkFreeable(segment);
        long address = segment.address();
        byte state = owner == null ? UnitState.LIVE : UnitState.BUDGET;
        PoolChunk chunk = registry.find(address);
        long bytes;
        if (chunk == null) {
            bytes = memory.freeHuge(address, state, owner);
            if (bytes < 0) {
                throw lifecycle.isOpen() ? memory.notHuge(address) : Errors.closed(name);
            }
        } else {
            long handle = chunk.claim(address, state, owner);
            if (handle == Handle.NONE) {
                throw chunk.claimFailure(address, owner);
            }
            bytes = chunk.unitBytes(handle);
            giveBack(chunk, handle);
        }
        if (trackLeaks) {
            leaks.freed(address);
        }
        return bytes;
    }

    /** The checks every segment passed back to the pool goes through first: open pool, native, alive. */
    void checkFreeable(MemorySegment segment) {
        ensureOpen();
        if (!segment.isNative()) {
            throw Errors.heapSegment(name, segment);
        }
        if (!segment.scope().isAlive()) { // its chunk released: by a decay tick, or by a close racing this call
            throw lifecycle.isOpen() ? Errors.staleSegment(name, segment.address()) : Errors.closed(name);
        }
    }

    // ---- reallocate ----

    /**
     * {@link SegmentPool#reallocate} ({@code owner} null) and {@link MemoryBudget#reallocate}: see
     * {@link Reallocation}.
     */
    MemorySegment reallocate(MemorySegment segment, long newByteSize, long byteAlignment, MemoryBudget owner) {
        return reallocation.reallocate(segment, newByteSize, byteAlignment, owner);
    }

    // ---- budgets ----

    /** The units {@code budget} holds: {@code [0]} count and {@code [1]} bytes; for its reports. */
    long[] countOwned(MemoryBudget budget) {
        long[] counts = new long[4];
        for (PoolArena arena : arenas) {
            ArenaInspection.countUnits(arena, counts, budget);
        }
        for (NativeMemory.Huge huge : memory.liveHuge()) {
            if (huge.owner() == budget) {
                counts[0]++;
                counts[1] += huge.unitBytes();
            }
        }
        return counts;
    }

    /** Where the live allocations of {@code budget} that leak detection sampled were made. */
    java.util.List<LeakTracker.AllocationSite> sitesOf(MemoryBudget budget) {
        return leaks.liveSites(address -> {
            PoolChunk chunk = registry.find(address);
            return (chunk != null ? chunk.ownerAt(address) : memory.hugeOwner(address)) == budget;
        });
    }

    /** Closes every open budget, whatever it holds; returns a line for each that held something. */
    private java.util.List<String> closeBudgets() {
        java.util.List<String> held = new java.util.ArrayList<>();
        for (MemoryBudget budget : budgets) {
            String line = budget.closeByPool();
            if (line != null) {
                held.add(line);
            }
        }
        budgets.clear();
        return held;
    }

    // ---- units of pooled arenas ----

    /**
     * A block of {@link ScratchArena#BLOCK_SIZE} bytes, aligned to its size, handed out in state
     * {@code ARENA} (not zeroed): from {@code cache} when it is the calling thread's, else through
     * {@link #allocateSlow}.
     */
    MemorySegment allocateArenaBlock(PoolThreadCache cache) {
        int sizeIndex = arenaBlockClass;
        if (cache == null || cache.owner != Thread.currentThread() || !cache.has(sizeIndex)) {
            cache = fastPaths ? preparedCache(caches.current(), sizeIndex) : null;
        }
        if (cache != null) {
            return cache.pop(sizeIndex, ScratchArena.BLOCK_SIZE, UnitState.ARENA, null);
        }
        return allocateSlow(ScratchArena.BLOCK_SIZE, ScratchArena.BLOCK_SIZE, UnitState.ARENA, null, false);
    }

    /**
     * The stack of arena blocks of the calling thread's {@code cache}, refilled first if it is empty;
     * null when the cache cannot hold a block now (the memory limit, no room in its byte budget, or the
     * pool closing): the caller then takes the rare path.
     */
    CacheStack arenaBlocks(PoolThreadCache cache) {
        CacheStack blocks = cache.stackWithUnits(arenaBlockClass);
        if (blocks == null && fastPaths && prepared(cache, arenaBlockClass)) {
            blocks = cache.stackWithUnits(arenaBlockClass);
        }
        return blocks;
    }

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

    // ---- giving memory back ----

    /**
     * Gives back what has stayed free since at or before {@code cutoffNanos} (stamping what became
     * free since the last call with {@code nowNanos}) in every arena, purging the
     * long-free pages of chunks in use if {@code purge} (every free page when the cutoff is
     * {@code Long.MAX_VALUE}); first the calling thread's cache when the cutoff is {@code MAX_VALUE}.
     * Returns the native bytes released; 0 when the pool is closing.
     */
    long reclaim(long nowNanos, long cutoffNanos, boolean purge, String reason) {
        if (!lifecycle.enter()) {
            return 0;
        }
        try {
            if (cutoffNanos == Long.MAX_VALUE) {
                PoolThreadCache cache = caches.current();
                if (cache != null) {
                    cache.flush();
                }
                caches.forEachIdleStripe(PoolThreadCache::flush);
            } else {
                caches.forEachIdleStripe(PoolThreadCache::trimIdleEntries);
            }
            long released = 0;
            for (PoolArena arena : arenas) {
                released += arena.reclaim(nowNanos, cutoffNanos, purge, cutoffNanos == Long.MAX_VALUE, reason);
            }
            return released;
        } finally {
            lifecycle.exit();
        }
    }

    // ---- observing ----

    /** The pool's totals, read without a lock (approximate while threads allocate). */
    PoolTotals totals() {
        ThreadCaches.Totals threads = caches.totals();
        long used = 0;
        for (PoolArena arena : arenas) {
            used += arena.usedBytes();
        }
        long huge = memory.hugeBytes();
        int chunks = registry.size();
        long free = Math.max(0, (long) chunks * chunkSize - used);
        return new PoolTotals(memory.reservedBytes(), used + huge - threads.cachedBytes(), threads.cachedBytes(),
                free, threads.caches(), chunks, huge, threads.hits(), threads.misses(),
                (int) Math.max(0, threads.openArenas()));
    }

    /** Lock-free totals of a pool, for JMX and the periodic JFR event. */
    record PoolTotals(long reservedBytes, long activeBytes, long cachedBytes, long freeBytes, int threadCaches,
                      int chunks, long hugeBytes, long cacheHits, long cacheMisses, int openArenas) {}

    // ---- closing ----

    /**
     * The close protocol: OPEN to CLOSING (only one caller wins), wait until no rare operation is in
     * flight, close every budget, report leaks ({@code beforeRelease} gets what each budget still
     * held), release the memory (keeping what open arenas' bound segments still use), then CLOSED.
     * Returns false when the pool was already closing or closed.
     */
    boolean close(java.util.function.Consumer<java.util.List<String>> beforeRelease) {
        fastPaths = false;
        if (!lifecycle.beginClose()) {
            return false;
        }
        lifecycle.awaitQuiescence();
        beforeRelease.accept(closeBudgets());
        memory.releaseAll(nativeAccess);
        lifecycle.closed();
        caches.detachAll();
        return true;
    }

    void ensureOpen() {
        if (!lifecycle.isOpen()) {
            throw Errors.closed(name);
        }
    }
}
