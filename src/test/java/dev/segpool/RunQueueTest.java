package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class RunQueueTest {

    @Test
    void poll_returnsRunsLowestOffsetFirst_whateverTheInsertionOrder() {
        Random random = new Random(1);
        RunQueue queue = new RunQueue();
        List<Long> handles = new ArrayList<>();
        for (int offset = 0; offset < 200; offset++) {
            handles.add(Handle.run(offset * 100 % Handle.MAX_RUN_FIELD, 1 + random.nextInt(50), false));
        }
        // offsets above 2^14 set the top bit of the handle: the order must be unsigned
        handles.add(Handle.run(Handle.MAX_RUN_FIELD, 1, false));
        handles.add(Handle.run(16384, 3, false));
        Collections.shuffle(handles, random);
        handles.forEach(queue::offer);
        assertEquals(handles.size(), queue.size());

        List<Long> polled = new ArrayList<>();
        while (!queue.isEmpty()) {
            polled.add(queue.poll());
        }
        List<Long> sorted = new ArrayList<>(handles);
        sorted.sort(Long::compareUnsigned);
        assertEquals(sorted, polled);
        assertEquals(Handle.MAX_RUN_FIELD, Handle.runOffset(polled.getLast()));
    }

    @Test
    void remove_takesOutExactlyThatRun_andKeepsTheOrderOfTheRest() {
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
            List<Long> removed = handles.subList(0, handles.size() / 2);
            for (long handle : removed) {
                assertTrue(queue.remove(handle));
            }
            List<Long> rest = new ArrayList<>(handles.subList(handles.size() / 2, handles.size()));
            rest.sort(Long::compareUnsigned);
            List<Long> polled = new ArrayList<>();
            while (!queue.isEmpty()) {
                polled.add(queue.poll());
            }
            assertEquals(rest, polled, "round " + round);
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
        assertEquals(Handle.run(1, 1, false), queue.poll());
        assertEquals(Handle.run(4, 2, false), queue.poll());
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
