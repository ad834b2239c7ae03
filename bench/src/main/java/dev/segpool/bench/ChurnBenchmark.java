package dev.segpool.bench;

import java.util.SplittableRandom;
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
 * A live set of buffers; each operation frees one chosen at random (fixed seed) and allocates its
 * replacement, the shape of Netty's {@code ByteBufAllocatorBenchmark}. The live set is 8192 buffers,
 * fewer where that would pass {@link #MAX_LIVE_BYTES} (512 buffers of 1 MiB).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class ChurnBenchmark {
    static final int MAX_LIVE_BUFFERS = 8192;
    static final long MAX_LIVE_BYTES = 512L << 20;
    private static final int RANDOM_SLOTS = 1 << 16;

    @Param({"segpool", "segpool-arena", "netty-pooled", "netty-adaptive", "jdk-arena", "malloc", "malloc-segment"})
    String peer;

    @Param({"16", "64", "256", "1024", "4096", "16384", "32768", "65536", "1048576"})
    int size;

    private Peer allocator;
    private LiveSet live;

    @Setup(Level.Trial)
    public void setUp() {
        allocator = Peer.of(peer);
        live = new LiveSet(allocator, size, 42);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        live.clear();
        allocator.close();
    }

    @Benchmark
    public long churn() {
        return live.replaceOne();
    }

    /** One thread's live buffers and its fixed sequence of slots to replace. */
    static final class LiveSet {
        private final Peer.Slots slots;
        private final int[] order = new int[RANDOM_SLOTS];
        private final int size;
        private int next;

        LiveSet(Peer allocator, int size, long seed) {
            int count = (int) Math.min(MAX_LIVE_BUFFERS, MAX_LIVE_BYTES / size);
            this.slots = allocator.slots(count);
            this.size = size;
            SplittableRandom random = new SplittableRandom(seed);
            for (int i = 0; i < order.length; i++) {
                order[i] = random.nextInt(count);
            }
            for (int i = 0; i < count; i++) {
                slots.allocate(i, size);
            }
        }

        long replaceOne() {
            int slot = order[next++ & (RANDOM_SLOTS - 1)];
            slots.free(slot);
            return slots.allocate(slot, size);
        }

        void clear() {
            slots.clear();
        }
    }
}
