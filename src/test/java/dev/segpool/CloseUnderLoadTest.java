package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.LongAdder;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * One pool is closed while three threads allocate, write patterns, verify and free, trim, and use
 * pooled arenas, on it and on two other pools. Each round builds three pools of different shapes
 * (one of them with a 20 ms decay, so decay ticks run during the close too) and closes a different
 * one. Checked: every call on the closed pool answers, from the moment close begins, with
 * {@link IllegalStateException} or works as if it ran before the close (segments handed out meanwhile
 * become inaccessible: accessing them throws {@code IllegalStateException} too); no segment ever
 * reads back anything but its pattern; the other pools are untouched (every live segment still
 * holds its pattern after the close, by contents, and their bookkeeping is consistent); the closed
 * pool holds no native bytes once the threads are done.
 *
 * <p>What a thread may see from the closed pool, from reading {@link PoolCore} and {@link Deallocator}: {@code allocate},
 * {@code free}, {@code trim}, {@code newArena} and a pooled arena's {@code allocate} check the state
 * first and throw {@code IllegalStateException}; the JDK throws it for an access to a released chunk.
 * A free that loses the race to close gets {@code IllegalStateException} on every path but one: for
 * a huge segment (or any segment with leak detection on), {@code freeSlow} checks
 * {@code ensureOpen()} and then whether the segment's scope is alive, so a close that runs entirely
 * in between makes the free throw {@link IllegalArgumentException} ("no longer alive"). The pool's
 * contract for a closed pool is {@code IllegalStateException}, so this test counts that answer as a
 * failure; the window is a few instructions wide and is not expected to be hit here.
 */
class CloseUnderLoadTest {
    private static final int WORKERS = 3;
    private static final int POOLS = 3;
    private static final int ROUNDS = 3;
    private static final long BEFORE_CLOSE_MILLIS = 300;
    private static final long AFTER_CLOSE_MILLIS = 200;
    /** Bound of each phase when the machine is slow: the threads must have done some work by then. */
    private static final long MAX_PHASE_MILLIS = 5000;
    private static final int MAX_LIVE = 40;

    /** A live allocation and the id of the pattern it holds. */
    private record Allocation(MemorySegment segment, long id) {}

    /** Counts of what the threads did, for the final checks. */
    private static final class Counts {
        final LongAdder victimOpsAfterCloseBegan = new LongAdder();
        final LongAdder victimRefusals = new LongAdder();
        final LongAdder othersOpsAfterCloseBegan = new LongAdder();
        final LongAdder verified = new LongAdder();
        final LongAdder ops = new LongAdder();

        @Override
        public String toString() {
            return "ops " + ops + ", verified " + verified + ", calls on the closed pool after close began "
                    + victimOpsAfterCloseBegan + " (refused " + victimRefusals + "), on the others "
                    + othersOpsAfterCloseBegan;
        }
    }

    /** Waits at least {@code minMillis}, then until {@code done} or {@link #MAX_PHASE_MILLIS}. */
    private static void awaitWork(BooleanSupplier done, long minMillis) throws InterruptedException {
        long start = System.nanoTime();
        Thread.sleep(minMillis);
        while (!done.getAsBoolean() && System.nanoTime() - start < MAX_PHASE_MILLIS * 1_000_000) {
            Thread.sleep(10);
        }
    }

    private static SegmentPool build(int shape, String name) {
        SegmentPool.Builder builder = SegmentPool.builder().name(name);
        return switch (shape) {
            case 0 -> builder.pageSize(4096).chunkSize(64 << 10).arenas(2).smallCacheSize(16).normalCacheSize(4)
                    .cacheTrimInterval(128).decay(Duration.ofMillis(20)).build();
            case 1 -> builder.pageSize(8192).chunkSize(256 << 10).arenas(1).threadLocalCaches(false).build();
            default -> builder.pageSize(4096).chunkSize(1 << 20).arenas(3).build();
        };
    }

    private static long randomSize(SplittableRandom random, int chunkSize) {
        int kind = random.nextInt(100);
        if (kind < 60) {
            return random.nextInt(1, 2049);
        }
        if (kind < 85) {
            return random.nextInt(2049, chunkSize / 2 + 1);
        }
        if (kind < 95) {
            return random.nextInt(chunkSize / 2 + 1, chunkSize + 1);
        }
        return random.nextInt(chunkSize + 1, chunkSize + chunkSize / 2); // huge
    }

    @Test
    void closingOnePool_underLoadOnThreePools_refusesCleanly_leavesTheOthersIntact_andReleasesEverything()
            throws Exception {
        boolean nativeAccess = TestModes.nativeAccess();
        for (int round = 0; round < ROUNDS; round++) {
            runRound(round, nativeAccess);
        }
    }

