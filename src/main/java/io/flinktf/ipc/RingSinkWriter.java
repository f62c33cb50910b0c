package io.flinktf.ipc;

import io.flinktf.ipc.internal.StaleFiles;
import io.flinktf.ipc.internal.WorkerOptions;
import io.flinktf.ipc.internal.WorkerSupervisor;
import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.List;
import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.groups.SinkWriterMetricGroup;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One subtask's writer of {@link RingSink}. Everything runs in the task's mailbox thread: {@code
 * write}, {@code flush}, {@code close} and the timers (ProcessingTimeService callbacks), so the
 * ring is only ever touched by one thread. The metric gauges read the shared header, which is safe
 * from the reporter thread. With a worker entry, a {@link WorkerSupervisor} starts and watches the
 * worker from its own thread; its first error is rethrown here (write, flush, the watch timer, and
 * between the slices of a ring wait).
 */
final class RingSinkWriter<IN> implements SinkWriter<IN> {
    private static final Logger LOG = LoggerFactory.getLogger(RingSinkWriter.class);
    private final RingSink.Config<IN> config;
    private final Path dir;
    private final Path path;
    private final String who;
    private final RingWriter writer;
    private final WorkerSupervisor worker; // null without a worker entry
    private final ProcessingTimeService timers;
    private final Counter recordsOut;
    private final Counter bytesOut;
    private final long flushTimeoutNanos;
    private boolean timerArmed;
    private final RecordBatcher.Batch<IN> batch; // null: one record per element
    private long batchStart; // processing time of the open batch's first element
    private boolean lingerArmed;
    private boolean closed;

    RingSinkWriter(RingSink.Config<IN> config, WriterInitContext context, String workerPython,
            long flushTimeoutNanos) throws IOException {
        this.config = config;
        this.flushTimeoutNanos = flushTimeoutNanos;
        int subtask = context.getTaskInfo().getIndexOfThisSubtask();
        int attempt = context.getTaskInfo().getAttemptNumber();
        // A job's files live in a directory of its own (with workers); a restarted attempt gets a
        // fresh ring (and worker, heartbeat files) of its own.
        this.dir = config.ringDirectory(context.getJobInfo().getJobId().toString());
        this.path = RingPaths.ringPath(dir, config.name(), subtask, attempt);
        this.who = "RingSink '" + config.name() + "' subtask " + subtask + (attempt == 0 ? "" : " attempt " + attempt);
        RingPaths.ensureDirectories(config.baseDirectory(), dir);
        sweepStale();
        this.writer = createRing();
        writer.setBatch(config.batchRecords(), Math.max(config.capacity() / 8, config.align()));
        this.batch = config.batcher() == null ? null : config.batcher().open(writer, config.writeTimeoutNanos());
        this.timers = context.getProcessingTimeService();
        this.worker = config.worker() == null ? null : startWorker(subtask, attempt, workerPython);

        SinkWriterMetricGroup metrics = context.metricGroup();
        this.recordsOut = metrics.getNumRecordsSendCounter();
        this.bytesOut = metrics.getNumBytesSendCounter();
        metrics.gauge("ringFill", (Gauge<Double>) writer::fill);
        metrics.gauge("ringFullWaits", (Gauge<Long>) writer::fullWaits);
        metrics.gauge("ringTimeBlockedFullMs", (Gauge<Long>) () -> writer.fullWaitNanos() / 1_000_000L);
    }

