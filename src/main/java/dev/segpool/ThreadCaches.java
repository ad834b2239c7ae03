package dev.segpool;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.lang.ref.Cleaner;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * Binds {@link PoolThreadCache}s of one pool to threads: a {@code ThreadLocal} cache for each platform
 * thread (created on first use, released through the {@link Cleaner} or the decay task once its
 * thread has ended), and scoped caches bound through a {@link ScopedValue} for the duration of a task.
 * Virtual threads without a binding get none of their own: they use shared stripes, caches owned by
 * no thread that a virtual thread claims with one compare-and-set for one operation and gives back at
 * once (as Netty's adaptive allocator and the JDK's pooled confined arenas do), so that many virtual
 * threads neither make a cache each nor take an arena lock per operation.
 *
 * <p>Protocol: {@link #current()} hands a cache only to its owner; a thread that sees a scoped binding
 * it does not own (a {@code StructuredTaskScope} fork) gets null and uses the arena, unless it is a
 * platform thread whose own thread-local cache sits in the front table ({@link #recent}): that one
 * answers without a look at the binding, and the parent's cache is not touched either way. {@link #live} holds
 * every cache not released yet, for metrics, the decay task and close; it is a concurrent set.
 * {@link #scopedBindings} is written plainly by a binding thread before it binds, and every thread that
 * can see that binding was started after the write, so a pool that never binds skips the probe.
 * A scoped cache whose task ended is flushed and parked, empty and without owner, in {@link #idle} for
 * the next task: a slot is taken with {@code getAndSet(null)} and filled with
 * {@code compareAndSet(null, cache)}, so each cache has one user at a time. A parked cache stays in
 * {@link #live} and bound to its arena, keeping its figures, so that a task pays for no set or counter
 * updates on lines every carrier writes; it is counted as a thread's cache only while a task holds it
 * ({@link PoolThreadCache#parked}). One that finds no free slot is detached. Stripes are made on the
 * first claim (a thread that finds a claimed stripe tries the next few, then uses the arena); the
 * decay task trims them while unclaimed, {@code trim()} empties them.
 */
final class ThreadCaches {
    private static final Cleaner CLEANER = Cleaner.create();
    /** Slots of {@link #idle}: a power of two, at least twice the processors. */
    private static final int IDLE_SLOTS = Integer.highestOneBit(2 * Runtime.getRuntime().availableProcessors() - 1) << 1;
    /**
     * Elements of {@link #idle} between two slots, a cache line's worth of references, so that tasks on
     * different carriers taking and parking caches do not write one line.
     */
    private static final int IDLE_STRIDE = 16;
    private static final VarHandle RECENT = MethodHandles.arrayElementVarHandle(PoolThreadCache[].class);
    /** Slots of {@link #recent}: a power of two. */
    private static final int RECENT_SLOTS = 256;

    /** The value a thread's {@code ThreadLocal} holds; when it becomes unreachable, its cache is released. */
    private record Holder(PoolThreadCache cache) {}

    private final PoolCore pool;
    private final PoolArena[] arenas;
    private final PoolThreadCache.CacheConfig config;
    private final boolean threadLocalCaches;
    private final ThreadLocal<Holder> threadLocal = new ThreadLocal<>();
    /**
     * A front for {@link #threadLocal} and {@link #scoped}, which cost several dependent loads on every
     * allocate and free: slot {@code threadId & (RECENT_SLOTS - 1)} holds the thread-local cache of the
     * first live thread with that slot to look its cache up, or, for the length of a task, the cache of
     * a {@code runWithThreadCache} task whose thread found the slot free, so most lookups are one load
     * and an owner check. A hit is only ever the caller's own cache (the owner is compared); a thread
     * whose slot is taken uses the {@code ThreadLocal} or the binding. Filled by compare-and-set from
     * null; emptied when its thread-local cache is detached, or by the task's end (a plain release store:
     * no other thread writes a slot that is taken).
     */
    private final PoolThreadCache[] recent = new PoolThreadCache[RECENT_SLOTS];
    private final ScopedValue<PoolThreadCache> scoped = ScopedValue.newInstance();
    /**
     * What {@link #current} reads from {@link #scoped} when the thread has no binding
     * ({@code ScopedValue.orElse} takes no null): a cache no thread ever uses.
     */
    private final PoolThreadCache unbound;
    private boolean scopedBindings;
    private final Set<PoolThreadCache> live = ConcurrentHashMap.newKeySet();
    private final AtomicReferenceArray<PoolThreadCache> idle = new AtomicReferenceArray<>(IDLE_SLOTS * IDLE_STRIDE);
    /** Shared stripes for virtual threads without a binding; made on first use. */
    private volatile PoolThreadCache[] stripes;
    private static final int STRIPE_PROBES = 3;
    private final LongAdder retiredHits = new LongAdder();
    private final LongAdder retiredMisses = new LongAdder();
    /** Arenas opened and closed on threads without a cache, and by released caches. */
    final LongAdder arenasOpened = new LongAdder();
    final LongAdder arenasClosed = new LongAdder();

    ThreadCaches(PoolCore pool, PoolArena[] arenas, PoolThreadCache.CacheConfig config, boolean threadLocalCaches) {
        this.pool = pool;
        this.arenas = arenas;
        this.config = config;
        this.threadLocalCaches = threadLocalCaches && config.enabled();
        this.unbound = new PoolThreadCache(pool, arenas[0], null, config, true, false);
    }

    /** The calling thread's cache if it has one; never creates one. Small: on every allocate and free. */
    PoolThreadCache current() {
        Thread thread = Thread.currentThread();
        PoolThreadCache cache = recent[recentSlot(thread)];
        return cache != null && cache.owner == thread && cache.bindingsAbove == 0 ? cache : currentElsewhere(thread);
    }

    /**
     * {@link #current} of a thread whose cache is not in {@link #recent}: the bound cache if the thread
     * owns it (a fork that inherited its parent's binding gets none), else the thread-local cache.
     * Apart from {@code current}, so that a pool which ever bound a scoped cache still serves its
     * threads from the front table, with no scoped-value lookup: that lookup, a miss for a thread with
     * no binding, is as large as the rest of the fast path, and with it on every call neither allocate
     * nor free inlined any more (also where the tasks ran: a task's cache answers from the front table
     * when its slot was free, which leaves the lookup to 1 task in {@value #RECENT_SLOTS} per live
     * thread-local cache).
     */
    private PoolThreadCache currentElsewhere(Thread thread) {
        PoolThreadCache bound = binding();
        if (bound != unbound) {
            return bound.owner == thread ? bound : null;
        }
        return currentLocal(thread);
    }

    /**
     * The scoped cache the calling thread sees bound (its own, or a parent's it inherited), or
     * {@link #unbound} when it sees none: one probe of the thread's scoped-value cache, none in a pool
     * that never bound one.
     */
    private PoolThreadCache binding() {
        return scopedBindings ? scoped.orElse(unbound) : unbound;
    }

    /** The slot of {@link #recent} that {@code thread}'s cache may take. */
    private static int recentSlot(Thread thread) {
        return (int) thread.threadId() & (RECENT_SLOTS - 1);
    }

    /**
     * The thread-local cache of {@code thread} (the caller), put in {@link #recent} if its slot is free.
     * A virtual thread never gets one ({@link #currentOrCreate}), so it does not look: a miss in a
     * virtual thread's {@code ThreadLocal} map cost it about a sixth of its allocate/free time.
     */
    private PoolThreadCache currentLocal(Thread thread) {
        if (thread.isVirtual()) {
            return null;
        }
        Holder holder = threadLocal.get();
        if (holder == null) {
            return null;
        }
        int slot = recentSlot(thread);
        if (recent[slot] == null) {
            RECENT.compareAndSet(recent, slot, (PoolThreadCache) null, holder.cache);
        }
        return holder.cache;
    }

    /** The calling thread's cache, created on first use for platform threads; null when the thread gets none. */
    PoolThreadCache currentOrCreate() {
        PoolThreadCache cache = current();
        return cache != null ? cache : createForCaller();
    }

    /**
     * For a caller that {@link #current()} just found without a cache: a new thread-local cache when
     * the calling thread may have one (a platform thread, caches on, no scoped binding), else null. The
     * rest of {@link #currentOrCreate}, so that a path which looked once does not look again.
     */
    PoolThreadCache createForCaller() {
        if (!threadLocalCaches || binding() != unbound || Thread.currentThread().isVirtual()) {
            return null;
        }
        return newThreadLocalCache();
    }

    /**
     * Runs {@code task} with a cache bound to the calling thread, and flushes and parks the cache when
     * the task ends; inside a task already bound for this thread (or with caching off), just runs it.
     * The cache is a parked one when there is one: only its structure is reused, never its contents.
     */
    <T, X extends Throwable> T callBound(ScopedValue.CallableOp<T, X> task) throws X {
        Thread thread = Thread.currentThread();
        if (!config.enabled() || binding().owner == thread) { // unbound's owner is null
            return task.call();
        }
        PoolThreadCache cache = takeIdle(thread);
        if (cache == null) {
            cache = attach(thread, true, true);
        }
        if (!scopedBindings) { // written once: every allocate and free reads it
            scopedBindings = true;
        }
        // The thread's own cache in the front table stops answering current() while the task runs; a
        // free slot takes the task's cache instead, so that its allocations and frees look up no binding.
        int slot = recentSlot(thread);
        PoolThreadCache front = recent[slot];
        PoolThreadCache outer = front != null && front.owner == thread ? front : null;
        if (outer != null) {
            outer.bindingsAbove++;
        }
        boolean inFront = front == null && RECENT.compareAndSet(recent, slot, (PoolThreadCache) null, cache);
        try {
            return ScopedValue.where(scoped, cache).call(task);
        } finally {
            if (inFront) {
                RECENT.setRelease(recent, slot, (PoolThreadCache) null); // no other thread writes a taken slot
            }
            if (outer != null) {
                outer.bindingsAbove--;
            }
            cache.park();
            if (!putIdle(thread, cache)) {
                detach(cache);
            }
        }
    }

    /** A parked cache, now owned by {@code thread}; null when no slot holds one. */
    private PoolThreadCache takeIdle(Thread thread) {
        int start = (int) thread.threadId();
        for (int i = 0; i < IDLE_SLOTS; i++) {
            int slot = ((start + i) & (IDLE_SLOTS - 1)) * IDLE_STRIDE;
            if (idle.getPlain(slot) != null) {
                PoolThreadCache cache = idle.getAndSet(slot, null);
                if (cache != null) {
                    cache.reuse(thread);
                    return cache;
                }
            }
        }
        return null;
    }

    /** Parks {@code cache} (flushed, without owner) in a free slot; false when none is free or the pool is closing. */
    private boolean putIdle(Thread thread, PoolThreadCache cache) {
        if (!pool.lifecycle.isOpen()) {
            return false;
        }
        int start = (int) thread.threadId();
        for (int i = 0; i < IDLE_SLOTS; i++) {
            if (idle.compareAndSet(((start + i) & (IDLE_SLOTS - 1)) * IDLE_STRIDE, null, cache)) {
                return true;
            }
        }
        return false;
    }

    /** Parked caches bound to {@code arena}: they count in its {@code boundCaches}, but no thread holds them. */
    int parkedIn(PoolArena arena) {
        int parked = 0;
        for (int i = 0; i < IDLE_SLOTS; i++) {
            PoolThreadCache cache = idle.get(i * IDLE_STRIDE);
            if (cache != null && cache.arena == arena) {
                parked++;
            }
        }
        return parked;
    }

    private PoolThreadCache newThreadLocalCache() {
        PoolThreadCache cache = attach(Thread.currentThread(), false, false);
        Holder holder = new Holder(cache);
        threadLocal.set(holder);
        CLEANER.register(holder, cache::release);
        return cache;
    }

    /**
     * A new cache for {@code owner}, bound to the arena with the fewest caches; {@code scoped}: released
     * by its binder, not by the decay task; {@code adaptiveRefill}: see {@link PoolThreadCache}.
     */
    PoolThreadCache attach(Thread owner, boolean scoped, boolean adaptiveRefill) {
        PoolArena arena = arenas[0];
        for (PoolArena candidate : arenas) {
            if (candidate.boundCaches.get() < arena.boundCaches.get()) {
                arena = candidate;
            }
        }
        arena.boundCaches.incrementAndGet();
        PoolThreadCache cache = new PoolThreadCache(pool, arena, owner, config, scoped, adaptiveRefill);
        live.add(cache);
        return cache;
    }

    // ---- shared stripes ----

    /**
     * A stripe claimed for the calling virtual thread, or null (a platform thread, caching off, or
     * every probed stripe busy). The caller gives it back with {@link PoolThreadCache#unclaim()}.
     * The first probe is all a virtual thread's fast path compiles; the others are a call
     * ({@link #claimStripe(PoolThreadCache[], Thread, int)}), which keeps that path small enough to inline.
     */
    PoolThreadCache claimStripe() {
        Thread thread = Thread.currentThread();
        if (!thread.isVirtual()) {
            return null;
        }
        PoolThreadCache[] s = stripes;
        if (s == null) {
            return config.enabled() ? claimStripe(makeStripes(), thread, 0) : null;
        }
        PoolThreadCache stripe = s[(int) thread.threadId() & (s.length - 1)];
        return stripe.tryClaim() ? stripe : claimStripe(s, thread, 1);
    }

    /** Probes {@code from} to {@code STRIPE_PROBES - 1} of {@code thread} in {@code s}: the first it claims, or null. */
    private static PoolThreadCache claimStripe(PoolThreadCache[] s, Thread thread, int from) {
        int start = (int) thread.threadId();
        for (int i = from; i < STRIPE_PROBES; i++) {
            PoolThreadCache stripe = s[(start + i) & (s.length - 1)];
            if (stripe.tryClaim()) {
                return stripe;
            }
        }
        return null;
    }

    /**
     * As {@link #claimStripe}, when the stripe holds a unit of class {@code sizeIndex}; else null (a
     * claimed stripe that lacks the class is given back: its refill is for the rare path).
     */
    PoolThreadCache claimStripeWith(int sizeIndex) {
        PoolThreadCache stripe = claimStripe();
        if (stripe != null && !stripe.has(sizeIndex)) {
            stripe.unclaim();
            return null;
        }
        return stripe;
    }

    private synchronized PoolThreadCache[] makeStripes() {
        if (stripes == null) {
            PoolThreadCache[] s = new PoolThreadCache[IDLE_SLOTS];
            for (int i = 0; i < s.length; i++) {
                s[i] = new PoolThreadCache(pool, arenas[i % arenas.length], null, config, true, true);
            }
            stripes = s;
        }
        return stripes;
    }

    /**
     * Runs {@code action} on every stripe not claimed at the moment (claiming it meanwhile): the decay
     * task trims them, {@code trim()} flushes them.
     */
    void forEachIdleStripe(java.util.function.Consumer<PoolThreadCache> action) {
        PoolThreadCache[] s = stripes;
        if (s == null) {
            return;
        }
        for (PoolThreadCache stripe : s) {
            if (stripe.tryClaim()) {
                try {
                    action.accept(stripe);
                } finally {
                    stripe.unclaim();
                }
            }
        }
    }

    /** Forgets a released cache (its contents are back in the arenas), keeping its counts. */
    void detach(PoolThreadCache cache) {
        if (!cache.scoped) { // only thread-local caches enter the front table; scoped ones detach every task
            forgetRecent(cache);
        }
        if (live.remove(cache)) {
            cache.arena.boundCaches.decrementAndGet();
            retiredHits.add(cache.hits());
            retiredMisses.add(cache.misses());
            arenasOpened.add(cache.arenasOpened);
            arenasClosed.add(cache.arenasClosed);
            cache.arenasOpened = 0;
            cache.arenasClosed = 0;
        }
    }

    /**
     * Empties the front table's slot if it holds {@code cache}: the slot of its owner, which never
     * changes for a thread-local cache.
     */
    private void forgetRecent(PoolThreadCache cache) {
        RECENT.compareAndSet(recent, recentSlot(cache.owner), cache, (PoolThreadCache) null);
    }

    /** Releases the caches whose owner thread has ended: no need to wait for GC and the Cleaner. */
    void releaseEnded() {
        for (PoolThreadCache cache : live) {
            Thread owner = cache.owner;
            if (!cache.scoped && owner != null && !owner.isAlive()) {
                cache.release();
            }
        }
    }

    /** Forgets every cache; for the pool's close. */
    void detachAll() {
        for (PoolThreadCache cache : live) {
            detach(cache);
        }
        for (int i = 0; i < IDLE_SLOTS; i++) {
            idle.set(i * IDLE_STRIDE, null);
        }
    }

    /**
     * Caches a thread holds (shared stripes and parked caches not counted as caches) and the figures of
     * all, read without stopping their owners.
     */
    record Totals(int caches, long cachedBytes, long hits, long misses, long openArenas) {}

    Totals totals() {
        int caches = 0;
        long cached = 0;
        long hits = retiredHits.sum();
        long misses = retiredMisses.sum();
        long arenas = arenasOpened.sum() - arenasClosed.sum();
        for (PoolThreadCache cache : live) {
            if (!cache.parked()) {
                caches++;
            }
            cached += cache.cachedBytes();
            hits += cache.hits();
            misses += cache.misses();
            arenas += cache.arenasOpened - cache.arenasClosed;
        }
        PoolThreadCache[] shared = stripes;
        if (shared != null) { // shared stripes hold cached bytes, but are no thread's cache
            for (PoolThreadCache stripe : shared) {
                cached += stripe.cachedBytes();
                hits += stripe.hits();
                misses += stripe.misses();
            }
        }
        return new Totals(caches, cached, hits, misses, arenas);
    }

    /** What {@code thread}'s slot of the front table holds now (any thread's cache, or null); for tests. */
    PoolThreadCache frontSlot(Thread thread) {
        return (PoolThreadCache) RECENT.getVolatile(recent, recentSlot(thread));
    }

    /** The scoped value, for tests that bind a cache owned by another thread as a fork would see it. */
    ScopedValue<PoolThreadCache> scopedValue() {
        scopedBindings = true;
        return scoped;
    }
}
