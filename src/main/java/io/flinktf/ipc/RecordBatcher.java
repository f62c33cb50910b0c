package io.flinktf.ipc;

import java.io.IOException;
import java.io.Serializable;

/**
 * Gathers stream elements into ring records itself, in place of a {@link RecordEncoder}: many
 * elements per record, encoded straight into the ring (e.g. Arrow batches, {@code
 * io.flinktf.ipc.arrow.ArrowRings}). {@link RingSink}'s writer opens one {@link Batch} per subtask
 * on its fresh ring, adds every element, cuts the batch when {@link Batch#add} says so, when its
 * first element is {@link #lingerMillis} old, before every checkpoint barrier and at end of input,
 * and publishes each batch at once. Everything runs in the task's mailbox thread.
 */
public interface RecordBatcher<T> extends Serializable {
    /** Starts the stream on a new ring (header records, if any) and returns its batch state. */
    Batch<T> open(RingWriter ring, long writeTimeoutNanos) throws IOException;

    /** How long the first element of a batch may wait for the batch to be cut. */
    long lingerMillis();

    /** One subtask's open batch; one thread. */
    interface Batch<T> {
        /** Adds one element; true when the batch is full and must be cut now. */
        boolean add(T element) throws IOException, InterruptedException;

        /** Elements in the open batch. */
        int rows();

        /** Writes the open batch as one ring record (staged) and starts a new one; its size, 0 if it was empty. */
        int cut() throws IOException, InterruptedException;
    }
}
