package dev.segpool.bench;

import io.netty.buffer.AdaptiveByteBufAllocator;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import io.netty.buffer.PoolArenaMetric;
import io.netty.buffer.PoolChunkListMetric;
import io.netty.buffer.PoolChunkMetric;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.ResourceLeakDetector;

/** Netty 4.2's pooled (jemalloc-like) and adaptive allocators, direct buffers only. */
final class NettyPeer extends Peer {
    private final ByteBufAllocator allocator;

    private NettyPeer(ByteBufAllocator allocator) {
        this.allocator = allocator;
    }

    static NettyPeer pooled() {
        ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.DISABLED);
        return new NettyPeer(new PooledByteBufAllocator(true,
                0, PooledByteBufAllocator.defaultNumDirectArena(),
                PooledByteBufAllocator.defaultPageSize(), PooledByteBufAllocator.defaultMaxOrder(),
                PooledByteBufAllocator.defaultSmallCacheSize(), PooledByteBufAllocator.defaultNormalCacheSize(),
                true));
    }

    static NettyPeer adaptive() {
        ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.DISABLED);
        return new NettyPeer(new AdaptiveByteBufAllocator(true, true));
    }

    /** The buffer's native address where Netty exposes it; its identity otherwise. */
    private static long address(ByteBuf buffer) {
        return buffer.hasMemoryAddress() ? buffer.memoryAddress() : System.identityHashCode(buffer);
    }

    @Override
    public long pair(int byteSize) {
        ByteBuf buffer = allocator.directBuffer(byteSize, byteSize);
        long address = address(buffer);
        buffer.release();
        return address;
    }

    @Override
    public long touchedPair(int byteSize) {
        ByteBuf buffer = allocator.directBuffer(byteSize, byteSize);
        for (int index = 0; index < byteSize; index += 4096) {
            buffer.setByte(index, 1);
        }
        long address = address(buffer);
        buffer.release();
        return address;
    }

    /**
     * A direct buffer of {@code fromSize} bytes with {@code toSize} as its maximum capacity, grown by
     * {@code ByteBuf.capacity(int)}: Netty keeps it in place only while its allocation has room, else
     * reallocates (allocate, copy, free).
     */
    @Override
    public long grow(int fromSize, int toSize) {
        ByteBuf buffer = allocator.directBuffer(fromSize, toSize);
        buffer.setByte(fromSize - 1, 1);
        for (long size = 2L * fromSize; size <= toSize; size *= 2) {
            buffer.capacity((int) size);
            buffer.setByte((int) size - 1, 1);
        }
        long address = address(buffer);
        buffer.release();
        return address;
    }

    @Override
    public Slots slots(int count) {
        ByteBuf[] live = new ByteBuf[count];
        return new Slots() {
            @Override
            public long allocate(int slot, int byteSize) {
                ByteBuf buffer = allocator.directBuffer(byteSize, byteSize);
                live[slot] = buffer;
                return address(buffer);
            }

            @Override
            public void free(int slot) {
                live[slot].release();
                live[slot] = null;
            }

            @Override
            public void touch(int slot, int byteSize) {
                ByteBuf buffer = live[slot];
                for (int index = 0; index < byteSize; index += 4096) {
                    buffer.setByte(index, 1);
                }
            }

            @Override
            public void clear() {
                for (int i = 0; i < live.length; i++) {
                    if (live[i] != null) {
                        free(i);
                    }
                }
            }
        };
    }

    @Override
    public Object allocateShared(int byteSize) {
        return allocator.directBuffer(byteSize, byteSize);
    }

    @Override
    public void free(Object buffer) {
        ((ByteBuf) buffer).release();
    }

    /** Direct memory of all chunks and huge buffers, as the allocator's metric reports it. */
    @Override
    public long reservedBytes() {
        return ((ByteBufAllocatorMetricProvider) allocator).metric().usedDirectMemory();
    }

    /**
     * For the pooled allocator: the free bytes of its direct arenas' chunks; the rest of its direct
     * memory is in use or in its thread caches, which Netty does not count apart.
     */
    @Override
    public Breakdown breakdown() {
        if (!(allocator instanceof PooledByteBufAllocator pooled)) {
            return Breakdown.NONE;
        }
        long reserved = pooled.metric().usedDirectMemory();
        long free = 0;
        for (PoolArenaMetric arena : pooled.metric().directArenas()) {
            for (PoolChunkListMetric list : arena.chunkLists()) {
                for (PoolChunkMetric chunk : list) {
                    free += chunk.freeBytes();
                }
            }
        }
        return new Breakdown(reserved, reserved - free, -1, free);
    }

    @Override
    public void trim() {
        if (allocator instanceof PooledByteBufAllocator pooled) {
            pooled.trimCurrentThreadCache();
        }
    }

    @Override
    public void close() {
        // Netty's allocators have no close; their chunks go with the JVM.
    }
}
