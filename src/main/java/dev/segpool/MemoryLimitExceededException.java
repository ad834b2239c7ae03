package dev.segpool;

import java.io.Serial;

/**
 * Thrown when an allocation would make a pool reserve more native memory than its configured limit
 * ({@link SegmentPool.Builder#maxMemory(long)}). The pool is unchanged and stays usable: freeing
 * memory, or asking for less, lets later allocations succeed.
 */
public final class MemoryLimitExceededException extends RuntimeException {
    @Serial
    private static final long serialVersionUID = 1L;

    private final long limitBytes;
    private final long reservedBytes;
    private final long requestedBytes;

    MemoryLimitExceededException(String message, long limitBytes, long reservedBytes, long requestedBytes) {
        super(message);
        this.limitBytes = limitBytes;
        this.reservedBytes = reservedBytes;
        this.requestedBytes = requestedBytes;
    }

    /** The configured limit on reserved bytes. */
    public long limitBytes() {
        return limitBytes;
    }

    /** Bytes the pool had reserved when the allocation was refused. */
    public long reservedBytes() {
        return reservedBytes;
    }

    /** Native bytes the refused allocation needed to reserve (a chunk, or a huge allocation). */
    public long requestedBytes() {
        return requestedBytes;
    }
}
