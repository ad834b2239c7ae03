package dev.segpool;

/**
 * The purge state of one chunk, one bit per page: the pages free at the last scan, and the pages given
 * back to the kernel ({@code madvise(MADV_DONTNEED)}) and not handed out since. A page is purged when
 * it was free at two scans about a decay period apart (so it stayed free that long, at least at both
 * ends of it), and only once until it is handed out again.
 *
 * <p>Guarded by the arena lock of its chunk, like the chunk's runs.
 */
final class PurgeMap {
    private final int pages;
    /** Pages free at the last scan; null before the first. */
    private long[] freeAtLastScan;
    private final long[] purged;
    private int purgedPages;

    PurgeMap(int pages) {
        this.pages = pages;
        this.purged = new long[(pages + 63) >>> 6];
    }

    /**
     * Purges the pages free now ({@code free}) that were free at the last scan as well (all of them
     * when {@code all}) and are not purged yet, in runs of consecutive pages of the chunk at
     * {@code base}; returns the bytes purged.
     */
    long purge(long[] free, boolean all, long base, int pageShifts) {
        long[] previous = all ? free : freeAtLastScan;
        freeAtLastScan = free;
        if (previous == null) {
            return 0;
        }
        long bytes = 0;
        int p = 0;
        while (p < pages) {
            if (!isPurgeable(free, previous, p)) {
                p++;
                continue;
            }
            int start = p;
            while (p < pages && isPurgeable(free, previous, p)) {
                purged[p >>> 6] |= 1L << p;
                p++;
            }
            long length = (long) (p - start) << pageShifts;
            OsMemory.purge(base + ((long) start << pageShifts), length);
            purgedPages += p - start;
            bytes += length;
        }
        return bytes;
    }

    private boolean isPurgeable(long[] free, long[] previous, int page) {
        long bit = 1L << page;
        int w = page >>> 6;
        return (free[w] & previous[w] & bit) != 0 && (purged[w] & bit) == 0;
    }

    /** Pages {@code [start, start + count)} are handed out: no longer purged. */
    void handedOut(int start, int count) {
        if (purgedPages == 0) {
            return;
        }
        for (int p = start; p < start + count; p++) {
            long bit = 1L << p;
            if ((purged[p >>> 6] & bit) != 0) {
                purged[p >>> 6] &= ~bit;
                purgedPages--;
            }
        }
    }
}
