package dev.segpool;

import java.util.ArrayList;
import java.util.List;

/**
 * Finds the chunk that holds an address in O(1) without a lock. Chunks are aligned to their size,
 * so {@code address >>> log2(chunkSize)} names at most one chunk; the key indexes an open-addressing
 * table at most half full.
 *
 * <p>Placement: a chunk sits at its home slot, {@code key & mask}, unless another chunk took it; then
 * it sits on its probe chain, which starts at a multiplicative hash of the key and goes on linearly.
 * Chunks mapped one after another have consecutive keys, so nearly all sit at home and a free finds
 * its chunk with one load and no multiply (the multiply sat on the free's chain of dependent loads:
 * about 2 ns of a 27 ns allocate/free pair). A key whose home slot is empty is absent, also at once.
 * A table is built whole and never changed, so a displaced chunk's probe chain holds no gap before it.
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

    /** The chunk whose memory holds {@code address}, or null. Small: on every free. */
    PoolChunk find(long address) {
        long key = address >>> chunkShift;
        PoolChunk[] t = table;
        PoolChunk chunk = t[home(key, t.length)];
        if (chunk == null || chunk.base >>> chunkShift == key) {
            return chunk;
        }
        return findDisplaced(t, key);
    }

    /** The rest of {@link #find} when another chunk holds the home slot of {@code key}: its probe chain. */
    private PoolChunk findDisplaced(PoolChunk[] t, long key) {
        int mask = t.length - 1;
        for (int i = probe(key) & mask; ; i = (i + 1) & mask) {
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
        List<PoolChunk> displaced = new ArrayList<>();
        for (PoolChunk chunk : chunks) {
            int home = home(chunk.base >>> chunkShift, capacity);
            if (t[home] == null) {
                t[home] = chunk;
            } else {
                displaced.add(chunk);
            }
        }
        for (PoolChunk chunk : displaced) { // after every home placement: a chain may pass through homes
            int i = probe(chunk.base >>> chunkShift) & mask;
            while (t[i] != null) {
                i = (i + 1) & mask;
            }
            t[i] = chunk;
        }
        table = t;
        size = chunks.size();
    }

    /** The home slot of {@code key} in a table of {@code capacity} slots (a power of two). */
    private static int home(long key, int capacity) {
        return (int) key & (capacity - 1);
    }

    /** Where the probe chain of a displaced {@code key} starts (before masking). */
    private static int probe(long key) {
        return (int) (key * 0x9E3779B97F4A7C15L >>> 32);
    }
}
