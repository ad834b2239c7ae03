package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import javax.management.JMX;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedEvent;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;

/** metrics(), dumpStats(), the JFR events and the JMX MXBean. */
class ObservabilityTest {

    @Test
    void metrics_perArenaFigures_agreeWithTotals() {
        try (SegmentPool pool = SegmentPool.builder().name("metrics").pageSize(4096).chunkSize(1 << 16).arenas(2)
                .threadLocalCaches(false).build()) {
            List<MemorySegment> live = new ArrayList<>();
            for (int i = 0; i < 50; i++) {
                live.add(pool.allocate(48));
            }
            live.add(pool.allocate(20_000));
            live.add(pool.allocate(100_000)); // huge
            PoolMetrics m = pool.metrics();
            assertEquals(50L * 48 + 20_480 + 100_000, m.activeBytes());
            assertEquals(m.reservedBytes(), m.activeBytes() + m.cachedBytes() + m.freeBytes());
            assertEquals(m.arenas().stream().mapToInt(PoolMetrics.ArenaMetrics::chunks).sum(), m.chunks());
            assertEquals(100_000, m.hugeBytes());
            assertEquals(1, m.hugeAllocations());
            long small = m.arenas().stream().mapToLong(PoolMetrics.ArenaMetrics::smallAllocations).sum();
            long normal = m.arenas().stream().mapToLong(PoolMetrics.ArenaMetrics::normalAllocations).sum();
            assertEquals(50, small);
            assertEquals(1, normal);
            PoolMetrics.SizeClassMetrics c48 = m.arenas().stream().flatMap(a -> a.sizeClasses().stream())
                    .filter(c -> c.elementSize() == 48).findFirst().orElseThrow();
            assertEquals(50, c48.usedElements());
            assertEquals(7, m.arenas().get(0).chunkLists().size());
            live.forEach(pool::free);
            PoolMetrics after = pool.metrics();
            assertEquals(0, after.activeBytes());
            assertEquals(1, after.hugeDeallocations());
            assertEquals(after.reservedBytes(), after.cachedBytes() + after.freeBytes());
        }
    }

    @Test
    void metrics_cacheHitsAndMisses_areCounted() {
        try (SegmentPool pool = SegmentPool.builder().name("hits").pageSize(4096).chunkSize(1 << 16).build()) {
            for (int i = 0; i < 100; i++) {
                pool.free(pool.allocate(64));
            }
            PoolMetrics m = pool.metrics();
            assertEquals(100, m.cacheHits() + m.cacheMisses());
            assertTrue(m.cacheHits() >= 99, "after the first refill every pair is a hit: " + m);
        }
    }

    @Test
    void dumpStats_namesPoolArenasAndChunks() {
        try (SegmentPool pool = SegmentPool.builder().name("dumped").pageSize(4096).chunkSize(1 << 16).arenas(1)
                .build()) {
            MemorySegment s = pool.allocate(20_000);
            MemorySegment t = pool.allocate(64);
            String stats = pool.dumpStats();
            assertTrue(stats.startsWith("SegmentPool 'dumped'"), stats);
            assertTrue(stats.contains("arena 0"), stats);
            assertTrue(stats.contains("chunk 0x"), stats);
            assertTrue(stats.contains("small 64 B"), stats);
            assertTrue(stats.lines().anyMatch(l -> l.trim().matches("[#s.]{16}")), "a page map line: " + stats);
            pool.free(s);
            pool.free(t);
        }
    }

    @Test
    void name_defaultIsGenerated_andBadNamesAreRejected() {
        try (SegmentPool a = SegmentPool.create(); SegmentPool b = SegmentPool.create()) {
            assertTrue(a.name().startsWith("segpool-"));
            assertFalse(a.name().equals(b.name()));
        }
        for (String bad : new String[] {"", "  ", "a,b", "a=b", "a:b", "a*", "q?", "x\ny"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SegmentPool.builder().name(bad));
            assertTrue(e.getMessage().startsWith("name must be"), e.getMessage());
        }
        assertThrows(NullPointerException.class, () -> SegmentPool.builder().name(null));
    }

