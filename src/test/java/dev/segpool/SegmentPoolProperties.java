package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tuple;

/**
 * Model-based test of a small pool (4 KiB pages, 64 KiB chunks): random sequences of allocations,
 * frees and refused frees run against a reference model of the live allocations, and after every step
 * the pool must agree with the model: no overlap, contents intact, exact sizes and alignments, and
 * metrics that add up.
 */
class SegmentPoolProperties {
    private static final int PAGE = 4096;
    private static final int CHUNK = 65536;
    private static final List<Integer> CLASS_SIZES = SizeClassesTest.expectedClassSizes(CHUNK);
    /** The default {@code maxCachedSize}: classes above it are cut to whole pages. */
    private static final int MAX_CACHED_SIZE = 32 * 1024;

    sealed interface Action permits Allocate, Free, DoubleFree, InteriorFree, ForeignFree, TrimPool, TrimCache {}

    record Allocate(long byteSize, long byteAlignment) implements Action {}

    record Free(int pick) implements Action {}

    /** Frees a segment again that the model has already freed. */
    record DoubleFree(int pick) implements Action {}

    /** Frees a slice that starts inside a live allocation. */
    record InteriorFree(int pick, long offsetSeed) implements Action {}

    /** Frees a segment that is not this pool's: 0 heap, 1 JDK arena, 2 another pool's, 3 another pool's huge. */
    record ForeignFree(int kind) implements Action {}

    record TrimPool() implements Action {}

    record TrimCache() implements Action {}

    /** One live allocation of the model. */
    record Live(MemorySegment segment, long id, long byteSize, long byteAlignment, long accountedBytes, boolean huge) {}

    // ---- the reference for what an allocation costs ----

    /**
     * Bytes counted in activeBytes for a request: its class size; for a class above the largest one
     * thread caches may hold, only the whole pages the request needs (at least the 4 of the smallest
     * run class); the exact size (at least one byte) when it is huge.
     */
    static long accountedBytes(long byteSize, long byteAlignment) {
        long classSize = classFor(byteSize, byteAlignment);
        if (classSize < 0) {
            return Math.max(byteSize, 1); // a huge allocation of size 0 still counts a byte
        }
        if (classSize > MAX_CACHED_SIZE) {
            return Math.max((byteSize + PAGE - 1) / PAGE, 4) * PAGE;
        }
        return classSize;
    }

    /** The smallest class that can honour the request, or -1 when it must be a huge allocation. */
    static long classFor(long byteSize, long byteAlignment) {
        if (byteSize > CHUNK || byteAlignment > CHUNK) {
            return -1;
        }
        if (byteAlignment > PAGE) {
            // a normal run, cut at a multiple of the alignment: it must fit a chunk at any start
            for (int size : CLASS_SIZES) {
                if (size >= byteSize && size >= 4 * PAGE) {
                    return size / PAGE + byteAlignment / PAGE - 1 <= CHUNK / PAGE ? size : -1;
                }
            }
            throw new AssertionError();
        }
        long atLeast = Math.max(Math.max(byteSize, 1), byteAlignment);
        for (int size : CLASS_SIZES) {
            if (size >= atLeast && size % byteAlignment == 0) {
                return size;
            }
        }
        throw new AssertionError();
    }

    static boolean isHuge(long byteSize, long byteAlignment) {
        return classFor(byteSize, byteAlignment) < 0;
    }

    // ---- generators ----

