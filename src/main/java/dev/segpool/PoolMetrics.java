package dev.segpool;

import java.util.List;

/**
 * A snapshot of a pool's memory and activity, from {@link SegmentPool#metrics()}.
 *
 * <p>Each arena is read with all of its locks held, so its figures agree with each other; arenas are
 * read one after another, and thread-cache figures are read without stopping their threads. When no
 * thread is allocating or freeing, every snapshot satisfies
 * {@code reservedBytes == activeBytes + cachedBytes + freeBytes}.
 *
 * @param name            the pool's name
 * @param reservedBytes   native memory the pool holds: its chunks and its huge allocations
 * @param activeBytes     memory handed out and not yet freed, counted at the size set aside for each
 *                        allocation: its size class; for a class above {@code maxCachedSize}, the
 *                        whole pages it needs; for a huge allocation, its exact size. Thread caches
 *                        excluded
 * @param cachedBytes     memory parked in thread caches
 * @param freeBytes       free memory inside chunks (free runs and free subpage elements)
 * @param threadCaches    live thread caches
 * @param chunks          chunks the pool holds
 * @param hugeBytes       bytes of live huge allocations (above the chunk size), included in both
 *                        {@code reservedBytes} and {@code activeBytes}
 * @param hugeAllocations huge allocations made so far
 * @param hugeDeallocations huge allocations freed so far
 * @param cacheHits       allocations served by a thread cache without taking a lock
 * @param cacheMisses     allocations a thread cache had to refill from its arena first
 * @param openArenas      pooled {@link java.lang.foreign.Arena}s opened and not closed yet
 * @param nativeAccess    whether the pool has native access: its arenas' segments are then bound to
 *                        their arena's scope (otherwise they stay valid slices of their chunk until the
 *                        pool closes, and free memory goes back to the OS a whole chunk at a time)
 * @param arenas          one entry per arena
 */
public record PoolMetrics(String name, long reservedBytes, long activeBytes, long cachedBytes, long freeBytes,
                          int threadCaches, int chunks, long hugeBytes, long hugeAllocations,
                          long hugeDeallocations, long cacheHits, long cacheMisses, int openArenas,
                          boolean nativeAccess, List<ArenaMetrics> arenas) {

    /**
     * One arena.
     *
     * @param index               position of the arena in the pool
     * @param threadCaches        thread caches bound to it
     * @param usedBytes           bytes handed out from it (to users or thread caches)
     * @param freeBytes           free bytes inside its chunks
     * @param smallAllocations    subpage elements handed out (to users or thread caches)
     * @param smallDeallocations  subpage elements given back
     * @param normalAllocations   runs handed out
     * @param normalDeallocations runs given back
     * @param chunkLists          its chunk lists, by usage band
     * @param sizeClasses         its small size classes that have subpages or had allocations
     */
    public record ArenaMetrics(int index, int threadCaches, long usedBytes, long freeBytes, long smallAllocations,
                               long smallDeallocations, long normalAllocations, long normalDeallocations,
                               List<ChunkListMetrics> chunkLists, List<SizeClassMetrics> sizeClasses) {
        /** {@return the number of chunks in this arena} */
        public int chunks() {
            return chunkLists.stream().mapToInt(list -> list.chunkUsages().size()).sum();
        }
    }

    /**
     * One chunk list of an arena.
     *
     * @param name        {@code empty}, {@code qInit}, {@code q000}, {@code q025}, {@code q050},
     *                    {@code q075} or {@code q100}
     * @param minUsage    lowest usage (percent) of the band
     * @param maxUsage    usage (percent) at which a chunk moves up
     * @param chunkUsages usage in percent of each chunk in the list
     */
    public record ChunkListMetrics(String name, int minUsage, int maxUsage, List<Integer> chunkUsages) {}

    /**
     * One small size class of an arena.
     *
     * @param elementSize  the class size in bytes
     * @param subpages     subpages of the class
     * @param usedElements elements handed out (to users or thread caches)
     * @param freeElements free elements in its subpages
     * @param allocations  elements handed out so far
     * @param deallocations elements given back so far
     */
    public record SizeClassMetrics(int elementSize, int subpages, long usedElements, long freeElements,
                                   long allocations, long deallocations) {}
}