    @Test
    void openBudgets_areShownByDumpStats_andByThePeriodicJfrEvent() throws Exception {
        Path file = Files.createTempFile("segpool", ".jfr");
        try (Recording recording = new Recording()) {
            recording.enable("dev.segpool.BudgetStatistics").withPeriod(Duration.ofMillis(50));
            recording.start();
            try (SegmentPool pool = SegmentPool.builder().name("budgeted").build();
                 MemoryBudget tenant = pool.newBudget("tenant", 1 << 20);
                 MemoryBudget query = tenant.newBudget("query", 1 << 16)) {
                MemorySegment segment = query.allocate(1000); // class 1024
                String stats = pool.dumpStats();
                assertTrue(stats.contains("budgets open 2"), stats);
                assertTrue(stats.contains("'tenant/query': used 1024 B of 65536 B, peak 1024 B"), stats);
                assertTrue(stats.contains("'tenant': used 1024 B of 1048576 B"), stats);
                Thread.sleep(500); // the periodic event, every 50 ms, needs time to be emitted
                query.free(segment);
            }
            recording.stop();
            recording.dump(file);
        }
        List<RecordedEvent> events = RecordingFile.readAllEvents(file);
        Files.delete(file);
        List<RecordedEvent> query = events.stream()
                .filter(e -> e.getEventType().getName().equals("dev.segpool.BudgetStatistics"))
                .filter(e -> "budgeted".equals(e.getString("pool")))
                .filter(e -> "tenant/query".equals(e.getString("budget"))).toList();
        assertFalse(query.isEmpty(), events.toString());
        // A period may end before the allocation or after the free (0 bytes used), or while the allocation
        // is in flight (used already counts it, the peak is raised once it succeeded): the last event that
        // shows the segment was taken while the test slept.
        RecordedEvent holding = query.stream().filter(e -> e.getLong("usedBytes") != 0).reduce((a, b) -> b)
                .orElseThrow(() -> new AssertionError("no event while the budget held its segment: " + query));
        assertEquals(1024, holding.getLong("usedBytes"));
        assertEquals(1024, holding.getLong("peakBytes"));
        assertEquals(1 << 16, holding.getLong("maxBytes"));
    }

    /**
     * A scoped task that ends releases its cache: with many tasks a second, one event each filled a
     * default recording at about 30 MB a second. The event is throttled to 100 a second by default.
     */
    @Test
    void jfr_cacheReleased_isThrottled_whenManyScopedTasksEnd() throws Exception {
        Path file = Files.createTempFile("segpool", ".jfr");
        int tasks = 50_000;
        long elapsedNanos;
        try (Recording recording = new Recording()) {
            recording.enable("dev.segpool.CacheReleased");
            recording.start();
            try (SegmentPool pool = SegmentPool.builder().name("throttled").build()) {
                long started = System.nanoTime();
                for (int i = 0; i < tasks; i++) {
                    pool.runWithThreadCache(() -> pool.free(pool.allocate(64)));
                }
                elapsedNanos = System.nanoTime() - started;
            }
            recording.stop();
            recording.dump(file);
        }
        long released = RecordingFile.readAllEvents(file).stream()
                .filter(e -> e.getEventType().getName().equals("dev.segpool.CacheReleased"))
                .filter(e -> "throttled".equals(e.getString("pool"))).count();
        Files.delete(file);
        long seconds = elapsedNanos / 1_000_000_000L + 1;
        assertTrue(released >= 1, "some task's release was recorded");
        assertTrue(released <= 200 * (seconds + 1), () -> released + " CacheReleased events for " + tasks
                + " tasks in " + seconds + " s: the throttle is 100 a second");
    }

    @Test
    void jfr_eventsCarryThePoolName() throws Exception {
        Path file = Files.createTempFile("segpool", ".jfr");
        try (Recording recording = new Recording()) {
            for (String event : List.of("ChunkAllocated", "ChunkReleased", "LimitExceeded", "HugeAllocated")) {
                recording.enable("dev.segpool." + event);
            }
            // Throttled by default (100 a second, sampled adaptively after a burst): every one here.
            recording.enable("dev.segpool.CacheReleased").with("throttle", "off");
            recording.enable("dev.segpool.PoolStatistics").withPeriod(Duration.ofMillis(50));
            recording.start();
            try (SegmentPool pool = SegmentPool.builder().name("flight").pageSize(4096).chunkSize(1 << 16)
                    .maxMemory(1 << 17).build()) {
                MemorySegment a = pool.allocate(40_000);
                MemorySegment b = pool.allocate(40_000); // second chunk
                assertThrows(MemoryLimitExceededException.class, () -> pool.allocate(40_000));
                pool.free(a);
                pool.free(b);
                pool.free(pool.allocate(70_000)); // huge, after trimming room for it
                pool.runWithThreadCache(() -> pool.free(pool.allocate(64)));
                pool.trim();
                Thread.sleep(1000); // the periodic statistics event, every 50 ms, needs time to be emitted

            }
            recording.stop();
            recording.dump(file);
        }
        List<RecordedEvent> events = RecordingFile.readAllEvents(file);
        Files.delete(file);
        Map<String, Long> flight = events.stream().filter(e -> "flight".equals(e.getString("pool")))
                .collect(Collectors.groupingBy(e -> e.getEventType().getName(), Collectors.counting()));
        assertTrue(flight.getOrDefault("dev.segpool.ChunkAllocated", 0L) >= 2, flight.toString());
        assertTrue(flight.getOrDefault("dev.segpool.ChunkReleased", 0L) >= 2, flight.toString());
        assertEquals(1L, flight.get("dev.segpool.LimitExceeded"), flight.toString());
        assertEquals(1L, flight.get("dev.segpool.HugeAllocated"), flight.toString());
        assertTrue(flight.getOrDefault("dev.segpool.CacheReleased", 0L) >= 1, flight.toString());
        assertTrue(flight.getOrDefault("dev.segpool.PoolStatistics", 0L) >= 2, flight.toString());
        RecordedEvent limit = events.stream().filter(e -> e.getEventType().getName().equals("dev.segpool.LimitExceeded"))
                .filter(e -> "flight".equals(e.getString("pool"))).findFirst().orElseThrow();
        assertEquals(1 << 17, limit.getLong("limit"));
        assertEquals(1 << 16, limit.getLong("requestedBytes"));
    }

