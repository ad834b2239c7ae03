package dev.segpool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.ref.WeakReference;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.CancellationException;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A pool of native memory that hands out {@link MemorySegment}s carved from large chunks, takes them
 * back by address, and reuses them without going back to the operating system.
 *
 * <pre>{@code
 * try (SegmentPool pool = SegmentPool.create()) {
 *     MemorySegment buffer = pool.allocate(4096, 64);
 *     ...
 *     pool.free(buffer);
 * }
 * }</pre>
 *
 * <p>Thread-safe. Each platform thread gets a cache of its own (through a {@code ThreadLocal}) that
 * serves most allocate/free pairs without a lock; virtual threads and other short-lived threads can run
 * work under a scoped cache with {@link #runWithThreadCache} instead. Requests above the chunk size
 * are "huge": each is a dedicated native allocation, released on free.
 *
 * <p>A bad {@link #free} (a segment this pool did not allocate, one already freed, or an address inside
 * an allocation) throws {@link IllegalArgumentException} and changes nothing. After {@link #close()},
 * every method but {@link #name()} and {@code toString()} throws {@link IllegalStateException}, and
 * segments handed out earlier become inaccessible instead of pointing at released memory.
 */
public final class SegmentPool implements SegmentAllocator, AutoCloseable {
    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    private final String name;
    private final SizeClasses sizeClasses;
    private final int chunkSize;
    private final NativeMemory memory;
    private final ChunkRegistry registry;
    private final PoolArena[] arenas;
    private final Duration decay;
    private final ThreadCaches caches;
    private final Object closeLock = new Object();
    private final LeakTracker leaks;
    /** Whether pooled arenas bind their segments to their scope; decided once, when the pool is built. */
    private final boolean nativeAccess;
    private final AtomicInteger openArenas = new AtomicInteger();
    private final PoolMXBean mxBean;
    private final ScheduledFuture<?> decayTask;
    private final long decayPeriodNanos;
    /** Written by the decay thread only. */
    private long lastPurgeNanos = System.nanoTime();
    private volatile boolean closed;

    private SegmentPool(Builder b) {
        this.name = b.name != null ? b.name : "segpool-" + POOL_IDS.incrementAndGet();
        this.sizeClasses = new SizeClasses(b.pageSize, b.chunkSize);
        this.chunkSize = b.chunkSize;
        this.nativeAccess = SegmentPool.class.getModule().isNativeAccessEnabled();
        this.memory = new NativeMemory(name, chunkSize, b.maxMemory, nativeAccess && OsMemory.AVAILABLE);
        this.registry = memory.registry;
        int arenaCount = b.arenas > 0 ? b.arenas : defaultArenas(b.maxMemory, b.chunkSize);
        this.arenas = new PoolArena[arenaCount];
        for (int i = 0; i < arenaCount; i++) {
            arenas[i] = new PoolArena(i, sizeClasses, memory);
        }
        this.caches = new ThreadCaches(this, arenas, new PoolThreadCache.CacheConfig(b.smallCacheSize,
                b.normalCacheSize, b.maxCachedSize, b.cacheTrimInterval), b.threadLocalCaches);
        this.decay = b.decay;
        this.leaks = new LeakTracker(b.leakDetection != null ? b.leakDetection : LeakDetection.fromSystemProperty());
        this.mxBean = b.jmx ? PoolMXBean.register(this) : null;
        this.decayPeriodNanos = Math.clamp(decay.toNanos() / 4, MIN_DECAY_PERIOD_NANOS, MAX_DECAY_PERIOD_NANOS);
        this.decayTask = DECAY.scheduleWithFixedDelay(new DecayTask(this), decayPeriodNanos, decayPeriodNanos,
                TimeUnit.NANOSECONDS);
        PoolEvents.opened(this);
    }

    // ---- giving memory back by itself ----

    private static final long MIN_DECAY_PERIOD_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    private static final long MAX_DECAY_PERIOD_NANOS = TimeUnit.SECONDS.toNanos(1);
    /** One daemon thread runs the decay of every pool. */
    private static final ScheduledExecutorService DECAY = Executors.newSingleThreadScheduledExecutor(task -> {
        Thread thread = new Thread(task, "segpool-decay");
        thread.setDaemon(true);
        return thread;
    });

    /** Runs {@link #decayNow()} while its pool is reachable; holds it weakly. */
    private static final class DecayTask implements Runnable {
        private final WeakReference<SegmentPool> pool;

        DecayTask(SegmentPool pool) {
            this.pool = new WeakReference<>(pool);
        }

        @Override
        public void run() {
            SegmentPool p = pool.get();
            if (p == null) {
                throw new CancellationException("pool unreachable"); // ends the periodic task
            }
            try {
                p.decayNow();
            } catch (RuntimeException | Error e) {
                if (!p.closed) {
                    LeakTracker.LOGGER.log(System.Logger.Level.ERROR, "decay of pool '" + p.name + "' failed", e);
                }
            }
        }
    }

    /**
     * Gives back the caches of threads that have ended, then what stayed free for the decay time:
     * subpages no element used, chunks no page used and, with mmap'd memory, the pages of runs that
     * stayed free inside chunks in use. The caches of live but idle threads are left alone: only their
     * owner may touch them.
     */
    void decayNow() {
        if (closed) {
            return;
        }
        caches.releaseEnded();
        long now = System.nanoTime();
        long cutoff = now - decay.toNanos() - decayPeriodNanos; // marks lag by up to one tick: never early
        for (PoolArena arena : arenas) {
            arena.clockNanos = now;
            arena.releaseIdleSubpages(cutoff);
            for (PoolChunk chunk : arena.takeEmptyChunks(cutoff)) {
                memory.releaseChunk(chunk, "decay");
            }
        }
        if (memory.mapped && now - lastPurgeNanos >= decay.toNanos()) {
            lastPurgeNanos = now;
            for (PoolArena arena : arenas) {
                arena.purge(false);
            }
        }
    }



    /** Two arenas per processor, but no more than a memory limit can give a chunk and some room each. */
    static int defaultArenas(long maxMemory, int chunkSize) {
        long byLimit = Math.max(1, maxMemory / chunkSize / 3);
        return (int) Math.min(2L * Runtime.getRuntime().availableProcessors(), byLimit);
    }

    /** A pool with default settings: 8 KiB pages, 4 MiB chunks, two arenas per processor, no limit. */
    public static SegmentPool create() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    // ---- allocate and free ----

    /**
     * Allocates a native segment of exactly {@code byteSize} bytes whose address is a multiple of
     * {@code byteAlignment}. Its contents are unspecified, like malloc's. Size 0 is allowed and gets an
     * address of its own.
     *
     * @throws IllegalArgumentException    if {@code byteSize < 0} or {@code byteAlignment} is not a power
     *                                     of two
     * @throws MemoryLimitExceededException if the pool would need native memory beyond its limit
     * @throws IllegalStateException       if the pool is closed
     */
    @Override
    public MemorySegment allocate(long byteSize, long byteAlignment) {
        MemorySegment segment = allocate(byteSize, byteAlignment, UnitState.LIVE);
        if (leaks.enabled()) {
            leaks.allocated(segment.address(), byteSize);
        }
        return segment;
    }

    /**
     * Allocates a unit handed out in {@code state}: LIVE for users, ARENA (zeroed) for pooled arenas.
     * At the memory limit, gives back what the pool can (this thread's cache, idle subpages, empty
     * chunks) and tries once more.
     */
    MemorySegment allocate(long byteSize, long byteAlignment, byte state) {
        return allocate(byteSize, byteAlignment, state, state == UnitState.ARENA);
    }

    /** As above; {@code zero} says whether the contents must read as zero. */
    MemorySegment allocate(long byteSize, long byteAlignment, byte state, boolean zero) {
        if (byteSize < 0) {
            throw Errors.badSize(byteSize);
        }
        if (byteAlignment <= 0 || (byteAlignment & (byteAlignment - 1)) != 0) {
            throw Errors.badAlignment(byteAlignment);
        }
        ensureOpen();
        try {
            return allocateChecked(byteSize, byteAlignment, state, zero);
        } catch (MemoryLimitExceededException first) {
            long reserved = memory.reservedBytes();
            releaseFree("limit", false);
            if (memory.reservedBytes() < reserved) {
                try {
                    return allocateChecked(byteSize, byteAlignment, state, zero);
                } catch (MemoryLimitExceededException second) {
                    first = second;
                }
            }
            PoolEvents.limitExceeded(name, first.limitBytes(), first.reservedBytes(), first.requestedBytes());
            throw first;
        }
    }

    private MemorySegment allocateChecked(long byteSize, long byteAlignment, byte state, boolean zero) {
        int sizeIndex;
        int alignPages = 1;
        if (byteAlignment <= SizeClasses.QUANTUM) {
            if (byteSize > chunkSize) {
                return memory.allocateHuge(byteSize, byteAlignment, state);
            }
            sizeIndex = sizeClasses.sizeIndex(byteSize);
        } else {
            sizeIndex = sizeClasses.sizeIndex(byteSize, byteAlignment);
            if (sizeIndex < 0) {
                return memory.allocateHuge(byteSize, byteAlignment, state);
            }
            alignPages = sizeClasses.alignmentPages(byteAlignment);
        }
        PoolThreadCache cache = caches.current();
        if (cache == null) {
            return uncachedArena().allocate(sizeIndex, alignPages, byteSize, state, zero);
        }
        if (alignPages == 1) {
            MemorySegment segment = cache.allocate(sizeIndex, byteSize, state);
            if (segment != null) {
                return zero ? segment.fill((byte) 0) : segment;
            }
        }
        return cache.arena.allocate(sizeIndex, alignPages, byteSize, state, zero);
    }

    /**
     * Gives back a segment returned by {@link #allocate}. The pool finds the allocation from the
     * segment's address alone; slices that start at that address free it too.
     *
     * @throws IllegalArgumentException if the segment did not come from this pool (a heap segment, a
     *                                  JDK arena's segment, another pool's), was already freed, does not
     *                                  start an allocation, or belongs to one of this pool's arenas
     *                                  (those are freed by closing the arena); the pool is unchanged
     * @throws NullPointerException     if {@code segment} is null
     * @throws IllegalStateException    if the pool is closed
     */
    public void free(MemorySegment segment) {
        Objects.requireNonNull(segment, "segment");
        ensureOpen();
        if (!segment.isNative()) {
            throw Errors.heapSegment(name, segment);
        }
        long address = segment.address();
        if (!segment.scope().isAlive()) {
            throw Errors.staleSegment(name, address);
        }
        if (!freeUnit(address, UnitState.LIVE, true)) {
            throw memory.notHuge(address);
        }
        if (leaks.enabled()) {
            leaks.freed(address);
        }
    }

    /** Gives back a unit of a pooled arena that is closing (or was found unreachable). */
    void freeArenaUnit(long address, boolean useCache) {
        if (!closed) { // else the pool released everything already
            freeUnit(address, UnitState.ARENA, useCache);
        }
    }

    /**
     * Claims the unit in state {@code expected} that starts at {@code address} and gives it back: a huge
     * allocation to the OS; a pooled unit into the calling thread's cache when {@code useCache} and the
     * cache holds its class, else to its arena. Returns false when the address is in no chunk and starts
     * no huge allocation; throws, changing nothing, when no such unit starts there.
     */
    private boolean freeUnit(long address, byte expected, boolean useCache) {
        PoolChunk chunk = registry.find(address);
        if (chunk == null) {
            return memory.freeHuge(address, expected);
        }
        long handle = chunk.claim(address, expected);
        int sizeIndex = chunk.sizeIndex(handle);
        PoolThreadCache cache = useCache ? caches.current() : null;
        if (cache == null || !cache.offer(chunk, handle, sizeIndex)) {
            chunk.arena.free(chunk, handle, sizeIndex);
        }
        return true;
    }

    // ---- pooled arenas ----

    /**
     * A confined {@link Arena} whose memory comes from this pool: usable by the calling thread only;
     * its segments are zero-filled; {@code close()} gives them all back at once. With native access
     * ({@code --enable-native-access=dev.segpool}, or {@code ALL-UNNAMED} on the class path), its
     * segments are bound to its scope: an access after {@code close()} throws
     * {@link IllegalStateException}, an access from another thread {@link WrongThreadException}.
     * Without it, they stay valid slices of their chunk until the pool closes. Its segments cannot be
     * passed to {@link #free}.
     */
    public Arena newArena() {
        return openArena(false);
    }

    /** As {@link #newArena()}, for an arena usable (and closable) by any thread. */
    public Arena newSharedArena() {
        return openArena(true);
    }

    private Arena openArena(boolean shared) {
        ensureOpen();
        LeakTracker.AllocationSite site = leaks.enabled()
                ? leaks.sample((shared ? "shared" : "confined") + " Arena opened") : null;
        PooledArena arena = new PooledArena(this, shared, nativeAccess, site);
        openArenas.incrementAndGet();
        return arena;
    }

    void arenaClosed() {
        openArenas.decrementAndGet();
    }

    /** Binds a pooled segment to {@code arena}'s scope; a restricted method, called in native mode only. */
    static MemorySegment rebind(MemorySegment segment, Arena arena) {
        return segment.reinterpret(arena, null);
    }

    // ---- thread caches ----

    /**
     * Runs {@code task} with a thread cache of this pool bound to the calling thread through a
     * {@link ScopedValue}, and gives the cache's contents back when the task ends. For virtual threads
     * and other short-lived threads, which get no thread-local cache. Inside an already bound task of
     * the same thread, the task simply runs. Threads forked inside the task (which inherit the binding)
     * do not touch the cache; they allocate from the arena.
     */
    public void runWithThreadCache(Runnable task) {
        Objects.requireNonNull(task, "task");
        ensureOpen();
        caches.callBound(() -> {
            task.run();
            return null;
        });
    }

    /** As {@link #runWithThreadCache}, for a task with a result. */
    public <T> T callWithThreadCache(Callable<T> task) throws Exception {
        Objects.requireNonNull(task, "task");
        ensureOpen();
        return caches.callBound(task::call);
    }

    /**
     * Gives the calling thread's cache entries (thread-local or scoped) back to the arenas.
     *
     * @return true if the cache held anything
     */
    public boolean trimCurrentThreadCache() {
        ensureOpen();
        PoolThreadCache cache = caches.existing();
        return cache != null && cache.flush();
    }

    /** A cache for {@code owner}; package-private so that JCStress can hand one thread's cache to another. */
    PoolThreadCache attach(Thread owner) {
        return caches.attach(owner);
    }

    /** Called by a cache that has been released. */
    void detach(PoolThreadCache cache) {
        caches.detach(cache);
    }

    /** The arena of a thread without a cache. */
    private PoolArena uncachedArena() {
        return arenas[(int) (Thread.currentThread().threadId() % arenas.length)];
    }

    boolean isClosed() {
        return closed;
    }

    // ---- giving memory back ----

    /**
     * Gives unused memory back to the operating system now: the calling thread's cache entries, the
     * runs of subpages no element uses, every chunk that has no page in use and, when the pool maps
     * its memory itself (native access on Linux), the free pages inside chunks in use.
     *
     * @return the native bytes released (chunks released plus pages purged)
     */
    public long trim() {
        ensureOpen();
        return releaseFree("trim", memory.mapped);
    }

    /**
     * Gives back the calling thread's cache entries, idle subpages and empty chunks and, if
     * {@code purge}, the free pages of chunks in use; returns the native bytes released.
     */
    private long releaseFree(String reason, boolean purge) {
        PoolThreadCache cache = caches.existing();
        if (cache != null) {
            cache.flush();
        }
        long released = 0;
        for (PoolArena arena : arenas) {
            arena.releaseIdleSubpages(Long.MAX_VALUE);
            for (PoolChunk chunk : arena.takeEmptyChunks(Long.MAX_VALUE)) {
                if (memory.releaseChunk(chunk, reason)) {
                    released += chunkSize;
                }
            }
            if (purge) {
                released += arena.purge(true);
            }
        }
        return released;
    }

    // ---- observing ----

    /** A snapshot of the pool's memory and activity; see {@link PoolMetrics} for what agrees with what. */
    public PoolMetrics metrics() {
        ensureOpen();
        List<PoolMetrics.ArenaMetrics> arenaMetrics = new ArrayList<>(arenas.length);
        long used = 0;
        long free = 0;
        for (PoolArena arena : arenas) {
            PoolMetrics.ArenaMetrics m = arena.metrics();
            arenaMetrics.add(m);
            used += m.usedBytes();
            free += m.freeBytes();
        }
        ThreadCaches.Totals threads = caches.totals();
        long huge = memory.hugeBytes();
        return new PoolMetrics(name, memory.reservedBytes(), used + huge - threads.cachedBytes(),
                threads.cachedBytes(), free, threads.caches(), registry.size(), huge, memory.hugeAllocations.sum(),
                memory.hugeDeallocations.sum(), threads.hits(), threads.misses(),
                openArenas.get(), nativeAccess, List.copyOf(arenaMetrics));
    }

    /** A human-readable report: the pool's settings and totals, its arenas, and each chunk's pages. */
    public String dumpStats() {
        PoolMetrics m = metrics();
        StringBuilder out = new StringBuilder();
        out.append("SegmentPool '").append(name).append("': pageSize ").append(sizeClasses.pageSize)
                .append(", chunkSize ").append(chunkSize).append(", arenas ").append(arenas.length)
                .append(", maxMemory ").append(memory.limit == Long.MAX_VALUE ? "none" : memory.limit)
                .append('\n');
        out.append("  reserved ").append(m.reservedBytes()).append(" B, active ").append(m.activeBytes())
                .append(" B, cached ").append(m.cachedBytes()).append(" B, free in chunks ").append(m.freeBytes())
                .append(" B, huge ").append(m.hugeBytes()).append(" B\n");
        out.append("  chunks ").append(m.chunks()).append(", thread caches ").append(m.threadCaches())
                .append(", cache hits ").append(m.cacheHits()).append(", misses ").append(m.cacheMisses())
                .append('\n');
        out.append("  pooled arenas open ").append(m.openArenas()).append(m.nativeAccess()
                ? "; native access: arena segments are bound to their arena's scope\n"
                : "; no native access: arena segments stay valid slices of their chunk until the pool closes\n");
        out.append("  page map: '.' free, '#' run in use, 's' subpage\n");
        for (int i = 0; i < arenas.length; i++) {
            PoolMetrics.ArenaMetrics a = m.arenas().get(i);
            out.append("  arena ").append(i).append(": caches ").append(a.threadCaches()).append(", used ")
                    .append(a.usedBytes()).append(" B, free ").append(a.freeBytes()).append(" B, chunks ")
                    .append(a.chunks()).append(", small ").append(a.smallAllocations()).append('/')
                    .append(a.smallDeallocations()).append(", normal ").append(a.normalAllocations()).append('/')
                    .append(a.normalDeallocations()).append(" (allocations/deallocations)\n");
            for (PoolMetrics.SizeClassMetrics c : a.sizeClasses()) {
                out.append("    small ").append(c.elementSize()).append(" B: subpages ").append(c.subpages())
                        .append(", elements used ").append(c.usedElements()).append(", free ")
                        .append(c.freeElements()).append('\n');
            }
            arenas[i].describe(out, true);
        }
        return out.toString();
    }

    /** The pool's name. */
    public String name() {
        return name;
    }

    /** The limit on reserved bytes, or -1 when there is none. */
    long maxMemory() {
        return memory.limit == Long.MAX_VALUE ? -1 : memory.limit;
    }

    @Override
    public String toString() {
        return "SegmentPool[" + name + (closed ? ", closed]" : "]");
    }

    // ---- closing ----

    /**
     * Releases all of the pool's native memory. Segments handed out earlier become inaccessible (their
     * chunk's scope is closed): an access throws {@link IllegalStateException} instead of reading freed
     * memory. Every later call on the pool, {@code close()} included, throws
     * {@link IllegalStateException}, except {@link #name()} and {@code toString()}.
     */
    @Override
    public void close() {
        synchronized (closeLock) {
            ensureOpen();
            closed = true;
        }
        decayTask.cancel(false);
        PoolEvents.closed(this);
        if (mxBean != null) {
            mxBean.unregister();
        }
        caches.detachAll();
        reportLeaks();
        memory.releaseAll();
    }

    /** Warns, through {@code System.Logger} "dev.segpool", of segments never freed and arenas never closed. */
    private void reportLeaks() {
        long[] units = new long[4];
        for (PoolArena arena : arenas) {
            arena.countUnits(units);
        }
        for (NativeMemory.Huge huge : memory.liveHuge()) {
            int at = huge.state() == UnitState.LIVE ? 0 : 2;
            units[at]++;
            units[at + 1] += huge.byteSize();
        }
        int arenasOpen = openArenas.get();
        if (units[0] == 0 && arenasOpen == 0) {
            return;
        }
        LeakTracker.warn("pool '" + name + "' closed with " + units[0] + " segments (" + units[1]
                + " bytes) never freed and " + arenasOpen + " arenas never closed (holding " + units[3]
                + " bytes)"
                + (leaks.enabled() ? "" : "; set leakDetection (or -Dsegpool.leakDetection=all) to see where"),
                leaks.liveSites());
    }

    void ensureOpen() {
        if (closed) {
            throw Errors.closed(name);
        }
    }

    // ---- for tests in this package ----

    PoolArena[] arenas() {
        return arenas;
    }

    SizeClasses sizeClasses() {
        return sizeClasses;
    }

    /** The scoped value that binds caches of this pool; see {@link ThreadCaches#scopedValue()}. */
    ScopedValue<PoolThreadCache> scopedCache() {
        return caches.scopedValue();
    }

    Duration decay() {
        return decay;
    }

    /**
     * Settings of a {@link SegmentPool}. Every setter checks its value at once and throws
     * {@link IllegalArgumentException} naming the setting and the allowed range; {@link #build()} checks
     * the settings that depend on each other.
     */
    public static final class Builder {
        static final int MIN_PAGE_SIZE = 4096;
        static final int MAX_PAGE_SIZE = 1 << 20;
        static final int MIN_CHUNK_PAGES = 8;
        static final int MAX_CHUNK_PAGES = 1 << 14;
        static final int MAX_CACHE_SIZE = 1 << 15;
        static final int MAX_ARENAS = 1024;

        private String name;
        private int arenas;
        private int pageSize = 8192;
        private int chunkSize = 4 << 20;
        private int smallCacheSize = 256;
        private int normalCacheSize = 64;
        private int maxCachedSize = 32 * 1024;
        private int cacheTrimInterval = 8192;
        private long maxMemory = Long.MAX_VALUE;
        private Duration decay = Duration.ofSeconds(10);
        private boolean jmx;
        private boolean threadLocalCaches = true;
        private LeakDetection leakDetection;

        private Builder() {}

        /** The name shown in reports, JFR events and JMX; default {@code segpool-N}. */
        public Builder name(String name) {
            Objects.requireNonNull(name, "name");
            if (name.isBlank() || name.length() > 200 || name.chars().anyMatch(c -> c == ',' || c == '=' || c == ':'
                    || c == '"' || c == '*' || c == '?' || c == '\n')) {
                throw Errors.badSetting("name", '"' + name + '"',
                        "1 to 200 characters, not blank, without , = : \" * ? or newline");
            }
            this.name = name;
            return this;
        }

        /** Number of arenas, 1 to 1024; default two per processor, fewer when {@link #maxMemory} is small. */
        public Builder arenas(int arenas) {
            if (arenas < 1 || arenas > MAX_ARENAS) {
                throw Errors.badSetting("arenas", arenas, "between 1 and " + MAX_ARENAS);
            }
            this.arenas = arenas;
            return this;
        }

        /** Page size in bytes: a power of two from 4096 to 1 MiB; default 8192. */
        public Builder pageSize(int pageSize) {
            if (pageSize < MIN_PAGE_SIZE || pageSize > MAX_PAGE_SIZE || Integer.bitCount(pageSize) != 1) {
                throw Errors.badSetting("pageSize", pageSize,
                        "a power of two between " + MIN_PAGE_SIZE + " and " + MAX_PAGE_SIZE);
            }
            this.pageSize = pageSize;
            return this;
        }

        /**
         * Chunk size in bytes: a power of two of 8 to 16384 pages (checked against the page size by
         * {@link #build()}); default 4 MiB.
         */
        public Builder chunkSize(int chunkSize) {
            if (chunkSize < MIN_PAGE_SIZE * MIN_CHUNK_PAGES || Integer.bitCount(chunkSize) != 1) {
                throw Errors.badSetting("chunkSize", chunkSize, "a power of two of at least "
                        + MIN_PAGE_SIZE * MIN_CHUNK_PAGES + " (8 to 16384 pages)");
            }
            this.chunkSize = chunkSize;
            return this;
        }

        /** Entries per small size class in each thread cache, 0 to 32768 (0: none); default 256. */
        public Builder smallCacheSize(int entries) {
            this.smallCacheSize = checkCacheSize("smallCacheSize", entries);
            return this;
        }

        /** Entries per cached normal size class in each thread cache, 0 to 32768; default 64. */
        public Builder normalCacheSize(int entries) {
            this.normalCacheSize = checkCacheSize("normalCacheSize", entries);
            return this;
        }

        /** Largest size class thread caches hold, 0 to the chunk size (0: none); default 32 KiB. */
        public Builder maxCachedSize(int bytes) {
            if (bytes < 0) {
                throw Errors.badSetting("maxCachedSize", bytes, "between 0 and chunkSize");
            }
            this.maxCachedSize = bytes;
            return this;
        }

        /** Allocations of a thread cache between two trims of its unused entries, at least 1; default 8192. */
        public Builder cacheTrimInterval(int allocations) {
            if (allocations < 1) {
                throw Errors.badSetting("cacheTrimInterval", allocations, "at least 1");
            }
            this.cacheTrimInterval = allocations;
            return this;
        }

        /**
         * Hard limit on the native memory the pool reserves (chunks and huge allocations), at least one
         * chunk; default none. An allocation that would cross it throws
         * {@link MemoryLimitExceededException}.
         */
        public Builder maxMemory(long bytes) {
            if (bytes < MIN_PAGE_SIZE * MIN_CHUNK_PAGES) {
                throw Errors.badSetting("maxMemory", bytes, "at least one chunk (chunkSize bytes)");
            }
            this.maxMemory = bytes;
            return this;
        }

        /** How long free memory is kept before it goes back to the OS, 0 to 1 day; default 10 seconds. */
        public Builder decay(Duration decay) {
            Objects.requireNonNull(decay, "decay");
            if (decay.isNegative() || decay.compareTo(Duration.ofDays(1)) > 0) {
                throw Errors.badSetting("decay", decay, "between 0 and 1 day");
            }
            this.decay = decay;
            return this;
        }

        /** Registers an MXBean {@code dev.segpool:type=SegmentPool,name=<name>}; default false. */
        public Builder jmx(boolean jmx) {
            this.jmx = jmx;
            return this;
        }

        /**
         * Whether platform threads get a thread-local cache on first use; default true. Without, only
         * tasks run through {@link SegmentPool#runWithThreadCache} use a cache.
         */
        public Builder threadLocalCaches(boolean enabled) {
            this.threadLocalCaches = enabled;
            return this;
        }

        /**
         * What the pool records to explain leaks; default from the system property
         * {@code segpool.leakDetection}, else {@link LeakDetection#OFF}.
         */
        public Builder leakDetection(LeakDetection level) {
            this.leakDetection = Objects.requireNonNull(level, "leakDetection");
            return this;
        }

        /** A new pool with these settings. */
        public SegmentPool build() {
            int pages = chunkSize / pageSize;
            if (chunkSize < pageSize || pages < MIN_CHUNK_PAGES || pages > MAX_CHUNK_PAGES) {
                throw Errors.badSetting("chunkSize", chunkSize, "between " + MIN_CHUNK_PAGES + " and "
                        + MAX_CHUNK_PAGES + " pages of pageSize " + pageSize + " ("
                        + (long) pageSize * MIN_CHUNK_PAGES + " to " + (long) pageSize * MAX_CHUNK_PAGES + " bytes)");
            }
            if (maxCachedSize > chunkSize) {
                throw Errors.badSetting("maxCachedSize", maxCachedSize, "between 0 and chunkSize " + chunkSize);
            }
            if (maxMemory < chunkSize) {
                throw Errors.badSetting("maxMemory", maxMemory, "at least one chunk (chunkSize " + chunkSize + ")");
            }
            return new SegmentPool(this);
        }

        private static int checkCacheSize(String setting, int entries) {
            if (entries < 0 || entries > MAX_CACHE_SIZE) {
                throw Errors.badSetting(setting, entries, "between 0 and " + MAX_CACHE_SIZE);
            }
            return entries;
        }
    }
}
