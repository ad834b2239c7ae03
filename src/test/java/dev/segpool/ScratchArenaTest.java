package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link SegmentPool#newArena()} and {@link SegmentPool#newSharedArena()}, in both native-access modes. */
class ScratchArenaTest {
    private final SegmentPool pool = SegmentPool.builder().name("arena-test").pageSize(4096).chunkSize(1 << 20)
            .arenas(2).build();

    @AfterEach
    void close() {
        pool.close();
    }

    private static boolean allZero(MemorySegment segment) {
        for (long i = 0; i < segment.byteSize(); i++) {
            if (segment.get(ValueLayout.JAVA_BYTE, i) != 0) {
                return false;
            }
        }
        return true;
    }

    @Test
    void metrics_showTheModeDecidedForThePool() {
        assertEquals(TestModes.nativeAccess(), pool.metrics().nativeAccess());
        assertTrue(pool.dumpStats().contains(TestModes.nativeAccess() ? "native access" : "no native access"));
    }

    @Test
    void allocate_reusedMemory_isZeroFilled() {
        long[] sizes = {1, 64, 100, 4096, 30_000, 64 * 1024, 300_000, 2 << 20};
        for (long size : sizes) {
            List<MemorySegment> dirty = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                MemorySegment s = pool.allocate(size);
                s.fill((byte) 0x5A);
                dirty.add(s);
            }
            dirty.forEach(pool::free);
            try (Arena arena = pool.newArena()) {
                for (int i = 0; i < 4; i++) {
                    assertTrue(allZero(arena.allocate(size)), "arena segment of " + size + " bytes not zeroed");
                }
            }
        }
    }

    @Test
    void smallSegments_cutFromBlocks_areDisjointAlignedAndZero() {
        java.util.SplittableRandom random = new java.util.SplittableRandom(3);
        try (Arena arena = pool.newArena()) {
            List<MemorySegment> made = new ArrayList<>();
            for (int i = 0; i < 2000; i++) {
                long size = random.nextInt(ScratchArena.BUMP_MAX_SIZE + 200); // both sides of the bump limit
                long alignment = 1L << random.nextInt(13);                   // 1 B to 4 KiB
                MemorySegment s = arena.allocate(size, alignment);
                assertEquals(size, s.byteSize());
                assertEquals(0, s.address() % alignment, "alignment " + alignment);
                assertTrue(allZero(s));
                s.fill((byte) (i % 100 + 1));
                made.add(s);
            }
            made.sort(java.util.Comparator.comparingLong(MemorySegment::address));
            for (int i = 1; i < made.size(); i++) {
                MemorySegment previous = made.get(i - 1);
                assertTrue(previous.address() + Math.max(1, previous.byteSize()) <= made.get(i).address(),
                        "arena segments overlap");
            }
        }
        pool.trimCurrentThreadCache();
        assertEquals(0, pool.metrics().activeBytes());
    }

    @Test
    void arena_layoutsAndStrings_work() {
        try (Arena arena = pool.newArena()) {
            MemorySegment text = arena.allocateFrom("segpool");
            assertEquals("segpool", text.getString(0));
            MemorySegment longs = arena.allocate(ValueLayout.JAVA_LONG, 16);
            assertEquals(128, longs.byteSize());
            assertEquals(0, longs.address() % 8);
            longs.setAtIndex(ValueLayout.JAVA_LONG, 15, 42L);
            assertEquals(42L, longs.getAtIndex(ValueLayout.JAVA_LONG, 15));
            MemorySegment aligned = arena.allocate(100, 4096);
            assertEquals(0, aligned.address() % 4096);
        }
    }

    @Test
    void close_givesEverythingBack() {
        PoolMetrics before = pool.metrics();
        Arena arena = pool.newArena();
        for (int i = 0; i < 100; i++) {
            arena.allocate(i * 97L);
        }
        arena.allocate(3 << 20); // huge: above the 1 MiB chunk
        assertTrue(pool.metrics().activeBytes() > 3 << 20);
        assertEquals(1, pool.metrics().openArenas());
        arena.close();
        pool.trimCurrentThreadCache();
        assertEquals(before.activeBytes(), pool.metrics().activeBytes());
        assertEquals(0, pool.metrics().cachedBytes());
        assertEquals(0, pool.metrics().openArenas());
        assertEquals(0, pool.metrics().hugeBytes());
    }

    @Test
    void closedArena_rejectsAllocateAndClose() {
        Arena arena = pool.newArena();
        arena.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> arena.allocate(8));
        assertTrue(e.getMessage().contains("already closed"), e.getMessage());
        assertThrows(IllegalStateException.class, arena::close);
    }

    @Test
    void arena_badInputs_throwAndChangeNothing() {
        try (Arena arena = pool.newArena()) {
            MemorySegment kept = arena.allocate(64);
            kept.fill((byte) 7);
            PoolMetrics before = pool.metrics();
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(-1));
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(8, 3));
            assertThrows(IllegalArgumentException.class, () -> arena.allocate(8, 0));
            assertEquals(before.activeBytes(), pool.metrics().activeBytes());
            assertEquals(7, kept.get(ValueLayout.JAVA_BYTE, 63));
        }
    }

    @Test
    void poolFree_ofArenaSegment_isRejected() {
        try (Arena arena = pool.newArena()) {
            MemorySegment small = arena.allocate(64);
            MemorySegment huge = arena.allocate(2 << 20);
            long active = pool.metrics().activeBytes();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> pool.free(small));
            assertTrue(e.getMessage().contains("belongs to an Arena"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> pool.free(huge));
            assertEquals(active, pool.metrics().activeBytes());
            small.set(ValueLayout.JAVA_BYTE, 0, (byte) 1); // still usable
        }
    }

    @Test
    void confinedArena_otherThread_isRejected() throws Exception {
        try (Arena arena = pool.newArena()) {
            MemorySegment segment = arena.allocate(64);
            AtomicReference<Throwable> allocate = new AtomicReference<>();
            AtomicReference<Throwable> close = new AtomicReference<>();
            AtomicReference<Throwable> access = new AtomicReference<>();
            Thread other = new Thread(() -> {
                try {
                    arena.allocate(8);
                } catch (Throwable t) {
                    allocate.set(t);
                }
                try {
                    arena.close();
                } catch (Throwable t) {
                    close.set(t);
                }
                try {
                    segment.get(ValueLayout.JAVA_BYTE, 0);
                } catch (Throwable t) {
                    access.set(t);
                }
            });
            other.start();
            other.join();
            assertTrue(allocate.get() instanceof WrongThreadException, String.valueOf(allocate.get()));
            assertTrue(close.get() instanceof WrongThreadException, String.valueOf(close.get()));
            if (TestModes.nativeAccess()) {
                assertTrue(access.get() instanceof WrongThreadException, String.valueOf(access.get()));
            } else {
                assertEquals(null, access.get(), "without native access, segments are plain chunk slices");
            }
        }
    }

    @Test
    void accessAfterClose_throwsWithNativeAccess_elseStaysAChunkSlice() {
        Arena arena = pool.newArena();
        MemorySegment segment = arena.allocate(64);
        arena.close();
        if (TestModes.nativeAccess()) {
            assertThrows(IllegalStateException.class, () -> segment.get(ValueLayout.JAVA_BYTE, 0));
            assertTrue(!segment.scope().isAlive());
        } else {
            segment.get(ValueLayout.JAVA_BYTE, 0); // documented degraded mode: valid until the pool closes
            assertTrue(!arena.scope().isAlive(), "the arena's own scope ends at close");
        }
    }

    @Test
    void sharedArena_usedFromSeveralThreads_thenClosed() throws Exception {
        Arena arena = pool.newSharedArena();
        int threads = 4;
        int perThread = 500;
        List<List<MemorySegment>> made = new ArrayList<>();
        CountDownLatch start = new CountDownLatch(1);
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            List<MemorySegment> mine = new ArrayList<>();
            made.add(mine);
            byte tag = (byte) (t + 1);
            workers.add(Thread.ofPlatform().start(() -> {
                try {
                    start.await();
                } catch (InterruptedException e) {
                    throw new AssertionError(e);
                }
                for (int i = 0; i < perThread; i++) {
                    MemorySegment s = arena.allocate(16 + (i % 50) * 16);
                    s.fill(tag);
                    mine.add(s);
                }
            }));
        }
        start.countDown();
        for (Thread w : workers) {
            w.join();
        }
        for (int t = 0; t < threads; t++) {
            for (MemorySegment s : made.get(t)) {
                for (long i = 0; i < s.byteSize(); i++) {
                    assertEquals(t + 1, s.get(ValueLayout.JAVA_BYTE, i), "overlapping arena segments");
                }
            }
        }
        Thread closer = Thread.ofPlatform().start(arena::close); // any thread may close a shared arena
        closer.join();
        assertEquals(0, pool.metrics().openArenas());
        assertThrows(IllegalStateException.class, () -> arena.allocate(8));
    }

    @Test
    void manyShortArenas_doNotGrowReservedMemory() {
        for (int i = 0; i < 100; i++) {
            try (Arena arena = pool.newArena()) {
                arena.allocate(64);
                arena.allocate(1000);
            }
        }
        long reserved = pool.metrics().reservedBytes();
        for (int i = 0; i < 10_000; i++) {
            try (Arena arena = pool.newArena()) {
                arena.allocate(64);
                arena.allocate(1000);
                arena.allocateFrom("scratch");
            }
        }
        assertEquals(reserved, pool.metrics().reservedBytes());
        assertEquals(0, pool.metrics().openArenas());
    }

    @Test
    void arenaSegments_doNotOverlapRawSegments() {
        try (Arena arena = pool.newArena()) {
            MemorySegment raw = pool.allocate(256);
            MemorySegment pooled = arena.allocate(256);
            assertNotEquals(raw.address(), pooled.address());
            raw.fill((byte) 1);
            assertTrue(allZero(pooled));
            pool.free(raw);
        }
    }

    @Test
    void poolClosed_arenaAllocateThrows_closeStillWorks() {
        SegmentPool other = SegmentPool.builder().pageSize(4096).chunkSize(1 << 16).build();
        Arena arena = other.newArena();
        arena.allocate(64);
        other.close();
        assertThrows(IllegalStateException.class, () -> arena.allocate(64));
        arena.close(); // gives nothing back to a closed pool, and does not throw
        assertThrows(IllegalStateException.class, other::newArena);
        assertThrows(IllegalStateException.class, other::newSharedArena);
    }
}
