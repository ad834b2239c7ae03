package dev.segpool.bench;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.SplittableRandom;
import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A mixed workload replayed on segpool and its peers, one child JVM per allocator so that each one's
 * process RSS is its own.
 *
 * <p>Two worker threads each run the same script on the shared allocator:
 * <ol>
 *   <li>fill: {@value #BASE_BLOCKS} long-lived storage blocks (4 KiB to 1 MiB, log-uniform);</li>
 *   <li>steady: operations that are 90% short-lived network buffers (64 B to 64 KiB, log-uniform, in a
 *       FIFO of {@value #IN_FLIGHT} in flight, so each lives for 512 of its thread's network steps) and
 *       10% storage blocks replaced at random;</li>
 *   <li>burst: storage grows to {@value #PEAK_BLOCKS} blocks while the network traffic goes on;</li>
 *   <li>plateau: the steady mix on the large storage set;</li>
 *   <li>drain: every buffer and block is freed, in random order;</li>
 *   <li>idle: nothing live; the threads stay alive, as a server's would. Reserved bytes and RSS are
 *       read one second after the drain, and again {@link #AFTER_DECAY_MILLIS} after it: segpool's
 *       default decay plus one second.</li>
 * </ol>
 * The workers start each phase together (a barrier), so the phases of the timeline are both workers'.
 * Every allocation is touched once per 4 KiB page, as a user writing into it would. An operation is one
 * allocation or one free. A sampler records live bytes (counted here), reserved bytes (as the allocator
 * reports them: {@code metrics().reservedBytes()} for segpool, {@code metric().usedDirectMemory()} for
 * Netty; malloc and the JDK arena report nothing, so their "reserved" is the live count) and the
 * process RSS from {@code /proc/self/status}, every {@value #SAMPLE_MILLIS} ms.
 *
 * <p>Run with no argument (or an output folder) to run the {@link #DEFAULT_PEERS}, each in a child JVM,
 * and print the table; {@code -Dworkload.peers=segpool,malloc} picks peers, {@code -Dworkload.scale=0.5}
 * shortens the steady phases.
 */
public final class Workload {
    static final int BASE_BLOCKS = 192;
    static final int PEAK_BLOCKS = 1024;
    static final int IN_FLIGHT = 512;
    static final int THREADS = 2;
    static final int SAMPLE_MILLIS = 10;
    static final long STEADY_OPS = 4_500_000;
    static final long PLATEAU_OPS = 4_500_000;
    /** The first reading after the drain. */
    static final long AFTER_DRAIN_MILLIS = 1000;
    /**
     * The second reading after the drain: {@link SegpoolPeer#DEFAULT_DECAY} plus one second, the
     * same point for every allocator; {@code -Dworkload.afterDecayMillis} overrides it.
     */
    static final long AFTER_DECAY_MILLIS = Long.getLong("workload.afterDecayMillis",
            SegpoolPeer.DEFAULT_DECAY.toMillis() + 1000);
    /** The allocators run when {@code workload.peers} is not set; {@code malloc-segment} is a JMH-only peer. */
    static final List<String> DEFAULT_PEERS = List.of("segpool", "segpool-arena", "segpool-decay", "segpool-trim",
            "netty-pooled", "netty-adaptive", "jdk-arena", "malloc");

    private Workload() {}

    public static void main(String[] args) throws Exception {
        if (args.length >= 3 && args[0].equals("--child")) {
            Child.run(args[1], Path.of(args[2]));
            return;
        }
        Path out = Path.of(args.length > 0 ? args[0] : "target/workload");
        List<String> peers = List.of(System.getProperty("workload.peers", String.join(",", DEFAULT_PEERS)).split(","));
        Report.runAll(peers, out);
    }

    // ---- the child: one allocator, one JVM ----

    /** Phases, in order; the sampler reads the current one. */
    enum Phase { FILL, STEADY, BURST, PLATEAU, DRAIN, IDLE }

    static final class Child {
        private final Peer peer;
        private final String name;
        private final double scale;
        /** Per worker: live bytes and operations so far, at stride 16 to keep the two apart. */
        private final AtomicLongArray counters = new AtomicLongArray(THREADS * 16 * 2);
        private volatile Phase phase = Phase.FILL;
        private final CountDownLatch drained = new CountDownLatch(THREADS);
        private final CyclicBarrier phaseBarrier = new CyclicBarrier(THREADS);
        private final CountDownLatch release = new CountDownLatch(1);
        private final List<long[]> samples = new ArrayList<>();
        private final List<Phase> samplePhases = new ArrayList<>();
        private volatile boolean sampling = true;
        /** The allocator's own breakdown when its reserved bytes were at their peak. */
        private volatile Peer.Breakdown breakdownAtPeak = Peer.Breakdown.NONE;

        private Child(String name, double scale) {
            this.name = name;
            this.peer = Peer.of(name);
            this.scale = scale;
        }

        static void run(String name, Path out) throws Exception {
            Child child = new Child(name, Double.parseDouble(System.getProperty("workload.scale", "1")));
            child.runAndWrite(out);
        }

        private void runAndWrite(Path out) throws Exception {
            long rssBefore = Rss.bytes();
            Thread sampler = Thread.ofPlatform().name("sampler").start(this::sample);
            Thread[] workers = new Thread[THREADS];
            long[] elapsed = new long[THREADS];
            long start = System.nanoTime();
            for (int t = 0; t < THREADS; t++) {
                int index = t;
                workers[t] = Thread.ofPlatform().name("worker-" + t).start(() -> {
                    work(index, 1234 + index);
                    elapsed[index] = System.nanoTime() - start;
                    peer.afterDrain();
                    drained.countDown();
                    awaitQuietly(release);
                });
            }
            drained.await();
            long drainedAt = System.nanoTime();
            long workNanos = Math.max(elapsed[0], elapsed[1]);
            phase = Phase.IDLE;
            sleepUntil(drainedAt, AFTER_DRAIN_MILLIS);
            long heldReserved = reserved(0);
            long heldRss = Rss.bytes();
            sleepUntil(drainedAt, AFTER_DECAY_MILLIS);
            long decayedReserved = reserved(0);
            long decayedRss = Rss.bytes();
            sampling = false;
            sampler.join();
            release.countDown();
            for (Thread worker : workers) {
                worker.join();
            }

            long ops = ops();
            long peakLive = 0;
            long peakReserved = 0;
            long peakRss = 0;
            synchronized (samples) {
                for (long[] s : samples) {
                    peakLive = Math.max(peakLive, s[1]);
                    peakReserved = Math.max(peakReserved, s[2]);
                    peakRss = Math.max(peakRss, s[3]);
                }
            }
            Files.createDirectories(out);
            Properties result = new Properties();
            result.setProperty("peer", name);
            result.setProperty("ops", Long.toString(ops));
            result.setProperty("nanos", Long.toString(workNanos));
            result.setProperty("peakLive", Long.toString(peakLive));
            result.setProperty("peakReserved", Long.toString(peakReserved));
            result.setProperty("reservedCounted", Boolean.toString(peer.reservedBytes() >= 0));
            result.setProperty("heldReserved", Long.toString(heldReserved));
            result.setProperty("rssBefore", Long.toString(rssBefore));
            result.setProperty("peakRss", Long.toString(peakRss));
            result.setProperty("heldRss", Long.toString(heldRss));
            result.setProperty("afterDecayMillis", Long.toString(AFTER_DECAY_MILLIS));
            result.setProperty("decayedReserved", Long.toString(decayedReserved));
            result.setProperty("decayedRss", Long.toString(decayedRss));
            Peer.Breakdown b = breakdownAtPeak;
            result.setProperty("breakdownAtPeak", b.reserved() + "," + b.active() + "," + b.cached() + ","
                    + b.freeInChunks());
            try (var writer = Files.newBufferedWriter(out.resolve(name + ".properties"))) {
                result.store(writer, "workload result");
            }
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out.resolve(name + "-timeline.csv")))) {
                w.println("millis,phase,ops,liveBytes,reservedBytes,rssBytes");
                synchronized (samples) {
                    for (int i = 0; i < samples.size(); i++) {
                        long[] s = samples.get(i);
                        w.println(s[0] + "," + samplePhases.get(i).name().toLowerCase(Locale.ROOT) + "," + s[4]
                                + "," + s[1] + "," + s[2] + "," + s[3]);
                    }
                }
            }
            peer.close();
        }

        private static void sleepUntil(long startNanos, long millis) throws InterruptedException {
            long left = startNanos + millis * 1_000_000 - System.nanoTime();
            if (left > 0) {
                Thread.sleep(left / 1_000_000, (int) (left % 1_000_000));
            }
        }

        private static void awaitQuietly(CountDownLatch latch) {
            try {
                latch.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }

        private static int liveIndex(int thread) {
            return thread * 32;
        }

        private static int opsIndex(int thread) {
            return thread * 32 + 16;
        }

        private long live() {
            long live = 0;
            for (int t = 0; t < THREADS; t++) {
                live += counters.get(liveIndex(t));
            }
            return live;
        }

        private long ops() {
            long ops = 0;
            for (int t = 0; t < THREADS; t++) {
                ops += counters.get(opsIndex(t));
            }
            return ops;
        }

        private long reserved(long live) {
            long reserved = peer.reservedBytes();
            return reserved >= 0 ? reserved : live;
        }

        private void sample() {
            long peakReserved = -1;
            long start = System.nanoTime();
            long lastReport = start;
            while (sampling) {
                long now = System.nanoTime();
                long live = live();
                long[] s = {(now - start) / 1_000_000, live, reserved(live), Rss.bytes(), ops()};
                synchronized (samples) {
                    samples.add(s);
                    samplePhases.add(phase);
                }
                if (s[2] > peakReserved) {
                    peakReserved = s[2];
                    breakdownAtPeak = peer.breakdown();
                }
                if (now - lastReport >= 1_000_000_000L) {
                    lastReport = now;
                    long ops = s[4];
                    System.out.printf(Locale.ROOT, "  [%s] %5.1f s  %-7s  %,6.1f M ops  live %,7.1f MiB  reserved %,7.1f MiB  RSS %,7.1f MiB%n",
                            name, (now - start) / 1e9, phase.name().toLowerCase(Locale.ROOT), ops / 1e6,
                            mib(s[1]), mib(s[2]), mib(s[3]));
                }
                try {
                    Thread.sleep(SAMPLE_MILLIS);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        /**
         * Waits until every worker has finished the phase before {@code next}; the last one to arrive
         * moves the phase. So phases do not overlap, and the sampler's phase is every worker's.
         */
        private void enter(Phase next) {
            try {
                phaseBarrier.await();
                phase = next;
                phaseBarrier.await();
            } catch (InterruptedException | BrokenBarrierException e) {
                throw new IllegalStateException("worker interrupted between phases", e);
            }
        }

        /** One worker's script, in step with the other workers at each phase's start ({@link #enter}). */
        private void work(int thread, long seed) {
            SplittableRandom random = new SplittableRandom(seed);
            Peer.Slots network = peer.slots(IN_FLIGHT);
            int[] networkSizes = new int[IN_FLIGHT];
            Peer.Slots storage = peer.slots(PEAK_BLOCKS);
            int[] storageSizes = new int[PEAK_BLOCKS];
            int liveIndex = liveIndex(thread);
            int opsIndex = opsIndex(thread);
            long live = 0;
            long ops = 0;
            long networkSteps = 0;
            int blocks = 0;

            // fill
            for (; blocks < BASE_BLOCKS; blocks++) {
                int size = logUniform(random, 12, 20);
                storage.allocate(blocks, size);
                storage.touch(blocks, size);
                storageSizes[blocks] = size;
                live += size;
                ops++;
            }
            counters.setOpaque(liveIndex, live);
            counters.setOpaque(opsIndex, ops);

            Phase[] script = {Phase.STEADY, Phase.BURST, Phase.PLATEAU};
            for (Phase step : script) {
                enter(step);
                long target = step == Phase.STEADY ? (long) (STEADY_OPS * scale)
                        : step == Phase.PLATEAU ? (long) (PLATEAU_OPS * scale) : Long.MAX_VALUE;
                long stepOps = 0;
                while (stepOps < target && (step != Phase.BURST || blocks < PEAK_BLOCKS)) {
                    long before = ops;
                    if (random.nextInt(10) != 0) {
                        // network: a new buffer in, the oldest out once the FIFO is full
                        int slot = (int) (networkSteps++ % IN_FLIGHT);
                        if (networkSteps > IN_FLIGHT) {
                            network.free(slot);
                            live -= networkSizes[slot];
                            ops++;
                        }
                        int size = logUniform(random, 6, 16);
                        network.allocate(slot, size);
                        network.touch(slot, size);
                        networkSizes[slot] = size;
                        live += size;
                        ops++;
                    } else if (step == Phase.BURST) {
                        int size = logUniform(random, 12, 20);
                        storage.allocate(blocks, size);
                        storage.touch(blocks, size);
                        storageSizes[blocks++] = size;
                        live += size;
                        ops++;
                    } else {
                        int slot = random.nextInt(blocks);
                        storage.free(slot);
                        live -= storageSizes[slot];
                        int size = logUniform(random, 12, 20);
                        storage.allocate(slot, size);
                        storage.touch(slot, size);
                        storageSizes[slot] = size;
                        live += size;
                        ops += 2;
                    }
                    stepOps += ops - before;
                    if ((stepOps & 255) < 2) {
                        counters.setOpaque(liveIndex, live);
                        counters.setOpaque(opsIndex, ops);
                    }
                }
                counters.setOpaque(liveIndex, live);
                counters.setOpaque(opsIndex, ops);
            }

            enter(Phase.DRAIN);
            int inFlight = (int) Math.min(networkSteps, IN_FLIGHT);
            for (int slot = 0; slot < inFlight; slot++) {
                network.free(slot);
                live -= networkSizes[slot];
                ops++;
            }
            int[] order = new int[blocks];
            for (int i = 0; i < blocks; i++) {
                int j = random.nextInt(i + 1);
                order[i] = order[j];
                order[j] = i;
            }
            for (int slot : order) {
                storage.free(slot);
                live -= storageSizes[slot];
                ops++;
            }
            counters.setOpaque(liveIndex, live);
            counters.setOpaque(opsIndex, ops);
        }

        /** A size whose log2 is uniform in [minShift, maxShift]. */
        private static int logUniform(SplittableRandom random, int minShift, int maxShift) {
            return (int) Math.pow(2, minShift + random.nextDouble() * (maxShift - minShift));
        }
    }

    static double mib(long bytes) {
        return bytes / (1024.0 * 1024.0);
    }

    /** Resident set size of this process, from {@code /proc/self/status}; 0 where there is none. */
    static final class Rss {
        private static final Path STATUS = Path.of("/proc/self/status");

        static long bytes() {
            try {
                for (String line : Files.readAllLines(STATUS)) {
                    if (line.startsWith("VmRSS:")) {
                        String kib = line.substring(6).trim().split("\\s+")[0];
                        return Long.parseLong(kib) * 1024;
                    }
                }
                return 0;
            } catch (IOException | UncheckedIOException e) {
                return 0;
            }
        }
    }
}
