package dev.segpool.bench;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
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
 * Short tasks on virtual threads, as a server with a thread per request runs them: each invocation
 * starts {@value #TASKS} tasks on {@code Executors.newVirtualThreadPerTaskExecutor()} and waits for them
 * all; each task makes {@value #PAIRS_PER_TASK} allocate/free pairs of {@value #SIZE} bytes and writes
 * into each buffer ({@link Peer#touchedPair}). The score is the time per task, thread start included.
 *
 * <p>Virtual threads get no thread-local cache from segpool: {@code segpool} claims one of the pool's
 * shared stripes (a cache owned by no thread) with a compare-and-set for each call, and falls back to an
 * arena when the stripes it probes are busy; {@code segpool-scoped} runs each task inside {@code pool.runWithThreadCache},
 * which binds a fresh cache for the task and gives its contents back when the task ends. Netty's pooled
 * allocator (with {@code useCacheForAllThreads}) makes a thread cache for every virtual thread.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@OperationsPerInvocation(VirtualThreadsBenchmark.TASKS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class VirtualThreadsBenchmark {
    static final int TASKS = 1000;
    static final int PAIRS_PER_TASK = 16;
    static final int SIZE = 256;
    /** Tasks write their results this many longs apart, a cache line each. */
    private static final int STRIDE = 8;

    @Param({"segpool", "segpool-scoped", "malloc", "netty-adaptive", "netty-pooled"})
    String peer;

    private Peer allocator;
    private long[] results;
    private Runnable[] tasks;
    /** The last failure of a task, thrown by the benchmark method so that no failure goes unseen. */
    private volatile Throwable failure;

    @Setup(Level.Trial)
    public void setUp() {
        allocator = Peer.of(peer);
        results = new long[TASKS * STRIDE];
        tasks = new Runnable[TASKS];
        for (int i = 0; i < TASKS; i++) {
            int slot = i * STRIDE;
            Runnable body = () -> {
                long addresses = 0;
                for (int p = 0; p < PAIRS_PER_TASK; p++) {
                    addresses ^= allocator.touchedPair(SIZE);
                }
                results[slot] = addresses;
            };
            tasks[i] = () -> {
                try {
                    allocator.runTask(body);
                } catch (Throwable t) {
                    failure = t;
                }
            };
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        allocator.close();
    }

    @Benchmark
    public long tasks() {
        try (ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor()) {
            for (Runnable task : tasks) {
                executor.execute(task);
            }
        } // close() waits for every task
        return results();
    }

    /**
     * The same tasks run one after another on one virtual thread: the score is what each task costs
     * the allocator (a binding, a refill, a flush, the stripe claims) without a thread start per task
     * and without the scheduler's noise; with one thread, no claim meets another carrier.
     */
    @Benchmark
    public long sequentialTasks() throws InterruptedException {
        Thread.ofVirtual().start(() -> {
            for (Runnable task : tasks) {
                task.run();
            }
        }).join();
        return results();
    }

    private long results() {
        if (failure != null) {
            throw new IllegalStateException("a task failed", failure);
        }
        long addresses = 0;
        for (int i = 0; i < results.length; i += STRIDE) {
            addresses ^= results[i];
        }
        return addresses;
    }
}
