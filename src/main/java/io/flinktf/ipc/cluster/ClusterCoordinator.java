package io.flinktf.ipc.cluster;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.apache.flink.runtime.execution.SuppressRestartsException;
import org.apache.flink.runtime.jobgraph.OperatorID;
import org.apache.flink.runtime.operators.coordination.OperatorCoordinator;
import org.apache.flink.runtime.operators.coordination.OperatorEvent;
import org.apache.flink.util.FlinkException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The AM's hand on one role: the coordinator of a {@link RoleOperator}, in the JobManager. It
 * passes what its subtasks report to the cluster's {@link ClusterRegistry.Entry} (shared with the
 * other roles' coordinators) and turns a failed or restarted subtask into {@code failJob}: a
 * global failover restarts every task of every role, since region failover alone would leave the
 * others on a dead spec. Flink calls every method from the JobManager's main thread.
 */
final class ClusterCoordinator implements OperatorCoordinator {
    private static final Logger LOG = LoggerFactory.getLogger(ClusterCoordinator.class);

    private final Context context;
    private final String cluster;
    private final String role;
    private final Map<String, Integer> roles;
    private final String finishingRole;
    private final int maxFailedStarts;
    private ClusterRegistry.Entry entry;
    private int epoch;

    ClusterCoordinator(Context context, String cluster, String role, Map<String, Integer> roles, String finishingRole,
            int maxFailedStarts) {
        this.maxFailedStarts = maxFailedStarts;
        this.context = context;
        this.cluster = cluster;
        this.role = role;
        this.roles = roles;
        this.finishingRole = finishingRole;
    }

    @Override
    public void start() {
        entry = ClusterRegistry.join(context.getJobID(), cluster, roles, finishingRole, role, maxFailedStarts);
        epoch = entry.epoch();
    }

    @Override
    public void close() {
        if (entry != null) {
            ClusterRegistry.leave(context.getJobID(), entry, role);
            entry = null;
        }
    }

    @Override
    public void handleEventFromOperator(int subtask, int attemptNumber, OperatorEvent event) {
        if (event instanceof ClusterEvents.Register) {
            ClusterEvents.Register r = (ClusterEvents.Register) event;
            entry.register(role, subtask, attemptNumber, r.host, r.port);
        } else if (event instanceof ClusterEvents.Finished) {
            entry.finished(role, subtask, attemptNumber);
        } else {
            LOG.warn("TF cluster '{}' role {}: unexpected event {} from subtask {}", cluster, role, event, subtask);
        }
    }

    @Override
    public void executionAttemptReady(int subtask, int attemptNumber, SubtaskGateway gateway) {
        entry.ready(role, subtask, attemptNumber, ClusterRegistry.of(gateway));
    }

    @Override
    public void executionAttemptFailed(int subtask, int attemptNumber, Throwable reason) {
        ClusterRegistry.Verdict v = entry.fail(role, subtask, attemptNumber);
        if (v == ClusterRegistry.Verdict.RESTART) {
            context.failJob(new FlinkException("TF cluster '" + cluster + "': task " + role + ":" + subtask
                    + " attempt " + attemptNumber + " failed; restarting the whole cluster", reason));
        } else if (v == ClusterRegistry.Verdict.GIVE_UP) {
            // No restart can help (an entry that does not import, a missing interpreter...): the job
            // fails for good, with the process's own error, instead of restarting forever.
            context.failJob(new SuppressRestartsException(new FlinkException("TF cluster '" + cluster + "': task "
                    + role + ":" + subtask + " failed before it registered in " + entry.failedStarts()
                    + " rounds in a row; the cluster cannot start (see the cause)", reason)));
        }
    }

    @Override
    public void subtaskReset(int subtask, long checkpointId) {
        // Flink restarted this subtask alone (region failover): its peers still hold its old address.
        if (entry.fail(role, subtask, -1) == ClusterRegistry.Verdict.RESTART) {
            context.failJob(new FlinkException("TF cluster '" + cluster + "': task " + role + ":" + subtask
                    + " was restarted alone; restarting the whole cluster"));
        }
    }

    @Override
    public void resetToCheckpoint(long checkpointId, byte[] checkpointData) {
        // A global restore: every task of the job restarts. The first role to see it opens the round.
        if (entry != null) {
            epoch = entry.restart(epoch);
        }
    }

    @Override
    public void checkpointCoordinator(long checkpointId, CompletableFuture<byte[]> result) {
        // No state: a round is rebuilt from the tasks after every restart. But not before the spec
        // is out: see ClusterRegistry.Entry#afterSpec.
        entry.afterSpec(() -> result.complete(new byte[0]));
    }

    @Override
    public void notifyCheckpointComplete(long checkpointId) {}

    /** Creates the coordinator of one role in the JobManager. */
    static final class Provider implements OperatorCoordinator.Provider {
        private static final long serialVersionUID = 1L;
        private final OperatorID operatorId;
        private final String cluster;
        private final String role;
        private final Map<String, Integer> roles;
        private final String finishingRole;
        private final int maxFailedStarts;

        Provider(OperatorID operatorId, String cluster, String role, Map<String, Integer> roles, String finishingRole,
                int maxFailedStarts) {
            this.maxFailedStarts = maxFailedStarts;
            this.operatorId = operatorId;
            this.cluster = cluster;
            this.role = role;
            this.roles = new java.util.LinkedHashMap<>(roles);
            this.finishingRole = finishingRole;
        }

        @Override
        public OperatorID getOperatorId() {
            return operatorId;
        }

        @Override
        public OperatorCoordinator create(Context context) {
            return new ClusterCoordinator(context, cluster, role, roles, finishingRole, maxFailedStarts);
        }
    }
}
