package dev.segpool.bench;

import dev.segpool.PoolMetrics;
import dev.segpool.SegmentPool;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.Locale;

/**
 * segpool on its thread-cache path, or with thread caches off (every call goes to an arena); optionally
 * with its MXBean registered, or running each {@link #runTask task} under a scoped thread cache.
 */
final class SegpoolPeer extends Peer {
    private final SegmentPool pool;
    /** Whether {@link #runTask} binds a scoped cache ({@code runWithThreadCache}) for the task. */
    private final boolean scopedTasks;

    SegpoolPeer(boolean threadLocalCaches) {
        this(SegmentPool.builder().threadLocalCaches(threadLocalCaches), false);
    }

    /** The default pool but for its decay time: how long free memory is kept before it goes back. */
    SegpoolPeer(Duration decay) {
        this(SegmentPool.builder().decay(decay), false);
    }

    /**
     * As {@link #SegpoolPeer(boolean)}, named {@code name}, with its MXBean registered ({@code jmx(true)})
     * as {@code dev.segpool:type=SegmentPool,name=<name>}.
     */
    SegpoolPeer(boolean threadLocalCaches, String name) {
        this(SegmentPool.builder().threadLocalCaches(threadLocalCaches).name(name).jmx(true), false);
    }

    private SegpoolPeer(SegmentPool.Builder builder, boolean scopedTasks) {
        this.pool = builder.build();
        this.scopedTasks = scopedTasks;
    }

    /** The default pool; each task runs inside {@code pool.runWithThreadCache(...)}. */
    static SegpoolPeer scoped() {
        return new SegpoolPeer(SegmentPool.builder(), true);
    }

    SegmentPool pool() {
        return pool;
    }

    @Override
    public long pair(int byteSize) {
        MemorySegment segment = pool.allocate(byteSize);
        pool.free(segment);
        return segment.address();
    }

    @Override
    public long touchedPair(int byteSize) {
        MemorySegment segment = pool.allocate(byteSize);
        SegmentSlots.touch(segment, byteSize);
        pool.free(segment);
        return segment.address();
    }

    @Override
    public void runTask(Runnable task) {
        if (scopedTasks) {
            pool.runWithThreadCache(task);
        } else {
            task.run();
        }
    }

    @Override
    public Slots slots(int count) {
        return new SegmentSlots(count, pool::allocate, pool::free);
    }

    @Override
    public Object allocateShared(int byteSize) {
        return pool.allocate(byteSize);
    }

    @Override
    public void free(Object buffer) {
        pool.free((MemorySegment) buffer);
    }

    @Override
    public long reservedBytes() {
        return pool.metrics().reservedBytes();
    }

    /** Reserved bytes split into handed out (at size-class size), parked in thread caches, and free in chunks. */
    @Override
    public String breakdown() {
        PoolMetrics m = pool.metrics();
        return String.format(Locale.ROOT, "reserved %.1f MiB = active %.1f + cached %.1f + free in chunks %.1f",
                Workload.mib(m.reservedBytes()), Workload.mib(m.activeBytes()), Workload.mib(m.cachedBytes()),
                Workload.mib(m.freeBytes()));
    }

    @Override
    public void trim() {
        pool.trim();
    }

    @Override
    public void close() {
        pool.close();
    }
}
