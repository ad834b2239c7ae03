package dev.segpool;

import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.LongSupplier;

/**
 * The {@link SegmentPool.Builder}: checks each setting as it is set, and the ones that depend on each
 * other in {@link #build()}. Not thread-safe, like any builder.
 */
final class PoolBuilder implements SegmentPool.Builder {
    static final int MIN_PAGE_SIZE = 4096;
    static final int MAX_PAGE_SIZE = 1 << 20;
    static final int MIN_CHUNK_PAGES = 8;
    static final int MAX_CHUNK_PAGES = 1 << 14;
    static final int MAX_CACHE_SIZE = 1 << 15;
    static final int MAX_ARENAS = 1024;
    private static final AtomicInteger POOL_IDS = new AtomicInteger();

    private String name;
    private int arenas;
    private int pageSize = 8192;
    private int chunkSize = 4 << 20;
    private int smallCacheSize = 256;
    private int normalCacheSize = 64;
    private int maxCachedSize = 32 * 1024;
    private int cacheTrimInterval = 8192;
    /** See {@link SegmentPool.Builder#maxCachedBytesPerThread}; chosen by measurement (docs/DESIGN.md). */
    static final long DEFAULT_MAX_CACHED_BYTES_PER_THREAD = 4 << 20;
    private long maxCachedBytesPerThread = DEFAULT_MAX_CACHED_BYTES_PER_THREAD;
    private long maxMemory = Long.MAX_VALUE;
    /** See {@link SegmentPool.Builder#decay}; chosen by measurement (docs/DESIGN.md). */
    static final Duration DEFAULT_DECAY = Duration.ofSeconds(1);
    private Duration decay = DEFAULT_DECAY;
    private boolean jmx;
    private boolean threadLocalCaches = true;
    private LeakDetection leakDetection;
    private LongSupplier ticker = System::nanoTime;
    private Decay.Scheduler scheduler = Decay.SHARED_SCHEDULER;

    @Override
    public PoolBuilder name(String name) {
        this.name = checkName(name);
        return this;
    }

    /** The rules for the names of pools and budgets (a pool's name goes into JMX object names). */
    static String checkName(String name) {
        Objects.requireNonNull(name, "name");
        if (name.isBlank() || name.length() > 200 || name.chars().anyMatch(c -> c == ',' || c == '=' || c == ':'
                || c == '"' || c == '*' || c == '?' || c == '\n')) {
            throw Errors.badSetting("name", '"' + name + '"',
                    "1 to 200 characters, not blank, without , = : \" * ? or newline");
        }
        return name;
    }

    @Override
    public PoolBuilder arenas(int arenas) {
        if (arenas < 1 || arenas > MAX_ARENAS) {
            throw Errors.badSetting("arenas", arenas, "between 1 and " + MAX_ARENAS);
        }
        this.arenas = arenas;
        return this;
    }

    @Override
    public PoolBuilder pageSize(int pageSize) {
        if (pageSize < MIN_PAGE_SIZE || pageSize > MAX_PAGE_SIZE || Integer.bitCount(pageSize) != 1) {
            throw Errors.badSetting("pageSize", pageSize,
                    "a power of two between " + MIN_PAGE_SIZE + " and " + MAX_PAGE_SIZE);
        }
        this.pageSize = pageSize;
        return this;
    }

    @Override
    public PoolBuilder chunkSize(int chunkSize) {
        if (chunkSize < MIN_PAGE_SIZE * MIN_CHUNK_PAGES || Integer.bitCount(chunkSize) != 1) {
            throw Errors.badSetting("chunkSize", chunkSize, "a power of two of at least "
                    + MIN_PAGE_SIZE * MIN_CHUNK_PAGES + " (8 to 16384 pages)");
        }
        this.chunkSize = chunkSize;
        return this;
    }

    @Override
    public PoolBuilder smallCacheSize(int entries) {
        this.smallCacheSize = checkCacheSize("smallCacheSize", entries);
        return this;
    }

    @Override
    public PoolBuilder normalCacheSize(int entries) {
        this.normalCacheSize = checkCacheSize("normalCacheSize", entries);
        return this;
    }

    @Override
    public PoolBuilder maxCachedSize(int bytes) {
        if (bytes < 0) {
            throw Errors.badSetting("maxCachedSize", bytes, "between 0 and chunkSize");
        }
        this.maxCachedSize = bytes;
        return this;
    }

