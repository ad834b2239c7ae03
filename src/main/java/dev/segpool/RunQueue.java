package dev.segpool;

import java.util.Arrays;

/**
 * Free runs of one run class inside one chunk: a binary min-heap of run handles. A handle's top
 * bits are its page offset, so the head is always the run with the lowest offset, which keeps a
 * chunk's used pages packed at its start. Guarded by the arena lock, like its chunk.
 */
final class RunQueue {
    private long[] heap = new long[4];
    private int size;

    boolean isEmpty() {
        return size == 0;
    }

    int size() {
        return size;
    }

    void offer(long handle) {
        if (size == heap.length) {
            heap = Arrays.copyOf(heap, size * 2);
        }
        siftUp(size++, handle);
    }

    /** Removes and returns the run with the lowest offset; the queue must not be empty. */
    long poll() {
        long head = heap[0];
        removeAt(0);
        return head;
    }

    /** Removes {@code handle}; returns false when it is not queued. Linear: queues are short. */
    boolean remove(long handle) {
        for (int i = 0; i < size; i++) {
            if (heap[i] == handle) {
                removeAt(i);
                return true;
            }
        }
        return false;
    }

    /** The handle at position {@code i} in heap order, for walks over all free runs. */
    long get(int i) {
        return heap[i];
    }

    private void removeAt(int i) {
        long last = heap[--size];
        if (i == size) {
            return;
        }
        siftDown(i, last);
        if (heap[i] == last) {
            siftUp(i, last);
        }
    }

    private void siftUp(int i, long value) {
        while (i > 0) {
            int parent = (i - 1) >>> 1;
            if (Long.compareUnsigned(heap[parent], value) <= 0) {
                break;
            }
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = value;
    }

    private void siftDown(int i, long value) {
        int half = size >>> 1;
        while (i < half) {
            int child = 2 * i + 1;
            int right = child + 1;
            if (right < size && Long.compareUnsigned(heap[right], heap[child]) < 0) {
                child = right;
            }
            if (Long.compareUnsigned(value, heap[child]) <= 0) {
                break;
            }
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = value;
    }
}
