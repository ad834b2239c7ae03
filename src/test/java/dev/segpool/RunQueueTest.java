package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

class RunQueueTest {

    @Test
    void smallestOfAtLeast_isTheShortestLongEnoughRun_lowestOffsetAmongEquals() {
        RunQueue queue = new RunQueue();
        queue.offer(Handle.run(40, 9, false));
        queue.offer(Handle.run(30, 12, false));
        queue.offer(Handle.run(20, 9, false));
        queue.offer(Handle.run(10, 8, false));
        assertEquals(Handle.run(10, 8, false), queue.smallestOfAtLeast(8));
        assertEquals(Handle.run(20, 9, false), queue.smallestOfAtLeast(9), "two of 9 pages: the lower one");
        assertEquals(Handle.run(30, 12, false), queue.smallestOfAtLeast(10));
        assertEquals(Handle.NONE, queue.smallestOfAtLeast(13));
        assertEquals(4, queue.size(), "a query takes nothing out");
    }

    @Test
    void smallestOfAtLeast_ordersOffsetsUnsigned() {
        // offsets above 2^14 set the top bit of the handle
        RunQueue queue = new RunQueue();
        queue.offer(Handle.run(Handle.MAX_RUN_FIELD, 2, false));
        queue.offer(Handle.run(16384, 2, false));
        queue.offer(Handle.run(3, 2, false));
        assertEquals(Handle.run(3, 2, false), queue.smallestOfAtLeast(1));
        assertTrue(queue.remove(Handle.run(3, 2, false)));
        assertEquals(Handle.run(16384, 2, false), queue.smallestOfAtLeast(1));
    }

    @Test
    void remove_takesOutExactlyThatRun_andKeepsTheRest() {
        Random random = new Random(2);
        for (int round = 0; round < 50; round++) {
            RunQueue queue = new RunQueue();
            List<Long> handles = new ArrayList<>();
            for (int i = 0; i < 1 + random.nextInt(40); i++) {
                long handle = Handle.run(random.nextInt(Handle.MAX_RUN_FIELD + 1), 1 + i, false);
                handles.add(handle);
                queue.offer(handle);
            }
            Collections.shuffle(handles, random);
            for (long handle : handles.subList(0, handles.size() / 2)) {
                assertTrue(queue.remove(handle));
            }
            Set<Long> rest = new HashSet<>(handles.subList(handles.size() / 2, handles.size()));
            Set<Long> queued = new HashSet<>();
            for (int i = 0; i < queue.size(); i++) {
                queued.add(queue.get(i));
            }
            assertEquals(rest, queued, "round " + round);
        }
    }

    @Test
    void remove_ofAHandleNotQueued_returnsFalse_andChangesNothing() {
        RunQueue queue = new RunQueue();
        queue.offer(Handle.run(4, 2, false));
        queue.offer(Handle.run(1, 1, false));
        assertFalse(queue.remove(Handle.run(4, 3, false)));
        assertFalse(queue.remove(Handle.run(4, 2, true)));
        assertEquals(2, queue.size());
        assertTrue(queue.remove(Handle.run(1, 1, false)));
        assertTrue(queue.remove(Handle.run(4, 2, false)));
        assertTrue(queue.isEmpty());
        assertFalse(queue.remove(Handle.run(1, 1, false)));
    }

    @Test
    void get_walksEveryQueuedRun() {
        RunQueue queue = new RunQueue();
        long total = 0;
        for (int i = 0; i < 37; i++) {
            queue.offer(Handle.run(i * 3, i + 1, false));
            total += i + 1;
        }
        long seen = 0;
        for (int i = 0; i < queue.size(); i++) {
            seen += Handle.runPages(queue.get(i));
        }
        assertEquals(total, seen);
    }
}
