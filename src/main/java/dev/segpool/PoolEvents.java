package dev.segpool;

import java.util.Collections;
import java.util.Set;
import java.util.WeakHashMap;
import jdk.jfr.Category;
import jdk.jfr.DataAmount;
import jdk.jfr.Description;
import jdk.jfr.Event;
import jdk.jfr.FlightRecorder;
import jdk.jfr.FlightRecorderListener;
import jdk.jfr.Label;
import jdk.jfr.MemoryAddress;
import jdk.jfr.Name;
import jdk.jfr.Period;
import jdk.jfr.StackTrace;
import jdk.jfr.Throttle;

/**
 * segpool's JFR events, and the one place that emits them. Each event carries the pool's name. None
 * is emitted on the allocate/free fast path.
 *
 * <p>Nothing of JFR is touched until the JVM's flight recorder exists: loading an event class or
 * registering a periodic event starts JFR's Java side, which took 150-240 ms of the first
 * {@code SegmentPool.create()} in a JVM that records nothing. A {@link FlightRecorderListener} (cheap to
 * add) registers the periodic events and opens the gate ({@link #recorderReady}) once the recorder is
 * created, which happens before any recording of it starts; with {@code -XX:StartFlightRecording} it
 * exists already, and the listener runs at once. Each emitter checks the gate, then creates its
 * event only to ask JFR whether it is recorded.
 */
final class PoolEvents {
    private PoolEvents() {}

    /** Set once the JVM's flight recorder exists and the periodic events are registered; never cleared. */
    private static volatile boolean recorderReady;

    @Name("dev.segpool.ChunkAllocated")
    @Label("Chunk Allocated")
    @Category("segpool")
    @Description("A pool took a new chunk of native memory for one of its arenas")
    @StackTrace(false)
    static final class ChunkAllocated extends Event {
        @Label("Pool") String pool;
        @Label("Arena") int arena;
        @Label("Address") @MemoryAddress long address;
        @Label("Size") @DataAmount long size;
        @Label("Reserved After") @DataAmount long reservedBytes;
    }

    @Name("dev.segpool.ChunkReleased")
    @Label("Chunk Released")
    @Category("segpool")
    @Description("A pool gave a chunk of native memory back to the operating system")
    @StackTrace(false)
    static final class ChunkReleased extends Event {
        @Label("Pool") String pool;
        @Label("Arena") int arena;
        @Label("Address") @MemoryAddress long address;
        @Label("Size") @DataAmount long size;
        @Label("Reason") String reason;
        @Label("Reserved After") @DataAmount long reservedBytes;
    }

    @Name("dev.segpool.ChunkMoved")
    @Label("Chunk Moved")
    @Category("segpool")
    @Description("An arena that needed a chunk took an empty one another arena kept, instead of a new one")
    @StackTrace(false)
    static final class ChunkMoved extends Event {
        @Label("Pool") String pool;
        @Label("From Arena") int fromArena;
        @Label("To Arena") int arena;
        @Label("Address") @MemoryAddress long address;
    }

    @Name("dev.segpool.LimitExceeded")
    @Label("Memory Limit Exceeded")
    @Category("segpool")
    @Description("An allocation was refused because it would have crossed the pool's maxMemory")
    static final class LimitExceeded extends Event {
        @Label("Pool") String pool;
        @Label("Limit") @DataAmount long limit;
        @Label("Reserved") @DataAmount long reservedBytes;
        @Label("Requested") @DataAmount long requestedBytes;
    }

    @Name("dev.segpool.HugeAllocated")
    @Label("Huge Allocation")
    @Category("segpool")
    @Description("A request above the chunk size got a dedicated native allocation")
    @StackTrace(false)
    static final class HugeAllocated extends Event {
        @Label("Pool") String pool;
        @Label("Address") @MemoryAddress long address;
        @Label("Size") @DataAmount long size;
    }

    @Name("dev.segpool.CacheReleased")
    @Label("Thread Cache Released")
    @Category("segpool")
    @Description("A thread cache gave its contents back: its thread ended or its scoped task finished"
            + " (at most 100 a second by default: a server runs many scoped tasks a second)")
    @StackTrace(false)
    @Throttle("100/s")
    static final class CacheReleased extends Event {
        @Label("Pool") String pool;
        @Label("Owner Thread") String owner;
        @Label("Bytes Given Back") @DataAmount long bytes;
    }

    @Name("dev.segpool.PoolStatistics")
    @Label("Pool Statistics")
    @Category("segpool")
    @Description("Periodic totals of a pool")
    @Period("5 s")
    @StackTrace(false)
    static final class PoolStatistics extends Event {
        @Label("Pool") String pool;
        @Label("Reserved") @DataAmount long reservedBytes;
        @Label("Active") @DataAmount long activeBytes;
        @Label("Cached") @DataAmount long cachedBytes;
        @Label("Free In Chunks") @DataAmount long freeBytes;
        @Label("Thread Caches") int threadCaches;
        @Label("Chunks") int chunks;
        @Label("Cache Hits") long cacheHits;
        @Label("Cache Misses") long cacheMisses;
    }

