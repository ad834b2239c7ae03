package dev.segpool;

import java.lang.foreign.MemorySegment;

/**
 * Every exception segpool throws at its user is built here, so that messages say the same thing the
 * same way: what was wrong, with the values involved, and what the caller can do.
 */
final class Errors {
    private Errors() {}

    static String hex(long address) {
        return "0x" + Long.toHexString(address);
    }

    static IllegalArgumentException badSize(long byteSize) {
        return new IllegalArgumentException("byteSize must be >= 0, was " + byteSize);
    }

    static IllegalArgumentException badAlignment(long byteAlignment) {
        return new IllegalArgumentException("byteAlignment must be a power of two > 0, was " + byteAlignment);
    }

    static IllegalArgumentException badSetting(String setting, Object value, String allowed) {
        return new IllegalArgumentException(setting + " must be " + allowed + ", was " + value);
    }

    static IllegalStateException closed(String pool) {
        return new IllegalStateException("pool '" + pool + "' is closed");
    }

    static IllegalArgumentException heapSegment(String pool, MemorySegment segment) {
        return new IllegalArgumentException("cannot free a heap segment (" + segment
                + ") into pool '" + pool + "': it frees only native segments it allocated");
    }

    static IllegalArgumentException foreign(String pool, long address) {
        return new IllegalArgumentException("segment at " + hex(address)
                + " was not allocated by pool '" + pool + "' (or was freed and its memory released)");
    }

    static IllegalArgumentException notLive(String pool, long address, boolean wasFreed) {
        return new IllegalArgumentException(wasFreed
                ? "segment at " + hex(address) + " of pool '" + pool + "' was already freed"
                : "no live allocation of pool '" + pool + "' starts at " + hex(address)
                        + ": it was already freed, or the address points inside an allocation");
    }

    static IllegalArgumentException interior(String pool, long address, long start, long byteSize) {
        return new IllegalArgumentException("address " + hex(address) + " points inside the " + byteSize
                + "-byte unit of pool '" + pool + "' that starts at " + hex(start)
                + ": free the segment that allocate returned, not a slice of it");
    }

    static IllegalArgumentException arenaOwned(String pool, long address) {
        return new IllegalArgumentException("segment at " + hex(address) + " belongs to an Arena of pool '"
                + pool + "': it is given back when that arena is closed, not by free");
    }

    /**
     * Why a live unit cannot be freed (or reallocated) by {@code by} (null: the pool itself): it is in
     * {@code state}, owned by {@code holder} when a budget holds it.
     */
    static IllegalArgumentException notFreeable(String pool, long address, MemoryBudget by, byte state,
                                                MemoryBudget holder) {
        if (state == UnitState.ARENA || state == UnitState.ORPHANED) {
            return arenaOwned(pool, address);
        }
        if (state == UnitState.BUDGET && holder != null && holder != by) {
            return new IllegalArgumentException(by == null
                    ? "segment at " + hex(address) + " belongs to budget '" + holder.path() + "' of pool '" + pool
                            + "': free it through that budget"
                    : "segment at " + hex(address) + " was allocated by budget '" + holder.path()
                            + "', not by budget '" + by.path() + "': free it through the budget that allocated it");
        }
        if (state == UnitState.LIVE && by != null) {
            return new IllegalArgumentException("segment at " + hex(address) + " was allocated by pool '" + pool
                    + "' itself, not by budget '" + by.path() + "': free it through the pool");
        }
        return notLive(pool, address, true);
    }

    static IllegalStateException budgetClosed(MemoryBudget budget) {
        return new IllegalStateException("budget '" + budget.path() + "' is closed");
    }

    static MemoryLimitExceededException budgetLimit(MemoryBudget refused, long used, long request) {
        return new MemoryLimitExceededException("budget '" + refused.path() + "' cannot take " + request
                + " more bytes: its limit is " + refused.limit + " bytes and it holds " + used + " bytes",
                refused.limit, used, request);
    }

    static IllegalArgumentException staleSegment(String pool, long address) {
        return new IllegalArgumentException("segment at " + hex(address) + " is no longer alive (the arena or"
                + " pool it came from was closed, or it was freed and its memory released); pool '" + pool
                + "' cannot take it back");
    }

    static IllegalStateException arenaClosed(String pool) {
        return new IllegalStateException("this Arena of pool '" + pool + "' is already closed");
    }

    static WrongThreadException wrongThread(String pool, Thread owner) {
        return new WrongThreadException("this Arena of pool '" + pool + "' is confined to thread '"
                + owner.getName() + "'; it was used from thread '" + Thread.currentThread().getName() + "'");
    }

    static MemoryLimitExceededException limit(String pool, long limit, long reserved, long request) {
        return new MemoryLimitExceededException("pool '" + pool + "' cannot reserve " + request
                + " more bytes: its limit (maxMemory) is " + limit + " bytes and it holds " + reserved
                + " bytes", limit, reserved, request);
    }
}
