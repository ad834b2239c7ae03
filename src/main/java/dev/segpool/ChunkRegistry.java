package dev.segpool;

import java.util.ArrayList;
import java.util.List;

/**
 * Finds the chunk that holds an address in O(1) without a lock. Chunks are aligned to their size,
 * so {@code address >>> log2(chunkSize)} names at most one chunk; the key indexes an open-addressing
 * table (linear probing, at most half full).
 *
 * <p>Protocol: {@link #find} reads the volatile {@link #table} once and never writes. {@link #add}
 * and {@link #remove} are rare (a chunk allocated or released) and serialised on this object; each
 * builds a new table and publishes it with one volatile write (copy on write).
 */
final class ChunkRegistry {
    private static final int MIN_TABLE = 16;

    private final int chunkShift;
    private final List<PoolChunk> chunks = new ArrayList<>();
    private volatile PoolChunk[] table = new PoolChunk[MIN_TABLE];
    private volatile int size;

    ChunkRegistry(int chunkSize) {
        this.chunkShift = Integer.numberOfTrailingZeros(chunkSize);
    }

    /** The chunk whose memory holds {@code address}, or null. */
    PoolChunk find(long address) {
        long key = address >>> chunkShift;
        PoolChunk[] t = table;
        int mask = t.length - 1;
        for (int i = slot(key) & mask; ; i = (i + 1) & mask) {
            PoolChunk chunk = t[i];
            if (chunk == null || chunk.base >>> chunkShift == key) {
                return chunk;
            }
        }
    }

    synchronized void add(PoolChunk chunk) {
        chunks.add(chunk);
        rebuild();
    }

    /** Removes {@code chunk}; false when it was not registered (released already). */
    synchronized boolean remove(PoolChunk chunk) {
        if (!chunks.remove(chunk)) {
            return false;
        }
        rebuild();
        return true;
    }

    synchronized List<PoolChunk> all() {
        return List.copyOf(chunks);
    }

    /** Chunks registered; read without the lock. */
    int size() {
        return size;
    }

    private void rebuild() {
        int capacity = Math.max(MIN_TABLE, Integer.highestOneBit(Math.max(1, chunks.size())) << 2);
        PoolChunk[] t = new PoolChunk[capacity];
        int mask = capacity - 1;
        for (PoolChunk chunk : chunks) {
            int i = slot(chunk.base >>> chunkShift) & mask;
            while (t[i] != null) {
                i = (i + 1) & mask;
            }
            t[i] = chunk;
        }
        table = t;
        size = chunks.size();
    }

    private static int slot(long key) {
        return (int) (key * 0x9E3779B97F4A7C15L >>> 32);
    }
}
