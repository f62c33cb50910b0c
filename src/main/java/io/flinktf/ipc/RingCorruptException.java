package io.flinktf.ipc;

import java.nio.file.Path;

/** The shared header holds values the format forbids; the message gives them. */
public class RingCorruptException extends RingException {
    private static final long serialVersionUID = 1L;

    public RingCorruptException(Path ring, String message) {
        super(ring, message);
    }
}
