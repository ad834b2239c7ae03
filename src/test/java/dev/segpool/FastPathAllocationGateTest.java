package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.util.Locale;
import java.util.function.LongSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Gate: a warm allocate/free pair on {@code SegmentPool.create()} must not allocate on the heap when the
 * caller does not keep the segment (only a {@code long} derived from its address leaves the loop), at
 * 64 B, 256 B, 4 KiB and 16 KiB, all on the thread-cache path.
 *
 * <p>Method: the measured loops are warmed up until C2 has compiled them (the JVM runs with
 * {@code -XX:-BackgroundCompilation}, so a compilation, once triggered, is finished before the loop goes
 * on), with every size interleaved so that the compiled code has seen every branch the measurement takes.
 * Then each size is warmed once more and measured {@value #MEASUREMENTS} times over
 * {@value #MEASURED_PAIRS} pairs with the thread's allocated-bytes counter
 * ({@code com.sun.management.ThreadMXBean.getThreadAllocatedBytes}); the least of the runs counts, so that
 * a one-off event (a deoptimization and recompile) does not fail the gate, while a path that allocates on
 * every pair fails every run.
 *
 * <p>The same holds for a pooled arena that does not escape: a warm {@code newArena()}, one
 * {@code allocate(64)} and {@code close()} must not allocate on the heap either, with or without native
 * access (with it, the arena's JDK session is scalar-replaced too, as {@code Arena.ofConfined()}'s is,
 * which is measured beside it and reported).
 *
 * <p>And for pairs inside {@code runWithThreadCache} tasks on a virtual thread, where only the binding's
 * own objects may be allocated, at most {@value #TASK_BINDING_BYTES} bytes per task of
 * {@value #TASK_PAIRS} pairs (measured with {@code getTotalThreadAllocatedBytes}, which counts what a
 * virtual thread allocates in its carrier's figure).
 *
 * <p>Runs in two JVMs of its own, with and without native access (surefire executions
 * {@code allocation-gate-test} and {@code allocation-gate-no-native-test} in {@code segpool.xml});
 * skipped with {@code -Dsegpool.gate.skip=true}.
 */
@Tag("allocation-gate")
class FastPathAllocationGateTest {
    private static final int[] SIZES = {64, 256, 4096, 16384};
    /** Pairs per call of the measured loop during warm-up; {@value #WARMUP_CALLS} calls per size. */
    private static final int WARMUP_PAIRS = 10_000;
    private static final int WARMUP_CALLS = 300;
    private static final int MEASURED_PAIRS = 1_000_000;
    private static final int MEASUREMENTS = 3;
    /**
     * A huge request (above the default chunk size), made at the same call site as the pairs during
     * warm-up, so that the rare paths of allocate and free are in the profile the pairs compile with:
     * an application that sometimes asks for a huge segment must not lose the small pairs' escape
     * analysis (with a segment made on each path, or passed to the rare path, it did).
     */
    private static final long HUGE = 8L << 20;
    private static final int HUGE_WARMUP_PAIRS = 20;
    /**
     * A run above the thread caches' largest class ({@code maxCachedSize}, 32 KiB by default), made at the
     * same call site as the pairs during warm-up, often enough that its way through allocate and free
     * is in the profile: a call site that serves every size (a program's one allocation wrapper) must
     * not lose the small pairs' escape analysis either.
     */
    private static final long LARGE_RUN = 64L << 10;
    private static final int LARGE_RUN_WARMUP_PAIRS = 1_000;

    /**
     * Scoped tasks as a server with a thread per request runs them: each {@code runWithThreadCache} on a
     * virtual thread makes {@value #TASK_PAIRS} pairs of {@value #TASK_SIZE} B ({@link #taskPairs}, a
     * call site of their own). Every task starts with an empty cache, so one allocation in
     * {@value #TASK_PAIRS} refills it: the refill is in the profile as often as the JIT calls hot.
     */
    private static final int TASK_PAIRS = 16;
    private static final int TASK_SIZE = 256;
    private static final int WARMUP_TASKS = 1_000;
    private static final int MEASURED_TASKS = 100_000;
    /**
     * Heap bytes a scoped task may take beside its pairs: the binding's own objects
     * ({@code ScopedValue.where} and its snapshot, about 56 B); a pair that escapes adds 40 B.
     */
    private static final int TASK_BINDING_BYTES = 128;

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private static SegmentPool pool;
    /**
     * A default pool on which one task ran inside {@code runWithThreadCache} first: a pool that also
     * serves scoped tasks, whose plain calls must inline as well.
     */
    private static SegmentPool mixedPool;
    /** Results of the loops, kept so that the JIT cannot drop them. */
    private static volatile long sink;
    /** Where the meter check's arrays escape to. */
    private static volatile Object escaped;

    @BeforeAll
    static void warmUp() {
        assertTrue(THREADS.isThreadAllocatedMemorySupported(), "this JVM cannot count allocated bytes per thread");
        THREADS.setThreadAllocatedMemoryEnabled(true);
        checkTheMeter();
        pool = SegmentPool.create();
        mixedPool = SegmentPool.create();
        mixedPool.runWithThreadCache(() -> mixedPool.free(mixedPool.allocate(64)));
        for (int call = 0; call < WARMUP_CALLS; call++) {
            for (int size : SIZES) {
                sink += pairs(pool, size, WARMUP_PAIRS);
            }
            sink += pairs(mixedPool, 64, WARMUP_PAIRS);
            sink += pairs(pool, HUGE, HUGE_WARMUP_PAIRS);
            sink += pairs(pool, LARGE_RUN, LARGE_RUN_WARMUP_PAIRS);
            sink += pooledArenas(pool, WARMUP_PAIRS);
            sink += jdkArenas(WARMUP_PAIRS);
            scopedTasks(WARMUP_TASKS);
        }
    }

    @AfterAll
    static void closePool() {
        if (pool != null) {
            pool.close();
        }
        if (mixedPool != null) {
            mixedPool.close();
        }
    }

    @ParameterizedTest(name = "{0} bytes")
    @ValueSource(ints = {64, 256, 4096, 16384})
    void warmAllocateFreePairAllocatesNothingOnTheHeap(int size) {
        for (int call = 0; call < WARMUP_CALLS / 10; call++) {
            sink += pairs(pool, size, WARMUP_PAIRS);
        }
        double perPair = leastBytesPer(MEASURED_PAIRS, () -> pairs(pool, size, MEASURED_PAIRS));
        System.out.printf(Locale.ROOT, "[allocation-gate] allocate/free pair of %d B: %.3f heap bytes per pair%n",
                size, perPair);
        assertTrue(perPair < 1.0, () -> String.format(Locale.ROOT,
                "a warm allocate(%d)/free pair on SegmentPool.create() allocates %.2f bytes on the heap per pair"
                        + " (least of %d runs of %,d pairs; the gate is < 1 byte per pair): the fast path must not"
                        + " allocate when the caller keeps only the segment's address",
                size, perPair, MEASUREMENTS, MEASURED_PAIRS));
    }

    /**
     * A request above the caches' largest class takes the rare path, a real call. It hands back the
     * unit's address, and allocate slices the chunk's segment once, as on the fast path, so a caller that
     * keeps only the address gets that slice scalar-replaced too. When the rare path made a segment of
     * its own (which allocate then sliced again), that segment was always on the heap: 40 B per pair
     * here, 80 B where the caller keeps the segment.
     */
    @Test
    void warmPairAboveTheCachesAllocatesNothingOnTheHeap() {
        int count = LARGE_RUN_WARMUP_PAIRS * 10;
        double perPair = leastBytesPer(count, () -> pairs(pool, LARGE_RUN, count));
        System.out.printf(Locale.ROOT, "[allocation-gate] allocate/free pair of %d B (rare path): %.1f heap bytes"
                + " per pair%n", LARGE_RUN, perPair);
        assertTrue(perPair < 1.0, () -> String.format(Locale.ROOT,
                "a warm allocate(%d)/free pair (above the caches, the rare path) allocates %.1f bytes on the heap"
                        + " per pair (least of %d runs of %,d pairs; the gate is < 1 byte per pair): the rare path"
                        + " makes a segment of its own, or allocate no longer inlines",
                LARGE_RUN, perPair, MEASUREMENTS, count));
    }

    /**
     * A pool that has bound a scoped cache asks each thread for its binding only off the fast path
     * (a thread with its own cache in the front table is answered there): with the scoped-value lookup
     * on every call, allocate and free compiled too big to inline and every pair made 40 B of garbage.
     */
    @Test
    void warmPairOnAPoolThatAlsoRanAScopedTaskAllocatesNothingOnTheHeap() {
        for (int call = 0; call < WARMUP_CALLS / 10; call++) {
            sink += pairs(mixedPool, 64, WARMUP_PAIRS);
            sink += pairs(pool, HUGE, HUGE_WARMUP_PAIRS);
        }
        double perPair = leastBytesPer(MEASURED_PAIRS, () -> pairs(mixedPool, 64, MEASURED_PAIRS));
        System.out.printf(Locale.ROOT, "[allocation-gate] allocate/free pair of 64 B on a pool that ran a scoped task:"
                + " %.3f heap bytes per pair%n", perPair);
        assertTrue(perPair < 1.0, () -> String.format(Locale.ROOT,
                "a warm allocate(64)/free pair on a pool that once ran runWithThreadCache allocates %.2f bytes on"
                        + " the heap per pair (least of %d runs of %,d pairs; the gate is < 1 byte per pair)",
                perPair, MEASUREMENTS, MEASURED_PAIRS));
    }

    /**
     * Pairs inside scoped tasks on a virtual thread: the task's cache answers from the front table,
     * with no scoped-value lookup, and the refill that starts each task stays a call. With the lookup
     * on every call, or with the refill inlined through a small helper (a method of at most
     * {@code MaxInlineSize} bytecodes is inlined however rarely it runs, and the calls inside it then
     * count as hot), allocate compiled to 9 KB, too big to inline, and every pair made 40 B of garbage.
     */
    @Test
    void warmPairsInsideScopedTasksOnAVirtualThreadAllocateNothingOnTheHeap() {
        scopedTasks(WARMUP_TASKS);
        long least = Long.MAX_VALUE;
        for (int run = 0; run < MEASUREMENTS; run++) {
            least = Math.min(least, scopedTasks(MEASURED_TASKS));
        }
        double perTask = (double) least / MEASURED_TASKS;
        System.out.printf(Locale.ROOT, "[allocation-gate] runWithThreadCache task of %d pairs of %d B on a virtual"
                + " thread: %.1f heap bytes per task%n", TASK_PAIRS, TASK_SIZE, perTask);
        assertTrue(perTask < TASK_BINDING_BYTES, () -> String.format(Locale.ROOT,
                "a warm runWithThreadCache task of %d allocate(%d)/free pairs on a virtual thread allocates %.1f"
                        + " bytes on the heap (least of %d runs of %,d tasks; the gate is < %d bytes, the binding's"
                        + " own objects): its pairs escape",
                TASK_PAIRS, TASK_SIZE, perTask, MEASUREMENTS, MEASURED_TASKS, TASK_BINDING_BYTES));
    }

    /**
     * Whether C2 removes the arena depends on its opening being small enough to inline (its compiled
     * code under {@code InlineSmallCode}) and on its rare paths being left out of the compiled code:
     * this test fails when a change to {@code ScratchArena.openConfined}, {@code allocate} or
     * {@code close} breaks either. The pair loops above run on the same thread, so the arenas' 4 KiB
     * blocks share a size class with the 4 KiB pairs and the periodic trim empties it now and then: the
     * refill path is in the profile.
     */
    @Test
    void warmPooledArenaOpenAllocateCloseAllocatesNothingOnTheHeap() {
        boolean nativeAccess = TestModes.nativeAccess();
        double pooled = leastBytesPer(MEASURED_PAIRS, () -> pooledArenas(pool, MEASURED_PAIRS));
        double jdk = leastBytesPer(MEASURED_PAIRS, () -> jdkArenas(MEASURED_PAIRS));
        System.out.printf(Locale.ROOT, "[allocation-gate] pooled arena open, allocate(64), close: %.1f heap bytes per"
                + " arena; Arena.ofConfined(): %.1f; native access %s%n",
                pooled, jdk, nativeAccess ? "granted" : "not granted");
        assertTrue(pooled < 1.0, () -> String.format(Locale.ROOT,
                "a warm newArena(), allocate(64), close() allocates %.2f bytes on the heap per arena (native access"
                        + " %s; least of %d runs of %,d arenas; the gate is < 1 byte): the arena no longer"
                        + " inlines into its caller, or a rare path of its opening merges with the fast one",
                pooled, nativeAccess ? "granted" : "not granted", MEASUREMENTS, MEASURED_PAIRS));
    }

    /** Allocate/free pairs as a caller that keeps nothing but a long derived from each address. */
    private static long pairs(SegmentPool pool, long size, int count) {
        long addresses = 0;
        for (int i = 0; i < count; i++) {
            MemorySegment segment = pool.allocate(size);
            pool.free(segment);
            addresses += segment.address();
        }
        return addresses;
    }

    /**
     * Runs {@code tasks} scoped tasks of {@link #pairs} one after another on a new virtual thread; returns
     * the heap bytes all threads allocated meanwhile (the virtual thread's count in its carrier's).
     */
    private static long scopedTasks(int tasks) {
        Runnable task = () -> sink += taskPairs(pool);
        long before = THREADS.getTotalThreadAllocatedBytes();
        Thread thread = Thread.ofVirtual().start(() -> {
            for (int i = 0; i < tasks; i++) {
                pool.runWithThreadCache(task);
            }
        });
        try {
            thread.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
        return THREADS.getTotalThreadAllocatedBytes() - before;
    }

    /**
     * {@link #pairs} of one scoped task, at a call site of its own. At the platform-thread pairs' site the
     * check fails: a task whose virtual thread's slot of the front table is taken (1 in 256 threads)
     * looks its binding up, and with that path in the profile the pairs' site compiles too big to inline
     * allocate (README, "Threads").
     */
    private static long taskPairs(SegmentPool pool) {
        long addresses = 0;
        for (int i = 0; i < TASK_PAIRS; i++) {
            MemorySegment segment = pool.allocate(TASK_SIZE);
            pool.free(segment);
            addresses += segment.address();
        }
        return addresses;
    }

    private static long pooledArenas(SegmentPool pool, int count) {
        long addresses = 0;
        for (int i = 0; i < count; i++) {
            try (Arena arena = pool.newArena()) {
                addresses += arena.allocate(64).address();
            }
        }
        return addresses;
    }

    private static long jdkArenas(int count) {
        long addresses = 0;
        for (int i = 0; i < count; i++) {
            try (Arena arena = Arena.ofConfined()) {
                addresses += arena.allocate(64).address();
            }
        }
        return addresses;
    }

    /** The least heap bytes per operation over {@value #MEASUREMENTS} runs of {@code work}. */
    private static double leastBytesPer(int operations, LongSupplier work) {
        long least = Long.MAX_VALUE;
        for (int run = 0; run < MEASUREMENTS; run++) {
            least = Math.min(least, allocatedBy(work));
        }
        return (double) least / operations;
    }

    /** Heap bytes the current thread allocates while running {@code work}. */
    private static long allocatedBy(LongSupplier work) {
        long id = Thread.currentThread().threadId();
        long before = THREADS.getThreadAllocatedBytes(id);
        long result = work.getAsLong();
        long after = THREADS.getThreadAllocatedBytes(id);
        sink += result;
        return after - before;
    }

    /** The gate passes trivially if the counter reads nothing: check that it sees a known allocation. */
    private static void checkTheMeter() {
        long bytes = allocatedBy(() -> {
            long sum = 0;
            for (int i = 0; i < 1000; i++) {
                byte[] array = new byte[1024];
                escaped = array; // escapes, so it is really allocated
                sum += array.length;
            }
            return sum;
        });
        assertTrue(bytes >= 1000 * 1024, "the allocated-bytes counter saw " + bytes + " bytes of 1,024,000 allocated");
        long before = THREADS.getTotalThreadAllocatedBytes();
        escaped = new byte[1 << 20];
        long total = THREADS.getTotalThreadAllocatedBytes() - before;
        assertTrue(total >= 1 << 20, "the all-threads counter saw " + total + " bytes of 1,048,576 allocated");
    }
}
