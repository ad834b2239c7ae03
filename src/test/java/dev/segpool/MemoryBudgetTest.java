package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@link MemoryBudget}'s contract, method by method. Every refused call throws the documented exception
 * with a message that says what was wrong, and leaves the pool and every budget exactly as they were:
 * the pool's metrics, each budget's used and peak bytes, the contents of every live allocation and the
 * arenas' bookkeeping. Also: limits (the smaller of a child's and its parent's binds, and the exception
 * names the budget that refused), close with something left (refused, the budget stays usable), every
 * method after close, the pool's close closing its budgets, name and limit validation, pooled arenas
 * charged per 4 KiB block, and charges at the size the pool reserves (small class, run pages, huge size).
 */
class MemoryBudgetTest {
    private static final int PAGE = 4096;
    private static final int CHUNK = 65536;

    private SegmentPool pool;
    private MemoryBudget tenant;
    private MemoryBudget query;
    private MemoryBudget sibling;
    /** Budgets whose used and peak bytes a refused call must leave alone. */
    private final List<MemoryBudget> watched = new ArrayList<>();
    /** Live allocations of every kind, filled with their patterns; the pattern id is the position. */
    private final List<MemorySegment> live = new ArrayList<>();
    /** Positions in {@link #live} that a test has freed itself: no longer checked. */
    private final java.util.Set<Integer> released = new java.util.HashSet<>();

    private static SegmentPool.Builder smallPool(String name) {
        // no decay during a test: metrics compared before and after a call must not move on their own
        return SegmentPool.builder().name(name).pageSize(PAGE).chunkSize(CHUNK).arenas(1).decay(Duration.ofDays(1));
    }

    @BeforeEach
    void createPoolAndBudgets() {
        pool = smallPool("budgets").build();
        tenant = pool.newBudget("tenant", 1 << 20);
        query = tenant.newBudget("query", 512 << 10);
        sibling = tenant.newBudget("sibling", 512 << 10);
        watched.addAll(List.of(tenant, query, sibling));
        // 0: size 0, 1: small, 2: small, 3: cacheable run, 4: run above the cached size, 5: huge
        for (long size : new long[] {0, 50, 3000, 20_000, 40_000, CHUNK + 1}) {
            keep(query.allocate(size, 16));
        }
    }

    @AfterEach
    void closePool() {
        if (!pool.isClosed()) {
            pool.close();
        }
    }

    private int keep(MemorySegment segment) {
        Patterns.fill(segment, live.size());
        live.add(segment);
        return live.size() - 1;
    }

    /** What a refused call must not change: the pool's metrics and each watched budget's use and peak. */
    private List<Object> state() {
        List<Object> state = new ArrayList<>();
        state.add(pool.metrics());
        for (MemoryBudget b : watched) {
            state.add(b.path() + ": used " + b.usedBytes() + ", peak " + b.peakBytes());
        }
        return state;
    }

    /** Runs a call that must be refused and checks that nothing changed. */
    private <T extends Throwable> T assertRefusedAndUnchanged(Class<T> type, Executable call, String... messageParts) {
        List<Object> before = state();
        T thrown = assertThrows(type, call);
        assertMessage(thrown, messageParts);
        assertEquals(before, state(), "a refused call changed the pool or a budget");
        for (int i = 0; i < live.size(); i++) {
            if (!released.contains(i)) {
                Patterns.verify(live.get(i), i);
            }
        }
        assertTrue(pool.arenas()[0].checkConsistency());
        return thrown;
    }

    private static void assertMessage(Throwable thrown, String... parts) {
        for (String part : parts) {
            assertTrue(thrown.getMessage() != null && thrown.getMessage().contains(part),
                    "message '" + thrown.getMessage() + "' should contain '" + part + "'");
        }
    }

    private MemorySegment small() {
        return live.get(1);
    }

    private MemorySegment run() {
        return live.get(4);
    }

    private MemorySegment huge() {
        return live.get(5);
    }

    // ---- allocate: bad arguments ----

