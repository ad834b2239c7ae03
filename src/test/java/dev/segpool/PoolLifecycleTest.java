package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * The pool's close against what is still open: segments of plain allocations and of pooled arenas
 * left open, in both native-access modes. A wrong answer here is a JVM crash (reading unmapped
 * memory), which fails the surefire fork.
 */
class PoolLifecycleTest {

    private static SegmentPool smallPool(String name) {
        return SegmentPool.builder().name(name).pageSize(4096).chunkSize(1 << 16).build();
    }

    @Test
    void allocatedSegment_afterClose_throwsInsteadOfReadingReleasedMemory() {
        SegmentPool pool = smallPool("closed-plain");
        MemorySegment small = pool.allocate(64);
        MemorySegment run = pool.allocate(20_000);
        MemorySegment huge = pool.allocate(100_000);
        pool.close();
        for (MemorySegment s : new MemorySegment[] {small, run, huge}) {
            assertThrows(IllegalStateException.class, () -> s.get(ValueLayout.JAVA_LONG, 0));
        }
        assertEquals(0, pool.reservedBytes());
    }

    /**
     * Threads open arenas (allocate, write, read back, close) while the pool closes: each arena either
     * works fully, with its own bytes read back, or throws {@link IllegalStateException} (the pool or its
     * chunk closed); nothing else, and no crash. Without native access an arena's unit is handed out
     * with a release store only (the close looks for no arena units), so this is the race that order
     * must survive: an arena that saw the pool open gets a block of a chunk the close then releases.
     */
    @Test
    void arenasOpeningWhileThePoolCloses_workOrThrowIllegalState_neverReachReleasedMemory() throws Exception {
        for (int round = 0; round < 40; round++) {
            SegmentPool pool = smallPool("closing-" + round);
            java.util.concurrent.atomic.AtomicInteger opened = new java.util.concurrent.atomic.AtomicInteger();
            AtomicReference<Throwable> wrong = new AtomicReference<>();
            Thread[] workers = new Thread[2];
            for (int w = 0; w < workers.length; w++) {
                byte mark = (byte) (w + 1);
                workers[w] = Thread.ofPlatform().start(() -> {
                    while (true) {
                        try (Arena arena = pool.newArena()) {
                            MemorySegment segment = arena.allocate(64);
                            segment.fill(mark);
                            for (long i = 0; i < 64; i++) {
                                if (segment.get(ValueLayout.JAVA_BYTE, i) != mark) {
                                    wrong.compareAndSet(null, new AssertionError("byte " + i + " of an arena's segment changed"));
                                    return;
                                }
                            }
                            opened.incrementAndGet();
                        } catch (IllegalStateException closed) {
                            return; // the pool, or the chunk under the arena, closed
                        } catch (Throwable t) {
                            wrong.compareAndSet(null, t);
                            return;
                        }
                    }
                });
            }
            while (opened.get() < 200) {
                Thread.onSpinWait();
            }
            pool.close();
            for (Thread worker : workers) {
                worker.join();
            }
            if (wrong.get() != null) {
                throw new AssertionError("round " + round, wrong.get());
            }
            assertTrue(pool.reservedBytes() >= 0);
        }
    }

    @Test
    void confinedArenaLeftOpen_acrossPoolClose_neverReachesReleasedMemory() {
        SegmentPool pool = smallPool("closed-confined");
        Arena arena = pool.newArena();
        MemorySegment small = arena.allocate(64);
        MemorySegment large = arena.allocate(10_000);
        MemorySegment huge = arena.allocate(100_000);
        small.set(ValueLayout.JAVA_LONG, 0, 42L);
        large.set(ValueLayout.JAVA_LONG, 8, 43L);
        huge.set(ValueLayout.JAVA_LONG, 16, 44L);
        pool.close();
        checkAfterPoolClose(pool, arena, small, large, huge);
    }

    @Test
    void sharedArenaLeftOpen_acrossPoolClose_neverReachesReleasedMemory() throws Exception {
        SegmentPool pool = smallPool("closed-shared");
        Arena arena = pool.newSharedArena();
        MemorySegment small = arena.allocate(64);
        MemorySegment large = arena.allocate(10_000);
        MemorySegment huge = arena.allocate(100_000);
        small.set(ValueLayout.JAVA_LONG, 0, 42L);
        large.set(ValueLayout.JAVA_LONG, 8, 43L);
        huge.set(ValueLayout.JAVA_LONG, 16, 44L);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread closer = Thread.ofPlatform().start(() -> {
            try {
                pool.close(); // another thread closes the pool under the open arena
            } catch (Throwable t) {
                failure.set(t);
            }
        });
        closer.join();
        assertEquals(null, failure.get());
        checkAfterPoolClose(pool, arena, small, large, huge);
    }

