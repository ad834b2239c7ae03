package dev.segpool;

/**
 * How much a pool records to explain its leaks. Leaks are always counted and reported (segments
 * never freed when the pool closes, arenas that become unreachable without {@code close()}); the level
 * decides whether the report also says where the leaked memory was allocated.
 *
 * <p>Set per pool with {@link SegmentPool.Builder#leakDetection}; the default comes from the system
 * property {@code segpool.leakDetection} ({@code off}, {@code sampled} or {@code all}), else
 * {@link #OFF}. Recording a stack costs microseconds: use {@link #ALL} while hunting a leak, not in
 * production.
 */
public enum LeakDetection {
    /** No allocation sites are recorded. */
    OFF,
    /** About one allocation (and one arena) in 128 records its stack. */
    SAMPLED,
    /** Every allocation and every arena records its stack. */
    ALL;

    static LeakDetection fromSystemProperty() {
        String value = System.getProperty("segpool.leakDetection", "off").trim();
        for (LeakDetection level : values()) {
            if (level.name().equalsIgnoreCase(value)) {
                return level;
            }
        }
        throw Errors.badSetting("system property segpool.leakDetection", value, "one of off, sampled, all");
    }
}
