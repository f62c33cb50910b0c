package io.flinktf.ipc.cluster;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Map;
import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

/** The builder's checks, the derived values, and addTo's checks before any job runs. */
class TFClusterConfigTest {
    private static TFClusterConfigBuilder valid() {
        return TFClusterConfig.builder().addRole("worker", 2).setEntry("pkg.train:main");
    }

    private static String problem(TFClusterConfigBuilder b) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, b::build);
        assertTrue(e.getMessage().startsWith("TFClusterConfig: "), e.getMessage());
        return e.getMessage();
    }

    @Test
    void buildNamesEveryProblem() {
        String m = problem(TFClusterConfig.builder());
        assertTrue(m.contains("no role") && m.contains("setEntry(...) is required"), m);
        m = problem(valid().addRole("worker", 3));
        assertTrue(m.contains("role 'worker' added twice"), m);
        assertTrue(problem(valid().addRole("Bad-Name", 1)).contains("role name must match"));
        assertTrue(problem(valid().addRole("writer", 1)).contains("'writer' is taken"));
        assertTrue(problem(valid().addRole("ps", 0)).contains("role 'ps' needs at least 1 task, got 0"));
        assertTrue(problem(valid().addRole("chief", 2)).contains("'chief' must have exactly 1 task"));
        assertTrue(problem(valid().setName("a/b")).contains("name must be"));
        assertTrue(problem(valid().setEntry("rel/file.py:main")).contains("absolute path"));
        assertTrue(problem(valid().setEntry(":main")).contains("names no module"));
        assertTrue(problem(valid().setHeartbeatIntervalMillis(1000).setHeartbeatTimeoutMillis(1500))
                .contains("at least twice the heartbeatInterval"));
        assertTrue(problem(valid().setRingCapacity(5000)).contains("power of two"));
        assertTrue(problem(valid().setRingCapacity(1 << 16).setBatchBytes(1 << 15)).contains("quarter of ringCapacity"));
        assertTrue(problem(valid().setCheckpointDir("ckpt")).contains("checkpointDir must be an absolute path"));
        assertTrue(problem(valid().setBaseDir("")).contains("baseDir must be an absolute path"));
        assertTrue(problem(valid().setShape("x", new int[] {28, 0})).contains("shape of column 'x'"));
        assertTrue(problem(valid().setProperty("", "v")).contains("non-empty key"));
        assertTrue(problem(valid().setLingerMillis(0)).contains("linger"));
        assertTrue(problem(valid().setShutdownGraceMillis(0)).contains("shutdownGrace"));
        m = problem(valid().setBatchRows(0).setRegistrationTimeoutMillis(-1));
        assertTrue(m.contains("batchRows") && m.contains("registrationTimeout"), "both problems: " + m);
    }

    @Test
    void derivedValues() {
        TFClusterConfig c = valid().addRole("ps", 1).setRingCapacity(1 << 20).build();
        assertEquals("tf", c.name());
        assertEquals(Map.of("worker", 2, "ps", 1), c.roleCounts());
        assertEquals("worker:0", c.chief());
        assertEquals("worker", c.finishingRole());
        assertEquals((1 << 20) / 8, c.batchBytes(), "default batch bytes: an eighth of a small ring");
        assertEquals(0, c.flushTimeoutMillis(), "0: from the checkpoint timeout");

        TFClusterConfig withChief = valid().setChief(true).build();
        assertEquals("chief:0", withChief.chief());
        assertEquals("chief", withChief.finishingRole());
        assertEquals(Boolean.FALSE, withChief.role("chief").fed());
        assertNull(valid().setChief(true).setChief(false).build().role("chief"));

        TFClusterConfig custom = TFClusterConfig.builder().addRole("evaluator", 1).setEntry("/abs/f.py:run").build();
        assertEquals("evaluator:0", custom.chief());
        assertNull(custom.finishingRole(), "no worker, no chief: each role ends alone");
    }

    @Test
    void fedRolesDefaultToWorkerOnlyWithAnInput() {
        TFClusterConfig c = valid().addRole("ps", 1).build();
        assertEquals(java.util.Set.of("worker"), TFCluster.fedRoles(c, true));
        assertEquals(java.util.Set.of(), TFCluster.fedRoles(c, false));
        TFClusterConfig explicit = valid().addRole("reader", 2, true).build();
        assertEquals(java.util.Set.of("reader"), TFCluster.fedRoles(explicit, true));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TFCluster.fedRoles(explicit, false));
        assertTrue(e.getMessage().contains("no input stream"), e.getMessage());
        TFClusterConfig noWorker = TFClusterConfig.builder().addRole("ps", 1).setEntry("m:f").build();
        e = assertThrows(IllegalArgumentException.class, () -> TFCluster.fedRoles(noWorker, true));
        assertTrue(e.getMessage().contains("no role reads it"), e.getMessage());
    }

    @Test
    void addToRefusesWhatCannotWork() {
        TFClusterConfig c = valid().build();
        Configuration conf = new Configuration();
        conf.set(ExecutionOptions.RUNTIME_MODE, RuntimeExecutionMode.BATCH);
        StreamExecutionEnvironment batch = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TFCluster.addTo(batch, c));
        assertTrue(e.getMessage().contains("BATCH"), e.getMessage());

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        @SuppressWarnings("unchecked")
        DataStream<Row> untyped = (DataStream<Row>) (DataStream<?>) env.fromData(1L, 2L);
        e = assertThrows(IllegalArgumentException.class, () -> TFCluster.addTo(untyped, c));
        assertTrue(e.getMessage().contains("no row type"), e.getMessage());

        RowTypeInfo bad = new RowTypeInfo(new TypeInformation<?>[] {Types.LOCAL_DATE}, new String[] {"d"});
        DataStream<Row> rows = env.fromData(Row.of(java.time.LocalDate.EPOCH)).returns(bad);
        e = assertThrows(IllegalArgumentException.class, () -> TFCluster.addTo(rows, c));
        assertTrue(e.getMessage().startsWith("TFCluster: "), e.getMessage());

        @SuppressWarnings("unchecked")
        TypeInformation<Row> notARow = (TypeInformation<Row>) (TypeInformation<?>) Types.LONG;
        e = assertThrows(IllegalArgumentException.class, () -> TFCluster.addTo(rows, notARow, c));
        assertTrue(e.getMessage().contains("must be a named row type"), e.getMessage());
    }
}
