package dev.segpool.bench;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * {@link Peer.Slots} of peers whose buffers are {@link MemorySegment}s (segpool, malloc-segment):
 * the segments by slot, and the one way every such peer touches a buffer.
 */
final class SegmentSlots implements Peer.Slots {
    private final MemorySegment[] live;
    private final IntFunction<MemorySegment> allocator;
    private final Consumer<MemorySegment> freer;

    SegmentSlots(int count, IntFunction<MemorySegment> allocator, Consumer<MemorySegment> freer) {
        this.live = new MemorySegment[count];
        this.allocator = allocator;
        this.freer = freer;
    }

    /** Writes one byte into every 4 KiB page of {@code segment}'s first {@code byteSize} bytes. */
    static void touch(MemorySegment segment, long byteSize) {
        for (long offset = 0; offset < byteSize; offset += 4096) {
            segment.set(ValueLayout.JAVA_BYTE, offset, (byte) 1);
        }
    }

    @Override
    public long allocate(int slot, int byteSize) {
        MemorySegment segment = allocator.apply(byteSize);
        live[slot] = segment;
        return segment.address();
    }

    @Override
    public void free(int slot) {
        freer.accept(live[slot]);
        live[slot] = null;
    }

    @Override
    public void touch(int slot, int byteSize) {
        touch(live[slot], byteSize);
    }

    @Override
    public void clear() {
        for (int i = 0; i < live.length; i++) {
            if (live[i] != null) {
                free(i);
            }
        }
    }
}
