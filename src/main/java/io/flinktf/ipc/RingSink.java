package io.flinktf.ipc;

import io.flinktf.ipc.internal.WorkerOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.streaming.api.connector.sink2.SupportsPreWriteTopology;
import org.apache.flink.streaming.api.datastream.DataStream;

/**
 * A Flink Sink V2 that writes each parallel subtask's records into its own shared-memory ring,
 * {@code <baseDir>/<name>-<subtask>.ring}, for a TensorFlow worker on the same host to read
 * zero-copy ({@code flinktf_ipc.RingReader}).
 *
 * <ul>
 *   <li>A full ring back-pressures the job: {@code write} waits in bounded, interruptible slices,
 *       up to the write timeout, then fails with an IOException naming the ring.
 *   <li>At a checkpoint ({@code flush(false)}) the writer waits until the reader has consumed every
 *       record written so far, up to the flush timeout: a completed checkpoint means the reader has
 *       the records (at-least-once). The flush timeout defaults to {@link #defaultFlushTimeoutNanos}
 *       of the job's checkpoint timeout, so that its own error (naming the ring, the worker and the
 *       bytes not consumed) comes before Flink's "Checkpoint expired".
 *   <li>At end of input ({@code flush(true)}) the ring is closed: the reader sees end of stream.
 *   <li>A reader that closed the ring, or whose process died, fails the task with an IOException
 *       naming the ring and the cause.
 * </ul>
 *
 * <pre>{@code
 * stream.sinkTo(RingSink.<byte[]>builder()
 *         .setName("features")
 *         .setEncoder(RecordEncoders.bytes())
 *         .build());
 * }</pre>
 *
 * <p>With {@link RingSinkBuilder#setWorkerEntry} each subtask also starts, watches and stops its TF worker
 * process ({@code python -P -m flinktf_ipc.worker}, docs/FORMAT.md "Worker context file"): a worker
 * that exits, or whose heartbeat grows older than the heartbeat timeout, is killed and fails the
 * task (Flink's restart strategy then starts a fresh attempt with a fresh ring and worker); a
 * failed or cancelled task aborts its ring, terminates its worker and removes its files.
 */
public final class RingSink<IN> implements Sink<IN>, SupportsPreWriteTopology<IN> {
    private static final long serialVersionUID = 1L;

    /** PyFlink's interpreter option: the default worker interpreter when the job sets it. */
    static final ConfigOption<String> PYTHON_EXECUTABLE =
            ConfigOptions.key("python.executable").stringType().noDefaultValue();

    private final Config<IN> config;
    /** python.executable of the job configuration, read when the job graph is built (client side). */
    private String jobPython;
    /** The job's checkpoint timeout, read when the job graph is built; 0: unknown. */
    private long jobCheckpointTimeoutNanos;
    /** The longest flush timeout by default, whatever the checkpoint timeout. */
    static final long MAX_DEFAULT_FLUSH_TIMEOUT_NANOS = Duration.ofMinutes(5).toNanos();

    RingSink(Config<IN> config) {
        this.config = config;
    }

    public static <IN> RingSinkBuilder<IN> builder() {
        return new RingSinkBuilder<>();
    }

    @Override
    public SinkWriter<IN> createWriter(WriterInitContext context) throws IOException {
        return new RingSinkWriter<>(config, context, workerPython(), flushTimeoutNanos());
    }

    /**
     * Adds nothing: reads the job's {@code python.executable} for the worker default, and its
     * checkpoint timeout for the flush timeout default.
     */
    @Override
    public DataStream<IN> addPreWriteTopology(DataStream<IN> input) {
        if (config.worker != null && config.worker.python() == null) {
            jobPython = input.getExecutionEnvironment().getConfiguration().getOptional(PYTHON_EXECUTABLE).orElse(null);
        }
        jobCheckpointTimeoutNanos = Math.max(0, input.getExecutionEnvironment().getCheckpointConfig()
                .getCheckpointTimeout()) * 1_000_000L;
        return input;
    }

    /**
     * The flush timeout a checkpoint waits for the reader: the configured one, else
     * {@link #defaultFlushTimeoutNanos} of the job's checkpoint timeout.
     */
    public long flushTimeoutNanos() {
        return config.flushTimeoutNanos > 0 ? config.flushTimeoutNanos : defaultFlushTimeoutNanos(jobCheckpointTimeoutNanos);
    }

    /**
     * Half the checkpoint timeout, at most 5 min (and 5 min when the checkpoint timeout is
     * unknown, 0): well below the checkpoint timeout (the barrier may reach the sink late), so a
     * reader that does not drain fails with this sink's error instead of Flink's "Checkpoint
     * expired before completing".
     */
    public static long defaultFlushTimeoutNanos(long checkpointTimeoutNanos) {
        if (checkpointTimeoutNanos <= 0) {
            return MAX_DEFAULT_FLUSH_TIMEOUT_NANOS;
        }
        return Math.max(1_000_000L, Math.min(MAX_DEFAULT_FLUSH_TIMEOUT_NANOS, checkpointTimeoutNanos / 2));
    }

