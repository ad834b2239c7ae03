package dev.segpool;

import java.lang.foreign.Arena;
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
 * <p>Protocol: only {@link #owner} (for a shared stripe, the thread that claimed it) calls {@link #pop},
 * {@link #push}, {@link #allocate}, {@link #flush} and {@link #trimIdleEntries}; the pool checks
 * ownership before it hands a cache out. The owner of a scoped cache changes when a parked cache is
 * reused for another task ({@link #reuse}), which the binding thread does before it binds the cache;
 * the slot it was parked in publishes the parking task's writes. {@link #release} may also run on the
 * {@link java.lang.ref.Cleaner}'s or the decay task's thread once the owner has terminated (its end
 * happens-before their {@code isAlive() == false} or reference processing), when no other thread can
 * reach the stacks; a compare-and-set lets only the first run. Metrics read the stack sizes and
 * counters from other threads without synchronisation: figures of a running thread are approximate.
 *
 * <p>A free goes into the freeing thread's cache (as jemalloc's tcache does); a full stack gives its
 * older half back to the arenas in one pass. A miss refills the stack under one lock; a scoped cache's
 * batch starts at one unit and doubles at each miss (up to {@link CacheStack#maxRefill}), so a short
 * task does not take and give back units it never uses. Every {@code trimInterval} allocations, the entries
 * that no allocation reached since the last trim (below the stack's low-water mark) go back.
 *
 * <p>Byte budget: each stack may hold {@link CacheStack#capacity} entries, and the capacities of all
 * stacks, in bytes, add up to at most {@code maxCachedBytes} ({@link #grantedBytes}), so the cache never holds
 * more than that whatever its thread frees. The fast paths only compare a stack's size with its
 * capacity, as they always did; capacities change on the rare paths alone: a new stack gets one
 * refill's worth, a full stack doubles while the budget allows ({@link #pushSlow}) and otherwise gives
 * its older half back, and the periodic trim and {@link #flush} lower capacities that went unused back
 * to that first grant, which returns their bytes to the budget.
 */
final class PoolThreadCache {
    private static final VarHandle RELEASED;
    private static final VarHandle CLAIMED;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            RELEASED = lookup.findVarHandle(PoolThreadCache.class, "released", boolean.class);
            CLAIMED = lookup.findVarHandle(PoolThreadCache.class, "claimed", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Stands for every stack not made yet: empty and full at once, so pop and push take their rare paths. */
    private static final CacheStack NONE = new CacheStack(-1, 0, 0, 0, 0);

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
    /**
     * A shared stripe ({@link ThreadCaches}), made without owner: {@link #pop} gives the claim back
     * itself, so that a virtual thread's allocation pops at the same site as a platform thread's.
     */
    final boolean shared;
    /** Whether refills start at one unit and double per miss (scoped caches and stripes), or take full batches. */
    private final boolean adaptiveRefill;
    /**
     * The thread that may use this cache; changes only when a scoped cache is parked (null) and
     * reused ({@link #reuse}). Always null for a shared stripe, which a thread holds through
     * {@link #claimed} instead.
     */
    Thread owner;
    /** 1 while a thread holds this shared stripe ({@link #tryClaim}), else 0; stripes only. */
    @SuppressWarnings("unused")
    private int claimed;
    private final CacheStack[] stacks;
    /**
     * The stacks made so far, in the order they were made ({@code made[0..madeCount)}): what the trim,
     * the flush and the budget walk, so that a cache that serves a few classes does not visit every
     * class. Owner only; metrics read it racily.
     */
    private final CacheStack[] made;
    private int madeCount;
    /**
     * The bytes the stacks' capacities add up to ({@code capacity * elementSize} over all stacks),
     * never above {@link CacheConfig#maxCachedBytes}. Owner only.
     */
    private long grantedBytes;
    /** Allocations left until the next periodic trim. */
    private int untilTrim;
    /**
     * Tasks with a scoped cache of their own that the owner thread of this thread-local cache is
     * running now ({@code runWithThreadCache} inside one another); while above 0 the front table does
     * not answer with this cache. Owner only.
     */
    int bindingsAbove;
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
        this.shared = owner == null;
        this.untilTrim = config.trimInterval();
        this.stacks = new CacheStack[sizeClasses.classes()];
        Arrays.fill(stacks, NONE);
        this.made = new CacheStack[stacks.length];
    }

    /** The cache settings of a pool; {@code maxCachedBytes} bounds what one cache holds, in bytes. */
    record CacheConfig(int smallCacheSize, int normalCacheSize, int maxCachedSize, int trimInterval,
                       long maxCachedBytes) {
        boolean enabled() {
            return (smallCacheSize > 0 || normalCacheSize > 0) && maxCachedSize > 0 && maxCachedBytes > 0;
        }
    }

    // ---- the fast path: small enough to inline into the pool's allocate and free ----

    /** Whether {@link #pop} can serve class {@code sizeIndex} now. */
    boolean has(int sizeIndex) {
        return stacks[sizeIndex].size > 0;
    }

    /**
     * Pops a unit of class {@code sizeIndex}, which {@link #has} (or {@link #prepare}) said is there,
     * and hands it out in {@code state} (owned by {@code owner} for {@code BUDGET}) as a segment of {@code byteSize} bytes (contents unspecified).
     * Each caller makes its segment in one place, so that its fast path has one allocation site for
     * escape analysis to remove: here, or, where the caller's rare path makes a segment too, after the
     * two paths merge ({@link #topSegment} and {@link #popOffset}, as {@link PoolCore#allocate} does).
     * A shared stripe is given back ({@link #unclaim}) once the unit is off its stack.
     */
    MemorySegment pop(int sizeIndex, long byteSize, byte state, MemoryBudget owner) {
        MemorySegment chunkSegment = topSegment(sizeIndex);
        return chunkSegment.asSlice(popOffset(sizeIndex, state, owner), byteSize);
    }

    /**
     * The segment of the chunk of the unit {@link #popOffset} of class {@code sizeIndex} takes next:
     * for a caller that slices it itself, after its own paths merged.
     */
    MemorySegment topSegment(int sizeIndex) {
        return stacks[sizeIndex].topChunk().segment;
    }

    /**
     * As {@link #pop}, for a caller that makes the segment itself: the unit's address instead of a
     * segment, its {@code byteSize} bytes zero-filled first if {@code zero}.
     */
    long popAddress(int sizeIndex, long byteSize, byte state, MemoryBudget owner, boolean zero) {
        MemorySegment chunkSegment = topSegment(sizeIndex);
        long offset = popOffset(sizeIndex, state, owner);
        if (zero) {
            chunkSegment.asSlice(offset, byteSize).fill((byte) 0);
        }
        return chunkSegment.address() + offset;
    }

    /**
     * {@link #pop} without the slice: takes the unit and hands it out, and returns its offset in the
     * segment {@link #topSegment} returned just before.
     */
    long popOffset(int sizeIndex, byte state, MemoryBudget owner) {
        final CacheStack stack = stacks[sizeIndex];
        final int n = stack.take();
        PoolChunk chunk = stack.chunks[n];
        long handle = stack.handles[n];
        if (--untilTrim == 0) {
            trimIdleEntries();
        }
        if (shared) {
            unclaim();
        }
        return chunk.handOut(handle, stack.elementSize, state, owner);
    }

    /** The stack of class {@code sizeIndex} when it holds a unit now; else null (also when not made yet). */
    CacheStack stackWithUnits(int sizeIndex) {
        CacheStack stack = stacks[sizeIndex];
        return stack.size > 0 ? stack : null;
    }

    /**
     * As {@link #pop}, for a block of a pooled arena from {@code stack}, which {@link #stackWithUnits}
     * returned: handed out in state {@code ARENA}, bound to the scope of {@code scope} when it is not
     * null ({@link PoolChunk#handArenaBlock}). Opening an arena does not count toward the periodic
     * trim: its block comes back when the arena closes, and leaving the trim's call out keeps the
     * opening small enough to inline.
     */
    MemorySegment popArenaBlock(CacheStack stack, Arena scope) {
        int n = stack.take();
        return stack.chunks[n].handArenaBlock(stack.handles[n], stack.elementSize, scope);
    }

    /** Keeps a claimed unit of class {@code sizeIndex}; false when this cache does not hold the class. */
    boolean push(PoolChunk chunk, long handle, int sizeIndex) {
        return push(stacks[sizeIndex], chunk, handle, sizeIndex);
    }

    /**
     * The stack {@link #push(CacheStack, PoolChunk, long, int)} of class {@code sizeIndex} takes, looked
     * up ahead: a free reads it before its claim's atomic write, so that the load does not wait for it.
     */
    CacheStack stackFor(int sizeIndex) {
        return stacks[sizeIndex];
    }

    /** As {@link #push(PoolChunk, long, int)}, onto {@code stack}, which {@link #stackFor} returned for {@code sizeIndex}. */
    boolean push(CacheStack stack, PoolChunk chunk, long handle, int sizeIndex) {
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
     * it from the arena when empty. False when this cache does not hold the class, or has no room in
     * its byte budget for it now (the caller then takes the arena's path).
     */
    boolean prepare(int sizeIndex) {
        CacheStack stack = stack(sizeIndex);
        if (stack == null) {
            return false;
        }
        if (stack.size == 0) {
            if (stack.capacity == 0 && !makeRoom(stack, stack.baseCapacity, true)) {
                return false;
            }
            refill(stack);
        }
        return true;
    }

    private void refill(CacheStack stack) {
        int n = arena.fill(stack.sizeIndex, stack.chunks, stack.handles, 0, Math.min(stack.refill, stack.capacity));
        stack.size = n;
        stack.lowWater = 0;
        stack.refill = Math.min(stack.maxRefill, stack.refill << 1);
        misses++;
    }

    /**
     * A push onto a full stack (or a stack not made yet): doubles its capacity while the byte budget
     * allows, else gives its older half back to the arenas. False, and nothing kept, when this cache
     * does not hold the class, or its budget cannot hold one unit of it.
     */
    private boolean pushSlow(PoolChunk chunk, long handle, int sizeIndex) {
        CacheStack stack = stack(sizeIndex);
        if (stack == null) {
            return false;
        }
        if (stack.size == stack.capacity && !makeRoom(stack, Math.max(1, stack.capacity), stack.size == 0)) {
            if (stack.capacity == 0) {
                return false; // not one entry of this class fits the budget
            }
            giveBack(stack, (stack.capacity + 1) >>> 1); // at least one, so a stack of one has room
        }
        return push(chunk, handle, sizeIndex);
    }

    /**
     * Raises {@code stack}'s capacity by up to {@code entries} within the byte budget. When the budget
     * is short, the capacity other stacks do not use goes back to it first; then, if {@code evict} (the
     * stack holds nothing), the fullest stack gives back its older half. Returns whether it rose.
     */
    private boolean makeRoom(CacheStack stack, int entries, boolean evict) {
        if (grant(stack, entries)) {
            return true;
        }
        CacheStack fullest = null;
        for (int i = 0; i < madeCount; i++) {
            CacheStack other = made[i];
            shrinkTo(other, other.size);
            if (other != stack && (fullest == null
                    || (long) other.size * other.elementSize > (long) fullest.size * fullest.elementSize)) {
                fullest = other;
            }
        }
        if (grant(stack, entries)) {
            return true;
        }
        if (!evict || fullest == null || fullest.size == 0) {
            return false;
        }
        giveBack(fullest, (fullest.size + 1) >>> 1);
        shrinkTo(fullest, fullest.size);
        return grant(stack, entries);
    }

    /**
     * Raises {@code stack}'s capacity by up to {@code entries}, as far as its arrays and the byte
     * budget allow; returns whether it rose.
     */
    private boolean grant(CacheStack stack, int entries) {
        long room = (config.maxCachedBytes() - grantedBytes) / stack.elementSize;
        int granted = (int) Math.min(Math.min(entries, room), stack.chunks.length - stack.capacity);
        if (granted <= 0) {
            return false;
        }
        stack.capacity += granted;
        grantedBytes += (long) granted * stack.elementSize;
        return true;
    }

    /** Lowers {@code stack}'s capacity to its first grant, or to its size if it holds more. */
    private void shrinkToBase(CacheStack stack) {
        shrinkTo(stack, Math.max(stack.baseCapacity, stack.size));
    }

    /** Lowers {@code stack}'s capacity to {@code capacity} (at least its size), giving the bytes back to the budget. */
    private void shrinkTo(CacheStack stack, int capacity) {
        assert capacity >= stack.size;
        if (capacity < stack.capacity) {
            grantedBytes -= (long) (stack.capacity - capacity) * stack.elementSize;
            stack.capacity = capacity;
        }
    }

    /** The stack of class {@code sizeIndex}, made on first use; null when the class is not cached. */
    private CacheStack stack(int sizeIndex) {
        CacheStack stack = stacks[sizeIndex];
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
        stack = new CacheStack(sizeIndex, size, capacity, maxRefill, firstRefill(maxRefill));
        grant(stack, stack.baseCapacity);
        stacks[sizeIndex] = stack;
        made[madeCount++] = stack;
        return stack;
    }

    /**
     * A thread-local cache lives as long as its thread: it refills in full batches from the start. A
     * scoped cache serves one task: its batches start at one unit and grow with its misses.
     */
    private int firstRefill(int maxRefill) {
        return adaptiveRefill ? 1 : maxRefill;
    }

    /** Gives back the entries that went unused since the last trim, and the budget of capacity beyond a first grant. */
    void trimIdleEntries() {
        untilTrim = config.trimInterval();
        trims++;
        for (int i = 0; i < madeCount; i++) {
            CacheStack stack = made[i];
            giveBack(stack, stack.lowWater);
            stack.lowWater = stack.size;
            shrinkToBase(stack);
        }
    }

    /** Gives back every entry; returns true when there was any. */
    boolean flush() {
        boolean any = false;
        for (int i = 0; i < madeCount; i++) {
            CacheStack stack = made[i];
            if (stack.size > 0) {
                any = true;
                giveBack(stack, stack.size);
                stack.lowWater = 0;
                stack.refill = firstRefill(stack.maxRefill);
            }
            shrinkToBase(stack);
        }
        return any;
    }

    /** Gives the {@code n} oldest entries (the bottom of the stack) back to their arenas. */
    private void giveBack(CacheStack stack, int n) {
        if (n <= 0) {
            return;
        }
        PoolArena.freeAll(stack.sizeIndex, stack.chunks, stack.handles, 0, n);
        stack.dropOldest(n);
    }

    /**
     * Flushes and detaches the cache for good: from the Cleaner or the decay task after the owner
     * thread ended. Nothing is flushed into a closed pool, or into one that is gone. Returns whether
     * this call released it (false when another had).
     */
    boolean release() {
        if (!RELEASED.compareAndSet(this, false, true)) {
            return false;
        }
        PoolCore pool = this.pool.get();
        if (pool != null) {
            giveBackAll(pool);
            pool.caches.detach(this);
        }
        return true;
    }

    /**
     * The end of a scoped cache's task: gives back every entry (nothing into a closed pool) and leaves
     * the cache without owner, parked until {@link #reuse} hands it to the next task.
     */
    void park() {
        PoolCore pool = this.pool.get();
        if (pool != null) {
            giveBackAll(pool);
        }
        owner = null;
    }

    /** Whether this is a scoped cache no task holds now ({@link #park}); read racily by metrics. */
    boolean parked() {
        return scoped && owner == null;
    }

    private void giveBackAll(PoolCore pool) {
        if (pool.lifecycle.isOpen()) {
            long bytes = PoolEvents.cacheReleasedEnabled() ? cachedBytes() : 0; // a walk of every stack
            flush();
            PoolEvents.cacheReleased(pool.name, owner, bytes);
        }
    }

    /**
     * Claims an unclaimed shared stripe: one compare-and-set of {@link #claimed}, an int, so that
     * neither the claim nor {@link #unclaim} pays for the garbage collector's reference barriers.
     */
    boolean tryClaim() {
        return claimed == 0 && CLAIMED.compareAndSet(this, 0, 1);
    }

    /** Gives a claimed stripe back; its stacks' changes happen-before the next claim. */
    void unclaim() {
        CLAIMED.setRelease(this, 0);
    }

    /** Makes a parked, empty scoped cache usable again, for {@code owner}. */
    void reuse(Thread owner) {
        this.owner = owner;
    }

    // ---- figures, read from any thread ----

    long cachedBytes() {
        long bytes = 0;
        int n = Math.min(madeCount, made.length);
        for (int i = 0; i < n; i++) {
            CacheStack stack = made[i]; // null when its owner's write is not visible yet
            if (stack != null) {
                bytes += (long) stack.size * stack.elementSize;
            }
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
