package io.flinktf.ipc.cluster;

import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.java.typeutils.RowTypeInfo;

/**
 * Builds a {@link TFClusterConfig}. Setters only record; {@link #build()} checks everything and
 * says what is wrong in an IllegalArgumentException that starts with {@code "TFClusterConfig: "}.
 *
 * <pre>{@code
 * TFClusterConfig config = TFClusterConfig.builder()
 *         .setName("mnist")
 *         .addRole("worker", 2)
 *         .addRole("ps", 1)
 *         .setEntry("my_pkg.train:main")
 *         .setProperty("epochs", "3")
 *         .build();
 * TFCluster.addTo(rows, config);
 * }</pre>
 */
public final class TFClusterConfigBuilder {
    private static final String ROLE_RULE = "[a-z][a-z0-9_]{0,63}";
    private static final String NAME_RULE = "[A-Za-z0-9][A-Za-z0-9_-]{0,99}";

    String name = "tf";
    private final Map<String, TFRole> roles = new LinkedHashMap<>();
    private final List<String> duplicateRoles = new ArrayList<>();
    String entry;
    String python;
    final Map<String, String> properties = new LinkedHashMap<>();
    long heartbeatIntervalMillis = 1000;
    long heartbeatTimeoutMillis = 10_000;
    long shutdownGraceMillis = 5000;
    long registrationTimeoutMillis = 10 * 60_000;
    int maxFailedStarts = 3;
    long writeTimeoutMillis = 10 * 60_000;
    long flushTimeoutMillis; // 0: half the job's checkpoint timeout, at most 5 min (as RingSink)
    long exitGraceMillis = 60_000;
    String checkpointDir;
    String baseDir;
    String logDir;
    long ringCapacity = 64L << 20;
    final Map<String, int[]> shapes = new LinkedHashMap<>();
    int batchRows = Integer.MIN_VALUE; // unset: ArrowBatchOptions.defaultBatchRows(batchSize)
    int batchSize; // 0: none
    long batchBytes = -1; // -1: min(4 MiB, capacity / 8)
    long lingerMillis = 100;
    RowTypeInfo rowType;
    RowTypeInfo outputRowType;
    private final List<String> problems = new ArrayList<>();

    TFClusterConfigBuilder() {}

    /** Cluster name (default {@code tf}): part of the file names and the AM's key; unique in a job. */
    public TFClusterConfigBuilder setName(String name) {
        this.name = name;
        return this;
    }

    /** A role with {@code count} tasks; Flink feeds it by default only if it is {@code worker} and there is an input. */
    public TFClusterConfigBuilder addRole(String role, int count) {
        return putRole(role, count, null);
    }

    /** A role with {@code count} tasks that Flink feeds ({@code fed}) or not, whatever the default. */
    public TFClusterConfigBuilder addRole(String role, int count, boolean fed) {
        return putRole(role, count, fed);
    }

    private TFClusterConfigBuilder putRole(String role, int count, Boolean fed) {
        if (roles.containsKey(role)) {
            duplicateRoles.add(role);
        }
        roles.put(role, new TFRole(role, count, fed));
        return this;
    }

    /**
     * With {@code true}: a role {@code chief} of 1 task, not fed (added once, after the other
     * roles when none is there yet); {@code false} removes it. The chief is the finishing role.
     */
    public TFClusterConfigBuilder setChief(boolean chief) {
        if (chief) {
            if (!roles.containsKey("chief")) {
                roles.put("chief", new TFRole("chief", 1, false));
            }
        } else {
            roles.remove("chief");
        }
        return this;
    }

    /** {@code package.module:function} or {@code /abs/path/file.py:function}: what every process runs. Required. */
    public TFClusterConfigBuilder setEntry(String entry) {
        this.entry = entry;
        return this;
    }

    /** Interpreter of the processes (default: the job's {@code python.executable}, else {@code python3}). */
    public TFClusterConfigBuilder setPythonExecutable(String python) {
        this.python = python;
        return this;
    }

