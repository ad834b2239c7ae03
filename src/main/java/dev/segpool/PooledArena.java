package dev.segpool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.ref.Cleaner;
import java.util.Arrays;
import java.util.List;

/**
 * A {@link java.lang.foreign.Arena} whose memory comes from a {@link SegmentPool}: confined to the
 * thread that opened it, or shared. Every segment is zero-filled; {@link #close()} gives them all back
 * at once. Like the JDK's own arenas, it cuts small segments from a 4 KiB block by bumping an
 * offset (zeroing only what it hands out); larger ones are pool allocations of their own.
 *
 * <p>With native access (decided once per pool), each segment is re-bound to the scope of a JDK arena
 * that this arena closes first, so an access after {@code close()} throws
 * {@link IllegalStateException} and a confined arena's segments throw {@link WrongThreadException} on
 * other threads. Without it, segments are plain slices of their chunk: they stay accessible until the
 * pool closes, and {@link #scope()} is a scope of its own that ends at {@code close()}.
 *
 * <p>Protocol: a confined arena is used by its owner only (checked); a shared arena serialises
 * {@code allocate} and {@code close} on its {@link Units}. An arena that becomes unreachable without
 * {@code close()} (in native mode: once its segments are unreachable too) gives its memory back through
 * the {@link Cleaner} and is reported as a leak.
 */
final class PooledArena implements Arena {
    private static final Cleaner CLEANER = Cleaner.create();

    /**
     * Requests up to this size (and alignment up to {@link #BLOCK_SIZE}) are cut from the arena's current
     * block, so that a scratch arena makes one pool allocation, not one per segment.
     */
    static final int BUMP_MAX_SIZE = 1024;
    /** Size, and alignment, of the blocks small requests are cut from (each cut is zeroed, not the block). */
    static final int BLOCK_SIZE = 4096;

    /** The units an arena holds; also the Cleaner's action, so it must never reach the arena itself. */
    static final class Units implements Runnable {
        private final SegmentPool pool;
        private final String kind;
        private final LeakTracker.AllocationSite site;
        private long[] addresses = new long[4];
        private int units;
        /** Segments handed out and their requested bytes, for leak reports. */
        private long count;
        private long bytes;
        private boolean released;

        Units(SegmentPool pool, String kind, LeakTracker.AllocationSite site) {
            this.pool = pool;
            this.kind = kind;
            this.site = site;
        }

        /** Remembers a pool unit (a block, or one large segment) to give back at close. */
        void addUnit(long address) {
            if (units == addresses.length) {
                addresses = Arrays.copyOf(addresses, units * 2);
            }
            addresses[units++] = address;
        }

        void counted(long byteSize) {
            count++;
            bytes += byteSize;
        }

        /** Gives every unit back; later calls do nothing. */
        void release(boolean useCache) {
            if (released) {
                return;
            }
            released = true;
            for (int i = 0; i < units; i++) {
                pool.freeArenaUnit(addresses[i], useCache);
            }
            pool.arenaClosed();
        }

        /** The Cleaner's action: the arena became unreachable without {@code close()}. */
        @Override
        public void run() {
            synchronized (this) {
                if (released) {
                    return;
                }
                long leakedCount = count;
                long leakedBytes = bytes;
                release(false);
                LeakTracker.warn("pool '" + pool.name() + "': a " + kind + " Arena holding " + leakedCount
                        + " segments (" + leakedBytes + " bytes) became unreachable without close();"
                        + " its memory went back to the pool", site == null ? List.of() : List.of(site));
            }
        }
    }

    private final SegmentPool pool;
    /** The owner of a confined arena; null when shared. */
    private final Thread owner;
    private final boolean bindScope;
    private final Units units;
    private final Cleaner.Cleanable cleanable;
    /** The JDK arena whose scope segments carry (native mode); in degraded mode made on demand by scope(). */
    private Arena scopeArena;
    private boolean closed;
    /** The block small requests are cut from (zeroed when taken), and how much of it is used. */
    private MemorySegment block;
    private long blockUsed = BLOCK_SIZE;

