package dev.segpool.bench;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Properties;
import java.util.Set;

/**
 * The parent side of {@link Workload}: one child JVM per allocator (the same java binary, class path and
 * native-access flag), then the table on the console, {@code results.csv}, {@code results.json},
 * {@code footprint.csv} and {@code footprint.svg} in the output folder.
 */
final class Report {
    private Report() {}

    /**
     * One allocator's run. Ratios of reserved over live: at the peaks ({@link #footprintRatio}), and
     * over the samples of the steady and plateau phases (sum of reserved over sum of live), from the
     * timeline.
     */
    record Result(String peer, long ops, long nanos, long peakLive, long peakReserved, boolean reservedCounted,
                  long heldReserved, long rssBefore, long peakRss, long heldRss, long afterDecayMillis,
                  long decayedReserved, long decayedRss, Peer.Breakdown breakdownAtPeak, double steadyRatio,
                  double plateauRatio, double steadyPlateauRatio) {
        double opsPerSecond() {
            return ops * 1e9 / nanos;
        }

        double footprintRatio() {
            return peakLive == 0 ? 0 : (double) peakReserved / peakLive;
        }

        static Result read(Path file, List<Sample> timeline) throws IOException {
            Properties p = new Properties();
            try (var reader = Files.newBufferedReader(file)) {
                p.load(reader);
            }
            String[] b = p.getProperty("breakdownAtPeak", "-1,-1,-1,-1").split(",");
            Peer.Breakdown breakdown = new Peer.Breakdown(Long.parseLong(b[0]), Long.parseLong(b[1]),
                    Long.parseLong(b[2]), Long.parseLong(b[3]));
            return new Result(p.getProperty("peer"), l(p, "ops"), l(p, "nanos"), l(p, "peakLive"),
                    l(p, "peakReserved"), Boolean.parseBoolean(p.getProperty("reservedCounted")),
                    l(p, "heldReserved"), l(p, "rssBefore"), l(p, "peakRss"), l(p, "heldRss"),
                    l(p, "afterDecayMillis"), l(p, "decayedReserved"), l(p, "decayedRss"), breakdown,
                    ratio(timeline, Set.of("steady")), ratio(timeline, Set.of("plateau")),
                    ratio(timeline, Set.of("steady", "plateau")));
        }

        private static long l(Properties p, String key) {
            return Long.parseLong(p.getProperty(key));
        }

        /** Sum of reserved over sum of live across the samples of {@code phases}. */
        private static double ratio(List<Sample> timeline, Set<String> phases) {
            long live = 0;
            long reserved = 0;
            for (Sample s : timeline) {
                if (phases.contains(s.phase)) {
                    live += s.live;
                    reserved += s.reserved;
                }
            }
            return live == 0 ? 0 : (double) reserved / live;
        }
    }

    static void runAll(List<String> peers, Path out) throws Exception {
        Files.createDirectories(out);
        String java = ProcessHandle.current().info().command().orElse("java");
        String classPath = System.getProperty("java.class.path");
        System.out.printf("segpool workload: %d allocators, one JVM each (%s), %d cores, output in %s%n",
                peers.size(), java, Runtime.getRuntime().availableProcessors(), out.toAbsolutePath());
        long started = System.nanoTime();
        List<Result> results = new ArrayList<>();
        List<List<Sample>> timelines = new ArrayList<>();
        for (String peer : peers) {
            System.out.printf("== %s%n", peer);
            List<String> command = new ArrayList<>(List.of(java,
                    "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                    "-Xms256m", "-Xmx256m", "-XX:MaxDirectMemorySize=4g",
                    "-Dworkload.scale=" + System.getProperty("workload.scale", "1"),
                    "-Dworkload.afterDecayMillis=" + Workload.AFTER_DECAY_MILLIS,
                    "-cp", classPath, Workload.class.getName(), "--child", peer, out.toString()));
            // segpool's tuning knobs given to the runner (-Dsegpool.*) go to every child
            System.getProperties().stringPropertyNames().stream().filter(k -> k.startsWith("segpool.")).sorted()
                    .forEach(k -> command.add(1, "-D" + k + "=" + System.getProperty(k)));
            Process child = new ProcessBuilder(command).inheritIO().start();
            int status = child.waitFor();
            if (status != 0) {
                throw new IllegalStateException("the " + peer + " run failed with exit status " + status);
            }
            List<Sample> timeline = timeline(out.resolve(peer + "-timeline.csv"));
            Result r = Result.read(out.resolve(peer + ".properties"), timeline);
            results.add(r);
            timelines.add(timeline);
            System.out.printf(Locale.ROOT, "   %s: %.2f M ops/s, footprint %.2f, reserved after drain %.1f MiB"
                            + " (1 s), %.1f MiB (%.1f s)%n", peer, r.opsPerSecond() / 1e6, r.footprintRatio(),
                    Workload.mib(r.heldReserved), Workload.mib(r.decayedReserved), r.afterDecayMillis / 1e3);
        }
        printTable(results);
        writeCsv(results, out.resolve("results.csv"));
        writeJson(results, out.resolve("results.json"));
        writeFootprint(peers, timelines, out);
        System.out.printf(Locale.ROOT, "%nTotal %.0f s. Wrote results.csv, results.json, footprint.csv, footprint.svg to %s%n",
                (System.nanoTime() - started) / 1e9, out.toAbsolutePath());
    }