    @ParameterizedTest(name = "byteSize {0}")
    @ValueSource(longs = {-1, -16, -65537, Long.MIN_VALUE})
    void allocate_negativeSize_throwsNamingTheSize_andChangesNothing(long byteSize) {
        for (MemoryBudget b : List.of(tenant, query)) {
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> b.allocate(byteSize, 8),
                    "byteSize", "was " + byteSize);
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> b.allocate(byteSize),
                    "byteSize", "was " + byteSize);
        }
    }

    @ParameterizedTest(name = "byteAlignment {0}")
    @ValueSource(longs = {0, 3, -8, 6, 24, 65535, Long.MIN_VALUE, -1})
    void allocate_alignmentNotAPowerOfTwo_throwsNamingTheAlignment_andChangesNothing(long byteAlignment) {
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.allocate(64, byteAlignment),
                "byteAlignment", "power of two", "was " + byteAlignment);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.allocate(40_000, byteAlignment),
                "byteAlignment", "was " + byteAlignment);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.allocate(CHUNK * 2L, byteAlignment),
                "byteAlignment", "was " + byteAlignment);
    }

    // ---- reallocate: bad arguments (the old segment stays as it was) ----

    @Test
    void reallocate_negativeSizeOrBadAlignment_throws_andLeavesTheOldSegmentLive() {
        for (int i : new int[] {1, 3, 4, 5}) {
            MemorySegment old = live.get(i);
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.reallocate(old, -1), "byteSize", "-1");
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.reallocate(old, 100, 3),
                    "byteAlignment", "was 3");
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.reallocate(old, 100, 0),
                    "byteAlignment", "was 0");
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.reallocate(old, CHUNK * 3L, -64),
                    "byteAlignment");
        }
        // still query's to free
        released.add(3);
        query.free(live.get(3));
    }

    // ---- free and reallocate: segments this budget did not allocate ----

    @Test
    void freeAndReallocate_null_throwNullPointerException_andChangeNothing() {
        assertRefusedAndUnchanged(NullPointerException.class, () -> query.free(null), "segment");
        assertRefusedAndUnchanged(NullPointerException.class, () -> query.reallocate(null, 16), "segment");
        assertRefusedAndUnchanged(NullPointerException.class, () -> query.reallocate(null, 16, 8), "segment");
    }

    @Test
    void freeAndReallocate_anotherBudgetsSegment_throwNamingBothBudgets_andChangeNothing() {
        for (MemorySegment theirs : List.of(small(), live.get(3), run(), huge())) {
            for (MemoryBudget wrong : List.of(sibling, tenant)) { // a sibling, and the owner's own parent
                assertRefusedAndUnchanged(IllegalArgumentException.class, () -> wrong.free(theirs),
                        "allocated by budget 'tenant/query'", "not by budget '" + wrong.path() + "'");
                assertRefusedAndUnchanged(IllegalArgumentException.class, () -> wrong.reallocate(theirs, 100),
                        "allocated by budget 'tenant/query'");
            }
        }
        // and the other way round: a child cannot free its parent's segment
        int parents = keep(tenant.allocate(50));
        MemorySegment parentsSegment = live.get(parents);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.free(parentsSegment),
                "allocated by budget 'tenant'", "not by budget 'tenant/query'");
        released.add(parents);
        tenant.free(parentsSegment);
    }

    @Test
    void freeAndReallocate_thePoolsOwnSegment_throwSayingFreeItThroughThePool() {
        List<MemorySegment> pools = List.of(pool.allocate(50), pool.allocate(20_000), pool.allocate(40_000),
                pool.allocate(CHUNK + 1));
        for (MemorySegment s : pools) {
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.free(s),
                    "allocated by pool 'budgets' itself", "not by budget 'tenant/query'", "free it through the pool");
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.reallocate(s, 60),
                    "allocated by pool 'budgets' itself");
        }
        pools.forEach(pool::free);
    }

    @Test
    void freeAndReallocate_anArenasSegment_throwSayingItBelongsToAnArena() {
        try (Arena poolArena = pool.newArena(); Arena budgetArena = query.newArena()) {
            for (Arena arena : List.of(poolArena, budgetArena)) {
                MemorySegment first = arena.allocate(64);   // the start of the arena's first block
                MemorySegment inner = arena.allocate(64);   // inside it
                MemorySegment own = arena.allocate(40_000); // a unit of its own
                MemorySegment huge = arena.allocate(CHUNK + 1);
                for (MemorySegment s : List.of(first, own, huge)) {
                    assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.free(s), "Arena");
                    assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.reallocate(s, 100), "Arena");
                    assertRefusedAndUnchanged(IllegalArgumentException.class, () -> tenant.free(s), "Arena");
                }
                assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.free(inner), "0x");
            }
        }
    }

    @Test
    void freeAndReallocate_heapSegment_throwSayingHeap() {
        MemorySegment heap = MemorySegment.ofArray(new byte[64]);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.free(heap), "heap segment");
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.reallocate(heap, 128), "heap segment");
    }

    @Test
    void freeAndReallocate_jdkArenaOrOtherPoolsSegment_throwSayingNotFromThisPool() {
        try (Arena jdk = Arena.ofConfined(); SegmentPool other = smallPool("other").build()) {
            MemoryBudget theirBudget = other.newBudget("tenant", 1 << 20);
            List<MemorySegment> foreign = List.of(jdk.allocate(64), jdk.allocate(CHUNK, CHUNK),
                    other.allocate(50), theirBudget.allocate(50), theirBudget.allocate(CHUNK + 1));
            for (MemorySegment s : foreign) {
                assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.free(s),
                        "not allocated by pool 'budgets'");
                assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.reallocate(s, 10),
                        "not allocated by pool 'budgets'");
            }
            theirBudget.free(foreign.get(3));
            theirBudget.free(foreign.get(4));
            assertEquals(0, theirBudget.usedBytes());
        }
    }

    @Test
    void freeAndReallocate_alreadyFreed_throw_andChangeNothing() {
        for (int i : new int[] {0, 1, 3, 4, 5}) {
            MemorySegment s = live.get(i);
            released.add(i);
            query.free(s);
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.free(s), Errors.hex(s.address()));
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.reallocate(s, 64));
        }
        assertEquals(3072, query.usedBytes(), "only the 3000-byte allocation is left");
    }

    @Test
    void freeAndReallocate_interiorSlice_throwSayingItPointsInside() {
        for (MemorySegment s : List.of(small(), live.get(2), run(), huge())) {
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.free(s.asSlice(1)), "points inside");
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.reallocate(s.asSlice(16), 8),
                    "points inside");
        }
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> query.free(run().asSlice(PAGE)), "points inside");
    }

    @Test
    void poolFreeAndReallocate_ofABudgetsSegment_throwSayingFreeItThroughThatBudget() {
        for (MemorySegment s : List.of(live.get(0), small(), live.get(3), run(), huge())) {
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.free(s),
                    "belongs to budget 'tenant/query'", "free it through that budget");
            assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.reallocate(s, 100),
                    "belongs to budget 'tenant/query'");
        }
    }

    // ---- limits ----

    @Test
    void allocate_beyondTheLimit_throwsNamingPathLimitUseAndRequest_andTheBudgetStaysUsable() {
        MemoryBudget small = tenant.newBudget("small", 1000);
        watched.add(small);
        MemorySegment first = small.allocate(50); // charged 64
        MemoryLimitExceededException e = assertRefusedAndUnchanged(MemoryLimitExceededException.class,
                () -> small.allocate(1000), // charged 1024
                "budget 'tenant/small'", "limit is 1000 bytes", "holds 64 bytes", "1024 more bytes");
        assertEquals(1000, e.limitBytes());
        assertEquals(64, e.reservedBytes());
        assertEquals(1024, e.requestedBytes());
        assertRefusedAndUnchanged(MemoryLimitExceededException.class, () -> small.allocate(CHUNK + 1),
                "budget 'tenant/small'");
        MemorySegment second = small.allocate(500); // 512: 576 of 1000
        assertEquals(576, small.usedBytes());
        assertEquals(576, small.peakBytes());
        small.free(first);
        small.free(second);
        MemorySegment all = small.allocate(896); // exactly the class that fits
        assertEquals(896, small.usedBytes());
        small.free(all);
        assertEquals(0, small.usedBytes());
        assertEquals(896, small.peakBytes());
        small.close();
    }

    @Test
    void allocate_refusedByThePoolsLimit_throws_andChargesNothing_notEvenThePeak() {
        try (SegmentPool limited = smallPool("limited").maxMemory(CHUNK).build();
                MemoryBudget b = limited.newBudget("b", 1 << 20)) {
            MemorySegment all = b.allocate(CHUNK); // the one chunk the pool may reserve
            PoolMetrics before = limited.metrics();
            for (long size : new long[] {16, 40_000, CHUNK + 1}) {
                MemoryLimitExceededException e = assertThrows(MemoryLimitExceededException.class, () -> b.allocate(size));
                assertMessage(e, "pool 'limited'", "maxMemory");
                assertEquals(CHUNK, b.usedBytes());
                assertEquals(CHUNK, b.peakBytes(), "a refused allocation does not count in the peak");
                assertEquals(before.activeBytes(), limited.metrics().activeBytes());
                assertEquals(before.reservedBytes(), limited.metrics().reservedBytes());
            }
            assertThrows(MemoryLimitExceededException.class, b::newArena); // its first block needs a new chunk
            assertEquals(CHUNK, b.peakBytes());
            b.free(all);
            assertEquals(0, b.usedBytes());
        }
    }

    @Test
    void allocate_thatTheOperatingSystemCannotServe_throwsOutOfMemoryError_andChargesNothing() {
        MemoryBudget unlimited = tenant.newBudget("unlimited", Long.MAX_VALUE);
        watched.add(unlimited);
        MemoryBudget top = pool.newBudget("top", Long.MAX_VALUE);
        watched.add(top);
        assertRefusedAndUnchanged(OutOfMemoryError.class, () -> top.allocate(Long.MAX_VALUE / 4));
        assertEquals(0, top.peakBytes());
        assertRefusedAndUnchanged(MemoryLimitExceededException.class, () -> unlimited.allocate(Long.MAX_VALUE / 4),
                "budget 'tenant'");
    }

    @Test
    void limit_zero_refusesEvenASizeZeroAllocation() {
        MemoryBudget none = pool.newBudget("none", 0);
        watched.add(none);
        MemoryLimitExceededException e = assertRefusedAndUnchanged(MemoryLimitExceededException.class,
                () -> none.allocate(0), "budget 'none'", "limit is 0 bytes");
        assertEquals(16, e.requestedBytes());
        assertRefusedAndUnchanged(MemoryLimitExceededException.class, none::newArena, "budget 'none'");
        none.close(); // no arena was left counted
    }

    @Test
    void childLimitAboveItsParents_theParentsLimitBinds_andTheExceptionNamesTheParent() {
        MemoryBudget parent = pool.newBudget("parent", 4096);
        MemoryBudget child = parent.newBudget("child", 1 << 20);
        watched.addAll(List.of(parent, child));
        MemoryLimitExceededException e = assertRefusedAndUnchanged(MemoryLimitExceededException.class,
                () -> child.allocate(5000), "budget 'parent'", "limit is 4096 bytes", "holds 0 bytes", "5120");
        assertEquals(4096, e.limitBytes());
        assertEquals(0, e.reservedBytes());
        assertEquals(5120, e.requestedBytes());
        MemorySegment fits = child.allocate(4000); // class 4096
        assertEquals(4096, child.usedBytes());
        assertEquals(4096, parent.usedBytes());
        e = assertRefusedAndUnchanged(MemoryLimitExceededException.class, () -> child.allocate(1), "budget 'parent'");
        assertEquals(4096, e.reservedBytes());
        assertEquals(16, e.requestedBytes());
        assertRefusedAndUnchanged(MemoryLimitExceededException.class, () -> parent.allocate(1), "budget 'parent'");
        child.free(fits);
        assertEquals(0, parent.usedBytes());
        assertEquals(4096, child.peakBytes());
        assertEquals(4096, parent.peakBytes());
        child.close();
        parent.close();
    }

    @Test
    void childLimitBelowItsParents_theChildsLimitBinds_andTheExceptionNamesTheChildsPath() {
        MemoryBudget grandChild = query.newBudget("rows", 2048);
        watched.add(grandChild);
        MemoryLimitExceededException e = assertRefusedAndUnchanged(MemoryLimitExceededException.class,
                () -> grandChild.allocate(3000), "budget 'tenant/query/rows'", "limit is 2048 bytes");
        assertEquals(2048, e.limitBytes());
        assertEquals(3072, e.requestedBytes());
        MemorySegment s = grandChild.allocate(2000); // 2048
        assertEquals(2048, grandChild.usedBytes());
        assertEquals(query.usedBytes(), tenant.usedBytes() - sibling.usedBytes());
        grandChild.free(s);
        grandChild.close();
    }

    @Test
    void aRefusalHigherUp_leavesTheLowerBudgetsUseAndPeakAsTheyWere() {
        MemoryBudget top = pool.newBudget("top", 10_000);
        MemoryBudget middle = top.newBudget("middle", 1 << 20);
        MemoryBudget bottom = middle.newBudget("bottom", 1 << 20);
        watched.addAll(List.of(top, middle, bottom));
        MemorySegment held = top.allocate(8000); // 8192 of 10,000
        assertRefusedAndUnchanged(MemoryLimitExceededException.class, () -> bottom.allocate(3000), "budget 'top'");
        assertEquals(0, bottom.peakBytes());
        assertEquals(0, middle.peakBytes());
        top.free(held);
        MemorySegment now = bottom.allocate(3000);
        assertEquals(3072, bottom.usedBytes());
        assertEquals(3072, middle.usedBytes());
        assertEquals(3072, top.usedBytes());
        bottom.free(now);
    }

    // ---- close ----

    @Test
    void close_withAllocationsLeft_throwsNamingThem_andTheBudgetStaysUsable() {
        MemoryBudget b = pool.newBudget("closing", 1 << 20);
        watched.add(b);
        MemorySegment s1 = b.allocate(50);
        MemorySegment s2 = b.allocate(40_000);
        IllegalStateException e = assertRefusedAndUnchanged(IllegalStateException.class, b::close,
                "budget 'closing' cannot close", "holds 41024 bytes", "2 allocations (41024 bytes)",
                "0 open arenas", "0 open child budgets", "stays open");
        assertTrue(e.getMessage().contains("leakDetection"), e.getMessage());
        MemorySegment s3 = b.allocate(16);
        assertEquals(41024 + 16, b.usedBytes());
        b.free(s3);
        b.free(s1);
        assertRefusedAndUnchanged(IllegalStateException.class, b::close, "holds 40960 bytes", "1 allocations (40960 bytes)");
        b.free(s2);
        watched.remove(b);
        b.close();
        assertThrows(IllegalStateException.class, b::usedBytes);
    }

    @Test
    void close_withAHugeAllocationOfSizeZeroLeft_throws_becauseItCountsOneByte() {
        MemoryBudget b = pool.newBudget("empty-huge", 1 << 20);
        watched.add(b);
        long activeBefore = pool.metrics().activeBytes();
        MemorySegment empty = b.allocate(0, 2L * CHUNK); // an alignment above the chunk size: huge
        assertEquals(0, empty.byteSize());
        assertEquals(0, empty.address() % (2L * CHUNK));
        assertEquals(1, b.usedBytes(), "a live allocation of size 0 counts a byte");
        assertEquals(activeBefore + 1, pool.metrics().activeBytes());
        assertRefusedAndUnchanged(IllegalStateException.class, b::close, "budget 'empty-huge' cannot close",
                "holds 1 bytes", "1 allocations (1 bytes)");
        b.free(empty);
        assertEquals(0, b.usedBytes());
        assertEquals(activeBefore, pool.metrics().activeBytes());
        watched.remove(b);
        b.close();
    }

    @Test
    void close_withAnArenaOpen_throwsNamingIt_andSucceedsOnceItIsClosed() {
        MemoryBudget b = pool.newBudget("with-arena", 1 << 20);
        watched.add(b);
        Arena arena = b.newArena();
        arena.allocate(100);
        assertRefusedAndUnchanged(IllegalStateException.class, b::close, "budget 'with-arena' cannot close",
                "holds 4096 bytes", "0 allocations (0 bytes)", "1 open arenas");
        arena.close();
        assertEquals(0, b.usedBytes());
        watched.remove(b);
        b.close();
    }

    @Test
    void close_withAChildOpen_throwsNamingTheChild_andSucceedsOnceTheChildIsClosed() {
        MemoryBudget b = pool.newBudget("parent", 1 << 20);
        MemoryBudget child = b.newBudget("child", 1000);
        watched.addAll(List.of(b, child));
        MemorySegment s = child.allocate(50);
        assertRefusedAndUnchanged(IllegalStateException.class, b::close, "budget 'parent' cannot close",
                "holds 64 bytes", "0 allocations (0 bytes)", "1 open child budgets", "'parent/child' 64 bytes");
        assertRefusedAndUnchanged(IllegalStateException.class, child::close, "budget 'parent/child' cannot close",
                "1 allocations (64 bytes)");
        child.free(s);
        watched.remove(child);
        child.close();
        assertRefusedAndUnchanged(IllegalStateException.class, child::close, "budget 'parent/child' is closed");
        watched.remove(b);
        b.close();
    }

    @Test
    void everyMethodButNameAndToString_afterClose_throwsSayingTheBudgetIsClosed() {
        MemoryBudget b = tenant.newBudget("done", 1000);
        MemorySegment freed = b.allocate(50);
        b.free(freed);
        MemorySegment pools = pool.allocate(50);
        b.close();
        List<Executable> calls = List.of(
                () -> b.allocate(16),
                () -> b.allocate(16, 8),
                () -> b.allocate(0),
                () -> b.allocate(5000),      // above its limit: still "closed", not a limit
                () -> b.allocate(CHUNK + 1),
                () -> b.free(freed),
                () -> b.free(pools),
                () -> b.free(small()),
                () -> b.reallocate(freed, 100),
                () -> b.reallocate(freed, 100, 8),
                () -> b.newArena(),
                () -> b.newBudget("child", 10),
                () -> b.maxBytes(),
                () -> b.usedBytes(),
                () -> b.peakBytes(),
                () -> b.close());
        for (Executable call : calls) {
            assertRefusedAndUnchanged(IllegalStateException.class, call, "budget 'tenant/done' is closed");
        }
        assertEquals("done", b.name());
        assertTrue(b.toString().contains("tenant/done") && b.toString().contains("closed"), b.toString());
        pool.free(pools);
    }

    @Test
    void allocate_fromAClosedChild_chargesNothingUpTheTree() {
        MemoryBudget parent = pool.newBudget("parent", 1 << 20);
        MemoryBudget child = parent.newBudget("child", 1 << 20);
        watched.add(parent);
        child.close();
        // the parent's use and peak are 0: a charge that went up the tree and back would show in the peak
        assertRefusedAndUnchanged(IllegalStateException.class, () -> child.allocate(1000), "budget 'parent/child' is closed");
        assertRefusedAndUnchanged(IllegalStateException.class, () -> child.allocate(2 << 20), "budget 'parent/child' is closed");
        assertEquals(0, parent.peakBytes());
        parent.close();
    }

    @Test
    void poolClose_closesEveryBudget_withoutThrowing_andReportsWhatEachHeld() {
        CapturedWarnings captured = CapturedWarnings.start();
        List<String> warnings = captured.messages();
        try {
            MemoryBudget kid = sibling.newBudget("kid", 1 << 20);
            Arena arena = kid.newArena();
            arena.allocate(64);
            assertDoesNotThrow(pool::close);
            for (MemoryBudget b : List.of(tenant, query, sibling, kid)) {
                for (Executable call : List.<Executable>of(() -> b.allocate(16), () -> b.free(small()),
                        () -> b.reallocate(small(), 10), b::newArena, () -> b.newBudget("x", 1), b::maxBytes,
                        b::usedBytes, b::peakBytes, b::close)) {
                    IllegalStateException e = assertThrows(IllegalStateException.class, call);
                    assertTrue(e.getMessage().contains("closed"), e.getMessage());
                }
                assertTrue(b.toString().contains("closed"), b.toString());
            }
            assertEquals("kid", kid.name());
            assertDoesNotThrow(arena::close); // an arena may be closed after its pool
            String report = String.join("\n", warnings);
            assertTrue(report.contains("budget 'tenant/query' held " + query.used() + " bytes (6 allocations of its own"),
                    report);
            assertTrue(report.contains("budget 'tenant/sibling/kid' held 4096 bytes (0 allocations of its own, 1 open arenas)"),
                    report);
        } finally {
            captured.close();
        }
    }

    @Test
    void newBudget_onAClosedPool_throws() {
        pool.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.newBudget("late", 100));
        assertEquals("pool 'budgets' is closed", e.getMessage());
    }

    // ---- names and limits of new budgets ----

    @ParameterizedTest(name = "name \"{0}\"")
    @ValueSource(strings = {"", " ", "\t", "a,b", "a=b", "a:b", "a\"b", "a*b", "a?b", "a\nb"})
    void newBudget_badName_throwsAsForAPoolName_andOpensNothing(String name) {
        MemoryBudget parent = pool.newBudget("parent", 100);
        watched.add(parent);
        IllegalArgumentException asPool = assertThrows(IllegalArgumentException.class, () -> smallPool(name));
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.newBudget(name, 100), "name",
                asPool.getMessage());
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> parent.newBudget(name, 100), "name");
        watched.remove(parent);
        parent.close(); // no child was counted
    }

    @Test
    void newBudget_nameLengthAndNull_followThePoolsRules() {
        String longest = "n".repeat(200);
        pool.newBudget(longest, 10).close();
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.newBudget(longest + "n", 10), "name");
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> tenant.newBudget(longest + "n", 10), "name");
        assertRefusedAndUnchanged(NullPointerException.class, () -> pool.newBudget(null, 10), "name");
        assertRefusedAndUnchanged(NullPointerException.class, () -> tenant.newBudget(null, 10), "name");
    }

    @Test
    void newBudget_namesNeedNotBeUnique_andReportsShowThePath() {
        MemoryBudget a = query.newBudget("scan", 100);
        MemoryBudget b = query.newBudget("scan", 200);
        assertEquals("scan", a.name());
        assertEquals("tenant/query/scan", a.path());
        assertEquals("MemoryBudget[tenant/query/scan, 0 of 200 bytes]", b.toString());
        assertTrue(pool.dumpStats().contains("'tenant/query/scan': used 0 B of 100 B"), pool.dumpStats());
        a.close();
        b.close();
    }

    @ParameterizedTest(name = "maxBytes {0}")
    @ValueSource(longs = {-1, -4096, Long.MIN_VALUE})
    void newBudget_negativeMaxBytes_throwsNamingIt_andOpensNothing(long maxBytes) {
        MemoryBudget parent = pool.newBudget("parent", 100);
        watched.add(parent);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> pool.newBudget("b", maxBytes), "maxBytes",
                "was " + maxBytes);
        assertRefusedAndUnchanged(IllegalArgumentException.class, () -> parent.newBudget("b", maxBytes), "maxBytes");
        watched.remove(parent);
        parent.close();
    }

    @Test
    void maxBytes_isTheLimitGiven() {
        assertEquals(1 << 20, tenant.maxBytes());
        assertEquals(512 << 10, query.maxBytes());
        try (MemoryBudget unlimited = pool.newBudget("unlimited", Long.MAX_VALUE)) {
            assertEquals(Long.MAX_VALUE, unlimited.maxBytes());
            MemorySegment s = unlimited.allocate(3 * CHUNK);
            assertEquals(3 * CHUNK, unlimited.usedBytes());
            unlimited.free(s);
        }
    }

    // ---- pooled arenas ----

    @Test
    void newArena_isChargedPerBlockAndUnit_andDischargedAtClose() {
        MemoryBudget b = tenant.newBudget("scratch", 1 << 20);
        long tenantBefore = tenant.usedBytes();
        long activeBefore = pool.metrics().activeBytes();
        long charged;
        try (Arena arena = b.newArena()) {
            assertEquals(4096, b.usedBytes(), "the first block is taken at open");
            assertEquals(tenantBefore + 4096, tenant.usedBytes());
            for (int i = 0; i < 4; i++) {
                arena.allocate(1000); // 4000 bytes: one block
            }
            assertEquals(4096, b.usedBytes());
            arena.allocate(1000);
            assertEquals(8192, b.usedBytes(), "a second block");
            arena.allocate(2000); // above the bump size: a unit of its own, 2048
            assertEquals(8192 + 2048, b.usedBytes());
            arena.allocate(40_000); // a run: 40960
            assertEquals(8192 + 2048 + 40_960, b.usedBytes());
            arena.allocate(CHUNK + 1); // huge: its size
            charged = 8192 + 2048 + 40_960 + CHUNK + 1;
            assertEquals(charged, b.usedBytes());
            assertEquals(activeBefore + charged, pool.metrics().activeBytes());
            assertRefusedAndUnchanged(IllegalStateException.class, b::close, "1 open arenas");
        }
        assertEquals(0, b.usedBytes());
        assertEquals(charged, b.peakBytes());
        assertEquals(tenantBefore, tenant.usedBytes());
        assertEquals(activeBefore, pool.metrics().activeBytes());
        b.close();
    }

    @Test
    void newArena_atTheLimit_refusesWhatDoesNotFit_andStaysUsable() {
        MemoryBudget b = pool.newBudget("tight", 8192);
        watched.add(b);
        try (Arena arena = b.newArena()) {
            MemoryLimitExceededException e = assertRefusedAndUnchanged(MemoryLimitExceededException.class,
                    () -> arena.allocate(5000), "budget 'tight'", "holds 4096 bytes");
            assertEquals(5120, e.requestedBytes());
            arena.allocate(16); // from the block it holds
            for (int i = 0; i < 4; i++) {
                arena.allocate(1000); // the block is full up to 4016 bytes
            }
            arena.allocate(4000); // above the bump size: a unit of 4096
            assertEquals(8192, b.usedBytes());
            assertRefusedAndUnchanged(MemoryLimitExceededException.class, () -> arena.allocate(1000),
                    "budget 'tight'", "4096 more bytes"); // a second block would cross the limit
            arena.allocate(80); // still cut from the block it holds
            assertEquals(8192, b.usedBytes());
        }
        assertEquals(0, b.usedBytes());
        MemoryBudget tooSmall = pool.newBudget("too-small", 4095);
        watched.add(tooSmall);
        assertRefusedAndUnchanged(MemoryLimitExceededException.class, tooSmall::newArena, "budget 'too-small'",
                "4096 more bytes");
        watched.remove(tooSmall);
        tooSmall.close(); // the refused arena is not counted as open
    }

    // ---- what is charged ----

    @ParameterizedTest(name = "{0} bytes aligned to {1}: {2}")
    @CsvSource({
        "0, 1, 16",
        "1, 1, 16",
        "50, 1, 64",
        "50, 128, 128",
        "3000, 16, 3072",
        "16384, 1, 16384",
        "20000, 1, 20480",
        "40000, 1, 40960",
        "65536, 1, 65536",
        "65537, 1, 65537",
        "65537, 4096, 65537",
        "200000, 1, 200000",
    })
    void allocate_chargesTheSizeThePoolReserves(long byteSize, long byteAlignment, long charged) {
        assertEquals(charged, SegmentPoolProperties.accountedBytes(byteSize, byteAlignment), "the reference");
        assertEquals(charged, pool.core().unitSize(byteSize, byteAlignment), "unitSize");
        MemoryBudget child = query.newBudget("charged", 1 << 20);
        long queryBefore = query.usedBytes();
        long tenantBefore = tenant.usedBytes();
        long activeBefore = pool.metrics().activeBytes();
        MemorySegment s = child.allocate(byteSize, byteAlignment);
        assertEquals(byteSize, s.byteSize());
        assertEquals(0, s.address() % byteAlignment);
        assertEquals(charged, child.usedBytes());
        assertEquals(charged, child.peakBytes());
        assertEquals(queryBefore + charged, query.usedBytes());
        assertEquals(tenantBefore + charged, tenant.usedBytes());
        assertEquals(activeBefore + charged, pool.metrics().activeBytes(), "the pool reserves what is charged");
        child.free(s);
        assertEquals(0, child.usedBytes());
        assertEquals(charged, child.peakBytes());
        assertEquals(queryBefore, query.usedBytes());
        assertEquals(activeBefore, pool.metrics().activeBytes());
        child.close();
    }

    @Test
    void allocate_chargesAgreeWithThePoolsActiveBytes_forManySizesAndAlignments() {
        MemoryBudget b = pool.newBudget("sweep", Long.MAX_VALUE);
        long activeBefore = pool.metrics().activeBytes();
        List<MemorySegment> held = new ArrayList<>();
        long expected = 0;
        for (long size = 0; size <= 3 * CHUNK; size = size < 64 ? size + 7 : size * 5 / 4 + 3) {
            for (long alignment : new long[] {1, 16, 256, 8192}) {
                held.add(b.allocate(size, alignment));
                expected += SegmentPoolProperties.accountedBytes(size, alignment);
                assertEquals(expected, b.usedBytes(), size + " bytes aligned to " + alignment);
            }
        }
        assertEquals(activeBefore + expected, pool.metrics().activeBytes());
        held.forEach(b::free);
        assertEquals(0, b.usedBytes());
        assertEquals(expected, b.peakBytes());
        b.close();
    }

    @Test
    void usedAndPeak_includeTheChildren() {
        long base = tenant.usedBytes();
        assertEquals(query.usedBytes() + sibling.usedBytes(), base);
        MemorySegment a = sibling.allocate(50);
        MemorySegment b = tenant.allocate(100);
        assertEquals(base + 64 + 112, tenant.usedBytes());
        assertEquals(64, sibling.usedBytes());
        sibling.free(a);
        tenant.free(b);
        assertEquals(base, tenant.usedBytes());
        assertEquals(base + 64 + 112, tenant.peakBytes());
        assertEquals(64, sibling.peakBytes());
    }
}