    PooledArena(SegmentPool pool, boolean shared, boolean bindScope, LeakTracker.AllocationSite site) {
        this.pool = pool;
        this.owner = shared ? null : Thread.currentThread();
        this.bindScope = bindScope;
        this.units = new Units(pool, shared ? "shared" : "confined", site);
        if (bindScope) {
            this.scopeArena = shared ? Arena.ofShared() : Arena.ofConfined();
            this.cleanable = CLEANER.register(scopeArena.scope(), units);
        } else {
            this.cleanable = CLEANER.register(this, units);
        }
    }

    @Override
    public MemorySegment allocate(long byteSize, long byteAlignment) {
        if (owner == null) {
            synchronized (units) {
                return allocateChecked(byteSize, byteAlignment);
            }
        }
        checkOwner();
        return allocateChecked(byteSize, byteAlignment);
    }

    private MemorySegment allocateChecked(long byteSize, long byteAlignment) {
        if (closed) {
            throw Errors.arenaClosed(pool.name());
        }
        pool.ensureOpen(); // its chunks, and so this arena's blocks, are gone once the pool is closed
        MemorySegment segment;
        if (byteSize <= BUMP_MAX_SIZE && byteAlignment <= BLOCK_SIZE && byteSize >= 0) {
            segment = cut(byteSize, byteAlignment);
        } else {
            segment = pool.allocate(byteSize, byteAlignment, UnitState.ARENA);
            units.addUnit(segment.address());
        }
        units.counted(byteSize);
        return bindScope ? SegmentPool.rebind(segment, scopeArena) : segment;
    }

    /** Cuts a small zeroed segment from the current block, or from a new one. */
    private MemorySegment cut(long byteSize, long byteAlignment) {
        if (byteAlignment <= 0 || (byteAlignment & (byteAlignment - 1)) != 0) {
            throw Errors.badAlignment(byteAlignment);
        }
        long offset = (blockUsed + byteAlignment - 1) & -byteAlignment;
        if (offset + Math.max(byteSize, 1) > BLOCK_SIZE) {
            block = pool.allocate(BLOCK_SIZE, BLOCK_SIZE, UnitState.ARENA, false);
            units.addUnit(block.address());
            offset = 0;
        }
        blockUsed = offset + Math.max(byteSize, 1); // every segment gets an address of its own
        return block.asSlice(offset, byteSize).fill((byte) 0);
    }

    @Override
    public MemorySegment.Scope scope() {
        if (owner == null) {
            synchronized (units) {
                return scopeLocked();
            }
        }
        return scopeLocked();
    }

    private MemorySegment.Scope scopeLocked() {
        if (scopeArena == null) {
            // Degraded mode: a scope of its own, alive until close(); shared so any thread may ask.
            scopeArena = Arena.ofShared();
            if (closed) {
                scopeArena.close();
            }
        }
        return scopeArena.scope();
    }

    @Override
    public void close() {
        if (owner == null) {
            synchronized (units) {
                closeChecked();
            }
        } else {
            checkOwner();
            closeChecked();
        }
    }

    private void closeChecked() {
        if (closed) {
            throw Errors.arenaClosed(pool.name());
        }
        closed = true;
        if (scopeArena != null) {
            scopeArena.close(); // first: no segment of this arena is reachable when its memory is reused
        }
        synchronized (units) {
            units.release(true);
        }
        cleanable.clean();
    }

    private void checkOwner() {
        if (Thread.currentThread() != owner) {
            throw Errors.wrongThread(pool.name(), owner);
        }
    }

    @Override
    public String toString() {
        return "PooledArena[" + pool.name() + (owner == null ? ", shared" : ", confined to " + owner.getName())
                + (closed ? ", closed]" : "]");
    }
}
