package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.Queue;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordingFile;
import org.junit.jupiter.api.Test;

/**
 * An arena that needs a chunk takes an empty chunk another arena keeps for the decay before it maps a
 * new one, so that with one arena per busy thread the pool does not hold every thread's last peak.
 */
class EmptyChunkReuseTest {
    private static final int LARGE = 700 * 1024; // above maxCachedSize: a run from the thread's arena

    /** Runs {@code task} on {@code thread} (a single-thread executor: the same thread, so the same arena, each time). */
    private static <T> T on(ExecutorService thread, Callable<T> task) throws Exception {
        return thread.submit(task).get(30, TimeUnit.SECONDS);
    }

    private static PoolArena arenaOf(SegmentPool pool) {
        return pool.core().caches.current().arena;
    }

    @Test
    void anotherArenasEmptyChunk_isTakenBeforeANewChunkIsMapped() throws Exception {
        ExecutorService first = Executors.newSingleThreadExecutor();
        ExecutorService second = Executors.newSingleThreadExecutor();
        try (SegmentPool pool = SegmentPool.builder().arenas(2).decay(Duration.ofDays(1)).build()) {
            PoolArena firstArena = on(first, () -> {
                pool.free(pool.allocate(64)); // makes this thread's cache: it binds to an arena
                return arenaOf(pool);
            });
            PoolArena secondArena = on(second, () -> {
                pool.free(pool.allocate(64));
                return arenaOf(pool);
            });
            assertNotSame(firstArena, secondArena, "a new cache binds to the arena with the fewest");

            MemorySegment a = on(first, () -> pool.allocate(LARGE));
            PoolChunk chunk = pool.core().registry.find(a.address());
            long reserved = pool.reservedBytes();
            on(first, () -> {
                pool.free(a);
                return null;
            });
            assertEquals(reserved, pool.reservedBytes(), "the empty chunk is kept for the decay");
            assertSame(chunk, firstArena.empty.head());

            MemorySegment b = on(second, () -> {
                MemorySegment s = pool.allocate(LARGE);
                Patterns.fill(s, 2);
                return s;
            });
            assertEquals(reserved, pool.reservedBytes(), "no new chunk: the first arena's empty one moved");
            assertSame(chunk, pool.core().registry.find(b.address()));
            assertSame(secondArena, chunk.arena);
            assertNull(firstArena.empty.head());
            // Each arena also has the chunk of its thread's first 64 B unit.
            assertEquals(1, chunksOf(pool, firstArena.index), "the first arena gave its empty chunk away");
            assertEquals(2, chunksOf(pool, secondArena.index), "the moved chunk, beside the one of small units");

            on(first, () -> { // a free on the first thread goes to the arena that owns the chunk now
                Patterns.verify(b, 2);
                pool.free(b);
                return null;
            });
            assertSame(chunk, secondArena.empty.head());
            assertTrue(firstArena.checkConsistency());
            assertTrue(secondArena.checkConsistency());
        } finally {
            first.shutdownNow();
            second.shutdownNow();
        }
    }

    private static int chunksOf(SegmentPool pool, int arena) {
        return pool.metrics().arenas().get(arena).chunks();
    }

    /**
     * Two threads on different arenas take and give back large runs, and half of what each allocates is
     * freed by the other, so that empty chunks keep moving between the arenas while frees of the other
     * thread's units are under way. Every run is filled with a pattern of its own and verified before it
     * is freed; at the end both arenas are consistent and every chunk is empty.
     */
    @Test
    void chunksMovingBetweenArenas_underCrossThreadFrees_keepEveryRunIntact() throws Exception {
        int rounds = 3000;
        ExecutorService threads = Executors.newFixedThreadPool(2);
        Path file = Files.createTempFile("segpool-moves", ".jfr");
        try (Recording recording = new Recording();
             SegmentPool pool = SegmentPool.builder().name("moving").arenas(2).pageSize(4096).chunkSize(1 << 16)
                     .decay(Duration.ofDays(1)).build()) {
            recording.enable("dev.segpool.ChunkMoved");
            recording.start();
            List<Queue<long[]>> toOther = List.of(new ConcurrentLinkedQueue<>(), new ConcurrentLinkedQueue<>());
            List<MemorySegment[]> handedOver = List.of(new MemorySegment[rounds], new MemorySegment[rounds]);
            List<Future<Integer>> workers = new ArrayList<>();
            for (int t = 0; t < 2; t++) {
                int self = t;
                workers.add(threads.submit(() -> {
                    SplittableRandom random = new SplittableRandom(31 + self);
                    List<MemorySegment> mine = new ArrayList<>();
                    List<Long> ids = new ArrayList<>();
                    int freedForOther = 0;
                    for (int i = 0; i < rounds; i++) {
                        long id = ((long) self << 32) | i;
                        MemorySegment s = pool.allocate(random.nextInt(20_000, 60_001)); // runs of 5 to 15 pages
                        Patterns.fill(s, id);
                        if (random.nextBoolean()) {
                            handedOver.get(self)[i] = s;
                            toOther.get(self).add(new long[] {i, id});
                        } else {
                            mine.add(s);
                            ids.add(id);
                        }
                        if (mine.size() > 2 || random.nextInt(4) == 0) {
                            for (int k = 0; k < mine.size(); k++) {
                                Patterns.verify(mine.get(k), ids.get(k));
                                pool.free(mine.get(k));
                            }
                            mine.clear();
                            ids.clear();
                        }
                        long[] theirs;
                        while ((theirs = toOther.get(1 - self).poll()) != null) {
                            MemorySegment other = handedOver.get(1 - self)[(int) theirs[0]];
                            Patterns.verify(other, theirs[1]);
                            pool.free(other);
                            freedForOther++;
                        }
                    }
                    for (int k = 0; k < mine.size(); k++) {
                        Patterns.verify(mine.get(k), ids.get(k));
                        pool.free(mine.get(k));
                    }
                    return freedForOther;
                }));
            }
            int crossFrees = 0;
            for (Future<Integer> worker : workers) {
                crossFrees += worker.get(120, TimeUnit.SECONDS);
            }
            for (int t = 0; t < 2; t++) { // what the other thread had not taken yet
                long[] left;
                while ((left = toOther.get(t).poll()) != null) {
                    MemorySegment s = handedOver.get(t)[(int) left[0]];
                    Patterns.verify(s, left[1]);
                    pool.free(s);
                }
            }
            assertTrue(crossFrees > rounds / 4, "cross-thread frees: " + crossFrees);
            for (PoolArena arena : pool.arenas()) {
                assertTrue(arena.checkConsistency(), "arena " + arena.index);
            }
            PoolMetrics m = pool.metrics();
            assertEquals(m.reservedBytes(), m.activeBytes() + m.cachedBytes() + m.freeBytes());
            assertEquals(0, m.activeBytes(), "everything was given back");
            recording.stop();
            recording.dump(file);
            long moves = RecordingFile.readAllEvents(file).stream()
                    .filter(e -> e.getEventType().getName().equals("dev.segpool.ChunkMoved"))
                    .filter(e -> "moving".equals(e.getString("pool"))).count();
            assertTrue(moves > 0, "empty chunks moved between the arenas: " + moves);
        } finally {
            threads.shutdownNow();
            Files.deleteIfExists(file);
        }
    }
}
