package dev.segpool;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/**
 * Per-allocation contents for tests. One pseudo-random reference segment is shared; allocation
 * {@code id} holds the bytes of that reference starting at offset {@code id % 4096}, so two
 * allocations that overlap disagree with very high probability, and a check is one vectorised
 * {@code mismatch}.
 */
final class Patterns {
    static final int MAX_BYTES = (8 << 20) + 4096;
    private static final MemorySegment REFERENCE = Arena.global().allocate(MAX_BYTES + 4096);

    static {
        SplittableRandom random = new SplittableRandom(0x5E6_9001L);
        for (long i = 0; i + Long.BYTES <= REFERENCE.byteSize(); i += Long.BYTES) {
            REFERENCE.set(java.lang.foreign.ValueLayout.JAVA_LONG_UNALIGNED, i, random.nextLong());
        }
    }

    private Patterns() {}

    private static MemorySegment expected(long id, long byteSize) {
        if (byteSize > MAX_BYTES) {
            throw new IllegalArgumentException("pattern too large: " + byteSize);
        }
        return REFERENCE.asSlice(Math.floorMod(id, 4096), byteSize);
    }

    /** Writes allocation {@code id}'s pattern over the whole segment. */
    static void fill(MemorySegment segment, long id) {
        MemorySegment.copy(expected(id, segment.byteSize()), 0, segment, 0, segment.byteSize());
    }

    /** True when the segment still holds allocation {@code id}'s pattern. */
    static boolean intact(MemorySegment segment, long id) {
        return segment.mismatch(expected(id, segment.byteSize())) == -1;
    }

    /** Throws when the segment does not hold allocation {@code id}'s pattern. */
    static void verify(MemorySegment segment, long id) {
        long at = segment.mismatch(expected(id, segment.byteSize()));
        if (at != -1) {
            throw new AssertionError("allocation " + id + " at 0x" + Long.toHexString(segment.address()) + " ("
                    + segment.byteSize() + " bytes) was overwritten at byte " + at);
        }
    }
}
