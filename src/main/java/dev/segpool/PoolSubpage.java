package dev.segpool;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A run of pages cut into equal elements of one small size class, with a bitmap of the elements
 * handed out (to users or to thread caches).
 *
 * <p>Protocol: the bitmap, {@link #available} and the list links are guarded by the lock of the
 * {@link SubpageList} of this subpage's size class in its arena. The fields that {@link SegmentPool#free}
 * reads without a lock are final ({@link #elementSize}, {@link #states}, ...); the subpage itself is
 * published to those readers through {@link PoolChunk}'s subpage table with release/acquire.
 */
final class PoolSubpage {
    private static final VarHandle OWNERS;

    static {
        try {
            OWNERS = MethodHandles.lookup().findVarHandle(PoolSubpage.class, "owners", MemoryBudget[].class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final PoolChunk chunk;
    final int sizeIndex;
    final int elementSize;
    final int runOffset;
    final int runPages;
    /** The run handle (subpage bit set, no element selected). */
    final long runHandle;
    final int maxElements;
    /** One {@link UnitState} per element. */
    final byte[] states;
    /** {@code ceil(2^64 / elementSize)}: turns the division in {@link #indexAt} into a multiplication. */
    private final long reciprocal;

    /**
     * The budget that owns each {@link UnitState#BUDGET} element; made by the first budget that takes
     * an element of this subpage (most subpages never serve one), then never replaced.
     */
    private volatile MemoryBudget[] owners;

    private final long[] bitmap;
    /** No word below this one has a clear bit. */
    private int searchFrom;
    int available;

    PoolSubpage prev;
    PoolSubpage next;
    boolean listed;
    /** When the subpage last became empty (no element handed out). */
    long emptySinceNanos;

    PoolSubpage(PoolChunk chunk, int sizeIndex, int elementSize, long runHandle, int maxElements) {
        this.chunk = chunk;
        this.sizeIndex = sizeIndex;
        this.elementSize = elementSize;
        this.runHandle = runHandle;
        this.runOffset = Handle.runOffset(runHandle);
        this.runPages = Handle.runPages(runHandle);
        this.maxElements = maxElements;
        this.states = new byte[maxElements];
        this.reciprocal = Long.divideUnsigned(-1L, elementSize) + 1;
        this.bitmap = new long[(maxElements + Long.SIZE - 1) >>> 6];
        int tail = maxElements & (Long.SIZE - 1);
        if (tail != 0) {
            bitmap[bitmap.length - 1] = -1L << tail; // bits past the last element are never free
        }
        this.available = maxElements;
    }

    /** Takes the lowest free element; returns its handle, or {@link Handle#NONE} when full. */
    long allocate() {
        final long[] bitmap = this.bitmap;
        for (int w = searchFrom; w < bitmap.length; w++) {
            long word = bitmap[w];
            if (word != -1L) {
                int bit = Long.numberOfTrailingZeros(~word);
                bitmap[w] = word | 1L << bit;
                searchFrom = w;
                available--;
                return Handle.element(runHandle, w << 6 | bit);
            }
        }
        return Handle.NONE;
    }

    /** Returns element {@code index}, which must be handed out. */
    void free(int index) {
        int w = index >>> 6;
        assert isAllocated(index) : index;
        bitmap[w] &= ~(1L << index);
        if (w < searchFrom) {
            searchFrom = w;
        }
        available++;
    }

    /**
     * {@code inRun / elementSize} for a byte offset inside this subpage's run, without a division: the
     * high half of {@code inRun * ceil(2^64 / elementSize)}, exact while {@code inRun * elementSize <
     * 2^64} (a run is at most 7 pages of at most 1 MiB).
     */
    int indexAt(long inRun) {
        return (int) Math.unsignedMultiplyHigh(inRun, reciprocal);
    }

    /** The owners array, made on first use by whichever thread gets there first. */
    MemoryBudget[] owners() {
        MemoryBudget[] o = owners;
        if (o == null) {
            MemoryBudget[] made = new MemoryBudget[maxElements];
            o = (MemoryBudget[]) OWNERS.compareAndExchange(this, null, made);
            if (o == null) {
                o = made;
            }
        }
        return o;
    }

    /** The owners array, or null when no budget ever took an element of this subpage. */
    MemoryBudget[] ownersIfAny() {
        return owners;
    }

    boolean isAllocated(int index) {
        return (bitmap[index >>> 6] & 1L << index) != 0;
    }

    boolean isEmpty() {
        return available == maxElements;
    }

    /** Byte offset of element {@code index} inside the chunk. */
    long elementOffset(int index) {
        return ((long) runOffset << chunk.pageShifts) + (long) index * elementSize;
    }

    @Override
    public String toString() {
        return "PoolSubpage[size=" + elementSize + ", offset=" + runOffset + ", pages=" + runPages
                + ", used=" + (maxElements - available) + "/" + maxElements + "]";
    }
}
