package dev.segpool;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.ReentrantLock;

/**
 * One arena: chunk lists by usage, a {@link SubpageList} per small size class, and counters. Threads
 * are spread over a pool's arenas so that they seldom meet on a lock.
 *
 * <p>Protocol: chunk lists, chunk runs and the normal counters are guarded by {@link #lock}; each
 * small size class by its {@link SubpageList#lock}. Lock order: size-class lock, then arena lock; an
 * arena holding its lock takes another arena's only with {@code tryLock}, to move an empty chunk.
 * Units passed to the free methods have already been claimed (their {@link UnitState} is FREE), so
 * only the thread that claimed or cached them can pass them here, once. Totals ({@link #usedBytes()})
 * are written under the lock that guards them and read without one (opaque), for cheap metrics.
 */
final class PoolArena {
    private static final VarHandle NORMAL_USED;

    static {
        try {
            NORMAL_USED = MethodHandles.lookup().findVarHandle(PoolArena.class, "normalUsedBytes", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final int index;
    final String poolName;
    final SizeClasses sizeClasses;
    final NativeMemory memory;
    final ReentrantLock lock = new ReentrantLock();
    final SubpageList[] smallLists;
    /** Thread caches bound to this arena; a new cache binds to the arena with the fewest. */
    final AtomicInteger boundCaches = new AtomicInteger();

    final PoolChunkList empty = new PoolChunkList("empty", Integer.MIN_VALUE, 1);
    final PoolChunkList qInit = new PoolChunkList("qInit", Integer.MIN_VALUE, 25);
    final PoolChunkList q000 = new PoolChunkList("q000", 1, 50);
    final PoolChunkList q025 = new PoolChunkList("q025", 25, 75);
    final PoolChunkList q050 = new PoolChunkList("q050", 50, 100);
    final PoolChunkList q075 = new PoolChunkList("q075", 75, 100);
    final PoolChunkList q100 = new PoolChunkList("q100", 100, Integer.MAX_VALUE);
    /** Lists in usage order, for reports. */
    final List<PoolChunkList> lists = List.of(empty, qInit, q000, q025, q050, q075, q100);
    /**
     * Where the next run goes, chosen across the arena's chunks ({@link RunPlacement}), with chunks
     * kept apart by what they hold: the units a thread cache may hold (subpages and runs of classes up
     * to {@link #maxCachedSize}) in {@link #cacheableChunks}, larger runs in {@link #largeRunChunks}.
     * A thread that goes idle keeps the units in its cache (only the owner may touch them); apart, they
     * pin a few small-unit chunks instead of many chunks of large runs, which can then be released.
     */
    private final RunPlacement cacheableChunks;
    private final RunPlacement largeRunChunks;
    /**
     * Requests of a class above this size (the largest class thread caches may hold) get runs of the
     * whole pages they need rather than of their class's pages ({@link SizeClasses#runPagesFor}).
     */
    private final long maxCachedSize;

    /** Every arena of the pool, this one included: where {@link #chunkWithRun} looks for an empty chunk. Set once, before use. */
    private PoolArena[] siblings = {this};

    // Guarded by lock (normalUsedBytes also read opaque without it); read by ArenaInspection.
    long normalUsedBytes;
    long normalAllocations;
    long normalDeallocations;

    PoolArena(int index, SizeClasses sizeClasses, NativeMemory memory, int maxCachedSize) {
        this.index = index;
        this.maxCachedSize = maxCachedSize;
        this.cacheableChunks = new RunPlacement(sizeClasses);
        this.largeRunChunks = new RunPlacement(sizeClasses);
        this.poolName = memory.poolName;
        this.sizeClasses = sizeClasses;
        this.memory = memory;
        this.smallLists = new SubpageList[sizeClasses.smallClasses];
        for (int i = 0; i < smallLists.length; i++) {
            smallLists[i] = new SubpageList(i, sizeClasses.size(i));
        }
        empty.next = qInit;
        qInit.next = q000;
        q000.next = q025;
        q025.next = q050;
        q050.next = q075;
        q075.next = q100;
        q100.prev = q075;
        q075.prev = q050;
        q050.prev = q025;
        q025.prev = q000;
    }

    /** Tells this arena the pool's arenas (itself among them); before any allocation. */
    void joinSiblings(PoolArena[] arenas) {
        this.siblings = arenas;
    }

    // ---- allocation ----

    /**
     * Allocates one unit of class {@code sizeIndex} (runs aligned to {@code alignPages} pages) and hands
     * it out in {@code state} (owned by {@code owner} for {@code BUDGET}); returns its address, its
     * {@code byteSize} bytes zeroed if {@code zero} (the caller makes the segment). This is the
     * path of threads without a cache, of classes no cache holds, and of aligned runs. A run of a class
     * no cache may hold is cut to the whole pages {@code byteSize} needs: it never goes into a cache,
     * so nothing else needs it to be as long as its class.
     */
    long allocate(int sizeIndex, int alignPages, long byteSize, byte state, MemoryBudget owner, boolean zero) {
        if (sizeClasses.isSmall(sizeIndex)) {
            SubpageList list = smallLists[sizeIndex];
            PoolSubpage subpage;
            long handle;
            list.lock.lock();
            try {
                subpage = availableSubpage(list);
                handle = subpage.allocate();
                if (subpage.available == 0) {
                    list.remove(subpage);
                }
                list.addUsed(1);
                list.allocations++;
            } finally {
                list.lock.unlock();
            }
            return handOut(subpage.chunk, handle, list.elementSize, byteSize, state, owner, zero);
        }
        PoolChunk chunk;
        long handle;
        boolean untouched;
        boolean large = sizeClasses.size(sizeIndex) > maxCachedSize;
        int pages = runPages(sizeIndex, byteSize);
        lock.lock();
        try {
            chunk = chunkWithRun(pages, alignPages, large ? largeRunChunks : cacheableChunks);
            int untouchedFrom = chunk.untouchedFrom();
            handle = allocateNormalLocked(chunk, pages, alignPages);
            untouched = Handle.runOffset(handle) >= untouchedFrom;
        } finally {
            lock.unlock();
        }
        return handOut(chunk, handle, 0, byteSize, state, owner, zero && !untouched);
    }

    /**
     * Pages of the run for a request of {@code byteSize} bytes of normal class {@code sizeIndex}: the
     * class's pages when a thread cache may hold it, else just the whole pages the request needs.
     */
    int runPages(int sizeIndex, long byteSize) {
        return sizeClasses.size(sizeIndex) > maxCachedSize
                ? sizeClasses.runPagesFor(sizeIndex, byteSize) : sizeClasses.runPages(sizeIndex);
    }

    /**
     * Resizes the used run {@code handle} of {@code chunk} in place to {@code newPages} pages (see
     * {@link PoolChunk#resizeRun}); returns the new handle, or {@link Handle#NONE} when the pages that
     * follow it are not free.
     */
    long resizeRun(PoolChunk chunk, long handle, int newPages) {
        lock.lock();
        try {
            long before = chunk.bandMask();
            long run = chunk.resizeRun(handle, newPages);
            if (run == Handle.NONE) {
                return run;
            }
            chunk.placement.update(chunk, before);
            long delta = (long) (newPages - Handle.runPages(handle)) << sizeClasses.pageShifts;
            NORMAL_USED.setOpaque(this, normalUsedBytes + delta);
            if (delta > 0) {
                placeAfterAllocation(chunk);
            } else {
                placeAfterFree(chunk);
            }
            return run;
        } finally {
            lock.unlock();
        }
    }

    /**
     * Hands the unit {@code handle} of {@code chunk} out and returns its address; zero-fills its
     * {@code byteSize} bytes if {@code zero} (arena units are handed out zeroed; a run never handed out
     * since its chunk was created is zero already).
     */
    private static long handOut(PoolChunk chunk, long handle, int elementSize, long byteSize, byte state,
                                MemoryBudget owner, boolean zero) {
        long offset = chunk.handOut(handle, elementSize, state, owner);
        if (zero) {
            chunk.segment.asSlice(offset, byteSize).fill((byte) 0);
        }
        return chunk.base + offset;
    }

    /**
     * Refills a thread cache: puts up to {@code count} units of class {@code sizeIndex} at
     * {@code [from, from + n)} of the arrays, under one lock, and returns n (at least 1). Small classes
     * take what the subpages at hand hold, cutting a new subpage only when there is none.
     */
    int fill(int sizeIndex, PoolChunk[] chunks, long[] handles, int from, int count) {
        if (!sizeClasses.isSmall(sizeIndex)) {
            lock.lock();
            try {
                int pages = sizeClasses.runPages(sizeIndex);
                PoolChunk chunk = chunkWithRun(pages, 1, cacheableChunks);
                chunks[from] = chunk;
                handles[from] = allocateNormalLocked(chunk, pages, 1);
                return 1;
            } finally {
                lock.unlock();
            }
        }
        SubpageList list = smallLists[sizeIndex];
        list.lock.lock();
        try {
            int n = 0;
            PoolSubpage subpage = availableSubpage(list);
            while (subpage != null && n < count) {
                while (n < count && subpage.available > 0) {
                    chunks[from + n] = subpage.chunk;
                    handles[from + n] = subpage.allocate();
                    n++;
                }
                if (subpage.available == 0) {
                    list.remove(subpage);
                }
                subpage = list.first();
            }
            list.addUsed(n);
            list.allocations += n;
            return n;
        } finally {
            list.lock.unlock();
        }
    }

    /** A listed subpage of the class, or a new one. Size-class lock held. */
    private PoolSubpage availableSubpage(SubpageList list) {
        PoolSubpage subpage = list.first();
        if (subpage != null) {
            return subpage;
        }
        lock.lock();
        try {
            int pages = sizeClasses.subpageRunPages(list.sizeIndex);
            PoolChunk chunk = chunkWithRun(pages, 1, cacheableChunks);
            subpage = chunk.newSubpage(allocateRunLocked(chunk, pages, 1), list.sizeIndex);
        } finally {
            lock.unlock();
        }
        list.add(subpage);
        list.subpages++;
        return subpage;
    }

    /** Cuts a run of {@code pages} pages for a normal class from {@code chunk}, counted; arena lock held. */
    private long allocateNormalLocked(PoolChunk chunk, int pages, int alignPages) {
        long handle = allocateRunLocked(chunk, pages, alignPages);
        NORMAL_USED.setOpaque(this, normalUsedBytes + ((long) pages << sizeClasses.pageShifts));
        normalAllocations++;
        return handle;
    }

    /** Cuts a run from {@code chunk}, which {@link #chunkWithRun} chose, and re-lists the chunk. Arena lock held. */
    private long allocateRunLocked(PoolChunk chunk, int pages, int alignPages) {
        long before = chunk.bandMask();
        long handle = chunk.allocateRun(pages, alignPages);
        assert handle != Handle.NONE;
        chunk.placement.update(chunk, before);
        placeAfterAllocation(chunk);
        return handle;
    }

    /**
     * The chunk of {@code placement}'s kind with the best fit for {@code pages} pages aligned to
     * {@code alignPages}; else an empty chunk of the other kind, which changes kind; else an empty chunk
     * of another arena, which changes arena ({@link #takeEmptyChunkOfOther}); else a new chunk (listed in
     * qInit). Arena lock held.
     */
    private PoolChunk chunkWithRun(int pages, int alignPages, RunPlacement placement) {
        PoolChunk chunk = placement.bestFit(pages + alignPages - 1);
        if (chunk != null) {
            return chunk;
        }
        chunk = empty.head(); // an empty chunk of this kind would have been the fit: it is of the other
        if (chunk != null) {
            chunk.placement.remove(chunk);
        } else {
            chunk = takeEmptyChunkOfOther();
            if (chunk == null) {
                chunk = memory.allocateChunk(this);
            }
            qInit.add(chunk);
        }
        placement.add(chunk);
        return chunk;
    }

    /**
     * An empty chunk that another arena keeps until the decay releases it, moved to this arena; null when
     * none is free for the taking. With one arena per busy thread, each arena would otherwise keep the
     * room of its own thread's last peak while the others map new chunks. Only arenas whose lock is free
     * now are asked ({@code tryLock}): this arena's lock is held, so waiting could deadlock, and a
     * busy arena is likely to need its empty chunk itself. Takes the chunk that became empty last (its
     * pages are the likeliest to be resident). Arena lock held.
     */
    private PoolChunk takeEmptyChunkOfOther() {
        for (int i = 1; i < siblings.length; i++) {
            PoolArena other = siblings[(index + i) % siblings.length];
            if (other.empty.head() == null || !other.lock.tryLock()) { // a racy peek first: no lock for nothing
                continue;
            }
            try {
                PoolChunk chunk = other.empty.head();
                if (chunk != null) {
                    other.empty.remove(chunk);
                    chunk.placement.remove(chunk);
                    chunk.arena = this;
                    PoolEvents.chunkMoved(poolName, chunk, other.index);
                    return chunk;
                }
            } finally {
                other.lock.unlock();
            }
        }
        return null;
    }

    private void placeAfterAllocation(PoolChunk chunk) {
        PoolChunkList list = chunk.list;
        int usage = chunk.usage();
        if (usage >= list.maxUsage) {
            list.remove(chunk);
            list.target(usage).add(chunk);
        }
    }

    private void placeAfterFree(PoolChunk chunk) {
        PoolChunkList list = chunk.list;
        if (chunk.isEmpty()) {
            list.remove(chunk);
            chunk.emptySinceNanos = UNSTAMPED;
            empty.add(chunk);
            return;
        }
        int usage = chunk.usage();
        if (usage < list.minUsage) {
            list.remove(chunk);
            list.target(usage).add(chunk);
        }
    }

    // ---- free ----

    /** Gives back one claimed unit. */
    void free(PoolChunk chunk, long handle, int sizeIndex) {
        if (sizeClasses.isSmall(sizeIndex)) {
            SubpageList list = smallLists[sizeIndex];
            list.lock.lock();
            try {
                freeElementLocked(list, chunk, handle);
            } finally {
                list.lock.unlock();
            }
        } else {
            lock.lock();
            try {
                freeRunLocked(chunk, handle);
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * Gives back units {@code [from, to)} of class {@code sizeIndex}, which may come from several
     * arenas: one lock acquisition per run of consecutive units of the same arena.
     */
    static void freeAll(int sizeIndex, PoolChunk[] chunks, long[] handles, int from, int to) {
        int i = from;
        while (i < to) {
            PoolArena arena = chunks[i].arena;
            int end = i + 1;
            while (end < to && chunks[end].arena == arena) {
                end++;
            }
            arena.freeRange(sizeIndex, chunks, handles, i, end);
            i = end;
        }
    }

    private void freeRange(int sizeIndex, PoolChunk[] chunks, long[] handles, int from, int to) {
        boolean small = sizeClasses.isSmall(sizeIndex);
        ReentrantLock held = small ? smallLists[sizeIndex].lock : lock;
        held.lock();
        try {
            for (int i = from; i < to; i++) {
                if (small) {
                    freeElementLocked(smallLists[sizeIndex], chunks[i], handles[i]);
                } else {
                    freeRunLocked(chunks[i], handles[i]);
                }
            }
        } finally {
            held.unlock();
        }
    }

    private void freeElementLocked(SubpageList list, PoolChunk chunk, long handle) {
        PoolSubpage subpage = chunk.subpage(Handle.runOffset(handle));
        subpage.free(Handle.bitmapIndex(handle));
        list.addUsed(-1);
        list.deallocations++;
        if (!subpage.listed) {
            list.add(subpage);
        }
        if (subpage.isEmpty()) {
            subpage.emptySinceNanos = UNSTAMPED;
            if (!list.isOnly(subpage)) {
                releaseSubpageLocked(list, subpage);
            }
        }
    }

    /** Unlists an empty subpage and gives its run back to its chunk. Size-class lock held. */
    private void releaseSubpageLocked(SubpageList list, PoolSubpage subpage) {
        list.remove(subpage);
        list.subpages--;
        lock.lock();
        try {
            long before = subpage.chunk.bandMask();
            subpage.chunk.freeSubpage(subpage);
            subpage.chunk.placement.update(subpage.chunk, before);
            placeAfterFree(subpage.chunk);
        } finally {
            lock.unlock();
        }
    }

    /**
     * The "empty since" mark of a chunk or subpage that just became empty: a free does not read a
     * clock. The next reclaim stamps it with its own time, an upper bound of when it became empty, so
     * a release is never early, however late the decay tick runs.
     */
    static final long UNSTAMPED = Long.MIN_VALUE;

    /** The mark {@code since}, stamped with {@code now} if it was not yet. */
    private static long stamped(long since, long now) {
        return since == UNSTAMPED ? now : since;
    }

    /** Whether a stamped mark is at or before {@code cutoffNanos} ({@code Long.MAX_VALUE}: everything qualifies). */
    private static boolean emptyBefore(long since, long cutoffNanos) {
        return cutoffNanos == Long.MAX_VALUE || since != UNSTAMPED && since - cutoffNanos <= 0;
    }

    private void freeRunLocked(PoolChunk chunk, long handle) {
        long before = chunk.bandMask();
        chunk.freeRun(handle);
        chunk.placement.update(chunk, before);
        NORMAL_USED.setOpaque(this, normalUsedBytes - ((long) Handle.runPages(handle) << sizeClasses.pageShifts));
        normalDeallocations++;
        placeAfterFree(chunk);
    }

    // ---- giving memory back ----

    /**
     * Gives back what has stayed free since at or before {@code cutoffNanos} ({@code Long.MAX_VALUE}:
     * all of it): runs of subpages no element used (each class otherwise keeps one, so that the next
     * small allocation does not cut a new run), then chunks with no page in use, whose memory goes back
     * to the OS; and, if {@code purge}, the long-free pages of chunks in use ({@link #purge}). Marks not
     * stamped yet are stamped with {@code nowNanos} first. Returns the native bytes released. Runs
     * inside an operation of the pool's {@link Lifecycle}.
     */
    long reclaim(long nowNanos, long cutoffNanos, boolean purge, boolean allPages, String reason) {
        releaseIdleSubpages(nowNanos, cutoffNanos);
        long released = 0;
        for (PoolChunk chunk : takeEmptyChunks(nowNanos, cutoffNanos)) {
            if (memory.releaseChunk(chunk, reason)) {
                released += memory.chunkSize;
            }
        }
        return purge ? released + purge(allPages) : released;
    }

    /**
     * Takes out the chunks that have been empty since before {@code emptyBeforeNanos}; the caller
     * releases them. A chunk that holds the only subpage of a small class is not empty: that
     * subpage's run is in use.
     */
    private List<PoolChunk> takeEmptyChunks(long nowNanos, long emptyBeforeNanos) {
        List<PoolChunk> taken = new ArrayList<>();
        lock.lock();
        try {
            PoolChunk chunk = empty.head();
            while (chunk != null) {
                PoolChunk next = chunk.next;
                chunk.emptySinceNanos = stamped(chunk.emptySinceNanos, nowNanos);
                if (emptyBefore(chunk.emptySinceNanos, emptyBeforeNanos)) {
                    empty.remove(chunk);
                    chunk.placement.remove(chunk);
                    taken.add(chunk);
                }
                chunk = next;
            }
        } finally {
            lock.unlock();
        }
        return taken;
    }

    private void releaseIdleSubpages(long nowNanos, long emptyBeforeNanos) {
        for (SubpageList list : smallLists) {
            list.lock.lock();
            try {
                PoolSubpage subpage = list.first();
                if (subpage == null || !subpage.isEmpty() || !list.isOnly(subpage)) {
                    continue;
                }
                subpage.emptySinceNanos = stamped(subpage.emptySinceNanos, nowNanos);
                if (emptyBefore(subpage.emptySinceNanos, emptyBeforeNanos)) {
                    releaseSubpageLocked(list, subpage);
                }
            } finally {
                list.lock.unlock();
            }
        }
    }

    /**
     * Purges the long-free pages of this arena's chunks that are in use (see {@link PoolChunk#purge});
     * {@code all}: every free page. Returns the bytes purged.
     */
    private long purge(boolean all) {
        if (!memory.mapped) {
            return 0;
        }
        lock.lock();
        try {
            long bytes = 0;
            for (PoolChunkList list : lists) {
                if (list == empty) {
                    continue; // empty chunks are released whole
                }
                for (PoolChunk chunk = list.head(); chunk != null; chunk = chunk.next) {
                    bytes += chunk.purge(all);
                }
            }
            return bytes;
        } finally {
            lock.unlock();
        }
    }

    // ---- inspection ----

    /** Bytes handed out from this arena (to users or thread caches), read without a lock. */
    long usedBytes() {
        long used = (long) NORMAL_USED.getOpaque(this);
        for (SubpageList list : smallLists) {
            used += list.usedElements() * list.elementSize;
        }
        return used;
    }

    /** Runs {@code action} with every lock of this arena held, so that it sees a consistent state. */
    <T> T locked(java.util.function.Supplier<T> action) {
        for (SubpageList list : smallLists) {
            list.lock.lock();
        }
        lock.lock();
        try {
            return action.get();
        } finally {
            lock.unlock();
            for (int i = smallLists.length - 1; i >= 0; i--) {
                smallLists[i].lock.unlock();
            }
        }
    }

    /** Checks the chunks' own bookkeeping against their queues; for tests (see {@link ArenaInspection}). */
    boolean checkConsistency() {
        return ArenaInspection.isConsistent(this) && locked(() -> cacheableChunks.isConsistent() && largeRunChunks.isConsistent());
    }
}
