package dev.segpool.bench;

import dev.segpool.MemoryBudget;
import dev.segpool.PoolMetrics;
import dev.segpool.SegmentPool;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * segpool's default pool ({@code SegmentPool.create()}, thread-cache path), every allocation going
 * through a {@link MemoryBudget} whose limit never binds ({@link #LIMIT}): one level
 * ({@code pool.newBudget}), or two ({@code pool.newBudget(...).newBudget(...)}, allocations through the
 * child, charged to both). What a budget adds to the pool's own path.
 */
final class BudgetPeer extends Peer {
    /** A limit no benchmark comes near: 1 TiB. */
    static final long LIMIT = 1L << 40;

    private final SegmentPool pool;
    /** The top-level budget. */
    private final MemoryBudget top;
    /** The budget allocations go through: {@link #top}, or its child. */
    private final MemoryBudget budget;

    /** With {@code levels} budgets in a chain (1 or 2), allocating through the lowest. */
    BudgetPeer(int levels) {
        if (levels != 1 && levels != 2) {
            throw new IllegalArgumentException("levels must be 1 or 2, not " + levels);
        }
        this.pool = SegmentPool.create();
        this.top = pool.newBudget("bench", LIMIT);
        this.budget = levels == 1 ? top : top.newBudget("bench-child", LIMIT);
    }

    @Override
    public long pair(int byteSize) {
        MemorySegment segment = budget.allocate(byteSize);
        budget.free(segment);
        return segment.address();
    }

    @Override
    public long touchedPair(int byteSize) {
        MemorySegment segment = budget.allocate(byteSize);
        SegmentSlots.touch(segment, byteSize);
        budget.free(segment);
        return segment.address();
    }

    @Override
    public long grow(int fromSize, int toSize) {
        MemorySegment segment = budget.allocate(fromSize);
        segment.set(ValueLayout.JAVA_BYTE, fromSize - 1, (byte) 1);
        for (long size = 2L * fromSize; size <= toSize; size *= 2) {
            segment = budget.reallocate(segment, size);
            segment.set(ValueLayout.JAVA_BYTE, size - 1, (byte) 1);
        }
        budget.free(segment);
        return segment.address();
    }

    @Override
    public Slots slots(int count) {
        return new SegmentSlots(count, budget::allocate, budget::free);
    }

    @Override
    public Object allocateShared(int byteSize) {
        return budget.allocate(byteSize);
    }

    @Override
    public void free(Object buffer) {
        budget.free((MemorySegment) buffer);
    }

    @Override
    public long reservedBytes() {
        return pool.reservedBytes();
    }

    @Override
    public Breakdown breakdown() {
        PoolMetrics m = pool.metrics();
        return new Breakdown(m.reservedBytes(), m.activeBytes(), m.cachedBytes(), m.freeBytes());
    }

    @Override
    public void trim() {
        pool.trim();
    }

    /** Closes the budgets (they must hold nothing: the benchmark freed everything), then the pool. */
    @Override
    public void close() {
        try {
            if (budget != top) {
                budget.close();
            }
            top.close();
        } finally {
            pool.close();
        }
    }
}
