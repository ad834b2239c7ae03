package dev.segpool;

import java.util.Arrays;

/**
 * The size classes of a pool: four classes per doubling from 16 bytes (16, 32, 48, 64, 80, 96, 112,
 * 128, 160, ...) up to the chunk size, and the one table every caller uses to map a request to its
 * class.
 *
 * <p>Classes below {@code 4 * pageSize} are <em>small</em>: they come from {@link PoolSubpage}s. The
 * others are <em>normal</em>: runs of whole pages in a {@link PoolChunk}. With 8 KiB pages and 4 MiB
 * chunks there are 68 classes; 39 are small (the last is 28 KiB) and normal ones run from 32 KiB to
 * 4 MiB.
 *
 * <p>Runs of pages are kept in a second, coarser set of classes: the class sizes that are whole
 * multiples of the page size (1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, ... pages). A free run sits
 * in the band of the largest such class that it covers; a request searches from the band that holds
 * its length. A run of a class that thread caches may hold is as long as its class; a run above
 * {@code maxCachedSize} is cut to the whole pages its request needs ({@link #runPagesFor}), so a
 * 600 KiB block takes 75 pages, not the 80 of its 640 KiB class.
 *
 * <p>Immutable; safe to share.
 */
final class SizeClasses {
    static final int LOG2_QUANTUM = 4;
    /** Smallest class, and the alignment every class honours. */
    static final int QUANTUM = 1 << LOG2_QUANTUM;
    static final int LOG2_CLASSES_PER_DOUBLING = 2;
    /** Requests up to this size resolve through one table load (2 KiB per pool); thread caches' fast path serves up to it. */
    static final int LOOKUP_MAX_SIZE = 32 * 1024;
    /** Index of the first class above the quantum-spaced ones (16, 32, 48, 64). */
    private static final int LOG2_FIRST_GROUP = LOG2_QUANTUM + LOG2_CLASSES_PER_DOUBLING;

    final int pageSize;
    final int pageShifts;
    final int chunkSize;
    final int chunkPages;
    /** Number of small (subpage) classes; small class indices are {@code [0, smallClasses)}. */
    final int smallClasses;

    private final int[] classSize;
    private final byte[] lookup;
    private final int[] subpageRunPages;
    private final int[] subpageElements;
    private final int[] runClassPages;
    private final int[] runClassFloor;
    private final int[] runClassCeiling;

    SizeClasses(int pageSize, int chunkSize) {
        assert Integer.bitCount(pageSize) == 1 && Integer.bitCount(chunkSize) == 1 && chunkSize >= 8 * pageSize;
        this.pageSize = pageSize;
        this.pageShifts = Integer.numberOfTrailingZeros(pageSize);
        this.chunkSize = chunkSize;
        this.chunkPages = chunkSize >>> pageShifts;

        int[] sizes = new int[128];
        int n = 0;
        for (int size = QUANTUM; size <= 1 << LOG2_FIRST_GROUP; size += QUANTUM) {
            sizes[n++] = size;
        }
        for (int log2Group = LOG2_FIRST_GROUP; (1L << log2Group) < chunkSize; log2Group++) {
            int delta = 1 << (log2Group - LOG2_CLASSES_PER_DOUBLING);
            for (int j = 1; j <= 1 << LOG2_CLASSES_PER_DOUBLING; j++) {
                sizes[n++] = (1 << log2Group) + j * delta;
            }
        }
        this.classSize = Arrays.copyOf(sizes, n);
        assert classSize[n - 1] == chunkSize;

        int smallLimit = pageSize << LOG2_CLASSES_PER_DOUBLING;
        int small = 0;
        while (classSize[small] < smallLimit) {
            small++;
        }
        this.smallClasses = small;

        // lookup[i]: the class of sizes ((i - 1) * 16, i * 16], so of i * 16 (class sizes are multiples of 16)
        this.lookup = new byte[(Math.min(LOOKUP_MAX_SIZE, chunkSize) >>> LOG2_QUANTUM) + 1];
        for (int i = 1; i < lookup.length; i++) {
            lookup[i] = (byte) computeIndex((long) i << LOG2_QUANTUM);
        }

        int maxElements = pageSize >>> LOG2_QUANTUM;
        this.subpageRunPages = new int[small];
        this.subpageElements = new int[small];
        for (int i = 0; i < small; i++) {
            int elementSize = classSize[i];
            int pages = 0;
            int elements;
            do {
                pages++;
                elements = pages * pageSize / elementSize;
            } while (elements < maxElements && pages * pageSize % elementSize != 0);
            subpageRunPages[i] = pages;
            subpageElements[i] = Math.min(elements, maxElements);
        }

        int[] runPages = new int[n];
        int runClasses = 0;
        for (int size : classSize) {
            if (size % pageSize == 0) {
                runPages[runClasses++] = size >>> pageShifts;
            }
        }
        this.runClassPages = Arrays.copyOf(runPages, runClasses);
        this.runClassFloor = new int[chunkPages + 1];
        this.runClassCeiling = new int[chunkPages + 1];
        for (int pages = 1, floor = 0, ceiling = 0; pages <= chunkPages; pages++) {
            while (floor + 1 < runClasses && runClassPages[floor + 1] <= pages) {
                floor++;
            }
            while (runClassPages[ceiling] < pages) {
                ceiling++;
            }
            runClassFloor[pages] = floor;
            runClassCeiling[pages] = ceiling;
        }
    }

