package dev.segpool.bench;

import java.lang.management.ManagementFactory;
import java.util.Locale;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.management.MBeanServer;
import javax.management.MalformedObjectNameException;
import javax.management.ObjectName;
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
 * Does polling a pool's metrics through JMX slow the paths that take arena locks? Two of them, on a pool
 * built with {@code jmx(true)}: {@code churn64k} is {@link ChurnBenchmark} at 64 KiB on {@code segpool}
 * (64 KiB is above {@code maxCachedSize}, so every call goes to an arena), {@code pair256Arena} is
 * {@link PairBenchmark} at 256 B on {@code segpool-arena} (thread caches off). With {@code poll=10ms}, a
 * daemon thread reads every attribute of the pool's MXBean through
 * {@code ManagementFactory.getPlatformMBeanServer().getAttribute} at a fixed rate of one round per
 * 10 ms; with {@code poll=none}, nothing reads them. The poller's rounds and their mean time are
 * printed when the trial ends.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class MetricsPollBenchmark {
    /** Every attribute of {@code SegmentPoolMXBean} but the name. */
    static final String[] ATTRIBUTES = {"ReservedBytes", "ActiveBytes", "CachedBytes", "FreeBytes", "ThreadCaches",
        "Chunks", "HugeBytes", "CacheHits", "CacheMisses", "OpenArenas", "MaxMemory"};
    private static final AtomicInteger POOLS = new AtomicInteger();

    /** A pool with its MXBean, and the poller the {@code poll} parameter asks for. */
    @State(Scope.Thread)
    public abstract static class Polled {
        @Param({"none", "10ms"})
        String poll;

        SegpoolPeer allocator;
        private Poller poller;

        void open(boolean threadLocalCaches) {
            String name = "metrics-poll-" + ProcessHandle.current().pid() + "-" + POOLS.incrementAndGet();
            allocator = new SegpoolPeer(threadLocalCaches, name);
            poller = switch (poll) {
                case "none" -> null;
                case "10ms" -> new Poller(name, 10);
                default -> throw new IllegalArgumentException("poll is none or 10ms, not " + poll);
            };
        }

        /** Stops the poller (reporting what it did, or how it failed), then closes the pool. */
        void close() {
            if (poller != null) {
                poller.stop();
            }
            allocator.close();
        }
    }

    @State(Scope.Thread)
    public static class Churn64k extends Polled {
        ChurnBenchmark.LiveSet live;

        @Setup(Level.Trial)
        public void setUp() {
            open(true);
            live = new ChurnBenchmark.LiveSet(allocator, 64 * 1024, 42);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            live.clear();
            close();
        }
    }

    @State(Scope.Thread)
    public static class ArenaPairs extends Polled {
        @Setup(Level.Trial)
        public void setUp() {
            open(false);
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            close();
        }
    }

    @Benchmark
    public long churn64k(Churn64k state) {
        return state.live.replaceOne();
    }

    @Benchmark
    public long pair256Arena(ArenaPairs state) {
        return state.allocator.pair(256);
    }

    /** Reads all {@link #ATTRIBUTES} of one pool's MXBean every {@code periodMillis}, on a daemon thread. */
    static final class Poller {
        private final MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        private final ObjectName bean;
        private final ScheduledExecutorService executor;
        private volatile Throwable failure;
        // Written by the polling thread only; read after it has stopped.
        private long rounds;
        private long nanos;
        private long sink;

        Poller(String poolName, long periodMillis) {
            try {
                bean = new ObjectName("dev.segpool:type=SegmentPool,name=" + poolName);
            } catch (MalformedObjectNameException e) {
                throw new IllegalArgumentException(e);
            }
            if (!server.isRegistered(bean)) {
                throw new IllegalStateException(bean + " is not registered");
            }
            executor = Executors.newSingleThreadScheduledExecutor(task -> {
                Thread thread = new Thread(task, "metrics-poller");
                thread.setDaemon(true);
                return thread;
            });
            executor.scheduleAtFixedRate(this::pollOnce, periodMillis, periodMillis, TimeUnit.MILLISECONDS);
        }

        private void pollOnce() {
            try {
                long start = System.nanoTime();
                for (String attribute : ATTRIBUTES) {
                    sink += ((Number) server.getAttribute(bean, attribute)).longValue();
                }
                nanos += System.nanoTime() - start;
                rounds++;
            } catch (Throwable t) {
                failure = t;
                throw new IllegalStateException("polling " + bean + " failed", t); // ends the schedule
            }
        }

        /** Stops polling and prints how many rounds ran; throws if a round failed. */
        void stop() {
            executor.shutdownNow();
            try {
                if (!executor.awaitTermination(10, TimeUnit.SECONDS)) {
                    throw new IllegalStateException("the metrics poller did not stop");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
            if (failure != null) {
                throw new IllegalStateException("polling " + bean + " failed", failure);
            }
            System.out.printf(Locale.ROOT, "%nmetrics poller: %d rounds of %d attributes, %.1f us per round (sum %d)%n",
                    rounds, ATTRIBUTES.length, rounds == 0 ? 0.0 : nanos / 1e3 / rounds, sink);
        }
    }
}
