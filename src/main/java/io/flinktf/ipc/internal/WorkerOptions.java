package io.flinktf.ipc.internal;

import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * How the TF processes of one sink or cluster are started and watched: one immutable object that
 * the public configs ({@code RingSink}'s, {@code TFClusterConfig}) hold and hand to every {@link
 * WorkerSupervisor} whole, instead of copying its fields one by one. Their builders check the
 * values; this class only carries them.
 */
public final class WorkerOptions implements Serializable {
    private static final long serialVersionUID = 1L;

    private final String entry;
    private final String python;
    private final long heartbeatIntervalNanos;
    private final long heartbeatTimeoutNanos;
    private final long shutdownGraceNanos;
    private final long exitGraceNanos;
    private final String checkpointDir;
    private final String logDir;
    private final Map<String, String> properties;

    /**
     * @param python null: decided when the job graph is built ({@link #withPython})
     * @param checkpointDir null: none; the base of the per-task directories
     * @param logDir null: beside the TaskManager log, else a per-user temp directory
     */
    public WorkerOptions(String entry, String python, long heartbeatIntervalNanos, long heartbeatTimeoutNanos,
            long shutdownGraceNanos, long exitGraceNanos, String checkpointDir, String logDir,
            Map<String, String> properties) {
        this.entry = entry;
        this.python = python;
        this.heartbeatIntervalNanos = heartbeatIntervalNanos;
        this.heartbeatTimeoutNanos = heartbeatTimeoutNanos;
        this.shutdownGraceNanos = shutdownGraceNanos;
        this.exitGraceNanos = exitGraceNanos;
        this.checkpointDir = checkpointDir;
        this.logDir = logDir;
        this.properties = Collections.unmodifiableMap(new LinkedHashMap<>(properties));
    }

    /** The same options with the interpreter decided ({@code python} when none was configured). */
    public WorkerOptions withPython(String python) {
        if (this.python != null) {
            return this;
        }
        return new WorkerOptions(entry, python, heartbeatIntervalNanos, heartbeatTimeoutNanos, shutdownGraceNanos,
                exitGraceNanos, checkpointDir, logDir, properties);
    }

    /** {@code package.module:function} or {@code /abs/path/file.py:function}. */
    public String entry() {
        return entry;
    }

    /** null until decided. */
    public String python() {
        return python;
    }

    public long heartbeatIntervalNanos() {
        return heartbeatIntervalNanos;
    }

    public long heartbeatTimeoutNanos() {
        return heartbeatTimeoutNanos;
    }

    /** Between SIGTERM and SIGKILL when a process is stopped. */
    public long shutdownGraceNanos() {
        return shutdownGraceNanos;
    }

    /** How long a process that said it finished may take to exit. */
    public long exitGraceNanos() {
        return exitGraceNanos;
    }

    public String checkpointDir() {
        return checkpointDir;
    }

    public String logDir() {
        return logDir;
    }

    public Map<String, String> properties() {
        return properties;
    }
}
