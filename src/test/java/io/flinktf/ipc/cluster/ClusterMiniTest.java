package io.flinktf.ipc.cluster;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A TF cluster in a real Flink mini-cluster, with real Python processes playing the tasks
 * (src/test/python/cluster_role.py: the protocol without TensorFlow).
 */
@Timeout(value = 300, unit = TimeUnit.SECONDS)
class ClusterMiniTest {
    @TempDir
    Path tmp;

    private Path ringDir;
    private Path log;

    private TFClusterConfigBuilder cluster(String name) throws IOException {
        ringDir = tmp.resolve("rings");
        Files.createDirectory(ringDir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        log = tmp.resolve("tasks.log");
        Path script = Paths.get(System.getProperty("flinktf.test.srcdir", "."), "src/test/python/cluster_role.py");
        assertTrue(Files.exists(script), script + " (set -Dflinktf.test.srcdir)");
        String python = System.getProperty("flinktf.test.python", "python3");
        // The operator runs PYTHON -P -m flinktf_ipc.worker; the wrapper runs the stand-in instead.
        Path wrapper = tmp.resolve("python-wrapper.sh");
        Files.write(wrapper, ("#!/bin/sh\nexec '" + python + "' '" + script + "'\n").getBytes(StandardCharsets.UTF_8));
        Files.setPosixFilePermissions(wrapper, PosixFilePermissions.fromString("rwx------"));
        return TFClusterConfig.builder()
                .setName(name)
                .setEntry("unused.module:main")
                .setPythonExecutable(wrapper.toString())
                .setBaseDir(ringDir.toString())
                .setWorkerLogDir(tmp.resolve("logs").toString())
                .setHeartbeatIntervalMillis(200)
                .setHeartbeatTimeoutMillis(5000)
                .setShutdownGraceMillis(2000)
                .setRegistrationTimeoutMillis(120_000)
                .setProperty("log", log.toString());
    }

    private static StreamExecutionEnvironment env(int slots, int restarts) {
        Configuration conf = new Configuration();
        if (restarts == 0) {
            conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        } else {
            conf.set(RestartStrategyOptions.RESTART_STRATEGY, "fixed-delay");
            conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_ATTEMPTS, restarts);
            conf.set(RestartStrategyOptions.RESTART_STRATEGY_FIXED_DELAY_DELAY, java.time.Duration.ofMillis(200));
        }
        return StreamExecutionEnvironment.createLocalEnvironment(slots, conf);
    }

