package io.flinktf.ipc.cluster;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.JobID;
import org.apache.flink.runtime.operators.coordination.OperatorEvent;
import org.junit.jupiter.api.Test;

/** The AM's rules, on an entry alone: one spec per round, stale attempts, one restart per failure, stop. */
class ClusterRegistryTest {
    private final Map<String, List<OperatorEvent>> sent = new LinkedHashMap<>();

    private ClusterRegistry.Gateway gw(String task) {
        return e -> sent.computeIfAbsent(task, k -> new ArrayList<>()).add(e);
    }

    private static Map<String, Integer> roles() {
        Map<String, Integer> r = new LinkedHashMap<>();
        r.put("worker", 2);
        r.put("ps", 1);
        return r;
    }

    private void readyAll(ClusterRegistry.Entry e, int attempt) {
        e.ready("worker", 0, attempt, gw("worker:0"));
        e.ready("worker", 1, attempt, gw("worker:1"));
        e.ready("ps", 0, attempt, gw("ps:0"));
    }

    private List<ClusterEvents.Spec> specs(String task) {
        List<ClusterEvents.Spec> out = new ArrayList<>();
        for (OperatorEvent ev : sent.getOrDefault(task, List.of())) {
            if (ev instanceof ClusterEvents.Spec) {
                out.add((ClusterEvents.Spec) ev);
            }
        }
        return out;
    }

    private long stops(String task) {
        return sent.getOrDefault(task, List.of()).stream().filter(ev -> ev instanceof ClusterEvents.Stop).count();
    }

    @Test
    void theSpecGoesToEveryTaskOnceAllRegistered() {
        ClusterRegistry.Entry e = new ClusterRegistry.Entry("c", roles(), "worker");
        readyAll(e, 0);
        e.register("worker", 1, 0, "h1", 2001);
        e.register("ps", 0, 0, "h2", 3000);
        assertTrue(sent.isEmpty(), "no spec before the last registration");
        List<String> checkpoints = new ArrayList<>();
        e.afterSpec(() -> checkpoints.add("cp1"));
        assertEquals(List.of(), checkpoints, "a coordinator checkpoint waits for the spec");
        e.register("worker", 0, 0, "h1", 2000);
        assertEquals(List.of("cp1"), checkpoints);
        String spec = "{\"worker\": [\"h1:2000\", \"h1:2001\"], \"ps\": [\"h2:3000\"]}";
        for (String t : List.of("worker:0", "worker:1", "ps:0")) {
            assertEquals(1, specs(t).size(), t);
            assertEquals(spec, specs(t).get(0).clusterJson);
            assertEquals(0, specs(t).get(0).epoch);
        }
        e.afterSpec(() -> checkpoints.add("cp2"));
        assertEquals(List.of("cp1", "cp2"), checkpoints, "later checkpoints go at once");
    }

    @Test
    void ipv6HostsAreBracketed() {
        Map<String, Integer> one = new LinkedHashMap<>();
        one.put("worker", 1);
        ClusterRegistry.Entry e = new ClusterRegistry.Entry("c", one, "worker");
        e.ready("worker", 0, 0, gw("worker:0"));
        e.register("worker", 0, 0, "::1", 5000);
        assertEquals("{\"worker\": [\"[::1]:5000\"]}", specs("worker:0").get(0).clusterJson);
    }

    @Test
    void aFailureRestartsTheClusterOnceAndTheNextRoundIsNew() {
        ClusterRegistry.Entry e = new ClusterRegistry.Entry("c", roles(), "worker");
        readyAll(e, 0);
        e.register("worker", 0, 0, "h", 1);
        e.register("worker", 1, 0, "h", 2);
        e.register("ps", 0, 0, "h", 3);
        assertEquals(ClusterRegistry.Verdict.RESTART, e.fail("worker", 1, 0), "the first failure of a round restarts the cluster");
        assertEquals(ClusterRegistry.Verdict.IGNORE, e.fail("ps", 0, 0), "the others failing in its wake do not restart it again");
        assertEquals(ClusterRegistry.Verdict.IGNORE, e.fail("worker", 0, -1), "nor does Flink's regional restart of a peer");

        // Every coordinator sees the global restart; only the first opens the round.
        assertEquals(1, e.restart(0));
        assertEquals(1, e.restart(0));
        assertEquals(1, e.epoch());
        assertEquals(ClusterRegistry.Verdict.IGNORE, e.fail("worker", 0, 0), "a late notice of an attempt of the last round");
        e.register("ps", 0, 0, "h", 3);
        assertEquals("-", e.members().get("ps:0"), "a late registration of the last round is ignored");

        sent.clear();
        readyAll(e, 1);
        e.register("worker", 0, 1, "h", 11);
        e.register("worker", 1, 1, "h", 12);
        e.register("ps", 0, 1, "h", 13);
        assertEquals(1, specs("ps:0").size());
        assertEquals(1, specs("ps:0").get(0).epoch);
        assertTrue(specs("ps:0").get(0).clusterJson.contains("h:13"));
        assertEquals(ClusterRegistry.Verdict.RESTART, e.fail("ps", 0, 1), "the new round can fail again");
    }

