package dev.segpool;

import java.lang.ref.Cleaner;
import java.util.Arrays;
import java.util.List;

/**
 * The leak check of a sampled {@link ScratchArena}: a copy of its units, given back by the
 * {@link Cleaner} if the arena (in native mode: its scope, so no segment of it is reachable) becomes
 * unreachable without {@code close()}. Must never reach the arena itself.
 */
final class ArenaLeakWatch implements Runnable {
    private static final Cleaner CLEANER = Cleaner.create();

    private final PoolCore core;
    private final String kind;
    private final LeakTracker.AllocationSite site;
    /** Set by {@link #watch}, before the arena takes any unit. */
    private Cleaner.Cleanable cleanable;
    private final ArenaCharges charges;
    private long[] addresses = new long[4];
    private int units;
    private long count;
    private long bytes;
    private boolean done;

    ArenaLeakWatch(PoolCore core, String kind, LeakTracker.AllocationSite site, ArenaCharges charges) {
        this.core = core;
        this.charges = charges;
        this.kind = kind;
        this.site = site;
    }

    /** Starts watching {@code watched}: the arena, or in native mode its scope. */
    void watch(Object watched) {
        cleanable = CLEANER.register(watched, this);
    }

    synchronized void kept(long address) {
        if (units == addresses.length) {
            addresses = Arrays.copyOf(addresses, units * 2);
        }
        addresses[units++] = address;
    }

    synchronized void counted(long byteSize) {
        count++;
        bytes += byteSize;
    }

    void closed() {
        synchronized (this) {
            done = true;
        }
        cleanable.clean();
    }

    @Override
    public void run() {
        synchronized (this) {
            if (done) {
                return;
            }
            done = true;
            for (int i = 0; i < units; i++) {
                core.frees.giveBackArenaUnit(addresses[i], null);
            }
            if (charges != null) {
                charges.giveBack();
            }
        }
        core.caches.arenasClosed.increment();
        LeakTracker.warn("pool '" + core.name + "': a " + kind + " Arena holding " + count
                + " segments (" + bytes + " bytes) became unreachable without close();"
                + " its memory went back to the pool", List.of(site));
    }
}
