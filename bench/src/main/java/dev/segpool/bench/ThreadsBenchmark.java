package dev.segpool.bench;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Group;
import org.openjdk.jmh.annotations.GroupThreads;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.infra.Control;
import org.openjdk.jmh.infra.ThreadParams;

/**
 * Two threads on one allocator. {@code pair2} and {@code churn2} are {@link PairBenchmark} and
 * {@link ChurnBenchmark} on two threads (each thread has its own live set); the score is the time per
 * operation of one thread, so scaling from one thread is {@code 2 * t(1 thread) / t(2 threads)}.
 * {@code handOff} is a producer/consumer pair where every buffer is freed on the other thread; its score
 * per method is the time per buffer seen by that thread.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class ThreadsBenchmark {

    @State(Scope.Benchmark)
    public static class Shared {
        @Param({"segpool", "segpool-arena", "netty-pooled", "netty-adaptive", "jdk-arena", "malloc"})
        String peer;

        @Param({"256", "4096", "65536"})
        int size;

        Peer allocator;

        @Setup(Level.Trial)
        public void setUp() {
            allocator = Peer.of(peer);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            allocator.close();
        }
    }

    @State(Scope.Thread)
    public static class PerThread {
        ChurnBenchmark.LiveSet live;

        @Setup(Level.Trial)
        public void setUp(Shared shared, ThreadParams thread) {
            live = new ChurnBenchmark.LiveSet(shared.allocator, shared.size, 42 + thread.getThreadIndex());
        }
        // No tear-down: JMH closes the Benchmark-scoped allocator first, and the JDK's confined arenas
        // could not be closed from the tearing-down thread anyway; the fork's exit gives the memory back.
    }

    @State(Scope.Group)
    public static class Ring {
        final HandOff ring = new HandOff(1024);
        Peer allocator;

        @Setup(Level.Trial)
        public void setUp(Shared shared) {
            allocator = shared.allocator;
        }

        /** Frees what the consumer did not take before the iteration ended. */
        @TearDown(Level.Iteration)
        public void drain() {
            for (Object buffer; (buffer = ring.poll()) != null; ) {
                allocator.free(buffer);
            }
        }
    }

    @Benchmark
    @Threads(2)
    public long pair2(Shared shared) {
        return shared.allocator.pair(shared.size);
    }

    @Benchmark
    @Threads(2)
    public long churn2(PerThread thread) {
        return thread.live.replaceOne();
    }

    @Benchmark
    @Group("handOff")
    @GroupThreads(1)
    public void produce(Shared shared, Ring ring, Control control) {
        Object buffer = shared.allocator.allocateShared(shared.size);
        while (!ring.ring.offer(buffer)) {
            if (control.stopMeasurement) {
                shared.allocator.free(buffer);
                return;
            }
            Thread.onSpinWait();
        }
    }

    @Benchmark
    @Group("handOff")
    @GroupThreads(1)
    public boolean consume(Shared shared, Ring ring, Control control) {
        Object buffer;
        while ((buffer = ring.ring.poll()) == null) {
            if (control.stopMeasurement) {
                return false;
            }
            Thread.onSpinWait();
        }
        shared.allocator.free(buffer);
        return true;
    }
}
