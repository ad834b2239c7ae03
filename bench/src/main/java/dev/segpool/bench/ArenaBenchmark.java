package dev.segpool.bench;

import dev.segpool.SegmentPool;
import java.lang.foreign.Arena;
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
 * Open an arena, make a few small allocations (32, 64, 128 and 256 bytes, the shape of a downcall's
 * temporaries), close it: segpool's pooled arenas beside the JDK's own. Both zero what they hand out.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class ArenaBenchmark {
    /** {@code confined}: newArena() against Arena.ofConfined(); {@code shared}: newSharedArena() against Arena.ofShared(). */
    @Param({"confined", "shared"})
    String kind;

    private SegmentPool pool;
    private boolean shared;

    @Setup(Level.Trial)
    public void setUp() {
        pool = SegmentPool.create();
        shared = kind.equals("shared");
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
    }

    private static long fewAllocations(Arena arena) {
        long addresses = arena.allocate(32).address();
        addresses ^= arena.allocate(64).address();
        addresses ^= arena.allocate(128).address();
        addresses ^= arena.allocate(256).address();
        return addresses;
    }

    @Benchmark
    public long segpool() {
        try (Arena arena = shared ? pool.newSharedArena() : pool.newArena()) {
            return fewAllocations(arena);
        }
    }

    @Benchmark
    public long jdk() {
        try (Arena arena = shared ? Arena.ofShared() : Arena.ofConfined()) {
            return fewAllocations(arena);
        }
    }
}
