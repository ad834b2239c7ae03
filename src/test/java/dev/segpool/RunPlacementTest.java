package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Placement across an arena's chunks of 16 pages of 4 KiB. Bands (run classes) there: 1, 2, 3, 4, 5,
 * 6, 7, 8, 10, 12, 14 and 16 pages, so band 8 holds free runs of 8 and 9 pages.
 */
class RunPlacementTest {
    private static final int PAGE = 4096;
    private static final int PAGES = 16;

    private final SizeClasses sizeClasses = new SizeClasses(PAGE, PAGE * PAGES);
    private final NativeMemory memory = new NativeMemory("placement-test", PAGE * PAGES, Long.MAX_VALUE, false,
            new Lifecycle());
    private final PoolArena arena = new PoolArena(0, sizeClasses, memory, 0);
    private final RunPlacement placement = new RunPlacement(sizeClasses);

    @AfterEach
    void release() {
        memory.releaseAll(false);
    }

    private PoolChunk newChunk() {
        PoolChunk chunk = memory.allocateChunk(arena);
        placement.add(chunk);
        return chunk;
    }

    /** Cuts a run from {@code chunk} as the arena would, keeping the placement up to date. */
    private long cut(PoolChunk chunk, int pages) {
        long before = chunk.bandMask();
        long run = chunk.allocateRun(pages, 1);
        placement.update(chunk, before);
        assertTrue(placement.isConsistent());
        return run;
    }

    private void free(PoolChunk chunk, long run) {
        long before = chunk.bandMask();
        chunk.freeRun(run);
        placement.update(chunk, before);
        assertTrue(placement.isConsistent());
    }

    /** A chunk whose only free run is {@code freePages} pages long, at its end. */
    private PoolChunk chunkWithFreeTail(int freePages) {
        PoolChunk chunk = newChunk();
        cut(chunk, PAGES - freePages);
        return chunk;
    }

    @Test
    void noChunk_orNoRoom_isNull() {
        assertNull(placement.bestFit(1));
        chunkWithFreeTail(3);
        assertNull(placement.bestFit(4));
    }

    @Test
    void bestFit_takesTheShortestRunThatHoldsTheRequest_inWhicheverChunk() {
        PoolChunk four = chunkWithFreeTail(4);
        PoolChunk two = chunkWithFreeTail(2);
        PoolChunk whole = newChunk();
        assertSame(two, placement.bestFit(2));
        assertSame(four, placement.bestFit(3));
        assertSame(whole, placement.bestFit(5));
        assertEquals(14, Handle.runOffset(cut(two, 2)), "the 2-page hole, not the front of an emptier chunk");
        assertSame(four, placement.bestFit(1));
    }

    @Test
    void bestFit_amongEqualFits_takesTheOldestChunk() {
        PoolChunk older = chunkWithFreeTail(2);
        chunkWithFreeTail(2);
        assertSame(older, placement.bestFit(2));
        cut(older, 2);
        assertEquals(2, placement.size());
        assertTrue(placement.bestFit(2) != older);
    }

    @Test
    void bestFit_inTheRequestsOwnBand_findsARunLongEnough_beforeLongerBands() {
        PoolChunk eight = chunkWithFreeTail(8); // band 8, too short for 9 pages
        PoolChunk nine = chunkWithFreeTail(9); // band 8 too, long enough
        newChunk(); // band 16
        assertSame(nine, placement.bestFit(9));
        assertSame(eight, placement.bestFit(8), "8 pages: the oldest chunk with a run in band 8");
        assertEquals(7, Handle.runOffset(cut(nine, 9)));
        assertTrue(placement.bestFit(9) != eight, "8 pages do not hold 9");
    }

    @Test
    void remove_closesTheGap_andTheRestKeepTheirOrderAndBits() {
        Random random = new Random(5);
        List<PoolChunk> chunks = new ArrayList<>();
        List<List<Long>> runs = new ArrayList<>();
        for (int i = 0; i < 70; i++) { // more than one bitmap word
            chunks.add(newChunk());
            runs.add(new ArrayList<>());
        }
        for (int step = 0; step < 3000; step++) {
            int i = random.nextInt(chunks.size());
            PoolChunk chunk = chunks.get(i);
            if (random.nextBoolean() && !runs.get(i).isEmpty()) {
                free(chunk, runs.get(i).remove(random.nextInt(runs.get(i).size())));
            } else {
                long run = chunk.allocateRun(1 + random.nextInt(5), 1);
                if (run != Handle.NONE) {
                    chunk.freeRun(run); // undo, then cut through the placement
                    runs.get(i).add(cut(chunk, Handle.runPages(run)));
                }
            }
        }
        for (int i : new int[] {65, 3, 0}) {
            PoolChunk gone = chunks.remove(i);
            runs.remove(i);
            placement.remove(gone);
            assertEquals(-1, gone.placementSlot);
            assertTrue(placement.isConsistent());
        }
        for (int i = 0; i < chunks.size(); i++) {
            assertEquals(i, chunks.get(i).placementSlot, "age order kept");
        }
        for (int span = 1; span <= PAGES; span++) {
            PoolChunk chosen = placement.bestFit(span);
            PoolChunk expected = null;
            int best = Integer.MAX_VALUE;
            for (PoolChunk chunk : chunks) {
                int fit = shortestFit(chunk, span);
                if (band(fit) < band(best)) {
                    best = fit;
                    expected = chunk;
                }
            }
            if (expected == null) {
                assertNull(chosen, "span " + span);
            } else {
                assertEquals(band(best), band(shortestFit(chosen, span)), "span " + span);
                assertTrue(chunks.indexOf(chosen) <= chunks.indexOf(expected), "the oldest of the best band");
            }
        }
    }

    private int band(int pages) {
        return pages == Integer.MAX_VALUE ? Integer.MAX_VALUE : sizeClasses.runClassFloor(pages);
    }

    /** Pages of the shortest free run of {@code chunk} holding {@code span} pages, by cutting and undoing. */
    private static int shortestFit(PoolChunk chunk, int span) {
        long run = chunk.allocateRun(span, 1);
        if (run == Handle.NONE) {
            return Integer.MAX_VALUE;
        }
        chunk.freeRun(run);
        // the run was cut from the front of the shortest fitting free run: that run's length is what
        // now starts at its offset
        String map = chunk.occupancyMap();
        int end = Handle.runOffset(run);
        while (end < map.length() && map.charAt(end) == '.') {
            end++;
        }
        return end - Handle.runOffset(run);
    }
}
