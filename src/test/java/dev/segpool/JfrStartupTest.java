package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import jdk.jfr.FlightRecorder;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;

/**
 * segpool starts nothing of JFR in a JVM that records nothing (JFR's Java side took most of the first
 * {@code SegmentPool.create()}), and its events still reach a recording started later, the periodic
 * statistics of a pool made before the recorder existed included. Each case runs in a JVM of its own
 * ({@link Probe}), since the test JVM's recorder may exist already; the child logs its class loading
 * ({@code -Xlog:class+load}) to the same output as its own lines, so the test sees which JFR classes
 * were loaded before the recording started.
 */
class JfrStartupTest {
    /** Loaded when JFR's Java side starts: by the registration of an event type, or of a periodic event. */
    private static final String JFR_STARTED = "jdk.jfr.internal.MetadataRepository";
    private static final String RECORDING_STARTS = "PROBE: the recording starts";

    @Test
    void aPoolStartsNoFlightRecorder_andARecordingStartedLaterGetsItsEvents() throws Exception {
        String output = runProbe("late");
        int start = output.indexOf(RECORDING_STARTS);
        assertTrue(start >= 0, output);
        String before = output.substring(0, start);
        assertFalse(before.contains(JFR_STARTED), () -> "a pool started JFR's Java side before any recording:\n" + before);
        for (String event : List.of("PoolStatistics", "BudgetStatistics", "ChunkAllocated")) {
            assertFalse(before.contains("dev.segpool.PoolEvents$" + event + " "),
                    () -> "a pool loaded its event class " + event + " before any recording:\n" + before);
        }
    }

    @Test
    void aRecordingRunningFromTheStart_getsThePoolsEvents() throws Exception {
        runProbe("early");
    }

    /** Runs {@link Probe} in {@code mode} in a JVM of its own; asserts it exits with 0; returns its output. */
    private static String runProbe(String mode) throws IOException, InterruptedException {
        Path out = Files.createTempFile("segpool-jfr-probe", ".txt");
        try {
            List<String> command = new ArrayList<>();
            command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            command.add("-Xlog:class+load=info:stdout");
            command.add("-cp");
            command.add(System.getProperty("java.class.path"));
            command.add(Probe.class.getName());
            command.add(mode);
            Process process = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(out.toFile()).start();
            if (!process.waitFor(2, TimeUnit.MINUTES)) {
                process.destroyForcibly().waitFor();
            }
            String output = Files.readString(out, StandardCharsets.UTF_8);
            assertEquals(0, process.exitValue(), () -> "probe '" + mode + "' failed:\n" + output);
            return output;
        } finally {
            Files.deleteIfExists(out);
        }
    }

    /**
     * The child JVM. {@code late}: a pool allocates a chunk and frees; the JVM's flight recorder must
     * not exist then; then a recording starts, and both that pool's periodic statistics and a new
     * pool's chunk event must be in it. {@code early}: the recording starts first, and both pools' chunk
     * events must be in it. Exits with 0 when
     * all holds, else prints what did not and exits with 1.
     */
    static final class Probe {
        public static void main(String[] args) throws Exception {
            boolean late = args[0].equals("late");
            List<String> failures = new ArrayList<>();
            Recording recording = late ? null : startRecording();
            try (SegmentPool before = SegmentPool.builder().name("before").build()) {
                before.free(before.allocate(64));
                if (late && FlightRecorder.isInitialized()) {
                    failures.add("creating a pool and allocating from it started the flight recorder");
                }
                if (late) {
                    System.out.println(RECORDING_STARTS);
                    System.out.flush();
                    recording = startRecording();
                }
                try (SegmentPool after = SegmentPool.builder().name("after").build()) {
                    after.free(after.allocate(64));
                    Thread.sleep(500); // the periodic statistics, every 50 ms
                }
            }
            recording.stop();
            Path file = Files.createTempFile("segpool-probe", ".jfr");
            recording.dump(file);
            recording.close();
            List<RecordedEvent> events = RecordingFile.readAllEvents(file);
            Files.delete(file);
            // Only when the recorder came after the pool: a periodic event registered while a recording
            // runs gets its default period (5 s), not the recording's (JFR's behaviour).
            if (late && count(events, "dev.segpool.PoolStatistics", "before") == 0) {
                failures.add("no PoolStatistics event of the pool made before the recorder");
            }
            if (count(events, "dev.segpool.ChunkAllocated", "after") == 0) {
                failures.add("no ChunkAllocated event of the pool made during the recording");
            }
            if (!late && count(events, "dev.segpool.ChunkAllocated", "before") == 0) {
                failures.add("no ChunkAllocated event of the first pool made during the recording");
            }
            failures.forEach(System.out::println);
            System.exit(failures.isEmpty() ? 0 : 1);
        }

        private static Recording startRecording() {
            Recording recording = new Recording();
            recording.enable("dev.segpool.ChunkAllocated");
            recording.enable("dev.segpool.PoolStatistics").withPeriod(Duration.ofMillis(50));
            recording.start();
            return recording;
        }

        private static long count(List<RecordedEvent> events, String type, String pool) {
            return events.stream().filter(e -> e.getEventType().getName().equals(type))
                    .filter(e -> pool.equals(e.getString("pool"))).count();
        }
    }
}
