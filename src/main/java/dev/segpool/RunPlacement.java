package dev.segpool;

import java.util.Arrays;

/**
 * Where an arena cuts its next run, chosen across all of its chunks: the shortest free run that
 * holds it, searched band by band (a band is a run class: the free runs from one class's pages up to
 * the next class's), and among runs of the chosen band the one in the oldest chunk. So runs gather in
 * the oldest chunks, a long free run is not cut while a shorter one fits anywhere in the arena, and
 * the youngest chunks drain first, which are the ones the decay releases. This is jemalloc's extent
 * placement (best fit by size class, then oldest and lowest address), with one refinement that
 * matters for runs cut to whole pages: the band that contains the request also holds runs shorter
 * than it, so that band is searched run by run before the bands above.
 *
 * <p>Structure: the chunks in a dense array by age ({@link PoolChunk#placementSlot} is each one's
 * index), and per band a bitmap over those slots, set where the chunk has a free run in that band
 * ({@link PoolChunk#bandMask}). A search looks at the chunks that have runs in the request's own band
 * (when the request is not a band's exact size), then takes the first set bit of the first non-empty
 * band above, which a summary of the bands that any chunk has ({@code bandsWithRuns}) names in one bit
 * scan: a few word scans in all. A chunk's bits are brought up
 * to date by {@link #update} after every change to its free runs; a new chunk is appended; removing
 * one (rare: it is being released) closes the gap and redraws the bitmaps.
 *
 * <p>Protocol: guarded by the arena lock, like the chunks' free runs.
 */
final class RunPlacement {
    private final SizeClasses sizeClasses;
    private final int bands;
    private PoolChunk[] chunks = new PoolChunk[Long.SIZE];
    private int size;
    /** {@code bits[b][w]}: bit {@code i} set when {@code chunks[64 * w + i]} has a free run in band b. */
    private final long[][] bits;
    /** Bit b set when some chunk has a free run in band b: the bands whose {@link #bits} are not all 0. */
    private long bandsWithRuns;

    RunPlacement(SizeClasses sizeClasses) {
        this.sizeClasses = sizeClasses;
        this.bands = sizeClasses.runClasses();
        assert bands <= Long.SIZE : "a chunk's band mask has one bit per band";
        this.bits = new long[bands][1];
    }

    /** Chunks placed. */
    int size() {
        return size;
    }

    /** Adds a new chunk, the youngest. */
    void add(PoolChunk chunk) {
        assert chunk.placementSlot < 0;
        if (size == chunks.length) {
            chunks = Arrays.copyOf(chunks, size * 2);
            for (int b = 0; b < bands; b++) {
                bits[b] = Arrays.copyOf(bits[b], chunks.length >>> 6);
            }
        }
        chunk.placement = this;
        chunk.placementSlot = size;
        chunks[size++] = chunk;
        update(chunk, 0L);
    }

    /** Removes a chunk that is being released; the younger ones move down a slot. */
    void remove(PoolChunk chunk) {
        int slot = chunk.placementSlot;
        assert chunks[slot] == chunk;
        System.arraycopy(chunks, slot + 1, chunks, slot, size - slot - 1);
        chunks[--size] = null;
        chunk.placement = null;
        chunk.placementSlot = -1;
        for (long[] bandBits : bits) {
            Arrays.fill(bandBits, 0L);
        }
        bandsWithRuns = 0;
        for (int i = 0; i < size; i++) {
            chunks[i].placementSlot = i;
            update(chunks[i], 0L);
        }
    }

    /**
     * Brings the bits of {@code chunk} up to date after a change to its free runs; {@code before} is
     * its {@link PoolChunk#bandMask} before the change.
     */
    void update(PoolChunk chunk, long before) {
        long after = chunk.bandMask();
        long changed = before ^ after;
        int slot = chunk.placementSlot;
        int w = slot >>> 6;
        long bit = 1L << slot;
        while (changed != 0) {
            int band = Long.numberOfTrailingZeros(changed);
            bits[band][w] ^= bit;
            if ((after & 1L << band) != 0) {
                bandsWithRuns |= 1L << band;
            } else if (isEmpty(bits[band])) {
                bandsWithRuns &= ~(1L << band);
            }
            changed &= changed - 1;
        }
    }

    /**
     * The chunk whose {@link PoolChunk#allocateRun} will cut a run of {@code span} pages from the
     * shortest free run that holds it (the oldest chunk among those whose best fit is in the same
     * band); null when no chunk has room.
     */
    PoolChunk bestFit(int span) {
        int words = (size + Long.SIZE - 1) >>> 6;
        int band = sizeClasses.runClassFloor(span);
        int firstFullBand = sizeClasses.runClassCeiling(span);
        if (firstFullBand != band) {
            // the request's own band also holds runs shorter than the request: look at each
            long[] bandBits = bits[band];
            for (int w = 0; w < words; w++) {
                for (long word = bandBits[w]; word != 0; word &= word - 1) {
                    PoolChunk chunk = chunks[w << 6 | Long.numberOfTrailingZeros(word)];
                    if (chunk.hasRunInBand(band, span)) {
                        return chunk;
                    }
                }
            }
        }
        // The first band at or above firstFullBand that any chunk has: one bit scan, not a look at each band.
        long above = firstFullBand < Long.SIZE ? bandsWithRuns & -1L << firstFullBand : 0;
        if (above != 0) {
            long[] bandBits = bits[Long.numberOfTrailingZeros(above)];
            for (int w = 0; w < words; w++) {
                long word = bandBits[w];
                if (word != 0) {
                    return chunks[w << 6 | Long.numberOfTrailingZeros(word)];
                }
            }
        }
        return null;
    }

    private static boolean isEmpty(long[] bandBits) {
        for (long word : bandBits) {
            if (word != 0) {
                return false;
            }
        }
        return true;
    }

    /** Whether the bitmaps agree with the chunks' band masks; for tests. */
    boolean isConsistent() {
        for (int b = 0; b < bands; b++) {
            if (isEmpty(bits[b]) == ((bandsWithRuns & 1L << b) != 0)) {
                return false;
            }
        }
        for (int i = 0; i < size; i++) {
            if (chunks[i].placementSlot != i || chunks[i].placement != this) {
                return false;
            }
            for (int b = 0; b < bands; b++) {
                boolean set = (bits[b][i >>> 6] & 1L << i) != 0;
                if (set != ((chunks[i].bandMask() & 1L << b) != 0)) {
                    return false;
                }
            }
        }
        for (int i = size; i < chunks.length; i++) {
            for (int b = 0; b < bands; b++) {
                if ((bits[b][i >>> 6] & 1L << i) != 0) {
                    return false;
                }
            }
        }
        return true;
    }
}
