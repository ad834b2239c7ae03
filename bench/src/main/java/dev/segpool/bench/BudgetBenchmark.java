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
 * What a {@code MemoryBudget} adds to an allocate/free pair: {@link PairBenchmark}'s pair on the default
 * pool ({@code segpool}), through a top-level budget ({@code segpool-budget}) and through a child of
 * one ({@code segpool-budget2}, two levels charged), limits that never bind. The three run in one JMH
 * run (a fork each), so the ratio budget/pool comes from numbers measured side by side.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class BudgetBenchmark {
    @Param({"segpool", "segpool-budget", "segpool-budget2"})
    String peer;

    @Param({"64", "256", "4096", "16384"})
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
