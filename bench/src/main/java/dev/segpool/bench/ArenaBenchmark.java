package dev.segpool.bench;

import org.openjdk.jmh.annotations.Fork;

/**
 * Pooled arenas against the JDK's ({@link AbstractArenaBenchmark}) with native access granted: segpool's
 * arena segments are bound to a scope that closing the arena ends.
 */
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class ArenaBenchmark extends AbstractArenaBenchmark {
    @Override
    boolean nativeAccess() {
        return true;
    }
}
