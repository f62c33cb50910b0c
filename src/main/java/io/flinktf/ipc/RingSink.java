package io.flinktf.ipc;

import io.flinktf.ipc.internal.RingSinkWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
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
 * <p>With {@link Builder#setWorkerEntry} each subtask also starts, watches and stops its TF worker
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

    private RingSink(Config<IN> config) {
        this.config = config;
    }

    public static <IN> Builder<IN> builder() {
        return new Builder<>();
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
        if (config.workerEntry != null && config.workerPython == null) {
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
        if (config.workerPython != null) {
            return config.workerPython;
        }
        return jobPython != null && !jobPython.isEmpty() ? jobPython : "python3";
    }

    /** The ring file of {@code subtask}'s first attempt: {@code <baseDir>/<name>-<subtask>.ring}. */
    public Path ringPath(int subtask) {
        return RingPaths.ringPath(config.baseDirectory(), config.name, subtask);
    }

    /** The ring file of attempt {@code attempt} of {@code subtask} (see {@link RingPaths#ringPath(Path, String, int, int)}). */
    public Path ringPath(int subtask, int attempt) {
        return RingPaths.ringPath(config.baseDirectory(), config.name, subtask, attempt);
    }

    public Config<IN> config() {
        return config;
    }

    /** The settings a sink was built with; immutable and serializable. */
    public static final class Config<IN> implements java.io.Serializable {
        private static final long serialVersionUID = 1L;

        /** null: {@link RingPaths#defaultDirectory()}, resolved on the TaskManager. */
        public final String baseDir;
        public final String name;
        public final long capacity;
        public final int align;
        public final RecordEncoder<IN> encoder;
        public final long writeTimeoutNanos;
        /** 0: {@link RingSink#defaultFlushTimeoutNanos} of the job's checkpoint timeout. */
        public final long flushTimeoutNanos;
        public final long publishIntervalMillis;
        public final int batchRecords;
        public final boolean replaceStale;
        /** null: no worker process (readers attach on their own). */
        public final String workerEntry;
        /** null: the job's python.executable, else python3. */
        public final String workerPython;
        public final long heartbeatIntervalNanos;
        public final long heartbeatTimeoutNanos;
        public final long workerShutdownGraceNanos;
        public final long workerExitGraceNanos;
        /** null: none; subtask i's worker gets {@code <checkpointDir>/<i>}. */
        public final String checkpointDir;
        /** null: next to the TaskManager log, else a per-user temp directory. */
        public final String workerLogDir;
        public final Map<String, String> workerProperties;

        Config(Builder<IN> b) {
            this.baseDir = b.baseDir;
            this.name = b.name;
            this.capacity = b.capacity;
            this.align = b.align;
            this.encoder = b.encoder;
            this.writeTimeoutNanos = b.writeTimeout.toNanos();
            this.flushTimeoutNanos = b.flushTimeout == null ? 0 : b.flushTimeout.toNanos();
            this.publishIntervalMillis = b.publishInterval.toMillis();
            this.batchRecords = b.batchRecords;
            this.replaceStale = b.replaceStale;
            this.workerEntry = b.workerEntry;
            this.workerPython = b.workerPython;
            this.heartbeatIntervalNanos = b.heartbeatInterval.toNanos();
            this.heartbeatTimeoutNanos = b.heartbeatTimeout.toNanos();
            this.workerShutdownGraceNanos = b.workerShutdownGrace.toNanos();
            this.workerExitGraceNanos = b.workerExitGrace.toNanos();
            this.checkpointDir = b.checkpointDir;
            this.workerLogDir = b.workerLogDir;
            this.workerProperties = Collections.unmodifiableMap(new LinkedHashMap<>(b.workerProperties));
        }

        public Path baseDirectory() {
            return baseDir == null ? RingPaths.defaultDirectory() : Paths.get(baseDir);
        }
    }

    /** Builds a {@link RingSink}; every setter checks its argument and says what is wrong. */
    public static final class Builder<IN> {
        private String baseDir;
        private String name;
        private long capacity = 64L << 20;
        private int align = 64;
        private RecordEncoder<IN> encoder;
        private Duration writeTimeout = Duration.ofMinutes(10);
        private Duration flushTimeout; // null: from the job's checkpoint timeout
        private Duration publishInterval = Duration.ofMillis(1);
        private int batchRecords = 64;
        private boolean replaceStale = true;
        private String workerEntry;
        private String workerPython;
        private Duration heartbeatInterval = Duration.ofSeconds(1);
        private Duration heartbeatTimeout = Duration.ofSeconds(10);
        private Duration workerShutdownGrace = Duration.ofSeconds(5);
        private Duration workerExitGrace = Duration.ofSeconds(60);
        private String checkpointDir;
        private String workerLogDir;
        private final Map<String, String> workerProperties = new LinkedHashMap<>();

        private Builder() {}

        /** Directory of the ring files (default {@code /dev/shm/flinktf-<uid>}, created mode 0700). */
        public Builder<IN> setBaseDir(String baseDir) {
            if (baseDir == null || baseDir.isEmpty()) {
                throw new IllegalArgumentException("RingSink: baseDir must be a non-empty path");
            }
            if (!Paths.get(baseDir).isAbsolute()) {
                throw new IllegalArgumentException("RingSink: baseDir must be absolute (TaskManagers "
                        + "may run in another working directory), got '" + baseDir + "'");
            }
            this.baseDir = baseDir;
            return this;
        }

        public Builder<IN> setBaseDir(Path baseDir) {
            return setBaseDir(baseDir == null ? null : baseDir.toString());
        }

        /** Job-level ring name; subtask i writes {@code <baseDir>/<name>-<i>.ring}. Required. */
        public Builder<IN> setName(String name) {
            try {
                RingPaths.checkName(name);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("RingSink: " + e.getMessage(), e);
            }
            this.name = name;
            return this;
        }

        /** Data area bytes per ring: a power of two, 4 KiB .. 1 GiB (default 64 MiB). */
        public Builder<IN> setCapacity(long capacity) {
            try {
                RingWriter.checkGeometry(capacity, 8);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("RingSink: " + e.getMessage(), e);
            }
            this.capacity = capacity;
            return this;
        }

        /** Frame/payload alignment, 8 or 64 (default 64: payloads usable by DLPack). */
        public Builder<IN> setAlign(int align) {
            if (align != 8 && align != 64) {
                throw new IllegalArgumentException("RingSink: align must be 8 or 64, got " + align);
            }
            this.align = align;
            return this;
        }

        /** How an element becomes a record. Required. */
        public Builder<IN> setEncoder(RecordEncoder<IN> encoder) {
            this.encoder = Objects.requireNonNull(encoder, "RingSink: encoder must not be null");
            return this;
        }

        /** One of the built-in encoders by name: "bytes", "long", "utf8" (see {@link RecordEncoders#byName}). */
        public Builder<IN> setEncoderName(String name) {
            try {
                return setEncoder(RecordEncoders.byName(Objects.requireNonNull(name, "encoder name")));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("RingSink: " + e.getMessage(), e);
            }
        }

        /** Longest a write waits for space before failing the task (default 10 min). */
        public Builder<IN> setWriteTimeout(Duration timeout) {
            this.writeTimeout = positive("writeTimeout", timeout);
            return this;
        }

        public Builder<IN> setWriteTimeoutMillis(long millis) {
            return setWriteTimeout(Duration.ofMillis(millis));
        }

        /**
         * Longest a checkpoint waits for the reader to drain the ring (default: half the job's
         * checkpoint timeout, at most 5 min). Keep it below the checkpoint timeout, or
         * Flink's "Checkpoint expired" comes first and names nothing.
         */
        public Builder<IN> setFlushTimeout(Duration timeout) {
            this.flushTimeout = positive("flushTimeout", timeout);
            return this;
        }

        public Builder<IN> setFlushTimeoutMillis(long millis) {
            return setFlushTimeout(Duration.ofMillis(millis));
        }

        /** Longest a written record stays unpublished when no more input arrives (default 1 ms). */
        public Builder<IN> setPublishInterval(Duration interval) {
            this.publishInterval = positive("publishInterval", interval);
            if (interval.toMillis() < 1) {
                throw new IllegalArgumentException("RingSink: publishInterval must be at least 1 ms, got " + interval);
            }
            return this;
        }

        /** Records staged before one release store publishes them (default 64). */
        public Builder<IN> setBatchRecords(int records) {
            if (records < 1) {
                throw new IllegalArgumentException("RingSink: batchRecords must be >= 1, got " + records);
            }
            this.batchRecords = records;
            return this;
        }

        /**
         * Whether a ring file left by a writer that is gone (a failed earlier attempt) is replaced
         * (default true). A file of a live writer is never replaced.
         */
        public Builder<IN> setReplaceStale(boolean replace) {
            this.replaceStale = replace;
            return this;
        }

        /**
         * Starts a TF worker per subtask running {@code entry}: {@code package.module:function} or
         * {@code /abs/path/file.py:function} (function defaults to {@code main}), called with the
         * worker context (flinktf_ipc.worker). Without it no process is started.
         */
        public Builder<IN> setWorkerEntry(String entry) {
            if (entry == null || entry.trim().isEmpty()) {
                throw new IllegalArgumentException("RingSink: workerEntry must be 'package.module:function' or "
                        + "'/path/file.py:function', got '" + entry + "'");
            }
            String target = entry.split(":", 2)[0];
            if (target.endsWith(".py") && !Paths.get(target).isAbsolute()) {
                throw new IllegalArgumentException("RingSink: a workerEntry file must be an absolute path "
                        + "(workers may run in another working directory), got '" + entry + "'");
            }
            this.workerEntry = entry;
            return this;
        }

        /** Interpreter of the workers (default: the job's {@code python.executable}, else {@code python3}). */
        public Builder<IN> setWorkerPython(String python) {
            if (python == null || python.isEmpty()) {
                throw new IllegalArgumentException("RingSink: workerPython must be a non-empty command or path");
            }
            this.workerPython = python;
            return this;
        }

        /** How often both sides write their heartbeat files (default 1 s). */
        public Builder<IN> setHeartbeatInterval(Duration interval) {
            this.heartbeatInterval = positive("heartbeatInterval", interval);
            return this;
        }

        public Builder<IN> setHeartbeatIntervalMillis(long millis) {
            return setHeartbeatInterval(Duration.ofMillis(millis));
        }

        /**
         * A worker whose heartbeat is older than this is declared hung, killed, and fails the task;
         * the worker applies the same timeout to the writer side (default 10 s).
         */
        public Builder<IN> setHeartbeatTimeout(Duration timeout) {
            this.heartbeatTimeout = positive("heartbeatTimeout", timeout);
            return this;
        }

        public Builder<IN> setHeartbeatTimeoutMillis(long millis) {
            return setHeartbeatTimeout(Duration.ofMillis(millis));
        }

        /** Between SIGTERM and SIGKILL when a worker is stopped (default 5 s). */
        public Builder<IN> setWorkerShutdownGrace(Duration grace) {
            this.workerShutdownGrace = positive("workerShutdownGrace", grace);
            return this;
        }

        public Builder<IN> setWorkerShutdownGraceMillis(long millis) {
            return setWorkerShutdownGrace(Duration.ofMillis(millis));
        }

        /**
         * How long a worker that said {@code finished} (its entry returned) may take to exit
         * before it is killed (default 60 s): interpreter and TF teardown, not a hang. A worker
         * killed after reading the whole stream does not fail the task; the kill is logged.
         */
        public Builder<IN> setWorkerExitGrace(Duration grace) {
            this.workerExitGrace = positive("workerExitGrace", grace);
            return this;
        }

        public Builder<IN> setWorkerExitGraceMillis(long millis) {
            return setWorkerExitGrace(Duration.ofMillis(millis));
        }

        /** Base of the workers' checkpoint directories: subtask i gets {@code <dir>/<i>}, the same for every attempt. */
        public Builder<IN> setCheckpointDir(String dir) {
            this.checkpointDir = absolute("checkpointDir", dir);
            return this;
        }

        /** Where worker stdout/stderr files go (default: beside the TaskManager log, else a temp dir). */
        public Builder<IN> setWorkerLogDir(String dir) {
            this.workerLogDir = absolute("workerLogDir", dir);
            return this;
        }

        /** A string property handed to the workers ({@code context.properties}). */
        public Builder<IN> setWorkerProperty(String key, String value) {
            if (key == null || key.isEmpty() || value == null) {
                throw new IllegalArgumentException("RingSink: worker property key and value must be non-null, "
                        + "key non-empty, got " + key + "=" + value);
            }
            this.workerProperties.put(key, value);
            return this;
        }

        public Builder<IN> setWorkerProperties(Map<String, String> properties) {
            Objects.requireNonNull(properties, "RingSink: workerProperties must not be null");
            for (Map.Entry<String, String> e : properties.entrySet()) {
                setWorkerProperty(e.getKey(), e.getValue());
            }
            return this;
        }

        private static String absolute(String what, String dir) {
            if (dir == null || dir.isEmpty() || !Paths.get(dir).isAbsolute()) {
                throw new IllegalArgumentException("RingSink: " + what + " must be an absolute path, got '" + dir + "'");
            }
            return dir;
        }

        private static Duration positive(String what, Duration d) {
            if (d == null || d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("RingSink: " + what + " must be a positive duration, got " + d);
            }
            return d;
        }

        public RingSink<IN> build() {
            if (name == null) {
                throw new IllegalStateException("RingSink: setName(...) is required (readers find rings by name)");
            }
            if (encoder == null) {
                throw new IllegalStateException("RingSink: setEncoder(...) is required, e.g. RecordEncoders.bytes()");
            }
            if (heartbeatTimeout.compareTo(heartbeatInterval.multipliedBy(2)) < 0) {
                throw new IllegalStateException("RingSink: heartbeatTimeout (" + heartbeatTimeout + ") must be at least "
                        + "twice the heartbeatInterval (" + heartbeatInterval + "), or a live worker looks hung");
            }
            return new RingSink<>(new Config<>(this));
        }
    }
}
