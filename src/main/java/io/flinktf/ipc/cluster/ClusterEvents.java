package io.flinktf.ipc.cluster;

import org.apache.flink.runtime.operators.coordination.OperatorEvent;

/** The operator events between a role operator and its coordinator (CLUSTER-PROTOCOL.md "Events"). */
final class ClusterEvents {
    private ClusterEvents() {}

    /** Operator to coordinator: the task's process listens on host:port (it wrote its address file). */
    static final class Register implements OperatorEvent {
        private static final long serialVersionUID = 1L;
        final String role;
        final int index;
        final int attempt;
        final String host;
        final int port;

        Register(String role, int index, int attempt, String host, int port) {
            this.role = role;
            this.index = index;
            this.attempt = attempt;
            this.host = host;
            this.port = port;
        }

        @Override
        public String toString() {
            return "Register{" + role + ":" + index + " attempt " + attempt + " at " + host + ":" + port + "}";
        }
    }

    /** Operator to coordinator: the task's process exited 0 after its work. */
    static final class Finished implements OperatorEvent {
        private static final long serialVersionUID = 1L;
        final String role;
        final int index;
        final int attempt;

        Finished(String role, int index, int attempt) {
            this.role = role;
            this.index = index;
            this.attempt = attempt;
        }

        @Override
        public String toString() {
            return "Finished{" + role + ":" + index + " attempt " + attempt + "}";
        }
    }

    /** Coordinator to operator: every task of the round registered; {@code clusterJson} maps role to "host:port" list. */
    static final class Spec implements OperatorEvent {
        private static final long serialVersionUID = 1L;
        final int epoch;
        final String clusterJson;

        Spec(int epoch, String clusterJson) {
            this.epoch = epoch;
            this.clusterJson = clusterJson;
        }

        @Override
        public String toString() {
            return "Spec{epoch " + epoch + ", " + clusterJson + "}";
        }
    }

    /** Coordinator to operator: the work is done (every worker, or the chief, finished); end the process. */
    static final class Stop implements OperatorEvent {
        private static final long serialVersionUID = 1L;

        @Override
        public String toString() {
            return "Stop";
        }
    }
}
