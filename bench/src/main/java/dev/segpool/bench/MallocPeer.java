package dev.segpool.bench;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * libc {@code malloc}, {@code realloc} and {@code free} through plain FFM downcalls (no {@code critical}
 * option), with addresses passed as {@code long}s so that no segment is made for them. Needs native
 * access.
 */
final class MallocPeer extends Peer {
    private static final MethodHandle MALLOC;
    private static final MethodHandle FREE;
    private static final MethodHandle REALLOC;

    static {
        Linker linker = Linker.nativeLinker();
        MALLOC = linker.downcallHandle(linker.defaultLookup().findOrThrow("malloc"),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
        FREE = linker.downcallHandle(linker.defaultLookup().findOrThrow("free"),
                FunctionDescriptor.ofVoid(ValueLayout.JAVA_LONG));
        REALLOC = linker.downcallHandle(linker.defaultLookup().findOrThrow("realloc"),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG));
    }

    static long malloc(long byteSize) {
        try {
            long address = (long) MALLOC.invokeExact(byteSize);
            if (address == 0) {
                throw new OutOfMemoryError("malloc(" + byteSize + ") returned NULL");
            }
            return address;
        } catch (Error | RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    static void free(long address) {
        try {
            FREE.invokeExact(address);
        } catch (Error | RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** libc {@code realloc}: the new address; the old one stays valid when it throws. */
    static long realloc(long address, long byteSize) {
        try {
            long moved = (long) REALLOC.invokeExact(address, byteSize);
            if (moved == 0) {
                throw new OutOfMemoryError("realloc(" + byteSize + ") returned NULL");
            }
            return moved;
        } catch (Error | RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    @Override
    public long pair(int byteSize) {
        long address = malloc(byteSize);
        free(address);
        return address;
    }

    @Override
    public long touchedPair(int byteSize) {
        long address = malloc(byteSize);
        MemorySegment all = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
        for (long offset = 0; offset < byteSize; offset += 4096) {
            all.set(ValueLayout.JAVA_BYTE, address + offset, (byte) 1);
        }
        free(address);
        return address;
    }

    @Override
    public long grow(int fromSize, int toSize) {
        MemorySegment all = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
        long address = malloc(fromSize);
        all.set(ValueLayout.JAVA_BYTE, address + fromSize - 1, (byte) 1);
        for (long size = 2L * fromSize; size <= toSize; size *= 2) {
            address = realloc(address, size);
            all.set(ValueLayout.JAVA_BYTE, address + size - 1, (byte) 1);
        }
        free(address);
        return address;
    }

    @Override
    public Slots slots(int count) {
        long[] live = new long[count];
        return new Slots() {
            @Override
            public long allocate(int slot, int byteSize) {
                return live[slot] = malloc(byteSize);
            }

            @Override
            public void free(int slot) {
                MallocPeer.free(live[slot]);
                live[slot] = 0;
            }

            @Override
            public void touch(int slot, int byteSize) {
                MemorySegment all = MemorySegment.NULL.reinterpret(Long.MAX_VALUE);
                long address = live[slot];
                for (long offset = 0; offset < byteSize; offset += 4096) {
                    all.set(ValueLayout.JAVA_BYTE, address + offset, (byte) 1);
                }
            }

            @Override
            public void clear() {
                for (int i = 0; i < live.length; i++) {
                    if (live[i] != 0) {
                        free(i);
                    }
                }
            }
        };
    }

    @Override
    public Object allocateShared(int byteSize) {
        return malloc(byteSize);
    }

    @Override
    public void free(Object buffer) {
        free((long) (Long) buffer);
    }

    @Override
    public long reservedBytes() {
        return -1;
    }

    @Override
    public void close() {}
}
