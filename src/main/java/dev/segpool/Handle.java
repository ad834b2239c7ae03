package dev.segpool;

/**
 * The 64-bit handle of a run of pages or of one subpage element inside a {@link PoolChunk}.
 * This class is the only place that knows the layout; everything else calls it.
 *
 * <pre>
 *  63            49 48            34  33  32  31                              0
 * +----------------+----------------+---+---+--------------------------------+
 * |   run offset   |   run pages    | u | s |         bitmap index           |
 * |   (15 bits)    |   (15 bits)    |   |   |          (32 bits)             |
 * +----------------+----------------+---+---+--------------------------------+
 *   run offset: first page of the run inside its chunk
 *   run pages:  length of the run in pages (never 0, so no valid handle is 0)
 *   u:          1 when the run is handed out (to a user, a thread cache or a subpage)
 *   s:          1 when the run is a subpage; the bitmap index then names one element
 * </pre>
 *
 * The layout is the one Netty's {@code PoolChunk} uses, so a reader who knows it finds the same fields.
 */
final class Handle {
    static final int BITMAP_INDEX_WIDTH = 32;
    static final int SUBPAGE_WIDTH = 1;
    static final int USED_WIDTH = 1;
    static final int RUN_PAGES_WIDTH = 15;
    static final int RUN_OFFSET_WIDTH = 15;

    static final int BITMAP_INDEX_SHIFT = 0;
    static final int SUBPAGE_SHIFT = BITMAP_INDEX_SHIFT + BITMAP_INDEX_WIDTH;
    static final int USED_SHIFT = SUBPAGE_SHIFT + SUBPAGE_WIDTH;
    static final int RUN_PAGES_SHIFT = USED_SHIFT + USED_WIDTH;
    static final int RUN_OFFSET_SHIFT = RUN_PAGES_SHIFT + RUN_PAGES_WIDTH;

    /** Largest value of the run offset and run pages fields. */
    static final int MAX_RUN_FIELD = (1 << RUN_PAGES_WIDTH) - 1;
    /** No handle: valid handles always have at least one page. */
    static final long NONE = 0L;

    private static final long BITMAP_INDEX_MASK = (1L << BITMAP_INDEX_WIDTH) - 1;
    private static final long RUN_FIELD_MASK = MAX_RUN_FIELD;

    static {
        assert RUN_OFFSET_SHIFT + RUN_OFFSET_WIDTH == Long.SIZE;
    }

    private Handle() {}

    /** A run of {@code runPages} pages starting at page {@code runOffset}. */
    static long run(int runOffset, int runPages, boolean used) {
        assert runOffset >= 0 && runOffset <= MAX_RUN_FIELD : runOffset;
        assert runPages > 0 && runPages <= MAX_RUN_FIELD : runPages;
        return (long) runOffset << RUN_OFFSET_SHIFT
                | (long) runPages << RUN_PAGES_SHIFT
                | (used ? 1L : 0L) << USED_SHIFT;
    }

    /** The run of a subpage, with no element selected. */
    static long subpageRun(int runOffset, int runPages) {
        return run(runOffset, runPages, true) | 1L << SUBPAGE_SHIFT;
    }

    /** Element {@code bitmapIndex} of the subpage whose run handle is {@code subpageRun}. */
    static long element(long subpageRun, int bitmapIndex) {
        assert isSubpage(subpageRun) && bitmapIndex >= 0;
        return subpageRun & ~BITMAP_INDEX_MASK | bitmapIndex;
    }

    static int runOffset(long handle) {
        return (int) (handle >>> RUN_OFFSET_SHIFT & RUN_FIELD_MASK);
    }

    static int runPages(long handle) {
        return (int) (handle >>> RUN_PAGES_SHIFT & RUN_FIELD_MASK);
    }

    static boolean isUsed(long handle) {
        return (handle >>> USED_SHIFT & 1L) != 0;
    }

    static boolean isSubpage(long handle) {
        return (handle >>> SUBPAGE_SHIFT & 1L) != 0;
    }

    static int bitmapIndex(long handle) {
        return (int) (handle & BITMAP_INDEX_MASK);
    }

    static String toString(long handle) {
        return "Handle[offset=" + runOffset(handle) + ", pages=" + runPages(handle)
                + ", used=" + isUsed(handle) + ", subpage=" + isSubpage(handle)
                + ", bitmapIndex=" + bitmapIndex(handle) + "]";
    }
}
