package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class HandleTest {
    private static final int[] OFFSETS = {0, 1, 2, 12345, Handle.MAX_RUN_FIELD - 1, Handle.MAX_RUN_FIELD};
    private static final int[] PAGES = {1, 2, 16384, Handle.MAX_RUN_FIELD - 1, Handle.MAX_RUN_FIELD};
    private static final int[] BITMAP_INDICES = {0, 1, 63, 64, 511, Integer.MAX_VALUE - 1, Integer.MAX_VALUE};

    @Test
    void layout_fillsExactly64Bits_withFieldsInNettysOrder() {
        assertEquals(0, Handle.BITMAP_INDEX_SHIFT);
        assertEquals(32, Handle.SUBPAGE_SHIFT);
        assertEquals(33, Handle.USED_SHIFT);
        assertEquals(34, Handle.RUN_PAGES_SHIFT);
        assertEquals(49, Handle.RUN_OFFSET_SHIFT);
        assertEquals(Long.SIZE, Handle.RUN_OFFSET_SHIFT + Handle.RUN_OFFSET_WIDTH);
        assertEquals((1 << 15) - 1, Handle.MAX_RUN_FIELD);
    }

    @Test
    void run_roundTripsEveryFieldAtItsLimits() {
        for (int offset : OFFSETS) {
            for (int pages : PAGES) {
                for (boolean used : new boolean[] {false, true}) {
                    long handle = Handle.run(offset, pages, used);
                    String what = offset + "/" + pages + "/" + used;
                    assertEquals(offset, Handle.runOffset(handle), what);
                    assertEquals(pages, Handle.runPages(handle), what);
                    assertEquals(used, Handle.isUsed(handle), what);
                    assertFalse(Handle.isSubpage(handle), what);
                    assertEquals(0, Handle.bitmapIndex(handle), what);
                    assertNotEquals(Handle.NONE, handle, what);
                }
            }
        }
    }

    @Test
    void subpageElement_roundTripsEveryFieldAtItsLimits() {
        for (int offset : OFFSETS) {
            for (int pages : PAGES) {
                long run = Handle.subpageRun(offset, pages);
                assertTrue(Handle.isSubpage(run));
                assertTrue(Handle.isUsed(run));
                for (int index : BITMAP_INDICES) {
                    long element = Handle.element(run, index);
                    String what = offset + "/" + pages + "/" + index;
                    assertEquals(offset, Handle.runOffset(element), what);
                    assertEquals(pages, Handle.runPages(element), what);
                    assertTrue(Handle.isUsed(element), what);
                    assertTrue(Handle.isSubpage(element), what);
                    assertEquals(index, Handle.bitmapIndex(element), what);
                    // selecting another element replaces the index, it does not merge with it
                    assertEquals(element, Handle.element(Handle.element(run, 7), index), what);
                }
            }
        }
    }

    @Test
    void handles_orderByRunOffsetFirst_unsigned() {
        long low = Handle.run(1, Handle.MAX_RUN_FIELD, false);
        long high = Handle.run(Handle.MAX_RUN_FIELD, 1, false);
        assertTrue(Long.compareUnsigned(low, high) < 0);
        assertTrue(Long.compareUnsigned(Handle.run(0, 5, true), Handle.run(1, 1, false)) < 0);
    }

    @Test
    void toString_namesEveryField() {
        String text = Handle.toString(Handle.element(Handle.subpageRun(3, 5), 9));
        assertEquals("Handle[offset=3, pages=5, used=true, subpage=true, bitmapIndex=9]", text);
    }
}
