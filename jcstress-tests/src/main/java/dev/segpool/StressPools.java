package dev.segpool;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.CountDownLatch;

/**
 * Small pools and checks shared by the JCStress races. JCStress creates many states at once, so each
 * state's pool is tiny (4 KiB pages, 32 KiB chunks, one arena, small caches) and every arbiter closes
 * its pool.
 */
final class StressPools {
    static final int PAGE_SIZE = 4096;
    static final int CHUNK_SIZE = 32768;
    /** A small class: 64 elements in a one-page subpage. */
    static final int SMALL = 64;
    /** The smallest normal class with these settings: a run of 4 pages. */
    static final int RUN = 4 * PAGE_SIZE;

    private StressPools() {}

    /** One arena, no thread-local caches (only scoped caches or caches the test attaches), small stacks. */
    static SegmentPool.Builder tiny() {
        return SegmentPool.builder().pageSize(PAGE_SIZE).chunkSize(CHUNK_SIZE).arenas(1)
                .threadLocalCaches(false).smallCacheSize(8).normalCacheSize(4);
    }

    /** Writes {@code pattern} into every byte. */
    static MemorySegment fill(MemorySegment segment, byte pattern) {
        return segment.fill(pattern);
    }

    /** True when every byte still holds {@code pattern}. */
    static boolean holds(MemorySegment segment, byte pattern) {
        for (long i = 0; i < segment.byteSize(); i++) {
            if (segment.get(ValueLayout.JAVA_BYTE, i) != pattern) {
                return false;
            }
        }
        return true;
    }

    /** Byte offset of a segment inside its chunk (chunks are aligned to their size). */
    static long offsetInChunk(MemorySegment segment, int chunkSize) {
        return segment.address() & (chunkSize - 1);
    }

    /** Base address of the chunk that holds a segment. */
    static long chunkOf(MemorySegment segment, int chunkSize) {
        return segment.address() & -chunkSize;
    }

    /** Index of a small element in the first subpage of a fresh chunk (its run starts at page 0). */
    static int elementIndex(MemorySegment segment, int elementSize) {
        return (int) (offsetInChunk(segment, CHUNK_SIZE) / elementSize);
    }

    /** True when no byte lies in both segments. */
    static boolean disjoint(MemorySegment a, MemorySegment b) {
        long aEnd = a.address() + Math.max(1, a.byteSize());
        long bEnd = b.address() + Math.max(1, b.byteSize());
        return aEnd <= b.address() || bEnd <= a.address();
    }

    /** Element metrics of the small class of {@code elementSize} bytes in arena 0, or null. */
    static PoolMetrics.SizeClassMetrics smallClass(PoolMetrics metrics, int elementSize) {
        for (PoolMetrics.SizeClassMetrics c : metrics.arenas().get(0).sizeClasses()) {
            if (c.elementSize() == elementSize) {
                return c;
            }
        }
        return null;
    }

    /** Elements of one small class handed out by arena 0 (to users or caches). */
    static long usedElements(SegmentPool pool, int elementSize) {
        PoolMetrics.SizeClassMetrics c = smallClass(pool.metrics(), elementSize);
        return c == null ? 0 : c.usedElements();
    }

    /** Every arena's chunks agree with their free-run queues and sit in the right list. */
    static boolean consistent(SegmentPool pool) {
        for (PoolArena arena : pool.arenas()) {
            if (!arena.checkConsistency()) {
                return false;
            }
        }
        return true;
    }

    /** Sum of the arenas' bound-cache counts. */
    static int boundCaches(SegmentPool pool) {
        int sum = 0;
        for (PoolArena arena : pool.arenas()) {
            sum += arena.boundCaches.get();
        }
        return sum;
    }

    /** Index of the arena whose chunks hold {@code segment}, or -1. */
    static int arenaOf(SegmentPool pool, MemorySegment segment) {
        PoolArena[] arenas = pool.arenas();
        for (PoolArena arena : arenas) {
            Integer found = arena.locked(() -> {
                for (PoolChunkList list : arena.lists) {
                    for (PoolChunk chunk = list.head(); chunk != null; chunk = chunk.next) {
                        if (segment.address() - chunk.base >= 0 && segment.address() - chunk.base < chunk.segment.byteSize()) {
                            return arena.index;
                        }
                    }
                }
                return null;
            });
            if (found != null) {
                return found;
            }
        }
        return -1;
    }

    /** Frees {@code segment}; 1 when the pool took it, 0 when it rejected it as a bad free. */
    static int tryFree(SegmentPool pool, MemorySegment segment) {
        try {
            pool.free(segment);
            return 1;
        } catch (IllegalArgumentException e) {
            return 0;
        }
    }

    /**
     * Runs {@code task} on a new virtual thread and returns what it returned: virtual threads have no
     * thread-local cache, so their allocations and frees go through the pool's shared stripes.
     */
    static <T> T onVirtualThread(java.util.function.Supplier<T> task) {
        Object[] result = new Object[1];
        joinQuietly(Thread.ofVirtual().start(() -> result[0] = task.get()));
        @SuppressWarnings("unchecked")
        T value = (T) result[0];
        return value;
    }

    /** 1 for true, 0 for false: outcomes print as numbers. */
    static int bit(boolean b) {
        return b ? 1 : 0;
    }

    /** Waits for the latch, keeping an interrupt for later. */
    static void awaitQuietly(CountDownLatch latch) {
        waitQuietly(latch::await);
    }

    /** Waits for the thread to end, keeping an interrupt for later. */
    static void joinQuietly(Thread t) {
        waitQuietly(t::join);
    }

    /** A wait that an interrupt can cut short. */
    private interface Wait {
        void run() throws InterruptedException;
    }

    /** Runs {@code wait} to its end, however often it is interrupted, and keeps the interrupt for later. */
    private static void waitQuietly(Wait wait) {
        boolean interrupted = false;
        while (true) {
            try {
                wait.run();
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
    }
}
