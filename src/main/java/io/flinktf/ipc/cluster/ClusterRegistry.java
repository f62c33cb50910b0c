package io.flinktf.ipc.cluster;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.apache.flink.api.common.JobID;
import org.apache.flink.runtime.operators.coordination.OperatorCoordinator.SubtaskGateway;
import org.apache.flink.runtime.operators.coordination.OperatorEvent;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The AM's memory: one {@link Entry} per TF cluster of a job, shared by the coordinators of its
 * role operators (one per role; they all run in the JobManager, in its main thread). Keyed by
 * (JobID, cluster name). An entry collects a registration from every task of every role, then
 * builds the cluster spec and hands it to every task; it decides when the work is done (stop the
 * ps roles) and turns the first failure of a round into one whole-cluster restart.
 */
final class ClusterRegistry {
    private static final Logger LOG = LoggerFactory.getLogger(ClusterRegistry.class);
    private static final Map<String, Entry> ENTRIES = new HashMap<>();

    private ClusterRegistry() {}

    private static String key(JobID job, String cluster) {
        return job + "/" + cluster;
    }

    /** The entry of {@code cluster} in {@code job}, created by the first of its coordinators. */
    static Entry join(JobID job, String cluster, Map<String, Integer> roles, String finishingRole, String role) {
        return join(job, cluster, roles, finishingRole, role, 0);
    }

    static Entry join(JobID job, String cluster, Map<String, Integer> roles, String finishingRole, String role,
            int maxFailedStarts) {
        synchronized (ENTRIES) {
            String k = key(job, cluster);
            Entry e = ENTRIES.get(k);
            if (e == null) {
                e = new Entry(cluster, roles, finishingRole, maxFailedStarts);
                ENTRIES.put(k, e);
            } else if (!e.counts.equals(roles)) {
                throw new IllegalStateException("TF cluster '" + cluster + "': two clusters of this name in job " + job
                        + " (roles " + e.counts + " and " + roles + "); give each TFClusterConfig its own name");
            }
            if (!e.joined.add(role)) {
                throw new IllegalStateException("TF cluster '" + cluster + "': role '" + role + "' added twice to job "
                        + job + "; give each TFClusterConfig its own name");
            }
            return e;
        }
    }

    /** Leaves the entry; the last coordinator to leave removes it. */
    static void leave(JobID job, Entry e, String role) {
        synchronized (ENTRIES) {
            e.joined.remove(role);
            if (e.joined.isEmpty()) {
                ENTRIES.remove(key(job, e.name), e);
            }
        }
    }

    /** For tests and stat: the live entry, or null. */
    static Entry lookup(JobID job, String cluster) {
        synchronized (ENTRIES) {
            return ENTRIES.get(key(job, cluster));
        }
    }

    /** Where the events go: a task's gateway (tests put their own). */
    interface Gateway {
        void send(OperatorEvent event);
    }

    static Gateway of(SubtaskGateway g) {
        return event -> g.sendEvent(event).whenComplete((ack, err) -> {
            if (err != null) {
                // The task is gone (failover in progress); the next round sends again.
                LOG.warn("TF cluster: event {} to subtask {} not delivered: {}", event, g.getSubtask(), err.toString());
            }
        });
    }

    /** What a failure means for the cluster. */
    enum Verdict {
        IGNORE,
        RESTART,
        GIVE_UP
    }

    /** One task slot: (role, index), the attempt that runs it now and what that attempt reported. */
    private static final class Slot {
        final String role;
        final int index;
        Gateway gateway;
        int attempt = -1; // of the gateway
        int minAttempt; // attempts below this belong to an earlier round
        int regAttempt = -1; // -1: not registered in this round
        String host;
        int port;
        boolean finished;
        boolean stopSent;

        Slot(String role, int index) {
            this.role = role;
            this.index = index;
        }

        String name() {
            return role + ":" + index;
        }
    }

    /** The state of one TF cluster. Every method is synchronized: coordinators of one job may share it. */
    static final class Entry {
        final String name;
        final Map<String, Integer> counts;
        private final String finishingRole;
        final java.util.Set<String> joined = new java.util.HashSet<>();
        private final Map<String, Slot[]> slots = new LinkedHashMap<>();
        private int epoch;
        private boolean specSent;
        private boolean failing;
        private boolean done;
        private String lastSpec;
        private final List<Runnable> afterSpec = new ArrayList<>();
        private final int maxFailedStarts;
        private int failedStarts;

        Entry(String name, Map<String, Integer> counts, String finishingRole) {
            this(name, counts, finishingRole, 0);
        }

