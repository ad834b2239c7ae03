package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.Combinators;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.RandomDistribution;
import net.jqwik.api.Tuple;
import org.junit.jupiter.api.function.Executable;

/**
 * Model-based test of a tree of budgets (three levels: {@code root}, {@code root/a} and {@code root/b},
 * {@code root/a/x} and {@code root/a/y}, and a second top-level budget {@code other}) over a small pool
 * (4 KiB pages, 64 KiB chunks). Random sequences of allocations, frees, reallocations that grow and
 * shrink, pooled arenas opened, used and closed, budgets closed and opened again, and calls that must
 * be refused run against a reference model. The model charges each allocation the size the pool
 * reserves ({@link SegmentPoolProperties#accountedBytes}, checked against {@link PoolCore#unitSize}),
 * each arena its 4 KiB blocks and its larger units, and knows the limits along the tree. After every
 * step each budget's used and peak bytes must be the model's, every action the model says must fail
 * must have thrown the exception it names (with the refusing budget's limit and use), every live
 * segment must hold its pattern without overlapping another, and the pool's activeBytes must be the
 * top-level budgets' total.
 */
class BudgetModelProperties {
    private static final int PAGE = 4096;
    private static final int CHUNK = 65536;
    private static final int BLOCK = 4096;
    private static final List<Integer> CLASS_SIZES = SizeClassesTest.expectedClassSizes(CHUNK);

    /** The tree: each slot's parent slot (-1 for a top-level budget), and its name. */
    private static final int[] PARENT = {-1, 0, 0, 1, 1, -1};
    private static final String[] NAME = {"root", "a", "b", "x", "y", "other"};
    private static final int SLOTS = PARENT.length;
    private static final List<Long> LIMITS = List.of(0L, 4096L, 20_000L, 65_536L, 150_000L, 1L << 20, Long.MAX_VALUE);

    sealed interface Action permits Allocate, Free, Reallocate, Resize, FreeThroughAnother, FreeThroughPool, DoubleFree,
            OpenArena, ArenaAllocate, CloseArena, CloseBudget, OpenBudget, BadRequest {}

    record Allocate(int slot, long byteSize, long byteAlignment) implements Action {}

    record Free(int pick) implements Action {}

    record Reallocate(int pick, long byteSize, long byteAlignment) implements Action {}

    /** Reallocates a live segment to {@code percent} of its size, plus {@code extra} bytes (alignment 1). */
    record Resize(int pick, int percent, int extra) implements Action {}

    /** Frees (and reallocates) a live segment through a budget that did not allocate it. */
    record FreeThroughAnother(int pick, int slot) implements Action {}

    /** Frees (and reallocates) a live budget's segment through the pool. */
    record FreeThroughPool(int pick) implements Action {}

    /** Frees a segment again that was freed already. */
    record DoubleFree(int pick) implements Action {}

    record OpenArena(int slot) implements Action {}

    record ArenaAllocate(int pick, long byteSize, long byteAlignment) implements Action {}

    record CloseArena(int pick) implements Action {}

    record CloseBudget(int slot) implements Action {}

    /** Opens the slot's budget again (after it was closed) with a new limit. */
    record OpenBudget(int slot, int limitPick) implements Action {}

    /** 0: allocate a negative size, 1: allocate with a bad alignment, 2: reallocate to a negative size, 3: a child with a negative limit. */
    record BadRequest(int slot, int kind, int pick) implements Action {}

    // ---- generators ----

    @Provide
    Arbitrary<List<Long>> limits() {
        return Arbitraries.of(LIMITS).list().ofSize(SLOTS);
    }

