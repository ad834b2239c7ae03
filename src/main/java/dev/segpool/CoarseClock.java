package dev.segpool;

import java.util.function.LongSupplier;

/**
 * The time of a pool's decay, in nanoseconds: a {@link #ticker} (the system's {@code nanoTime}, or one
 * a test advances by hand) and a coarse copy of it that only the decay task advances, once per tick.
 * Frees that mark a subpage or chunk "empty since" read the coarse copy, so the allocate/free paths
 * never call the system clock; marks lag the real time by at most one tick, and the decay task allows
 * for that.
 *
 * <p>Thread-safe: {@link #now} is a volatile field written by the decay tick only.
 */
final class CoarseClock {
    final LongSupplier ticker;
    private volatile long now;

    CoarseClock(LongSupplier ticker) {
        this.ticker = ticker;
        this.now = ticker.getAsLong();
    }

    /** The time at the last {@link #advance()}. */
    long now() {
        return now;
    }

    /** Reads the ticker into the coarse copy and returns it; by the decay tick. */
    long advance() {
        long t = ticker.getAsLong();
        now = t;
        return t;
    }
}
