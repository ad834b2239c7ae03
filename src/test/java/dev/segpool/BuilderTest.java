package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Every setting out of range is refused by name, with the allowed range, and leaves the builder as it was. */
class BuilderTest {

    private static void assertRejected(String setting, Object value, Consumer<SegmentPool.Builder> set) {
        SegmentPool.Builder builder = SegmentPool.builder();
        IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class, () -> set.accept(builder),
                setting + " = " + value);
        String message = thrown.getMessage();
        assertTrue(message.startsWith(setting + " must be "), message);
        assertTrue(message.endsWith("was " + value), message);
    }

    @ParameterizedTest(name = "arenas({0})")
    @ValueSource(ints = {0, -1, 1025, Integer.MIN_VALUE, Integer.MAX_VALUE})
    void arenas_outOfRange_isRejectedByName(int arenas) {
        assertRejected("arenas", arenas, b -> b.arenas(arenas));
    }

    @ParameterizedTest(name = "pageSize({0})")
    @ValueSource(ints = {0, -4096, 1, 2048, 4095, 4097, 12288, 1 << 21, Integer.MIN_VALUE})
    void pageSize_notAPowerOfTwoFrom4KiBTo1MiB_isRejectedByName(int pageSize) {
        assertRejected("pageSize", pageSize, b -> b.pageSize(pageSize));
    }

    @ParameterizedTest(name = "chunkSize({0})")
    @ValueSource(ints = {0, -65536, 1, 16384, 32767, 49152, 3 << 20, Integer.MIN_VALUE, Integer.MAX_VALUE})
    void chunkSize_notAPowerOfTwoOfAtLeast32KiB_isRejectedByName(int chunkSize) {
        assertRejected("chunkSize", chunkSize, b -> b.chunkSize(chunkSize));
    }

    @Test
    void build_chunkOfFewerThan8OrMoreThan16384Pages_isRejectedNamingChunkSizeAndPageSize() {
        IllegalArgumentException fewPages = assertThrows(IllegalArgumentException.class,
                () -> SegmentPool.builder().pageSize(8192).chunkSize(32768).build());
        assertTrue(fewPages.getMessage().startsWith("chunkSize must be between 8 and 16384 pages of pageSize 8192"),
                fewPages.getMessage());
        assertTrue(fewPages.getMessage().endsWith("was 32768"), fewPages.getMessage());
        IllegalArgumentException manyPages = assertThrows(IllegalArgumentException.class,
                () -> SegmentPool.builder().pageSize(4096).chunkSize(1 << 27).build());
        assertTrue(manyPages.getMessage().startsWith("chunkSize must be"), manyPages.getMessage());
        IllegalArgumentException smallerThanPage = assertThrows(IllegalArgumentException.class,
                () -> SegmentPool.builder().pageSize(1 << 20).chunkSize(1 << 16).build());
        assertTrue(smallerThanPage.getMessage().startsWith("chunkSize must be"), smallerThanPage.getMessage());
    }

    @ParameterizedTest(name = "cache size {0}")
    @ValueSource(ints = {-1, 32769, Integer.MIN_VALUE, Integer.MAX_VALUE})
    void cacheSizes_outOf0To32768_areRejectedByName(int entries) {
        assertRejected("smallCacheSize", entries, b -> b.smallCacheSize(entries));
        assertRejected("normalCacheSize", entries, b -> b.normalCacheSize(entries));
    }

    @Test
    void maxCachedSize_negativeOrAboveTheChunkSize_isRejectedByName() {
        assertRejected("maxCachedSize", -1, b -> b.maxCachedSize(-1));
        assertRejected("maxCachedSize", Integer.MIN_VALUE, b -> b.maxCachedSize(Integer.MIN_VALUE));
        IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class,
                () -> SegmentPool.builder().pageSize(4096).chunkSize(65536).maxCachedSize(65537).build());
        assertEquals("maxCachedSize must be between 0 and chunkSize 65536, was 65537", thrown.getMessage());
    }

    @ParameterizedTest(name = "cacheTrimInterval({0})")
    @ValueSource(ints = {0, -1, Integer.MIN_VALUE})
    void cacheTrimInterval_belowOne_isRejectedByName(int interval) {
        assertRejected("cacheTrimInterval", interval, b -> b.cacheTrimInterval(interval));
    }

    @ParameterizedTest(name = "maxCachedBytesPerThread({0})")
    @ValueSource(longs = {-1, -4096, Long.MIN_VALUE})
    void maxCachedBytesPerThread_negative_isRejectedByName(long bytes) {
        assertRejected("maxCachedBytesPerThread", bytes, b -> b.maxCachedBytesPerThread(bytes));
    }

    @ParameterizedTest(name = "maxMemory({0})")
    @ValueSource(longs = {0, -1, 32767, Long.MIN_VALUE})
    void maxMemory_belowTheSmallestChunk_isRejectedByName(long bytes) {
        assertRejected("maxMemory", bytes, b -> b.maxMemory(bytes));
    }

    @Test
    void build_maxMemoryBelowTheChunkSize_isRejectedNamingMaxMemory() {
        IllegalArgumentException thrown = assertThrows(IllegalArgumentException.class,
                () -> SegmentPool.builder().maxMemory(1 << 20).build());
        assertEquals("maxMemory must be at least one chunk (chunkSize 4194304), was 1048576", thrown.getMessage());
    }

    @Test
    void decay_negativeOrAboveOneDay_isRejectedByName_andNullIsNullPointerException() {
        assertRejected("decay", Duration.ofNanos(-1), b -> b.decay(Duration.ofNanos(-1)));
        assertRejected("decay", Duration.ofDays(1).plusNanos(1), b -> b.decay(Duration.ofDays(1).plusNanos(1)));
        NullPointerException thrown = assertThrows(NullPointerException.class, () -> SegmentPool.builder().decay(null));
        assertEquals("decay", thrown.getMessage());
    }

    @Test
    void name_blankTooLongOrWithReservedCharacters_isRejectedByName_andNullIsNullPointerException() {
        for (String bad : new String[] {"", "  ", "a,b", "a=b", "a:b", "a\"b", "a*b", "a?b", "a\nb", "x".repeat(201)}) {
            assertRejected("name", '"' + bad + '"', b -> b.name(bad));
        }
        NullPointerException thrown = assertThrows(NullPointerException.class, () -> SegmentPool.builder().name(null));
        assertEquals("name", thrown.getMessage());
    }

    @Test
    void rejectedSetting_leavesTheBuilderAsItWas() {
        SegmentPool.Builder builder = SegmentPool.builder().name("kept").pageSize(4096).chunkSize(65536).arenas(3)
                .decay(Duration.ofSeconds(2));
        assertThrows(IllegalArgumentException.class, () -> builder.pageSize(3));
        assertThrows(IllegalArgumentException.class, () -> builder.chunkSize(-1));
        assertThrows(IllegalArgumentException.class, () -> builder.arenas(0));
        assertThrows(IllegalArgumentException.class, () -> builder.decay(Duration.ofDays(2)));
        assertThrows(IllegalArgumentException.class, () -> builder.name(""));
        assertThrows(IllegalArgumentException.class, () -> builder.maxMemory(0));
        try (SegmentPool pool = builder.build()) {
            assertEquals("kept", pool.name());
            assertEquals(4096, pool.sizeClasses().pageSize);
            assertEquals(65536, pool.sizeClasses().chunkSize);
            assertEquals(3, pool.arenas().length);
            assertEquals(Duration.ofSeconds(2), pool.decay());
            assertEquals(Long.MAX_VALUE, pool.arenas()[0].memory.limit);
        }
    }

    @Test
    void settingsAtTheEdgesOfTheirRanges_areAccepted() {
        try (SegmentPool pool = SegmentPool.builder().arenas(1).pageSize(4096).chunkSize(32768).smallCacheSize(0)
                .normalCacheSize(32768).maxCachedSize(32768).cacheTrimInterval(1).maxMemory(32768)
                .decay(Duration.ZERO).name("x".repeat(200)).build()) {
            assertEquals(8, pool.sizeClasses().chunkPages);
            pool.free(pool.allocate(32768));
        }
        try (SegmentPool pool = SegmentPool.builder().arenas(1024).pageSize(1 << 20).chunkSize(1 << 30)
                .decay(Duration.ofDays(1)).build()) {
            assertEquals(1024, pool.arenas().length);
            assertEquals(1024, pool.sizeClasses().chunkPages);
        }
        try (SegmentPool pool = SegmentPool.builder().pageSize(4096).chunkSize(1 << 26).build()) {
            assertEquals(16384, pool.sizeClasses().chunkPages);
        }
    }

    @Test
    void defaults_areThoseTheDesignNames() {
        try (SegmentPool pool = SegmentPool.create()) {
            assertEquals(8192, pool.sizeClasses().pageSize);
            assertEquals(4 << 20, pool.sizeClasses().chunkSize);
            assertEquals(2 * Runtime.getRuntime().availableProcessors(), pool.arenas().length);
            assertEquals(Duration.ofSeconds(1), pool.decay());
            assertEquals(4L << 20, ((PoolBuilder) SegmentPool.builder()).settings().maxCachedBytesPerThread());
            assertTrue(pool.name().startsWith("segpool-"), pool.name());
            assertTrue(pool.dumpStats().contains("SegmentPool '" + pool.name() + "'"));
        }
        try (SegmentPool limited = SegmentPool.builder().maxMemory(8 << 20).build()) {
            assertEquals(1, limited.arenas().length, "a small limit gives fewer arenas");
        }
    }
}
