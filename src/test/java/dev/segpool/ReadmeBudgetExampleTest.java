package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** The README's budget example, line for line, with what its comments claim checked. */
class ReadmeBudgetExampleTest {
    @Test
    void readmeExample_chargesWhatItSays() {
        try (SegmentPool pool = SegmentPool.create();
             MemoryBudget tenant = pool.newBudget("tenant-7", 256L << 20);
             MemoryBudget query = tenant.newBudget("query-42", 64L << 20)) {
            MemorySegment rows = query.allocate(4096);
            rows = query.reallocate(rows, 16384);        // charged the difference; in place when it can be
            assertEquals(16384, query.usedBytes());
            try (Arena scratch = query.newArena()) {     // charged to query-42 until it closes
                MemorySegment key = scratch.allocate(64);
                assertEquals(64, key.byteSize());
                assertEquals(16384 + 4096, tenant.usedBytes());
            }
            query.free(rows);
            assertEquals("0 20480", tenant.usedBytes() + " " + tenant.peakBytes());
        }
    }
}
