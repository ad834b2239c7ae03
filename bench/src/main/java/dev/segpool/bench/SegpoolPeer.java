package dev.segpool.bench;

import dev.segpool.PoolMetrics;
import dev.segpool.SegmentPool;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;

/**
 * segpool on its thread-cache path, or with thread caches off (every call goes to an arena); optionally
 * with its MXBean registered, or running each {@link #runTask task} under a scoped thread cache.
 */
final class SegpoolPeer extends Peer {
    /** The decay of a pool built with default settings, as {@code SegmentPool.Builder.decay} documents it. */
    static final Duration DEFAULT_DECAY = Duration.ofSeconds(1);

    private final SegmentPool pool;
    /** Whether {@link #runTask} binds a scoped cache ({@code runWithThreadCache}) for the task. */
    private final boolean scopedTasks;
    /** Whether {@link #afterDrain} gives the calling thread's cache back ({@code trimCurrentThreadCache}). */
    private boolean trimAfterDrain;

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

    /**
     * The default pool, on which one task has run through {@code runWithThreadCache} before anything
     * else: a pool that serves scoped tasks and plain calls alike, so that a plain call first asks the
     * thread whether it holds a scoped binding.
     */
    static SegpoolPeer mixed() {
        SegpoolPeer peer = new SegpoolPeer(SegmentPool.builder(), false);
        peer.pool.runWithThreadCache(() -> peer.pool.free(peer.pool.allocate(64)));
        return peer;
    }

    /** The default pool; each workload worker gives its thread cache back once it has freed everything. */
    static SegpoolPeer trimmedAfterDrain() {
        SegpoolPeer peer = new SegpoolPeer(SegmentPool.builder(), false);
        peer.trimAfterDrain = true;
        return peer;
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
    public long grow(int fromSize, int toSize) {
        MemorySegment segment = pool.allocate(fromSize);
        segment.set(ValueLayout.JAVA_BYTE, fromSize - 1, (byte) 1);
        for (long size = 2L * fromSize; size <= toSize; size *= 2) {
            segment = pool.reallocate(segment, size);
            segment.set(ValueLayout.JAVA_BYTE, size - 1, (byte) 1);
        }
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
        return pool.reservedBytes();
    }

    /** Reserved bytes split into handed out (at size-class size), parked in thread caches, and free in chunks. */
    @Override
    public Breakdown breakdown() {
        PoolMetrics m = pool.metrics();
        return new Breakdown(m.reservedBytes(), m.activeBytes(), m.cachedBytes(), m.freeBytes());
    }

    @Override
    public void afterDrain() {
        if (trimAfterDrain) {
            pool.trimCurrentThreadCache();
        }
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