    @Name("dev.segpool.BudgetStatistics")
    @Label("Budget Statistics")
    @Category("segpool")
    @Description("Periodic use of each open budget of a pool")
    @Period("5 s")
    @StackTrace(false)
    static final class BudgetStatistics extends Event {
        @Label("Pool") String pool;
        @Label("Budget") @Description("Path from the top-level budget, as tenant/query-42") String budget;
        @Label("Used") @DataAmount long usedBytes;
        @Label("Peak") @DataAmount long peakBytes;
        @Label("Limit") @DataAmount long maxBytes;
    }

    /** Open pools, for the periodic statistics event; weak so that an unclosed, unreachable pool is not kept. */
    private static final Set<SegmentPool> POOLS = Collections.synchronizedSet(Collections.newSetFromMap(new WeakHashMap<>()));

    static {
        FlightRecorder.addListener(new FlightRecorderListener() {
            @Override
            public void recorderInitialized(FlightRecorder recorder) {
                FlightRecorder.addPeriodicEvent(PoolStatistics.class, PoolEvents::emitStatistics);
                FlightRecorder.addPeriodicEvent(BudgetStatistics.class, PoolEvents::emitBudgetStatistics);
                recorderReady = true;
            }
        });
    }

    static void opened(SegmentPool pool) {
        POOLS.add(pool);
    }

    static void closed(SegmentPool pool) {
        POOLS.remove(pool);
    }

    private static void emitStatistics() {
        SegmentPool[] pools;
        synchronized (POOLS) {
            pools = POOLS.toArray(SegmentPool[]::new);
        }
        for (SegmentPool pool : pools) {
            PoolCore.PoolTotals m;
            try {
                m = pool.totals();
            } catch (IllegalStateException closedMeanwhile) {
                continue;
            }
            PoolStatistics e = new PoolStatistics();
            e.pool = pool.name();
            e.reservedBytes = m.reservedBytes();
            e.activeBytes = m.activeBytes();
            e.cachedBytes = m.cachedBytes();
            e.freeBytes = m.freeBytes();
            e.threadCaches = m.threadCaches();
            e.chunks = m.chunks();
            e.cacheHits = m.cacheHits();
            e.cacheMisses = m.cacheMisses();
            e.commit();
        }
    }

    private static void emitBudgetStatistics() {
        SegmentPool[] pools;
        synchronized (POOLS) {
            pools = POOLS.toArray(SegmentPool[]::new);
        }
        for (SegmentPool pool : pools) {
            for (MemoryBudget budget : pool.budgets()) {
                BudgetStatistics e = new BudgetStatistics();
                e.pool = pool.name();
                e.budget = budget.path();
                e.usedBytes = budget.used();
                e.peakBytes = budget.peak();
                e.maxBytes = budget.limit;
                e.commit();
            }
        }
    }

    static void chunkAllocated(String pool, PoolChunk chunk, long reservedBytes) {
        if (!recorderReady) {
            return;
        }
        ChunkAllocated e = new ChunkAllocated();
        if (e.shouldCommit()) {
            e.pool = pool;
            e.arena = chunk.arena.index;
            e.address = chunk.base;
            e.size = chunk.segment.byteSize();
            e.reservedBytes = reservedBytes;
            e.commit();
        }
    }

    static void chunkMoved(String pool, PoolChunk chunk, int fromArena) {
        if (!recorderReady) {
            return;
        }
        ChunkMoved e = new ChunkMoved();
        if (e.shouldCommit()) {
            e.pool = pool;
            e.fromArena = fromArena;
            e.arena = chunk.arena.index;
            e.address = chunk.base;
            e.commit();
        }
    }

    static void chunkReleased(String pool, PoolChunk chunk, String reason, long reservedBytes) {
        if (!recorderReady) {
            return;
        }
        ChunkReleased e = new ChunkReleased();
        if (e.shouldCommit()) {
            e.pool = pool;
            e.arena = chunk.arena.index;
            e.address = chunk.base;
            e.size = chunk.segment.byteSize();
            e.reason = reason;
            e.reservedBytes = reservedBytes;
            e.commit();
        }
    }

    static void limitExceeded(String pool, long limit, long reserved, long requested) {
        if (!recorderReady) {
            return;
        }
        LimitExceeded e = new LimitExceeded();
        if (e.shouldCommit()) {
            e.pool = pool;
            e.limit = limit;
            e.reservedBytes = reserved;
            e.requestedBytes = requested;
            e.commit();
        }
    }

    static void hugeAllocated(String pool, long address, long size) {
        if (!recorderReady) {
            return;
        }
        HugeAllocated e = new HugeAllocated();
        if (e.shouldCommit()) {
            e.pool = pool;
            e.address = address;
            e.size = size;
            e.commit();
        }
    }

    /** Whether a {@link CacheReleased} event would be recorded now (so its bytes are worth counting). */
    static boolean cacheReleasedEnabled() {
        return recorderReady && new CacheReleased().isEnabled();
    }

    static void cacheReleased(String pool, Thread owner, long bytes) {
        if (!recorderReady) {
            return;
        }
        CacheReleased e = new CacheReleased();
        if (e.shouldCommit()) {
            e.pool = pool;
            e.owner = owner.getName();
            e.bytes = bytes;
            e.commit();
        }
    }
}
