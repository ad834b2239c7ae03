package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The decay's timing on an injected clock, with its timer run by hand: no sleeping. The pool's decay
 * is 1 s, so its timer ticks every 250 ms. A tick is run the way {@code scheduleWithFixedDelay} runs
 * it: one period after the previous tick ended, and a tick takes {@link #TICK_NANOS} of the injected
 * clock. The pool holds one 64 KiB chunk; a 16 KiB run empties it when freed, and
 * {@code reservedBytes()} tells whether the chunk is still there.
 *
 * <p>Frees mark an emptied chunk with the time of the last tick (a coarse clock), so the pool knows
 * when a chunk was emptied only to within the interval between two ticks; it allows one period for
 * that. So: a chunk is never released by a tick before {@code decay} has passed since it was emptied,
 * it is released by the first tick after that when it was emptied late in its interval, and in any
 * case by the first tick at least {@code decay} plus one period after it was emptied.
 */
class DecayClockTest {
    private static final long MILLIS = 1_000_000L;
    private static final Duration DECAY = Duration.ofSeconds(1);
    private static final long DECAY_NANOS = DECAY.toNanos();
    /** The decay's period: a quarter of the decay time. */
    private static final long PERIOD = DECAY_NANOS / 4;
    /** What one tick takes on the injected clock. */
    private static final long TICK_NANOS = 1_000;
    private static final int CHUNK = 64 << 10;
    private static final int RUN = 16 << 10;

    /** The decay's timer: keeps the tick and its period; ticks run only when the test runs them. */
    private static final class ManualTimer implements Decay.Scheduler {
        Runnable tick;
        long periodNanos;
        final CompletableFuture<Void> task = new CompletableFuture<>();

        @Override
        public Future<?> schedule(Runnable tick, long periodNanos) {
            this.tick = tick;
            this.periodNanos = periodNanos;
            return task;
        }
    }

    private final AtomicLong now = new AtomicLong();
    private final ManualTimer timer = new ManualTimer();
    private SegmentPool pool;
    /** How long a tick takes: {@link #TICK_NANOS}, or 0 for ticks exactly one period apart. */
    private long tickNanos = TICK_NANOS;
    /** When the timer runs the next tick. */
    private long nextTickAt;

    private void build(long start) {
        now.set(start);
        pool = ((PoolBuilder) SegmentPool.builder()).name("decay-clock").pageSize(4096).chunkSize(CHUNK).arenas(1)
                .threadLocalCaches(false).decay(DECAY).ticker(now::get).scheduler(timer).build();
        assertEquals(PERIOD, timer.periodNanos, "the decay ticks every decay / 4");
        nextTickAt = start + PERIOD; // the first tick comes one period after the pool is built
    }

    @AfterEach
    void closePool() {
        if (pool != null && !pool.isClosed()) {
            pool.close();
        }
    }

    /** Runs the timer's next tick and returns the time it started. */
    private long tick() {
        long start = nextTickAt;
        at(start);
        timer.tick.run();
        at(start + tickNanos);
        nextTickAt = start + tickNanos + PERIOD;
        return start;
    }

    /** Moves the injected clock forward to {@code time}. */
    private void at(long time) {
        assertTrue(time - now.get() >= 0, "the clock does not go back");
        now.set(time);
    }

    /** Allocates the run that takes the chunk, and frees it at {@code time}: the chunk is empty from then on. */
    private void emptyChunkAt(long time, MemorySegment run) {
        at(time);
        pool.free(run);
        assertEquals(CHUNK, pool.reservedBytes(), "an emptied chunk is kept for now");
    }

    private boolean chunkHeld() {
        return pool.reservedBytes() == CHUNK;
    }

    @ParameterizedTest(name = "clock starting at {0}")
    @ValueSource(longs = {0, -7_000_000_000L, Long.MAX_VALUE - 2_000_000_000L})
    void emptiedLateInATickInterval_keptByEveryTickBeforeDecay_releasedByTheFirstTickAfter(long start) {
        build(start);
        tick();
        tick();
        MemorySegment run = pool.allocate(RUN);
        long emptiedAt = nextTickAt - MILLIS; // 1 ms before the timer's next tick
        emptyChunkAt(emptiedAt, run);
        long t;
        while ((t = tick()) - emptiedAt < DECAY_NANOS) {
            assertTrue(chunkHeld(), "released by the tick " + (t - emptiedAt) / MILLIS + " ms after it was emptied");
        }
        assertEquals(0, pool.reservedBytes(), "kept by the first tick after decay ("
                + (t - emptiedAt) / MILLIS + " ms after it was emptied)");
    }

    @ParameterizedTest(name = "clock starting at {0}")
    @ValueSource(longs = {0, Long.MAX_VALUE - 2_000_000_000L})
    void emptiedJustAfterATick_neverReleasedEarly_releasedAtMostOnePeriodLate(long start) {
        build(start);
        tick();
        MemorySegment run = pool.allocate(RUN);
        long emptiedAt = now.get() + TICK_NANOS; // just after the tick ended: the mark is almost exact
        emptyChunkAt(emptiedAt, run);
        long latest = emptiedAt + DECAY_NANOS + PERIOD;
        long t;
        do {
            t = tick();
            if (t - emptiedAt < DECAY_NANOS) {
                assertTrue(chunkHeld(), "released by the tick " + (t - emptiedAt) / MILLIS + " ms after it was emptied");
            }
        } while (t - latest < 0);
        assertEquals(0, pool.reservedBytes(), "still kept by the tick " + (t - emptiedAt) / MILLIS
                + " ms after it was emptied, more than decay + one period");
    }

    @Test
    void emptiedAgainAfterReuse_decayStartsOver() {
        build(0);
        tick();
        MemorySegment run = pool.allocate(RUN);
        long firstEmptied = nextTickAt - MILLIS;
        emptyChunkAt(firstEmptied, run);
        while (nextTickAt - firstEmptied < DECAY_NANOS - PERIOD) {
            tick();
        }
        MemorySegment again = pool.allocate(RUN); // the kept chunk is reused
        assertEquals(CHUNK, pool.reservedBytes(), "no second chunk");
        long emptiedAt = nextTickAt - MILLIS;
        emptyChunkAt(emptiedAt, again);
        long t;
        while ((t = tick()) - emptiedAt < DECAY_NANOS) {
            assertTrue(chunkHeld(), "released " + (t - firstEmptied) / MILLIS + " ms after the first free but "
                    + (t - emptiedAt) / MILLIS + " ms after the second");
        }
        assertEquals(0, pool.reservedBytes(), "the first tick after decay since the second free releases it");
    }

    @Test
    void trim_releasesAnEmptiedChunkAtOnce_withoutWaitingForDecay() {
        build(0);
        tick();
        MemorySegment run = pool.allocate(RUN);
        emptyChunkAt(now.get() + MILLIS, run);
        long released = pool.trim(); // no tick ran since the free, and the clock stands still
        assertTrue(released >= CHUNK, "trim released " + released);
        assertEquals(0, pool.reservedBytes());
        tick();
        assertEquals(0, pool.reservedBytes());
    }

    @Test
    void close_cancelsTheTimer_andALateTickDoesNothing() {
        build(0);
        MemorySegment run = pool.allocate(RUN);
        emptyChunkAt(MILLIS, run);
        pool.close();
        assertTrue(timer.task.isCancelled(), "close cancels the decay task");
        assertEquals(0, pool.reservedBytes());
        now.addAndGet(10 * DECAY_NANOS);
        assertDoesNotThrow(() -> timer.tick.run(), "a tick that was already due when the pool closed");
        assertEquals(0, pool.reservedBytes());
    }

    /**
     * Ticks exactly one period apart (a tick that takes no time on the clock, as a hand-run timer
     * does), and a chunk emptied 1 ms before a tick: the first tick after decay has passed must
     * release it. Fails: {@code PoolArena.emptyBefore} compares {@code emptySince - cutoff < 0} with
     * {@code cutoff = now - decay - period}; at that tick, {@code now} is exactly {@code decay + period}
     * after the mark (the tick before the free), so the chunk is kept one more period. The allowance
     * for the coarse mark is met with equality: the comparison should be {@code <= 0}.
     */
    @Test
    void ticksExactlyOnePeriodApart_firstTickAfterDecay_releases() {
        tickNanos = 0;
        build(0);
        tick();
        MemorySegment run = pool.allocate(RUN);
        long emptiedAt = nextTickAt - MILLIS;
        emptyChunkAt(emptiedAt, run);
        long t;
        while ((t = tick()) - emptiedAt < DECAY_NANOS) {
            assertTrue(chunkHeld(), "released " + (t - emptiedAt) / MILLIS + " ms after it was emptied");
        }
        assertEquals(0, pool.reservedBytes(), "kept by the first tick after decay ("
                + (t - emptiedAt) / MILLIS + " ms after it was emptied)");
    }

    /**
     * The timer runs one tick three periods late (its one thread was busy with another pool's tick,
     * or the process was paused), and a chunk is emptied during that gap: it must still be kept until
     * decay has passed. Fails: the free marks the chunk with the time of the last tick, which is now
     * up to three periods old, while the tick allows for one period of lag only; the chunk is released
     * 625 ms after it was emptied (decay: 1 s).
     */
    @Test
    void lateTick_chunkEmptiedDuringTheGap_notReleasedBeforeDecay() {
        build(0);
        tick();
        long gapStart = now.get();
        nextTickAt += 2 * PERIOD; // the timer is late
        MemorySegment run = pool.allocate(RUN);
        long emptiedAt = gapStart + 2 * PERIOD + PERIOD / 2;
        emptyChunkAt(emptiedAt, run);
        long t;
        while ((t = tick()) - emptiedAt < DECAY_NANOS) {
            assertTrue(chunkHeld(), "released by the tick " + (t - emptiedAt) / MILLIS
                    + " ms after it was emptied, before decay (" + DECAY.toMillis() + " ms)");
        }
    }
}
