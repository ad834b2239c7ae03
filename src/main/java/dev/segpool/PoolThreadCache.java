package dev.segpool;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.ref.WeakReference;
import java.util.Arrays;

/**
 * A thread's own stock of free units, so that most allocate/free pairs take no lock: one LIFO stack
 * of (chunk, handle) per cached size class, kept in two parallel arrays (no object per entry), made
 * on the class's first use.
 *
 * <p>Protocol: only {@link #owner} calls {@link #pop}, {@link #push}, {@link #allocate}, {@link #flush}
 * and {@link #trimIdleEntries}; the pool checks ownership before it hands a cache out. The owner of a
 * scoped cache changes when a released cache is reused for another task ({@link #reuse}), which the
 * binding thread does before it binds the cache. {@link #release} may also run on the
 * {@link java.lang.ref.Cleaner}'s or the decay task's thread once the owner has terminated (its end
 * happens-before their {@code isAlive() == false} or reference processing), when no other thread can
 * reach the stacks; a compare-and-set lets only the first run. Metrics read the stack sizes and
 * counters from other threads without synchronisation: figures of a running thread are approximate.
 *
 * <p>A free goes into the freeing thread's cache (as jemalloc's tcache does); a full stack gives its
 * older half back to the arenas in one pass. A miss refills the stack under one lock; a scoped cache's
 * batch starts at one unit and doubles at each miss (up to {@link Stack#maxRefill}), so a short task
 * does not take and give back units it never uses. Every {@code trimInterval} allocations, the entries
 * that no allocation reached since the last trim (below the stack's low-water mark) go back.
 */
