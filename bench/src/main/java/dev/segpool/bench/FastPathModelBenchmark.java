package dev.segpool.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

/**
 * A model, not segpool: the allocate/free pair of a layout in which each thread owns the subpages it
 * allocates from (as mimalloc's pages), measured beside {@link PairBenchmark}'s peers to tell what
 * that layout could reach before anyone builds it. The free keeps every check segpool's free makes:
 * the chunk from its address (a home-slot table), the segment's scope against the chunk's, the
 * subpage from its page, that the address starts an element inside the subpage, and one
 * compare-and-exchange {@code LIVE -> FREE} of the element's state byte, so a bad or racing double
 * free would still be refused. What it leaves out: every slow path (an empty bitmap word, another
 * thread's free, refills, trims, budgets, virtual threads), so it throws where a pool would take one.
 *
 * <p>Allocate: the size class from a table, the thread's cache from a front table indexed by thread
 * id and checked against its owner, the class's current subpage, the lowest set bit of its free
 * bitmap word (cleared), a release store of {@code LIVE} into the state byte, a countdown to the
 * periodic trim, and a slice of the chunk. Free: the checks above, then the bit set again when the
 * calling thread owns the subpage. There is no cache stack: the subpage's bitmap is the cache.
 *
 * <p>{@link #pairStacked} is the same model with segpool's cache layout instead: a stack of (chunk,
 * handle) per class, popped and decoded on allocate, and on free the calling thread's cache looked up
 * again and the unit pushed; everything else is the same code. The difference between the two is what
 * the layout costs inside the model.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class FastPathModelBenchmark {
    private static final VarHandle STATES = MethodHandles.arrayElementVarHandle(byte[].class);
    private static final byte FREE = 0;
    private static final byte LIVE = 1;
    private static final int PAGE_SHIFT = 13;
    private static final int PAGE_SIZE = 1 << PAGE_SHIFT;
    private static final int CHUNK_SHIFT = 22;
    private static final int TRIM_INTERVAL = 8192;

    /** One chunk: its segment, and the subpage at every page that has one. */
    private static final class Chunk {
        final MemorySegment segment;
        final long base;
        final MemorySegment.Scope scope;
        final Subpage[] subpages = new Subpage[1 << (CHUNK_SHIFT - PAGE_SHIFT)];

        Chunk(MemorySegment segment) {
            this.segment = segment;
            this.base = segment.address();
            this.scope = segment.scope();
        }
    }

    /** One page cut into elements of one size, owned by the thread that allocates from it. */
    private static final class Subpage {
        final Chunk chunk;
        final long runStart;
        final int elementSize;
        /** {@code ceil(2^64 / elementSize)}: the index without a division. */
        final long reciprocal;
        final int maxElements;
        final byte[] states;
        /** Bit {@code i} set: element {@code i} is free. */
        final long[] freeBits;
        /** The lowest word of {@link #freeBits} that may have a bit set. */
        int word;
        final Thread owner;
        final int page;
        int sizeClass;

        Subpage(Chunk chunk, int page, int elementSize, Thread owner) {
            this.chunk = chunk;
            this.runStart = (long) page << PAGE_SHIFT;
            this.elementSize = elementSize;
            this.reciprocal = Long.divideUnsigned(-1L, elementSize) + 1;
            this.maxElements = PAGE_SIZE / elementSize;
            this.states = new byte[maxElements];
            this.freeBits = new long[(maxElements + 63) >>> 6];
            for (int i = 0; i < maxElements; i++) {
                freeBits[i >>> 6] |= 1L << i;
            }
            this.owner = owner;
            this.page = page;
            chunk.subpages[page] = this;
        }
    }

    /** A class's stack of cached units, as segpool's {@code CacheStack}: (chunk, handle) pairs. */
    private static final class Stack {
        final Chunk[] chunks = new Chunk[256];
        /** Page of the subpage in the high half, element index in the low half. */
        final long[] handles = new long[256];
        int size;
        int lowWater;
        final int capacity = 256;
    }

    /** A thread's cache: its current subpage per size class, and (for the stacked pair) a stack per class. */
    private static final class ThreadCache {
        final Thread owner;
        final Subpage[] current = new Subpage[64];
        final Stack[] stacks = new Stack[64];
        int untilTrim = TRIM_INTERVAL;
        long trims;

        ThreadCache(Thread owner) {
            this.owner = owner;
        }

        void trim() {
            untilTrim = TRIM_INTERVAL;
            trims++;
        }
    }

    /** The pool of the model: one chunk, one thread, one subpage per size class in use. */
    private static final class ModelPool {
        final byte[] classOfQuanta = new byte[2049];
        volatile Chunk[] chunks = new Chunk[16];
        final ThreadCache[] front = new ThreadCache[256];
        volatile boolean open = true;

        ModelPool() {
            for (int i = 0; i < classOfQuanta.length; i++) {
                classOfQuanta[i] = (byte) Math.min(63, i);
            }
        }

        int sizeClass(long byteSize) {
            return classOfQuanta[(int) (byteSize + 15) >>> 4];
        }

        /** The calling thread's cache when the fast path serves {@code byteSize} (and the pool is open), else null. */
        ThreadCache cacheFor(long byteSize) {
            if (byteSize >= 0 & byteSize <= 32768 && open) {
                return callerCache();
            }
            return null;
        }

        /** The calling thread's cache, from the front table indexed by thread id, or null. */
        ThreadCache callerCache() {
            Thread thread = Thread.currentThread();
            ThreadCache cache = front[(int) thread.threadId() & 255];
            return cache != null && cache.owner == thread ? cache : null;
        }

        MemorySegment allocate(long byteSize) {
            ThreadCache cache = cacheFor(byteSize);
            if (cache != null) {
                Subpage subpage = cache.current[sizeClass(byteSize)];
                if (subpage != null) {
                    int w = subpage.word;
                    long bits = subpage.freeBits[w];
                    if (bits != 0) {
                        int index = (w << 6) + Long.numberOfTrailingZeros(bits);
                        subpage.freeBits[w] = bits & (bits - 1);
                        STATES.setRelease(subpage.states, index, LIVE);
                        if (--cache.untilTrim == 0) {
                            cache.trim();
                        }
                        return subpage.chunk.segment.asSlice(subpage.runStart + (long) index * subpage.elementSize,
                                byteSize);
                    }
                }
            }
            throw new UnsupportedOperationException("the model has no slow path");
        }

        void free(MemorySegment segment) {
            Subpage subpage = subpageOf(segment);
            int index = claim(subpage, segment.address());
            if (subpage.owner != Thread.currentThread()) {
                throw new UnsupportedOperationException("the model has no remote free");
            }
            subpage.freeBits[index >>> 6] |= 1L << index;
            if (index >>> 6 < subpage.word) {
                subpage.word = index >>> 6;
            }
        }

        /** As {@link #allocate}, from the class's stack of the calling thread's cache. */
        MemorySegment allocateStacked(long byteSize) {
            ThreadCache cache = cacheFor(byteSize);
            if (cache != null) {
                Stack stack = cache.stacks[sizeClass(byteSize)];
                if (stack.size > 0) {
                    int n = stack.size - 1;
                    stack.size = n;
                    stack.lowWater = Math.min(stack.lowWater, n);
                    Chunk chunk = stack.chunks[n];
                    long handle = stack.handles[n];
                    int page = (int) (handle >>> 32);
                    int index = (int) handle;
                    Subpage subpage = chunk.subpages[page];
                    STATES.setRelease(subpage.states, index, LIVE);
                    if (--cache.untilTrim == 0) {
                        cache.trim();
                    }
                    return chunk.segment.asSlice(((long) page << PAGE_SHIFT) + (long) index * subpage.elementSize,
                            byteSize);
                }
            }
            throw new UnsupportedOperationException("the model has no slow path");
        }

        /** As {@link #free}, onto the class's stack of the calling thread's cache, looked up again. */
        void freeStacked(MemorySegment segment) {
            Subpage subpage = subpageOf(segment);
            int index = claim(subpage, segment.address());
            ThreadCache cache = callerCache();
            if (cache == null) {
                throw new UnsupportedOperationException("the model has no free without a cache");
            }
            Stack stack = cache.stacks[subpage.sizeClass];
            int n = stack.size;
            if (n == stack.capacity) {
                throw new UnsupportedOperationException("the model has no flush");
            }
            stack.chunks[n] = subpage.chunk;
            stack.handles[n] = (long) subpage.page << 32 | index;
            stack.size = n + 1;
        }

        /** The checks of segpool's free up to the element: chunk by address, scope, open pool, subpage by page. */
        private Subpage subpageOf(MemorySegment segment) {
            long address = segment.address();
            Chunk[] table = chunks;
            Chunk chunk = table[(int) (address >>> CHUNK_SHIFT) & (table.length - 1)];
            if (chunk == null || chunk.base != (address & -(1L << CHUNK_SHIFT)) || segment.scope() != chunk.scope
                    || !open) {
                throw new IllegalArgumentException("not a segment of this pool");
            }
            Subpage subpage = chunk.subpages[(int) ((address - chunk.base) >>> PAGE_SHIFT)];
            if (subpage == null) {
                throw new IllegalArgumentException("not a small unit");
            }
            return subpage;
        }

        /** The rest of segpool's checks (an element starts at {@code address}) and the claim {@code LIVE -> FREE}; returns its index. */
        private static int claim(Subpage subpage, long address) {
            long inRun = address - subpage.chunk.base - subpage.runStart;
            int index = (int) Math.unsignedMultiplyHigh(inRun, subpage.reciprocal);
            if (index * subpage.elementSize != inRun || index >= subpage.maxElements
                    || (byte) STATES.compareAndExchange(subpage.states, index, LIVE, FREE) != LIVE) {
                throw new IllegalArgumentException("not the start of a live element");
            }
            return index;
        }
    }

    @Param({"64", "256"})
    int size;

    private ModelPool pool;
    private Arena memory;

    @Setup
    public void setUp() {
        pool = new ModelPool();
        memory = Arena.ofShared();
        Chunk chunk = new Chunk(memory.allocate(1L << CHUNK_SHIFT, 1L << CHUNK_SHIFT));
        Chunk[] table = new Chunk[16];
        table[(int) (chunk.base >>> CHUNK_SHIFT) & (table.length - 1)] = chunk;
        pool.chunks = table;
        Thread thread = Thread.currentThread();
        ThreadCache cache = new ThreadCache(thread);
        pool.front[(int) thread.threadId() & 255] = cache;
        int sizeClass = pool.sizeClass(size);
        cache.current[sizeClass] = new Subpage(chunk, 3, size, thread);
        cache.current[sizeClass].sizeClass = sizeClass;
        // The stacked pair uses another subpage of the chunk, one element of which sits on the stack.
        Subpage stacked = new Subpage(chunk, 5, size, thread);
        stacked.sizeClass = sizeClass;
        stacked.freeBits[0] &= ~1L;
        Stack stack = new Stack();
        stack.chunks[0] = chunk;
        stack.handles[0] = 5L << 32;
        stack.size = 1;
        cache.stacks[sizeClass] = stack;
    }

    @TearDown
    public void tearDown() {
        memory.close();
    }

    @Benchmark
    public long pair() {
        MemorySegment segment = pool.allocate(size);
        pool.free(segment);
        return segment.address();
    }

    @Benchmark
    public long pairStacked() {
        MemorySegment segment = pool.allocateStacked(size);
        pool.freeStacked(segment);
        return segment.address();
    }
}
