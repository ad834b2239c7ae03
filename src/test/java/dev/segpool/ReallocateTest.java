package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code reallocate} on {@link SegmentPool} and on {@link MemoryBudget} (each test runs through both,
 * the budget being a child {@code tenant/buffers}): the result holds the first {@code min(old, new)}
 * bytes; it keeps its address when the size class has room, when a run's following pages are free, or
 * when a huge allocation shrinks to no less than half; it moves otherwise; size 0 gives a live
 * allocation; the three-argument form's alignment is honoured. A budget is charged the new unit's
 * reserved size after a move (a huge allocation kept in place stays charged what it reserves). Every
 * refusal (bad size or alignment, a segment that is not the caller's, the pool's {@code maxMemory},
 * the budget's limit) leaves the old segment valid with its contents and charges nothing. And a
 * reallocate racing a free of the same segment: one of them takes the allocation, nothing is handed
 * out twice, and everything adds up to 0 afterwards.
 */
class ReallocateTest {
    private static final int PAGE = 4096;
    private static final int CHUNK = 65536;

    private SegmentPool pool;
    private MemoryBudget tenant;
    private MemoryBudget budget;
    private long nextId;

    @AfterEach
    void closePool() {
        if (pool != null && !pool.isClosed()) {
            pool.close();
        }
    }

    /**
     * A pool without thread-local caches (so that placement and activeBytes are exact) and, for
     * {@code "budget"}, a budget {@code tenant/buffers} to go through; for {@code "pool"}, none.
     */
    private void open(String through, SegmentPool.Builder builder) {
        pool = builder.build();
        tenant = pool.newBudget("tenant", 64 << 20);
        budget = through.equals("budget") ? tenant.newBudget("buffers", 32 << 20) : null;
    }

    private void open(String through) {
        open(through, poolBuilder());
    }

    private static SegmentPool.Builder poolBuilder() {
        return SegmentPool.builder().name("realloc").pageSize(PAGE).chunkSize(CHUNK).arenas(1).threadLocalCaches(false)
                .decay(Duration.ofDays(1));
    }

    private MemorySegment allocate(long byteSize) {
        return allocate(byteSize, 1);
    }

    private MemorySegment allocate(long byteSize, long byteAlignment) {
        return budget == null ? pool.allocate(byteSize, byteAlignment) : budget.allocate(byteSize, byteAlignment);
    }

    private void free(MemorySegment segment) {
        if (budget == null) {
            pool.free(segment);
        } else {
            budget.free(segment);
        }
    }

    private MemorySegment reallocate(MemorySegment segment, long newByteSize) {
        return budget == null ? pool.reallocate(segment, newByteSize) : budget.reallocate(segment, newByteSize);
    }

    private MemorySegment reallocate(MemorySegment segment, long newByteSize, long byteAlignment) {
        return budget == null ? pool.reallocate(segment, newByteSize, byteAlignment)
                : budget.reallocate(segment, newByteSize, byteAlignment);
    }

    /** A new allocation filled with a pattern of its own, whose id it returns with it. */
    private Filled filled(long byteSize) {
        MemorySegment segment = allocate(byteSize);
        long id = nextId++;
        Patterns.fill(segment, id);
        return new Filled(segment, id);
    }

    private record Filled(MemorySegment segment, long id) {
        void verify() {
            Patterns.verify(segment, id);
        }

        /** The first {@code bytes} of {@code result} hold this allocation's pattern. */
        void verifyPrefix(MemorySegment result, long bytes) {
            Patterns.verify(result.asSlice(0, bytes), id);
        }
    }

    /**
     * What the pool holds for this test's allocations (activeBytes; exact without caches), and what
     * the budget and its parent are charged.
     */
    private void assertCharged(long bytes) {
        assertEquals(bytes, pool.metrics().activeBytes(), "the pool's activeBytes");
        if (budget != null) {
            assertEquals(bytes, budget.usedBytes(), "the budget's use");
            assertEquals(bytes, tenant.usedBytes(), "its parent's use");
        }
        assertConsistent();
    }

    private void assertConsistent() {
        for (PoolArena arena : pool.arenas()) {
            assertTrue(arena.checkConsistency(), "arena " + arena.index);
        }
    }

    private static long unit(long byteSize, long byteAlignment) {
        return SegmentPoolProperties.accountedBytes(byteSize, byteAlignment);
    }

    // ---- contents, addresses and charges ----

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void everyPairOfSizes_keepsTheFirstBytes_andChargesTheNewUnit(String through) {
        open(through);
        long[] sizes = {0, 1, 50, 60, 100, 3000, 5000, 16_384, 20_000, 40_000, 60_000, CHUNK, CHUNK + 1, 2L * CHUNK,
                3L * CHUNK};
        for (long from : sizes) {
            for (long to : sizes) {
                Filled old = filled(from);
                MemorySegment result = reallocate(old.segment(), to);
                String what = from + " -> " + to;
                assertEquals(to, result.byteSize(), what);
                old.verifyPrefix(result, Math.min(from, to));
                boolean hugeKept = from > CHUNK && to > CHUNK && to <= from && to >= from / 2;
                if (hugeKept) {
                    assertEquals(old.segment().address(), result.address(), what + ": a huge allocation shrinks in place");
                }
                assertCharged(hugeKept ? from : unit(to, 1));
                free(result);
                assertCharged(0);
                assertThrows(IllegalArgumentException.class, () -> free(result), what + ": freed once");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void withinItsSizeClass_keepsTheAddress(String through) {
        open(through);
        Filled a = filled(50); // class 64
        MemorySegment r = reallocate(a.segment(), 60);
        assertEquals(a.segment().address(), r.address());
        a.verifyPrefix(r, 50);
        r = reallocate(r, 64);
        assertEquals(a.segment().address(), r.address());
        r = reallocate(r, 49);
        assertEquals(a.segment().address(), r.address());
        a.verifyPrefix(r, 49);
        assertCharged(64);
        MemorySegment moved = reallocate(r, 65); // class 80
        assertNotEquals(a.segment().address(), moved.address());
        a.verifyPrefix(moved, 49);
        assertCharged(80);
        free(moved);

        Filled zero = filled(0); // class 16
        MemorySegment sixteen = reallocate(zero.segment(), 16);
        assertEquals(zero.segment().address(), sixteen.address());
        Filled page = filled(3000); // class 3072
        MemorySegment full = reallocate(page.segment(), 3072);
        assertEquals(page.segment().address(), full.address());
        page.verifyPrefix(full, 3000);
        assertCharged(16 + 3072);
        free(sixteen);
        free(full);
        assertCharged(0);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void aRunWhoseFollowingPagesAreFree_growsInPlace(String through) {
        open(through);
        Filled large = filled(40_000); // 10 pages at the start of a fresh chunk
        MemorySegment grown = reallocate(large.segment(), 60_000); // 15 pages
        assertEquals(large.segment().address(), grown.address());
        large.verifyPrefix(grown, 40_000);
        assertCharged(61_440);
        MemorySegment whole = reallocate(grown, CHUNK); // the whole chunk
        assertEquals(large.segment().address(), whole.address());
        assertCharged(CHUNK);

        Filled cacheable = filled(16_384); // 4 pages, a class thread caches may hold
        MemorySegment six = reallocate(cacheable.segment(), 24_000); // class 24 KiB: 6 pages
        assertEquals(cacheable.segment().address(), six.address());
        cacheable.verifyPrefix(six, 16_384);
        MemorySegment ten = reallocate(six, 40_000);
        assertEquals(cacheable.segment().address(), ten.address());
        cacheable.verifyPrefix(ten, 16_384);
        assertCharged(CHUNK + 40_960);
        assertEquals(2, pool.metrics().chunks(), "no chunk was added for a growth in place");
        free(whole);
        free(ten);
        assertCharged(0);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void aRunWhoseFollowingPagesAreUsed_moves(String through) {
        open(through);
        Filled first = filled(20_000); // pages 0-4
        Filled second = filled(20_000); // pages 5-9
        MemorySegment moved = reallocate(first.segment(), 30_000); // 8 pages: does not fit before the second
        assertNotEquals(first.segment().address(), moved.address());
        first.verifyPrefix(moved, 20_000);
        second.verify();
        assertCharged(20_480 + 32_768);
        MemorySegment third = allocate(20_000); // the first's pages are free again
        assertEquals(first.segment().address(), third.address());
        free(moved);
        free(second.segment());
        free(third);
        assertCharged(0);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void shrinking_givesTheTailOfARunBack_movesASmallAllocation_andKeepsAHugeOneWhileItUsesHalf(String through) {
        open(through);
        Filled run = filled(60_000); // 15 pages
        MemorySegment shrunk = reallocate(run.segment(), 20_000); // 5 pages, in place
        assertEquals(run.segment().address(), shrunk.address());
        run.verifyPrefix(shrunk, 20_000);
        assertCharged(20_480);
        MemorySegment after = allocate(40_000); // fits in the pages given back
        assertEquals(1, pool.metrics().chunks());
        free(after);

        Filled small = filled(3000);
        MemorySegment smaller = reallocate(small.segment(), 100);
        assertNotEquals(small.segment().address(), smaller.address());
        small.verifyPrefix(smaller, 100);
        assertCharged(20_480 + 112);

        Filled huge = filled(3L * CHUNK);
        MemorySegment kept = reallocate(huge.segment(), 2L * CHUNK);
        assertEquals(huge.segment().address(), kept.address());
        huge.verifyPrefix(kept, 2L * CHUNK);
        assertCharged(20_480 + 112 + 3L * CHUNK); // still reserves (and is charged) what it did
        assertEquals(3L * CHUNK, pool.metrics().hugeBytes());
        MemorySegment quarter = reallocate(kept, CHUNK + 1); // below half: moves
        assertNotEquals(huge.segment().address(), quarter.address());
        huge.verifyPrefix(quarter, CHUNK + 1);
        assertCharged(20_480 + 112 + CHUNK + 1);
        assertEquals(CHUNK + 1, pool.metrics().hugeBytes());
        MemorySegment small2 = reallocate(quarter, 10); // huge to small
        huge.verifyPrefix(small2, 10);
        assertEquals(0, pool.metrics().hugeBytes());
        free(shrunk);
        free(smaller);
        free(small2);
        assertCharged(0);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void hugeToHuge_grows_andHugeToSmallAndBack(String through) {
        open(through);
        Filled huge = filled(CHUNK + 1000);
        MemorySegment bigger = reallocate(huge.segment(), 3L * CHUNK);
        huge.verifyPrefix(bigger, CHUNK + 1000);
        assertCharged(3L * CHUNK);
        MemorySegment small = reallocate(bigger, 100);
        huge.verifyPrefix(small, 100);
        assertCharged(112);
        MemorySegment again = reallocate(small, 2L * CHUNK);
        huge.verifyPrefix(again, 100);
        assertCharged(2L * CHUNK);
        free(again);
        assertCharged(0);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void sizeZero_givesALiveAllocationToFree(String through) {
        open(through);
        for (long from : new long[] {0, 50, 40_000, CHUNK + 1}) {
            MemorySegment old = allocate(from);
            MemorySegment zero = reallocate(old, 0);
            assertEquals(0, zero.byteSize());
            assertCharged(16);
            MemorySegment back = reallocate(zero, 30); // and it can grow again
            assertEquals(30, back.byteSize());
            MemorySegment zeroAgain = reallocate(back, 0);
            free(zeroAgain);
            assertCharged(0);
            assertThrows(IllegalArgumentException.class, () -> free(zeroAgain));
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void theThreeArgumentForm_honoursTheAlignment(String through) {
        open(through);
        Filled small = filled(50);
        MemorySegment page = reallocate(small.segment(), 100, 4096);
        assertEquals(0, page.address() % 4096);
        small.verifyPrefix(page, 50);
        assertCharged(unit(100, 4096));

        // the second 64-byte element of a subpage is not 128-aligned: the same class, but it must move
        MemorySegment first = allocate(50);
        Filled second = filled(50);
        assertEquals(64, second.segment().address() % 128, "second element of its subpage");
        MemorySegment aligned = reallocate(second.segment(), 60, 128);
        assertEquals(0, aligned.address() % 128);
        assertNotEquals(second.segment().address(), aligned.address());
        second.verifyPrefix(aligned, 50);
        MemorySegment same = reallocate(aligned, 100, 64); // aligned already, and still class 128: stays
        assertEquals(aligned.address(), same.address());

        Filled run = filled(20_000);
        MemorySegment runAligned = reallocate(run.segment(), 30_000, 16_384);
        assertEquals(0, runAligned.address() % 16_384);
        run.verifyPrefix(runAligned, 20_000);

        Filled huge = filled(CHUNK + 1);
        MemorySegment hugeAligned = reallocate(huge.segment(), 2L * CHUNK, CHUNK);
        assertEquals(0, hugeAligned.address() % CHUNK);
        huge.verifyPrefix(hugeAligned, CHUNK + 1);
        MemorySegment hugeMoreAligned = reallocate(hugeAligned, 2L * CHUNK - 1, 1 << 20);
        assertEquals(0, hugeMoreAligned.address() % (1 << 20));
        huge.verifyPrefix(hugeMoreAligned, CHUNK + 1);
        // kept (still charged what it reserves) only if it happened to be aligned to 1 MiB already
        long hugeCharge = hugeMoreAligned.address() == hugeAligned.address() ? 2L * CHUNK : 2L * CHUNK - 1;

        MemorySegment odd = reallocate(allocate(7), 13); // the two-argument form: alignment 1
        assertEquals(13, odd.byteSize());
        assertCharged(unit(100, 4096) + 64 + 128 + unit(30_000, 16_384) + hugeCharge + 16);
        for (MemorySegment s : List.of(page, first, same, runAligned, hugeMoreAligned, odd)) {
            free(s);
        }
        assertCharged(0);
    }

    // ---- refusals leave the old segment as it was ----

    /** Runs a call that must be refused: the pool's metrics and the budgets' use and peak stay as they were. */
    private <T extends Throwable> T assertRefusedAndUnchanged(Class<T> type, Executable call, List<Filled> live,
                                                             String... messageParts) {
        List<Object> before = state();
        T thrown = assertThrows(type, call);
        for (String part : messageParts) {
            assertTrue(thrown.getMessage() != null && thrown.getMessage().contains(part),
                    "message '" + thrown.getMessage() + "' should contain '" + part + "'");
        }
        assertEquals(before, state(), "a refused reallocate changed the pool or a budget");
        live.forEach(Filled::verify);
        assertConsistent();
        return thrown;
    }

    private List<Object> state() {
        List<Object> state = new ArrayList<>();
        state.add(pool.metrics());
        for (MemoryBudget b : pool.budgets().stream().sorted(java.util.Comparator.comparing(MemoryBudget::path))
                .toList()) {
            state.add(b.path() + ": used " + b.usedBytes() + ", peak " + b.peakBytes());
        }
        return state;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void badSizeOrAlignment_orASegmentNotTheCallers_isRefused_andTheOldSegmentStaysValid(String through) {
        open(through);
        List<Filled> live = List.of(filled(0), filled(50), filled(20_000), filled(40_000), filled(CHUNK + 1));
        for (Filled old : live) {
            MemorySegment s = old.segment();
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(s, -1), live, "byteSize", "-1");
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(s, Long.MIN_VALUE, 8), live,
                    "byteSize");
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(s, 10, 3), live, "byteAlignment");
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(s, 10, 0), live, "byteAlignment");
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(s, CHUNK * 2L, -4096), live,
                    "byteAlignment");
            if (s.byteSize() > 16) {
                assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(s.asSlice(16), 10), live,
                        "points inside");
            }
        }
        assertRefusedAndUnchanged(NullPointerException.class, () -> reallocate(null, 10), live, "segment");
        assertRefusedAndUnchanged(IllegalArgumentException.class,
                () -> reallocate(MemorySegment.ofArray(new byte[16]), 10), live, "heap segment");
        try (Arena jdk = Arena.ofConfined(); SegmentPool other = poolBuilder().name("other").build()) {
            for (MemorySegment foreign : List.of(jdk.allocate(64), other.allocate(50), other.allocate(CHUNK + 1))) {
                assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(foreign, 100), live,
                        "not allocated by pool 'realloc'");
            }
        }
        for (long size : new long[] {50, 40_000, CHUNK + 1}) {
            MemorySegment freed = allocate(size);
            free(freed);
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(freed, 100), live);
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(freed, size), live);
        }
        try (Arena poolArena = pool.newArena()) {
            List<MemorySegment> arenas = new ArrayList<>(List.of(poolArena.allocate(64), poolArena.allocate(40_000),
                    poolArena.allocate(CHUNK + 1)));
            Arena budgetArena = budget == null ? null : budget.newArena();
            if (budgetArena != null) {
                arenas.addAll(List.of(budgetArena.allocate(64), budgetArena.allocate(40_000),
                        budgetArena.allocate(CHUNK + 1)));
            }
            for (MemorySegment s : arenas) {
                assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(s, 128), live, "Arena");
            }
            if (budgetArena != null) {
                budgetArena.close();
            }
        }
        // a budget's segment through the pool, another budget's through a budget, the pool's through a budget
        MemoryBudget sibling = tenant.newBudget("sibling", 1 << 20);
        List<MemorySegment> theirs = List.of(sibling.allocate(50), sibling.allocate(40_000), sibling.allocate(CHUNK + 1));
        for (MemorySegment s : theirs) {
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(s, 100), live,
                    "budget 'tenant/sibling'");
        }
        theirs.forEach(sibling::free);
        if (budget != null) {
            List<MemorySegment> pools = List.of(pool.allocate(50), pool.allocate(40_000), pool.allocate(CHUNK + 1));
            for (MemorySegment s : pools) {
                assertRefusedAndUnchanged(IllegalArgumentException.class, () -> reallocate(s, 100), live,
                        "allocated by pool 'realloc' itself");
            }
            pools.forEach(pool::free);
        }
        // every old segment is still live, and still the caller's
        long charged = 0;
        for (Filled old : live) {
            charged += unit(old.segment().byteSize(), 1);
        }
        assertCharged(charged);
        for (Filled old : live) {
            MemorySegment grown = reallocate(old.segment(), old.segment().byteSize() + 1);
            old.verifyPrefix(grown, old.segment().byteSize());
            free(grown);
        }
        assertCharged(0);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void atThePoolsLimit_aMoveIsRefused_andTheOldSegmentStaysValid(String through) {
        // maxCachedSize 0: every run is cut to whole pages and they share the pool's one chunk
        open(through, poolBuilder().maxCachedSize(0).maxMemory(CHUNK));
        Filled first = filled(40_000); // pages 0-9
        Filled second = filled(24_000); // pages 10-15: the chunk is full
        List<Filled> live = List.of(first, second);
        assertCharged(40_960 + 24_576);
        MemoryLimitExceededException grow = assertRefusedAndUnchanged(MemoryLimitExceededException.class,
                () -> reallocate(first.segment(), 50_000), live, "pool 'realloc'", "maxMemory");
        assertEquals(CHUNK, grow.limitBytes());
        assertRefusedAndUnchanged(MemoryLimitExceededException.class, () -> reallocate(second.segment(), CHUNK + 1),
                live, "maxMemory");
        assertRefusedAndUnchanged(MemoryLimitExceededException.class, () -> reallocate(first.segment(), 100), live,
                "maxMemory"); // a shrink that moves needs a subpage: no page is free
        assertEquals(40_960, second.segment().address() % CHUNK, "the second starts at page 10");
        assertRefusedAndUnchanged(MemoryLimitExceededException.class,
                () -> reallocate(second.segment(), 24_000, 32_768), live, "maxMemory"); // not aligned: must move
        // both are still live and the caller's
        MemorySegment grown = reallocate(second.segment(), 24_576); // the same pages: in place
        assertEquals(second.segment().address(), grown.address());
        second.verifyPrefix(grown, 24_000);
        free(first.segment());
        MemorySegment moved = reallocate(grown, 30_000); // no page after it: moves into the pages the first gave back
        assertEquals(first.segment().address(), moved.address());
        second.verifyPrefix(moved, 24_000);
        free(moved);
        assertCharged(0);
        if (budget != null) {
            assertEquals(40_960 + 24_576, budget.peakBytes(), "refused moves did not count in the peak");
            assertEquals(40_960 + 24_576, tenant.peakBytes());
        }
    }

    @Test
    void atTheBudgetsLimit_growthIsRefusedInPlaceAndByMove_andTheOldSegmentStaysValid() {
        open("budget");
        MemoryBudget small = tenant.newBudget("small", 50_000);
        Filled run = new Filled(small.allocate(40_000), nextId++); // 40960, with free pages after it
        Patterns.fill(run.segment(), run.id());
        Filled element = new Filled(small.allocate(3000), nextId++); // 3072
        Patterns.fill(element.segment(), element.id());
        List<Filled> live = List.of(run, element);
        long activeBefore = pool.metrics().activeBytes();
        MemoryLimitExceededException inPlace = assertRefusedAndUnchanged(MemoryLimitExceededException.class,
                () -> small.reallocate(run.segment(), 60_000), live, "budget 'tenant/small'", "limit is 50000 bytes",
                "holds 44032 bytes", "20480 more bytes");
        assertEquals(50_000, inPlace.limitBytes());
        assertEquals(44_032, inPlace.reservedBytes());
        assertEquals(20_480, inPlace.requestedBytes());
        MemoryLimitExceededException moved = assertRefusedAndUnchanged(MemoryLimitExceededException.class,
                () -> small.reallocate(element.segment(), 10_000), live, "budget 'tenant/small'");
        assertEquals(10_240 - 3072, moved.requestedBytes());
        assertEquals(activeBefore, pool.metrics().activeBytes());
        // a limit higher up binds too
        MemoryBudget capped = pool.newBudget("capped", 45_000);
        MemoryBudget child = capped.newBudget("child", 1 << 20);
        Filled mine = new Filled(child.allocate(40_000), nextId++);
        Patterns.fill(mine.segment(), mine.id());
        MemoryLimitExceededException above = assertRefusedAndUnchanged(MemoryLimitExceededException.class,
                () -> child.reallocate(mine.segment(), 45_000), List.of(run, element, mine), "budget 'capped'");
        assertEquals(45_000, above.limitBytes());
        // within the limits it grows (up to the limit, not beyond)
        MemorySegment grown = small.reallocate(run.segment(), 45_000); // 11 pages, 45056: 48128 of 50000
        run.verifyPrefix(grown, 40_000);
        assertEquals(45_056 + 3072, small.usedBytes());
        small.free(grown);
        small.free(element.segment());
        child.free(mine.segment());
        assertEquals(0, small.usedBytes());
        assertEquals(0, capped.usedBytes());
        assertEquals(45_056 + 3072, small.peakBytes());
        assertEquals(40_960, capped.peakBytes());
    }

    @Test
    void aMove_chargesTheBudgetTheNewUnitsReservedSize() {
        open("budget");
        MemorySegment s = budget.allocate(50);
        assertCharged(64);
        s = budget.reallocate(s, 5000);
        assertCharged(5120);
        s = budget.reallocate(s, 40_000);
        assertCharged(40_960);
        s = budget.reallocate(s, CHUNK + 7);
        assertCharged(CHUNK + 7);
        s = budget.reallocate(s, 1);
        assertCharged(16);
        assertEquals(CHUNK + 7, budget.peakBytes());
        budget.free(s);
        assertCharged(0);
    }

    // ---- reallocate racing free ----

    /** What each side of one round did: the reallocate's result (or what it threw), the free's error. */
    private static final class Round {
        MemorySegment old;
        long newByteSize;
        MemorySegment result;
        Throwable reallocateFailed;
        Throwable freeFailed;
        final List<MemorySegment> reallocatorProbes = new ArrayList<>();
        final List<MemorySegment> freerProbes = new ArrayList<>();
    }

    /** Pattern ids of the probes each racing thread allocates after its call. */
    private static final long REALLOCATOR_PROBES = 1_000;
    private static final long FREER_PROBES = 2_000;

    /**
     * Allocates two segments of each size, as the calling thread would next be given them (its cache
     * first), and fills them with the patterns {@code firstId, firstId + 1, ...}.
     */
    private List<MemorySegment> probes(long firstId, long... sizes) {
        List<MemorySegment> probes = new ArrayList<>();
        for (long size : sizes) {
            for (int i = 0; i < 2; i++) {
                MemorySegment probe = allocate(size);
                Patterns.fill(probe, firstId + probes.size());
                probes.add(probe);
            }
        }
        return probes;
    }

    /**
     * Runs {@code rounds} times: wait for the start, {@code race}, wait for the other racer, then
     * {@code after} (so that it cannot meet the other's call: its allocations may reuse the raced
     * segment's address), then wait for the end, whatever happened.
     */
    private static Thread racer(String name, int rounds, CyclicBarrier start, CyclicBarrier between,
                                CyclicBarrier done, Runnable race, Runnable after, Runnable atEnd,
                                AtomicReference<Throwable> failure) {
        return Thread.ofPlatform().name(name).start(() -> {
            try {
                for (int i = 0; i < rounds; i++) {
                    start.await();
                    try {
                        race.run();
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                    between.await();
                    try {
                        after.run();
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                    done.await();
                }
                atEnd.run();
            } catch (Exception e) { // a barrier broken by the test thread's failure
                failure.compareAndSet(null, e);
            }
        });
    }

    /**
     * Two threads, many rounds: one reallocates a segment while the other frees it. When the two
     * overlap, exactly one takes the allocation and the other gets {@link IllegalArgumentException}; a
     * free that runs after an in-place reallocate finished frees the result (the same address), so
     * both succeed only with the same address. After each round nothing may be handed out twice: both
     * threads then allocate probes of the sizes involved (from their own caches first), and the probes
     * and the result are checked together for overlap and intact patterns. At the end the arenas are
     * consistent, and the pool holds (and the budget is charged) nothing.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"pool", "budget"})
    void reallocateRacingFree_oneOfThemTakesTheAllocation_andNothingIsHandedOutTwice(String through) throws Exception {
        open(through, SegmentPool.builder().name("realloc-race").pageSize(PAGE).chunkSize(CHUNK).arenas(2)
                .smallCacheSize(16).normalCacheSize(4).decay(Duration.ofDays(1)));
        long[][] cases = {
            {50, 200},        // small, moves to another class
            {50, 60},         // small, stays in its class
            {20_000, 30_000}, // run: in place when the pages after it are free, else moves
            {40_000, 20_000}, // run shrinks in place
            {CHUNK + 1, 2L * CHUNK}, // huge, moves
            {2L * CHUNK, CHUNK + 1}, // huge, kept
        };
        int rounds = 600;
        Round round = new Round();
        CyclicBarrier start = new CyclicBarrier(3);
        CyclicBarrier between = new CyclicBarrier(2);
        CyclicBarrier done = new CyclicBarrier(3);
        AtomicReference<Throwable> failure = new AtomicReference<>();
        Thread reallocator = racer("reallocator", rounds, start, between, done, () -> {
            try {
                round.result = reallocate(round.old, round.newByteSize);
            } catch (IllegalArgumentException e) {
                round.reallocateFailed = e;
            }
        }, () -> round.reallocatorProbes.addAll(probes(REALLOCATOR_PROBES, round.old.byteSize(), round.newByteSize)),
                pool::trimCurrentThreadCache, failure);
        Thread freer = racer("freer", rounds, start, between, done, () -> {
            try {
                free(round.old);
            } catch (IllegalArgumentException e) {
                round.freeFailed = e;
            }
        }, () -> round.freerProbes.addAll(probes(FREER_PROBES, round.old.byteSize(), round.newByteSize)),
                pool::trimCurrentThreadCache, failure);
        int[] outcomes = new int[3]; // reallocate took it, free took it, free freed the in-place result
        try {
            for (int i = 0; i < rounds; i++) {
                long[] c = cases[i % cases.length];
                Filled old = filled(c[0]);
                round.old = old.segment();
                round.newByteSize = c[1];
                round.result = null;
                round.reallocateFailed = null;
                round.freeFailed = null;
                round.reallocatorProbes.clear();
                round.freerProbes.clear();
                start.await(); // (the barriers order these writes before the racers' reads, and theirs before ours)
                done.await();
                assertNull(failure.get(), () -> "a racer failed: " + failure.get());
                Throwable r = round.reallocateFailed;
                Throwable f = round.freeFailed;
                String what = "round " + i + " (" + c[0] + " -> " + c[1] + ")";
                assertTrue(r == null || f == null, what + ": both were refused");
                if (r == null && f == null) {
                    assertEquals(old.segment().address(), round.result.address(),
                            what + ": both succeeded, so the free must have freed an in-place result");
                    outcomes[2]++;
                } else if (r == null) {
                    old.verifyPrefix(round.result, Math.min(c[0], c[1]));
                    outcomes[0]++;
                } else {
                    outcomes[1]++;
                }
                List<MemorySegment> held = new ArrayList<>(round.reallocatorProbes);
                held.addAll(round.freerProbes);
                if (r == null && f != null) {
                    held.add(round.result);
                }
                AllocationTest.assertNoOverlap(held);
                for (int p = 0; p < round.reallocatorProbes.size(); p++) {
                    Patterns.verify(round.reallocatorProbes.get(p), REALLOCATOR_PROBES + p);
                }
                for (int p = 0; p < round.freerProbes.size(); p++) {
                    Patterns.verify(round.freerProbes.get(p), FREER_PROBES + p);
                }
                if (r == null && f != null) {
                    old.verifyPrefix(round.result, Math.min(c[0], c[1]));
                    free(round.result);
                }
                round.reallocatorProbes.forEach(this::free);
                round.freerProbes.forEach(this::free);
            }
        } finally {
            start.reset(); // lets the racers go if this thread failed
            between.reset();
            done.reset();
            reallocator.join();
            freer.join();
        }
        assertNull(failure.get(), () -> "a racer failed: " + failure.get());
        assertEquals(rounds, outcomes[0] + outcomes[1] + outcomes[2]);
        pool.trimCurrentThreadCache();
        assertConsistent();
        PoolMetrics m = pool.metrics();
        assertEquals(0, m.activeBytes(), m.toString());
        assertEquals(0, m.cachedBytes(), "every thread gave its cache back");
        assertEquals(0, m.hugeBytes());
        if (budget != null) {
            assertEquals(0, budget.usedBytes());
            assertEquals(0, tenant.usedBytes());
        }
    }
}