    /**
     * With native access the open arena's memory is kept: its segments still read what was written,
     * and throw once the arena closes, which gives the memory back. Without it, they are slices of
     * chunks the pool released: they throw at once.
     */
    private static void checkAfterPoolClose(SegmentPool pool, Arena arena, MemorySegment small,
                                            MemorySegment large, MemorySegment huge) {
        if (TestModes.nativeAccess()) {
            assertEquals(42L, small.get(ValueLayout.JAVA_LONG, 0));
            assertEquals(43L, large.get(ValueLayout.JAVA_LONG, 8));
            assertEquals(44L, huge.get(ValueLayout.JAVA_LONG, 16));
            assertTrue(pool.reservedBytes() > 0, "the open arena's chunk and huge allocation are kept");
            assertThrows(IllegalStateException.class, () -> arena.allocate(8), "the pool is closed");
            arena.close();
        } else {
            assertEquals(0, pool.reservedBytes());
            arena.close();
        }
        for (MemorySegment s : new MemorySegment[] {small, large, huge}) {
            assertThrows(IllegalStateException.class, () -> s.get(ValueLayout.JAVA_LONG, 0));
        }
        assertEquals(0, pool.reservedBytes(), "nothing is left once the arena closed");
        assertThrows(IllegalStateException.class, arena::close, "closed once");
    }

    /**
     * With 8 KiB pages an arena's 4 KiB block is a subpage element, which the arena gives back by its
     * handle: after the pool closed, that claim fails and the block goes back as an orphan instead.
     */
    @Test
    void arenaBlocksOfSubpages_acrossPoolClose_goBackAsOrphans() {
        SegmentPool pool = SegmentPool.builder().name("closed-subpage-blocks").chunkSize(1 << 16).build();
        pool.newArena().close(); // the thread's cache now holds arena blocks: the next opens take one
        Arena first = pool.newArena();
        Arena second = pool.newArena();
        MemorySegment a = first.allocate(64);
        MemorySegment b = second.allocate(64);
        a.set(ValueLayout.JAVA_LONG, 0, 7L);
        b.set(ValueLayout.JAVA_LONG, 0, 8L);
        pool.close();
        first.close();
        if (TestModes.nativeAccess()) {
            assertThrows(IllegalStateException.class, () -> a.get(ValueLayout.JAVA_BYTE, 0));
            assertEquals(8L, b.get(ValueLayout.JAVA_LONG, 0), "the second arena's block is still mapped");
            assertTrue(pool.reservedBytes() > 0);
        }
        second.close();
        assertThrows(IllegalStateException.class, () -> b.get(ValueLayout.JAVA_BYTE, 0));
        assertEquals(0, pool.reservedBytes());
    }

    @Test
    void twoArenasInOneChunk_chunkGoesWithTheLast() {
        SegmentPool pool = smallPool("closed-two-arenas");
        Arena first = pool.newArena();
        Arena second = pool.newArena();
        MemorySegment a = first.allocate(64);
        MemorySegment b = second.allocate(64);
        pool.close();
        first.close();
        assertThrows(IllegalStateException.class, () -> a.get(ValueLayout.JAVA_BYTE, 0));
        if (TestModes.nativeAccess()) {
            assertEquals(0, b.get(ValueLayout.JAVA_BYTE, 0), "the second arena's block is still mapped");
            assertTrue(pool.reservedBytes() > 0);
        }
        second.close();
        assertThrows(IllegalStateException.class, () -> b.get(ValueLayout.JAVA_BYTE, 0));
        assertEquals(0, pool.reservedBytes());
    }

    @Test
    void everyCallAfterClose_throwsIllegalState_butNameAndToString() {
        SegmentPool pool = smallPool("closed-calls");
        MemorySegment live = pool.allocate(64);
        pool.close();
        assertThrows(IllegalStateException.class, () -> pool.allocate(64));
        assertThrows(IllegalStateException.class, () -> pool.allocate(64, 8));
        assertThrows(IllegalStateException.class, () -> pool.free(live));
        assertThrows(IllegalStateException.class, pool::newArena);
        assertThrows(IllegalStateException.class, pool::newSharedArena);
        assertThrows(IllegalStateException.class, pool::trim);
        assertThrows(IllegalStateException.class, pool::metrics);
        assertThrows(IllegalStateException.class, pool::dumpStats);
        assertThrows(IllegalStateException.class, pool::trimCurrentThreadCache);
        assertThrows(IllegalStateException.class, () -> pool.runWithThreadCache(() -> {}));
        assertThrows(IllegalStateException.class, pool::close);
        assertEquals("closed-calls", pool.name());
        assertTrue(pool.toString().contains("closed"));
    }
}
