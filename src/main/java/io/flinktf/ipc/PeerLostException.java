package io.flinktf.ipc;

import java.nio.file.Path;

/** The reader's process is gone (its pid no longer runs with the recorded start time). */
public class PeerLostException extends RingException {
    private static final long serialVersionUID = 1L;

    public PeerLostException(Path ring, String message) {
        super(ring, message);
    }
}
