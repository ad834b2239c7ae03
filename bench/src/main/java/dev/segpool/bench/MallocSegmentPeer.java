package dev.segpool.bench;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * libc {@code malloc} and {@code free} as an FFM user would hold them: the malloc'd address made into a
 * {@code MemorySegment} of the requested size ({@code MemorySegment.ofAddress(a).reinterpret(size)}), and
 * freed by that segment's address. The same downcalls as {@link MallocPeer}, plus the segment; needs
 * native access ({@code reinterpret} is restricted).
 */
final class MallocSegmentPeer extends Peer {
    static MemorySegment allocate(long byteSize) {
        return MemorySegment.ofAddress(MallocPeer.malloc(byteSize)).reinterpret(byteSize);
    }

    static void free(MemorySegment segment) {
        MallocPeer.free(segment.address());
    }

    @Override
    public long pair(int byteSize) {
        MemorySegment segment = allocate(byteSize);
        free(segment);
        return segment.address();
    }

    @Override
    public long touchedPair(int byteSize) {
        MemorySegment segment = allocate(byteSize);
        for (long offset = 0; offset < byteSize; offset += 4096) {
            segment.set(ValueLayout.JAVA_BYTE, offset, (byte) 1);
        }
        free(segment);
        return segment.address();
    }

    @Override
    public Slots slots(int count) {
        MemorySegment[] live = new MemorySegment[count];
        return new Slots() {
            @Override
            public long allocate(int slot, int byteSize) {
                MemorySegment segment = MallocSegmentPeer.allocate(byteSize);
                live[slot] = segment;
                return segment.address();
            }

            @Override
            public void free(int slot) {
                MallocSegmentPeer.free(live[slot]);
                live[slot] = null;
            }

            @Override
            public void touch(int slot, int byteSize) {
                MemorySegment segment = live[slot];
                for (long offset = 0; offset < byteSize; offset += 4096) {
                    segment.set(ValueLayout.JAVA_BYTE, offset, (byte) 1);
                }
            }

            @Override
            public void clear() {
                for (int i = 0; i < live.length; i++) {
                    if (live[i] != null) {
                        free(i);
                    }
                }
            }
        };
    }

    @Override
    public Object allocateShared(int byteSize) {
        return allocate(byteSize);
    }

    @Override
    public void free(Object buffer) {
        free((MemorySegment) buffer);
    }

    @Override
    public long reservedBytes() {
        return -1;
    }

    @Override
    public void close() {}
}
