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

/**
 * The parent side of {@link Workload}: one child JVM per allocator (the same java binary, class path and
 * native-access flag), then the table on the console, {@code results.csv}, {@code results.json},
 * {@code footprint.csv} and {@code footprint.svg} in the output folder.
 */
final class Report {
    /** Allocators drawn in the footprint picture. */
    private static final List<String> PLOTTED = List.of("segpool", "segpool-decay", "netty-pooled");

    private Report() {}

    record Result(String peer, long ops, long nanos, long peakLive, long peakReserved, boolean reservedCounted,
                  long heldReserved, long rssBefore, long peakRss, long heldRss, String breakdownAtPeak) {
        double opsPerSecond() {
            return ops * 1e9 / nanos;
        }

        double footprintRatio() {
            return peakLive == 0 ? 0 : (double) peakReserved / peakLive;
        }

        static Result read(Path file) throws IOException {
            Properties p = new Properties();
            try (var reader = Files.newBufferedReader(file)) {
                p.load(reader);
            }
            return new Result(p.getProperty("peer"), l(p, "ops"), l(p, "nanos"), l(p, "peakLive"),
                    l(p, "peakReserved"), Boolean.parseBoolean(p.getProperty("reservedCounted")),
                    l(p, "heldReserved"), l(p, "rssBefore"), l(p, "peakRss"), l(p, "heldRss"),
                    p.getProperty("breakdownAtPeak", ""));
        }

        private static long l(Properties p, String key) {
            return Long.parseLong(p.getProperty(key));
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
        for (String peer : peers) {
            System.out.printf("== %s%n", peer);
            List<String> command = new ArrayList<>(List.of(java,
                    "--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow",
                    "-Xms256m", "-Xmx256m", "-XX:MaxDirectMemorySize=4g",
                    "-Dworkload.scale=" + System.getProperty("workload.scale", "1"),
                    "-cp", classPath, Workload.class.getName(), "--child", peer, out.toString()));
            Process child = new ProcessBuilder(command).inheritIO().start();
            int status = child.waitFor();
            if (status != 0) {
                throw new IllegalStateException("the " + peer + " run failed with exit status " + status);
            }
            Result r = Result.read(out.resolve(peer + ".properties"));
            results.add(r);
            System.out.printf(Locale.ROOT, "   %s: %.2f M ops/s, footprint %.2f, held after drain %.1f MiB%n",
                    peer, r.opsPerSecond() / 1e6, r.footprintRatio(), Workload.mib(r.heldReserved));
        }
        printTable(results);
        writeCsv(results, out.resolve("results.csv"));
        writeJson(results, out.resolve("results.json"));
        writeFootprint(peers, out);
        System.out.printf(Locale.ROOT, "%nTotal %.0f s. Wrote results.csv, results.json, footprint.csv, footprint.svg to %s%n",
                (System.nanoTime() - started) / 1e9, out.toAbsolutePath());
    }

    private static void printTable(List<Result> results) {
        System.out.println();
        System.out.println("| allocator | M ops/s | peak live MiB | peak reserved MiB | footprint ratio | reserved 1 s after drain MiB | peak RSS MiB | RSS 1 s after drain MiB |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (Result r : results) {
            String star = r.reservedCounted ? "" : " *";
            System.out.printf(Locale.ROOT, "| %s | %.2f | %.0f | %.0f%s | %.2f%s | %.1f%s | %.0f | %.0f |%n",
                    r.peer, r.opsPerSecond() / 1e6, Workload.mib(r.peakLive), Workload.mib(r.peakReserved), star,
                    r.footprintRatio(), star, Workload.mib(r.heldReserved), star,
                    Workload.mib(r.peakRss), Workload.mib(r.heldRss));
        }
        for (Result r : results) {
            if (!r.breakdownAtPeak.isEmpty()) {
                System.out.println(r.peer + " at its peak: " + r.breakdownAtPeak);
            }
        }
        if (results.stream().anyMatch(r -> !r.reservedCounted)) {
            System.out.println("* reports no reserved bytes: live bytes counted by the workload instead; see RSS.");
        }
    }

    private static void writeCsv(List<Result> results, Path file) throws IOException {
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(file))) {
            w.println("allocator,ops,seconds,opsPerSecond,peakLiveBytes,peakReservedBytes,reservedReportedByAllocator,"
                    + "footprintRatio,reservedAfterDrainBytes,rssBeforeBytes,peakRssBytes,rssAfterDrainBytes");
            for (Result r : results) {
                w.printf(Locale.ROOT, "%s,%d,%.3f,%.0f,%d,%d,%b,%.4f,%d,%d,%d,%d%n", r.peer, r.ops, r.nanos / 1e9,
                        r.opsPerSecond(), r.peakLive, r.peakReserved, r.reservedCounted, r.footprintRatio(),
                        r.heldReserved, r.rssBefore, r.peakRss, r.heldRss);
            }
        }
    }

    private static void writeJson(List<Result> results, Path file) throws IOException {
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(file))) {
            w.printf("{%n  \"date\": \"%s\",%n  \"cores\": %d,%n  \"results\": [%n",
                    LocalDateTime.now().truncatedTo(ChronoUnit.SECONDS), Runtime.getRuntime().availableProcessors());
            for (int i = 0; i < results.size(); i++) {
                Result r = results.get(i);
                w.printf(Locale.ROOT, "    {\"allocator\": \"%s\", \"ops\": %d, \"seconds\": %.3f, \"opsPerSecond\": %.0f, "
                                + "\"peakLiveBytes\": %d, \"peakReservedBytes\": %d, \"reservedReportedByAllocator\": %b, "
                                + "\"footprintRatio\": %.4f, \"reservedAfterDrainBytes\": %d, \"rssBeforeBytes\": %d, "
                                + "\"peakRssBytes\": %d, \"rssAfterDrainBytes\": %d}%s%n",
                        r.peer, r.ops, r.nanos / 1e9, r.opsPerSecond(), r.peakLive, r.peakReserved, r.reservedCounted,
                        r.footprintRatio(), r.heldReserved, r.rssBefore, r.peakRss, r.heldRss,
                        i + 1 < results.size() ? "," : "");
            }
            w.printf("  ]%n}%n");
        }
    }

    /** One timeline sample: milliseconds, live, reserved, RSS. */
    private record Sample(long millis, long live, long reserved, long rss) {}

    private static List<Sample> timeline(Path file) throws IOException {
        List<Sample> samples = new ArrayList<>();
        List<String> lines = Files.readAllLines(file);
        for (String line : lines.subList(1, lines.size())) {
            String[] f = line.split(",");
            samples.add(new Sample(Long.parseLong(f[0]), Long.parseLong(f[2]), Long.parseLong(f[3]), Long.parseLong(f[4])));
        }
        return samples;
    }

    private static void writeFootprint(List<String> peers, Path out) throws IOException {
        try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out.resolve("footprint.csv")))) {
            w.println("allocator,millis,liveBytes,reservedBytes,rssBytes");
            for (String peer : peers) {
                for (Sample s : timeline(out.resolve(peer + "-timeline.csv"))) {
                    w.printf("%s,%d,%d,%d,%d%n", peer, s.millis, s.live, s.reserved, s.rss);
                }
            }
        }
        List<String> plotted = PLOTTED.stream().filter(peers::contains).toList();
        if (plotted.isEmpty()) {
            return;
        }
        List<List<Sample>> lines = new ArrayList<>();
        for (String peer : plotted) {
            lines.add(timeline(out.resolve(peer + "-timeline.csv")));
        }
        Files.writeString(out.resolve("footprint.svg"), Svg.footprint(plotted, lines));
    }

    /** A line chart of reserved bytes and RSS over time, drawn by hand: no plotting library needed. */
    static final class Svg {
        private static final int WIDTH = 900;
        private static final int HEIGHT = 480;
        private static final int LEFT = 70;
        private static final int RIGHT = 190;
        private static final int TOP = 40;
        private static final int BOTTOM = 50;
        private static final String[] COLOURS = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};

        static String footprint(List<String> peers, List<List<Sample>> lines) {
            long maxMillis = 1;
            long maxBytes = 1;
            for (List<Sample> samples : lines) {
                for (Sample s : samples) {
                    maxMillis = Math.max(maxMillis, s.millis);
                    maxBytes = Math.max(maxBytes, Math.max(s.live, Math.max(s.reserved, s.rss)));
                }
            }
            double maxMib = niceCeiling(Workload.mib(maxBytes));
            double maxSeconds = Math.ceil(maxMillis / 1000.0);
            StringBuilder svg = new StringBuilder();
            svg.append(String.format(Locale.ROOT,
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">%n",
                    WIDTH, HEIGHT));
            svg.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"22\" font-size=\"15\">Footprint over time: reserved bytes (solid), process RSS (dashed), live bytes (dotted grey)</text>%n", LEFT));
            int plotWidth = WIDTH - LEFT - RIGHT;
            int plotHeight = HEIGHT - TOP - BOTTOM;
            for (int i = 0; i <= 5; i++) {
                double mib = maxMib * i / 5;
                double y = TOP + plotHeight - plotHeight * i / 5.0;
                svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>%n", LEFT, y, LEFT + plotWidth, y));
                svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.0f MiB</text>%n", LEFT - 6, y + 4, mib));
            }
            int secondsStep = (int) Math.max(1, Math.ceil(maxSeconds / 10));
            for (int s = 0; s <= maxSeconds; s += secondsStep) {
                double x = LEFT + plotWidth * s / maxSeconds;
                svg.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d s</text>%n", x, TOP + plotHeight + 18, s));
            }
            svg.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>%n", LEFT, TOP, plotWidth, plotHeight));
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">seconds since the start of each allocator's run (each in its own JVM)</text>%n", LEFT + plotWidth / 2, HEIGHT - 12));
            int legendY = TOP + 10;
            for (int p = 0; p < peers.size(); p++) {
                String colour = COLOURS[p % COLOURS.length];
                List<Sample> samples = lines.get(p);
                svg.append(polyline(samples, Sample::reserved, colour, "", maxSeconds, maxMib, plotWidth, plotHeight));
                svg.append(polyline(samples, Sample::rss, colour, " stroke-dasharray=\"6 4\"", maxSeconds, maxMib, plotWidth, plotHeight));
                svg.append(polyline(samples, Sample::live, "#999", " stroke-dasharray=\"2 3\"", maxSeconds, maxMib, plotWidth, plotHeight));
                int x = LEFT + plotWidth + 12;
                svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>%n", x, legendY, x + 24, legendY, colour));
                svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%s reserved</text>%n", x + 30, legendY + 4, peers.get(p)));
                legendY += 18;
                svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>%n", x, legendY, x + 24, legendY, colour));
                svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">%s RSS</text>%n", x + 30, legendY + 4, peers.get(p)));
                legendY += 26;
            }
            int x = LEFT + plotWidth + 12;
            svg.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\" stroke-width=\"2\" stroke-dasharray=\"2 3\"/>%n", x, legendY, x + 24, legendY));
            svg.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\">live bytes</text>%n", x + 30, legendY + 4));
            svg.append("</svg>\n");
            return svg.toString();
        }

        private static String polyline(List<Sample> samples, java.util.function.ToLongFunction<Sample> value, String colour,
                                       String dash, double maxSeconds, double maxMib, int plotWidth, int plotHeight) {
            StringBuilder points = new StringBuilder();
            for (Sample s : samples) {
                double x = LEFT + plotWidth * (s.millis / 1000.0) / maxSeconds;
                double y = TOP + plotHeight - plotHeight * Workload.mib(value.applyAsLong(s)) / maxMib;
                points.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, y));
            }
            return String.format(Locale.ROOT, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\"%s points=\"%s\"/>%n",
                    colour, dash, points.toString().trim());
        }

        private static double niceCeiling(double mib) {
            double step = Math.pow(10, Math.floor(Math.log10(Math.max(mib, 1))));
            for (double m : new double[] {1, 2, 2.5, 5, 10}) {
                if (m * step >= mib) {
                    return m * step;
                }
            }
            return 10 * step;
        }
    }
}
