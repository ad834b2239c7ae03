package dev.segpool;

import java.util.Arrays;

/**
 * Free runs of one band (run class) inside one chunk, in no particular order. A band holds runs of
 * different lengths (from its class's pages up to the next class's), so the best-fit query
 * ({@link #smallestOfAtLeast}) walks it; bands are short, a handful of runs. Guarded by the arena
 * lock, like its chunk.
 */
final class RunQueue {
    private long[] runs = new long[4];
    private int size;

    boolean isEmpty() {
        return size == 0;
    }

    int size() {
        return size;
    }

    void offer(long handle) {
        if (size == runs.length) {
            runs = Arrays.copyOf(runs, size * 2);
        }
        runs[size++] = handle;
    }

    /**
     * The shortest run of at least {@code pages} pages, the lowest offset among equals, or
     * {@link Handle#NONE}; it stays queued.
     */
    long smallestOfAtLeast(int pages) {
        final long[] runs = this.runs;
        long best = Handle.NONE;
        int bestPages = Integer.MAX_VALUE;
        for (int i = 0; i < size; i++) {
            long run = runs[i];
            int runPages = Handle.runPages(run);
            if (runPages >= pages && (runPages < bestPages
                    || runPages == bestPages && Long.compareUnsigned(run, best) < 0)) {
                best = run;
                bestPages = runPages;
            }
        }
        return best;
    }

    /** Removes {@code handle}; returns false when it is not queued. */
    boolean remove(long handle) {
        for (int i = 0; i < size; i++) {
            if (runs[i] == handle) {
                runs[i] = runs[--size];
                return true;
            }
        }
        return false;
    }

    /** The run at position {@code i}, for walks over all free runs. */
    long get(int i) {
        return runs[i];
    }
}
