package io.flinktf.ipc.arrow;

import io.flinktf.ipc.RecordEncoders;
import io.flinktf.ipc.RingSink;
import io.flinktf.ipc.RingSinkBuilder;
import java.util.Map;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.DataStreamSink;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.types.Row;

/**
 * The front door of the {@code arrow} codec on the JVM: a stream of Rows into rings, as Arrow
 * record batches that pyarrow reads zero-copy ({@code flinktf_ipc.arrow.ArrowRingReader}).
 *
 * <pre>{@code
 * ArrowRings.sinkTo(rows, rowType, Map.of("x", new int[] {28, 28}),
 *         RingSink.<byte[]>builder().setName("mnist"),
 *         ArrowBatchOptions.defaults().setBatchRows(512));
 * }</pre>
 */
public final class ArrowRings {
    private ArrowRings() {}

    /**
     * Batches {@code stream} into Arrow messages ({@link ArrowBatchOperator}) and writes them with
     * the sink that {@code sink} builds, chained, with the same parallelism: subtask i's rows go
     * to ring i. The builder's encoder is set to {@code bytes} and its alignment to 64 (the arrow
     * codec needs both); everything else (name, directory, capacity, timeouts) is the caller's.
     *
     * @param type the row type (field names become column names)
     * @param shapes fixed shapes of array columns (may be null or empty: every array is ragged)
     * @param options batch limits (null: {@link ArrowBatchOptions#defaults()})
     * @throws IllegalArgumentException for a column type without an Arrow mapping or a bad shape
     */
    public static DataStreamSink<byte[]> sinkTo(DataStream<Row> stream, RowTypeInfo type, Map<String, int[]> shapes,
            RingSinkBuilder<byte[]> sink, ArrowBatchOptions options) {
        if (stream == null || sink == null) {
            throw new IllegalArgumentException("ArrowRings: stream and sink builder must not be null");
        }
        ArrowSchema schema = ArrowSchema.of(type, shapes);
        ArrowBatchOptions opts = options == null ? ArrowBatchOptions.defaults() : options.copy();
        RingSink<byte[]> ringSink = sink.setEncoder(RecordEncoders.bytes()).setAlign(64).build();
        int parallelism = stream.getParallelism();
        SingleOutputStreamOperator<byte[]> batches = stream.transform("Arrow batches",
                PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO, new ArrowBatchOperator(schema, opts));
        DataStreamSink<byte[]> out = batches.sinkTo(ringSink).name("Arrow ring sink");
        if (parallelism > 0) { // forward, so that the batches of subtask i stay in ring i
            batches.setParallelism(parallelism);
            out.setParallelism(parallelism);
        }
        return out;
    }

    /** {@link #sinkTo} with default batch options. */
    public static DataStreamSink<byte[]> sinkTo(DataStream<Row> stream, RowTypeInfo type, Map<String, int[]> shapes,
            RingSinkBuilder<byte[]> sink) {
        return sinkTo(stream, type, shapes, sink, null);
    }
}
