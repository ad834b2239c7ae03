package dev.segpool;

/**
 * The management interface of a {@link SegmentPool} built with {@code jmx(true)}, registered as
 * {@code dev.segpool:type=SegmentPool,name=<name>} in the platform MBean server and unregistered when
 * the pool closes. Every attribute reads a fresh {@link SegmentPool#metrics()} snapshot.
 */
public interface SegmentPoolMXBean {
    /** {@return the pool's name} */
    String getName();

    /** {@return the bytes of native memory the pool holds: chunks and huge allocations} */
    long getReservedBytes();

    /**
     * {@return the bytes handed out and not yet freed, at the size set aside for each (its size class, or
     * its whole pages above {@code maxCachedSize}); thread caches excluded}
     */
    long getActiveBytes();

    /** {@return the bytes parked in thread caches} */
    long getCachedBytes();

    /** {@return the bytes free inside the pool's chunks} */
    long getFreeBytes();

    /** {@return the number of live thread caches} */
    int getThreadCaches();

    /** {@return the number of chunks the pool holds} */
    int getChunks();

    /** {@return the bytes of live huge allocations} */
    long getHugeBytes();

    /** {@return the number of allocations served by a thread cache} */
    long getCacheHits();

    /** {@return the number of allocations for which a thread cache refilled from its arena} */
    long getCacheMisses();

    /** {@return the number of pooled arenas open} */
    int getOpenArenas();

    /** {@return the limit on reserved bytes, or -1 when there is none} */
    long getMaxMemory();

    /**
     * Gives unused memory back to the operating system now.
     *
     * @return the bytes released
     */
    long trim();

    /** {@return the report of {@link SegmentPool#dumpStats()}} */
    String dumpStats();
}
