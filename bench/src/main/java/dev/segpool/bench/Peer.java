package dev.segpool.bench;

import java.time.Duration;
import java.util.List;
import java.util.Locale;

/**
 * One allocator under test, behind the few operations the benchmarks and the workload runner need.
 * Each implementation keeps its buffers in its own typed form (a {@code MemorySegment}, a Netty
 * {@code ByteBuf}, a raw address), so that no peer pays for another's wrapper.
 *
 * <p>Names, as used by {@code @Param} and by the workload runner:
 * <ul>
 *   <li>{@code segpool}: {@code SegmentPool.create()}, thread-cache path;</li>
 *   <li>{@code segpool-arena}: {@code SegmentPool.builder().threadLocalCaches(false)}, every call goes to
 *       an arena;</li>
 *   <li>{@code segpool-decay}: {@code SegmentPool.builder().decay(Duration.ofMillis(500))}: the default
 *       pool, giving free memory back after half a second (workload runner only);</li>
 *   <li>{@code segpool-trim}: {@code SegmentPool.create()}, and each workload worker calls
 *       {@code trimCurrentThreadCache()} once it has freed everything (workload runner only);</li>
 *   <li>{@code segpool-scoped}: {@code SegmentPool.create()}, with each {@link #runTask task} run inside
 *       {@code pool.runWithThreadCache(...)}: the scoped cache virtual threads can use (virtual-thread
 *       benchmark only; outside a task it is {@code segpool});</li>
 *   <li>{@code segpool-mixed}: {@code SegmentPool.create()} on which one task ran inside
 *       {@code runWithThreadCache} first, then every call is a plain one: the pool of an application
 *       that uses both (pair benchmark);</li>
 *   <li>{@code segpool-budget}: {@code SegmentPool.create()}, every allocation through a top-level
 *       {@code MemoryBudget} whose limit never binds (budget benchmarks only);</li>
 *   <li>{@code segpool-budget2}: the same through a child of that budget: two levels charged (budget
 *       benchmark only);</li>
 *   <li>{@code netty-pooled}: Netty 4.2 {@code PooledByteBufAllocator}, direct buffers, thread caches for
 *       all threads ({@code useCacheForAllThreads = true});</li>
 *   <li>{@code netty-adaptive}: Netty 4.2 {@code AdaptiveByteBufAllocator}, direct buffers, caches for
 *       non-event-loop threads on;</li>
 *   <li>{@code jdk-arena}: one {@code Arena.ofConfined()} per allocation, closed to free it (a shared
 *       arena where another thread frees);</li>
 *   <li>{@code malloc}: libc {@code malloc}/{@code free} through FFM downcalls, raw addresses only;</li>
 *   <li>{@code malloc-segment}: the same, but each buffer is what an FFM user would hold: the malloc'd
 *       address as a {@code MemorySegment} of the requested size ({@code ofAddress(a).reinterpret(size)}),
 *       freed by its address.</li>
 * </ul>
 * Netty's leak detector is switched off (as Netty's own benchmarks do), which is Netty's best case.
 */
public abstract class Peer implements AutoCloseable {
    /** Every name {@link #of} knows. */
    public static final List<String> NAMES = List.of("segpool", "segpool-arena", "segpool-decay", "segpool-trim",
            "segpool-scoped", "segpool-mixed", "segpool-budget", "segpool-budget2", "netty-pooled", "netty-adaptive", "jdk-arena",
            "malloc", "malloc-segment");

    public static Peer of(String name) {
        return switch (name) {
            case "segpool" -> new SegpoolPeer(true);
            case "segpool-arena" -> new SegpoolPeer(false);
            case "segpool-decay" -> new SegpoolPeer(Duration.ofMillis(500));
            case "segpool-trim" -> SegpoolPeer.trimmedAfterDrain();
            case "segpool-scoped" -> SegpoolPeer.scoped();
            case "segpool-mixed" -> SegpoolPeer.mixed();
            case "segpool-budget" -> new BudgetPeer(1);
            case "segpool-budget2" -> new BudgetPeer(2);
            case "netty-pooled" -> NettyPeer.pooled();
            case "netty-adaptive" -> NettyPeer.adaptive();
            case "jdk-arena" -> new JdkArenaPeer();
            case "malloc" -> new MallocPeer();
            case "malloc-segment" -> new MallocSegmentPeer();
            default -> throw new IllegalArgumentException("unknown peer '" + name + "', one of " + NAMES);
        };
    }

