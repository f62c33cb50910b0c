package io.flinktf.ipc;

import java.nio.file.Path;

/** A record is larger than the ring's max_record; nothing was written. */
public class RecordTooLargeException extends RingException {
    private static final long serialVersionUID = 1L;

    public RecordTooLargeException(Path ring, String message) {
        super(ring, message);
    }
}
