package dev.segpool;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;

/**
 * The life of a pool: {@code OPEN -> CLOSING -> CLOSED}, each step taken once, atomically.
 *
 * <pre>
 *   OPEN ──close()──> CLOSING ──no operation in flight, memory released──> CLOSED
 *   │                 │                                                    │
 *   │ everything      │ fast paths may still finish (their segments'       │ every call throws
 *   │ runs            │ accesses throw once the chunk is released);        │ IllegalStateException
 *   │                 │ no new operation that touches native memory        │
 *   │                 │ starts: enter() fails                              │
 * </pre>
 *
 * <p>Protocol. Operations that touch native memory other than through a segment's scope, or that
 * acquire it (purging pages with {@code madvise}, mapping a chunk or a huge allocation, releasing
 * chunks in decay or {@code trim()}), run between {@link #enter()} and {@link #exit()}. {@code enter}
 * increments {@link #inFlight} and then reads {@link #state}; {@link #beginClose()} writes the state and
 * then {@link #awaitQuiescence()} reads the count: both sides use sequentially consistent accesses, so
 * either the operation sees {@code CLOSING} and backs out, or close sees it in flight and waits for it.
 * These are rare paths; the allocate/free fast paths only read {@link #state} (a plain load on x86).
 */
final class Lifecycle {
    static final int OPEN = 0;
    static final int CLOSING = 1;
    static final int CLOSED = 2;

    private static final VarHandle STATE;
    private static final VarHandle IN_FLIGHT;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            STATE = lookup.findVarHandle(Lifecycle.class, "state", int.class);
            IN_FLIGHT = lookup.findVarHandle(Lifecycle.class, "inFlight", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private volatile int state = OPEN;
    private volatile int inFlight;
    /** The thread waiting in {@link #awaitQuiescence}; written before it parks. */
    private volatile Thread closer;

    boolean isOpen() {
        return state == OPEN;
    }

    int state() {
        return state;
    }

    /** Starts a rare operation; false (and nothing held) when the pool is closing or closed. */
    boolean enter() {
        IN_FLIGHT.getAndAdd(this, 1);
        if (state == OPEN) {
            return true;
        }
        exit();
        return false;
    }

    /** Ends an operation that {@link #enter()} started. */
    void exit() {
        if ((int) IN_FLIGHT.getAndAdd(this, -1) == 1 && state != OPEN) {
            Thread waiting = closer;
            if (waiting != null) {
                LockSupport.unpark(waiting);
            }
        }
    }

    /** Moves OPEN to CLOSING; false when another call got there first. */
    boolean beginClose() {
        return STATE.compareAndSet(this, OPEN, CLOSING);
    }

    /** Waits, as the closing thread, until no operation is in flight; operations cannot start any more. */
    void awaitQuiescence() {
        closer = Thread.currentThread();
        while (inFlight != 0) {
            LockSupport.parkNanos(this, 100_000);
        }
        closer = null;
    }

    void closed() {
        state = CLOSED;
    }
}
