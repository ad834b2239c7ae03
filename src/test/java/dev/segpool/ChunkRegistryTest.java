package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ChunkRegistryTest {
    private static final int CHUNK_SIZE = 65536;

    private final NativeMemory memory = new NativeMemory("registry-test", CHUNK_SIZE, Long.MAX_VALUE, false, new Lifecycle());
    private final PoolArena arena = new PoolArena(0, new SizeClasses(4096, CHUNK_SIZE), memory, 0);

    /** A chunk object at a made-up chunk-aligned address; the registry only reads its base. */
    private PoolChunk chunkAt(long key) {
        return new PoolChunk(arena, null, MemorySegment.ofAddress(key * CHUNK_SIZE));
    }

    @Test
    void find_resolvesEveryAddressOfARegisteredChunk_andNothingElse() {
        ChunkRegistry registry = new ChunkRegistry(CHUNK_SIZE);
        PoolChunk chunk = chunkAt(1000);
        registry.add(chunk);
        assertSame(chunk, registry.find(chunk.base));
        assertSame(chunk, registry.find(chunk.base + 1));
        assertSame(chunk, registry.find(chunk.base + CHUNK_SIZE - 1));
        assertNull(registry.find(chunk.base - 1));
        assertNull(registry.find(chunk.base + CHUNK_SIZE));
        assertNull(registry.find(0));
        assertEquals(1, registry.size());
    }

    /**
     * A chunk sits at its home slot ({@code key & mask}) unless another took it; then on its probe
     * chain. With two chunks the table has 16 slots: keys 5, 21 and 37 share home slot 5.
     */
    @Test
    void find_chunkDisplacedFromItsHomeSlot_isFound_andAnAbsentKeyWhoseHomeIsTaken_isNot() {
        ChunkRegistry registry = new ChunkRegistry(CHUNK_SIZE);
        PoolChunk atHome = chunkAt(5);
        PoolChunk displaced = chunkAt(21);
        registry.add(atHome);
        registry.add(displaced);
        assertSame(atHome, registry.find(atHome.base + 17));
        assertSame(displaced, registry.find(displaced.base + CHUNK_SIZE - 1));
        assertNull(registry.find(37L * CHUNK_SIZE), "same home slot, never added");
        assertNull(registry.find(6L * CHUNK_SIZE), "the next slot's key, never added");
        registry.remove(atHome);
        assertNull(registry.find(atHome.base));
        assertSame(displaced, registry.find(displaced.base), "at home once the other is gone");
    }

    @Test
    void addAndRemove_manyChunks_includingNeighboursAndCollidingKeys_keepsLookupsExact() {
        ChunkRegistry registry = new ChunkRegistry(CHUNK_SIZE);
        List<PoolChunk> chunks = new ArrayList<>();
        for (long key = 1; key <= 300; key++) {
            // neighbours (consecutive keys) and keys far apart, so that the table probes and grows
            PoolChunk chunk = chunkAt(key % 2 == 0 ? key : key << 20);
            chunks.add(chunk);
            registry.add(chunk);
        }
        assertEquals(300, registry.size());
        for (PoolChunk chunk : chunks) {
            assertSame(chunk, registry.find(chunk.base + CHUNK_SIZE / 2));
        }
        List<PoolChunk> removed = new ArrayList<>();
        for (int i = 0; i < chunks.size(); i += 3) {
            registry.remove(chunks.get(i));
            removed.add(chunks.get(i));
        }
        for (PoolChunk chunk : chunks) {
            if (removed.contains(chunk)) {
                assertNull(registry.find(chunk.base), "removed chunk still found");
            } else {
                assertSame(chunk, registry.find(chunk.base + CHUNK_SIZE - 1));
            }
        }
        assertEquals(300 - removed.size(), registry.size());
        assertEquals(300 - removed.size(), registry.all().size());
        for (PoolChunk chunk : chunks) {
            if (!removed.contains(chunk)) {
                registry.remove(chunk);
            }
        }
        assertEquals(0, registry.size());
        for (PoolChunk chunk : chunks) {
            assertNull(registry.find(chunk.base));
        }
    }

    @Test
    void remove_ofAnUnknownChunk_leavesTheOthers() {
        ChunkRegistry registry = new ChunkRegistry(CHUNK_SIZE);
        PoolChunk kept = chunkAt(7);
        registry.add(kept);
        registry.remove(chunkAt(8));
        assertSame(kept, registry.find(kept.base));
        assertEquals(1, registry.size());
    }
}