    @Provide
    Arbitrary<List<Action>> actions() {
        Arbitrary<Long> boundarySizes = Arbitraries.of(CLASS_SIZES).flatMap(size ->
                Arbitraries.of(size - 1L, (long) size, size + 1L));
        Arbitrary<Long> sizes = Arbitraries.frequencyOf(
                Tuple.of(2, Arbitraries.just(0L)),
                Tuple.of(6, boundarySizes),
                Tuple.of(10, Arbitraries.longs().between(1, 4096)),
                Tuple.of(5, Arbitraries.longs().between(4097, CHUNK)),
                Tuple.of(2, Arbitraries.longs().between(CHUNK + 1, 2L * CHUNK)));
        Arbitrary<Long> arenaSizes = Arbitraries.frequencyOf(
                Tuple.of(8, Arbitraries.longs().between(0, 1024)),
                Tuple.of(3, Arbitraries.longs().between(1025, 8192)),
                Tuple.of(1, Arbitraries.longs().between(8193, CHUNK + 100)));
        Arbitrary<Long> alignments = Arbitraries.frequencyOf(
                Tuple.of(6, Arbitraries.just(1L)),
                Tuple.of(4, Arbitraries.integers().between(0, 16).map(shift -> 1L << shift)));
        Arbitrary<Integer> slots = Arbitraries.integers().between(0, SLOTS - 1);
        Arbitrary<Integer> picks = Arbitraries.integers().between(0, Integer.MAX_VALUE);
        Arbitrary<Action> action = Arbitraries.frequencyOf(
                Tuple.of(10, Combinators.combine(slots, sizes, alignments).as(Allocate::new)),
                Tuple.of(6, picks.map(Free::new)),
                Tuple.of(4, Combinators.combine(picks, sizes, alignments).as(Reallocate::new)),
                Tuple.of(4, Combinators.combine(picks, Arbitraries.integers().between(25, 200),
                        Arbitraries.integers().between(-16, 16)).as(Resize::new)),
                Tuple.of(1, Combinators.combine(picks, slots).as(FreeThroughAnother::new)),
                Tuple.of(1, picks.map(FreeThroughPool::new)),
                Tuple.of(1, picks.map(DoubleFree::new)),
                Tuple.of(2, slots.map(OpenArena::new)),
                Tuple.of(4, Combinators.combine(picks, arenaSizes, alignments).as(ArenaAllocate::new)),
                Tuple.of(2, picks.map(CloseArena::new)),
                Tuple.of(2, slots.map(CloseBudget::new)),
                Tuple.of(2, Combinators.combine(slots, picks).as(OpenBudget::new)),
                Tuple.of(1, Combinators.combine(slots, Arbitraries.integers().between(0, 3), picks).as(BadRequest::new)));
        return action.list().ofMinSize(1).ofMaxSize(100).withSizeDistribution(RandomDistribution.uniform());
    }

    // ---- properties ----

    @Property(tries = 300)
    void withThreadCaches_budgetsAgreeWithTheModelAfterEveryStep(@ForAll("limits") List<Long> limits,
                                                                  @ForAll("actions") List<Action> actions) {
        run(limits, actions, SegmentPool.builder().smallCacheSize(8).normalCacheSize(2).cacheTrimInterval(16));
    }

    @Property(tries = 200)
    void withoutThreadCaches_budgetsAgreeWithTheModelAfterEveryStep(@ForAll("limits") List<Long> limits,
                                                                     @ForAll("actions") List<Action> actions) {
        run(limits, actions, SegmentPool.builder().threadLocalCaches(false));
    }

    private void run(List<Long> limits, List<Action> actions, SegmentPool.Builder builder) {
        try (SegmentPool pool = builder.name("budget-model").pageSize(PAGE).chunkSize(CHUNK).arenas(2)
                .decay(Duration.ofDays(1)).build()) {
            Model model = new Model(pool, limits);
            model.check();
            for (Action action : actions) {
                model.apply(action);
                model.check();
            }
            model.closeEverything();
        }
    }

    // ---- the model ----

    /** One budget slot of the tree: the budget now in it, open or closed. */
    private static final class Node {
        MemoryBudget budget;
        long limit;
        boolean open;
        long peak;
    }

    /** A live allocation of a budget: its charge is what the pool reserves for it. */
    private record Live(MemorySegment segment, long id, int slot, long charge, boolean huge) {}

    /** A segment a budget freed, for double frees. */
    private record Freed(MemorySegment segment, MemoryBudget budget) {}

