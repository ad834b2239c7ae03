package dev.segpool;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The subpages of one small size class in one arena that still have free elements, and the lock
 * that guards them. Each size class has its own lock, so threads allocating different small sizes
 * from one arena do not meet.
 *
 * <p>Protocol: every field, and the bitmaps and links of the listed subpages, are guarded by
 * {@link #lock}. Lock order: a size-class lock may be held while taking the arena lock (to cut a new
 * subpage's run or give one back), never the other way round. {@link #usedElements} is also read
 * without the lock (opaque), for cheap metrics.
 */
final class SubpageList {
    private static final VarHandle USED;

    static {
        try {
            USED = MethodHandles.lookup().findVarHandle(SubpageList.class, "usedElements", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final ReentrantLock lock = new ReentrantLock();
    final int sizeIndex;
    final int elementSize;
    private PoolSubpage first;
    /** Subpages of this class in the arena, listed or full. */
    int subpages;
    /** Elements handed out (to users or thread caches). */
    long usedElements;
    long allocations;
    long deallocations;

    SubpageList(int sizeIndex, int elementSize) {
        this.sizeIndex = sizeIndex;
        this.elementSize = elementSize;
    }

    /** Adds {@code delta} to the elements handed out; lock held. */
    void addUsed(long delta) {
        USED.setOpaque(this, usedElements + delta);
    }

    /** Elements handed out, read without the lock. */
    long usedElements() {
        return (long) USED.getOpaque(this);
    }

    PoolSubpage first() {
        return first;
    }

    void add(PoolSubpage subpage) {
        assert !subpage.listed;
        subpage.prev = null;
        subpage.next = first;
        if (first != null) {
            first.prev = subpage;
        }
        first = subpage;
        subpage.listed = true;
    }

    void remove(PoolSubpage subpage) {
        assert subpage.listed;
        if (subpage.prev != null) {
            subpage.prev.next = subpage.next;
        } else {
            first = subpage.next;
        }
        if (subpage.next != null) {
            subpage.next.prev = subpage.prev;
        }
        subpage.prev = subpage.next = null;
        subpage.listed = false;
    }

    /** True when {@code subpage} is the only listed subpage of its class. */
    boolean isOnly(PoolSubpage subpage) {
        return first == subpage && subpage.next == null;
    }
}