    private static void printTable(List<Result> results) {
        String after = results.isEmpty() ? "" : String.format(Locale.ROOT, "%.0f s", results.get(0).afterDecayMillis / 1e3);
        System.out.println();
        System.out.println("| allocator | M ops/s | peak live MiB | peak reserved MiB | footprint at peak | steady | plateau "
                + "| steady + plateau | reserved after drain, 1 s / " + after + " MiB | peak RSS MiB "
                + "| RSS after drain, 1 s / " + after + " MiB |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (Result r : results) {
            String star = r.reservedCounted ? "" : " *";
            String dash = r.reservedCounted ? null : "-";
            System.out.printf(Locale.ROOT, "| %s | %.2f | %.0f | %.0f%s | %s | %s | %s | %s | %s | %.0f | %.0f / %.0f |%n",
                    r.peer, r.opsPerSecond() / 1e6, Workload.mib(r.peakLive), Workload.mib(r.peakReserved), star,
                    dash != null ? dash : String.format(Locale.ROOT, "%.2f", r.footprintRatio()),
                    dash != null ? dash : String.format(Locale.ROOT, "%.2f", r.steadyRatio),
                    dash != null ? dash : String.format(Locale.ROOT, "%.2f", r.plateauRatio),
                    dash != null ? dash : String.format(Locale.ROOT, "%.2f", r.steadyPlateauRatio),
                    dash != null ? dash : String.format(Locale.ROOT, "%.1f / %.1f", Workload.mib(r.heldReserved),
                            Workload.mib(r.decayedReserved)),
                    Workload.mib(r.peakRss), Workload.mib(r.heldRss), Workload.mib(r.decayedRss));
        }
        if (results.stream().anyMatch(r -> !r.reservedCounted)) {
            System.out.println("* reports no reserved bytes: live bytes counted by the workload instead; compare RSS.");
        }
        if (results.stream().anyMatch(r -> r.breakdownAtPeak.known())) {
            System.out.println();
            System.out.println("| allocator at its peak | reserved MiB | active MiB | in thread caches MiB | free in chunks MiB |");
            System.out.println("|---|---:|---:|---:|---:|");
            for (Result r : results) {
                Peer.Breakdown b = r.breakdownAtPeak;
                if (b.known()) {
                    System.out.printf(Locale.ROOT, "| %s | %.1f | %s | %s | %.1f |%n", r.peer, Workload.mib(b.reserved()),
                            b.cached() >= 0 ? String.format(Locale.ROOT, "%.1f", Workload.mib(b.active()))
                                    : String.format(Locale.ROOT, "%.1f (with caches)", Workload.mib(b.active())),
                            b.cached() >= 0 ? String.format(Locale.ROOT, "%.1f", Workload.mib(b.cached())) : "-",
                            Workload.mib(b.freeInChunks()));
                }
            }
        }
    }

