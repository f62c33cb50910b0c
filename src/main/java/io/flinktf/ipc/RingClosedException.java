package io.flinktf.ipc;

import java.nio.file.Path;

/** The reader closed the ring: nothing written now would be read. */
public class RingClosedException extends RingException {
    private static final long serialVersionUID = 1L;

    public RingClosedException(Path ring, String message) {
        super(ring, message);
    }
}