    /** A string property every process sees ({@code TFContext.properties}). */
    public TFClusterConfigBuilder setProperty(String key, String value) {
        if (key == null || key.isEmpty() || value == null) {
            problems.add("a property needs a non-empty key and a non-null value, got " + key + "=" + value);
        } else {
            properties.put(key, value);
        }
        return this;
    }

    public TFClusterConfigBuilder setProperties(Map<String, String> properties) {
        if (properties == null) {
            problems.add("properties must not be null");
        } else {
            properties.forEach(this::setProperty);
        }
        return this;
    }

    /** How often both sides write their heartbeat (default 1 s). */
    public TFClusterConfigBuilder setHeartbeatIntervalMillis(long millis) {
        this.heartbeatIntervalMillis = millis;
        return this;
    }

    public TFClusterConfigBuilder setHeartbeatInterval(Duration d) {
        return setHeartbeatIntervalMillis(millis(d));
    }

    /** A process whose heartbeat is older than this is killed and fails the cluster (default 10 s). */
    public TFClusterConfigBuilder setHeartbeatTimeoutMillis(long millis) {
        this.heartbeatTimeoutMillis = millis;
        return this;
    }

    public TFClusterConfigBuilder setHeartbeatTimeout(Duration d) {
        return setHeartbeatTimeoutMillis(millis(d));
    }

    /** Between SIGTERM and SIGKILL when a process is stopped (default 5 s). */
    public TFClusterConfigBuilder setShutdownGraceMillis(long millis) {
        this.shutdownGraceMillis = millis;
        return this;
    }

    public TFClusterConfigBuilder setShutdownGrace(Duration d) {
        return setShutdownGraceMillis(millis(d));
    }

    /** How long a process that said it finished may take to exit before it is killed (default 60 s; TF teardown is slow). */
    public TFClusterConfigBuilder setExitGraceMillis(long millis) {
        this.exitGraceMillis = millis;
        return this;
    }

    /** Longest a task waits for the cluster spec after its process started (default 10 min). */
    public TFClusterConfigBuilder setRegistrationTimeoutMillis(long millis) {
        this.registrationTimeoutMillis = millis;
        return this;
    }

    /**
     * The job fails for good, with the process's error, after this many rounds in a row in which a
     * task failed before it registered (an entry that does not import, a missing interpreter),
     * instead of restarting forever (default 3; 0: never give up).
     */
    public TFClusterConfigBuilder setMaxFailedStarts(int rounds) {
        this.maxFailedStarts = rounds;
        return this;
    }

    /** Longest a fed task waits for ring space before it fails (default 10 min). */
    public TFClusterConfigBuilder setWriteTimeoutMillis(long millis) {
        this.writeTimeoutMillis = millis;
        return this;
    }

    /**
     * Longest a checkpoint waits for a fed process to drain its ring (default: half the job's
     * checkpoint timeout, at most 5 min, so that this error, naming the task, comes before Flink's
     * "checkpoint expired").
     */
    public TFClusterConfigBuilder setFlushTimeoutMillis(long millis) {
        this.flushTimeoutMillis = millis;
        return this;
    }

    /** Base of the tasks' checkpoint directories: {@code <dir>/<role>-<index>}, the same in every attempt. */
    public TFClusterConfigBuilder setCheckpointDir(String dir) {
        this.checkpointDir = dir;
        return this;
    }

    /** Directory of rings and task files (default {@code $FLINKTF_IPC_DIR}, else {@code /dev/shm/flinktf-<uid>}). */
    public TFClusterConfigBuilder setBaseDir(String dir) {
        this.baseDir = dir;
        return this;
    }

    /** Where the processes' stdout/stderr go (default beside the TaskManager log, else a temp dir). */
    public TFClusterConfigBuilder setWorkerLogDir(String dir) {
        this.logDir = dir;
        return this;
    }

    /** Data bytes of each fed task's ring: a power of two, 4 KiB .. 1 GiB (default 64 MiB). */
    public TFClusterConfigBuilder setRingCapacity(long bytes) {
        this.ringCapacity = bytes;
        return this;
    }

