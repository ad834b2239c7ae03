package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Runs inside one chunk of 16 pages of 4 KiB. */
class PoolChunkTest {
    private static final int PAGE = 4096;
    private static final int PAGES = 16;

    private final NativeMemory memory = new NativeMemory("chunk-test", PAGE * PAGES, Long.MAX_VALUE, false, new Lifecycle());
    private final PoolArena arena = new PoolArena(0, new SizeClasses(PAGE, PAGE * PAGES), memory, 0);
    private final PoolChunk chunk = memory.allocateChunk(arena);

    @AfterEach
    void release() {
        memory.releaseAll(false);
    }

    private void assertConsistent() {
        assertEquals(chunk.freePages, chunk.queuedFreePages(), "queued free pages");
    }

    @Test
    void newChunk_isOneFreeRunOfAllPages_alignedToItsSize() {
        assertTrue(chunk.isEmpty());
        assertEquals(0, chunk.usage());
        assertEquals(PAGES, chunk.freePages);
        assertEquals(0, chunk.base % (PAGE * PAGES));
        assertEquals("................", chunk.occupancyMap());
        assertConsistent();
    }

    @Test
    void allocateRun_splitsTheFreeRun_andLeavesTheRestFree() {
        long run = chunk.allocateRun(3, 1);
        assertEquals(0, Handle.runOffset(run));
        assertEquals(3, Handle.runPages(run));
        assertTrue(Handle.isUsed(run));
        assertEquals(PAGES - 3, chunk.freePages);
        assertEquals("###.............", chunk.occupancyMap());
        long next = chunk.allocateRun(5, 1);
        assertEquals(3, Handle.runOffset(next));
        assertEquals("########........", chunk.occupancyMap());
        assertConsistent();
    }

    @Test
    void allocateRun_withAlignment_startsOnAMultiple_andKeepsTheGapFree() {
        chunk.allocateRun(1, 1);
        long aligned = chunk.allocateRun(2, 4);
        assertEquals(4, Handle.runOffset(aligned));
        assertEquals("#...##..........", chunk.occupancyMap());
        assertEquals(PAGES - 3, chunk.freePages);
        // the gap is reused first
        assertEquals(1, Handle.runOffset(chunk.allocateRun(1, 1)));
        assertConsistent();
    }

    @Test
    void allocateRun_thatDoesNotFit_returnsNone_andChangesNothing() {
        chunk.allocateRun(10, 1);
        assertEquals(Handle.NONE, chunk.allocateRun(7, 1));
        assertEquals(Handle.NONE, chunk.allocateRun(4, 8), "6 free pages but none starts on a multiple of 8 with 4 free");
        assertEquals(6, chunk.freePages);
        assertEquals("##########......", chunk.occupancyMap());
        assertEquals(10, Handle.runOffset(chunk.allocateRun(6, 1)));
        assertEquals(100, chunk.usage());
        assertEquals(Handle.NONE, chunk.allocateRun(1, 1));
        assertConsistent();
    }

    @Test
    void freeRun_coalescesWithBothNeighbours_backToOneRunOfAllPages() {
        long a = chunk.allocateRun(2, 1);
        long b = chunk.allocateRun(2, 1);
        long c = chunk.allocateRun(2, 1);
        long d = chunk.allocateRun(10, 1);
        chunk.freeRun(a);
        chunk.freeRun(c);
        assertEquals("..##..##########", chunk.occupancyMap());
        assertConsistent();
        chunk.freeRun(b); // merges a, b and c
        assertEquals("......##########", chunk.occupancyMap());
        assertEquals(0, Handle.runOffset(chunk.allocateRun(6, 1)), "a merged run of 6 pages exists");
        chunk.freeRun(Handle.run(0, 6, true));
        chunk.freeRun(d);
        assertTrue(chunk.isEmpty());
        assertConsistent();
        long whole = chunk.allocateRun(PAGES, 1);
        assertEquals(0, Handle.runOffset(whole), "everything merged into one run");
        assertEquals(PAGES, Handle.runPages(whole));
    }

