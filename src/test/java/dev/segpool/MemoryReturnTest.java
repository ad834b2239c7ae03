package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.FutureTask;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Giving memory back after a peak: trim(), decay, and page purging with native access. */
class MemoryReturnTest {

    static long residentBytes() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }

    @Test
    void afterPeak_trim_releasesAlmostEverything_andRssFalls() throws IOException {
        try (SegmentPool pool = SegmentPool.builder().name("peak").build()) {
            long rssBefore = residentBytes();
            SplittableRandom random = new SplittableRandom(42);
            List<MemorySegment> live = new ArrayList<>();
            long total = 0;
            while (total < 512L << 20) {
                long size = switch (random.nextInt(4)) {
                    case 0 -> 16 + random.nextInt(4096);
                    case 1 -> 4096 + random.nextInt(60_000);
                    case 2 -> 65_536 + random.nextInt(1 << 20);
                    default -> (1 << 20) + random.nextInt(6 << 20); // some above the chunk: huge
                };
                MemorySegment s = pool.allocate(size);
                s.fill((byte) 1); // make it resident
                live.add(s);
                total += size;
            }
            long peak = pool.metrics().reservedBytes();
            long rssPeak = residentBytes();
            live.forEach(pool::free);
            long released = pool.trim();
            long after = pool.metrics().reservedBytes();
            assertTrue(released > 0);
            assertTrue(after <= peak / 20, "reserved " + after + " after trim, peak " + peak);
            assertEquals(0, pool.metrics().activeBytes());
            if (TestModes.nativeAccess()) {
                long rssAfter = residentBytes();
                double givenBack = (double) (rssPeak - rssAfter) / (rssPeak - rssBefore);
                assertTrue(givenBack >= 0.8, "RSS fell by only " + givenBack * 100 + "% of its growth ("
                        + rssBefore + " -> " + rssPeak + " -> " + rssAfter + ")");
            }
        }
    }

    @Test
    void idlePool_givesMemoryBackByItself_afterDecay() throws Exception {
        try (SegmentPool pool = SegmentPool.builder().name("decaying").pageSize(4096).chunkSize(1 << 16)
                .decay(Duration.ofMillis(50)).threadLocalCaches(false).build()) {
            List<MemorySegment> live = new ArrayList<>();
            for (int i = 0; i < 64; i++) {
                live.add(pool.allocate(i % 2 == 0 ? 100 : 30_000));
            }
            live.forEach(pool::free);
            assertTrue(pool.metrics().reservedBytes() > 0);
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (pool.metrics().reservedBytes() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(10); // no allocation call: the decay thread does the work
            }
            assertEquals(0, pool.metrics().reservedBytes());
            assertEquals(0, pool.metrics().chunks());
        }
    }

    @Test
    void decay_releasesTheCacheOfAnEndedThread_withoutWaitingForGc() throws Exception {
        try (SegmentPool pool = SegmentPool.builder().pageSize(4096).chunkSize(1 << 16).arenas(1)
                .decay(Duration.ofHours(1)).build()) {
            Thread worker = Thread.ofPlatform().start(() -> {
                for (int i = 0; i < 500; i++) {
                    pool.free(pool.allocate(16 + (i % 30) * 16));
                }
            });
            worker.join();
            assertEquals(1, pool.metrics().threadCaches());
            assertTrue(pool.metrics().cachedBytes() > 0);
            pool.decayNow(); // what the decay thread does on its next tick
            assertEquals(0, pool.metrics().threadCaches());
            assertEquals(0, pool.metrics().cachedBytes());
            assertEquals(0, pool.arenas()[0].boundCaches.get());
            assertEquals(0, pool.metrics().activeBytes());
        }
    }

    @Test
    void decay_leavesTheCacheOfALiveThreadAlone() throws Exception {
        try (SegmentPool pool = SegmentPool.builder().pageSize(4096).chunkSize(1 << 16)
                .decay(Duration.ofHours(1)).build()) {
            pool.free(pool.allocate(64));
            long cached = pool.metrics().cachedBytes();
            assertTrue(cached > 0);
            pool.decayNow();
            assertEquals(cached, pool.metrics().cachedBytes(), "only the owner may empty a live thread's cache");
        }
    }

    @Test
    void decay_keepsAnEmptyChunkUntilTheDecayTimeHasPassed_thenReleasesIt() {
        long[] now = {0};
        long hour = Duration.ofHours(1).toNanos();
        PoolBuilder builder = (PoolBuilder) SegmentPool.builder().pageSize(4096).chunkSize(1 << 16)
                .decay(Duration.ofHours(1)).threadLocalCaches(false);
        try (SegmentPool pool = builder.ticker(() -> now[0]).scheduler((tick, period) -> new FutureTask<>(tick, null))
                .build()) {
            pool.decayNow(); // the tick that sees the chunk in use
            pool.free(pool.allocate(30_000));
            now[0] += hour / 2;
            pool.decayNow();
            assertEquals(1 << 16, pool.metrics().reservedBytes(), "half the decay time: kept for reuse");
            now[0] += hour / 2;
            pool.decayNow();
            assertEquals(1 << 16, pool.metrics().reservedBytes(), "stamped by the first tick that saw it empty, half an hour in: kept");
            now[0] += hour / 2;
            pool.decayNow();
            assertEquals(0, pool.metrics().reservedBytes(), "past the decay time and a tick: released");
        }
    }

    @Test
    void purgedPages_areReusedCorrectly() {
        try (SegmentPool pool = SegmentPool.builder().name("purging").pageSize(4096).chunkSize(1 << 20).arenas(1)
                .threadLocalCaches(false).build()) {
            MemorySegment pin = pool.allocate(64 * 1024); // keeps the chunk in use
            List<MemorySegment> runs = new ArrayList<>();
            for (int i = 0; i < 8; i++) {
                MemorySegment s = pool.allocate(64 * 1024);
                s.fill((byte) 0x33);
                runs.add(s);
            }
            runs.forEach(pool::free);
            long released = pool.trim();
            if (TestModes.nativeAccess()) {
                assertTrue(released >= 8 * 64 * 1024, "free runs inside a live chunk are purged: " + released);
            } else {
                assertEquals(0, released, "without native access only whole chunks go back");
            }
            assertEquals(1 << 20, pool.metrics().reservedBytes());
            for (int round = 0; round < 2; round++) {
                List<MemorySegment> again = new ArrayList<>();
                for (int i = 0; i < 8; i++) {
                    MemorySegment s = pool.allocate(64 * 1024);
                    s.fill((byte) (i + round));
                    again.add(s);
                }
                for (int i = 0; i < 8; i++) {
                    MemorySegment s = again.get(i);
                    assertEquals((byte) (i + round), s.get(ValueLayout.JAVA_BYTE, 0));
                    assertEquals((byte) (i + round), s.get(ValueLayout.JAVA_BYTE, s.byteSize() - 1));
                }
                again.forEach(pool::free);
                pool.trim();
            }
            try (Arena arena = pool.newArena()) {
                MemorySegment zeroed = arena.allocate(64 * 1024);
                for (long i = 0; i < zeroed.byteSize(); i += 4096) {
                    assertEquals(0, zeroed.get(ValueLayout.JAVA_BYTE, i));
                }
            }
            pool.free(pin);
        }
    }

    @Test
    void trim_andDecay_badInputs() {
        assertThrows(NullPointerException.class, () -> SegmentPool.builder().decay(null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SegmentPool.builder().decay(Duration.ofMillis(-1)));
        assertTrue(e.getMessage().startsWith("decay must be"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> SegmentPool.builder().decay(Duration.ofDays(2)));
        SegmentPool pool = SegmentPool.create();
        pool.close();
        assertThrows(IllegalStateException.class, pool::trim);
    }
}
