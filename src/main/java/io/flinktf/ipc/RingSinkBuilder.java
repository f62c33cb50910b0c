package io.flinktf.ipc;

import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * Builds a {@link RingSink} ({@link RingSink#builder()}): every setter checks its own argument and
 * says what is wrong; {@link #build()} checks what is required and what depends on several
 * settings.
 */
public final class RingSinkBuilder<IN> {
    String baseDir;
    String name;
    long capacity = 64L << 20;
    int align = 64;
    RecordEncoder<IN> encoder;
    RecordBatcher<IN> batcher;
    Duration writeTimeout = Duration.ofMinutes(10);
    Duration flushTimeout; // null: from the job's checkpoint timeout
    Duration publishInterval = Duration.ofMillis(1);
    int batchRecords = 64;
    boolean replaceStale = true;
    String workerEntry;
    String workerPython;
    Duration heartbeatInterval = Duration.ofSeconds(1);
    Duration heartbeatTimeout = Duration.ofSeconds(10);
    Duration workerShutdownGrace = Duration.ofSeconds(5);
    Duration workerExitGrace = Duration.ofSeconds(60);
    String checkpointDir;
    String workerLogDir;
    final Map<String, String> workerProperties = new LinkedHashMap<>();
    Boolean perJobDirectory;

    RingSinkBuilder() {}

    /**
     * Whether the rings, heartbeat and context files go to a directory of the job's own, {@code
     * <baseDir>/job-<job id>/} (default: yes with a worker entry, no without one). Without it,
     * two jobs that use the same ring name at once collide; readers that are not workers find
     * per-job rings with the job id ({@code flink.ring_paths(..., job_id=...)} in Python).
     */
    public RingSinkBuilder<IN> setPerJobDirectory(boolean perJob) {
        this.perJobDirectory = perJob;
        return this;
    }

    /** Directory of the ring files (default {@code /dev/shm/flinktf-<uid>}, created mode 0700). */
    public RingSinkBuilder<IN> setBaseDir(String baseDir) {
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

    public RingSinkBuilder<IN> setBaseDir(Path baseDir) {
        return setBaseDir(baseDir == null ? null : baseDir.toString());
    }

    /** Job-level ring name; subtask i writes {@code <baseDir>/<name>-<i>.ring}. Required. */
    public RingSinkBuilder<IN> setName(String name) {
        try {
            RingPaths.checkName(name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("RingSink: " + e.getMessage(), e);
        }
        this.name = name;
        return this;
    }

    /** Data area bytes per ring: a power of two, 4 KiB .. 1 GiB (default 64 MiB). */
    public RingSinkBuilder<IN> setCapacity(long capacity) {
        try {
            RingWriter.checkGeometry(capacity, 8);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("RingSink: " + e.getMessage(), e);
        }
        this.capacity = capacity;
        return this;
    }

    /** Frame/payload alignment, 8 or 64 (default 64: payloads usable by DLPack). */
    public RingSinkBuilder<IN> setAlign(int align) {
        if (align != 8 && align != 64) {
            throw new IllegalArgumentException("RingSink: align must be 8 or 64, got " + align);
        }
        this.align = align;
        return this;
    }

    /** How an element becomes a record. Required. */
    public RingSinkBuilder<IN> setEncoder(RecordEncoder<IN> encoder) {
        this.encoder = Objects.requireNonNull(encoder, "RingSink: encoder must not be null");
        return this;
    }

    /**
     * Many elements per ring record, gathered and encoded by {@code batcher} (see {@link
     * RecordBatcher}); it takes the encoder's place.
     */
    public RingSinkBuilder<IN> setBatcher(RecordBatcher<IN> batcher) {
        this.batcher = Objects.requireNonNull(batcher, "RingSink: batcher must not be null");
        return this;
    }

    /** One of the built-in encoders by name: "bytes", "long", "utf8" (see {@link RecordEncoders#byName}). */
    public RingSinkBuilder<IN> setEncoderName(String name) {
        try {
            return setEncoder(RecordEncoders.byName(Objects.requireNonNull(name, "encoder name")));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("RingSink: " + e.getMessage(), e);
        }
    }

    /** Longest a write waits for space before failing the task (default 10 min). */
    public RingSinkBuilder<IN> setWriteTimeout(Duration timeout) {
        this.writeTimeout = positive("writeTimeout", timeout);
        return this;
    }

    public RingSinkBuilder<IN> setWriteTimeoutMillis(long millis) {
        return setWriteTimeout(Duration.ofMillis(millis));
    }

    /**
     * Longest a checkpoint waits for the reader to drain the ring (default: half the job's
     * checkpoint timeout, at most 5 min). Keep it below the checkpoint timeout, or
     * Flink's "Checkpoint expired" comes first and names nothing.
     */
    public RingSinkBuilder<IN> setFlushTimeout(Duration timeout) {
        this.flushTimeout = positive("flushTimeout", timeout);
        return this;
    }

    public RingSinkBuilder<IN> setFlushTimeoutMillis(long millis) {
        return setFlushTimeout(Duration.ofMillis(millis));
    }

    /** Longest a written record stays unpublished when no more input arrives (default 1 ms). */
    public RingSinkBuilder<IN> setPublishInterval(Duration interval) {
        this.publishInterval = positive("publishInterval", interval);
        if (interval.toMillis() < 1) {
            throw new IllegalArgumentException("RingSink: publishInterval must be at least 1 ms, got " + interval);
        }
        return this;
    }

    /** Records staged before one release store publishes them (default 64). */
    public RingSinkBuilder<IN> setBatchRecords(int records) {
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
    public RingSinkBuilder<IN> setReplaceStale(boolean replace) {
        this.replaceStale = replace;
        return this;
    }

    /**
     * Starts a TF worker per subtask running {@code entry}: {@code package.module:function} or
     * {@code /abs/path/file.py:function} (function defaults to {@code main}), called with the
     * worker context (flinktf_ipc.worker). Without it no process is started.
     */
    public RingSinkBuilder<IN> setWorkerEntry(String entry) {
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
    public RingSinkBuilder<IN> setWorkerPython(String python) {
        if (python == null || python.isEmpty()) {
            throw new IllegalArgumentException("RingSink: workerPython must be a non-empty command or path");
        }
        this.workerPython = python;
        return this;
    }

    /** How often both sides write their heartbeat files (default 1 s). */
    public RingSinkBuilder<IN> setHeartbeatInterval(Duration interval) {
        this.heartbeatInterval = positive("heartbeatInterval", interval);
        return this;
    }

    public RingSinkBuilder<IN> setHeartbeatIntervalMillis(long millis) {
        return setHeartbeatInterval(Duration.ofMillis(millis));
    }

    /**
     * A worker whose heartbeat is older than this is declared hung, killed, and fails the task;
     * the worker applies the same timeout to the writer side (default 10 s).
     */
    public RingSinkBuilder<IN> setHeartbeatTimeout(Duration timeout) {
        this.heartbeatTimeout = positive("heartbeatTimeout", timeout);
        return this;
    }

    public RingSinkBuilder<IN> setHeartbeatTimeoutMillis(long millis) {
        return setHeartbeatTimeout(Duration.ofMillis(millis));
    }

    /** Between SIGTERM and SIGKILL when a worker is stopped (default 5 s). */
    public RingSinkBuilder<IN> setWorkerShutdownGrace(Duration grace) {
        this.workerShutdownGrace = positive("workerShutdownGrace", grace);
        return this;
    }

    public RingSinkBuilder<IN> setWorkerShutdownGraceMillis(long millis) {
        return setWorkerShutdownGrace(Duration.ofMillis(millis));
    }

    /**
     * How long a worker that said {@code finished} (its entry returned) may take to exit
     * before it is killed (default 60 s): interpreter and TF teardown, not a hang. A worker
     * killed after reading the whole stream does not fail the task; the kill is logged.
     */
    public RingSinkBuilder<IN> setWorkerExitGrace(Duration grace) {
        this.workerExitGrace = positive("workerExitGrace", grace);
        return this;
    }

    public RingSinkBuilder<IN> setWorkerExitGraceMillis(long millis) {
        return setWorkerExitGrace(Duration.ofMillis(millis));
    }

    /** Base of the workers' checkpoint directories: subtask i gets {@code <dir>/<i>}, the same for every attempt. */
    public RingSinkBuilder<IN> setCheckpointDir(String dir) {
        this.checkpointDir = absolute("checkpointDir", dir);
        return this;
    }

    /** Where worker stdout/stderr files go (default: beside the TaskManager log, else a temp dir). */
    public RingSinkBuilder<IN> setWorkerLogDir(String dir) {
        this.workerLogDir = absolute("workerLogDir", dir);
        return this;
    }

    /** A string property handed to the workers ({@code context.properties}). */
    public RingSinkBuilder<IN> setWorkerProperty(String key, String value) {
        if (key == null || key.isEmpty() || value == null) {
            throw new IllegalArgumentException("RingSink: worker property key and value must be non-null, "
                    + "key non-empty, got " + key + "=" + value);
        }
        this.workerProperties.put(key, value);
        return this;
    }

    public RingSinkBuilder<IN> setWorkerProperties(Map<String, String> properties) {
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
        if (encoder == null && batcher == null) {
            throw new IllegalStateException("RingSink: setEncoder(...) is required, e.g. RecordEncoders.bytes()");
        }
        if (heartbeatTimeout.compareTo(heartbeatInterval.multipliedBy(2)) < 0) {
            throw new IllegalStateException("RingSink: heartbeatTimeout (" + heartbeatTimeout + ") must be at least "
                    + "twice the heartbeatInterval (" + heartbeatInterval + "), or a live worker looks hung");
        }
        return new RingSink<>(new RingSink.Config<>(this));
    }
}
