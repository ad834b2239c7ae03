package dev.segpool;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * {@code reallocate} for a {@link PoolCore}: claims the old unit as {@code free} does, keeps it where it
 * has room (its small class, a run that can shrink or grow into the free pages after it, a huge
 * allocation that stays huge and half used), else moves it. Every failure puts the old unit back as it
 * was. Thread-safe as the pool's allocate and free are; holds no state of its own.
 */
final class Reallocation {
    private final PoolCore core;

    Reallocation(PoolCore core) {
        this.core = core;
    }

    /**
     * {@link SegmentPool#reallocate} ({@code owner} null) and {@link MemoryBudget#reallocate}: claims the
     * old unit (as {@code free} would, so of a reallocate and a free racing on one segment one wins),
     * then keeps it where it has room or where its run can grow into the free pages that follow, else
     * moves. Every failure puts the old unit back as it was: the caller's segment stays valid.
     */
    MemorySegment reallocate(MemorySegment segment, long newByteSize, long byteAlignment, MemoryBudget owner) {
        Objects.requireNonNull(segment, "segment");
        PoolCore.checkRequest(newByteSize, byteAlignment);
        core.frees.checkFreeable(segment);
        long address = segment.address();
        byte state = owner == null ? UnitState.LIVE : UnitState.BUDGET;
        PoolChunk chunk = core.registry.find(address);
        if (chunk == null) {
            return reallocateHuge(segment, newByteSize, byteAlignment, state, owner);
        }
        long handle = chunk.claim(address, state, owner);
        if (handle == Handle.NONE) {
            throw chunk.claimFailure(address, owner);
        }
        try {
            return resized(chunk, handle, segment, newByteSize, byteAlignment, state, owner);
        } catch (RuntimeException | Error e) {
            chunk.hand(handle, elementSize(chunk, handle), 0, state, owner); // the old unit, live again
            throw e;
        }
    }

    /** The element size of {@code handle} for {@link PoolChunk#hand} (0 for a run). */
    private static int elementSize(PoolChunk chunk, long handle) {
        return Handle.isSubpage(handle) ? (int) chunk.unitBytes(handle) : 0;
    }

    /**
     * The claimed unit {@code handle}, reallocated: in place when the request maps to its small class,
     * or when it is a run and the request is a run too (shrunk, or grown into free pages that follow);
     * else moved. Throws before changing anything.
     */
    private MemorySegment resized(PoolChunk chunk, long handle, MemorySegment old, long newByteSize,
                                  long byteAlignment, byte state, MemoryBudget owner) {
        long address = old.address();
        boolean aligned = (address & (byteAlignment - 1)) == 0;
        long oldBytes = chunk.unitBytes(handle);
        long newBytes = core.unitSize(newByteSize, byteAlignment);
        if (aligned && Handle.isSubpage(handle)) {
            if (newBytes == oldBytes) { // the same small class: only small units are this size
                return chunk.hand(handle, (int) oldBytes, newByteSize, state, owner);
            }
        } else if (aligned && isRun(newBytes)) {
            long delta = newBytes - oldBytes;
            if (owner != null && delta > 0) {
                owner.charge(delta);
            }
            long run = delta == 0 ? handle
                    : chunk.arena.resizeRun(chunk, handle, (int) (newBytes >>> core.sizeClasses.pageShifts));
            if (run != Handle.NONE) {
                if (owner != null && delta < 0) {
                    owner.discharge(-delta);
                } else if (owner != null && delta > 0) {
                    owner.raisePeaks();
                }
                return chunk.hand(run, 0, newByteSize, state, owner);
            }
            if (owner != null && delta > 0) {
                owner.discharge(delta);
            }
        }
        MemorySegment moved = move(old, oldBytes, newByteSize, byteAlignment, owner, newBytes - oldBytes);
        core.frees.giveBack(chunk, handle);
        if (core.trackLeaks) {
            core.leaks.freed(address);
        }
        return moved;
    }

    /** Whether a unit of {@code unitBytes} (from {@link PoolCore#unitSize}) is a run of pages. */
    private boolean isRun(long unitBytes) {
        return unitBytes > core.sizeClasses.size(core.sizeClasses.smallClasses - 1) && unitBytes <= core.chunkSize
                && (unitBytes & (core.sizeClasses.pageSize - 1)) == 0;
    }

    /**
     * A new allocation holding the first bytes of {@code old} (whose unit has {@code oldUnitBytes}),
     * charged the difference {@code delta} to {@code owner}; the caller gives the old unit back. Throws,
     * charging nothing, when it cannot.
     */
    private MemorySegment move(MemorySegment old, long oldUnitBytes, long newByteSize, long byteAlignment,
                               MemoryBudget owner, long delta) {
        if (owner != null && delta > 0) {
            owner.charge(delta);
        }
        MemorySegment moved;
        try {
            moved = owner == null ? core.allocate(newByteSize, byteAlignment)
                    : core.allocateOwned(newByteSize, byteAlignment, owner);
        } catch (RuntimeException | Error e) {
            if (owner != null && delta > 0) {
                owner.discharge(delta);
            }
            throw e;
        }
        // never past the old unit, even for a segment re-sized by reinterpret
        MemorySegment.copy(old, 0, moved, 0, Math.min(Math.min(old.byteSize(), oldUnitBytes), newByteSize));
        if (owner != null && delta < 0) {
            owner.discharge(-delta);
        } else if (owner != null && delta > 0) {
            owner.raisePeaks();
        }
        return moved;
    }

    /** {@link #reallocate} of an address in no chunk: a huge allocation, kept when it has room, else moved. */
    private MemorySegment reallocateHuge(MemorySegment old, long newByteSize, long byteAlignment, byte state,
                                         MemoryBudget owner) {
        long address = old.address();
        NativeMemory.Huge huge = core.memory.claimHuge(address, state, owner);
        if (huge == null) {
            throw core.lifecycle.isOpen() ? core.memory.notHuge(address) : Errors.closed(core.name);
        }
        try {
            if ((address & (byteAlignment - 1)) == 0 && newByteSize > core.chunkSize
                    && newByteSize <= huge.unitBytes() && newByteSize >= huge.unitBytes() / 2) {
                core.memory.restoreHuge(huge); // still huge, fits and uses at least half: stays, reserving what it did
                return huge.segment().asSlice(0, newByteSize);
            }
            MemorySegment moved = move(old, huge.unitBytes(), newByteSize, byteAlignment, owner,
                    core.unitSize(newByteSize, byteAlignment) - huge.unitBytes());
            core.memory.releaseHuge(huge);
            if (core.trackLeaks) {
                core.leaks.freed(address);
            }
            return moved;
        } catch (RuntimeException | Error e) {
            core.memory.restoreHuge(huge);
            throw e;
        }
    }
}
