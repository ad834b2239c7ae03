package dev.segpool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The native memory a pool holds: chunks for its arenas and dedicated ("huge") allocations, each
 * from a shared JDK arena of its own, and the count of reserved bytes checked against the limit.
 *
 * <p>Protocol: bytes are reserved (compare-and-set on {@link #reserved}, never above the limit) before
 * native memory is taken, and unreserved after it is given back, so {@link #reservedBytes()} never
 * crosses the limit even while many threads race. Huge allocations live in a concurrent map keyed by
 * address; removing the key is what claims one for freeing, so of two racing frees one wins.
 */
final class NativeMemory {
    /** Bookkeeping of one huge allocation: its JDK arena, size and {@link UnitState} (LIVE or ARENA). */
    record Huge(Arena arena, long byteSize, byte state) {}

    final String poolName;
    final int chunkSize;
    final long limit;
    final ChunkRegistry registry;
    private final AtomicLong reserved = new AtomicLong();
    private final ConcurrentHashMap<Long, Huge> huge = new ConcurrentHashMap<>();
    private final AtomicLong hugeBytes = new AtomicLong();
    final LongAdder hugeAllocations = new LongAdder();
    final LongAdder hugeDeallocations = new LongAdder();
    final LongAdder chunksAllocated = new LongAdder();
    final LongAdder chunksReleased = new LongAdder();

    NativeMemory(String poolName, int chunkSize, long limit) {
        this.poolName = poolName;
        this.chunkSize = chunkSize;
        this.limit = limit;
        this.registry = new ChunkRegistry(chunkSize);
    }

    long reservedBytes() {
        return reserved.get();
    }

    long hugeBytes() {
        return hugeBytes.get();
    }

    int hugeCount() {
        return huge.size();
    }

    private void reserve(long bytes) {
        for (long current = reserved.get(); ; current = reserved.get()) {
            if (bytes > limit - current) {
                throw Errors.limit(poolName, limit, current, bytes);
            }
            if (reserved.compareAndSet(current, current + bytes)) {
                return;
            }
        }
    }

    /** A new chunk for {@code arena}, registered for lookup by address. */
    PoolChunk allocateChunk(PoolArena arena) {
        reserve(chunkSize);
        Arena memory = Arena.ofShared();
        try {
            MemorySegment segment = memory.allocate(chunkSize, chunkSize);
            PoolChunk chunk = new PoolChunk(arena, memory, segment);
            registry.add(chunk);
            chunksAllocated.increment();
            return chunk;
        } catch (Throwable t) {
            memory.close();
            reserved.addAndGet(-chunkSize);
            throw t;
        }
    }

    /** Gives a chunk's memory back; segments into it become inaccessible. */
    void releaseChunk(PoolChunk chunk) {
        registry.remove(chunk);
        chunk.memory.close();
        reserved.addAndGet(-chunkSize);
        chunksReleased.increment();
    }

    /** A dedicated allocation, zeroed (the JDK zeroes what it allocates), handed out in {@code state}. */
    MemorySegment allocateHuge(long byteSize, long byteAlignment, byte state) {
        reserve(byteSize);
        Arena memory = Arena.ofShared();
        try {
            MemorySegment segment = memory.allocate(byteSize, byteAlignment);
            huge.put(segment.address(), new Huge(memory, byteSize, state));
            hugeBytes.addAndGet(byteSize);
            hugeAllocations.increment();
            return segment;
        } catch (Throwable t) {
            memory.close();
            reserved.addAndGet(-byteSize);
            throw t;
        }
    }

    /**
     * Frees the huge allocation in state {@code expected} at {@code address}; false when there is none.
     * Throws, changing nothing, when the allocation there belongs to a pooled arena and the caller
     * expected a live one.
     */
    boolean freeHuge(long address, byte expected) {
        Huge h = huge.get(address);
        if (h == null) {
            return false;
        }
        if (h.state != expected) {
            throw Errors.arenaOwned(poolName, address);
        }
        if (!huge.remove(address, h)) {
            return false;
        }
        h.arena.close();
        hugeBytes.addAndGet(-h.byteSize);
        reserved.addAndGet(-h.byteSize);
        hugeDeallocations.increment();
        return true;
    }

    /** The huge allocations not freed yet. */
    List<Huge> liveHuge() {
        return new ArrayList<>(huge.values());
    }

    /** Releases everything; for {@code close()}. */
    void releaseAll() {
        for (PoolChunk chunk : registry.all()) {
            releaseChunk(chunk);
        }
        for (var entry : List.copyOf(huge.entrySet())) {
            freeHuge(entry.getKey(), entry.getValue().state);
        }
    }
}