    /** The fixed shape of an array column, e.g. {@code "x", {28, 28}}; other arrays are ragged. */
    public TFClusterConfigBuilder setShape(String column, int[] shape) {
        if (column == null || shape == null) {
            problems.add("a shape needs a column name and dimensions, got " + column);
        } else {
            shapes.put(column, shape.clone());
        }
        return this;
    }

    public TFClusterConfigBuilder setShapes(Map<String, int[]> shapes) {
        if (shapes == null) {
            problems.add("shapes must not be null");
        } else {
            shapes.forEach(this::setShape);
        }
        return this;
    }

    /** Most rows in one Arrow batch (default 1024; with a batch size, a multiple of it). */
    public TFClusterConfigBuilder setBatchRows(int rows) {
        this.batchRows = rows;
        return this;
    }

    /** The workers' TF batch size: batches are cut at multiples of it (see {@code ArrowBatchOptions}). */
    public TFClusterConfigBuilder setBatchSize(int size) {
        this.batchSize = size;
        return this;
    }

    /** Column bytes at which a batch is cut (default min(4 MiB, capacity / 8)). */
    public TFClusterConfigBuilder setBatchBytes(long bytes) {
        this.batchBytes = bytes;
        return this;
    }

    /** Batch rows, bytes and linger of {@code options} at once. */
    public TFClusterConfigBuilder setArrowOptions(io.flinktf.ipc.arrow.ArrowBatchOptions options) {
        if (options == null) {
            problems.add("arrow options must not be null");
        } else {
            this.batchRows = options.batchRows();
            this.batchSize = options.batchSize();
            this.batchBytes = options.batchBytes();
            this.lingerMillis = options.lingerMillis();
        }
        return this;
    }

    /** Longest a row waits in an unfinished batch (default 100 ms). */
    public TFClusterConfigBuilder setLingerMillis(long millis) {
        this.lingerMillis = millis;
        return this;
    }

    /** The input's row type, when the stream's own type is not a named row type. */
    public TFClusterConfigBuilder setRowType(RowTypeInfo type) {
        this.rowType = type;
        return this;
    }

    /** Rows the processes emit come out of {@link TFCluster#addTo} with this type (issue 10: result ring). */
    public TFClusterConfigBuilder setOutputRowType(RowTypeInfo type) {
        this.outputRowType = type;
        return this;
    }

    private long millis(Duration d) {
        if (d == null) {
            problems.add("a duration must not be null");
            return -1;
        }
        return d.toMillis();
    }

    List<TFRole> roleList() {
        return new ArrayList<>(roles.values());
    }

