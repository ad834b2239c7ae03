package dev.segpool;

import java.util.ArrayList;
import java.util.List;

/**
 * What a pool tells about itself: the full {@link PoolMetrics} snapshot (each arena read with its
 * locks held), the {@code dumpStats()} text, and the leak report written when the pool closes.
 */
final class PoolReport {
    private PoolReport() {}

    /** A snapshot of the pool; takes each arena's locks in turn. */
    static PoolMetrics metrics(PoolCore core) {
        List<PoolMetrics.ArenaMetrics> arenaMetrics = new ArrayList<>(core.arenas.length);
        long used = 0;
        long free = 0;
        for (PoolArena arena : core.arenas) {
            PoolMetrics.ArenaMetrics m = ArenaInspection.metrics(arena, core.caches.parkedIn(arena));
            arenaMetrics.add(m);
            used += m.usedBytes();
            free += m.freeBytes();
        }
        ThreadCaches.Totals threads = core.caches.totals();
        NativeMemory memory = core.memory;
        long huge = memory.hugeBytes();
        return new PoolMetrics(core.name, memory.reservedBytes(), used + huge - threads.cachedBytes(),
                threads.cachedBytes(), free, threads.caches(), core.registry.size(), huge,
                memory.hugeAllocations.sum(), memory.hugeDeallocations.sum(), threads.hits(), threads.misses(),
                (int) Math.max(0, threads.openArenas()), core.nativeAccess, List.copyOf(arenaMetrics));
    }

    /** A human-readable report: the pool's settings and totals, its arenas, and each chunk's pages. */
    static String dumpStats(PoolCore core) {
        PoolMetrics m = metrics(core);
        SizeClasses sizeClasses = core.sizeClasses;
        long limit = core.memory.limit;
        StringBuilder out = new StringBuilder();
        out.append("SegmentPool '").append(core.name).append("': pageSize ").append(sizeClasses.pageSize)
                .append(", chunkSize ").append(core.chunkSize).append(", arenas ").append(core.arenas.length)
                .append(", maxMemory ").append(limit == Long.MAX_VALUE ? "none" : limit).append('\n');
        out.append("  reserved ").append(m.reservedBytes()).append(" B, active ").append(m.activeBytes())
                .append(" B, cached ").append(m.cachedBytes()).append(" B, free in chunks ").append(m.freeBytes())
                .append(" B, huge ").append(m.hugeBytes()).append(" B\n");
        out.append("  chunks ").append(m.chunks()).append(", thread caches ").append(m.threadCaches())
                .append(", cache hits ").append(m.cacheHits()).append(", misses ").append(m.cacheMisses())
                .append('\n');
        out.append("  pooled arenas open ").append(m.openArenas()).append(m.nativeAccess()
                ? "; native access: arena segments are bound to their arena's scope\n"
                : "; no native access: arena segments stay valid slices of their chunk until the pool closes\n");
        List<MemoryBudget> budgets = new ArrayList<>(core.budgets);
        budgets.sort(java.util.Comparator.comparing(MemoryBudget::path));
        out.append("  budgets open ").append(budgets.size()).append('\n');
        for (MemoryBudget b : budgets) {
            out.append("    '").append(b.path()).append("': used ").append(b.used()).append(" B of ")
                    .append(b.limit).append(" B, peak ").append(b.peak()).append(" B\n");
        }
        out.append("  page map: '.' free, '#' run in use, 's' subpage\n");
        for (int i = 0; i < core.arenas.length; i++) {
            PoolMetrics.ArenaMetrics a = m.arenas().get(i);
            out.append("  arena ").append(i).append(": caches ").append(a.threadCaches()).append(", used ")
                    .append(a.usedBytes()).append(" B, free ").append(a.freeBytes()).append(" B, chunks ")
                    .append(a.chunks()).append(", small ").append(a.smallAllocations()).append('/')
                    .append(a.smallDeallocations()).append(", normal ").append(a.normalAllocations()).append('/')
                    .append(a.normalDeallocations()).append(" (allocations/deallocations)\n");
            for (PoolMetrics.SizeClassMetrics c : a.sizeClasses()) {
                out.append("    small ").append(c.elementSize()).append(" B: subpages ").append(c.subpages())
                        .append(", elements used ").append(c.usedElements()).append(", free ")
                        .append(c.freeElements()).append('\n');
            }
            ArenaInspection.describe(core.arenas[i], out, true);
        }
        return out.toString();
    }

    /**
     * Warns, through {@code System.Logger} "dev.segpool", of budgets that still held memory (the lines
     * {@code budgets}), segments never freed and arenas never closed; at close, once no operation is
     * in flight.
     */
    static void reportLeaks(PoolCore core, List<String> budgets) {
        if (!budgets.isEmpty()) {
            LeakTracker.warn("pool '" + core.name + "' closed with budgets still holding memory: "
                    + String.join("; ", budgets), List.of());
        }
        long[] units = new long[4];
        for (PoolArena arena : core.arenas) {
            ArenaInspection.countUnits(arena, units, null);
        }
        for (NativeMemory.Huge huge : core.memory.liveHuge()) {
            int at = huge.state() == UnitState.ARENA ? 2 : 0; // LIVE or BUDGET: a segment never freed
            units[at]++;
            units[at + 1] += huge.unitBytes();
        }
        long arenasOpen = Math.max(0, core.caches.totals().openArenas());
        if (units[0] == 0 && arenasOpen == 0 && units[2] == 0) {
            return;
        }
        LeakTracker leaks = core.leaks;
        LeakTracker.warn("pool '" + core.name + "' closed with " + units[0] + " segments (" + units[1]
                + " bytes) never freed and " + arenasOpen + " arenas never closed (holding " + units[3]
                + " bytes" + (core.nativeAccess && units[2] > 0
                        ? ", kept mapped until those arenas close, since their segments are bound to them)"
                        : ")")
                + (leaks.enabled() ? "" : "; set leakDetection (or -Dsegpool.leakDetection=all) to see where"),
                leaks.liveSites());
    }
}