    @Test
    void tasksThatFailBeforeRegisteringRoundAfterRoundEndTheJob() {
        ClusterRegistry.Entry e = new ClusterRegistry.Entry("c", roles(), "worker", 3);
        for (int round = 0; round < 2; round++) {
            readyAll(e, round);
            e.register("ps", 0, round, "h", 1);
            assertEquals(ClusterRegistry.Verdict.RESTART, e.fail("worker", 1, round), "round " + round);
            e.restart(round);
        }
        // A round that gets its spec out resets the count.
        readyAll(e, 2);
        e.register("worker", 0, 2, "h", 1);
        e.register("worker", 1, 2, "h", 2);
        e.register("ps", 0, 2, "h", 3);
        assertEquals(ClusterRegistry.Verdict.RESTART, e.fail("worker", 1, 2));
        e.restart(2);
        for (int round = 3; round < 5; round++) {
            readyAll(e, round);
            assertEquals(ClusterRegistry.Verdict.RESTART, e.fail("worker", 0, round), "round " + round);
            e.restart(round);
        }
        readyAll(e, 5);
        assertEquals(ClusterRegistry.Verdict.GIVE_UP, e.fail("worker", 0, 5), "the third start failure in a row");
        assertEquals(3, e.failedStarts());
    }

    @Test
    void aRegionalRestartBeforeTheRoundRanIsNoFailure() {
        ClusterRegistry.Entry e = new ClusterRegistry.Entry("c", roles(), "worker");
        readyAll(e, 0);
        assertEquals(ClusterRegistry.Verdict.IGNORE, e.fail("worker", 0, -1), "not registered yet, no spec: nothing of this round is lost");
        e.register("worker", 0, 0, "h", 1);
        assertEquals(ClusterRegistry.Verdict.RESTART, e.fail("worker", 0, -1), "a registered task restarted alone: its peers would hold a dead address");
    }

    @Test
    void aNewAttemptReplacesAStaleRegistration() {
        ClusterRegistry.Entry e = new ClusterRegistry.Entry("c", roles(), "worker");
        readyAll(e, 0);
        e.register("worker", 0, 0, "h", 1);
        e.ready("worker", 0, 1, gw("worker:0"));
        e.register("worker", 1, 0, "h", 2);
        e.register("ps", 0, 0, "h", 3);
        assertTrue(sent.isEmpty(), "worker:0's registration belonged to attempt 0, which is gone");
        e.register("worker", 0, 1, "h", 4);
        assertTrue(specs("worker:0").get(0).clusterJson.contains("h:4"));
    }

    @Test
    void whenEveryWorkerFinishedTheOtherRolesAreStopped() {
        ClusterRegistry.Entry e = new ClusterRegistry.Entry("c", roles(), "worker");
        readyAll(e, 0);
        e.register("worker", 0, 0, "h", 1);
        e.register("worker", 1, 0, "h", 2);
        e.register("ps", 0, 0, "h", 3);
        e.finished("worker", 0, 0);
        assertEquals(0, stops("ps:0"));
        e.finished("worker", 1, 5); // not the attempt that runs
        assertEquals(0, stops("ps:0"));
        e.finished("worker", 1, 0);
        assertEquals(1, stops("ps:0"));
        assertEquals(0, stops("worker:0") + stops("worker:1"), "the finishing role is not stopped");
        e.finished("worker", 1, 0);
        assertEquals(1, stops("ps:0"), "one stop per task");
    }

    @Test
    void withAChiefTheChiefEndsTheCluster() {
        Map<String, Integer> r = roles();
        r.put("chief", 1);
        ClusterRegistry.Entry e = new ClusterRegistry.Entry("c", r, "chief");
        readyAll(e, 0);
        e.ready("chief", 0, 0, gw("chief:0"));
        e.finished("worker", 0, 0);
        e.finished("chief", 0, 0);
        assertEquals(1, stops("ps:0"));
        assertEquals(1, stops("worker:1"), "workers in server.join() are stopped too");
        assertEquals(0, stops("worker:0"), "a finished task is not");
    }

    @Test
    void registryEntriesAreSharedPerJobAndCluster() {
        JobID job = new JobID();
        ClusterRegistry.Entry a = ClusterRegistry.join(job, "c", roles(), "worker", "worker");
        ClusterRegistry.Entry b = ClusterRegistry.join(job, "c", roles(), "worker", "ps");
        assertSame(a, b);
        assertNotSame(a, ClusterRegistry.join(new JobID(), "c", roles(), "worker", "worker"));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> ClusterRegistry.join(job, "c", roles(), "worker", "ps"));
        assertTrue(e.getMessage().contains("role 'ps' added twice"), e.getMessage());
        Map<String, Integer> other = new LinkedHashMap<>();
        other.put("worker", 5);
        e = assertThrows(IllegalStateException.class, () -> ClusterRegistry.join(job, "c", other, "worker", "x"));
        assertTrue(e.getMessage().contains("two clusters of this name"), e.getMessage());
        ClusterRegistry.leave(job, a, "worker");
        assertSame(a, ClusterRegistry.lookup(job, "c"));
        ClusterRegistry.leave(job, a, "ps");
        assertNull(ClusterRegistry.lookup(job, "c"), "the last coordinator to leave removes the entry");
    }

    @Test
    void jsonParsesWhatProcessesWriteAndRefusesTheRest() {
        Map<String, Object> m = Json.parseObject(" {\"host\": \"a\\\"b\", \"port\": 12, \"pid\": -3, \"x\": [1.5, true, null, {}]} ");
        assertEquals("a\"b", m.get("host"));
        assertEquals(12L, m.get("port"));
        assertEquals(-3L, m.get("pid"));
        assertEquals(4, ((List<?>) m.get("x")).size());
        for (String bad : new String[] {"", "[]", "{", "{\"a\": }", "{\"a\": 1} x", "{\"a\" 1}", "{\"a\": \"\\u12\"}"}) {
            assertThrows(IllegalArgumentException.class, () -> Json.parseObject(bad), bad);
        }
        assertEquals("\"a\\\\b\\u000a\"", Json.quote("a\\b\n"));
    }
}
