package io.flinktf.ipc.cluster;

import io.flinktf.ipc.RingPaths;
import io.flinktf.ipc.arrow.ArrowSchema;
import io.flinktf.ipc.internal.WorkerOptions;
import java.io.Serializable;
import java.nio.file.Path;
import java.nio.file.Paths;

/** Everything one role's tasks need, decided when the job graph is built (client side): one object, no copies. */
final class RoleSettings implements Serializable {
    private static final long serialVersionUID = 1L;

    final TFClusterConfig config;
    final String role;
    /** null: Flink does not feed this role (no ring). */
    final ArrowSchema schema;
    /** null: the cluster has no output row type (no output ring); else the rows the processes emit. */
    final ArrowSchema outputSchema;
    /** How the processes start and are watched, the interpreter resolved (config, else the job's python.executable). */
    final WorkerOptions worker;
    /** The flush timeout of a checkpoint, resolved from the config and the job's checkpoint timeout. */
    final long flushTimeoutNanos;

    RoleSettings(TFClusterConfig config, String role, ArrowSchema schema, ArrowSchema outputSchema, String python,
            long flushTimeoutNanos) {
        this.config = config;
        this.role = role;
        this.schema = schema;
        this.outputSchema = outputSchema;
        this.worker = config.processOptions().withPython(python);
        this.flushTimeoutNanos = flushTimeoutNanos;
    }

    boolean fed() {
        return schema != null;
    }

    /** The directory of rings and task files, resolved on the TaskManager. */
    Path baseDirectory() {
        return config.baseDir() == null ? RingPaths.defaultDirectory() : Paths.get(config.baseDir());
    }
}
