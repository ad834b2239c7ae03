/**
 * segpool: a pooled off-heap memory allocator built on {@code java.lang.foreign}.
 *
 * <p>The module exports {@code dev.segpool} only; every part of the allocator behind
 * {@link dev.segpool.SegmentPool} is package-private.
 */
module dev.segpool {
    requires java.management;
    requires jdk.jfr;

    exports dev.segpool;
}
