package io.flinktf.ipc.internal;

import io.flinktf.ipc.RingException;
import io.flinktf.ipc.RingPaths;
import io.flinktf.ipc.RingSink;
import io.flinktf.ipc.RingWriter;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Path;
import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.groups.SinkWriterMetricGroup;

/**
 * One subtask's writer of {@link RingSink}. Everything runs in the task's mailbox thread: {@code
 * write}, {@code flush}, {@code close} and the publish timer (a ProcessingTimeService callback),
 * so the ring is only ever touched by one thread. The metric gauges read the shared header, which
 * is safe from the reporter thread.
 */
public final class RingSinkWriter<IN> implements SinkWriter<IN> {
    private final RingSink.Config<IN> config;
    private final Path path;
    private final String who;
    private final RingWriter writer;
    private final ProcessingTimeService timers;
    private final Counter recordsOut;
    private final Counter bytesOut;
    private boolean timerArmed;
    private boolean closed;

    public RingSinkWriter(RingSink.Config<IN> config, WriterInitContext context) throws IOException {
        this.config = config;
        int subtask = context.getTaskInfo().getIndexOfThisSubtask();
        this.path = RingPaths.ringPath(config.baseDirectory(), config.name, subtask);
        this.who = "RingSink '" + config.name + "' subtask " + subtask;
        this.writer = createRing();
        writer.setBatch(config.batchRecords, Math.max(config.capacity / 8, config.align));
        this.timers = context.getProcessingTimeService();

        SinkWriterMetricGroup metrics = context.metricGroup();
        this.recordsOut = metrics.getNumRecordsSendCounter();
        this.bytesOut = metrics.getNumBytesSendCounter();
        metrics.gauge("ringFill", (Gauge<Double>) writer::fill);
        metrics.gauge("ringFullWaits", (Gauge<Long>) writer::fullWaits);
        metrics.gauge("ringTimeBlockedFullMs", (Gauge<Long>) () -> writer.fullWaitNanos() / 1_000_000L);
    }

    private RingWriter createRing() throws IOException {
        try {
            return RingWriter.create(path, config.capacity, config.align);
        } catch (FileAlreadyExistsException e) {
            if (!config.replaceStale) {
                throw new IOException(who + ": ring file already exists (replaceStale is off)", e);
            }
            try {
                RingWriter.removeStale(path);
                return RingWriter.create(path, config.capacity, config.align);
            } catch (IOException e2) {
                throw new IOException(who + ": cannot create the ring: " + e2.getMessage(), e2);
            }
        } catch (IOException e) {
            throw new IOException(who + ": cannot create the ring: " + e.getMessage(), e);
        }
    }

    @Override
    public void write(IN element, Context context) throws IOException, InterruptedException {
        int len;
        try {
            len = writer.write(element, config.encoder, config.writeTimeoutNanos);
        } catch (RingException e) {
            throw failure("write failed", e);
        }
        recordsOut.inc();
        bytesOut.inc(len);
        if (!timerArmed && writer.pendingRecords() > 0) {
            // Records that wait for a full batch are published at most publishInterval later.
            timerArmed = true;
            timers.registerTimer(timers.getCurrentProcessingTime() + config.publishIntervalMillis,
                    time -> {
                        timerArmed = false;
                        if (!closed && !writer.isFinished()) {
                            writer.publish();
                        }
                    });
        }
    }

    @Override
    public void flush(boolean endOfInput) throws IOException, InterruptedException {
        if (writer.isFinished()) {
            return;
        }
        if (endOfInput) {
            writer.finish(); // the reader drains what is left, then sees end of stream
            return;
        }
        try {
            // Checkpoint: a completed checkpoint means the reader has every record (at-least-once).
            writer.flush(config.flushTimeoutNanos);
        } catch (RingException e) {
            throw failure("checkpoint flush failed", e);
        }
    }

    private IOException failure(String what, RingException e) {
        return new IOException(who + ": " + what + ": " + e.getMessage(), e);
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        // Without flush(true) first this is a failure or a cancel: detach without end of stream,
        // so the reader does not take a partial stream for a complete one.
        writer.detach();
    }
}
