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
 * semantics before publishing the segment; {@link #claim} is the only transition back to {@code FREE}:
 * from {@code LIVE} by {@code free}, from {@code ARENA} when the unit's pooled arena closes.
 */
final class UnitState {
    /** In its chunk or in a thread cache: not freeable by a user. */
    static final byte FREE = 0;
    /** Handed out by {@code allocate}: freeable once. */
    static final byte LIVE = 1;
    /** Handed out to a pooled {@link java.lang.foreign.Arena}: freed only when it closes. */
    static final byte ARENA = 2;

    private static final VarHandle BYTES = MethodHandles.arrayElementVarHandle(byte[].class);

    private UnitState() {}

    /** Publishes a unit that the caller owns exclusively. */
    static void hand(byte[] states, int unit, byte state) {
        BYTES.setRelease(states, unit, state);
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
}