    @Test
    void freeRun_inAnyOrder_alwaysMergesBackToTheWholeChunk() {
        Random random = new Random(3);
        for (int round = 0; round < 200; round++) {
            List<Long> runs = new ArrayList<>();
            long run;
            while ((run = chunk.allocateRun(1 + random.nextInt(4), 1)) != Handle.NONE) {
                runs.add(run);
            }
            Collections.shuffle(runs, random);
            for (long used : runs) {
                chunk.freeRun(used);
                assertConsistent();
            }
            assertTrue(chunk.isEmpty(), "round " + round);
            assertEquals(PAGES, Handle.runPages(chunk.allocateRun(PAGES, 1)));
            chunk.freeRun(Handle.run(0, PAGES, true));
        }
    }

    @Test
    void allocateRun_takesTheShortestFreeRunThatFits_notTheLowest() {
        long a = chunk.allocateRun(3, 1);
        chunk.allocateRun(1, 1);
        long c = chunk.allocateRun(2, 1);
        chunk.allocateRun(1, 1);
        chunk.freeRun(a);
        chunk.freeRun(c);
        assertEquals("...#..#.........", chunk.occupancyMap());
        assertEquals(4, Handle.runOffset(chunk.allocateRun(2, 1)), "the 2-page hole");
        assertEquals(0, Handle.runOffset(chunk.allocateRun(2, 1)), "then the 3-page one");
        assertEquals(2, Handle.runOffset(chunk.allocateRun(1, 1)), "its last page");
        assertEquals(7, Handle.runOffset(chunk.allocateRun(9, 1)), "9 pages: the tail");
        assertConsistent();
    }

    @Test
    void allocateRun_reusesTheLowestFreeOffsetFirst() {
        List<Long> runs = new ArrayList<>();
        for (int i = 0; i < PAGES; i++) {
            runs.add(chunk.allocateRun(1, 1));
        }
        chunk.freeRun(runs.get(9));
        chunk.freeRun(runs.get(2));
        chunk.freeRun(runs.get(13));
        assertEquals(2, Handle.runOffset(chunk.allocateRun(1, 1)));
        assertEquals(9, Handle.runOffset(chunk.allocateRun(1, 1)));
        assertEquals(13, Handle.runOffset(chunk.allocateRun(1, 1)));
    }

    @Test
    void usage_isZeroOnlyWhenEmpty_and100OnlyWhenFull() {
        List<Long> runs = new ArrayList<>();
        runs.add(chunk.allocateRun(1, 1));
        assertEquals(7, chunk.usage()); // 15 of 16 pages free: 93%
        for (int i = 1; i < PAGES; i++) {
            runs.add(chunk.allocateRun(1, 1));
            assertTrue(chunk.usage() < 100 || i == PAGES - 1);
        }
        assertEquals(100, chunk.usage());
        chunk.freeRun(runs.removeFirst());
        assertEquals(94, chunk.usage());
        runs.forEach(chunk::freeRun);
        assertEquals(0, chunk.usage());
        assertTrue(chunk.isEmpty());
        assertFalse(chunk.allocateRun(PAGES, 1) == Handle.NONE);
    }

    @Test
    void claim_ofARunStart_returnsItsHandle_andAnythingElseIsRefusedUnchanged() {
        long run = chunk.allocateRun(3, 1);
        chunk.hand(run, 0, 3 * PAGE, UnitState.LIVE, null);
        long start = chunk.base;
        assertRefused(start + 8, "points inside");
        assertRefused(start + PAGE, "no live allocation");
        assertRefused(start + 5 * PAGE, "chunk-test");
        assertEquals(run, chunk.claim(start, UnitState.LIVE, null));
        assertRefused(start, "already freed");
    }

    private void assertRefused(long address, String why) {
        assertEquals(Handle.NONE, chunk.claim(address, UnitState.LIVE, null));
        String message = chunk.claimFailure(address, null).getMessage();
        assertTrue(message.contains(why), message);
    }
}