    @Test
    void jmx_mxBeanShowsMetrics_andIsUnregisteredOnClose() throws Exception {
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        ObjectName name = new ObjectName("dev.segpool:type=SegmentPool,name=jmx-test");
        SegmentPool pool = SegmentPool.builder().name("jmx-test").pageSize(4096).chunkSize(1 << 16).jmx(true).build();
        try {
            MemorySegment s = pool.allocate(10_000);
            assertTrue(server.isRegistered(name));
            assertEquals(pool.metrics().reservedBytes(), server.getAttribute(name, "ReservedBytes"));
            assertEquals(pool.metrics().activeBytes(), server.getAttribute(name, "ActiveBytes"));
            assertEquals(pool.metrics().cachedBytes(), server.getAttribute(name, "CachedBytes"));
            assertEquals(pool.metrics().threadCaches(), server.getAttribute(name, "ThreadCaches"));
            SegmentPoolMXBean proxy = JMX.newMXBeanProxy(server, name, SegmentPoolMXBean.class);
            assertEquals("jmx-test", proxy.getName());
            assertEquals(-1, proxy.getMaxMemory());
            assertTrue(proxy.dumpStats().contains("jmx-test"));
            IllegalArgumentException duplicate = assertThrows(IllegalArgumentException.class,
                    () -> SegmentPool.builder().name("jmx-test").jmx(true).build());
            assertTrue(duplicate.getMessage().contains("already registered"), duplicate.getMessage());
            pool.free(s);
        } finally {
            pool.close();
        }
        assertFalse(server.isRegistered(name));
        SegmentPool.builder().name("jmx-test").jmx(true).build().close(); // the name is free again
    }

    @Test
    void reservedBytes_isTheMetricsFigure_readWhileAnArenaLockIsHeld_andAfterClose() throws Exception {
        SegmentPool pool = SegmentPool.builder().name("reserved").pageSize(4096).chunkSize(1 << 16).arenas(1)
                .threadLocalCaches(false).build();
        assertEquals(0, pool.reservedBytes());
        MemorySegment small = pool.allocate(48);
        MemorySegment huge = pool.allocate(100_000);
        assertEquals((1 << 16) + 100_000, pool.reservedBytes());
        assertEquals(pool.metrics().reservedBytes(), pool.reservedBytes());

        // metrics() would wait for this lock; reservedBytes() reads one counter and does not
        java.util.concurrent.CountDownLatch locked = new java.util.concurrent.CountDownLatch(1);
        java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
        Thread holder = Thread.ofPlatform().start(() -> {
            pool.arenas()[0].lock.lock();
            try {
                locked.countDown();
                release.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            } finally {
                pool.arenas()[0].lock.unlock();
            }
        });
        locked.await();
        try {
            assertEquals((1 << 16) + 100_000, org.junit.jupiter.api.Assertions.assertTimeoutPreemptively(
                    Duration.ofSeconds(10), pool::reservedBytes));
        } finally {
            release.countDown();
            holder.join();
        }

        pool.free(huge);
        assertEquals(1 << 16, pool.reservedBytes());
        pool.free(small);
        pool.close();
        assertEquals(0, pool.reservedBytes(), "a closed pool with no open arena holds nothing");
    }

    @Test
    void closedPool_observersThrow() {
        SegmentPool pool = SegmentPool.create();
        pool.close();
        assertThrows(IllegalStateException.class, pool::metrics);
        assertThrows(IllegalStateException.class, pool::dumpStats);
        assertThrows(IllegalStateException.class, pool::close);
        assertTrue(pool.toString().contains("closed"));
    }
}