    @Override
    public PoolBuilder cacheTrimInterval(int allocations) {
        if (allocations < 1) {
            throw Errors.badSetting("cacheTrimInterval", allocations, "at least 1");
        }
        this.cacheTrimInterval = allocations;
        return this;
    }

    @Override
    public PoolBuilder maxCachedBytesPerThread(long bytes) {
        if (bytes < 0) {
            throw Errors.badSetting("maxCachedBytesPerThread", bytes, "at least 0");
        }
        this.maxCachedBytesPerThread = bytes;
        return this;
    }

    @Override
    public PoolBuilder maxMemory(long bytes) {
        if (bytes < MIN_PAGE_SIZE * MIN_CHUNK_PAGES) {
            throw Errors.badSetting("maxMemory", bytes, "at least one chunk (chunkSize bytes)");
        }
        this.maxMemory = bytes;
        return this;
    }

    @Override
    public PoolBuilder decay(Duration decay) {
        Objects.requireNonNull(decay, "decay");
        if (decay.isNegative() || decay.compareTo(Duration.ofDays(1)) > 0) {
            throw Errors.badSetting("decay", decay, "between 0 and 1 day");
        }
        this.decay = decay;
        return this;
    }

    @Override
    public PoolBuilder jmx(boolean jmx) {
        this.jmx = jmx;
        return this;
    }

    @Override
    public PoolBuilder threadLocalCaches(boolean enabled) {
        this.threadLocalCaches = enabled;
        return this;
    }

    @Override
    public PoolBuilder leakDetection(LeakDetection level) {
        this.leakDetection = Objects.requireNonNull(level, "leakDetection");
        return this;
    }

    /** The decay's time source, in nanoseconds; for tests that advance time by hand. */
    PoolBuilder ticker(LongSupplier ticker) {
        this.ticker = Objects.requireNonNull(ticker, "ticker");
        return this;
    }

    /** What runs the decay task; for tests that run its ticks by hand. */
    PoolBuilder scheduler(Decay.Scheduler scheduler) {
        this.scheduler = Objects.requireNonNull(scheduler, "scheduler");
        return this;
    }

    @Override
    public SegmentPool build() {
        return new SegmentPool(settings());
    }

    PoolSettings settings() {
        int pages = chunkSize / pageSize;
        if (chunkSize < pageSize || pages < MIN_CHUNK_PAGES || pages > MAX_CHUNK_PAGES) {
            throw Errors.badSetting("chunkSize", chunkSize, "between " + MIN_CHUNK_PAGES + " and "
                    + MAX_CHUNK_PAGES + " pages of pageSize " + pageSize + " ("
                    + (long) pageSize * MIN_CHUNK_PAGES + " to " + (long) pageSize * MAX_CHUNK_PAGES + " bytes)");
        }
        if (maxCachedSize > chunkSize) {
            throw Errors.badSetting("maxCachedSize", maxCachedSize, "between 0 and chunkSize " + chunkSize);
        }
        if (maxMemory < chunkSize) {
            throw Errors.badSetting("maxMemory", maxMemory, "at least one chunk (chunkSize " + chunkSize + ")");
        }
        return new PoolSettings(name != null ? name : "segpool-" + POOL_IDS.incrementAndGet(),
                arenas > 0 ? arenas : defaultArenas(maxMemory, chunkSize), pageSize, chunkSize, smallCacheSize,
                normalCacheSize, maxCachedSize, cacheTrimInterval, maxCachedBytesPerThread, maxMemory, decay, jmx,
                threadLocalCaches,
                leakDetection != null ? leakDetection : LeakDetection.fromSystemProperty(), ticker, scheduler);
    }

    /** Two arenas per processor, but no more than a memory limit can give a chunk and some room each. */
    static int defaultArenas(long maxMemory, int chunkSize) {
        long byLimit = Math.max(1, maxMemory / chunkSize / 3);
        return (int) Math.min(2L * Runtime.getRuntime().availableProcessors(), byLimit);
    }

    private static int checkCacheSize(String setting, int entries) {
        if (entries < 0 || entries > MAX_CACHE_SIZE) {
            throw Errors.badSetting(setting, entries, "between 0 and " + MAX_CACHE_SIZE);
        }
        return entries;
    }
}
