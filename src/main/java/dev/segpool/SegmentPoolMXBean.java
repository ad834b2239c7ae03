package dev.segpool;

/**
 * The management interface of a {@link SegmentPool} built with {@code jmx(true)}, registered as
 * {@code dev.segpool:type=SegmentPool,name=<name>} in the platform MBean server and unregistered when
 * the pool closes. Every attribute reads a fresh {@link SegmentPool#metrics()} snapshot.
 */
public interface SegmentPoolMXBean {
    /** The pool's name. */
    String getName();

    /** Native memory the pool holds: chunks and huge allocations. */
    long getReservedBytes();

    /** Memory handed out and not yet freed, at size-class size; thread caches excluded. */
    long getActiveBytes();

    /** Memory parked in thread caches. */
    long getCachedBytes();

    /** Free memory inside the pool's chunks. */
    long getFreeBytes();

    /** Live thread caches. */
    int getThreadCaches();

    /** Chunks the pool holds. */
    int getChunks();

    /** Bytes of live huge allocations. */
    long getHugeBytes();

    /** Allocations served by a thread cache. */
    long getCacheHits();

    /** Allocations for which a thread cache refilled from its arena. */
    long getCacheMisses();

    /** Pooled arenas open. */
    int getOpenArenas();

    /** The limit on reserved bytes, or -1 when there is none. */
    long getMaxMemory();

    /** Gives unused memory back to the operating system now; returns the bytes released. */
    long trim();

    /** The report of {@link SegmentPool#dumpStats()}. */
    String dumpStats();
}
