package dev.segpool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.Callable;

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
 * segments handed out earlier become inaccessible instead of pointing at released memory. The one
 * exception is a pooled arena still open with native access: its chunks stay mapped until it closes,
 * so its segments (and other segments in the same chunks) stay readable until then, never pointing at
 * released memory.
 */
public final class SegmentPool implements SegmentAllocator, AutoCloseable {
    private final PoolCore core;
    /** {@code core}'s free side, kept here so that {@link #free} reaches it with one load. */
    private final Deallocator frees;
    private final Decay decay;
    private final PoolJmx jmx;
    private final Duration decayTime;

    SegmentPool(PoolSettings settings) {
        this.core = new PoolCore(settings);
        this.frees = core.frees;
        this.decayTime = settings.decay();
        this.jmx = settings.jmx() ? PoolJmx.register(this) : null;
        this.decay = new Decay(core, settings.decay(), settings.scheduler());
        PoolEvents.opened(this);
    }

    /**
     * A pool with default settings: 8 KiB pages, 4 MiB chunks, two arenas per processor, no limit.
     *
     * @return a new pool
     */
    public static SegmentPool create() {
        return builder().build();
    }

    /**
     * A builder for a pool with settings of its own.
     *
     * @return a new builder with every setting at its default
     */
    public static Builder builder() {
        return new PoolBuilder();
    }

    // ---- allocate and free ----

    /**
     * Allocates a native segment of exactly {@code byteSize} bytes, aligned to 1: as
     * {@link #allocate(long, long) allocate(byteSize, 1)}. (Declared here, not inherited from
     * {@code SegmentAllocator}, so that the JIT profiles this allocator's calls apart from other
     * allocators' and inlines them.)
     *
     * @param byteSize the size in bytes, at least 0
     * @return the segment; give it back with {@link #free}
     * @throws IllegalArgumentException     if {@code byteSize < 0}
     * @throws MemoryLimitExceededException if the pool would need native memory beyond its limit
     * @throws IllegalStateException        if the pool is closed
     */
    @Override
    public MemorySegment allocate(long byteSize) {
        return core.allocate(byteSize, 1);
    }

    /**
     * Allocates a native segment of exactly {@code byteSize} bytes whose address is a multiple of
     * {@code byteAlignment}. Its contents are unspecified, like malloc's. Size 0 is allowed and gets an
     * address of its own.
     *
     * @param byteSize      the size in bytes, at least 0
     * @param byteAlignment the alignment in bytes, a power of two
     * @return the segment; give it back with {@link #free}
     * @throws IllegalArgumentException     if {@code byteSize < 0} or {@code byteAlignment} is not a power
     *                                      of two
     * @throws MemoryLimitExceededException if the pool would need native memory beyond its limit
     * @throws IllegalStateException        if the pool is closed
     */
    @Override
    public MemorySegment allocate(long byteSize, long byteAlignment) {
        return core.allocate(byteSize, byteAlignment);
    }

    /**
     * Gives back a segment returned by {@link #allocate}. The pool finds the allocation from the
     * segment's address alone; slices that start at that address free it too.
     *
     * @param segment the segment to give back
     * @throws IllegalArgumentException if the segment did not come from this pool (a heap segment, a
     *                                  JDK arena's segment, another pool's), was already freed, does not
     *                                  start an allocation, belongs to one of this pool's arenas
     *                                  (those are freed by closing the arena) or to one of its budgets
     *                                  (freed through that budget); the pool is unchanged
     * @throws NullPointerException     if {@code segment} is null
     * @throws IllegalStateException    if the pool is closed
     */
    public void free(MemorySegment segment) {
        frees.free(segment);
    }

    /**
     * Changes the size of a segment {@link #allocate} returned, as C's {@code realloc} does, with
     * alignment 1: see {@link #reallocate(MemorySegment, long, long)}.
     *
     * @param segment     a live segment of this pool
     * @param newByteSize the new size in bytes, at least 0
     * @return the segment of {@code newByteSize} bytes; {@code segment} must not be used again
     * @throws IllegalArgumentException     as for {@link #free}, or if {@code newByteSize < 0}
     * @throws MemoryLimitExceededException if the pool would need native memory beyond its limit;
     *                                      {@code segment} stays valid and unchanged
     * @throws NullPointerException         if {@code segment} is null
     * @throws IllegalStateException        if the pool is closed
     */
    public MemorySegment reallocate(MemorySegment segment, long newByteSize) {
        return core.reallocate(segment, newByteSize, 1, null);
    }

