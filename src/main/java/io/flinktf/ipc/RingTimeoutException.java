package io.flinktf.ipc;

import java.nio.file.Path;

/** A bounded wait (for space, or for the reader to drain at a checkpoint) ran out. */
public class RingTimeoutException extends RingException {
    private static final long serialVersionUID = 1L;

    public RingTimeoutException(Path ring, String message) {
        super(ring, message);
    }
}
