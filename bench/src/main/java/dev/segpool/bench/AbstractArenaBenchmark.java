package dev.segpool.bench;

import dev.segpool.SegmentPool;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
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

/**
 * Segpool's pooled arenas beside the JDK's own, both zeroing what they hand out: {@code segpool} and
 * {@code jdk} open an arena, make a few small allocations (32, 64, 128 and 256 bytes, the shape of a
 * downcall's temporaries) and close it; {@code segpool64} and {@code jdk64} open one, allocate 64 bytes,
 * write and read a long in them, and close it.
 *
 * <p>The methods run in two classes that differ only in their forks' flags: {@link ArenaBenchmark} with
 * native access granted, so pooled arenas bind their segments to a scope that closing ends, and
 * {@link ArenaNoNativeAccessBenchmark} without it, where they stay plain slices of their chunk. Each
 * checks, at set-up, that its fork is in the mode it claims. This class has no {@code @Fork}: JMH
 * merges {@code @Fork} attributes along the class hierarchy, so a flag put here would reach both.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public abstract class AbstractArenaBenchmark {
    /** {@code confined}: newArena() against Arena.ofConfined(); {@code shared}: newSharedArena() against Arena.ofShared(). */
    @Param({"confined", "shared"})
    String kind;

    private SegmentPool pool;
    private boolean shared;

    /** Whether this class's forks have native access; checked against the JVM at set-up. */
    abstract boolean nativeAccess();

    @Setup(Level.Trial)
    public void setUp() {
        boolean granted = SegmentPool.class.getModule().isNativeAccessEnabled();
        if (granted != nativeAccess()) {
            throw new IllegalStateException("this benchmark expects native access "
                    + (nativeAccess() ? "granted" : "not granted") + ", but its fork has it "
                    + (granted ? "granted" : "not granted") + " (check -jvmArgs/-jvmArgsAppend)");
        }
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

    /** 64 bytes, used once: the access goes through the segment's scope check, as a user's would. */
    private static long oneAllocation(Arena arena) {
        MemorySegment segment = arena.allocate(64);
        segment.set(ValueLayout.JAVA_LONG, 0, segment.address());
        return segment.get(ValueLayout.JAVA_LONG, 0);
    }

    private Arena segpoolArena() {
        return shared ? pool.newSharedArena() : pool.newArena();
    }

    private Arena jdkArena() {
        return shared ? Arena.ofShared() : Arena.ofConfined();
    }

    @Benchmark
    public long segpool() {
        try (Arena arena = segpoolArena()) {
            return fewAllocations(arena);
        }
    }

    @Benchmark
    public long jdk() {
        try (Arena arena = jdkArena()) {
            return fewAllocations(arena);
        }
    }

    @Benchmark
    public long segpool64() {
        try (Arena arena = segpoolArena()) {
            return oneAllocation(arena);
        }
    }

    @Benchmark
    public long jdk64() {
        try (Arena arena = jdkArena()) {
            return oneAllocation(arena);
        }
    }
}
