package dev.segpool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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
    /** Bookkeeping of one huge allocation. */
    record Huge(Arena arena, long byteSize) {}

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

    MemorySegment allocateHuge(long byteSize, long byteAlignment) {
        reserve(byteSize);
        Arena memory = Arena.ofShared();
        try {
            MemorySegment segment = memory.allocate(byteSize, byteAlignment);
            huge.put(segment.address(), new Huge(memory, byteSize));
            hugeBytes.addAndGet(byteSize);
            hugeAllocations.increment();
            return segment;
        } catch (Throwable t) {
            memory.close();
            reserved.addAndGet(-byteSize);
            throw t;
        }
    }

    /** Frees the huge allocation at {@code address}; false when there is none. */
    boolean freeHuge(long address) {
        Huge h = huge.remove(address);
        if (h == null) {
            return false;
        }
        h.arena.close();
        hugeBytes.addAndGet(-h.byteSize);
        reserved.addAndGet(-h.byteSize);
        hugeDeallocations.increment();
        return true;
    }

    /**
     * Why {@code address}, which is in no chunk, cannot be freed: it points inside a live huge
     * allocation, or it is not this pool's. Walks the huge allocations; only on the error path.
     */
    IllegalArgumentException notHuge(long address) {
        for (Map.Entry<Long, Huge> entry : huge.entrySet()) {
            long start = entry.getKey();
            long byteSize = entry.getValue().byteSize();
            if (address > start && address - start < byteSize) {
                return Errors.interior(poolName, address, start, byteSize);
            }
        }
        return Errors.foreign(poolName, address);
    }

    /** Releases everything; for {@code close()}. Returns the huge allocations that were still live. */
    List<Huge> releaseAll() {
        for (PoolChunk chunk : registry.all()) {
            releaseChunk(chunk);
        }
        List<Huge> leaked = new ArrayList<>(huge.values());
        for (Long address : List.copyOf(huge.keySet())) {
            freeHuge(address);
        }
        return leaked;
    }
}
