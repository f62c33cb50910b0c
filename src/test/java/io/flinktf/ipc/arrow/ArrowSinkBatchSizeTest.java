package io.flinktf.ipc.arrow;

import static org.junit.jupiter.api.Assertions.*;

import io.flinktf.ipc.RingReader;
import io.flinktf.ipc.RingSink;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * One batch size end to end through the sink's own batcher ({@link ArrowRecordBatcher}) in a Flink
 * mini-cluster: the codec header declares the batch size and the byte limit waits for a multiple.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ArrowSinkBatchSizeTest {
    private static final long SECOND = 1_000_000_000L;

    @TempDir
    Path tmp;

    @Test
    void theHeaderDeclaresTheBatchSizeAndTheByteLimitWaitsForAMultipleOfIt() throws Exception {
        Configuration conf = new Configuration();
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(1, conf);
        GeneratorFunction<Long, Row> gen = Row::of;
        DataGeneratorSource<Row> src = new DataGeneratorSource<>(gen, 5_000, RateLimiterStrategy.noOp(),
                ArrowSinkBatchingTest.TYPE);
        // one BIGINT column: 8000 bytes are 1000 rows; batch size 300: the cut waits for 1200
        ArrowRings.sinkTo(env.fromSource(src, WatermarkStrategy.noWatermarks(), "rows"), ArrowSinkBatchingTest.TYPE,
                null, RingSink.<Row>builder().setBaseDir(tmp.toString()).setName("bs").setCapacity(1 << 20),
                ArrowBatchOptions.defaults().setBatchSize(300).setBatchRows(3000).setBatchBytes(8000)
                        .setLingerMillis(3_600_000));
        Path ring = tmp.resolve("bs-0.ring");
        CompletableFuture<List<byte[]>> read = CompletableFuture.supplyAsync(() -> {
            try {
                long deadline = System.nanoTime() + 60 * SECOND;
                while (!Files.exists(ring)) {
                    assertTrue(System.nanoTime() < deadline, "ring " + ring + " never appeared");
                    Thread.sleep(10);
                }
                List<byte[]> out = new ArrayList<>();
                try (RingReader r = RingReader.open(ring, 60 * SECOND)) {
                    RingReader.Batch b;
                    while ((b = r.next(16, 60 * SECOND)) != null) {
                        for (int k = 0; k < b.count(); k++) {
                            out.add(b.copy(k));
                        }
                        b.release();
                    }
                }
                return out;
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        env.execute("batch size");
        List<byte[]> out = read.get(60, TimeUnit.SECONDS);
        assertEquals("flinktf-codec:arrow\n{\"batch_size\": 300}", new String(out.get(0), StandardCharsets.UTF_8));
        List<Long> sizes = new ArrayList<>();
        for (byte[] m : out.subList(2, out.size())) {
            sizes.add(ArrowMessages.parse(m).rows);
        }
        assertEquals(List.of(1200L, 1200L, 1200L, 1200L, 200L), sizes);
    }
}
