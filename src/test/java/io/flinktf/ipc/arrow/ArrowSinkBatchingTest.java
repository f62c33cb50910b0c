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
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ArrowRings#sinkTo} in a Flink mini-cluster: the ring sink's writer batches the rows itself
 * ({@link ArrowRecordBatcher}, rows encoded straight into the ring) and cuts batches at the row
 * and byte limits, at the linger timer, at checkpoints and at end of input; each ring starts with
 * the codec header and the Schema message. A Java {@link RingReader} reads the ring.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ArrowSinkBatchingTest {
    private static final long SECOND = 1_000_000_000L;
    static final RowTypeInfo TYPE = new RowTypeInfo(new TypeInformation<?>[] {Types.LONG}, new String[] {"i"});

    @TempDir
    Path tmp;

    private static StreamExecutionEnvironment env() {
        Configuration conf = new Configuration();
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        return StreamExecutionEnvironment.createLocalEnvironment(1, conf);
    }

    private static DataStream<Row> rows(StreamExecutionEnvironment env, long count, double perSecond) {
        GeneratorFunction<Long, Row> gen = Row::of;
        DataGeneratorSource<Row> src = new DataGeneratorSource<>(gen, count,
                perSecond > 0 ? RateLimiterStrategy.perSecond(perSecond) : RateLimiterStrategy.noOp(), TYPE);
        return env.fromSource(src, WatermarkStrategy.noWatermarks(), "rows");
    }

    /** Runs rows -> ArrowRings.sinkTo -> ring 0; returns the row counts of the batches, in order. */
    private List<Long> run(String name, StreamExecutionEnvironment env, DataStream<Row> rows, ArrowBatchOptions options)
            throws Exception {
        ArrowRings.sinkTo(rows, TYPE, null, RingSink.<Row>builder().setBaseDir(tmp.toString()).setName(name)
                .setCapacity(1 << 20), options);
        Path ring = tmp.resolve(name + "-0.ring");
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
        env.execute(name);
        List<byte[]> out = read.get(60, TimeUnit.SECONDS);
        assertTrue(out.size() >= 2);
        assertEquals("flinktf-codec:arrow\n{}", new String(out.get(0), StandardCharsets.UTF_8));
        assertEquals(1, ArrowMessages.parse(out.get(1)).headerType, "the Schema message second");
        List<Long> sizes = new ArrayList<>();
        long next = 0;
        for (byte[] m : out.subList(2, out.size())) {
            ArrowMessages.Parsed p = ArrowMessages.parse(m);
            assertEquals(3, p.headerType);
            assertTrue(p.rows > 0, "no empty batches");
            sizes.add(p.rows);
            ArrowBatchEncoder enc = new ArrowBatchEncoder(ArrowSchema.of(TYPE, null));
            for (long i = 0; i < p.rows; i++) {
                enc.add(Row.of(next++));
            }
            assertArrayEquals(enc.encode(), m, "the batch is the encoder's message of the next rows");
        }
        return sizes;
    }

    private static long sum(List<Long> xs) {
        return xs.stream().mapToLong(Long::longValue).sum();
    }

    @Test
    void batchesAreCutAtTheRowLimitAndTheRestAtEndOfInput() throws Exception {
        StreamExecutionEnvironment env = env();
        List<Long> sizes = run("rows", env, rows(env, 10_000, 0),
                ArrowBatchOptions.defaults().setBatchRows(3000).setLingerMillis(3_600_000));
        assertEquals(List.of(3000L, 3000L, 3000L, 1000L), sizes);
    }

    @Test
    void batchesAreCutAtTheByteLimit() throws Exception {
        StreamExecutionEnvironment env = env();
        // one BIGINT column: 8 bytes a row, so 8000 bytes are 1000 rows
        List<Long> sizes = run("bytes", env, rows(env, 5_000, 0),
                ArrowBatchOptions.defaults().setBatchRows(100_000).setBatchBytes(8000).setLingerMillis(3_600_000));
        assertEquals(List.of(1000L, 1000L, 1000L, 1000L, 1000L), sizes);
    }

    @Test
    void lingerFlushesASlowStream() throws Exception {
        StreamExecutionEnvironment env = env();
        // 30 rows at 20/s; without the linger they would all wait for end of input (one batch)
        List<Long> sizes = run("linger", env, rows(env, 30, 20),
                ArrowBatchOptions.defaults().setBatchRows(1000).setLingerMillis(20));
        assertEquals(30, sum(sizes));
        assertTrue(sizes.size() >= 10, "the linger cut the slow stream into many batches: " + sizes);
    }

    @Test
    void checkpointsFlushTheOpenBatch() throws Exception {
        StreamExecutionEnvironment env = env();
        env.enableCheckpointing(100);
        // an hour of linger and a large row limit: only the checkpoints (and end of input) cut
        List<Long> sizes = run("checkpoint", env, rows(env, 40, 20),
                ArrowBatchOptions.defaults().setBatchRows(1000).setLingerMillis(3_600_000));
        assertEquals(40, sum(sizes));
        assertTrue(sizes.size() >= 4, "checkpoints cut the stream into batches: " + sizes);
    }
}
