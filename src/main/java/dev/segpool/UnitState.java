package dev.segpool;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Who owns one allocation unit (a run, or one element of a subpage): one byte per unit, changed
 * atomically. It is what makes a bad free harmless: {@link SegmentPool#free} claims a unit with one
 * compare-and-exchange from {@link #LIVE} to {@link #FREE}, so of two racing frees of one segment
 * exactly one wins, and a free of a unit that is not live changes nothing.
 *
 * <p>Protocol: a unit is {@code FREE} while it sits in its chunk or in a thread cache. The thread that
 * hands it out (and so owns it exclusively) stores {@code LIVE} or {@code ARENA} with release
 * semantics before publishing the segment ({@code ARENA} in native mode with a volatile store, which
 * orders it before the arena's next read of the pool's state; see {@link #ORPHANED} and {@link #hand});
 * {@link #claim} is the only transition back to {@code FREE}: from {@code LIVE} by {@code free}, from
 * {@code ARENA} or {@code ORPHANED} when the unit's pooled arena closes.
 */
final class UnitState {
    /** In its chunk or in a thread cache: not freeable by a user. */
    static final byte FREE = 0;
    /** Handed out by {@code allocate}: freeable once. */
    static final byte LIVE = 1;
    /** Handed out to a pooled {@link java.lang.foreign.Arena}: freed only when it closes. */
    static final byte ARENA = 2;
    /**
     * An {@code ARENA} unit whose pool closed while its arena was open: the pool keeps its chunk mapped
     * (the arena's segments are bound to a scope only the arena can close) until the arena gives the
     * unit back. Set only by the closing pool, with a compare-and-set from {@code ARENA}.
     */
    static final byte ORPHANED = 3;
    /**
     * Handed out by a {@link MemoryBudget}: freeable once, through that budget only. The budget is
     * the unit's owner, kept beside its state ({@link #owner}) and written before the state is
     * published. It is not cleared when the unit is freed (the free path stays short): an owner means
     * something only while the state is {@code BUDGET}, and the next budget to take the unit
     * overwrites it.
     */
    static final byte BUDGET = 4;

    private static final VarHandle BYTES = MethodHandles.arrayElementVarHandle(byte[].class);
    private static final VarHandle OWNERS = MethodHandles.arrayElementVarHandle(MemoryBudget[].class);

    private UnitState() {}

    /**
     * Publishes a unit that the caller owns exclusively, with a release store; {@code ARENA} with a
     * volatile store when {@code fenceArena} (native mode, where the closing pool looks for arena units
     * to orphan), so that the arena's next read of the pool's state cannot see it open while the close
     * misses the unit. Without native access the close looks for none: an arena's segments are slices
     * of the chunk, which throw once the close releases it, so the release order suffices and an arena's
     * opening saves a full fence (about 7 ns on a 2 vCPU EPYC VM).
     */
    static void hand(byte[] states, int unit, byte state, boolean fenceArena) {
        if (state == ARENA && fenceArena) {
            BYTES.setVolatile(states, unit, state);
        } else {
            BYTES.setRelease(states, unit, state);
        }
    }

    /** {@code ARENA -> ORPHANED}, by the closing pool; returns 1 if the unit moved, else 0. */
    static int orphan(byte[] states, int unit) {
        return BYTES.compareAndSet(states, unit, ARENA, ORPHANED) ? 1 : 0;
    }

    static byte getVolatile(byte[] states, int unit) {
        return (byte) BYTES.getVolatile(states, unit);
    }

    /**
     * Moves a unit from {@code expected} ({@code LIVE}, or {@code ARENA} when its arena closes) to
     * {@code FREE}; returns the state it had ({@code expected} on success).
     */
    static byte claim(byte[] states, int unit, byte expected) {
        return (byte) BYTES.compareAndExchange(states, unit, expected, FREE);
    }

    static byte get(byte[] states, int unit) {
        return (byte) BYTES.getAcquire(states, unit);
    }

    /** The budget that owns a {@code BUDGET} unit (null for any other state), read with acquire. */
    static MemoryBudget owner(MemoryBudget[] owners, int unit) {
        return owners == null ? null : (MemoryBudget) OWNERS.getAcquire(owners, unit);
    }

    /** Sets the owner of a unit the caller holds exclusively, before a {@code BUDGET} hand publishes it. */
    static void setOwner(MemoryBudget[] owners, int unit, MemoryBudget owner) {
        owners[unit] = owner;
    }
}
