package io.flinktf.ipc.cluster;

import io.flinktf.ipc.internal.WorkerOptions;
import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.java.typeutils.RowTypeInfo;

/**
 * What one TF cluster inside a Flink job is: its roles, the entry every process runs, and how the
 * processes are started, fed and watched. Immutable and serializable; built by {@link
 * TFClusterConfigBuilder} ({@link #builder()}), which checks everything in {@code build()}.
 * {@link TFCluster#addTo} adds it to a job.
 */
public final class TFClusterConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    private final String name;
    private final List<TFRole> roles;
    /** How every process is started and watched: entry, interpreter, heartbeats, graces, dirs, properties. */
    private final WorkerOptions process;
    private final long registrationTimeoutMillis;
    private final int maxFailedStarts;
    private final long writeTimeoutMillis;
    private final long flushTimeoutMillis;
    private final String baseDir;
    private final long ringCapacity;
    private final Map<String, int[]> shapes;
    private final int batchRows;
    private final int batchSize;
    private final long batchBytes;
    private final long lingerMillis;
    private final RowTypeInfo rowType;
    private final RowTypeInfo outputRowType;

    TFClusterConfig(TFClusterConfigBuilder b) {
        this.name = b.name;
        this.roles = Collections.unmodifiableList(b.roleList());
        this.process = new WorkerOptions(b.entry, b.python, ms(b.heartbeatIntervalMillis), ms(b.heartbeatTimeoutMillis),
                ms(b.shutdownGraceMillis), ms(b.exitGraceMillis), b.checkpointDir, b.logDir, b.properties);
        this.registrationTimeoutMillis = b.registrationTimeoutMillis;
        this.maxFailedStarts = b.maxFailedStarts;
        this.writeTimeoutMillis = b.writeTimeoutMillis;
        this.flushTimeoutMillis = b.flushTimeoutMillis;
        this.baseDir = b.baseDir;
        this.ringCapacity = b.ringCapacity;
        Map<String, int[]> s = new LinkedHashMap<>();
        b.shapes.forEach((k, v) -> s.put(k, v.clone()));
        this.shapes = Collections.unmodifiableMap(s);
        this.batchRows = b.batchRows;
        this.batchSize = b.batchSize;
        this.batchBytes = b.batchBytes;
        this.lingerMillis = b.lingerMillis;
        this.rowType = b.rowType;
        this.outputRowType = b.outputRowType;
    }

    private static long ms(long millis) {
        return TimeUnit.MILLISECONDS.toNanos(millis);
    }

    private static long millis(long nanos) {
        return TimeUnit.NANOSECONDS.toMillis(nanos);
    }

    public static TFClusterConfigBuilder builder() {
        return new TFClusterConfigBuilder();
    }

    /** The cluster's name: part of every file name and of the AM's key (unique per job). */
    public String name() {
        return name;
    }

    /** The roles in the order they were added. */
    public List<TFRole> roles() {
        return roles;
    }

    public TFRole role(String role) {
        for (TFRole r : roles) {
            if (r.name().equals(role)) {
                return r;
            }
        }
        return null;
    }

    /** Role name to task count, in role order. */
    public Map<String, Integer> roleCounts() {
        Map<String, Integer> m = new LinkedHashMap<>();
        roles.forEach(r -> m.put(r.name(), r.count()));
        return m;
    }

    /**
     * The task TF treats as the chief: {@code chief:0} when there is a {@code chief} role, else
     * {@code worker:0} (also {@code TFContext.is_chief}).
     */
    public String chief() {
        if (role("chief") != null) {
            return "chief:0";
        }
        return (role("worker") != null ? "worker" : roles.get(0).name()) + ":0";
    }

    /**
     * The role whose end ends the cluster: when every task of it finished, the AM stops the
     * others ({@code chief} if there is one, else {@code worker}; null: none, each ends alone).
     */
    public String finishingRole() {
        if (role("chief") != null) {
            return "chief";
        }
        return role("worker") != null ? "worker" : null;
    }

    public String entry() {
        return process.entry();
    }

    /** null: the job's python.executable, else python3. */
    public String python() {
        return process.python();
    }

    public Map<String, String> properties() {
        return process.properties();
    }

    public long heartbeatIntervalMillis() {
        return millis(process.heartbeatIntervalNanos());
    }

    public long heartbeatTimeoutMillis() {
        return millis(process.heartbeatTimeoutNanos());
    }

    public long shutdownGraceMillis() {
        return millis(process.shutdownGraceNanos());
    }

    public long registrationTimeoutMillis() {
        return registrationTimeoutMillis;
    }

    /** The job fails for good after this many rounds in a row in which a task failed before it registered (0: never). */
    public int maxFailedStarts() {
        return maxFailedStarts;
    }

    public long writeTimeoutMillis() {
        return writeTimeoutMillis;
    }

    /** 0: from the job's checkpoint timeout (see {@link TFClusterConfigBuilder#setFlushTimeoutMillis}). */
    public long flushTimeoutMillis() {
        return flushTimeoutMillis;
    }

    public long exitGraceMillis() {
        return millis(process.exitGraceNanos());
    }

    /** The process options as one object, for the supervisor of each task. */
    WorkerOptions processOptions() {
        return process;
    }

    /** null: none; task (role, i) gets {@code <checkpointDir>/<role>-<i>}, the same in every attempt. */
    public String checkpointDir() {
        return process.checkpointDir();
    }

    /** null: {@code RingPaths.defaultDirectory()} on the TaskManager. */
    public String baseDir() {
        return baseDir;
    }

    /** null: beside the TaskManager log, else a per-user temp directory. */
    public String logDir() {
        return process.logDir();
    }

    public long ringCapacity() {
        return ringCapacity;
    }

    public Map<String, int[]> shapes() {
        Map<String, int[]> s = new LinkedHashMap<>();
        shapes.forEach((k, v) -> s.put(k, v.clone()));
        return s;
    }

    public int batchRows() {
        return batchRows;
    }

    /** The workers' TF batch size the batches are cut for; 0: none. */
    public int batchSize() {
        return batchSize;
    }

    public long batchBytes() {
        return batchBytes;
    }

    public long lingerMillis() {
        return lingerMillis;
    }

    /** null: the input stream's own row type. */
    public RowTypeInfo rowType() {
        return rowType;
    }

    /** null: the cluster emits nothing and {@link TFCluster#addTo} returns null. */
    public RowTypeInfo outputRowType() {
        return outputRowType;
    }

    @Override
    public String toString() {
        return "TFClusterConfig{name=" + name + ", roles=" + roles + ", entry=" + process.entry() + "}";
    }
}
