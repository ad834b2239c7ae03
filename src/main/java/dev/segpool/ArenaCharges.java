package dev.segpool;

/**
 * The bytes a budget's {@link ScratchArena} holds charged to its budget, given back once: when the
 * arena closes, or by its leak watch when a sampled arena became unreachable. Synchronized, since that
 * watch runs on the cleaner's thread.
 */
final class ArenaCharges {
    final MemoryBudget budget;
    private long bytes;

    ArenaCharges(MemoryBudget budget) {
        this.budget = budget;
    }

    /** Charges the budget for a unit about to be taken (nothing is held yet); returns {@code unitBytes}. */
    long charge(long unitBytes) {
        budget.charge(unitBytes);
        return unitBytes;
    }

    /** A charged unit was taken: the arena holds it until it closes. */
    synchronized void held(long unitBytes) {
        bytes += unitBytes;
        budget.raisePeaks();
    }

    synchronized void giveBack() {
        budget.discharge(bytes);
        bytes = 0;
        budget.arenaClosed();
    }
}