    private static void runRound(int round, boolean nativeAccess) throws Exception {
        SegmentPool[] pools = new SegmentPool[POOLS];
        int[] chunkSizes = new int[POOLS];
        for (int p = 0; p < POOLS; p++) {
            pools[p] = build(p, "close-load-" + round + "-" + p);
            chunkSizes[p] = pools[p].sizeClasses().chunkSize;
        }
        int victimIndex = round % POOLS;
        SegmentPool victim = pools[victimIndex];
        AtomicBoolean closeBegan = new AtomicBoolean();
        AtomicBoolean stop = new AtomicBoolean();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Counts counts = new Counts();
        @SuppressWarnings("unchecked")
        List<Allocation>[][] live = new List[WORKERS][POOLS];
        List<Thread> workers = new ArrayList<>();
        for (int w = 0; w < WORKERS; w++) {
            int self = w;
            for (int p = 0; p < POOLS; p++) {
                live[w][p] = new ArrayList<>();
            }
            workers.add(Thread.ofPlatform().name("close-load-" + w).start(() -> {
                SplittableRandom random = new SplittableRandom(97L * round + self);
                long next = 0;
                try {
                    while (!stop.get() && failure.get() == null) {
                        int p = random.nextInt(POOLS);
                        boolean began = closeBegan.get();
                        if (p == victimIndex && began) {
                            counts.victimOpsAfterCloseBegan.increment();
                        } else if (began) {
                            counts.othersOpsAfterCloseBegan.increment();
                        }
                        long id = ((long) self << 48) | ((long) round << 40) | next++;
                        counts.ops.increment();
                        try {
                            step(random, pools[p], chunkSizes[p], live[self][p], id, counts);
                        } catch (IllegalStateException e) {
                            if (p != victimIndex) {
                                throw new AssertionError("pool " + p + " is open but threw", e);
                            }
                            if (!closeBegan.get()) {
                                throw new AssertionError("the victim threw before its close began", e);
                            }
                            counts.victimRefusals.increment();
                        }
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }));
        }

        // Before the close: until the threads have done some work; after: until they have met the closed pool.
        awaitWork(() -> counts.ops.sum() >= 300, BEFORE_CLOSE_MILLIS);
        closeBegan.set(true);
        long closeStart = System.nanoTime();
        victim.close();
        long closeMicros = (System.nanoTime() - closeStart) / 1000;
        awaitWork(() -> counts.victimOpsAfterCloseBegan.sum() >= 30 && counts.othersOpsAfterCloseBegan.sum() >= 60,
                AFTER_CLOSE_MILLIS);
        stop.set(true);
        for (Thread worker : workers) {
            worker.join(Duration.ofSeconds(30));
            if (worker.isAlive()) {
                Throwable stuck = new AssertionError(worker.getName() + " did not end");
                stuck.setStackTrace(worker.getStackTrace());
                throw new AssertionError("round " + round + ": a worker is stuck", stuck);
            }
        }
        if (failure.get() != null) {
            throw new AssertionError("round " + round + " (victim " + victimIndex + ", native access "
                    + nativeAccess + "): a worker failed", failure.get());
        }

        String done = "round " + round + " (close took " + closeMicros + " us): " + counts;
        assertTrue(counts.victimOpsAfterCloseBegan.sum() > 0, "the threads kept calling the closed pool; " + done);
        assertTrue(counts.victimRefusals.sum() > 0, "the closed pool refused calls; " + done);
        assertTrue(counts.othersOpsAfterCloseBegan.sum() > 0, "the other pools were used after the close; " + done);

        // The closed pool: nothing held, its segments inaccessible, every call refused.
        assertTrue(victim.isClosed());
        assertEquals(0, victim.reservedBytes(), "native bytes left in the closed pool");
        for (int w = 0; w < WORKERS; w++) {
            for (Allocation a : live[w][victimIndex]) {
                assertThrows(IllegalStateException.class, () -> a.segment().get(ValueLayout.JAVA_BYTE, 0),
                        "a segment of the closed pool is still accessible");
                assertThrows(IllegalStateException.class, () -> victim.free(a.segment()));
            }
        }
        assertThrows(IllegalStateException.class, () -> victim.allocate(64));
        assertThrows(IllegalStateException.class, victim::trim);

        // The other pools: every live segment holds its pattern; free everything; nothing left after close.
        for (int p = 0; p < POOLS; p++) {
            if (p == victimIndex) {
                continue;
            }
            SegmentPool pool = pools[p];
            for (int w = 0; w < WORKERS; w++) {
                for (Allocation a : live[w][p]) {
                    Patterns.verify(a.segment(), a.id());
                    pool.free(a.segment());
                }
            }
            for (PoolArena arena : pool.arenas()) {
                assertTrue(arena.checkConsistency(), pool.name() + " arena " + arena.index);
            }
            assertEquals(0, pool.metrics().hugeBytes(), pool.name());
            assertFalse(pool.isClosed());
            pool.close();
            assertEquals(0, pool.reservedBytes(), pool.name());
        }
        assertTrue(counts.verified.sum() > 0);
    }

    /**
     * One random operation on {@code pool}: allocate and fill, verify and free, trim, or a confined
     * pooled arena whose segments are filled, verified and given back by its close.
     */
    private static void step(SplittableRandom random, SegmentPool pool, int chunkSize, List<Allocation> live,
                             long id, Counts counts) {
        int op = random.nextInt(100);
        if (op < 45 && live.size() < MAX_LIVE) {
            MemorySegment segment = pool.allocate(randomSize(random, chunkSize));
            Patterns.fill(segment, id);
            live.add(new Allocation(segment, id));
        } else if (op < 88 && !live.isEmpty()) {
            Allocation a = live.remove(random.nextInt(live.size()));
            Patterns.verify(a.segment(), a.id());
            counts.verified.increment();
            pool.free(a.segment());
        } else if (op < 93) {
            pool.trim();
            pool.trimCurrentThreadCache();
        } else {
            try (Arena arena = pool.newArena()) {
                MemorySegment[] segments = {
                    arena.allocate(64), arena.allocate(3000), arena.allocate(random.nextInt(4096, chunkSize / 2))
                };
                for (int i = 0; i < segments.length; i++) {
                    Patterns.fill(segments[i], id + i);
                }
                for (int i = 0; i < segments.length; i++) {
                    Patterns.verify(segments[i], id + i);
                }
                counts.verified.add(segments.length);
            }
        }
    }
}