    /** An open arena of a budget: its charge, the bump offset in its current block, its segments. */
    private static final class Scratch {
        final Arena arena;
        final int slot;
        long charge = BLOCK; // the first block, taken when it opens
        long blockUsed;
        final List<Live> segments = new ArrayList<>();

        Scratch(Arena arena, int slot) {
            this.arena = arena;
            this.slot = slot;
        }
    }

    private static final class Model {
        private final SegmentPool pool;
        private final Node[] nodes = new Node[SLOTS];
        private final List<Live> live = new ArrayList<>();
        private final List<Freed> freed = new ArrayList<>();
        private final List<Scratch> arenas = new ArrayList<>();
        private final List<MemoryBudget> closedBudgets = new ArrayList<>();
        private long nextId;

        Model(SegmentPool pool, List<Long> limits) {
            this.pool = pool;
            for (int s = 0; s < SLOTS; s++) {
                nodes[s] = new Node();
                nodes[s].limit = limits.get(s);
                nodes[s].budget = PARENT[s] < 0 ? pool.newBudget(NAME[s], nodes[s].limit)
                        : nodes[PARENT[s]].budget.newBudget(NAME[s], nodes[s].limit);
                nodes[s].open = true;
            }
        }

        // ---- what the model expects ----

        /** Bytes charged to slot {@code s}: its allocations and arenas, and its children's uses. */
        long used(int s) {
            long bytes = 0;
            for (Live l : live) {
                bytes += l.slot() == s ? l.charge() : 0;
            }
            for (Scratch a : arenas) {
                bytes += a.slot == s ? a.charge : 0;
            }
            for (int c = 0; c < SLOTS; c++) {
                if (PARENT[c] == s) {
                    bytes += used(c);
                }
            }
            return bytes;
        }

        /** The slot whose limit refuses a charge of {@code bytes} to {@code s} (the lowest one), or -1. */
        int refusal(int s, long bytes) {
            for (int b = s; b >= 0; b = PARENT[b]) {
                if (bytes > nodes[b].limit - used(b)) {
                    return b;
                }
            }
            return -1;
        }

        /** Expects {@code call} to throw the limit of the budget in slot {@code refuser}, for {@code bytes}. */
        void assertRefusedByLimit(int refuser, long bytes, Executable call) {
            MemoryLimitExceededException e = assertThrows(MemoryLimitExceededException.class, call);
            assertEquals(nodes[refuser].limit, e.limitBytes(), e.getMessage());
            assertEquals(used(refuser), e.reservedBytes(), e.getMessage());
            assertEquals(bytes, e.requestedBytes(), e.getMessage());
            assertTrue(e.getMessage().contains("budget '" + nodes[refuser].budget.path() + "'"), e.getMessage());
        }

        static void assertClosed(Executable call) {
            IllegalStateException e = assertThrows(IllegalStateException.class, call);
            assertTrue(e.getMessage().contains("is closed"), e.getMessage());
        }

        static long unit(long byteSize, long byteAlignment) {
            return SegmentPoolProperties.accountedBytes(byteSize, byteAlignment);
        }

        boolean anyOpenChild(int s) {
            for (int c = 0; c < SLOTS; c++) {
                if (PARENT[c] == s && nodes[c].open) {
                    return true;
                }
            }
            return false;
        }

        boolean anyArena(int s) {
            return arenas.stream().anyMatch(a -> a.slot == s);
        }

        // ---- actions ----