    /** Number of classes. */
    int classes() {
        return classSize.length;
    }

    /** Size in bytes of class {@code index}. */
    int size(int index) {
        return classSize[index];
    }

    boolean isSmall(int index) {
        return index < smallClasses;
    }

    /**
     * The smallest class that holds {@code size} bytes, for {@code 0 <= size <= chunkSize}. Size 0
     * maps to the smallest class so that every allocation has an address of its own.
     */
    int sizeIndex(long size) {
        return size <= LOOKUP_MAX_SIZE ? lookupIndex(size) : computeIndex(size);
    }

    /** {@link #sizeIndex} for {@code 0 <= size <= min(LOOKUP_MAX_SIZE, chunkSize)}: one table load. */
    int lookupIndex(long size) {
        return lookup[(int) (size + QUANTUM - 1) >>> LOG2_QUANTUM];
    }

    /**
     * The smallest class that holds {@code size} bytes at an address aligned to {@code alignment}
     * (a power of two above {@link #QUANTUM}), or -1 when no pooled class can (the request is huge).
     * Up to the page size, an element is aligned to its class size's largest power-of-two divisor, so
     * the class must be a multiple of the alignment. Above the page size only a run can be aligned
     * (see {@link #alignmentPages}).
     */
    int sizeIndex(long size, long alignment) {
        if (alignment > pageSize) {
            if (alignment > chunkSize || size > chunkSize) {
                return -1;
            }
            int index = Math.max(sizeIndex(size), smallClasses);
            long worstCaseSpan = (long) runPages(index) + (alignment >>> pageShifts) - 1;
            return worstCaseSpan <= chunkPages ? index : -1;
        }
        long atLeast = Math.max(size, alignment);
        if (atLeast > chunkSize) {
            return -1;
        }
        int index = sizeIndex(atLeast);
        while ((classSize[index] & (alignment - 1)) != 0) {
            index++;
        }
        return index;
    }

    /** Pages to which a run must be aligned to honour {@code alignment}; 1 up to the page size. */
    int alignmentPages(long alignment) {
        return alignment > pageSize ? (int) (alignment >>> pageShifts) : 1;
    }

    /** Pages of a normal class's run. */
    int runPages(int index) {
        assert !isSmall(index);
        return classSize[index] >>> pageShifts;
    }

    /**
     * Pages of a run for a request of {@code byteSize} bytes in normal class {@code index} that is cut
     * to whole pages rather than to its class: the pages {@code byteSize} needs, at least those of the
     * smallest normal class. Its class, {@link #runSizeIndex} of those pages, is still {@code index}:
     * the pages lie between the previous class's size and this one's.
     */
    int runPagesFor(int index, long byteSize) {
        int pages = Math.min(runPages(index),
                Math.max((int) ((byteSize + pageSize - 1) >>> pageShifts), runPages(smallClasses)));
        assert runSizeIndex(pages) == index : byteSize + " B in class " + index;
        return pages;
    }

    /** The normal class of a run of {@code pages} pages handed out whole. */
    int runSizeIndex(int pages) {
        return sizeIndex((long) pages << pageShifts);
    }

    /** Pages of the run that backs one subpage of small class {@code index}. */
    int subpageRunPages(int index) {
        return subpageRunPages[index];
    }

    /** Elements in one subpage of small class {@code index}. */
    int subpageElements(int index) {
        return subpageElements[index];
    }

    /** Number of run classes (queues of free runs per chunk). */
    int runClasses() {
        return runClassPages.length;
    }

    /** The run class whose queue holds a free run of {@code pages} pages. */
    int runClassFloor(int pages) {
        return runClassFloor[pages];
    }

    /** The first run class whose free runs all hold at least {@code pages} pages. */
    int runClassCeiling(int pages) {
        return runClassCeiling[pages];
    }

    /** For size > 64: {@code size - 1} lies in {@code [2^k, 2^(k+1))}; four classes split that range. */
    private static int computeIndex(long size) {
        if (size <= 1 << LOG2_FIRST_GROUP) {
            return (int) (size - 1) >>> LOG2_QUANTUM;
        }
        int log2Group = 63 - Long.numberOfLeadingZeros(size - 1);
        int inGroup = (int) ((size - 1 - (1L << log2Group)) >>> (log2Group - LOG2_CLASSES_PER_DOUBLING));
        return (1 << LOG2_CLASSES_PER_DOUBLING) * (log2Group - LOG2_FIRST_GROUP + 1) + inGroup;
    }
}