    /** Checks everything; the message names every problem found. */
    public TFClusterConfig build() {
        List<String> p = new ArrayList<>(problems);
        if (name == null || !name.matches(NAME_RULE)) {
            p.add("name must be 1-100 characters of [A-Za-z0-9_-] starting with a letter or digit, got '" + name + "'");
        }
        if (roles.isEmpty()) {
            p.add("no role: add at least one, e.g. addRole(\"worker\", 2)");
        }
        for (String d : duplicateRoles) {
            p.add("role '" + d + "' added twice");
        }
        for (TFRole r : roles.values()) {
            if (r.name() == null || !r.name().matches(ROLE_RULE)) {
                p.add("role name must match " + ROLE_RULE + " (a TF job name), got '" + r.name() + "'");
            } else if (r.name().equals("writer")) {
                p.add("role name 'writer' is taken (the JVM side's heartbeat file)");
            }
            if (r.count() < 1) {
                p.add("role '" + r.name() + "' needs at least 1 task, got " + r.count());
            }
        }
        TFRole chief = roles.get("chief");
        if (chief != null && chief.count() != 1) {
            p.add("role 'chief' must have exactly 1 task, got " + chief.count());
        }
        if (entry == null || entry.trim().isEmpty()) {
            p.add("setEntry(...) is required: 'package.module:function' or '/abs/path/file.py:function'");
        } else {
            String target = entry.split(":", 2)[0];
            if (target.isEmpty()) {
                p.add("entry '" + entry + "' names no module or file");
            } else if (target.endsWith(".py") && !Paths.get(target).isAbsolute()) {
                p.add("an entry file must be an absolute path (processes run in another working directory), got '"
                        + entry + "'");
            }
        }
        if (python != null && python.isEmpty()) {
            p.add("python must be a non-empty command or path");
        }
        if (heartbeatIntervalMillis < 1) {
            p.add("heartbeatInterval must be at least 1 ms, got " + heartbeatIntervalMillis + " ms");
        } else if (heartbeatTimeoutMillis < 2 * heartbeatIntervalMillis) {
            p.add("heartbeatTimeout (" + heartbeatTimeoutMillis + " ms) must be at least twice the heartbeatInterval ("
                    + heartbeatIntervalMillis + " ms), or a live process looks hung");
        }
        positive(p, "shutdownGrace", shutdownGraceMillis);
        positive(p, "registrationTimeout", registrationTimeoutMillis);
        positive(p, "writeTimeout", writeTimeoutMillis);
        if (flushTimeoutMillis < 0) {
            p.add("flushTimeout must be at least 1 ms (or 0: from the checkpoint timeout), got " + flushTimeoutMillis + " ms");
        }
        positive(p, "exitGrace", exitGraceMillis);
        absolute(p, "checkpointDir", checkpointDir);
        absolute(p, "baseDir", baseDir);
        absolute(p, "logDir", logDir);
        if (ringCapacity < 4096 || ringCapacity > (1L << 30) || Long.bitCount(ringCapacity) != 1) {
            p.add("ringCapacity must be a power of two between 4096 and 2^30 bytes, got " + ringCapacity);
        } else if (batchBytes == -1) {
            batchBytes = Math.max(64, Math.min(4L << 20, ringCapacity / 8));
        } else if (batchBytes < 64 || batchBytes > ringCapacity / 4) {
            p.add("batchBytes must be between 64 and a quarter of ringCapacity (" + ringCapacity / 4
                    + ": one batch must fit a ring record), got " + batchBytes);
        }
        if (maxFailedStarts < 0) {
            p.add("maxFailedStarts must be >= 0 (0: never give up), got " + maxFailedStarts);
        }
        if (batchSize < 0) {
            p.add("batchSize must be >= 1, got " + batchSize);
        } else if (batchRows == Integer.MIN_VALUE) {
            batchRows = io.flinktf.ipc.arrow.ArrowBatchOptions.defaultBatchRows(batchSize);
        } else if (batchRows < 1) {
            p.add("batchRows must be >= 1, got " + batchRows);
        } else if (batchSize > 0 && batchRows % batchSize != 0) {
            p.add("batchRows must be a multiple of batchSize, got " + batchRows + " rows for batch size " + batchSize);
        }
        if (lingerMillis < 1) {
            p.add("linger must be at least 1 ms, got " + lingerMillis + " ms");
        }
        for (Map.Entry<String, int[]> e : shapes.entrySet()) {
            for (int d : e.getValue()) {
                if (d < 1) {
                    p.add("shape of column '" + e.getKey() + "' must have dimensions >= 1, got "
                            + java.util.Arrays.toString(e.getValue()));
                    break;
                }
            }
        }
        if (!p.isEmpty()) {
            throw new IllegalArgumentException("TFClusterConfig: " + String.join("; ", p));
        }
        return new TFClusterConfig(this);
    }

    private static void positive(List<String> p, String what, long millis) {
        if (millis < 1) {
            p.add(what + " must be at least 1 ms, got " + millis + " ms");
        }
    }

    private static void absolute(List<String> p, String what, String dir) {
        if (dir != null && (dir.isEmpty() || !Paths.get(dir).isAbsolute())) {
            p.add(what + " must be an absolute path (TaskManagers run in another working directory), got '" + dir + "'");
        }
    }
}