    @Provide
    Arbitrary<List<Action>> actions() {
        Arbitrary<Long> boundarySizes = Arbitraries.of(CLASS_SIZES).flatMap(size ->
                Arbitraries.of(size - 1L, (long) size, size + 1L));
        Arbitrary<Long> sizes = Arbitraries.frequencyOf(
                Tuple.of(2, Arbitraries.just(0L)),
                Tuple.of(8, boundarySizes),
                Tuple.of(10, Arbitraries.longs().between(1, 4096)),
                Tuple.of(5, Arbitraries.longs().between(4097, CHUNK)),
                Tuple.of(2, Arbitraries.longs().between(CHUNK + 1, 3L * CHUNK)));
        Arbitrary<Long> alignments = Arbitraries.frequencyOf(
                Tuple.of(5, Arbitraries.just(1L)),
                Tuple.of(5, Arbitraries.integers().between(0, 16).map(shift -> 1L << shift)));
        Arbitrary<Action> allocate = net.jqwik.api.Combinators.combine(sizes, alignments).as(Allocate::new);
        Arbitrary<Integer> picks = Arbitraries.integers().between(0, Integer.MAX_VALUE);
        Arbitrary<Action> action = Arbitraries.frequencyOf(
                Tuple.of(10, allocate),
                Tuple.of(7, picks.map(Free::new)),
                Tuple.of(1, picks.map(DoubleFree::new)),
                Tuple.of(1, net.jqwik.api.Combinators.combine(picks, Arbitraries.longs().greaterOrEqual(0))
                        .as(InteriorFree::new)),
                Tuple.of(1, Arbitraries.integers().between(0, 3).map(ForeignFree::new)),
                Tuple.of(1, Arbitraries.just(new TrimPool())),
                Tuple.of(1, Arbitraries.just(new TrimCache())));
        return action.list().ofMinSize(1).ofMaxSize(100);
    }

    // ---- properties ----

    @Property(tries = 150)
    void withoutCaches_poolAgreesWithTheModelAfterEveryStep(@ForAll("actions") List<Action> actions) {
        run(actions, SegmentPool.builder().name("model").pageSize(PAGE).chunkSize(CHUNK).arenas(2)
                .threadLocalCaches(false), false);
    }

    @Property(tries = 150)
    void withCaches_poolAgreesWithTheModelAfterEveryStep(@ForAll("actions") List<Action> actions) {
        run(actions, SegmentPool.builder().name("model").pageSize(PAGE).chunkSize(CHUNK).arenas(2)
                .smallCacheSize(8).normalCacheSize(2).cacheTrimInterval(16), true);
    }

    private void run(List<Action> actions, SegmentPool.Builder builder, boolean cached) {
        try (SegmentPool pool = builder.build();
                SegmentPool other = SegmentPool.builder().pageSize(PAGE).chunkSize(CHUNK).arenas(1).build();
                Arena jdk = Arena.ofConfined()) {
            Model model = new Model(pool, cached);
            List<MemorySegment> foreign = List.of(MemorySegment.ofArray(new byte[32]), jdk.allocate(64),
                    other.allocate(100), other.allocate(CHUNK + 100));
            for (Action action : actions) {
                model.apply(action, foreign);
                model.check();
            }
            model.freeEverything();
            other.free(foreign.get(2));
            other.free(foreign.get(3));
        }
    }

    /** The live allocations the pool must hold, and the checks against them. */
    private static final class Model {
        private final SegmentPool pool;
        private final boolean cached;
        private final List<Live> live = new ArrayList<>();
        private final List<MemorySegment> freed = new ArrayList<>();
        private long nextId;

        Model(SegmentPool pool, boolean cached) {
            this.pool = pool;
            this.cached = cached;
        }

