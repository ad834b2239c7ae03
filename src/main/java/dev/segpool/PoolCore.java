package dev.segpool;

import java.lang.foreign.MemorySegment;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The allocator behind a {@link SegmentPool}: routes requests to thread caches, arenas and huge
 * allocations, and owns the pool's {@link Lifecycle}; its {@link Deallocator} ({@link #frees}) takes
 * segments back by address. The public class, budgets, pooled arenas ({@link ScratchArena}) and
 * thread caches all go through it.
 *
 * <p>Shape: every entry is a small fast path followed by one call to a rare path. The fast paths
 * ({@link #allocate}, {@link Deallocator#free}) read the lifecycle state, take one thread-local lookup
 * and touch only the caller's cache, the chunk registry and one unit's state byte, so that they inline
 * into their callers and the segment they make can be scalar-replaced. Everything else (validation
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
    /** The free side: takes segments back by address. */
    final Deallocator frees;
    /**
     * Whether {@link #allocate} and {@link Deallocator#free} may take their fast paths: false with
     * leak tracking, and from the moment {@link #close} starts. One volatile read on each fast path;
     * written here only.
     */
    volatile boolean fastPaths;

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
        this.frees = new Deallocator(this);
    }

    // ---- allocate ----

    /**
     * {@link SegmentPool#allocate(long, long)}: the calling thread's cache, or on a virtual thread a
     * shared stripe claimed for this one pop; else the rare path ({@link #allocateSlowAt}).
     * A cache miss only prepares the cache ({@link #preparedCache}) and the pop follows, so that a
     * cached class has one allocation site here whether it hit or missed, from a thread's cache or a
     * stripe: the caller's escape analysis can remove the segment.
     */
    MemorySegment allocate(long byteSize, long byteAlignment) {
        // One slice for both ways, made after they merge: of the chunk's segment at the unit's offset,
        // or of the segment the rare path's unit lies in (it returns an address and makes no segment).
        // A caller that keeps only the address then gets the segment scalar-replaced also where the rare
        // path is in the profile (a call site that serves sizes above the caches' as well), and on the
        // rare path itself: with a segment made on each way, the two merged and escaped.
        MemorySegment base = null;
        long offset = 0;
        if (fastRequest(byteSize, byteAlignment) && fastPaths) {
            int sizeIndex = sizeClasses.lookupIndex(byteSize);
            PoolThreadCache cache = cacheFor(sizeIndex);
            if (cache != null) {
                base = cache.topSegment(sizeIndex);
                offset = cache.popOffset(sizeIndex, UnitState.LIVE, null);
            }
        }
        if (base == null) {
            long address = allocateSlowAt(byteSize, byteAlignment, UnitState.LIVE, null, false);
            base = unitBase(address);
            offset = address - base.address();
        }
        return base.asSlice(offset, byteSize);
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
     * The address of a unit of class {@code sizeIndex} from a shared stripe claimed for this one pop
     * (virtual threads only), the stripe refilled first if it lacks the class; handed out (and zeroed)
     * as {@link PoolThreadCache#popAddress} says, which gives the stripe back. 0 when the caller gets no
     * stripe, or the stripe does not hold the class.
     *
     * @throws MemoryLimitExceededException when the stripe's refill meets the memory limit
     */
    private long popFromStripe(int sizeIndex, long byteSize, byte state, MemoryBudget owner, boolean zero) {
        PoolThreadCache stripe = caches.claimStripe();
        if (stripe == null) {
            return 0;
        }
        boolean ready = false;
        try {
            ready = stripe.prepare(sizeIndex);
        } finally {
            if (!ready) {
                stripe.unclaim();
            }
        }
        return ready ? stripe.popAddress(sizeIndex, byteSize, state, owner, zero) : 0;
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
     *
     * <p>One method, above C2's {@code MaxInlineSize} (35 bytecodes): a method that small is inlined
     * however rarely its call runs, and the calls inside it are then judged by its own count, so that
     * the whole refill counted as hot. A {@code runWithThreadCache} task that starts empty misses once
     * in 16 pairs: with a 34-byte helper here the refill was inlined into allocate, which compiled to
     * 9 KB on its own, and every caller compiled after that (on any thread) made the segment on the heap.
     */
    private PoolThreadCache preparedCache(PoolThreadCache current, int sizeIndex) {
        PoolThreadCache cache = current != null ? current : caches.createForCaller();
        try {
            return cache != null && cache.prepare(sizeIndex) ? cache : null;
        } catch (MemoryLimitExceededException atLimit) {
            return null; // a miss like any other: the caller's rare path gives back what it can and tries again
        }
    }

    /**
     * The rare path for callers that want the segment (budgets, pooled arenas): {@link #allocateSlowAt},
     * then the unit's slice of the segment it lies in.
     */
    MemorySegment allocateSlow(long byteSize, long byteAlignment, byte state, MemoryBudget owner, boolean zero) {
        long address = allocateSlowAt(byteSize, byteAlignment, state, owner, zero);
        MemorySegment base = unitBase(address);
        return base.asSlice(address - base.address(), byteSize);
    }

    /**
     * Everything {@link #allocate} does not do on its fast path, for a unit handed out in {@code state}
     * (LIVE for users, BUDGET for {@code owner}, ARENA for pooled arenas), zeroed if {@code zero}; returns
     * its address. At the memory limit, gives back what the pool can (this thread's cache, idle
     * subpages, empty chunks) and tries once more. The rare paths make no segment of their own, so that
     * {@code allocate} makes one, from the base {@link #unitBase} finds, and not a second slice of one
     * made here.
     */
    long allocateSlowAt(long byteSize, long byteAlignment, byte state, MemoryBudget owner, boolean zero) {
        checkRequest(byteSize, byteAlignment);
        ensureOpen();
        long address;
        try {
            address = allocateChecked(byteSize, byteAlignment, state, owner, zero);
        } catch (MemoryLimitExceededException first) {
            address = retryAtLimit(byteSize, byteAlignment, state, owner, zero, first);
        }
        if (trackLeaks && state != UnitState.ARENA) {
            leaks.allocated(address, byteSize);
        }
        return address;
    }

    /**
     * The segment a unit just handed out at {@code address} is a slice of: its chunk's, or the huge
     * allocation's own. Throws {@link IllegalStateException} when there is none any more: the pool
     * closed since, and released it.
     */
    private MemorySegment unitBase(long address) {
        PoolChunk chunk = registry.find(address);
        MemorySegment base = chunk != null ? chunk.segment : memory.hugeSegment(address);
        if (base == null) {
            throw Errors.closed(name);
        }
        return base;
    }

    private long retryAtLimit(long byteSize, long byteAlignment, byte state, MemoryBudget owner,
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

    private long allocateChecked(long byteSize, long byteAlignment, byte state, MemoryBudget owner, boolean zero) {
        int sizeIndex = classOf(byteSize, byteAlignment);
        if (sizeIndex < 0) {
            return memory.allocateHuge(byteSize, byteAlignment, state, owner);
        }
        int alignPages = byteAlignment <= SizeClasses.QUANTUM ? 1 : sizeClasses.alignmentPages(byteAlignment);
        PoolThreadCache cache = caches.currentOrCreate();
        if (cache == null) {
            long address = alignPages == 1 ? popFromStripe(sizeIndex, byteSize, state, owner, zero) : 0;
            if (address != 0) {
                return address;
            }
            return uncachedArena().allocate(sizeIndex, alignPages, byteSize, state, owner, zero);
        }
        if (alignPages == 1 && cache.prepare(sizeIndex)) {
            return cache.popAddress(sizeIndex, byteSize, state, owner, zero);
        }
        return cache.arena.allocate(sizeIndex, alignPages, byteSize, state, owner, zero);
    }

    /** The arena of a thread without a cache. */
    private PoolArena uncachedArena() {
        return arenas[(int) (Thread.currentThread().threadId() % arenas.length)];
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
        if (blocks == null && fastPaths && preparedCache(cache, arenaBlockClass) != null) {
            blocks = cache.stackWithUnits(arenaBlockClass);
        }
        return blocks;
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