final class PoolThreadCache {
    private static final VarHandle RELEASED;
    private static final VarHandle OWNER;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            RELEASED = lookup.findVarHandle(PoolThreadCache.class, "released", boolean.class);
            OWNER = lookup.findVarHandle(PoolThreadCache.class, "owner", Thread.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The cached units of one size class. */
    static final class Stack {
        final int sizeIndex;
        final int elementSize;
        final int capacity;
        final int maxRefill;
        final PoolChunk[] chunks;
        final long[] handles;
        int size;
        /** Lowest {@link #size} since the last trim: entries below it went unused. */
        int lowWater;
        /** Units the next refill takes. */
        int refill;

        Stack(int sizeIndex, int elementSize, int capacity, int maxRefill, int firstRefill) {
            this.sizeIndex = sizeIndex;
            this.elementSize = elementSize;
            this.capacity = capacity;
            this.maxRefill = maxRefill;
            this.refill = firstRefill;
            this.chunks = new PoolChunk[capacity];
            this.handles = new long[capacity];
        }
    }

    /** Stands for every stack not made yet: empty and full at once, so pop and push take their rare paths. */
    private static final Stack NONE = new Stack(-1, 0, 0, 0, 0);

    /** At most this many bytes of one small class are taken from the arena in one refill. */
    private static final int REFILL_BYTES = 64 * 1024;
    private static final int MAX_REFILL = 32;

    /**
     * Weak, because a thread-local cache is the value of the pool's {@code ThreadLocal} in its thread's
     * map and the subject of a Cleaner action: a strong reference would keep the pool, and so the
     * {@code ThreadLocal} key, reachable from every thread that ever used it, closed or not.
     */
    private final WeakReference<PoolCore> pool;
    final PoolArena arena;
    private final SizeClasses sizeClasses;
    private final CacheConfig config;
    /** Bound for a task (or a shared stripe): released by its binder, never by the decay task. */
    final boolean scoped;
    /** Whether refills start at one unit and double per miss (scoped caches and stripes), or take full batches. */
    private final boolean adaptiveRefill;
    /**
     * The thread that may use this cache; changes only when a released scoped cache is reused, or,
     * for a shared stripe ({@link ThreadCaches}), when a thread claims it ({@link #tryClaim}) and
     * gives it back ({@link #unclaim}); null while a stripe is unclaimed.
     */
    Thread owner;
    private final Stack[] stacks;
    /** Allocations left until the next periodic trim. */
    private int untilTrim;
    /** Set once, by compare-and-set, by whichever of the scope's end, the Cleaner or the decay task comes first. */
    @SuppressWarnings("unused")
    private boolean released;

    // Counters written by the owner, read racily by metrics.
    /** Periodic trims done; allocations = trims * trimInterval + (trimInterval - untilTrim). */
    private long trims;
    private long misses;
    /** Pooled arenas opened and closed on this thread (the counts of {@code openArenas}). */
    long arenasOpened;
    long arenasClosed;

    PoolThreadCache(PoolCore pool, PoolArena arena, Thread owner, CacheConfig config, boolean scoped,
                    boolean adaptiveRefill) {
        this.adaptiveRefill = adaptiveRefill;
        this.pool = new WeakReference<>(pool);
        this.arena = arena;
        this.sizeClasses = arena.sizeClasses;
        this.owner = owner;
        this.config = config;
        this.scoped = scoped;
        this.untilTrim = config.trimInterval();
        this.stacks = new Stack[sizeClasses.classes()];
        Arrays.fill(stacks, NONE);
    }

    /** The cache settings of a pool. */
    record CacheConfig(int smallCacheSize, int normalCacheSize, int maxCachedSize, int trimInterval) {
        boolean enabled() {
            return (smallCacheSize > 0 || normalCacheSize > 0) && maxCachedSize > 0;
        }
    }

    // ---- the fast path: small enough to inline into the pool's allocate and free ----

    /** Whether {@link #pop} can serve class {@code sizeIndex} now. */
    boolean has(int sizeIndex) {
        return stacks[sizeIndex].size > 0;
    }

    /**
     * Pops a unit of class {@code sizeIndex}, which {@link #has} (or {@link #prepare}) said is there,
     * and hands it out in {@code state} as a segment of {@code byteSize} bytes (contents unspecified).
     * This is the only place a cached unit becomes a segment, so that a caller's fast path has one
     * allocation site for escape analysis to remove.
     */
    MemorySegment pop(int sizeIndex, long byteSize, byte state) {
        final Stack stack = stacks[sizeIndex];
        final int n = stack.size - 1;
        stack.size = n;
        stack.lowWater = Math.min(stack.lowWater, n);
        PoolChunk chunk = stack.chunks[n];
        long handle = stack.handles[n];
        if (--untilTrim == 0) {
            trimIdleEntries();
        }
        return chunk.hand(handle, stack.elementSize, byteSize, state);
    }

    /** Keeps a claimed unit of class {@code sizeIndex}; false when this cache does not hold the class. */
    boolean push(PoolChunk chunk, long handle, int sizeIndex) {
        final Stack stack = stacks[sizeIndex];
        if (stack.size == stack.capacity) {
            return pushSlow(chunk, handle, sizeIndex);
        }
        int n = stack.size;
        stack.chunks[n] = chunk;
        stack.handles[n] = handle;
        stack.size = n + 1;
        return true;
    }

    // ---- rare paths ----

    /**
     * Makes {@link #pop} of class {@code sizeIndex} possible: makes the stack on first use and refills
     * it from the arena when empty. False when this cache does not hold the class.
     */
    boolean prepare(int sizeIndex) {
        Stack stack = stack(sizeIndex);
        if (stack == null) {
            return false;
        }
        if (stack.size == 0) {
            refill(stack);
        }
        return true;
    }

    private void refill(Stack stack) {
        int n = arena.fill(stack.sizeIndex, stack.chunks, stack.handles, 0, stack.refill);
        stack.size = n;
        stack.lowWater = 0;
        stack.refill = Math.min(stack.maxRefill, stack.refill << 1);
        misses++;
    }

    private boolean pushSlow(PoolChunk chunk, long handle, int sizeIndex) {
        Stack stack = stack(sizeIndex);
        if (stack == null) {
            return false;
        }
        if (stack.size == stack.capacity) {
            giveBack(stack, (stack.capacity + 1) >>> 1); // at least one, so a stack of one has room
        }
        return push(chunk, handle, sizeIndex);
    }

    /** The stack of class {@code sizeIndex}, made on first use; null when the class is not cached. */
    private Stack stack(int sizeIndex) {
        Stack stack = stacks[sizeIndex];
        if (stack != NONE) {
            return stack;
        }
        int size = sizeClasses.size(sizeIndex);
        if (size > config.maxCachedSize()) {
            return null;
        }
        boolean small = sizeClasses.isSmall(sizeIndex);
        int capacity = small ? config.smallCacheSize() : config.normalCacheSize();
        if (capacity == 0) {
            return null;
        }
        int maxRefill = small ? Math.max(1, Math.min(capacity / 2, Math.min(MAX_REFILL, REFILL_BYTES / size))) : 1;
        stack = new Stack(sizeIndex, size, capacity, maxRefill, firstRefill(maxRefill));
        stacks[sizeIndex] = stack;
        return stack;
    }

    /**
     * A thread-local cache lives as long as its thread: it refills in full batches from the start. A
     * scoped cache serves one task: its batches start at one unit and grow with its misses.
     */
    private int firstRefill(int maxRefill) {
        return adaptiveRefill ? 1 : maxRefill;
    }

    /** Gives back the entries that went unused since the last trim. */
    void trimIdleEntries() {
        untilTrim = config.trimInterval();
        trims++;
        for (Stack stack : stacks) {
            if (stack != NONE) {
                giveBack(stack, stack.lowWater);
                stack.lowWater = stack.size;
            }
        }
    }

    /** Gives back every entry; returns true when there was any. */
    boolean flush() {
        boolean any = false;
        for (Stack stack : stacks) {
            if (stack.size > 0) {
                any = true;
                giveBack(stack, stack.size);
                stack.lowWater = 0;
                stack.refill = firstRefill(stack.maxRefill);
            }
        }
        return any;
    }

    /** Gives the {@code n} oldest entries (the bottom of the stack) back to their arenas. */
    private void giveBack(Stack stack, int n) {
        if (n <= 0) {
            return;
        }
        PoolArena.freeAll(stack.sizeIndex, stack.chunks, stack.handles, 0, n);
        int left = stack.size - n;
        System.arraycopy(stack.chunks, n, stack.chunks, 0, left);
        System.arraycopy(stack.handles, n, stack.handles, 0, left);
        Arrays.fill(stack.chunks, left, stack.size, null);
        stack.size = left;
        stack.lowWater = Math.max(0, stack.lowWater - n);
    }

    /**
     * Flushes and detaches the cache for good: at the end of a scoped task, or from the Cleaner after
     * the owner thread ended. Nothing is flushed into a closed pool, or into one that is gone. Returns
     * whether this call released it (false when another had).
     */
    boolean release() {
        if (!RELEASED.compareAndSet(this, false, true)) {
            return false;
        }
        PoolCore pool = this.pool.get();
        if (pool == null) {
            return true;
        }
        long bytes = cachedBytes();
        if (pool.lifecycle.isOpen()) {
            flush();
            PoolEvents.cacheReleased(pool.name, owner, bytes);
        }
        pool.caches.detach(this);
        return true;
    }

    /** Claims an unclaimed shared stripe for the calling thread: one compare-and-set. */
    boolean tryClaim(Thread thread) {
        return owner == null && OWNER.compareAndSet(this, (Thread) null, thread);
    }

    /** Gives a claimed stripe back; its stacks' changes happen-before the next claim. */
    void unclaim() {
        OWNER.setRelease(this, (Thread) null);
    }

    /** Makes a released, empty scoped cache usable again, for {@code owner}. */
    void reuse(Thread owner) {
        this.owner = owner;
        RELEASED.setRelease(this, false);
    }

    // ---- figures, read from any thread ----

    long cachedBytes() {
        long bytes = 0;
        for (Stack stack : stacks) {
            bytes += (long) stack.size * stack.elementSize;
        }
        return bytes;
    }

    long allocations() {
        return trims * config.trimInterval() + (config.trimInterval() - untilTrim);
    }

    /** Allocations served without a refill. */
    long hits() {
        return Math.max(0, allocations() - misses);
    }

    long misses() {
        return misses;
    }
}
