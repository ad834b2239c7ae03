package dev.segpool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * One native segment of {@code chunkSize} bytes, aligned to its size, cut into runs of pages.
 *
 * <p>Free runs live in one {@link RunQueue} per band (run class: the runs from one class's pages up to
 * the next class's), and a run is cut from the shortest free run that holds it ({@link #allocateRun});
 * a bit mask of the non-empty bands lets the arena's {@link RunPlacement} choose among its chunks
 * without looking into each. The run map holds,
 * for each page, the handle of the run that page begins (used or free), ends (free runs only) or
 * belongs to (every page of a subpage's run), and 0 elsewhere; so coalescing finds a freed run's free
 * neighbours in O(1), and {@link #claim} resolves an address to its allocation in O(1).
 *
 * <p>Protocol: runs, queues, the run map and {@link #freePages} change only under the arena lock.
 * {@link #claim} reads the run map and the subpage table without a lock (acquire), then decides with
 * one atomic operation on a {@link UnitState}; writers publish with release. The chunk owns a shared
 * JDK arena of its own, so that it can be released alone and a stale segment into a released chunk
 * throws instead of touching freed memory.
 */
final class PoolChunk {
    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final VarHandle SUBPAGES = MethodHandles.arrayElementVarHandle(PoolSubpage[].class);

    /**
     * The arena whose lists hold this chunk and whose lock guards its runs. Changes only while the chunk
     * is empty, under the locks of both arenas ({@link PoolArena#chunkWithRun}): whoever reads it holds
     * a unit of the chunk, which it got after the change (under the new arena's lock, or through the
     * claim that synchronises with the unit's hand-out), so it reads the arena that owns the chunk now.
     */
    PoolArena arena;
    final SizeClasses sizeClasses;
    /** The JDK arena that owns this chunk's native memory; closing it releases the chunk. */
    final Arena memory;
    final MemorySegment segment;
    /** The scope of {@link #segment} and of every slice of it: how {@code free} knows a segment is this chunk's. */
    final MemorySegment.Scope scope;
    final long base;
    final int pageShifts;
    final int chunkPages;
    /** One {@link UnitState} per page, used at the first page of each normal run. */
    final byte[] runStates;
    /** The owner of each {@link UnitState#BUDGET} run, at its first page; null elsewhere. */
    final MemoryBudget[] runOwners;

    private final long[] runMap;
    /**
     * The subpage at every page of its run (not only its first), so that a free finds an element's
     * subpage from its address with one load; null at pages of no subpage.
     */
    private final PoolSubpage[] subpages;
    /** Free runs by band: {@code freeRuns[b]} holds the runs whose page count's run-class floor is b. */
    private final RunQueue[] freeRuns;
    /** Bit {@code b} set when {@code freeRuns[b]} is not empty; what the arena's {@link RunPlacement} indexes. */
    private long bandMask;
    int freePages;
    /** Pages at and above this one were never handed out since the chunk was created: still zero. */
    private int untouchedFrom;
    /** Set once its memory is released (under the pool's lifecycle); nothing may purge it after that. */
    volatile boolean released;
    /** Which pages were free at the last purge scan, and which are purged; null before the first scan. */
    private PurgeMap purges;

    /** The arena's {@link RunPlacement} this chunk is in (one per kind of run), null outside; arena lock. */
    RunPlacement placement;
    /** Position in {@link #placement} (its age rank), -1 outside; guarded by the arena lock. */
    int placementSlot = -1;

    // Membership of a PoolChunkList, guarded by the arena lock.
    PoolChunkList list;
    PoolChunk prev;
    PoolChunk next;
    long emptySinceNanos;

    PoolChunk(PoolArena arena, Arena memory, MemorySegment segment) {
        this.arena = arena;
        this.sizeClasses = arena.sizeClasses;
        this.memory = memory;
        this.segment = segment;
        this.scope = segment.scope();
        this.base = segment.address();
        this.pageShifts = sizeClasses.pageShifts;
        this.chunkPages = sizeClasses.chunkPages;
        this.runStates = new byte[chunkPages];
        this.runOwners = new MemoryBudget[chunkPages];
        this.runMap = new long[chunkPages];
        this.subpages = new PoolSubpage[chunkPages];
        this.freeRuns = new RunQueue[sizeClasses.runClasses()];
        assert freeRuns.length <= Long.SIZE : "a band mask has one bit per run class";
        for (int i = 0; i < freeRuns.length; i++) {
            freeRuns[i] = new RunQueue();
        }
        insertFreeRun(0, chunkPages);
        this.freePages = chunkPages;
    }

    // ---- runs (arena lock held) ----

    /**
     * Whether band {@code band} holds a free run of at least {@code span} pages. Only the band that
     * contains {@code span} needs this check: every run in a higher band is longer.
     */
    boolean hasRunInBand(int band, int span) {
        return freeRuns[band].smallestOfAtLeast(span) != Handle.NONE;
    }

    /** The bands that hold free runs here, one bit each (bit {@code b}: run class {@code b}). */
    long bandMask() {
        return bandMask;
    }

    /**
     * Pages at and above this one were never handed out since the chunk was mapped, so they read as
     * zero: a run cut at or above the value read before the cut needs no zeroing.
     */
    int untouchedFrom() {
        return untouchedFrom;
    }

    /**
     * Cuts a used run of {@code pages} pages whose first page is a multiple of {@code alignPages} and
     * returns its handle, or {@link Handle#NONE} when no free run is large enough. Best fit: the
     * shortest free run that holds {@code pages + alignPages - 1} pages (so it fits however it is
     * aligned), the lowest offset among equals; what is left before and after goes back as free runs.
     */
    long allocateRun(int pages, int alignPages) {
        int span = pages + alignPages - 1;
        if (span > freePages) {
            return Handle.NONE;
        }
        long free = Handle.NONE;
        int band = sizeClasses.runClassFloor(span);
        if (sizeClasses.runClassCeiling(span) != band) {
            free = freeRuns[band].smallestOfAtLeast(span); // this band also holds shorter runs
        }
        if (free == Handle.NONE) {
            long above = bandMask & -(1L << sizeClasses.runClassCeiling(span));
            if (above == 0) {
                return Handle.NONE;
            }
            band = Long.numberOfTrailingZeros(above);
            free = freeRuns[band].smallestOfAtLeast(span);
        }
        removeFreeRun(free, band);
        int offset = Handle.runOffset(free);
        int total = Handle.runPages(free);
        int start = (offset + alignPages - 1) / alignPages * alignPages;
        if (start > offset) {
            insertFreeRun(offset, start - offset);
        }
        int tail = offset + total - (start + pages);
        if (tail > 0) {
            insertFreeRun(start + pages, tail);
        }
        long run = Handle.run(start, pages, true);
        if (purges != null) {
            purges.handedOut(start, pages);
        }
        untouchedFrom = Math.max(untouchedFrom, start + pages);
        LONGS.setRelease(runMap, start, run);
        freePages -= pages;
        return run;
    }

    /** Gives back a used run (or a subpage's run) and merges it with its free neighbours. */
    void freeRun(long handle) {
        assert Handle.isUsed(handle);
        int offset = Handle.runOffset(handle);
        int pages = Handle.runPages(handle);
        int mapped = Handle.isSubpage(handle) ? pages : 1;
        for (int p = offset; p < offset + mapped; p++) {
            LONGS.setRelease(runMap, p, 0L);
        }
        freePages += pages;
        if (offset > 0) {
            long left = runMap[offset - 1];
            if (left != 0 && !Handle.isUsed(left)) {
                removeFreeRun(left);
                offset = Handle.runOffset(left);
                pages += Handle.runPages(left);
            }
        }
        int end = offset + pages;
        if (end < chunkPages) {
            long right = runMap[end];
            if (right != 0 && !Handle.isUsed(right)) {
                removeFreeRun(right);
                pages += Handle.runPages(right);
            }
        }
        insertFreeRun(offset, pages);
    }

    /**
     * Makes the used run {@code handle} (not a subpage's) {@code newPages} long in place and returns its
     * new handle: shorter by giving its tail back as a free run, longer by taking the start of the free
     * run that follows it; {@link Handle#NONE}, changing nothing, when that free run is missing or too
     * short.
     */
    long resizeRun(long handle, int newPages) {
        assert Handle.isUsed(handle) && !Handle.isSubpage(handle) && newPages > 0;
        int offset = Handle.runOffset(handle);
        int pages = Handle.runPages(handle);
        if (newPages < pages) {
            long run = Handle.run(offset, newPages, true);
            LONGS.setRelease(runMap, offset, run);
            freeRun(Handle.run(offset + newPages, pages - newPages, true));
            return run;
        }
        int end = offset + pages;
        int extra = newPages - pages;
        long next = end < chunkPages ? runMap[end] : 0;
        if (extra > 0 && (next == 0 || Handle.isUsed(next) || Handle.runPages(next) < extra)) {
            return Handle.NONE;
        }
        if (extra > 0) {
            removeFreeRun(next);
            if (Handle.runPages(next) > extra) {
                insertFreeRun(end + extra, Handle.runPages(next) - extra);
            }
            if (purges != null) {
                purges.handedOut(end, extra);
            }
            untouchedFrom = Math.max(untouchedFrom, offset + newPages);
            freePages -= extra;
        }
        long run = Handle.run(offset, newPages, true);
        LONGS.setRelease(runMap, offset, run);
        return run;
    }

    /**
     * Turns the used run {@code run} (just cut by {@link #allocateRun}) into a subpage of small class
     * {@code sizeIndex}.
     */
    PoolSubpage newSubpage(long run, int sizeIndex) {
        int offset = Handle.runOffset(run);
        int pages = Handle.runPages(run);
        assert pages == sizeClasses.subpageRunPages(sizeIndex);
        long subpageRun = Handle.subpageRun(offset, pages);
        PoolSubpage subpage = new PoolSubpage(this, sizeIndex, sizeClasses.size(sizeIndex), subpageRun,
                sizeClasses.subpageElements(sizeIndex));
        for (int p = offset; p < offset + pages; p++) {
            LONGS.setRelease(runMap, p, subpageRun);
            SUBPAGES.setRelease(subpages, p, subpage);
        }
        return subpage;
    }

    /** Gives back the run of an empty subpage. */
    void freeSubpage(PoolSubpage subpage) {
        assert subpage.isEmpty();
        for (int p = subpage.runOffset; p < subpage.runOffset + subpage.runPages; p++) {
            SUBPAGES.setRelease(subpages, p, null);
        }
        freeRun(subpage.runHandle);
    }

    private void insertFreeRun(int offset, int pages) {
        long free = Handle.run(offset, pages, false);
        int band = sizeClasses.runClassFloor(pages);
        freeRuns[band].offer(free);
        bandMask |= 1L << band;
        LONGS.setRelease(runMap, offset, free);
        LONGS.setRelease(runMap, offset + pages - 1, free);
    }

    private void removeFreeRun(long free) {
        removeFreeRun(free, sizeClasses.runClassFloor(Handle.runPages(free)));
    }

    private void removeFreeRun(long free, int band) {
        boolean removed = freeRuns[band].remove(free);
        assert removed : Handle.toString(free);
        if (freeRuns[band].isEmpty()) {
            bandMask &= ~(1L << band);
        }
        clearEdges(free);
    }

    private void clearEdges(long free) {
        int offset = Handle.runOffset(free);
        LONGS.setRelease(runMap, offset, 0L);
        LONGS.setRelease(runMap, offset + Handle.runPages(free) - 1, 0L);
    }

    // ---- purging pages of long-free runs (arena lock held; mapped memory only) ----

    /**
     * Gives back to the kernel the free pages that stayed free since the previous scan (every free
     * page when {@code all}); see {@link PurgeMap}. Returns the bytes purged. Done under the arena
     * lock, so no run being purged can be handed out meanwhile.
     */
    long purge(boolean all) {
        if (released) {
            throw new AssertionError("purge of released chunk " + this);
        }
        long[] free = new long[(chunkPages + 63) >>> 6];
        for (RunQueue queue : freeRuns) {
            for (int i = 0; i < queue.size(); i++) {
                long run = queue.get(i);
                for (int p = Handle.runOffset(run), end = p + Handle.runPages(run); p < end; p++) {
                    free[p >>> 6] |= 1L << p;
                }
            }
        }
        if (purges == null) {
            purges = new PurgeMap(chunkPages);
        }
        return purges.purge(free, all, base, pageShifts);
    }

    /** Percentage of pages in use, as the chunk lists see it: 0 only when every page is free. */
    int usage() {
        if (freePages == 0) {
            return 100;
        }
        int freePercent = (int) ((long) freePages * 100 / chunkPages);
        return freePercent == 0 ? 99 : 100 - freePercent;
    }

    boolean isEmpty() {
        return freePages == chunkPages;
    }

    // ---- units handed out and claimed back ----

    /** The subpage whose run starts at page {@code runOffset}; for threads that own one of its elements. */
    PoolSubpage subpage(int runOffset) {
        return subpages[runOffset];
    }

    /**
     * Hands the unit {@code handle} (owned by the caller) out in {@code state} (for {@code BUDGET},
     * owned by {@code owner}; else {@code owner} is null) and returns its segment of {@code byteSize}
     * bytes.
     */
    MemorySegment hand(long handle, int elementSize, long byteSize, byte state, MemoryBudget owner) {
        return segment.asSlice(handOut(handle, elementSize, state, owner), byteSize);
    }

    /**
     * Hands the block {@code handle} (owned by the caller) out to a pooled arena, in state
     * {@code ARENA}: bound to the scope of {@code scope} when it is not null (native mode), else a
     * plain slice of this chunk. Bound, it is made from its address, not from a slice of the chunk:
     * the smaller code lets a pooled arena's opening inline into its caller.
     */
    MemorySegment handArenaBlock(long handle, int elementSize, Arena scope) {
        if (scope != null) {
            long offset = handOut(handle, elementSize, UnitState.ARENA, null, true);
            return MemorySegment.ofAddress(base + offset).reinterpret(ScratchArena.BLOCK_SIZE, scope, null);
        }
        // Without native access the pool's close orphans nothing: it releases every chunk, and a slice
        // of one throws from then on. So the unit needs no fence before the arena reads the pool's state.
        return segment.asSlice(handOut(handle, elementSize, UnitState.ARENA, null, false), ScratchArena.BLOCK_SIZE);
    }

    /** Sets the state (and owner) of the unit {@code handle} as {@link #hand} says; returns its offset in the chunk. */
    long handOut(long handle, int elementSize, byte state, MemoryBudget owner) {
        return handOut(handle, elementSize, state, owner, true);
    }

    /**
     * As {@link #handOut(long, int, byte, MemoryBudget)}; {@code fenceArena}: an {@code ARENA} unit is
     * published with a volatile store ({@link UnitState#hand}), as the closing pool needs in native mode.
     */
    private long handOut(long handle, int elementSize, byte state, MemoryBudget owner, boolean fenceArena) {
        int runOffset = Handle.runOffset(handle);
        long offset = (long) runOffset << pageShifts;
        if (Handle.isSubpage(handle)) {
            int index = Handle.bitmapIndex(handle);
            offset += (long) index * elementSize;
            PoolSubpage subpage = subpages[runOffset];
            if (owner != null) {
                UnitState.setOwner(subpage.owners(), index, owner);
            }
            UnitState.hand(subpage.states, index, state, fenceArena);
        } else {
            if (owner != null) {
                UnitState.setOwner(runOwners, runOffset, owner);
            }
            UnitState.hand(runStates, runOffset, state, fenceArena);
        }
        return offset;
    }

    /** Bytes the pool reserves for the unit {@code handle}: its element size, or its run's pages. */
    long unitBytes(long handle) {
        return Handle.isSubpage(handle) ? subpages[Handle.runOffset(handle)].elementSize : runBytes(handle);
    }

    /**
     * Claims the unit in state {@code expected} that starts at {@code address} (inside this chunk) for
     * freeing and returns its handle; {@link Handle#NONE}, changing nothing, when no such unit starts
     * there ({@link #claimFailure} says why). A {@code BUDGET} unit is claimed only by its
     * {@code owner} (null for other states). The one
     * compare-and-exchange on the unit's state is the only write that decides: of two racing claims,
     * one wins. A run's handle is read again once claimed, so that a free that lost to a reallocate
     * which resized the run in place (and then finds it handed out again) frees the run as it is now.
     */
    long claim(long address, byte expected, MemoryBudget owner) {
        PoolSubpage subpage = subpageAt(address);
        return subpage != null ? claimElement(subpage, address, expected, owner) : claimRun(address, expected, owner);
    }

    /**
     * The subpage whose run holds {@code address} (inside this chunk), or null: the first step of
     * {@link #claim}, for a caller that wants the subpage's fields before the claim's atomic write.
     */
    PoolSubpage subpageAt(long address) {
        return (PoolSubpage) SUBPAGES.getAcquire(subpages, (int) ((address - base) >>> pageShifts));
    }

    /** {@link #claim} of an address at a page of no subpage: a run that starts there. */
    long claimRun(long address, byte expected, MemoryBudget owner) {
        long offset = address - base;
        int page = (int) (offset >>> pageShifts);
        long handle = (long) LONGS.getAcquire(runMap, page);
        if (!Handle.isUsed(handle) || Handle.isSubpage(handle)) { // free, or a subpage just given back
            return Handle.NONE;
        }
        if (Handle.runOffset(handle) != page || (offset & ((1L << pageShifts) - 1)) != 0
                || owner != null && UnitState.owner(runOwners, page) != owner
                || UnitState.claim(runStates, page, expected) != expected) {
            return Handle.NONE;
        }
        // The run is ours now, but the handle read above may be stale: a reallocate may have claimed it
        // in between, resized it in place and handed it out again (same page, same state, other length).
        // The hand's release of the state, read by our claim, publishes the run map entry of the run we hold.
        return (long) LONGS.getAcquire(runMap, page);
    }

    /** {@link #claim} of an address in {@code subpage} (from {@link #subpageAt}): an element that starts there. */
    long claimElement(PoolSubpage subpage, long address, byte expected, MemoryBudget owner) {
        long offset = address - base;
        int runOffset = subpage.runOffset;
        int inRun = (int) (offset - ((long) runOffset << pageShifts)); // a subpage run is at most 7 pages
        int index = subpage.indexAt(inRun);
        long runHandle = subpage.runHandle; // read before the claim's atomic write, which orders later loads after it
        if (index * subpage.elementSize != inRun || index >= subpage.maxElements
                || owner != null && UnitState.owner(subpage.ownersIfAny(), index) != owner
                || UnitState.claim(subpage.states, index, expected) != expected) {
            return Handle.NONE;
        }
        return Handle.element(runHandle, index);
    }

    /**
     * {@link #claim} of the unit {@code handle} by a holder that keeps its handle since it was handed
     * out in state {@code expected} (a pooled arena's block): no lookup by address, no checks that it
     * starts a unit. False, changing nothing, when the unit is no longer in that state (a closing pool
     * orphaned it). While the unit is held its subpage stays in place, so a plain read finds it.
     */
    boolean claimHeld(long handle, byte expected) {
        int runOffset = Handle.runOffset(handle);
        return Handle.isSubpage(handle)
                ? UnitState.claim(subpages[runOffset].states, Handle.bitmapIndex(handle), expected) == expected
                : UnitState.claim(runStates, runOffset, expected) == expected;
    }

    /**
     * Why {@link #claim} of {@code address} for {@code owner} (null: the pool's own free) failed; on the
     * error path only.
     */
    IllegalArgumentException claimFailure(long address, MemoryBudget owner) {
        long offset = address - base;
        int page = (int) (offset >>> pageShifts);
        long handle = (long) LONGS.getAcquire(runMap, page);
        if (!Handle.isUsed(handle)) {
            return Errors.notLive(arena.poolName, address, handle != 0);
        }
        byte state;
        MemoryBudget holder;
        if (Handle.isSubpage(handle)) {
            PoolSubpage subpage = (PoolSubpage) SUBPAGES.getAcquire(subpages, Handle.runOffset(handle));
            if (subpage == null) {
                return Errors.notLive(arena.poolName, address, false);
            }
            int inRun = (int) (offset - ((long) subpage.runOffset << pageShifts));
            int index = subpage.indexAt(inRun);
            if (index * subpage.elementSize != inRun || index >= subpage.maxElements) {
                return Errors.interior(arena.poolName, address, base + subpage.elementOffset(index),
                        subpage.elementSize);
            }
            state = UnitState.get(subpage.states, index);
            holder = UnitState.owner(subpage.ownersIfAny(), index);
        } else {
            if (Handle.runOffset(handle) != page || (offset & ((1L << pageShifts) - 1)) != 0) {
                return Errors.interior(arena.poolName, address,
                        base + ((long) Handle.runOffset(handle) << pageShifts),
                        (long) Handle.runPages(handle) << pageShifts);
            }
            state = UnitState.get(runStates, page);
            holder = UnitState.owner(runOwners, page);
        }
        return Errors.notFreeable(arena.poolName, address, owner, state, holder);
    }

    /** The budget that owns the live unit starting at {@code address}, or null; for reports only. */
    MemoryBudget ownerAt(long address) {
        long offset = address - base;
        int page = (int) (offset >>> pageShifts);
        long handle = (long) LONGS.getAcquire(runMap, page);
        if (!Handle.isUsed(handle)) {
            return null;
        }
        if (!Handle.isSubpage(handle)) {
            return UnitState.get(runStates, page) == UnitState.BUDGET ? UnitState.owner(runOwners, page) : null;
        }
        PoolSubpage subpage = (PoolSubpage) SUBPAGES.getAcquire(subpages, Handle.runOffset(handle));
        int index = subpage == null ? -1 : subpage.indexAt(offset - ((long) subpage.runOffset << pageShifts));
        return index < 0 || index >= subpage.maxElements || UnitState.get(subpage.states, index) != UnitState.BUDGET
                ? null : UnitState.owner(subpage.ownersIfAny(), index);
    }

    /**
     * At the pool's close: moves every unit of an open pooled arena from {@code ARENA} to
     * {@code ORPHANED} and returns how many it moved. A chunk with orphans is kept mapped until the
     * last of them comes back ({@link #hasOrphans}), because their segments are bound to the scope of
     * an arena that only its owner can close.
     */
    int orphanArenaUnits() {
        int orphans = 0;
        for (int p = 0; p < chunkPages; p++) {
            long handle = (long) LONGS.getVolatile(runMap, p);
            if (!Handle.isUsed(handle) || Handle.runOffset(handle) != p) {
                continue;
            }
            if (Handle.isSubpage(handle)) {
                PoolSubpage subpage = (PoolSubpage) SUBPAGES.getVolatile(subpages, p);
                for (int i = 0; subpage != null && i < subpage.maxElements; i++) {
                    orphans += UnitState.orphan(subpage.states, i);
                }
            } else {
                orphans += UnitState.orphan(runStates, p);
            }
        }
        return orphans;
    }

    /** Whether a unit is still {@code ORPHANED}; read after the pool is closed. */
    boolean hasOrphans() {
        for (int p = 0; p < chunkPages; p++) {
            if (UnitState.getVolatile(runStates, p) == UnitState.ORPHANED) {
                return true;
            }
            PoolSubpage subpage = (PoolSubpage) SUBPAGES.getVolatile(subpages, p);
            if (subpage != null && subpage.runOffset == p) { // each subpage once, at its first page
                for (int i = 0; i < subpage.maxElements; i++) {
                    if (UnitState.getVolatile(subpage.states, i) == UnitState.ORPHANED) {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    /** The normal class of the run {@code handle} (not a subpage's); 0 for {@link Handle#NONE}. */
    int runSizeIndex(long handle) {
        return sizeClasses.runSizeIndex(Handle.runPages(handle));
    }

    /** The bytes of the run {@code handle} (not a subpage's); 0 for {@link Handle#NONE}. */
    long runBytes(long handle) {
        return (long) Handle.runPages(handle) << pageShifts;
    }

    /** Size class of the run or element {@code handle}, which the caller owns. */
    int sizeIndex(long handle) {
        return Handle.isSubpage(handle) ? subpages[Handle.runOffset(handle)].sizeIndex : runSizeIndex(handle);
    }

    // ---- inspection (arena lock held) ----

    /** Bytes in free runs. */
    long freeRunBytes() {
        return (long) freePages << pageShifts;
    }

    /** Counts the pages of all queued free runs, independently of {@link #freePages}. */
    int queuedFreePages() {
        int pages = 0;
        for (RunQueue queue : freeRuns) {
            for (int i = 0; i < queue.size(); i++) {
                pages += Handle.runPages(queue.get(i));
            }
        }
        return pages;
    }

    /**
     * Adds this chunk's units to {@code counts} (see {@link PoolArena#countUnits}): those in state LIVE
     * or BUDGET at 0 and 1 (count, bytes), ARENA at 2 and 3; with {@code only}, just the units that
     * budget owns, at 0 and 1.
     */
    void countUnits(long[] counts, MemoryBudget only) {
        for (int p = 0; p < chunkPages; p++) {
            long handle = runMap[p];
            if (handle == 0 || !Handle.isUsed(handle) || Handle.runOffset(handle) != p) {
                continue;
            }
            if (Handle.isSubpage(handle)) {
                PoolSubpage subpage = subpages[p];
                MemoryBudget[] owners = subpage.ownersIfAny();
                for (int i = 0; i < subpage.maxElements; i++) {
                    count(counts, UnitState.get(subpage.states, i), UnitState.owner(owners, i), only,
                            subpage.elementSize);
                }
            } else {
                count(counts, UnitState.get(runStates, p), UnitState.owner(runOwners, p), only,
                        (long) Handle.runPages(handle) << pageShifts);
            }
        }
    }

    private static void count(long[] counts, byte state, MemoryBudget owner, MemoryBudget only, long bytes) {
        int at = only != null ? (state == UnitState.BUDGET && owner == only ? 0 : -1)
                : state == UnitState.LIVE || state == UnitState.BUDGET ? 0 : state == UnitState.ARENA ? 2 : -1;
        if (at >= 0) {
            counts[at]++;
            counts[at + 1] += bytes;
        }
    }

    /** Calls {@code visitor} for every live subpage of this chunk. */
    void forEachSubpage(java.util.function.Consumer<PoolSubpage> visitor) {
        for (int p = 0; p < chunkPages; p++) {
            PoolSubpage subpage = subpages[p];
            if (subpage != null && subpage.runOffset == p) {
                visitor.accept(subpage);
            }
        }
    }

    /**
     * One character per page: '.' free, '#' a used run, 's' a subpage; for {@code dumpStats()}.
     */
    String occupancyMap() {
        StringBuilder map = new StringBuilder(chunkPages);
        for (int p = 0; p < chunkPages; p++) {
            map.append('#');
        }
        for (RunQueue queue : freeRuns) {
            for (int i = 0; i < queue.size(); i++) {
                long free = queue.get(i);
                for (int p = Handle.runOffset(free); p < Handle.runOffset(free) + Handle.runPages(free); p++) {
                    map.setCharAt(p, '.');
                }
            }
        }
        forEachSubpage(s -> {
            for (int p = s.runOffset; p < s.runOffset + s.runPages; p++) {
                map.setCharAt(p, 's');
            }
        });
        return map.toString();
    }

    @Override
    public String toString() {
        return "PoolChunk[0x" + Long.toHexString(base) + ", usage=" + usage() + "%]";
    }
}
