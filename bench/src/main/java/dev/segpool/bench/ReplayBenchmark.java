package dev.segpool.bench;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * A program's allocation sequence replayed on one thread through one call site, as a program that
 * allocates every size through one wrapper does: each invocation plays a fixed trace of
 * {@link #EVENTS} events (allocations and frees of buffers of many sizes, with a live set of about
 * {@link Trace#LIVE} buffers) from empty back to empty; the score is time per event. Each allocation is
 * written once at its start, as a program initialising a header would.
 *
 * <p>Traces ({@code trace}), both from a fixed seed:
 * <ul>
 *   <li>{@code program}: object-like sizes, most small: 55% in 16-63 B, 30% in 64-511 B, 12% in 512 B-8
 *       KiB, 2.7% in 8-64 KiB, 0.3% in 64 KiB-1 MiB (uniform inside each range, so most sizes are not a
 *       size class's own); 70% of frees take the most recent live allocation (temporaries), the rest a
 *       live one at random;</li>
 *   <li>{@code io}: buffers of 1-64 KiB, log-uniform, each freed at random among the live ones.</li>
 * </ul>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class ReplayBenchmark {
    /** Events per invocation (allocations plus frees, the final drain included). */
    static final int EVENTS = 1 << 16;

    @Param({"segpool", "segpool-arena", "netty-pooled", "netty-adaptive", "malloc", "malloc-segment"})
    String peer;

    @Param({"program", "io"})
    String trace;

    private Peer allocator;
    private Peer.Slots slots;
    private Trace events;

    @Setup(Level.Trial)
    public void setUp() {
        allocator = Peer.of(peer);
        events = Trace.generate(trace, 42);
        slots = allocator.slots(events.slotCount);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        slots.clear();
        allocator.close();
    }

    @Benchmark
    @OperationsPerInvocation(EVENTS)
    public long replay() {
        return events.replay(slots);
    }

    /**
     * A fixed sequence of events over slots: {@code ops[i] >= 0} allocates {@code sizes[i]} bytes into
     * slot {@code ops[i]}, {@code ops[i] < 0} frees slot {@code ~ops[i]}. Balanced: every slot is empty
     * at the end.
     */
    static final class Trace {
        /** The live set the trace hovers around. */
        static final int LIVE = 1024;

        final int[] ops;
        final int[] sizes;
        final int slotCount;

        private Trace(int[] ops, int[] sizes, int slotCount) {
            this.ops = ops;
            this.sizes = sizes;
            this.slotCount = slotCount;
        }

        long replay(Peer.Slots slots) {
            int[] ops = this.ops;
            int[] sizes = this.sizes;
            long sum = 0;
            for (int i = 0; i < ops.length; i++) {
                int op = ops[i];
                if (op >= 0) {
                    sum += slots.allocate(op, sizes[i]);
                    slots.touch(op, 1);
                } else {
                    slots.free(~op);
                }
            }
            return sum;
        }

        static Trace generate(String kind, long seed) {
            boolean program = switch (kind) {
                case "program" -> true;
                case "io" -> false;
                default -> throw new IllegalArgumentException("unknown trace '" + kind + "', one of program, io");
            };
            double recentShare = program ? 0.7 : 0.0;
            SplittableRandom random = new SplittableRandom(seed);
            int capacity = 2 * LIVE;
            int[] ops = new int[EVENTS];
            int[] sizes = new int[EVENTS];
            // live slots: a list for random choice (with each slot's index in it), and the allocation
            // order as a stack whose dead entries are skipped, for the most recent live one
            int[] liveList = new int[capacity];
            int[] indexOf = new int[capacity];
            int liveCount = 0;
            int[] order = new int[EVENTS];
            int orderTop = 0;
            boolean[] live = new boolean[capacity];
            int[] freeSlots = new int[capacity];
            for (int i = 0; i < capacity; i++) {
                freeSlots[i] = capacity - 1 - i;
            }
            int freeTop = capacity;
            int event = 0;
            while (event < EVENTS - liveCount) {
                // the chance to allocate falls from 1 when empty to 0 at capacity: about LIVE stay live
                boolean allocate = random.nextInt(capacity) >= liveCount;
                if (allocate) {
                    int slot = freeSlots[--freeTop];
                    live[slot] = true;
                    indexOf[slot] = liveCount;
                    liveList[liveCount++] = slot;
                    order[orderTop++] = slot;
                    ops[event] = slot;
                    sizes[event] = program ? programSize(random) : 1 << 10 << random.nextInt(7) | random.nextInt(1 << 10);
                } else {
                    int slot;
                    if (random.nextDouble() < recentShare) {
                        while (!live[order[orderTop - 1]]) {
                            orderTop--;
                        }
                        slot = order[--orderTop];
                    } else {
                        slot = liveList[random.nextInt(liveCount)];
                    }
                    int at = indexOf[slot];
                    int last = liveList[--liveCount];
                    liveList[at] = last;
                    indexOf[last] = at;
                    live[slot] = false;
                    freeSlots[freeTop++] = slot;
                    ops[event] = ~slot;
                }
                event++;
            }
            while (liveCount > 0) { // the drain
                int slot = liveList[--liveCount];
                ops[event++] = ~slot;
            }
            if (event != EVENTS) {
                throw new AssertionError("trace of " + event + " events");
            }
            return new Trace(ops, sizes, capacity);
        }

        /** A size of the {@code program} trace: a range by its share, then uniform inside it. */
        private static int programSize(SplittableRandom random) {
            double u = random.nextDouble();
            int[] range = u < 0.55 ? new int[] {16, 64} : u < 0.85 ? new int[] {64, 512} : u < 0.97 ? new int[] {512, 8192}
                    : u < 0.997 ? new int[] {8192, 65536} : new int[] {65536, 1 << 20};
            return random.nextInt(range[0], range[1]);
        }
    }
}