    /** The interpreter workers run with: the configured one, else the job's python.executable, else python3. */
    public String workerPython() {
        if (config.worker != null && config.worker.python() != null) {
            return config.worker.python();
        }
        return jobPython != null && !jobPython.isEmpty() ? jobPython : "python3";
    }

    /**
     * The ring file of attempt {@code attempt} of {@code subtask} in job {@code jobId} (a per-job
     * directory, see {@link RingSinkBuilder#setPerJobDirectory}; jobId is ignored without one).
     */
    public Path ringPath(int subtask, int attempt, String jobId) {
        return RingPaths.ringPath(config.ringDirectory(jobId), config.name, subtask, attempt);
    }

    /** The ring file of {@code subtask}'s first attempt: {@code <baseDir>/<name>-<subtask>.ring}. */
    public Path ringPath(int subtask) {
        return ringPath(subtask, 0);
    }

    /**
     * The ring file of attempt {@code attempt} of {@code subtask} (see {@link
     * RingPaths#ringPath(Path, String, int, int)}) of a sink without a per-job directory; one with
     * it needs the job id: {@link #ringPath(int, int, String)}.
     */
    public Path ringPath(int subtask, int attempt) {
        if (config.usesJobDirectory()) {
            throw new IllegalStateException("RingSink '" + config.name + "' writes a per-job directory "
                    + "(<baseDir>/job-<job id>/): pass the job id (the JobClient's getJobID(); Python: "
                    + "env.execute_async(...).get_job_id()), or build it with setPerJobDirectory(false)");
        }
        return RingPaths.ringPath(config.baseDirectory(), config.name, subtask, attempt);
    }

    public Config<IN> config() {
        return config;
    }

    /** The settings a sink was built with; immutable and serializable. */
    public static final class Config<IN> implements java.io.Serializable {
        private static final long serialVersionUID = 1L;

        private final String baseDir;
        private final String name;
        private final long capacity;
        private final int align;
        private final RecordEncoder<IN> encoder;
        private final RecordBatcher<IN> batcher;
        private final long writeTimeoutNanos;
        private final long flushTimeoutNanos;
        private final long publishIntervalMillis;
        private final int batchRecords;
        private final boolean replaceStale;
        private final WorkerOptions worker;
        /** null: per-job directory when there is a worker entry, else the base directory itself. */
        private final Boolean perJobDirectory;

        Config(RingSinkBuilder<IN> b) {
            this.baseDir = b.baseDir;
            this.name = b.name;
            this.capacity = b.capacity;
            this.align = b.align;
            this.encoder = b.encoder;
            this.batcher = b.batcher;
            this.writeTimeoutNanos = b.writeTimeout.toNanos();
            this.flushTimeoutNanos = b.flushTimeout == null ? 0 : b.flushTimeout.toNanos();
            this.publishIntervalMillis = b.publishInterval.toMillis();
            this.batchRecords = b.batchRecords;
            this.replaceStale = b.replaceStale;
            this.worker = b.workerEntry == null ? null : new WorkerOptions(b.workerEntry, b.workerPython,
                    b.heartbeatInterval.toNanos(), b.heartbeatTimeout.toNanos(), b.workerShutdownGrace.toNanos(),
                    b.workerExitGrace.toNanos(), b.checkpointDir, b.workerLogDir, b.workerProperties);
            this.perJobDirectory = b.perJobDirectory;
        }

        /** Whether the rings go to {@code <baseDir>/job-<job id>/} (see {@link RingSinkBuilder#setPerJobDirectory}). */
        public boolean usesJobDirectory() {
            return perJobDirectory != null ? perJobDirectory : worker != null;
        }

        /** The directory of this sink's rings in job {@code jobId}: the per-job one or the base. */
        public Path ringDirectory(String jobId) {
            return usesJobDirectory() ? RingPaths.jobDirectory(baseDirectory(), jobId) : baseDirectory();
        }

        /** null: {@link RingPaths#defaultDirectory()}, resolved on the TaskManager. */
        public String baseDir() {
            return baseDir;
        }

        public String name() {
            return name;
        }

        public long capacity() {
            return capacity;
        }

        public int align() {
            return align;
        }

        public RecordEncoder<IN> encoder() {
            return encoder;
        }

        /** null: one record per element, by {@link #encoder()}. */
        public RecordBatcher<IN> batcher() {
            return batcher;
        }

        public long writeTimeoutNanos() {
            return writeTimeoutNanos;
        }

        /** 0: {@link RingSink#defaultFlushTimeoutNanos} of the job's checkpoint timeout. */
        public long flushTimeoutNanos() {
            return flushTimeoutNanos;
        }

        public long publishIntervalMillis() {
            return publishIntervalMillis;
        }

        public int batchRecords() {
            return batchRecords;
        }

        public boolean replaceStale() {
            return replaceStale;
        }

        /** How the workers are started and watched; null: no worker process (readers attach on their own). */
        public WorkerOptions worker() {
            return worker;
        }

        public Path baseDirectory() {
            return baseDir == null ? RingPaths.defaultDirectory() : Paths.get(baseDir);
        }
    }
}
