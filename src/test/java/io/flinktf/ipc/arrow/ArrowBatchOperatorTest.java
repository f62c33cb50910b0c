package io.flinktf.ipc.arrow;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
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

/**
 * The batching operator in a Flink mini-cluster: when batches are cut (rows, bytes, linger,
 * checkpoint, end of input) and what each subtask's stream starts with. Its output goes to a
 * collecting sink here; the ring path is covered by tests/test_jvm_arrow*.py.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ArrowBatchOperatorTest {
    static final Map<String, List<byte[]>> OUT = new ConcurrentHashMap<>();
    static final RowTypeInfo TYPE = new RowTypeInfo(new TypeInformation<?>[] {Types.LONG}, new String[] {"i"});

    /** Collects every record under a key (the mini-cluster runs in this JVM). */
    static final class Collect implements Sink<byte[]> {
        private static final long serialVersionUID = 1L;
        final String key;

        Collect(String key) {
            this.key = key;
            OUT.put(key, new CopyOnWriteArrayList<>());
        }

        @Override
        public SinkWriter<byte[]> createWriter(WriterInitContext context) {
            List<byte[]> out = OUT.get(key);
            return new SinkWriter<>() {
                @Override
                public void write(byte[] element, Context ctx) {
                    out.add(element);
                }

                @Override
                public void flush(boolean endOfInput) {}

                @Override
                public void close() {}
            };
        }
    }

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

    /** Runs rows -> operator -> collect; returns the row counts of the batches, in order. */
    private static List<Long> run(String key, StreamExecutionEnvironment env, DataStream<Row> rows,
            ArrowBatchOptions options) throws Exception {
        rows.transform("Arrow batches", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
                        new ArrowBatchOperator(ArrowSchema.of(TYPE, null), options))
                .sinkTo(new Collect(key));
        env.execute(key);
        List<byte[]> out = OUT.remove(key);
        assertTrue(out.size() >= 2);
        assertEquals("flinktf-codec:arrow\n{}", new String(out.get(0), StandardCharsets.UTF_8));
        assertEquals(1, ArrowMessages.parse(out.get(1)).headerType, "the Schema message second");
        List<Long> sizes = new ArrayList<>();
        for (byte[] m : out.subList(2, out.size())) {
            ArrowMessages.Parsed p = ArrowMessages.parse(m);
            assertEquals(3, p.headerType);
            assertTrue(p.rows > 0, "no empty batches from the operator");
            sizes.add(p.rows);
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
