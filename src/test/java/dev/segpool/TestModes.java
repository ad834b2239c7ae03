package dev.segpool;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Which surefire run a test is in: with native access granted, or denied. */
final class TestModes {
    private TestModes() {}

    /** True in the run with native access; fails when the run's flags and the JVM disagree. */
    static boolean nativeAccess() {
        boolean expected = Boolean.parseBoolean(System.getProperty("segpool.test.nativeAccess", "false"));
        assertEquals(expected, SegmentPool.class.getModule().isNativeAccessEnabled(),
                "segpool.test.nativeAccess does not match the JVM's native access for this module");
        return expected;
    }
}
