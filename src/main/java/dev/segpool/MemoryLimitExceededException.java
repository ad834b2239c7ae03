package dev.segpool;

import java.io.Serial;

/**
 * Thrown when an allocation would make a pool reserve more native memory than its configured limit
 * ({@link SegmentPool.Builder#maxMemory(long)}), or take a {@link MemoryBudget} (or one of its
 * ancestors) over its limit; the message names the pool or budget. Nothing is changed or charged, and
 * the pool and budget stay usable: freeing memory, or asking for less, lets later allocations succeed.
 */
public final class MemoryLimitExceededException extends RuntimeException {
    @Serial
    private static final long serialVersionUID = 1L;

    /** The configured limit on reserved bytes (of a budget: on its charged bytes). */
    private final long limitBytes;
    /** Bytes the pool had reserved (the budget held) when the allocation was refused. */
    private final long reservedBytes;
    /** Native bytes the refused allocation needed to reserve. */
    private final long requestedBytes;

    MemoryLimitExceededException(String message, long limitBytes, long reservedBytes, long requestedBytes) {
        super(message);
        this.limitBytes = limitBytes;
        this.reservedBytes = reservedBytes;
        this.requestedBytes = requestedBytes;
    }

    /** {@return the configured limit on reserved bytes, or the limit of the budget that refused} */
    public long limitBytes() {
        return limitBytes;
    }

    /** {@return the bytes the pool had reserved, or the refusing budget held, when the allocation was refused} */
    public long reservedBytes() {
        return reservedBytes;
    }

    /**
     * {@return the native bytes the refused allocation needed to reserve (a chunk, or a huge
     * allocation), or, for a budget, the bytes it would have charged}
     */
    public long requestedBytes() {
        return requestedBytes;
    }
}