    /**
     * Changes the size of a segment {@link #allocate} returned, as C's {@code realloc} does: returns a
     * segment of exactly {@code newByteSize} bytes, aligned to {@code byteAlignment}, that holds the
     * first {@code min(old, new)} bytes of the old one (the old size is {@code segment.byteSize()}); the
     * rest of its contents is unspecified. It is at the same address when the allocation has room (its
     * size class holds the new size) or, for a run of pages, when the pages that follow it are free;
     * else the pool allocates, copies and frees the old allocation. Size 0 gives a live zero-size
     * allocation (still to be freed), never a free. Of a {@code reallocate} and a {@code free} racing
     * on one segment, exactly one takes the allocation; the other gets {@link IllegalArgumentException}.
     * On any failure the old segment stays valid and unchanged, and nothing leaks.
     *
     * @param segment       a live segment of this pool
     * @param newByteSize   the new size in bytes, at least 0
     * @param byteAlignment the alignment the result must have, a power of two
     * @return the segment of {@code newByteSize} bytes; {@code segment} must not be used again
     * @throws IllegalArgumentException     as for {@link #free} (also for a budget's or an arena's
     *                                      segment), or for a bad size or alignment
     * @throws MemoryLimitExceededException if the pool would need native memory beyond its limit;
     *                                      {@code segment} stays valid and unchanged
     * @throws NullPointerException         if {@code segment} is null
     * @throws IllegalStateException        if the pool is closed
     */
    public MemorySegment reallocate(MemorySegment segment, long newByteSize, long byteAlignment) {
        return core.reallocate(segment, newByteSize, byteAlignment, null);
    }

    // ---- budgets ----

    /**
     * A top-level {@link MemoryBudget} of this pool: a limit and an account for what is allocated
     * through it (and through its children).
     *
     * @param name     the budget's name (1 to 200 characters, not blank, without , = : " * ? or newline);
     *                 names need not be unique
     * @param maxBytes the budget's limit in bytes, at least 0
     * @return the open budget
     * @throws IllegalArgumentException if the name or {@code maxBytes} is not allowed
     * @throws IllegalStateException    if the pool is closed
     */
    public MemoryBudget newBudget(String name, long maxBytes) {
        return MemoryBudget.open(core, null, name, maxBytes);
    }

    // ---- pooled arenas ----

    /**
     * A confined {@link Arena} whose memory comes from this pool: usable by the calling thread only;
     * its segments are zero-filled; {@code close()} gives them all back at once. With native access
     * ({@code --enable-native-access=dev.segpool}, or {@code ALL-UNNAMED} on the class path), its
     * segments are bound to its scope: an access after {@code close()} throws
     * {@link IllegalStateException}, an access from another thread {@link WrongThreadException}.
     * Without it, they stay valid slices of their chunk until the pool closes. Its segments cannot be
     * passed to {@link #free}. If the pool closes first, the arena's memory stays mapped until the
     * arena closes (with native access; without it, the arena's segments throw once the pool is
     * closed). An arena never closed keeps its memory until the pool closes (with native access, until
     * the process ends), unless leak detection samples it: then its memory comes back once it is
     * unreachable.
     *
     * @return a new confined arena
     * @throws IllegalStateException if the pool is closed
     */
    public Arena newArena() {
        // Straight to openConfined, with no shared/confined switch between: the opening inlines into
        // its caller (and the arena is scalar-replaced) only while its compiled code stays under C2's
        // InlineSmallCode, and the switch cost about 100 of those bytes.
        core.ensureOpen();
        return ScratchArena.openConfined(core);
    }

    /**
     * As {@link #newArena()}, for an arena usable (and closable) by any thread.
     *
     * @return a new shared arena
     * @throws IllegalStateException if the pool is closed
     */
    public Arena newSharedArena() {
        core.ensureOpen();
        return ScratchArena.open(core, true, null);
    }

    // ---- thread caches ----

    /**
     * Runs {@code task} with a thread cache of this pool bound to the calling thread through a
     * {@link ScopedValue}, and gives the cache's contents back when the task ends. For virtual threads
     * and other short-lived threads, which get no thread-local cache. Inside an already bound task of
     * the same thread, the task simply runs. Threads forked inside the task (which inherit the binding)
     * do not touch the cache; they allocate from the arena.
     *
     * @param task the task to run
     * @throws IllegalStateException if the pool is closed
     */
    public void runWithThreadCache(Runnable task) {
        Objects.requireNonNull(task, "task");
        core.ensureOpen();
        core.caches.callBound(() -> {
            task.run();
            return null;
        });
    }

