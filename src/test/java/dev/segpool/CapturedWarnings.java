package dev.segpool;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * The warnings segpool logs (its {@code System.Logger} "dev.segpool", java.util.logging in the tests)
 * while this is open: {@link #start()} listens, {@link #close()} stops.
 */
final class CapturedWarnings implements AutoCloseable {
    private final Logger logger = Logger.getLogger("dev.segpool");
    private final List<String> messages = new CopyOnWriteArrayList<>();
    private final Handler handler = new Handler() {
        @Override
        public void publish(LogRecord record) {
            if (record.getLevel().intValue() >= Level.WARNING.intValue()) {
                messages.add(record.getMessage());
            }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };

    private CapturedWarnings() {}

    static CapturedWarnings start() {
        CapturedWarnings captured = new CapturedWarnings();
        captured.logger.addHandler(captured.handler);
        return captured;
    }

    /** The messages logged so far, oldest first. */
    List<String> messages() {
        return messages;
    }

    @Override
    public void close() {
        logger.removeHandler(handler);
    }
}
