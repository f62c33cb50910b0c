package io.flinktf.ipc;

import java.io.IOException;
import java.nio.file.Path;

/** A ring operation failed; the message names the ring file and the cause. */
public class RingException extends IOException {
    private static final long serialVersionUID = 1L;

    private final transient Path ring;

    public RingException(Path ring, String message) {
        super("ring " + ring + ": " + message);
        this.ring = ring;
    }

    public RingException(Path ring, String message, Throwable cause) {
        super("ring " + ring + ": " + message, cause);
        this.ring = ring;
    }

    /** The ring file the failure concerns. */
    public Path ring() {
        return ring;
    }
}
