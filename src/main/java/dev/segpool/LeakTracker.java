package dev.segpool;

import java.lang.System.Logger.Level;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Records where sampled allocations and arenas were made (by {@link LeakDetection} level) and writes
 * leak reports to the {@code System.Logger} named {@code dev.segpool}.
 *
 * <p>Thread-safe: sites live in a concurrent map keyed by address; a free removes its entry.
 */
final class LeakTracker {
    /**
     * The logger, made on first use: finding the JDK's logging backend takes a noticeable part of a
     * JVM's first {@code SegmentPool.create()}, and most pools never log.
     */
    static System.Logger logger() {
        return Log.LOGGER;
    }

    private static final class Log {
        static final System.Logger LOGGER = System.getLogger("dev.segpool");
    }
    private static final int SAMPLE_ONE_IN = 128;
    private static final int SITES_IN_REPORT = 5;

    /** The stack of an allocation or arena creation; never thrown. */
    static final class AllocationSite extends Throwable {
        AllocationSite(String what) {
            super(what, null, false, true);
        }
    }

    final LeakDetection level;
    private final ConcurrentHashMap<Long, AllocationSite> sites = new ConcurrentHashMap<>();

    LeakTracker(LeakDetection level) {
        this.level = level;
    }

    boolean enabled() {
        return level != LeakDetection.OFF;
    }

    /** A site for a new allocation or arena, or null when this one is not sampled. */
    AllocationSite sample(String what) {
        if (level == LeakDetection.ALL
                || level == LeakDetection.SAMPLED && ThreadLocalRandom.current().nextInt(SAMPLE_ONE_IN) == 0) {
            return new AllocationSite(what);
        }
        return null;
    }

    void allocated(long address, long byteSize) {
        AllocationSite site = sample("segment of " + byteSize + " bytes at " + Errors.hex(address) + " allocated");
        if (site != null) {
            sites.put(address, site);
        }
    }

    void freed(long address) {
        sites.remove(address);
    }

    /** Sites of allocations not freed yet whose address passes {@code which}. */
    List<AllocationSite> liveSites(java.util.function.LongPredicate which) {
        return sites.entrySet().stream().filter(e -> which.test(e.getKey())).map(java.util.Map.Entry::getValue)
                .limit(SITES_IN_REPORT).toList();
    }

    /** Sites of allocations not freed yet, for the report at close. */
    List<AllocationSite> liveSites() {
        return sites.values().stream().limit(SITES_IN_REPORT).toList();
    }

    static void warn(String message, List<AllocationSite> sites) {
        if (!logger().isLoggable(Level.WARNING)) {
            return;
        }
        if (sites.isEmpty()) {
            logger().log(Level.WARNING, message);
            return;
        }
        StringBuilder text = new StringBuilder(message);
        for (AllocationSite site : sites) {
            text.append(System.lineSeparator()).append("  ").append(site.getMessage()).append(" at:");
            for (StackTraceElement frame : site.getStackTrace()) {
                text.append(System.lineSeparator()).append("    ").append(frame);
            }
        }
        logger().log(Level.WARNING, text.toString());
    }
}
