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
 */
public final class ArrowBatchOptions implements Serializable {
    private static final long serialVersionUID = 1L;

    private int batchRows = 1024;
    private long batchBytes = 4L << 20;
    private long lingerMillis = 100;

    public static ArrowBatchOptions defaults() {
        return new ArrowBatchOptions();
    }

    /** Most rows in one batch (default 1024). */
    public ArrowBatchOptions setBatchRows(int rows) {
        if (rows < 1) {
            throw new IllegalArgumentException("ArrowBatchOptions: batchRows must be >= 1, got " + rows);
        }
        this.batchRows = rows;
        return this;
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
        return batchRows;
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
        o.batchBytes = batchBytes;
        o.lingerMillis = lingerMillis;
        return o;
    }

    @Override
    public String toString() {
        return "ArrowBatchOptions{rows=" + batchRows + ", bytes=" + batchBytes + ", linger=" + lingerMillis + " ms}";
    }
}
