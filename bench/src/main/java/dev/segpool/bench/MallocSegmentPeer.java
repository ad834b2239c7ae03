package dev.segpool.bench;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * libc {@code malloc}, {@code realloc} and {@code free} as an FFM user would hold them: the malloc'd
 * address made into a {@code MemorySegment} of the requested size
 * ({@code MemorySegment.ofAddress(a).reinterpret(size)}), and freed by that segment's address. The same
 * downcalls as {@link MallocPeer}, plus the segment; needs native access ({@code reinterpret} is
 * restricted).
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
        SegmentSlots.touch(segment, byteSize);
        free(segment);
        return segment.address();
    }

    /** libc {@code realloc} of {@code segment}'s address, made into a segment of the new size. */
    static MemorySegment reallocate(MemorySegment segment, long byteSize) {
        return MemorySegment.ofAddress(MallocPeer.realloc(segment.address(), byteSize)).reinterpret(byteSize);
    }

    @Override
    public long grow(int fromSize, int toSize) {
        MemorySegment segment = allocate(fromSize);
        segment.set(ValueLayout.JAVA_BYTE, fromSize - 1, (byte) 1);
        for (long size = 2L * fromSize; size <= toSize; size *= 2) {
            segment = reallocate(segment, size);
            segment.set(ValueLayout.JAVA_BYTE, size - 1, (byte) 1);
        }
        free(segment);
        return segment.address();
    }

    @Override
    public Slots slots(int count) {
        return new SegmentSlots(count, MallocSegmentPeer::allocate, MallocSegmentPeer::free);
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