    private WorkerSupervisor startWorker(int subtask, int attempt, String python) throws IOException {
        WorkerOptions options = config.worker().withPython(python);
        WorkerSupervisor.Task task = new WorkerSupervisor.Task("worker", subtask, attempt,
                path.resolveSibling(stem(path)))
                .ring(path)
                .checkpointDir(options.checkpointDir() == null ? null
                        : Paths.get(options.checkpointDir(), Integer.toString(subtask)).toString())
                .who(who)
                .progress(writer::recordsWritten);
        WorkerSupervisor w;
        try {
            w = WorkerSupervisor.start(options, task);
        } catch (IOException e) {
            writer.abort();
            writer.detachAndRemove();
            throw e;
        }
        // Waits on a full ring (or a checkpoint drain) end as soon as the monitor finds the worker
        // hung; a dead worker is also seen by the ring's own pid check.
        writer.setWaitCheck(w::check);
        // The monitor runs off the mailbox thread; this timer brings its verdict into the task
        // even when no record arrives (an idle source).
        armWatchTimer();
        return w;
    }

    /** {@code <stem>} of {@code <stem>.ring}: the base of the ring's companion files. */
    private static String stem(Path ring) {
        String f = ring.getFileName().toString();
        return f.endsWith(".ring") ? f.substring(0, f.length() - ".ring".length()) : f;
    }

    private void armWatchTimer() {
        long period = Math.max(1, config.worker().heartbeatIntervalNanos() / 1_000_000L);
        timers.registerTimer(timers.getCurrentProcessingTime() + period, time -> {
            if (!closed && !writer.isFinished()) {
                worker.check();
                armWatchTimer();
            }
        });
    }

    /**
     * Removes what processes that are gone left in the ring directory (a SIGKILLed TaskManager runs
     * no cleanup): on every start of a writer, so a new attempt or a new job finds a clean directory.
     */
    private void sweepStale() {
        List<StaleFiles.Removed> removed = StaleFiles.sweep(config.baseDirectory(), dir);
        for (StaleFiles.Removed r : removed) {
            LOG.info("{}: removed stale ring files whose processes are gone: {}", who, r);
        }
    }

    private RingWriter createRing() throws IOException {
        try {
            return RingWriter.create(path, config.capacity(), config.align());
        } catch (FileAlreadyExistsException e) {
            if (!config.replaceStale()) {
                throw new IOException(who + ": ring file already exists (replaceStale is off)", e);
            }
            try {
                RingWriter.removeStale(path);
                LOG.info("{}: replaced the stale ring {} (its writer is gone)", who, path);
                return RingWriter.create(path, config.capacity(), config.align());
            } catch (IOException e2) {
                throw new IOException(who + ": cannot create the ring: " + e2.getMessage(), e2);
            }
        } catch (IOException e) {
            throw new IOException(who + ": cannot create the ring: " + e.getMessage(), e);
        }
    }

    @Override
    public void write(IN element, Context context) throws IOException, InterruptedException {
        if (worker != null) {
            worker.check(); // one volatile load
        }
        if (batch != null) {
            writeBatched(element);
            return;
        }
        int len;
        try {
            len = writer.write(element, config.encoder(), config.writeTimeoutNanos());
        } catch (RingException e) {
            throw failure("write failed", e);
        }
        recordsOut.inc();
        bytesOut.inc(len);
        if (!timerArmed && writer.pendingRecords() > 0) {
            // Records that wait for a full batch are published at most publishInterval later.
            timerArmed = true;
            timers.registerTimer(timers.getCurrentProcessingTime() + config.publishIntervalMillis(),
                    time -> {
                        timerArmed = false;
                        if (!closed && !writer.isFinished()) {
                            writer.publish();
                        }
                    });
        }
    }

    private void writeBatched(IN element) throws IOException, InterruptedException {
        boolean full;
        try {
            full = batch.add(element);
        } catch (RingException e) {
            throw failure("write failed", e);
        }
        if (batch.rows() == 1) {
            batchStart = timers.getCurrentProcessingTime();
            if (!lingerArmed) {
                lingerArmed = true;
                timers.registerTimer(batchStart + config.batcher().lingerMillis(), this::onLinger);
            }
        }
        if (full) {
            cutBatch();
        }
    }