        void apply(Action action) {
            switch (action) {
                case Allocate(int slot, long byteSize, long byteAlignment) -> allocate(slot, byteSize, byteAlignment);
                case Free(int pick) -> {
                    if (!live.isEmpty()) {
                        Live victim = live.remove(pick % live.size());
                        Patterns.verify(victim.segment(), victim.id());
                        MemoryBudget owner = nodes[victim.slot()].budget;
                        owner.free(victim.segment());
                        freed.add(new Freed(victim.segment(), owner));
                        if (freed.size() > 32) {
                            freed.removeFirst();
                        }
                    }
                }
                case Reallocate(int pick, long byteSize, long byteAlignment) -> {
                    if (!live.isEmpty()) {
                        reallocate(pick % live.size(), byteSize, byteAlignment);
                    }
                }
                case FreeThroughAnother(int pick, int slot) -> {
                    if (!live.isEmpty()) {
                        Live target = live.get(pick % live.size());
                        int wrong = slot == target.slot() ? (slot + 1) % SLOTS : slot;
                        MemoryBudget budget = nodes[wrong].budget;
                        if (nodes[wrong].open) {
                            String owner = "allocated by budget '" + nodes[target.slot()].budget.path() + "'";
                            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                                    () -> budget.free(target.segment()));
                            assertTrue(e.getMessage().contains(owner), e.getMessage());
                            assertThrows(IllegalArgumentException.class, () -> budget.reallocate(target.segment(), 8));
                        } else {
                            assertClosed(() -> budget.free(target.segment()));
                            assertClosed(() -> budget.reallocate(target.segment(), 8));
                        }
                    }
                }
                case FreeThroughPool(int pick) -> {
                    if (!live.isEmpty()) {
                        Live target = live.get(pick % live.size());
                        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                                () -> pool.free(target.segment()));
                        assertTrue(e.getMessage().contains("belongs to budget '"
                                + nodes[target.slot()].budget.path() + "'"), e.getMessage());
                        assertThrows(IllegalArgumentException.class, () -> pool.reallocate(target.segment(), 8));
                    }
                }
                case DoubleFree(int pick) -> {
                    if (!freed.isEmpty()) {
                        Freed again = freed.get(pick % freed.size());
                        boolean reused = live.stream().anyMatch(l -> l.segment().address() == again.segment().address())
                                || arenas.stream().flatMap(a -> a.segments.stream())
                                        .anyMatch(l -> l.segment().address() == again.segment().address());
                        if (closedBudgets.contains(again.budget())) {
                            assertClosed(() -> again.budget().free(again.segment()));
                        } else if (!reused) { // else its address was handed out anew
                            assertThrows(IllegalArgumentException.class, () -> again.budget().free(again.segment()));
                        }
                    }
                }
                case OpenArena(int slot) -> openArena(slot);
                case ArenaAllocate(int pick, long byteSize, long byteAlignment) -> {
                    if (!arenas.isEmpty()) {
                        arenaAllocate(arenas.get(pick % arenas.size()), byteSize, byteAlignment);
                    }
                }
                case Resize(int pick, int percent, int extra) -> {
                    if (!live.isEmpty()) {
                        int index = pick % live.size();
                        long size = live.get(index).segment().byteSize();
                        reallocate(index, Math.max(0, size * percent / 100 + extra), 1);
                    }
                }
                case CloseArena(int pick) -> {
                    if (!arenas.isEmpty()) {
                        Scratch a = arenas.remove(pick % arenas.size());
                        a.segments.forEach(l -> Patterns.verify(l.segment(), l.id()));
                        a.arena.close();
                    }
                }
                case CloseBudget(int slot) -> closeBudget(slot);
                case OpenBudget(int slot, int limitPick) -> openBudget(slot, LIMITS.get(limitPick % LIMITS.size()));
                case BadRequest(int slot, int kind, int pick) -> badRequest(slot, kind, pick);
            }
            for (int s = 0; s < SLOTS; s++) {
                if (nodes[s].open) {
                    nodes[s].peak = Math.max(nodes[s].peak, used(s));
                }
            }
        }

        private void allocate(int slot, long byteSize, long byteAlignment) {
            Node node = nodes[slot];
            if (!node.open) {
                assertClosed(() -> node.budget.allocate(byteSize, byteAlignment));
                return;
            }
            long bytes = unit(byteSize, byteAlignment);
            assertEquals(bytes, pool.core().unitSize(byteSize, byteAlignment), "the pool's unitSize");
            int refuser = refusal(slot, bytes);
            if (refuser >= 0) {
                assertRefusedByLimit(refuser, bytes, () -> node.budget.allocate(byteSize, byteAlignment));
                return;
            }
            MemorySegment segment = node.budget.allocate(byteSize, byteAlignment);
            assertEquals(byteSize, segment.byteSize());
            assertEquals(0, segment.address() % byteAlignment, "alignment " + byteAlignment);
            long id = nextId++;
            Patterns.fill(segment, id);
            live.add(new Live(segment, id, slot, bytes, SegmentPoolProperties.isHuge(byteSize, byteAlignment)));
        }

        private void reallocate(int index, long byteSize, long byteAlignment) {
            Live old = live.get(index);
            MemoryBudget budget = nodes[old.slot()].budget;
            long newUnit = unit(byteSize, byteAlignment);
            // a huge allocation stays where it is (reserving what it did) while it stays huge and uses half
            boolean hugeKept = old.huge() && (old.segment().address() & (byteAlignment - 1)) == 0 && byteSize > CHUNK
                    && byteSize <= old.charge() && byteSize >= old.charge() / 2;
            long charge = hugeKept ? old.charge() : newUnit;
            long delta = charge - old.charge();
            int refuser = delta > 0 ? refusal(old.slot(), delta) : -1;
            if (refuser >= 0) {
                assertRefusedByLimit(refuser, delta, () -> budget.reallocate(old.segment(), byteSize, byteAlignment));
                return; // check() sees the old segment still holding its pattern
            }
            MemorySegment result = budget.reallocate(old.segment(), byteSize, byteAlignment);
            assertEquals(byteSize, result.byteSize());
            assertEquals(0, result.address() % byteAlignment, "alignment " + byteAlignment);
            Patterns.verify(result.asSlice(0, Math.min(byteSize, old.segment().byteSize())), old.id());
            if (hugeKept) {
                assertEquals(old.segment().address(), result.address(), "a huge allocation shrinks in place");
            }
            long id = nextId++;
            Patterns.fill(result, id);
            live.set(index, new Live(result, id, old.slot(), charge,
                    hugeKept || SegmentPoolProperties.isHuge(byteSize, byteAlignment)));
        }

        private void openArena(int slot) {
            Node node = nodes[slot];
            if (!node.open) {
                assertClosed(node.budget::newArena);
                return;
            }
            int refuser = refusal(slot, BLOCK);
            if (refuser >= 0) {
                assertRefusedByLimit(refuser, BLOCK, node.budget::newArena);
                return;
            }
            arenas.add(new Scratch(node.budget.newArena(), slot));
        }

        private void arenaAllocate(Scratch a, long byteSize, long byteAlignment) {
            long bytes;
            long blockUsedAfter = a.blockUsed;
            if (byteSize <= ScratchArena.BUMP_MAX_SIZE && byteAlignment <= BLOCK) {
                long offset = (a.blockUsed + byteAlignment - 1) & -byteAlignment;
                long end = offset + Math.max(byteSize, 1);
                if (end > BLOCK) { // cut from the start of a new block
                    bytes = BLOCK;
                    blockUsedAfter = Math.max(byteSize, 1);
                } else {
                    bytes = 0;
                    blockUsedAfter = end;
                }
            } else { // a unit of its own
                bytes = unit(byteSize, byteAlignment);
            }
            int refuser = bytes > 0 ? refusal(a.slot, bytes) : -1;
            if (refuser >= 0) {
                assertRefusedByLimit(refuser, bytes, () -> a.arena.allocate(byteSize, byteAlignment));
                return;
            }
            MemorySegment segment = a.arena.allocate(byteSize, byteAlignment);
            assertEquals(byteSize, segment.byteSize());
            assertEquals(0, segment.address() % byteAlignment, "alignment " + byteAlignment);
            assertEquals(-1, segment.mismatch(MemorySegment.ofArray(new byte[(int) byteSize])), "zero-filled");
            a.charge += bytes;
            a.blockUsed = blockUsedAfter;
            long id = nextId++;
            Patterns.fill(segment, id);
            a.segments.add(new Live(segment, id, a.slot, 0, false));
        }

        private void closeBudget(int slot) {
            Node node = nodes[slot];
            if (!node.open) {
                assertClosed(node.budget::close);
                return;
            }
            if (used(slot) > 0 || anyOpenChild(slot) || anyArena(slot)) {
                IllegalStateException e = assertThrows(IllegalStateException.class, node.budget::close);
                assertTrue(e.getMessage().contains("budget '" + node.budget.path() + "' cannot close: it holds "
                        + used(slot) + " bytes"), e.getMessage());
                return;
            }
            node.budget.close();
            node.open = false;
            closedBudgets.add(node.budget);
        }

        private void openBudget(int slot, long limit) {
            Node node = nodes[slot];
            if (node.open) {
                return;
            }
            int parent = PARENT[slot];
            if (parent >= 0 && !nodes[parent].open) {
                assertClosed(() -> nodes[parent].budget.newBudget(NAME[slot], limit));
                return;
            }
            node.budget = parent < 0 ? pool.newBudget(NAME[slot], limit) : nodes[parent].budget.newBudget(NAME[slot], limit);
            node.limit = limit;
            node.open = true;
            node.peak = 0;
        }

        private void badRequest(int slot, int kind, int pick) {
            Node node = nodes[slot];
            Executable call = switch (kind) {
                case 0 -> () -> node.budget.allocate(-1 - pick, 8);
                case 1 -> () -> node.budget.allocate(64, 3 + 2L * (pick % 100));
                case 2 -> {
                    List<Live> own = live.stream().filter(l -> l.slot() == slot).toList();
                    MemorySegment target = own.isEmpty() ? MemorySegment.ofArray(new byte[8])
                            : own.get(pick % own.size()).segment();
                    yield () -> node.budget.reallocate(target, -1 - pick);
                }
                default -> () -> node.budget.newBudget("child", -1 - pick);
            };
            if (node.open) {
                assertThrows(IllegalArgumentException.class, call);
            } else {
                assertClosed(call);
            }
        }

        // ---- checks ----

        void check() {
            long topLevel = 0;
            for (int s = 0; s < SLOTS; s++) {
                Node node = nodes[s];
                if (node.open) {
                    String path = node.budget.path();
                    assertEquals(used(s), node.budget.usedBytes(), path + " usedBytes");
                    assertEquals(node.peak, node.budget.peakBytes(), path + " peakBytes");
                    assertEquals(node.limit, node.budget.maxBytes(), path + " maxBytes");
                    assertTrue(node.budget.usedBytes() <= node.limit, path + " over its limit");
                    if (PARENT[s] < 0) {
                        topLevel += used(s);
                    }
                } else {
                    assertClosed(node.budget::usedBytes);
                }
            }
            for (MemoryBudget closed : closedBudgets) {
                assertClosed(closed::peakBytes);
                assertClosed(() -> closed.allocate(16));
            }
            List<MemorySegment> all = new ArrayList<>();
            for (Live l : live) {
                Patterns.verify(l.segment(), l.id());
                all.add(l.segment());
            }
            for (Scratch a : arenas) {
                for (Live l : a.segments) {
                    Patterns.verify(l.segment(), l.id());
                    all.add(l.segment());
                }
            }
            AllocationTest.assertNoOverlap(all);
            assertEquals(topLevel, pool.metrics().activeBytes(), "the pool holds what the top-level budgets are charged");
            for (PoolArena arena : pool.arenas()) {
                assertTrue(arena.checkConsistency(), "arena " + arena.index);
            }
        }

        /** Closes the arenas, frees everything and closes every budget, children first: nothing is left. */
        void closeEverything() {
            for (Scratch a : arenas) {
                a.arena.close();
            }
            arenas.clear();
            for (Live l : live) {
                Patterns.verify(l.segment(), l.id());
                nodes[l.slot()].budget.free(l.segment());
            }
            live.clear();
            for (int s : new int[] {3, 4, 1, 2, 0, 5}) {
                if (nodes[s].open) {
                    assertEquals(0, nodes[s].budget.usedBytes());
                    nodes[s].budget.close();
                    nodes[s].open = false;
                }
            }
            assertEquals(0, pool.metrics().activeBytes());
            assertEquals(0, pool.budgets().size());
        }
    }
}