    /**
     * As {@link #runWithThreadCache}, for a task with a result.
     *
     * @param task the task to run
     * @param <T>  the type of its result
     * @return what the task returned
     * @throws Exception             what the task threw
     * @throws IllegalStateException if the pool is closed
     */
    public <T> T callWithThreadCache(Callable<T> task) throws Exception {
        Objects.requireNonNull(task, "task");
        core.ensureOpen();
        return core.caches.callBound(task::call);
    }

    /**
     * Gives the calling thread's cache entries (thread-local or scoped) back to the arenas.
     *
     * @return true if the cache held anything
     * @throws IllegalStateException if the pool is closed
     */
    public boolean trimCurrentThreadCache() {
        core.ensureOpen();
        PoolThreadCache cache = core.caches.current();
        return cache != null && cache.flush();
    }

    // ---- giving memory back ----

    /**
     * Gives unused memory back to the operating system now: the calling thread's cache entries, the
     * runs of subpages no element uses, every chunk that has no page in use and, when the pool maps
     * its memory itself (native access on Linux), the free pages inside chunks in use.
     *
     * @return the native bytes released (chunks released plus pages purged)
     * @throws IllegalStateException if the pool is closed (or closes meanwhile)
     */
    public long trim() {
        core.ensureOpen();
        long released = core.reclaim(0, Long.MAX_VALUE, true, "trim");
        core.ensureOpen();
        return released;
    }

    // ---- observing ----

    /**
     * A snapshot of the pool's memory and activity; see {@link PoolMetrics} for what agrees with what.
     * It takes each arena's locks in turn; for frequent polling, {@link #reservedBytes()} and the JMX
     * attributes read lock-free totals.
     *
     * @return the snapshot
     * @throws IllegalStateException if the pool is closed
     */
    public PoolMetrics metrics() {
        core.ensureOpen();
        return PoolReport.metrics(core);
    }

    /**
     * The bytes of native memory the pool holds now (chunks and huge allocations), read from one
     * counter without a lock, so that a gauge can poll it as often as it likes; the figure
     * {@link PoolMetrics#reservedBytes()} reports. After close, what open pooled arenas still keep
     * mapped (0 once they are closed too).
     *
     * @return the bytes reserved
     */
    public long reservedBytes() {
        return core.memory.reservedBytes();
    }

    /**
     * A human-readable report: the pool's settings and totals, its arenas, and each chunk's pages.
     *
     * @return the report
     * @throws IllegalStateException if the pool is closed
     */
    public String dumpStats() {
        core.ensureOpen();
        return PoolReport.dumpStats(core);
    }

    /**
     * The pool's name.
     *
     * @return the name given to the builder, or {@code segpool-N}
     */
    public String name() {
        return core.name;
    }

    @Override
    public String toString() {
        return "SegmentPool[" + core.name + (core.lifecycle.isOpen() ? "]" : ", closed]");
    }

    // ---- closing ----

    /**
     * Releases all of the pool's native memory, once operations in progress that touch it (a decay
     * tick, a {@code trim()}, an allocation mapping a chunk) have finished. Segments handed out earlier
     * become inaccessible (their chunk's scope is closed): an access throws
     * {@link IllegalStateException} instead of reading freed memory. With native access, a chunk that
     * holds memory of a pooled arena still open is kept mapped until that arena closes (the arena's
     * segments are bound to a scope only the arena can close), so the segments in that chunk stay
     * readable until then. Every later call on the pool, {@code close()} included, throws
     * {@link IllegalStateException}, except {@link #name()} and {@code toString()}.
     *
     * @throws IllegalStateException if the pool is already closed
     */
    @Override
    public void close() {
        decay.cancel();
        if (!core.close(budgetsHeld -> PoolReport.reportLeaks(core, budgetsHeld))) {
            throw Errors.closed(core.name);
        }
        PoolEvents.closed(this);
        if (jmx != null) {
            jmx.unregister();
        }
    }

    // ---- for JMX, JFR and tests in this package ----

    /** The open budgets, for the JFR statistics event. */
    java.util.Collection<MemoryBudget> budgets() {
        return core.budgets;
    }

    /** Lock-free totals, for JMX and JFR. */
    PoolCore.PoolTotals totals() {
        core.ensureOpen();
        return core.totals();
    }

    /** The limit on reserved bytes, or -1 when there is none. */
    long maxMemory() {
        return core.memory.limit == Long.MAX_VALUE ? -1 : core.memory.limit;
    }

    PoolCore core() {
        return core;
    }

    PoolArena[] arenas() {
        return core.arenas;
    }

    SizeClasses sizeClasses() {
        return core.sizeClasses;
    }

    /** The scoped value that binds caches of this pool; see {@link ThreadCaches#scopedValue()}. */
    ScopedValue<PoolThreadCache> scopedCache() {
        return core.caches.scopedValue();
    }

