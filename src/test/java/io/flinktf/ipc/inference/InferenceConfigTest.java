package io.flinktf.ipc.inference;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.nio.file.Paths;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.junit.jupiter.api.Test;

/** The inference builder checks everything in build(), with messages that say what to change. */
class InferenceConfigTest {
    private static final RowTypeInfo IN = new RowTypeInfo(new TypeInformation<?>[] {Types.LONG, Types.FLOAT},
            new String[] {"id", "x"});
    private static final RowTypeInfo OUT = new RowTypeInfo(new TypeInformation<?>[] {Types.LONG, Types.FLOAT},
            new String[] {"id", "y"});

    private static InferenceConfigBuilder valid() {
        return InferenceConfig.builder().setName("scores").setWorkers(2).setEntry("pkg.mod:main")
                .setInputType(IN).setOutputType(OUT).setBaseDir("/dev/shm/x");
    }

    private static void refused(InferenceConfigBuilder b, String expect) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, b::build);
        assertTrue(e.getMessage().contains(expect), e.getMessage());
    }

    @Test
    void aValidConfigNamesItsRings() {
        InferenceConfig c = valid().build();
        Path in = c.inputRing(1, 0);
        assertEquals(Paths.get("/dev/shm/x/scores-1.ring"), in);
        assertEquals(Paths.get("/dev/shm/x/scores-1.out.ring"), InferenceConfig.outputRing(in));
        assertEquals(Paths.get("/dev/shm/x/scores-0.attempt2.out.ring"), InferenceConfig.outputRing(c.inputRing(0, 2)));
        assertEquals(OUT, c.outputType());
    }

    @Test
    void everySettingIsChecked() {
        refused(valid().setWorkers(0), "num_workers must be >= 1");
        refused(valid().setEntry(""), "entry");
        refused(valid().setName("../x"), "name must be");
        refused(valid().setBaseDir("rel/dir"), "must be absolute");
        refused(valid().setCapacities(5000, 1 << 20), "powers of two");
        refused(valid().setBatch(0, 1024), "batch rows");
        refused(valid().setBatch(10, (16L << 20) / 4), "an eighth of the input ring");
        refused(valid().setLingerMicros(0), "linger");
        refused(valid().setInFlight(0), "in-flight");
        refused(valid().setHeartbeatTimeoutMillis(500), "heartbeat interval");
        refused(InferenceConfig.builder().setEntry("m:f").setOutputType(OUT), "needs a row type");
        refused(InferenceConfig.builder().setEntry("m:f").setInputType(IN), "output_row_type is required");
        RowTypeInfo odd = new RowTypeInfo(new TypeInformation<?>[] {Types.VOID}, new String[] {"v"});
        refused(valid().setOutputType(odd), "has no Arrow mapping");
        assertThrows(IllegalArgumentException.class, () -> valid().setInputType(Types.LONG));
    }
}
