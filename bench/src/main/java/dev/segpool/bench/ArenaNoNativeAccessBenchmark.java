package dev.segpool.bench;

import org.openjdk.jmh.annotations.Fork;

/**
 * Pooled arenas against the JDK's ({@link AbstractArenaBenchmark}) in forks without
 * {@code --enable-native-access}: segpool cannot bind its arena segments to a scope (it may not call
 * {@code reinterpret}), so they stay slices of their chunk, valid until the pool closes. The JDK's arenas
 * need no native access. No {@code --illegal-native-access=deny} either: the fork runs with the JDK's
 * default (warn), which JMH and the JDK need nothing beyond.
 *
 * <p>{@code jvmArgs}, not {@code jvmArgsAppend}: forks would otherwise inherit the launching JVM's
 * flags, and the suite is launched with {@code --enable-native-access=ALL-UNNAMED}.
 */
@Fork(value = 1, jvmArgs = {"--sun-misc-unsafe-memory-access=allow"})
public class ArenaNoNativeAccessBenchmark extends AbstractArenaBenchmark {
    @Override
    boolean nativeAccess() {
        return false;
    }
}
