package io.flinktf.ipc;

import java.io.Serializable;
import java.nio.ByteBuffer;

/**
 * Turns a stream element into one ring record, written in place into the ring (no intermediate
 * array). The writer first asks for the exact size, reserves a frame of that size, then calls
 * {@link #encode} with {@code target} positioned at the payload and its limit at the payload end;
 * the encoder must write exactly {@code encodedSize(value)} bytes with relative puts. The buffer's
 * byte order is little-endian.
 *
 * <p>Instances are serialized with the sink, and each parallel subtask gets its own copy, used by
 * one thread: an encoder may cache work between {@code encodedSize} and {@code encode}.
 */
public interface RecordEncoder<T> extends Serializable {
    /** Exact payload size of {@code value} in bytes. */
    int encodedSize(T value);

    /** Writes {@code value}'s payload at {@code target}'s position. */
    void encode(T value, ByteBuffer target);
}
