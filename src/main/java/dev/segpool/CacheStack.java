package dev.segpool;

import java.util.Arrays;

/**
 * The cached units of one size class in a {@link PoolThreadCache}: a LIFO stack of (chunk, handle) in
 * two parallel arrays, no object per entry. Used by the cache's owner only.
 */
final class CacheStack {
    final int sizeIndex;
    final int elementSize;
    /**
     * Entries the stack may hold now: at most its arrays' length, and within the cache's byte
     * budget (see {@code PoolThreadCache.grantedBytes}). Changed on the rare paths only.
     */
    int capacity;
    /** The capacity a stack starts with and trims return to: one refill's worth, at least one entry. */
    final int baseCapacity;
    final int maxRefill;
    final PoolChunk[] chunks;
    final long[] handles;
    int size;
    /** Lowest {@link #size} since the last trim: entries below it went unused. */
    int lowWater;
    /** Units the next refill takes. */
    int refill;

    /** The chunk of the entry {@link #take} takes next; the stack is not empty. */
    PoolChunk topChunk() {
        return chunks[size - 1];
    }

    /** The handle of the entry {@link #take} takes next; the stack is not empty. */
    long topHandle() {
        return handles[size - 1];
    }

    /**
     * Takes the top entry off the stack (not empty), keeping {@link #lowWater}; returns its index in
     * {@link #chunks} and {@link #handles}, which the caller reads before anything is pushed.
     */
    int take() {
        int n = size - 1;
        size = n;
        lowWater = Math.min(lowWater, n);
        return n;
    }

    /**
     * Removes the {@code n} oldest entries (the bottom of the stack, which the caller has given back),
     * moving the others down.
     */
    void dropOldest(int n) {
        int left = size - n;
        System.arraycopy(chunks, n, chunks, 0, left);
        System.arraycopy(handles, n, handles, 0, left);
        Arrays.fill(chunks, left, size, null);
        size = left;
        lowWater = Math.max(0, lowWater - n);
    }

    /** A stack of {@code maxCapacity} entries at most, with no capacity granted yet. */
    CacheStack(int sizeIndex, int elementSize, int maxCapacity, int maxRefill, int firstRefill) {
        this.sizeIndex = sizeIndex;
        this.elementSize = elementSize;
        this.baseCapacity = Math.min(maxCapacity, Math.max(1, maxRefill));
        this.maxRefill = maxRefill;
        this.refill = firstRefill;
        this.chunks = new PoolChunk[maxCapacity];
        this.handles = new long[maxCapacity];
    }
}