    /** The linger timer: cuts the batch whose first element waited long enough. */
    private void onLinger(long time) throws IOException, InterruptedException {
        lingerArmed = false;
        if (closed || writer.isFinished() || batch.rows() == 0) {
            return;
        }
        long due = batchStart + config.batcher().lingerMillis();
        if (time >= due) {
            cutBatch();
        } else { // the batch that armed this timer was cut already; the open one is younger
            lingerArmed = true;
            timers.registerTimer(due, this::onLinger);
        }
    }

    /** Writes the open batch (if any) as one record and publishes it. */
    private void cutBatch() throws IOException, InterruptedException {
        int len;
        try {
            len = batch.cut();
        } catch (RingException e) {
            throw failure("write failed", e);
        }
        if (len > 0) {
            recordsOut.inc();
            bytesOut.inc(len);
            writer.publish();
        }
    }

    @Override
    public void flush(boolean endOfInput) throws IOException, InterruptedException {
        if (writer.isFinished()) {
            return;
        }
        if (worker != null) {
            worker.check();
        }
        if (batch != null) {
            cutBatch(); // a completed checkpoint (or the end) means the reader has every element
        }
        if (endOfInput) {
            writer.finish(); // the reader drains what is left, then sees end of stream
            if (worker != null) {
                worker.awaitExit(); // success is the worker's exit 0 after reading it all
            }
            return;
        }
        try {
            // Checkpoint: a completed checkpoint means the reader has every record (at-least-once).
            writer.flush(flushTimeoutNanos);
        } catch (RingTimeoutException e) {
            throw flushTimedOut(e);
        } catch (RingException e) {
            throw failure("checkpoint flush failed", e);
        }
    }

    /** The flush timeout's own error: the ring, the worker, the bytes it did not consume, the likely cause. */
    private IOException flushTimedOut(RingTimeoutException e) throws InterruptedException {
        long unconsumed = Math.max(0, writer.writePosition() - writer.readPosition());
        String reader;
        if (worker != null) {
            IOException cause = worker.explain();
            if (cause != null) {
                return failure("checkpoint flush failed", e);
            }
            reader = "its worker process " + worker.pid() + " (log " + worker.stderrFile() + ") still runs";
        } else {
            reader = "its reader still runs";
        }
        return new IOException(who + ": checkpoint flush timed out after " + flushTimeoutNanos / 1_000_000 + " ms: "
                + unconsumed + " bytes of ring " + path + " were not consumed; " + reader + " but did not release "
                + "them. A reader that keeps batches or arrays from the ring (a held record view) blocks every "
                + "checkpoint; a slow one needs a longer flush timeout (RingSink setFlushTimeout), below the "
                + "checkpoint timeout. (" + e.getMessage() + ")", e);
    }

    private IOException failure(String what, RingException e) throws InterruptedException {
        if (worker != null) {
            // "reader gone/closed" says less than the worker's exit status, stderr or heartbeat age.
            IOException cause = worker.explain();
            worker.checkUnrecoverable();
            if (cause != null) {
                IOException io = new IOException(cause.getMessage() + " (" + what + ": " + e.getMessage() + ")", e);
                io.addSuppressed(cause);
                return io;
            }
        }
        return new IOException(who + ": " + what + ": " + e.getMessage(), e);
    }

    @Override
    public void close() throws IOException {
        if (closed) {
            return;
        }
        closed = true;
        // Without flush(true) first this is a failure or a cancel: abort (writer_closed = 2), so the
        // reader does not take a partial stream for a complete one and can tell it from a slow job.
        writer.abort();
        if (worker == null) {
            writer.detach();
            return;
        }
        try {
            worker.stop(); // SIGTERM, SIGKILL after the grace period; heartbeat and context files go
        } finally {
            writer.detachAndRemove(); // the reader is gone for good: no ring left in /dev/shm
            sweepStale(); // and what a killed TaskManager of an earlier attempt left here
            RingPaths.removeIfEmpty(config.baseDirectory(), dir); // the last subtask of the job here
        }
    }

}