        /** @param maxFailedStarts give up after this many rounds in a row fail before a task registered (0: never) */
        Entry(String name, Map<String, Integer> counts, String finishingRole, int maxFailedStarts) {
            this.maxFailedStarts = maxFailedStarts;
            this.name = name;
            this.counts = new LinkedHashMap<>(counts);
            this.finishingRole = finishingRole;
            counts.forEach((role, n) -> {
                Slot[] s = new Slot[n];
                for (int i = 0; i < n; i++) {
                    s[i] = new Slot(role, i);
                }
                slots.put(role, s);
            });
        }

        private Slot slot(String role, int index) {
            Slot[] s = slots.get(role);
            if (s == null || index < 0 || index >= s.length) {
                throw new IllegalArgumentException("TF cluster '" + name + "' has no task " + role + ":" + index);
            }
            return s[index];
        }

        synchronized int epoch() {
            return epoch;
        }

        /** The spec handed out last (JSON of role to "host:port" list), or null. */
        synchronized String lastSpec() {
            return lastSpec;
        }

        /** A new attempt of (role, index) can receive events. */
        synchronized void ready(String role, int index, int attempt, Gateway gateway) {
            Slot s = slot(role, index);
            if (attempt < s.attempt) {
                return; // an older attempt's late notice
            }
            if (attempt != s.attempt) {
                s.finished = false;
                s.stopSent = false;
                if (s.regAttempt != attempt) {
                    s.regAttempt = -1;
                }
            }
            s.attempt = attempt;
            s.gateway = gateway;
            maybeSendSpec();
            maybeStop();
        }

        /** (role, index, attempt) listens on host:port. */
        synchronized void register(String role, int index, int attempt, String host, int port) {
            Slot s = slot(role, index);
            if (attempt < s.minAttempt || attempt < s.attempt) {
                LOG.info("TF cluster '{}': ignoring the registration of {} attempt {} (an earlier round)", name,
                        s.name(), attempt);
                return;
            }
            if (specSent) {
                LOG.warn("TF cluster '{}' epoch {}: {} attempt {} registered after the spec was handed out; "
                        + "it has no place in this round", name, epoch, s.name(), attempt);
                return;
            }
            s.regAttempt = attempt;
            s.host = host;
            s.port = port;
            LOG.info("TF cluster '{}' epoch {}: {} attempt {} registered at {}:{} ({}/{})", name, epoch, s.name(), attempt,
                    host, port, registered(), total());
            maybeSendSpec();
        }

        private int total() {
            int n = 0;
            for (Slot[] s : slots.values()) {
                n += s.length;
            }
            return n;
        }

        private int registered() {
            int n = 0;
            for (Slot[] ss : slots.values()) {
                for (Slot s : ss) {
                    n += s.regAttempt >= 0 ? 1 : 0;
                }
            }
            return n;
        }

        private void maybeSendSpec() {
            if (specSent || failing) {
                return;
            }
            for (Slot[] ss : slots.values()) {
                for (Slot s : ss) {
                    if (s.regAttempt < 0 || s.gateway == null || s.attempt != s.regAttempt) {
                        return;
                    }
                }
            }
            String spec = specJson();
            specSent = true;
            failedStarts = 0;
            lastSpec = spec;
            LOG.info("TF cluster '{}' epoch {}: every task registered; spec {}", name, epoch, spec);
            for (Slot[] ss : slots.values()) {
                for (Slot s : ss) {
                    s.gateway.send(new ClusterEvents.Spec(epoch, spec));
                }
            }
            runAfterSpec();
        }

        /**
         * Runs {@code action} once this round's spec is out (or the round failed): at once if it
         * is. A coordinator checkpoint waits on it, because Flink holds back coordinator events
         * from the checkpoint of the coordinator until the subtask's own snapshot, and a fed
         * subtask cannot reach its snapshot before its process, waiting for the spec, reads the
         * ring: without the wait, a checkpoint during the cluster's start would deadlock.
         */
        synchronized void afterSpec(Runnable action) {
            if (specSent || failing) {
                action.run();
            } else {
                afterSpec.add(action);
            }
        }

        private void runAfterSpec() {
            List<Runnable> run = new ArrayList<>(afterSpec);
            afterSpec.clear();
            run.forEach(Runnable::run);
        }

        /** {"worker": ["h:p", ...], "ps": [...]}, roles in config order, tasks in index order. */
        String specJson() {
            StringBuilder b = new StringBuilder("{");
            String sep = "";
            for (Map.Entry<String, Slot[]> e : slots.entrySet()) {
                b.append(sep).append(Json.quote(e.getKey())).append(": [");
                sep = ", ";
                Slot[] ss = e.getValue();
                for (int i = 0; i < ss.length; i++) {
                    String hp = ss[i].host.contains(":") ? "[" + ss[i].host + "]" : ss[i].host; // IPv6 literal
                    b.append(i == 0 ? "" : ", ").append(Json.quote(hp + ":" + ss[i].port));
                }
                b.append(']');
            }
            return b.append('}').toString();
        }