    private List<Map<String, Object>> lines() throws IOException {
        List<Map<String, Object>> out = new ArrayList<>();
        for (String l : Files.readAllLines(log)) {
            out.add(Json.parseObject(l));
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Object o) {
        return (Map<String, Object>) o;
    }

    private static long num(Object o) {
        return ((Number) o).longValue();
    }

    /** Checks one round: every task of every role logged, all got the same spec of their own addresses. */
    @SuppressWarnings("unchecked")
    private static void assertRound(List<Map<String, Object>> round, Map<String, Integer> roles, long epoch) {
        assertEquals(roles.values().stream().mapToInt(Integer::intValue).sum(), round.size(), "one line per task: " + round);
        Map<String, Object> cluster = map(map(round.get(0).get("spec")).get("cluster"));
        for (Map<String, Object> l : round) {
            Map<String, Object> spec = map(l.get("spec"));
            assertEquals(epoch, num(spec.get("epoch")));
            assertEquals(cluster, spec.get("cluster"), "every task got the same spec");
            Map<String, Object> task = map(spec.get("task"));
            assertEquals(l.get("role"), task.get("type"));
            assertEquals(num(l.get("index")), num(task.get("index")));
            List<Object> members = (List<Object>) cluster.get(l.get("role"));
            assertEquals("127.0.0.1:" + num(l.get("port")), members.get((int) num(l.get("index"))),
                    "the spec holds the address this task reported");
        }
        for (Map.Entry<String, Integer> r : roles.entrySet()) {
            assertEquals(r.getValue().intValue(), ((List<Object>) cluster.get(r.getKey())).size(), r.getKey());
        }
    }

    private void assertNoFilesLeft() throws IOException {
        try (Stream<Path> s = Files.list(ringDir)) {
            assertEquals(List.of(), s.map(p -> p.getFileName().toString()).collect(Collectors.toList()),
                    "every task removes its ring, heartbeat, context, address and spec files");
        }
    }

    @Test
    void specReachesEveryTaskAndPsIsStoppedWhenTheWorkersFinish() throws Exception {
        TFClusterConfig config = cluster("batch").addRole("worker", 2).addRole("ps", 1).build();
        // Files of a cluster of the same name outside this job's directory (another job's, or the
        // flat layout of earlier versions): never read, never touched.
        Path foreignAddr = ringDir.resolve("batch-worker-1.addr.json");
        Path foreignSpec = ringDir.resolve("batch-ps-0.spec.json");
        Files.write(foreignAddr, "{\"host\": \"10.9.9.9\", \"port\": 1}".getBytes(StandardCharsets.UTF_8));
        Files.write(foreignSpec, "{}".getBytes(StandardCharsets.UTF_8));
        StreamExecutionEnvironment env = env(2, 0);
        assertNull(TFCluster.addTo(env, config), "no output type: nothing comes back");
        env.execute("tf-cluster-batch"); // returns only when ps was stopped and every task ended
        Files.delete(foreignAddr);
        Files.delete(foreignSpec);

        List<Map<String, Object>> lines = lines();
        assertRound(lines, config.roleCounts(), 0);
        for (Map<String, Object> l : lines) {
            assertEquals(0, num(l.get("attempt")));
            assertEquals(List.of(), l.get("rings"), "batch mode: no ring");
            Map<String, Object> c = map(l.get("cluster"));
            assertEquals("batch", c.get("name"));
            assertEquals("worker:0", c.get("chief"));
            assertEquals(Map.of("worker", 2L, "ps", 1L), c.get("roles"));
        }
        assertNoFilesLeft();
    }

    @Test
    void withAChiefTheChiefsEndStopsWorkersAndPs() throws Exception {
        TFClusterConfig config = cluster("chief").addRole("worker", 2).addRole("ps", 1).setChief(true)
                .setProperty("blocking_roles", "worker,ps") // as ParameterServerStrategy: only the chief returns
                .build();
        StreamExecutionEnvironment env = env(2, 0);
        TFCluster.addTo(env, config);
        env.execute("tf-cluster-chief"); // ends only if the AM stopped the blocked workers and ps
        List<Map<String, Object>> lines = lines();
        assertRound(lines, config.roleCounts(), 0);
        assertEquals("chief:0", map(lines.get(0).get("cluster")).get("chief"));
        assertNoFilesLeft();
    }

    @Test
    void aKilledProcessRestartsTheWholeClusterWithTheNextEpochAndAttempt() throws Exception {
        TFClusterConfig config = cluster("failover").addRole("worker", 2).addRole("ps", 1)
                .setProperty("die", "worker:1:0") // SIGKILLs itself once it has the spec
                .build();
        StreamExecutionEnvironment env = env(2, 6);
        TFCluster.addTo(env, config);
        env.execute("tf-cluster-failover");

        List<Map<String, Object>> lines = lines();
        Map<Long, List<Map<String, Object>>> byEpoch = new TreeMap<>();
        for (Map<String, Object> l : lines) {
            byEpoch.computeIfAbsent(num(map(l.get("spec")).get("epoch")), k -> new ArrayList<>()).add(l);
        }
        assertEquals(Set.of(0L, 1L), byEpoch.keySet(), "one restart, one new round: " + lines);
        assertTrue(byEpoch.get(0L).stream().anyMatch(l -> l.get("role").equals("worker") && num(l.get("index")) == 1),
                "the task that died had its spec");
        assertRound(byEpoch.get(1L), config.roleCounts(), 1);
        for (Map<String, Object> l : byEpoch.get(1L)) {
            assertTrue(num(l.get("attempt")) >= 1, "every task of the new round is a new attempt: " + l);
        }
        Set<Long> oldPids = byEpoch.get(0L).stream().map(l -> num(l.get("pid"))).collect(Collectors.toSet());
        for (Map<String, Object> l : byEpoch.get(1L)) {
            assertFalse(oldPids.contains(num(l.get("pid"))), "new processes");
        }
        assertNoFilesLeft();
    }

    @Test
    void aHungProcessIsKilledThroughItsHeartbeatAndTheClusterRestarts() throws Exception {
        TFClusterConfig config = cluster("hung").addRole("worker", 1).addRole("ps", 1)
                .setProperty("sigstop", "worker:0:0") // stops itself (SIGSTOP) once it has the spec
                .setHeartbeatTimeoutMillis(2000)
                .build();
        StreamExecutionEnvironment env = env(1, 6);
        TFCluster.addTo(env, config);
        env.execute("tf-cluster-hung");
        List<Map<String, Object>> round1 = new ArrayList<>();
        for (Map<String, Object> l : lines()) {
            if (num(map(l.get("spec")).get("epoch")) == 1) {
                round1.add(l);
            }
        }
        assertRound(round1, config.roleCounts(), 1);
        assertNoFilesLeft();
    }

    @Test
    void aTaskThatCannotStartEndsTheJobWithItsErrorInsteadOfRestartingForever() throws Exception {
        TFClusterConfig config = cluster("nostart").addRole("worker", 2).addRole("ps", 1)
                .setProperty("crash_at_start", "worker:1")
                .setMaxFailedStarts(2)
                .build();
        StreamExecutionEnvironment env = env(2, 100);
        TFCluster.addTo(env, config);
        Exception e = assertThrows(Exception.class, () -> env.execute("tf-cluster-nostart"));
        String chain = org.apache.flink.util.ExceptionUtils.stringifyException(e);
        assertTrue(chain.contains("task worker:1 failed before it registered in 2 rounds in a row"), chain);
        assertTrue(chain.contains("ImportError: no module named 'missing'"), "the process's own error: " + chain);
        int starts = Files.readAllLines(Paths.get(log + ".crashes")).size();
        // Two rounds; a regional restart racing the global one may add an attempt, never a hundred.
        assertTrue(starts >= 2 && starts <= 4, starts + " attempts");
        assertNoFilesLeft();
    }

    @Test
    void aFedWorkerKilledMidStreamRestartsTheClusterAndNoRowIsLost() throws Exception {
        TFClusterConfig config = cluster("fedkill").addRole("worker", 2).addRole("ps", 1).setBatchRows(50)
                .setProperty("die_after", "worker:1:0:2000")
                .build();
        StreamExecutionEnvironment env = env(2, 6);
        env.enableCheckpointing(100);
        RowTypeInfo type = new RowTypeInfo(new TypeInformation<?>[] {Types.LONG}, new String[] {"id"});
        int n = 6000;
        DataStream<Row> rows = env.fromSequence(0, n - 1).setParallelism(1).map(i -> { // chained: no backlog before a barrier
            if (i % 20 == 0) {
                Thread.sleep(10); // a stream that lasts a few checkpoints, before and after the kill
            }
            return Row.of(i);
        }).returns(type).setParallelism(1);
        TFCluster.addTo(rows, config);
        env.execute("tf-cluster-fedkill");

        List<Map<String, Object>> round1 = new ArrayList<>();
        for (Map<String, Object> l : lines()) {
            if (num(map(l.get("spec")).get("epoch")) == 1) {
                round1.add(l);
            }
        }
        assertRound(round1, config.roleCounts(), 1);
        Set<Long> consumed = new HashSet<>();
        boolean killedOnesShare = false;
        for (String l : Files.readAllLines(Paths.get(log + ".ids"))) {
            Map<String, Object> m = Json.parseObject(l);
            killedOnesShare |= m.get("task").equals("worker:1:0");
            ((List<?>) m.get("ids")).forEach(v -> consumed.add(num(v)));
        }
        assertTrue(killedOnesShare, "the killed worker had read rows");
        assertEquals(n, consumed.size(), "every row reached a worker: at-least-once across the restart");
        assertNoFilesLeft();
    }

    @Test
    void fedWorkersReadEveryRowOfTheStreamFromTheirRings() throws Exception {
        // Small rings and slow starts: the rings fill up before the processes have the spec, while
        // checkpoints run (Flink holds back coordinator events during a checkpoint: no deadlock).
        TFClusterConfig config = cluster("fed").addRole("worker", 2).addRole("ps", 1).setBatchRows(100)
                .setRingCapacity(16384).setProperty("startup_delay", "2").build();
        StreamExecutionEnvironment env = env(2, 0);
        env.enableCheckpointing(100); // batches cut and rings drained before barriers, while the ps task waits
        RowTypeInfo type = new RowTypeInfo(new TypeInformation<?>[] {Types.LONG}, new String[] {"id"});
        DataStream<Row> rows = env.fromSequence(0, 4999).setParallelism(1).map(i -> {
            if (i % 50 == 0) {
                Thread.sleep(10); // a stream that lasts a few checkpoints
            }
            return Row.of(i);
        }).returns(type).setParallelism(1);
        TFCluster.addTo(rows, config);
        env.execute("tf-cluster-fed");

        List<Map<String, Object>> lines = lines();
        assertRound(lines, config.roleCounts(), 0);
        List<Long> ids = new ArrayList<>();
        for (Map<String, Object> l : lines) {
            if (l.get("role").equals("worker")) {
                assertEquals(1, ((List<?>) l.get("rings")).size());
                List<?> got = (List<?>) l.get("ids");
                assertFalse(got.isEmpty(), "rebalance gives each worker a share");
                got.forEach(v -> ids.add(num(v)));
            } else {
                assertEquals(List.of(), l.get("rings"));
            }
        }
        assertEquals(5000, ids.size(), "no row lost or doubled");
        assertEquals(5000, new HashSet<>(ids).size());
        assertEquals(Arrays.asList(0L, 4999L), Arrays.asList(ids.stream().min(Long::compare).get(),
                ids.stream().max(Long::compare).get()));
        assertNoFilesLeft();
    }

    @Test
    void rowsTheProcessesEmitComeBackIntoTheStream() throws Exception {
        RowTypeInfo out = new RowTypeInfo(new TypeInformation<?>[] {Types.STRING, Types.LONG}, new String[] {"task", "id"});
        // A small output ring: the processes wait for the operator to take rows while it feeds them.
        TFClusterConfig config = cluster("out").addRole("worker", 2).addRole("ps", 1).addRole("eval", 1, false)
                .setBatchRows(64).setRingCapacity(16384).setOutputRowType(out).build();
        StreamExecutionEnvironment env = env(4, 0);
        RowTypeInfo type = new RowTypeInfo(new TypeInformation<?>[] {Types.LONG}, new String[] {"id"});
        DataStream<Row> rows = env.fromSequence(0, 2999).setParallelism(1).map(Row::of).returns(type).setParallelism(1);
        DataStream<Row> emitted = TFCluster.addTo(rows, config);
        assertNotNull(emitted);
        assertEquals(out, emitted.getType());
        List<Row> got = new ArrayList<>();
        emitted.executeAndCollect("tf-cluster-output").forEachRemaining(got::add);

        Map<String, List<Long>> byTask = new TreeMap<>();
        for (Row r : got) {
            byTask.computeIfAbsent((String) r.getField(0), k -> new ArrayList<>()).add((Long) r.getField(1));
        }
        assertEquals(Set.of("worker:0", "worker:1", "eval:0"), byTask.keySet(), "the ps (stopped) emitted nothing");
        assertEquals(List.of(-1L), byTask.get("eval:0"), "an unfed role emits too");
        List<Long> ids = new ArrayList<>(byTask.get("worker:0"));
        ids.addAll(byTask.get("worker:1"));
        assertEquals(3000, ids.size(), "every row a worker emitted arrived once");
        assertEquals(3000, new HashSet<>(ids).size());
        assertNoFilesLeft();
    }
}
