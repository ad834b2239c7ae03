package dev.segpool.bench;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * A bounded single-producer single-consumer ring for the producer/consumer benchmark.
 *
 * <p>Protocol: one thread calls {@link #offer}, one other thread calls {@link #poll}. The producer
 * writes the element, then publishes {@code tail} with a release store; the consumer reads {@code tail}
 * with an acquire load, takes the element and publishes {@code head} with a release store, which the
 * producer reads with an acquire load before it reuses the cell. Each side keeps a plain cached copy
 * of the other side's index to read the shared one only when it looks full or empty.
 */
final class HandOff {
    private static final VarHandle HEAD;
    private static final VarHandle TAIL;

    static {
        try {
            MethodHandles.Lookup lookup = MethodHandles.lookup();
            HEAD = lookup.findVarHandle(HandOff.class, "head", long.class);
            TAIL = lookup.findVarHandle(HandOff.class, "tail", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final Object[] cells;
    private final int mask;
    // The two indices sit on separate cache lines: producer and consumer write one each.
    @SuppressWarnings("unused")
    private long p0, p1, p2, p3, p4, p5, p6, p7;
    private long head;
    private long tailSeenByConsumer;
    @SuppressWarnings("unused")
    private long q0, q1, q2, q3, q4, q5, q6, q7;
    private long tail;
    private long headSeenByProducer;

    HandOff(int capacity) {
        if (Integer.bitCount(capacity) != 1) {
            throw new IllegalArgumentException("capacity must be a power of two: " + capacity);
        }
        cells = new Object[capacity];
        mask = capacity - 1;
    }

    /** Producer only: false when the ring is full. */
    boolean offer(Object element) {
        long t = tail;
        if (t - headSeenByProducer >= cells.length) {
            headSeenByProducer = (long) HEAD.getAcquire(this);
            if (t - headSeenByProducer >= cells.length) {
                return false;
            }
        }
        cells[(int) t & mask] = element;
        TAIL.setRelease(this, t + 1);
        return true;
    }

    /** Consumer only: null when the ring is empty. */
    Object poll() {
        long h = head;
        if (h >= tailSeenByConsumer) {
            tailSeenByConsumer = (long) TAIL.getAcquire(this);
            if (h >= tailSeenByConsumer) {
                return null;
            }
        }
        int index = (int) h & mask;
        Object element = cells[index];
        cells[index] = null;
        HEAD.setRelease(this, h + 1);
        return element;
    }
}
