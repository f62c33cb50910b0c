package io.flinktf.ipc.arrow;

import java.io.Serializable;
import java.time.Duration;

/**
 * When the Rows gathered so far become one Arrow record batch: once it holds {@code batchRows}
 * rows, once its buffers reach {@code batchBytes}, once its first row is {@code linger} old (so a
 * slow stream still flows), before every checkpoint barrier, and at end of input.
 *
 * <p>{@code batchBytes} is a soft limit (the row that reaches it stays in the batch); keep it at
 * most a quarter of the ring's {@code max_record} (capacity / 4), so that one batch never fails
 * as too large. Every setter checks its argument.
 *
 * <p>{@code batchSize}: the reader's (TensorFlow's) batch size. Then a batch is cut only where the
 * stream's row count is a multiple of it, so every record holds whole reader batches and the reader
 * hands them on without re-batching: {@code batchRows} must be a multiple of it (default: the
 * largest multiple up to 1024), {@code batchBytes} waits for the next multiple, and the batch after
 * a short one (linger, checkpoint) is shortened to bring the stream back in step. The codec header
 * carries it ({@code {"batch_size": n}}), so {@code ring_dataset} takes it from the stream.
 */
public final class ArrowBatchOptions implements Serializable {
    private static final long serialVersionUID = 1L;

    private static final int DEFAULT_BATCH_ROWS = 1024;

    private int batchRows; // 0: the default (1024, or whole batches of batchSize up to it)
    private int batchSize; // 0: none
    private long batchBytes = 4L << 20;
    private long lingerMillis = 100;

    public static ArrowBatchOptions defaults() {
        return new ArrowBatchOptions();
    }

    /** Most rows in one batch (default 1024; with a batch size, a multiple of it). */
    public ArrowBatchOptions setBatchRows(int rows) {
        if (rows < 1) {
            throw new IllegalArgumentException("ArrowBatchOptions: batchRows must be >= 1, got " + rows);
        }
        checkMultiple(rows, batchSize);
        this.batchRows = rows;
        return this;
    }

    /** The reader's batch size: batches are cut at multiples of it (see the class comment). */
    public ArrowBatchOptions setBatchSize(int size) {
        if (size < 1) {
            throw new IllegalArgumentException("ArrowBatchOptions: batchSize must be >= 1, got " + size);
        }
        checkMultiple(batchRows, size);
        this.batchSize = size;
        return this;
    }

    private static void checkMultiple(int rows, int size) {
        if (rows != 0 && size != 0 && rows % size != 0) {
            throw new IllegalArgumentException("ArrowBatchOptions: batchRows must be a multiple of batchSize, got "
                    + rows + " rows for batch size " + size + " (" + Math.max(size, rows / size * size)
                    + " would do)");
        }
    }

    /** {@code batchRows} when none is set: 1024, or the largest multiple of {@code batchSize} up to it. */
    public static int defaultBatchRows(int batchSize) {
        return batchSize < 1 ? DEFAULT_BATCH_ROWS : batchSize * Math.max(1, DEFAULT_BATCH_ROWS / batchSize);
    }

    /**
     * Whether the batch being built is cut now: it holds {@code rows} rows and {@code bytes} buffer
     * bytes, and the stream has had {@code streamRows} rows so far, this batch's included. With a
     * batch size the cut falls only where {@code streamRows} is a multiple of it, and the rows left
     * over by a short batch count towards the row limit (so the stream comes back in step).
     */
    public static boolean full(int batchSize, int batchRows, long batchBytes, long streamRows, int rows, long bytes) {
        if (batchSize < 1) {
            return rows >= batchRows || bytes >= batchBytes;
        }
        if (streamRows % batchSize != 0) {
            return false;
        }
        return rows + (streamRows - rows) % batchSize >= batchRows || bytes >= batchBytes;
    }

    /** {@link #full(int, int, long, long, int, long)} with these options. */
    public boolean full(long streamRows, int rows, long bytes) {
        return full(batchSize, batchRows(), batchBytes, streamRows, rows, bytes);
    }

    /** The {@code arrow} codec header's parameters (JSON): {@code {"batch_size": n}} or {@code {}}. */
    public static String codecParams(int batchSize) {
        return batchSize < 1 ? "{}" : "{\"batch_size\": " + batchSize + "}";
    }

    /** Buffer bytes at which a batch is cut (default 4 MiB, at least 64). */
    public ArrowBatchOptions setBatchBytes(long bytes) {
        if (bytes < 64 || bytes > (1L << 30)) {
            throw new IllegalArgumentException("ArrowBatchOptions: batchBytes must be between 64 and 2^30, got " + bytes);
        }
        this.batchBytes = bytes;
        return this;
    }

    /** Longest a row waits in an unfinished batch (default 100 ms, at least 1 ms). */
    public ArrowBatchOptions setLinger(Duration linger) {
        if (linger == null || linger.toMillis() < 1) {
            throw new IllegalArgumentException("ArrowBatchOptions: linger must be at least 1 ms, got " + linger);
        }
        this.lingerMillis = linger.toMillis();
        return this;
    }

    public ArrowBatchOptions setLingerMillis(long millis) {
        if (millis < 1) {
            throw new IllegalArgumentException("ArrowBatchOptions: linger must be at least 1 ms, got " + millis + " ms");
        }
        this.lingerMillis = millis;
        return this;
    }

    public int batchRows() {
        return batchRows != 0 ? batchRows : defaultBatchRows(batchSize);
    }

    /** 0: none set. */
    public int batchSize() {
        return batchSize;
    }

    public long batchBytes() {
        return batchBytes;
    }

    public long lingerMillis() {
        return lingerMillis;
    }

    ArrowBatchOptions copy() {
        ArrowBatchOptions o = new ArrowBatchOptions();
        o.batchRows = batchRows;
        o.batchSize = batchSize;
        o.batchBytes = batchBytes;
        o.lingerMillis = lingerMillis;
        return o;
    }

    @Override
    public String toString() {
        return "ArrowBatchOptions{rows=" + batchRows() + ", batchSize=" + batchSize + ", bytes=" + batchBytes + ", linger=" + lingerMillis + " ms}";
    }
}
