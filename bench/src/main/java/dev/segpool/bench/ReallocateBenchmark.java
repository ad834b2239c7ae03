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
 * A growing buffer: allocate {@value #FROM} bytes, then double it up to {@value #TO} (1 MiB; 14
 * resizes), writing one byte at the new end after each step, then free it. One operation is the whole
 * sequence. Peers resize their own way: {@code segpool} with {@code pool.reallocate},
 * {@code segpool-budget} with {@code budget.reallocate}, {@code malloc} and {@code malloc-segment} with
 * libc {@code realloc} (the latter rewrapping each result as a segment), {@code netty-pooled} and
 * {@code netty-adaptive} with {@code ByteBuf.capacity(int)} on a direct buffer whose maximum capacity
 * is 1 MiB.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class ReallocateBenchmark {
    static final int FROM = 64;
    static final int TO = 1 << 20;

    @Param({"segpool", "segpool-budget", "malloc", "malloc-segment", "netty-pooled", "netty-adaptive"})
    String peer;

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
    public long grow() {
        return allocator.grow(FROM, TO);
    }
}
