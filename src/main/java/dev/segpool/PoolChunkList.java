package dev.segpool;

/**
 * Chunks of one arena whose usage lies in one band. The bands overlap (qInit below 25%, q000 1-50%,
 * q025 25-75%, q050 50-100%, q075 75-100%, q100 full), so a chunk near a border does not hop back and
 * forth; a chunk moves up when its usage reaches {@link #maxUsage} and down when it falls below
 * {@link #minUsage}. The bands are what metrics and reports show; where a run goes is decided across
 * all chunks by the arena's {@link RunPlacement}. A chunk with no page in use moves to the arena's
 * list of empty chunks, from which it is released after the decay time (or by {@code trim()}) unless
 * a run is placed in it first.
 *
 * <p>Protocol: guarded by the arena lock, like the chunks' links.
 */
final class PoolChunkList {
    final String name;
    final int minUsage;
    final int maxUsage;
    PoolChunkList next;
    PoolChunkList prev;
    private PoolChunk head;

    PoolChunkList(String name, int minUsage, int maxUsage) {
        this.name = name;
        this.minUsage = minUsage;
        this.maxUsage = maxUsage;
    }

    PoolChunk head() {
        return head;
    }

    void add(PoolChunk chunk) {
        chunk.list = this;
        chunk.prev = null;
        chunk.next = head;
        if (head != null) {
            head.prev = chunk;
        }
        head = chunk;
    }

    void remove(PoolChunk chunk) {
        assert chunk.list == this;
        if (chunk.prev != null) {
            chunk.prev.next = chunk.next;
        } else {
            head = chunk.next;
        }
        if (chunk.next != null) {
            chunk.next.prev = chunk.prev;
        }
        chunk.prev = chunk.next = null;
        chunk.list = null;
    }

    /** The list a chunk of usage {@code usage} moves to, starting from this one. */
    PoolChunkList target(int usage) {
        PoolChunkList list = this;
        while (usage >= list.maxUsage && list.next != null) {
            list = list.next;
        }
        while (usage < list.minUsage && list.prev != null) {
            list = list.prev;
        }
        return list;
    }
}