        /** (role, index, attempt) exited 0 after its work. */
        synchronized void finished(String role, int index, int attempt) {
            Slot s = slot(role, index);
            if (attempt != s.attempt) {
                return;
            }
            s.finished = true;
            LOG.info("TF cluster '{}' epoch {}: {} attempt {} finished", name, epoch, s.name(), attempt);
            maybeStop();
        }

        private void maybeStop() {
            if (finishingRole == null) {
                return;
            }
            if (!done) {
                for (Slot s : slots.get(finishingRole)) {
                    if (!s.finished) {
                        return;
                    }
                }
                done = true;
                LOG.info("TF cluster '{}' epoch {}: every {} task finished; stopping the other roles", name, epoch,
                        finishingRole);
            }
            for (Slot[] ss : slots.values()) {
                for (Slot s : ss) {
                    if (!s.role.equals(finishingRole) && !s.finished && !s.stopSent && s.gateway != null) {
                        s.stopSent = true;
                        s.gateway.send(new ClusterEvents.Stop());
                    }
                }
            }
        }

        /**
         * An attempt of (role, index) failed, or Flink restarted it alone (attempt -1: the slot's
         * current one). RESTART when this is the first failure of the round: the caller restarts
         * the whole cluster (failJob). Later failures of the same round, and failures of attempts
         * of an earlier round, are IGNOREd. GIVE_UP when a task failed before it registered in
         * {@code maxFailedStarts} rounds in a row: an entry that cannot be imported, a missing
         * interpreter; restarting again would only loop (Flink's default strategy retries forever).
         */
        synchronized Verdict fail(String role, int index, int attempt) {
            Slot s = slot(role, index);
            if (attempt < 0) {
                // A regional restart: it matters only if the task took part in this round.
                if (s.regAttempt < 0 && !specSent) {
                    return Verdict.IGNORE;
                }
            } else if (attempt < s.minAttempt) {
                return Verdict.IGNORE;
            }
            if (failing) {
                return Verdict.IGNORE;
            }
            failing = true;
            runAfterSpec(); // a checkpoint waiting for this round's spec must not wait for a dead round
            boolean beforeRegistering = attempt >= 0 && s.regAttempt != attempt && !specSent;
            failedStarts = beforeRegistering ? failedStarts + 1 : 0;
            if (beforeRegistering && maxFailedStarts > 0 && failedStarts >= maxFailedStarts) {
                LOG.warn("TF cluster '{}' epoch {}: {} attempt {} failed before it registered, {} rounds in a row; "
                        + "giving up", name, epoch, s.name(), attempt, failedStarts);
                return Verdict.GIVE_UP;
            }
            LOG.info("TF cluster '{}' epoch {}: {} attempt {} failed; the whole cluster restarts", name, epoch, s.name(),
                    attempt < 0 ? s.attempt : attempt);
            return Verdict.RESTART;
        }

        /** Rounds in a row that failed because a task failed before it registered. */
        synchronized int failedStarts() {
            return failedStarts;
        }

        /**
         * A global restart: the first coordinator to see it (its epoch is still {@code seen})
         * starts the next round; the others adopt it. Returns the current epoch.
         */
        synchronized int restart(int seen) {
            if (seen == epoch) {
                epoch++;
                specSent = false;
                failing = false;
                done = false;
                for (Slot[] ss : slots.values()) {
                    for (Slot s : ss) {
                        s.minAttempt = s.attempt + 1;
                        s.regAttempt = -1;
                        s.finished = false;
                        s.stopSent = false;
                        s.gateway = null;
                    }
                }
                LOG.info("TF cluster '{}': round {} starts (every task restarts)", name, epoch);
            }
            return epoch;
        }

        /** The members of the current round, for stat and tests: "role:i" to "attempt host:port" or "-". */
        synchronized Map<String, String> members() {
            Map<String, String> m = new LinkedHashMap<>();
            for (Slot[] ss : slots.values()) {
                for (Slot s : ss) {
                    m.put(s.name(), s.regAttempt < 0 ? "-" : s.regAttempt + " " + s.host + ":" + s.port);
                }
            }
            return m;
        }

        @Override
        public String toString() {
            return "TF cluster '" + name + "' " + counts;
        }

        List<String> roles() {
            return new ArrayList<>(counts.keySet());
        }

        @Override
        public boolean equals(Object o) {
            return this == o;
        }

        @Override
        public int hashCode() {
            return Objects.hashCode(name);
        }
    }
}
