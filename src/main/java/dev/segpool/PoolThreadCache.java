package dev.segpool;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.ref.WeakReference;

/**
 * A thread's own stock of free units, so that most allocate/free pairs take no lock: one LIFO stack
 * of (chunk, handle) per cached size class, kept in two parallel arrays (no object per entry).
 *
 * <p>Protocol: only {@link #owner} calls {@link #allocate}, {@link #offer}, {@link #trim} and
 * {@link #flush}; the pool checks ownership before it hands a cache out. The one exception is
 * {@link #release}, which the {@link java.lang.ref.Cleaner} or the pool's decay task may run once the
 * owner has terminated (its end happens-before their {@code isAlive() == false} or reference
 * processing), when no other thread can reach the stacks; a compare-and-set lets only the first run. {@link #cachedBytes}, {@link #allocations} and {@link #misses} are written by
 * the owner with opaque stores and read by {@code metrics()} from any thread.
 *
 * <p>A free goes into the freeing thread's cache (as jemalloc's tcache does); a full stack gives its
 * older half back to the arenas in one pass. A miss refills a small class with several elements under
 * one lock. Every {@code trimInterval} allocations, the entries that no allocation reached since the
 * last trim (below the stack's low-water mark) go back to the arenas.
 */
final class PoolThreadCache {
    private static final VarHandle RELEASED;
    private static final VarHandle CACHED_BYTES;
    private static final VarHandle ALLOCATIONS;
    private static final VarHandle MISSES;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            RELEASED = lookup.findVarHandle(PoolThreadCache.class, "released", boolean.class);
            CACHED_BYTES = lookup.findVarHandle(PoolThreadCache.class, "cachedBytes", long.class);
            ALLOCATIONS = lookup.findVarHandle(PoolThreadCache.class, "allocations", long.class);
            MISSES = lookup.findVarHandle(PoolThreadCache.class, "misses", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** The cached units of one size class. */
    private static final class Stack {
        final int sizeIndex;
        final int elementSize;
        final int capacity;
        final int refill;
        final PoolChunk[] chunks;
        final long[] handles;
        int size;
        /** Lowest {@link #size} since the last trim: entries below it went unused. */
        int lowWater;

        Stack(int sizeIndex, int elementSize, int capacity, int refill) {
            this.sizeIndex = sizeIndex;
            this.elementSize = elementSize;
            this.capacity = capacity;
            this.refill = refill;
            this.chunks = new PoolChunk[capacity];
            this.handles = new long[capacity];
        }
    }

    /** At most this many bytes of one small class are taken from the arena in one refill. */
    private static final int REFILL_BYTES = 64 * 1024;
    private static final int MAX_REFILL = 32;

    /**
     * Weak, because a thread-local cache is the value of the pool's {@code ThreadLocal} in its thread's
     * map and the subject of a Cleaner action: a strong reference would keep the pool, and so the
     * {@code ThreadLocal} key, reachable from every thread that ever used it, closed or not.
     */
    private final WeakReference<SegmentPool> pool;
    final PoolArena arena;
    final Thread owner;
    private final Stack[] stacks;
    private final int trimInterval;
    /** The value of {@link #allocations} at which the next periodic trim runs. */
    private long nextTrim;
    /** Set once, by compare-and-set, by whichever of the scope's end, the Cleaner or the decay task comes first. */
    @SuppressWarnings("unused")
    private boolean released;

    @SuppressWarnings("unused") // written through CACHED_BYTES
    private long cachedBytes;
    /** Allocations served (hits and misses). */
    @SuppressWarnings("unused")
    private long allocations;
    @SuppressWarnings("unused")
    private long misses;

    PoolThreadCache(SegmentPool pool, PoolArena arena, Thread owner, CacheConfig config) {
        this.pool = new WeakReference<>(pool);
        this.arena = arena;
        this.owner = owner;
        this.trimInterval = config.trimInterval();
        this.nextTrim = trimInterval;
        SizeClasses sizeClasses = arena.sizeClasses;
        this.stacks = new Stack[sizeClasses.classes()];
        for (int i = 0; i < stacks.length; i++) {
            int size = sizeClasses.size(i);
            if (size > config.maxCachedSize()) {
                break;
            }
            boolean small = sizeClasses.isSmall(i);
            int capacity = small ? config.smallCacheSize() : config.normalCacheSize();
            if (capacity > 0) {
                int refill = small ? Math.max(1, Math.min(capacity / 2, Math.min(MAX_REFILL, REFILL_BYTES / size))) : 1;
                stacks[i] = new Stack(i, size, capacity, refill);
            }
        }
    }

    /** The cache settings of a pool. */
    record CacheConfig(int smallCacheSize, int normalCacheSize, int maxCachedSize, int trimInterval) {
        boolean enabled() {
            return (smallCacheSize > 0 || normalCacheSize > 0) && maxCachedSize > 0;
        }
    }

    /**
     * A unit of class {@code sizeIndex} handed out in {@code state} as a segment of {@code byteSize}
     * bytes (contents unspecified), or null when this
     * cache does not hold the class. A miss refills the stack from the arena first.
     */
    MemorySegment allocate(int sizeIndex, long byteSize, byte state) {
        final Stack stack = stacks[sizeIndex];
        if (stack == null) {
            return null;
        }
        int size = stack.size;
        if (size == 0) {
            size = arena.fill(sizeIndex, stack.chunks, stack.handles, 0, stack.refill);
            addCachedBytes((long) size * stack.elementSize);
            MISSES.setOpaque(this, (long) MISSES.getOpaque(this) + 1);
        }
        size--;
        stack.size = size;
        if (size < stack.lowWater) {
            stack.lowWater = size;
        }
        PoolChunk chunk = stack.chunks[size];
        stack.chunks[size] = null;
        long handle = stack.handles[size];
        addCachedBytes(-stack.elementSize);
        MemorySegment segment = chunk.hand(handle, stack.elementSize, byteSize, state);
        long count = (long) ALLOCATIONS.getOpaque(this) + 1;
        ALLOCATIONS.setOpaque(this, count);
        if (count >= nextTrim) {
            trim();
        }
        return segment;
    }

    /** Keeps a claimed unit; false when this cache does not hold its class (the caller frees it). */
    boolean offer(PoolChunk chunk, long handle, int sizeIndex) {
        final Stack stack = stacks[sizeIndex];
        if (stack == null) {
            return false;
        }
        if (stack.size == stack.capacity) {
            giveBack(stack, (stack.capacity + 1) >>> 1); // at least one, so a stack of one has room
        }
        stack.chunks[stack.size] = chunk;
        stack.handles[stack.size] = handle;
        stack.size++;
        addCachedBytes(stack.elementSize);
        return true;
    }

    /** Gives back the entries that went unused since the last trim. */
    void trim() {
        nextTrim = (long) ALLOCATIONS.getOpaque(this) + trimInterval;
        for (Stack stack : stacks) {
            if (stack != null) {
                giveBack(stack, stack.lowWater);
                stack.lowWater = stack.size;
            }
        }
    }

    /** Gives back every entry; returns true when there was any. */
    boolean flush() {
        boolean any = false;
        for (Stack stack : stacks) {
            if (stack != null && stack.size > 0) {
                any = true;
                giveBack(stack, stack.size);
                stack.lowWater = 0;
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
        java.util.Arrays.fill(stack.chunks, left, stack.size, null);
        stack.size = left;
        stack.lowWater = Math.max(0, stack.lowWater - n);
        addCachedBytes(-(long) n * stack.elementSize);
    }

    /**
     * Flushes and detaches the cache for good: at the end of a scoped task, or from the Cleaner after
     * the owner thread ended. Nothing is flushed into a closed pool, or into one that is gone.
     */
    void release() {
        if (!RELEASED.compareAndSet(this, false, true)) {
            return;
        }
        SegmentPool pool = this.pool.get();
        if (pool == null) {
            return;
        }
        long bytes = cachedBytes();
        if (!pool.isClosed()) {
            flush();
            PoolEvents.cacheReleased(pool.name(), owner, bytes);
        }
        pool.detach(this);
    }

    private void addCachedBytes(long delta) {
        CACHED_BYTES.setOpaque(this, (long) CACHED_BYTES.getOpaque(this) + delta);
    }

    long cachedBytes() {
        return (long) CACHED_BYTES.getOpaque(this);
    }

    /** Allocations served without a refill; read from any thread, so misses first (a miss counts before its allocation). */
    long hits() {
        long misses = (long) MISSES.getOpaque(this);
        return Math.max(0, (long) ALLOCATIONS.getOpaque(this) - misses);
    }

    long misses() {
        return (long) MISSES.getOpaque(this);
    }
}
