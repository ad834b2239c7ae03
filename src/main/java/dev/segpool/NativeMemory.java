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
 *
 * <p>Acquiring memory (a chunk or a huge allocation, up to its registration) is an operation of the
 * pool's {@link Lifecycle}: none starts once the pool is closing, and close waits for those in
 * flight, so {@link #releaseAll} sees everything that was acquired.
 */
final class NativeMemory {
    /**
     * Bookkeeping of one huge allocation: its JDK arena, its whole unit ({@link #hugeUnit} bytes),
     * {@link UnitState} (LIVE, BUDGET or ARENA) and, for BUDGET, its owner.
     */
    record Huge(Arena arena, MemorySegment segment, long unitBytes, byte state, MemoryBudget owner) {}

    /**
     * The bytes a huge allocation of {@code byteSize} reserves and counts: its size, and at least one
     * byte, so that a live allocation of size 0 shows in the pool's and its budget's books (a budget
     * holding one cannot close).
     */
    static long hugeUnit(long byteSize) {
        return Math.max(byteSize, 1);
    }

    final String poolName;
    final int chunkSize;
    final long limit;
    final ChunkRegistry registry;
    /** Whether memory comes from mmap (and can be purged page by page) rather than the JDK's malloc. */
    final boolean mapped;
    private final AtomicLong reserved = new AtomicLong();
    private final ConcurrentHashMap<Long, Huge> huge = new ConcurrentHashMap<>();
    private final AtomicLong hugeBytes = new AtomicLong();
    final LongAdder hugeAllocations = new LongAdder();
    final LongAdder hugeDeallocations = new LongAdder();
    private final Lifecycle lifecycle;

    NativeMemory(String poolName, int chunkSize, long limit, boolean mapped, Lifecycle lifecycle) {
        this.poolName = poolName;
        this.lifecycle = lifecycle;
        this.chunkSize = chunkSize;
        this.limit = limit;
        this.mapped = mapped;
        this.registry = new ChunkRegistry(chunkSize);
    }


    long reservedBytes() {
        return reserved.get();
    }

    long hugeBytes() {
        return hugeBytes.get();
    }

    /**
     * Reserves {@code bytes} against the limit. The pool catches the exception, gives free memory
     * back, and tries once more before its user sees it.
     */
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
        enter();
        try {
            Arena memory = Arena.ofShared();
            MemorySegment segment = acquire(memory, chunkSize, chunkSize);
            PoolChunk chunk = new PoolChunk(arena, memory, segment);
            registry.add(chunk);
            PoolEvents.chunkAllocated(poolName, chunk, reserved.get());
            return chunk;
        } finally {
            lifecycle.exit();
        }
    }

    private void enter() {
        if (!lifecycle.enter()) {
            throw Errors.closed(poolName);
        }
    }

    /**
     * Reserves {@code byteSize} bytes, then takes them, aligned, into {@code owner}; when either step
     * fails, nothing stays reserved and {@code owner} is closed.
     */
    private MemorySegment acquire(Arena owner, long byteSize, long alignment) {
        try {
            reserve(byteSize);
        } catch (RuntimeException e) {
            owner.close();
            throw e;
        }
        try {
            return mapped ? OsMemory.map(byteSize, alignment, owner) : owner.allocate(byteSize, alignment);
        } catch (Throwable t) {
            owner.close();
            reserved.addAndGet(-byteSize);
            throw t;
        }
    }

    /**
     * Gives a chunk's memory back; segments into it become inaccessible. Only the first of racing
     * calls (trim, decay, close) releases it; returns whether this call did.
     */
    boolean releaseChunk(PoolChunk chunk, String reason) {
        if (!registry.remove(chunk)) {
            return false;
        }
        chunk.released = true;
        chunk.memory.close();
        long after = reserved.addAndGet(-chunkSize);
        PoolEvents.chunkReleased(poolName, chunk, reason, after);
        return true;
    }

    /**
     * A dedicated allocation, zeroed (the JDK and mmap zero what they give), handed out in {@code state};
     * returns its address ({@link #hugeSegment} has its segment).
     */
    long allocateHuge(long byteSize, long byteAlignment, byte state, MemoryBudget owner) {
        enter();
        try {
            return acquireHuge(byteSize, byteAlignment, state, owner);
        } finally {
            lifecycle.exit();
        }
    }

    private long acquireHuge(long byteSize, long byteAlignment, byte state, MemoryBudget owner) {
        Arena memory = Arena.ofShared();
        long unitBytes = hugeUnit(byteSize);
        MemorySegment unit = acquire(memory, unitBytes, byteAlignment);
        huge.put(unit.address(), new Huge(memory, unit, unitBytes, state, owner));
        hugeBytes.addAndGet(unitBytes);
        hugeAllocations.increment();
        PoolEvents.hugeAllocated(poolName, unit.address(), unitBytes);
        return unit.address();
    }

    /** The whole segment of the huge allocation at {@code address}, or null when there is none. */
    MemorySegment hugeSegment(long address) {
        Huge h = huge.get(address);
        return h == null ? null : h.segment();
    }

    /**
     * Frees the huge allocation in state {@code expected} (owned by {@code owner} for BUDGET) at
     * {@code address}; returns its size, or -1 when there is none. Throws, changing nothing, when the
     * allocation there is in another state or another budget's.
     */
    long freeHuge(long address, byte expected, MemoryBudget owner) {
        Huge h = claimHuge(address, expected, owner);
        if (h == null) {
            return -1;
        }
        releaseHuge(h);
        return h.unitBytes;
    }

    /**
     * Takes the huge allocation in state {@code expected} (owned by {@code owner} for BUDGET) at
     * {@code address} out of the pool's books, for the caller to release or {@link #restoreHuge put
     * back}; null when there is none. Removing the entry is the claim: of two racing claims one wins.
     */
    Huge claimHuge(long address, byte expected, MemoryBudget owner) {
        Huge h = huge.get(address);
        if (h == null) {
            return null;
        }
        if (h.state != expected || h.owner != owner) {
            throw Errors.notFreeable(poolName, address, owner, h.state, h.owner);
        }
        return huge.remove(address, h) ? h : null;
    }

    /** Puts back a huge allocation {@link #claimHuge} took out, unchanged. */
    void restoreHuge(Huge h) {
        huge.put(h.segment.address(), h);
    }

    /** Gives a claimed huge allocation's memory back. */
    void releaseHuge(Huge h) {
        h.arena.close();
        hugeBytes.addAndGet(-h.unitBytes);
        reserved.addAndGet(-h.unitBytes);
        hugeDeallocations.increment();
    }

    /** The budget that owns the huge allocation at {@code address}, or null; for reports only. */
    MemoryBudget hugeOwner(long address) {
        Huge h = huge.get(address);
        return h == null ? null : h.owner;
    }

    /**
     * Why {@code address}, which is in no chunk, cannot be freed: it points inside a live huge
     * allocation, or it is not this pool's. Walks the huge allocations; only on the error path.
     */
    IllegalArgumentException notHuge(long address) {
        for (Map.Entry<Long, Huge> entry : huge.entrySet()) {
            long start = entry.getKey();
            long unitBytes = entry.getValue().unitBytes();
            if (address > start && address - start < unitBytes) {
                return Errors.interior(poolName, address, start, unitBytes);
            }
        }
        return Errors.foreign(poolName, address);
    }

    /** The huge allocations not freed yet. */
    List<Huge> liveHuge() {
        return new ArrayList<>(huge.values());
    }

    /**
     * Releases everything, for {@code close()}, once no operation is in flight. With
     * {@code keepOpenArenas} (pooled arenas' segments are bound to scopes only their arenas can close),
     * a chunk that holds units of an open arena is kept, its units marked {@code ORPHANED}, until the
     * last of them comes back ({@link #releaseOrphan}); so are such arenas' huge allocations. Returns
     * the bytes kept.
     */
    long releaseAll(boolean keepOpenArenas) {
        long kept = 0;
        for (PoolChunk chunk : registry.all()) {
            if (keepOpenArenas && chunk.orphanArenaUnits() > 0) {
                kept += chunkSize;
            } else {
                releaseChunk(chunk, "close");
            }
        }
        for (var entry : List.copyOf(huge.entrySet())) {
            Huge h = entry.getValue();
            if (keepOpenArenas && h.state == UnitState.ARENA) {
                kept += h.unitBytes;
            } else {
                freeHuge(entry.getKey(), h.state, h.owner);
            }
        }
        return kept;
    }

    /**
     * An open arena gives back a unit its pool orphaned at close: the unit was moved back to
     * {@code FREE} by the caller; the chunk goes once no orphan is left in it. Called only after the
     * pool is {@code CLOSED}, so every orphan of the chunk was marked before this looks.
     */
    void releaseOrphan(PoolChunk chunk) {
        if (!chunk.hasOrphans()) {
            releaseChunk(chunk, "arena closed after the pool");
        }
    }
}
