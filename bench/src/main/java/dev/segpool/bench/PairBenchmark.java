package dev.segpool.bench;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * Allocate, then free at once, on one thread: the cost of one pair for segpool's thread-cache path, its
 * arena path ({@code segpool-arena}) and every peer, over the same sizes. Each (peer, size) runs in a
 * fork of its own, so no peer's profile pollutes another's.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class PairBenchmark {
    @Param({"segpool", "segpool-mixed", "segpool-arena", "netty-pooled", "netty-adaptive", "jdk-arena", "malloc", "malloc-segment"})
    String peer;

    @Param({"16", "64", "256", "1024", "4096", "16384", "32768", "65536", "1048576"})
    int size;

    private Peer allocator;

    @Setup(Level.Trial)
    public void setUp() {
        allocator = Peer.of(peer);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        allocator.close();
    }

    @Benchmark
    public long pair() {
        return allocator.pair(size);
    }
}
