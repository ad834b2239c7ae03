package dev.segpool.bench;

import dev.segpool.SegmentPool;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/** Allocate, then free at once: the cost of one pair on the thread-cache path and on the arena path. */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class PairBenchmark {
    @Param({"64", "4096", "65536"})
    long size;

    private SegmentPool cached;
    private SegmentPool uncached;

    @Setup(Level.Trial)
    public void setUp() {
        cached = SegmentPool.create();
        uncached = SegmentPool.builder().threadLocalCaches(false).build();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        cached.close();
        uncached.close();
    }

    @Benchmark
    public long segpoolCache() {
        MemorySegment s = cached.allocate(size);
        cached.free(s);
        return s.address();
    }

    @Benchmark
    public long segpoolArena() {
        MemorySegment s = uncached.allocate(size);
        uncached.free(s);
        return s.address();
    }
}
