package dev.segpool.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The JDK's own arenas: one {@code Arena.ofConfined()} per allocation, closed to free it. The JDK
 * zeroes what it allocates (part of its contract). A buffer freed by another thread needs
 * {@code Arena.ofShared()}, whose close costs a handshake with all threads.
 */
final class JdkArenaPeer extends Peer {
    @Override
    public long pair(int byteSize) {
        try (Arena arena = Arena.ofConfined()) {
            return arena.allocate(byteSize).address();
        }
    }

    @Override
    public long touchedPair(int byteSize) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment segment = arena.allocate(byteSize);
            for (long offset = 0; offset < byteSize; offset += 4096) {
                segment.set(ValueLayout.JAVA_BYTE, offset, (byte) 1);
            }
            return segment.address();
        }
    }

    @Override
    public Slots slots(int count) {
        Arena[] arenas = new Arena[count];
        MemorySegment[] live = new MemorySegment[count];
        return new Slots() {
            @Override
            public long allocate(int slot, int byteSize) {
                Arena arena = Arena.ofConfined();
                MemorySegment segment = arena.allocate(byteSize);
                arenas[slot] = arena;
                live[slot] = segment;
                return segment.address();
            }

            @Override
            public void free(int slot) {
                arenas[slot].close();
                arenas[slot] = null;
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
                for (int i = 0; i < arenas.length; i++) {
                    if (arenas[i] != null) {
                        free(i);
                    }
                }
            }
        };
    }

    private record Shared(Arena arena, MemorySegment segment) {}

    @Override
    public Object allocateShared(int byteSize) {
        Arena arena = Arena.ofShared();
        return new Shared(arena, arena.allocate(byteSize));
    }

    @Override
    public void free(Object buffer) {
        ((Shared) buffer).arena.close();
    }

    @Override
    public long reservedBytes() {
        return -1;
    }

    @Override
    public void close() {}
}
