package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Leak reports through the {@code System.Logger} "dev.segpool" (java.util.logging here). */
class LeakReportTest {
    private CapturedWarnings captured;
    private List<String> warnings;

    @BeforeEach
    void listen() {
        captured = CapturedWarnings.start();
        warnings = captured.messages();
    }

    @AfterEach
    void stopListening() {
        captured.close();
    }

    private List<String> about(String poolName) {
        return warnings.stream().filter(w -> w.contains("'" + poolName + "'")).toList();
    }

    /** A budget's segments left at close, huge ones included, count as segments never freed, not as arenas. */
    @Test
    void close_reportsBudgetSegmentsNeverFreed_asSegments_andNamesTheBudget() {
        SegmentPool pool = SegmentPool.builder().name("leaky-budget").pageSize(4096).chunkSize(1 << 16).build();
        MemoryBudget budget = pool.newBudget("tenant", 1 << 20);
        budget.allocate(100);        // class 112
        budget.allocate(200_000);    // huge
        pool.close();
        List<String> report = about("leaky-budget");
        assertEquals(2, report.size(), report.toString());
        assertTrue(report.get(0).contains("budget 'tenant' held " + (112 + 200_000) + " bytes (2 allocations"),
                report.get(0));
        assertTrue(report.get(1).contains("2 segments (" + (112 + 200_000) + " bytes) never freed and 0 arenas"
                + " never closed (holding 0 bytes"), report.get(1));
    }

    @Test
    void close_reportsSegmentsNeverFreed_withCountAndBytes() {
        SegmentPool pool = SegmentPool.builder().name("leaky-raw").pageSize(4096).chunkSize(1 << 16).build();
        pool.allocate(100);          // class 112
        pool.allocate(5000);         // class 5120
        pool.allocate(200_000);      // huge: above the 64 KiB chunk, exact size
        pool.free(pool.allocate(64)); // not a leak
        pool.close();
        List<String> report = about("leaky-raw");
        assertEquals(1, report.size(), warnings.toString());
        assertTrue(report.get(0).contains("3 segments (" + (112 + 5120 + 200_000) + " bytes) never freed"), report.get(0));
        assertTrue(report.get(0).contains("0 arenas never closed"), report.get(0));
    }

    @Test
    void close_withNoLeak_reportsNothing() {
        SegmentPool pool = SegmentPool.builder().name("tidy").pageSize(4096).chunkSize(1 << 16).build();
        pool.free(pool.allocate(100));
        try (Arena arena = pool.newArena()) {
            arena.allocate(10);
        }
        pool.close();
        assertEquals(List.of(), about("tidy"));
    }

    @Test
    void close_reportsOpenArenas() {
        SegmentPool pool = SegmentPool.builder().name("leaky-arena").pageSize(4096).chunkSize(1 << 16).build();
        Arena open = pool.newArena();
        open.allocate(64);
        open.allocate(64);        // both cut from one 4 KiB block
        open.allocate(10_000);    // a pool allocation of its own: class 10240
        pool.close();
        List<String> report = about("leaky-arena");
        assertEquals(1, report.size(), warnings.toString());
        assertTrue(report.get(0).contains("1 arenas never closed (holding " + (4096 + 10_240) + " bytes"),
                report.get(0));
        assertEquals(TestModes.nativeAccess(), report.get(0).contains("kept mapped until those arenas close"),
                "with native access the open arena's memory stays mapped: " + report.get(0));
        open.close();
    }

    @Test
    void leakDetectionAll_reportsAllocationSite() {
        SegmentPool pool = SegmentPool.builder().name("leaky-traced").pageSize(4096).chunkSize(1 << 16)
                .leakDetection(LeakDetection.ALL).build();
        pool.allocate(48);
        pool.close();
        String report = about("leaky-traced").get(0);
        assertTrue(report.contains("segment of 48 bytes"), report);
        assertTrue(report.contains("leakDetectionAll_reportsAllocationSite"), "the allocating method is named: " + report);
    }

    @Test
    void leakDetectionOff_saysHowToFindTheSite() {
        SegmentPool pool = SegmentPool.builder().name("leaky-untraced").pageSize(4096).chunkSize(1 << 16)
                .leakDetection(LeakDetection.OFF).build();
        pool.allocate(48);
        pool.close();
        assertTrue(about("leaky-untraced").get(0).contains("segpool.leakDetection"));
    }

    @Test
    void unreachableArena_isReclaimedThroughCleaner_andReported() throws Exception {
        SegmentPool pool = SegmentPool.builder().name("lost-arena").pageSize(4096).chunkSize(1 << 16)
                .leakDetection(LeakDetection.ALL).build();
        openAndDropArena(pool);
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (pool.metrics().openArenas() > 0 && System.nanoTime() < deadline) {
            System.gc();
            Thread.sleep(20);
        }
        assertEquals(0, pool.metrics().openArenas(), "the Cleaner did not reclaim the lost arena");
        while (about("lost-arena").isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        String report = about("lost-arena").get(0);
        assertTrue(report.contains("confined Arena holding 3 segments (300 bytes) became unreachable without close()"),
                report);
        assertTrue(report.contains("openAndDropArena"), "the arena's creation site is named: " + report);
        pool.trimCurrentThreadCache();
        assertEquals(0, pool.metrics().activeBytes());
        pool.close();
    }

    private static void openAndDropArena(SegmentPool pool) {
        Arena arena = pool.newArena();
        for (int i = 0; i < 3; i++) {
            arena.allocate(100);
        }
    }

    @Test
    void leakDetection_systemPropertyDefault_andBadValue() {
        String old = System.getProperty("segpool.leakDetection");
        try {
            System.setProperty("segpool.leakDetection", "sampled");
            assertEquals(LeakDetection.SAMPLED, LeakDetection.fromSystemProperty());
            System.setProperty("segpool.leakDetection", "loud");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, SegmentPool::create);
            assertTrue(e.getMessage().contains("segpool.leakDetection"), e.getMessage());
        } finally {
            if (old == null) {
                System.clearProperty("segpool.leakDetection");
            } else {
                System.setProperty("segpool.leakDetection", old);
            }
        }
        assertThrows(NullPointerException.class, () -> SegmentPool.builder().leakDetection(null));
    }
}
