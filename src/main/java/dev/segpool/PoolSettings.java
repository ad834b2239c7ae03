package dev.segpool;

import java.time.Duration;
import java.util.function.LongSupplier;

/**
 * The checked settings of a pool, as {@link PoolBuilder#build()} resolved them (defaults filled in,
 * the settings that depend on each other checked). {@code ticker} and {@code scheduler} are the
 * decay's time and timer, replaced by tests that advance time by hand.
 */
record PoolSettings(String name, int arenas, int pageSize, int chunkSize, int smallCacheSize, int normalCacheSize,
                    int maxCachedSize, int cacheTrimInterval, long maxCachedBytesPerThread, long maxMemory,
                    Duration decay, boolean jmx,
                    boolean threadLocalCaches, LeakDetection leakDetection, LongSupplier ticker,
                    Decay.Scheduler scheduler) {

    PoolThreadCache.CacheConfig cacheConfig() {
        return new PoolThreadCache.CacheConfig(smallCacheSize, normalCacheSize, maxCachedSize, cacheTrimInterval,
                maxCachedBytesPerThread);
    }
}