    /** Allocates {@code byteSize} bytes and frees them at once; returns the address. */
    public abstract long pair(int byteSize);

    /**
     * Allocates {@code byteSize} bytes, writes one byte into every 4 KiB page of them (as
     * {@link Slots#touch} does), and frees them; returns the address.
     */
    public abstract long touchedPair(int byteSize);

    /**
     * Allocates {@code fromSize} bytes and grows the buffer by doubling up to {@code toSize} through the
     * allocator's own way of resizing (segpool's {@code reallocate}, libc {@code realloc}, Netty's
     * {@code ByteBuf.capacity(int)}), writing one byte at the new end after the allocation and after
     * each step; then frees it and returns its last address. Peers without a way to resize throw
     * {@link UnsupportedOperationException}.
     */
    public long grow(int fromSize, int toSize) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot resize a buffer");
    }

    /**
     * Runs one task of a thread that is not the allocator's own (a virtual thread's body): just runs it,
     * unless the peer binds something to the thread for the task's duration.
     */
    public void runTask(Runnable task) {
        task.run();
    }

    /** A table of {@code count} slots holding live buffers of this peer, all empty at first. */
    public abstract Slots slots(int count);

    /** Allocates a buffer that any thread may {@link #free}. */
    public abstract Object allocateShared(int byteSize);

    /** Frees a buffer from {@link #allocateShared}, on any thread. */
    public abstract void free(Object buffer);

    /** Native bytes the allocator holds, as it reports them; -1 when it keeps no such count. */
    public abstract long reservedBytes();

    /**
     * Where the reserved bytes are, for allocators that can tell; {@link Breakdown#NONE} otherwise.
     */
    public Breakdown breakdown() {
        return Breakdown.NONE;
    }

    /**
     * Called by each worker thread of the workload once it has freed everything, before it goes idle
     * (the thread stays alive); nothing by default.
     */
    public void afterDrain() {}

    /** Releases what the allocator holds, where it can be told to (thread caches, empty chunks). */
    public void trim() {}

    @Override
    public abstract void close();

    /**
     * Reserved bytes split by where they are. Each part is -1 where the allocator cannot tell it apart:
     * Netty's pooled allocator counts its thread caches with the bytes in use.
     *
     * @param reserved     native bytes held
     * @param active       handed out and not freed (at size-class size)
     * @param cached       parked in thread caches
     * @param freeInChunks free inside the allocator's chunks
     */
    public record Breakdown(long reserved, long active, long cached, long freeInChunks) {
        public static final Breakdown NONE = new Breakdown(-1, -1, -1, -1);

        public boolean known() {
            return reserved >= 0;
        }

        /** As the runner prints it, in MiB. */
        @Override
        public String toString() {
            if (!known()) {
                return "";
            }
            String inUse = cached >= 0
                    ? String.format(Locale.ROOT, "active %.1f + cached %.1f", Workload.mib(active), Workload.mib(cached))
                    : String.format(Locale.ROOT, "active and cached %.1f", Workload.mib(active));
            return String.format(Locale.ROOT, "reserved %.1f MiB = %s + free in chunks %.1f", Workload.mib(reserved),
                    inUse, Workload.mib(freeInChunks));
        }
    }

    /**
     * Live buffers by slot, for one thread. {@link #allocate} needs an empty slot, {@link #free} a
     * full one; the caller keeps track.
     */
    public interface Slots {
        /** Allocates into an empty slot; returns the address. */
        long allocate(int slot, int byteSize);

        /** Frees the buffer in a full slot. */
        void free(int slot);

        /** Writes one byte into every 4 KiB page of the slot's buffer, as a user filling it would. */
        void touch(int slot, int byteSize);

        /** Frees what is still live. */
        void clear();
    }
}