    private static void writeCsv(List<Result> results, Path file) throws IOException {
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(file))) {
            w.println("allocator,ops,seconds,opsPerSecond,peakLiveBytes,peakReservedBytes,reservedReportedByAllocator,"
                    + "footprintRatio,steadyRatio,plateauRatio,steadyPlateauRatio,reservedAfterDrainBytes,"
                    + "afterDecayMillis,reservedAfterDecayBytes,rssBeforeBytes,peakRssBytes,rssAfterDrainBytes,"
                    + "rssAfterDecayBytes,peakBreakdownReservedBytes,peakBreakdownActiveBytes,peakBreakdownCachedBytes,"
                    + "peakBreakdownFreeInChunksBytes");
            for (Result r : results) {
                Peer.Breakdown b = r.breakdownAtPeak;
                w.printf(Locale.ROOT, "%s,%d,%.3f,%.0f,%d,%d,%b,%.4f,%.4f,%.4f,%.4f,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d%n",
                        r.peer, r.ops, r.nanos / 1e9, r.opsPerSecond(), r.peakLive, r.peakReserved, r.reservedCounted,
                        r.footprintRatio(), r.steadyRatio, r.plateauRatio, r.steadyPlateauRatio, r.heldReserved,
                        r.afterDecayMillis, r.decayedReserved, r.rssBefore, r.peakRss, r.heldRss, r.decayedRss,
                        b.reserved(), b.active(), b.cached(), b.freeInChunks());
            }
        }
    }

    private static void writeJson(List<Result> results, Path file) throws IOException {
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(file))) {
            w.printf("{%n  \"date\": \"%s\",%n  \"cores\": %d,%n  \"results\": [%n",
                    LocalDateTime.now().truncatedTo(ChronoUnit.SECONDS), Runtime.getRuntime().availableProcessors());
            for (int i = 0; i < results.size(); i++) {
                Result r = results.get(i);
                Peer.Breakdown b = r.breakdownAtPeak;
                String breakdown = b.known()
                        ? String.format(Locale.ROOT, "{\"reservedBytes\": %d, \"activeBytes\": %d, \"cachedBytes\": %s, "
                                + "\"freeInChunksBytes\": %d}", b.reserved(), b.active(),
                                b.cached() >= 0 ? Long.toString(b.cached()) : "null", b.freeInChunks())
                        : "null";
                w.printf(Locale.ROOT, "    {\"allocator\": \"%s\", \"ops\": %d, \"seconds\": %.3f, \"opsPerSecond\": %.0f, "
                                + "\"peakLiveBytes\": %d, \"peakReservedBytes\": %d, \"reservedReportedByAllocator\": %b, "
                                + "\"footprintRatio\": %.4f, \"steadyRatio\": %.4f, \"plateauRatio\": %.4f, "
                                + "\"steadyPlateauRatio\": %.4f, \"breakdownAtPeak\": %s, "
                                + "\"reservedAfterDrainBytes\": %d, \"afterDecayMillis\": %d, \"reservedAfterDecayBytes\": %d, "
                                + "\"rssBeforeBytes\": %d, \"peakRssBytes\": %d, \"rssAfterDrainBytes\": %d, "
                                + "\"rssAfterDecayBytes\": %d}%s%n",
                        r.peer, r.ops, r.nanos / 1e9, r.opsPerSecond(), r.peakLive, r.peakReserved, r.reservedCounted,
                        r.footprintRatio(), r.steadyRatio, r.plateauRatio, r.steadyPlateauRatio, breakdown,
                        r.heldReserved, r.afterDecayMillis, r.decayedReserved, r.rssBefore, r.peakRss, r.heldRss,
                        r.decayedRss, i + 1 < results.size() ? "," : "");
            }
            w.printf("  ]%n}%n");
        }
    }

    /** One timeline sample: milliseconds, phase, operations so far, live, reserved, RSS. */
    record Sample(long millis, String phase, long ops, long live, long reserved, long rss) {}

    private static List<Sample> timeline(Path file) throws IOException {
        List<Sample> samples = new ArrayList<>();
        List<String> lines = Files.readAllLines(file);
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split(",");
            samples.add(new Sample(Long.parseLong(f[0]), f[1], Long.parseLong(f[2]), Long.parseLong(f[3]),
                    Long.parseLong(f[4]), Long.parseLong(f[5])));
        }
        return samples;
    }

    private static void writeFootprint(List<String> peers, List<List<Sample>> timelines, Path out) throws IOException {
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out.resolve("footprint.csv")))) {
            w.println("allocator,millis,phase,ops,liveBytes,reservedBytes,rssBytes");
            for (int p = 0; p < peers.size(); p++) {
                for (Sample s : timelines.get(p)) {
                    w.printf("%s,%d,%s,%d,%d,%d,%d%n", peers.get(p), s.millis, s.phase, s.ops, s.live, s.reserved, s.rss);
                }
            }
        }
        if (!peers.isEmpty()) {
            Files.writeString(out.resolve("footprint.svg"), Svg.footprint(peers, timelines));
        }
    }

    /**
     * Reserved bytes (top) and RSS (bottom) of every allocator, drawn by hand (no plotting library).
     * The left part of each panel runs over the work by operations done, the same for every allocator
     * however fast it ran; the right part over the seconds after the drain, while the workers idle.
     */
    static final class Svg {
        private static final int WIDTH = 980;
        private static final int PANEL_HEIGHT = 250;
        private static final int LEFT = 70;
        private static final int RIGHT = 170;
        private static final int TOP = 50;
        private static final int GAP = 60;
        private static final int BOTTOM = 50;
        /** Share of the plot width given to the work; the rest shows the time after the drain. */
        private static final double WORK_SHARE = 0.72;
        private static final String[] COLOURS =
                {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};

        static String footprint(List<String> peers, List<List<Sample>> lines) {
            long maxOps = 1;
            long maxIdleMillis = 1;
            long[] peerMax = new long[lines.size()];
            for (int p = 0; p < lines.size(); p++) {
                List<Sample> samples = lines.get(p);
                long drainedAt = drainedAt(samples);
                for (Sample s : samples) {
                    maxOps = Math.max(maxOps, s.ops);
                    if (s.phase.equals("idle")) {
                        maxIdleMillis = Math.max(maxIdleMillis, s.millis - drainedAt);
                    }
                    peerMax[p] = Math.max(peerMax[p], Math.max(s.live, Math.max(s.reserved, s.rss)));
                }
            }
            // an allocator far above the others would flatten them: the axis stops above the second
            // highest, and lines above it are clipped at the top, with a note
            long[] sorted = peerMax.clone();
            java.util.Arrays.sort(sorted);
            long maxBytes = Math.max(1, sorted.length > 1 && sorted[sorted.length - 1] > 2 * sorted[sorted.length - 2]
                    ? sorted[sorted.length - 2] : sorted.length > 0 ? sorted[sorted.length - 1] : 1);
            Axes axes = new Axes(maxOps, Math.ceil(maxIdleMillis / 1000.0), niceCeiling(Workload.mib(maxBytes) * 1.05));
            int height = TOP + 2 * PANEL_HEIGHT + GAP + BOTTOM;
            StringBuilder svg = new StringBuilder();
            svg.append(String.format(Locale.ROOT,
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">%n",
                    WIDTH, height));
            svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"20\" font-size=\"15\">Mixed workload: reserved bytes and RSS of each allocator (each in its own JVM); live bytes dotted grey</text>%n", LEFT));
            int[] panelTops = {TOP, TOP + PANEL_HEIGHT + GAP};
            String[] titles = {"reserved bytes, as the allocator reports them (malloc, jdk-arena: none)", "process RSS (JVM included)"};
            for (int panel = 0; panel < 2; panel++) {
                int top = panelTops[panel];
                axes.frame(svg, top, titles[panel]);
                if (!lines.isEmpty()) {
                    svg.append(axes.polyline(lines.get(0), drainedAt(lines.get(0)), Sample::live, "#999",
                            " stroke-dasharray=\"2 3\"", top));
                }
                for (int p = 0; p < peers.size(); p++) {
                    List<Sample> samples = lines.get(p);
                    boolean reportsReserved = samples.stream().anyMatch(s -> s.reserved != s.live);
                    if (panel == 0 && !reportsReserved) {
                        continue;
                    }
                    svg.append(axes.polyline(samples, drainedAt(samples), panel == 0 ? Sample::reserved : Sample::rss,
                            COLOURS[p % COLOURS.length], "", top));
                }
            }
            int x = WIDTH - RIGHT + 14;
            int y = TOP + 8;
            for (int p = 0; p < peers.size(); p++) {
                svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>%n",
                        x, y, x + 24, y, COLOURS[p % COLOURS.length]));
                svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%s</text>%n", x + 30, y + 4, peers.get(p)));
                y += 18;
            }
            svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\" stroke-width=\"2\" stroke-dasharray=\"2 3\"/>%n", x, y, x + 24, y));
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">live bytes</text>%n", x + 30, y + 4));
            for (int p = 0; p < peers.size(); p++) {
                if (Workload.mib(peerMax[p]) > axes.maxMib()) {
                    y += 22;
                    svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"11\">%s: off the chart,</text>%n", x, y, peers.get(p)));
                    y += 14;
                    svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-size=\"11\">up to %.0f MiB</text>%n", x, y, Workload.mib(peerMax[p])));
                }
            }
            svg.append("</svg>\n");
            return svg.toString();
        }

        /** When the workers had freed everything: the first idle sample. */
        private static long drainedAt(List<Sample> samples) {
            for (Sample s : samples) {
                if (s.phase.equals("idle")) {
                    return s.millis;
                }
            }
            return Long.MAX_VALUE;
        }

        /** Work by operations on the left, seconds after the drain on the right; MiB upwards. */
        private record Axes(long maxOps, double idleSeconds, double maxMib) {
            int plotWidth() {
                return WIDTH - LEFT - RIGHT;
            }

            double workWidth() {
                return plotWidth() * WORK_SHARE;
            }

            double x(Sample s, long drainedAt) {
                if (s.millis < drainedAt) {
                    return LEFT + workWidth() * s.ops / maxOps;
                }
                return LEFT + workWidth() + (plotWidth() - workWidth()) * ((s.millis - drainedAt) / 1000.0) / idleSeconds;
            }

            double y(long bytes, int top) {
                return top + PANEL_HEIGHT - PANEL_HEIGHT * Math.min(1, Workload.mib(bytes) / maxMib);
            }

            void frame(StringBuilder svg, int top, String title) {
                svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" font-weight=\"bold\">%s</text>%n", LEFT, top - 8, title));
                for (int i = 0; i <= 5; i++) {
                    double mib = maxMib * i / 5;
                    double y = top + PANEL_HEIGHT - PANEL_HEIGHT * i / 5.0;
                    svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>%n",
                            LEFT, y, LEFT + plotWidth(), y));
                    svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0f MiB</text>%n", LEFT - 6, y + 4, mib));
                }
                int bottom = top + PANEL_HEIGHT;
                double millionOps = maxOps / 1e6;
                double step = niceCeiling(millionOps / 6);
                for (double m = 0; m <= millionOps + 1e-9; m += step) {
                    double x = LEFT + workWidth() * m / millionOps;
                    svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.0fM</text>%n", x, bottom + 16, m));
                }
                double split = LEFT + workWidth();
                svg.append(String.format(Locale.ROOT, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333\" stroke-dasharray=\"4 3\"/>%n",
                        split, top, split, bottom));
                int secondsStep = (int) Math.max(1, Math.ceil(idleSeconds / 6));
                for (int sec = secondsStep; sec <= idleSeconds; sec += secondsStep) {
                    double x = split + (plotWidth() - workWidth()) * sec / idleSeconds;
                    svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">+%d s</text>%n", x, bottom + 16, sec));
                }
                svg.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>%n",
                        LEFT, top, plotWidth(), PANEL_HEIGHT));
                svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">operations done (fill, steady, burst, plateau, drain)</text>%n",
                        LEFT + workWidth() / 2, bottom + 32));
                svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#555\">after the drain, idle</text>%n",
                        split + (plotWidth() - workWidth()) / 2, bottom + 32));
            }

            String polyline(List<Sample> samples, long drainedAt, java.util.function.ToLongFunction<Sample> value,
                            String colour, String dash, int top) {
                StringBuilder points = new StringBuilder();
                double lastX = Double.NaN;
                double lastY = Double.NaN;
                for (int i = 0; i < samples.size(); i++) {
                    Sample s = samples.get(i);
                    double x = x(s, drainedAt);
                    double y = y(value.applyAsLong(s), top);
                    // a point less than a pixel from the last one drawn adds nothing but bytes
                    if (i + 1 < samples.size() && Math.abs(x - lastX) < 1 && Math.abs(y - lastY) < 1) {
                        continue;
                    }
                    points.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, y));
                    lastX = x;
                    lastY = y;
                }
                return String.format(Locale.ROOT, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s points=\"%s\"/>%n",
                        colour, dash, points.toString().trim());
            }
        }

        private static double niceCeiling(double value) {
            double step = Math.pow(10, Math.floor(Math.log10(Math.max(value, 1e-9))));
            for (double m : new double[] {1, 2, 2.5, 5, 10}) {
                if (m * step >= value) {
                    return m * step;
                }
            }
            return 10 * step;
        }
    }
}