    /**
     * A cache for {@code owner} that refills in full batches and is released only by its holder (not by
     * the decay task, whatever becomes of {@code owner}); so that JCStress can hand one thread's cache
     * to another.
     */
    PoolThreadCache attach(Thread owner) {
        return core.caches.attach(owner, true, false);
    }

    /** Runs one decay tick on the calling thread. */
    void decayNow() {
        decay.tick();
    }

    Duration decay() {
        return decayTime;
    }

    boolean isClosed() {
        return !core.lifecycle.isOpen();
    }

    /**
     * Settings of a {@link SegmentPool}. Every setter checks its value at once and throws
     * {@link IllegalArgumentException} naming the setting and the allowed range; {@link #build()} checks
     * the settings that depend on each other. Not thread-safe.
     */
    public sealed interface Builder permits PoolBuilder {
        /**
         * The name shown in reports, JFR events and JMX; default {@code segpool-N}.
         *
         * @param name 1 to 200 characters, not blank, without {@code , = : " * ?} or a newline
         * @return this builder
         */
        Builder name(String name);

        /**
         * Number of arenas; default two per processor, fewer when {@link #maxMemory} is small.
         *
         * @param arenas 1 to 1024
         * @return this builder
         */
        Builder arenas(int arenas);

        /**
         * Page size in bytes; default 8192.
         *
         * @param pageSize a power of two from 4096 to 1 MiB
         * @return this builder
         */
        Builder pageSize(int pageSize);

        /**
         * Chunk size in bytes; default 4 MiB.
         *
         * @param chunkSize a power of two of 8 to 16384 pages (checked against the page size by
         *                  {@link #build()})
         * @return this builder
         */
        Builder chunkSize(int chunkSize);

        /**
         * Entries per small size class in each thread cache; default 256.
         *
         * @param entries 0 to 32768 (0: none)
         * @return this builder
         */
        Builder smallCacheSize(int entries);

        /**
         * Entries per cached normal size class in each thread cache; default 64.
         *
         * @param entries 0 to 32768 (0: none)
         * @return this builder
         */
        Builder normalCacheSize(int entries);

        /**
         * Largest size class thread caches hold; default 32 KiB.
         *
         * @param bytes 0 to the chunk size (0: none)
         * @return this builder
         */
        Builder maxCachedSize(int bytes);

        /**
         * Allocations of a thread cache between two trims of its unused entries; default 8192.
         *
         * @param allocations at least 1
         * @return this builder
         */
        Builder cacheTrimInterval(int allocations);

        /**
         * Most bytes one thread cache may hold (each platform thread's, and each task's under
         * {@link SegmentPool#runWithThreadCache}), whatever its thread frees; default 4 MiB. Within
         * it, a class's stack grows while its thread frees more of it than it allocates, and gives
         * its older half back to the arenas once the budget is used up; entries that go unused are
         * given back by the periodic trim. 0 turns thread caches off.
         *
         * @param bytes at least 0
         * @return this builder
         */
        Builder maxCachedBytesPerThread(long bytes);

        /**
         * Hard limit on the native memory the pool reserves (chunks and huge allocations); default
         * none. An allocation that would cross it throws {@link MemoryLimitExceededException}.
         *
         * @param bytes at least one chunk
         * @return this builder
         */
        Builder maxMemory(long bytes);

        /**
         * How long free memory is kept before it goes back to the OS; default 1 second: an empty chunk
         * is released, and (with native access) a page that stayed free is purged, about that long
         * after it became free, also when the application makes no calls.
         *
         * @param decay 0 to 1 day
         * @return this builder
         */
        Builder decay(Duration decay);

        /**
         * Registers an MXBean {@code dev.segpool:type=SegmentPool,name=<name>}; default false.
         *
         * @param jmx whether to register it
         * @return this builder
         */
        Builder jmx(boolean jmx);

        /**
         * Whether platform threads get a thread-local cache on first use; default true. Without, only
         * tasks run through {@link SegmentPool#runWithThreadCache} use a cache.
         *
         * @param enabled whether to give platform threads caches
         * @return this builder
         */
        Builder threadLocalCaches(boolean enabled);

        /**
         * What the pool records to explain leaks; default from the system property
         * {@code segpool.leakDetection}, else {@link LeakDetection#OFF}.
         *
         * @param level the level
         * @return this builder
         */
        Builder leakDetection(LeakDetection level);

        /**
         * A new pool with these settings.
         *
         * @return the pool
         * @throws IllegalArgumentException if settings contradict each other (a chunk size that is not
         *                                  8 to 16384 pages, a cached size above the chunk size, a
         *                                  limit below one chunk)
         */
        SegmentPool build();
    }
}
