package dev.segpool;

import java.util.ArrayList;
import java.util.List;

/**
 * The detailed, locked views of a {@link PoolArena}: its {@link PoolMetrics.ArenaMetrics}, the chunk
 * part of {@code dumpStats()}, the count of units still handed out (for the leak report) and, for
 * tests, a check of the chunks' bookkeeping. Each takes every lock of the arena (through
 * {@link PoolArena#locked}), so it sees a consistent arena and stops its allocations meanwhile: for
 * explicit requests only. The cheap, lock-free totals are {@link PoolArena#usedBytes()}.
 */
final class ArenaInspection {
    private ArenaInspection() {}

    /**
     * A snapshot of {@code arena}, where {@code parkedCaches} of the caches bound to it are parked
     * scoped caches, which no thread holds; takes every lock of the arena in turn.
     */
    static PoolMetrics.ArenaMetrics metrics(PoolArena arena, int parkedCaches) {
        SizeClasses sizeClasses = arena.sizeClasses;
        return arena.locked(() -> {
            long smallUsed = 0;
            long smallAllocations = 0;
            long smallDeallocations = 0;
            List<PoolMetrics.SizeClassMetrics> classes = new ArrayList<>();
            for (SubpageList list : arena.smallLists) {
                smallUsed += list.usedElements * list.elementSize;
                smallAllocations += list.allocations;
                smallDeallocations += list.deallocations;
                if (list.subpages > 0 || list.allocations > 0) {
                    long capacity = (long) list.subpages * sizeClasses.subpageElements(list.sizeIndex);
                    classes.add(new PoolMetrics.SizeClassMetrics(list.elementSize, list.subpages,
                            list.usedElements, capacity - list.usedElements, list.allocations, list.deallocations));
                }
            }
            long[] freeBytes = {0};
            List<PoolMetrics.ChunkListMetrics> chunkLists = new ArrayList<>();
            for (PoolChunkList list : arena.lists) {
                List<Integer> usages = new ArrayList<>();
                for (PoolChunk chunk = list.head(); chunk != null; chunk = chunk.next) {
                    usages.add(chunk.usage());
                    freeBytes[0] += chunk.freeRunBytes();
                    chunk.forEachSubpage(s -> freeBytes[0] += (long) s.available * s.elementSize);
                }
                chunkLists.add(new PoolMetrics.ChunkListMetrics(list.name, Math.max(0, list.minUsage),
                        Math.min(100, list.maxUsage), List.copyOf(usages)));
            }
            return new PoolMetrics.ArenaMetrics(arena.index, arena.boundCaches.get() - parkedCaches, smallUsed + arena.normalUsedBytes,
                    freeBytes[0], smallAllocations, smallDeallocations, arena.normalAllocations, arena.normalDeallocations,
                    List.copyOf(chunkLists), List.copyOf(classes));
        });
    }

    /** Appends the arena's chunks, with their usage and page maps, to a report. */
    static void describe(PoolArena arena, StringBuilder out, boolean pageMaps) {
        arena.locked(() -> {
            for (PoolChunkList list : arena.lists) {
                for (PoolChunk chunk = list.head(); chunk != null; chunk = chunk.next) {
                    out.append("    chunk ").append(Errors.hex(chunk.base)).append(' ').append(list.name)
                            .append(" usage ").append(chunk.usage()).append("% free pages ")
                            .append(chunk.freePages).append('/').append(chunk.chunkPages).append('\n');
                    if (pageMaps) {
                        String map = chunk.occupancyMap();
                        for (int i = 0; i < map.length(); i += 128) {
                            out.append("      ").append(map, i, Math.min(map.length(), i + 128)).append('\n');
                        }
                    }
                }
            }
            return null;
        });
    }

    /**
     * Adds to {@code counts} the units handed out and not given back: {@code [0]} live segments and
     * {@code [1]} their bytes, {@code [2]} units of pooled arenas and {@code [3]} their bytes (as set aside); with {@code only}, just
     * the units that budget owns, at 0 and 1.
     */
    static void countUnits(PoolArena arena, long[] counts, MemoryBudget only) {
        arena.locked(() -> {
            for (PoolChunkList list : arena.lists) {
                for (PoolChunk chunk = list.head(); chunk != null; chunk = chunk.next) {
                    chunk.countUnits(counts, only);
                }
            }
            return null;
        });
    }

    /** Checks the chunks' own bookkeeping against their queues; for tests. */
    static boolean isConsistent(PoolArena arena) {
        return arena.locked(() -> {
            for (PoolChunkList list : arena.lists) {
                for (PoolChunk chunk = list.head(); chunk != null; chunk = chunk.next) {
                    if (chunk.queuedFreePages() != chunk.freePages || chunk.list != list) {
                        return false;
                    }
                }
            }
            return true;
        });
    }
}
