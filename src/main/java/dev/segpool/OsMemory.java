package dev.segpool;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Native memory straight from the kernel ({@code mmap}/{@code munmap}) and page purging
 * ({@code madvise(MADV_DONTNEED)}), through {@link Linker} downcalls. Used only on Linux and only when
 * the module has native access; otherwise {@link #AVAILABLE} is false and nothing here is touched, so
 * the pool never throws {@link IllegalCallerException} at its user.
 *
 * <p>Why not malloc: glibc may keep freed blocks resident (and raises its mmap threshold after each
 * large free), so releasing a chunk would not lower the process's resident memory. Memory from
 * {@code mmap} goes back with {@code munmap}, and a purged page is zero when next touched.
 */
final class OsMemory {
    private static final int PROT_READ_WRITE = 0x1 | 0x2;
    private static final int MAP_PRIVATE_ANONYMOUS = 0x02 | 0x20;
    private static final int MADV_DONTNEED = 4;
    private static final int SC_PAGESIZE = 30;
    private static final long MAP_FAILED = -1L;

    /** Whether this class can be used: Linux, native access, and the symbols found. */
    static final boolean AVAILABLE;
    private static final MethodHandle MMAP;
    private static final MethodHandle MUNMAP;
    private static final MethodHandle MADVISE;
    private static final long OS_PAGE;

    static {
        MethodHandle mmap = null;
        MethodHandle munmap = null;
        MethodHandle madvise = null;
        long page = 4096;
        boolean available = false;
        if (System.getProperty("os.name", "").startsWith("Linux")
                && OsMemory.class.getModule().isNativeAccessEnabled()) {
            try {
                Linker linker = Linker.nativeLinker();
                SymbolLookup libc = linker.defaultLookup();
                ValueLayout.OfLong word = ValueLayout.JAVA_LONG;
                ValueLayout.OfInt integer = ValueLayout.JAVA_INT;
                mmap = linker.downcallHandle(libc.find("mmap").orElseThrow(),
                        FunctionDescriptor.of(word, word, word, integer, integer, integer, word));
                munmap = linker.downcallHandle(libc.find("munmap").orElseThrow(),
                        FunctionDescriptor.of(integer, word, word));
                madvise = linker.downcallHandle(libc.find("madvise").orElseThrow(),
                        FunctionDescriptor.of(integer, word, word, integer));
                MethodHandle sysconf = linker.downcallHandle(libc.find("sysconf").orElseThrow(),
                        FunctionDescriptor.of(word, integer));
                page = (long) sysconf.invokeExact(SC_PAGESIZE);
                available = page > 0 && Long.bitCount(page) == 1;
            } catch (Throwable t) {
                LeakTracker.logger().log(System.Logger.Level.DEBUG, "mmap/madvise unavailable; chunks come from the JDK", t);
            }
        }
        MMAP = mmap;
        MUNMAP = munmap;
        MADVISE = madvise;
        OS_PAGE = page;
        AVAILABLE = available;
    }

    private OsMemory() {}

    /**
     * Maps {@code byteSize} bytes aligned to {@code alignment}, unmapped when {@code owner} closes. The
     * mapping is cut to its aligned part at once, so no address space is wasted on alignment.
     */
    static MemorySegment map(long byteSize, long alignment, Arena owner) {
        long length = Math.max(OS_PAGE, (byteSize + OS_PAGE - 1) & -OS_PAGE);
        long align = Math.max(alignment, OS_PAGE);
        long slack = align > OS_PAGE ? align : 0;
        long address;
        try {
            address = (long) MMAP.invokeExact(0L, length + slack, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS, -1, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("mmap failed", t);
        }
        if (address == MAP_FAILED) {
            throw new OutOfMemoryError("mmap of " + (length + slack) + " bytes failed");
        }
        long start = (address + align - 1) & -align;
        unmap(address, start - address);
        unmap(start + length, address + length + slack - (start + length));
        return MemorySegment.ofAddress(start).reinterpret(byteSize, owner, segment -> unmap(start, length));
    }

    /** Gives the pages of {@code [address, address + bytes)} back to the kernel; they read as zero later. */
    static void purge(long address, long bytes) {
        try {
            int result = (int) MADVISE.invokeExact(address, bytes, MADV_DONTNEED);
            assert result == 0 : "madvise failed";
        } catch (Throwable t) {
            throw new IllegalStateException("madvise failed", t);
        }
    }

    private static void unmap(long address, long bytes) {
        if (bytes <= 0) {
            return;
        }
        try {
            int result = (int) MUNMAP.invokeExact(address, bytes);
            assert result == 0 : "munmap failed";
        } catch (Throwable t) {
            throw new IllegalStateException("munmap failed", t);
        }
    }
}
