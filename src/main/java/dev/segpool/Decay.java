package dev.segpool;

import java.lang.ref.WeakReference;
import java.time.Duration;
import java.util.concurrent.CancellationException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

/**
 * Gives a pool's free memory back by itself: a periodic tick (every {@code decay / 4}, within 10 ms
 * and 1 s) releases the caches of threads that have ended, then what stayed free for the decay time:
 * subpages no element used, chunks no page used and, with mmap'd memory, once per decay period, the
 * pages of runs that stayed free inside chunks in use. The caches of live but idle threads are left
 * alone: only their owner may touch them.
 *
 * <p>Frees do not read a clock: they mark what became empty, and the first tick that sees the mark
 * stamps it with its own time, an upper bound of when it became empty. So a chunk or subpage goes back
 * once it has been empty for at least {@code decay} (and at most {@code decay} plus two periods), never
 * early, however late a tick runs. Time and timer are injected (a ticker, {@link Scheduler}) so that
 * tests run ticks and advance time by hand. The tick holds its pool weakly, and runs as one operation of the
 * pool's {@link Lifecycle}: it does nothing once the pool is closing, and close waits for a tick in
 * flight.
 */
final class Decay {
    private static final long MIN_PERIOD_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    private static final long MAX_PERIOD_NANOS = TimeUnit.SECONDS.toNanos(1);

    /** Runs a pool's tick periodically; returns what cancels it. */
    @FunctionalInterface
    interface Scheduler {
        Future<?> schedule(Runnable tick, long periodNanos);
    }

    /** One daemon thread runs the decay of every pool. */
    private static final ScheduledExecutorService EXECUTOR = Executors.newSingleThreadScheduledExecutor(task -> {
        Thread thread = new Thread(task, "segpool-decay");
        thread.setDaemon(true);
        return thread;
    });

    static final Scheduler SHARED_SCHEDULER = (tick, periodNanos) ->
            EXECUTOR.scheduleWithFixedDelay(tick, periodNanos, periodNanos, TimeUnit.NANOSECONDS);

    private final PoolCore core;
    private final long decayNanos;
    final long periodNanos;
    private final Future<?> task;
    /** Written by the tick only (ticks never overlap). */
    private long lastPurgeNanos;

    Decay(PoolCore core, Duration decay, Scheduler scheduler) {
        this.core = core;
        this.decayNanos = decay.toNanos();
        this.periodNanos = Math.clamp(decayNanos / 4, MIN_PERIOD_NANOS, MAX_PERIOD_NANOS);
        this.lastPurgeNanos = core.ticker.getAsLong();
        this.task = scheduler.schedule(new Tick(this), periodNanos);
    }

    /** One tick; see the class comment. */
    void tick() {
        if (!core.lifecycle.enter()) {
            return;
        }
        try {
            core.caches.releaseEnded();
            long now = core.ticker.getAsLong();
            boolean purge = now - lastPurgeNanos >= decayNanos;
            if (purge) {
                lastPurgeNanos = now;
            }
            core.reclaim(now, now - decayNanos, purge, "decay");
        } finally {
            core.lifecycle.exit();
        }
    }

    void cancel() {
        task.cancel(false);
    }

    /** Runs {@link #tick()} while its pool is reachable; holds it weakly. */
    private static final class Tick implements Runnable {
        private final WeakReference<Decay> decay;

        Tick(Decay decay) {
            this.decay = new WeakReference<>(decay);
        }

        @Override
        public void run() {
            Decay d = decay.get();
            if (d == null) {
                throw new CancellationException("pool unreachable"); // ends the periodic task
            }
            try {
                d.tick();
            } catch (RuntimeException | Error e) {
                if (d.core.lifecycle.isOpen()) {
                    LeakTracker.logger().log(System.Logger.Level.ERROR, "decay of pool '" + d.core.name + "' failed", e);
                }
            }
        }
    }
}