        void apply(Action action, List<MemorySegment> foreign) {
            switch (action) {
                case Allocate(long byteSize, long byteAlignment) -> {
                    MemorySegment segment = pool.allocate(byteSize, byteAlignment);
                    long id = nextId++;
                    Patterns.fill(segment, id);
                    live.add(new Live(segment, id, byteSize, byteAlignment, accountedBytes(byteSize, byteAlignment),
                            isHuge(byteSize, byteAlignment)));
                }
                case Free(int pick) -> {
                    if (!live.isEmpty()) {
                        Live victim = live.remove(pick % live.size());
                        Patterns.verify(victim.segment(), victim.id());
                        pool.free(victim.segment());
                        freed.add(victim.segment());
                        if (freed.size() > 64) {
                            freed.removeFirst();
                        }
                    }
                }
                case DoubleFree(int pick) -> {
                    if (!freed.isEmpty()) {
                        MemorySegment again = freed.get(pick % freed.size());
                        Set<Long> liveStarts = new HashSet<>();
                        live.forEach(l -> liveStarts.add(l.segment().address()));
                        if (!liveStarts.contains(again.address())) { // else its address was handed out anew
                            assertRefused(again);
                        }
                    }
                }
                case InteriorFree(int pick, long offsetSeed) -> {
                    List<Live> sliceable = live.stream().filter(l -> l.byteSize() >= 2).toList();
                    if (!sliceable.isEmpty()) {
                        Live target = sliceable.get(pick % sliceable.size());
                        assertRefused(target.segment().asSlice(1 + offsetSeed % (target.byteSize() - 1)));
                    }
                }
                case ForeignFree(int kind) -> assertRefused(foreign.get(kind));
                case TrimPool() -> {
                    long reserved = pool.metrics().reservedBytes();
                    long released = pool.trim();
                    long dropped = reserved - pool.metrics().reservedBytes();
                    if (SegmentPool.class.getModule().isNativeAccessEnabled()) {
                        // trim also purges free pages inside chunks in use: released, still reserved
                        assertTrue(released >= dropped, released + " released, reserved dropped by " + dropped);
                    } else {
                        assertEquals(dropped, released);
                    }
                }
                case TrimCache() -> {
                    pool.trimCurrentThreadCache();
                    assertEquals(0, pool.metrics().cachedBytes());
                }
            }
        }

        private void assertRefused(MemorySegment segment) {
            PoolMetrics before = pool.metrics();
            IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class, () -> pool.free(segment));
            assertTrue(thrown.getMessage().contains("0x") || thrown.getMessage().contains("heap"), thrown.getMessage());
            assertEquals(before, pool.metrics(), "a refused free changed the pool");
        }

        void check() {
            long active = 0;
            long huge = 0;
            for (Live l : live) {
                MemorySegment segment = l.segment();
                assertEquals(l.byteSize(), segment.byteSize());
                assertEquals(0, segment.address() % l.byteAlignment(), "alignment " + l.byteAlignment());
                Patterns.verify(segment, l.id());
                active += l.accountedBytes();
                huge += l.huge() ? l.accountedBytes() : 0;
            }
            AllocationTest.assertNoOverlap(live.stream().map(Live::segment).toList());
            PoolMetrics m = pool.metrics();
            assertEquals(active, m.activeBytes(), "activeBytes");
            assertEquals(huge, m.hugeBytes(), "hugeBytes");
            assertEquals(m.reservedBytes(), m.activeBytes() + m.cachedBytes() + m.freeBytes(), "reserved");
            assertEquals((long) m.chunks() * CHUNK + huge, m.reservedBytes(), "chunks and huge");
            if (!cached) {
                assertEquals(0, m.cachedBytes());
                assertEquals(0, m.threadCaches());
            }
            for (PoolArena arena : pool.arenas()) {
                assertTrue(arena.checkConsistency(), "arena " + arena.index);
            }
        }

        void freeEverything() {
            for (Live l : live) {
                Patterns.verify(l.segment(), l.id());
                pool.free(l.segment());
            }
            live.clear();
            pool.trimCurrentThreadCache();
            PoolMetrics m = pool.metrics();
            assertEquals(0, m.activeBytes());
            assertEquals(0, m.cachedBytes());
            assertEquals(0, m.hugeBytes());
            assertEquals(m.reservedBytes(), m.freeBytes());
            pool.trim();
            assertEquals(0, pool.metrics().reservedBytes(), "trim gives every chunk back");
        }
    }
}
