package io.flinktf.ipc.arrow;

import io.flinktf.ipc.RingSink;
import io.flinktf.ipc.RingSinkBuilder;
import java.util.Map;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.DataStreamSink;
import org.apache.flink.types.Row;

/**
 * The front door of the {@code arrow} codec on the JVM: a stream of Rows into rings, as Arrow
 * record batches that pyarrow reads zero-copy ({@code flinktf_ipc.arrow.ArrowRingReader}).
 *
 * <pre>{@code
 * ArrowRings.sinkTo(rows, rowType, Map.of("x", new int[] {28, 28}),
 *         RingSink.<Row>builder().setName("mnist"),
 *         ArrowBatchOptions.defaults().setBatchRows(512));
 * }</pre>
 */
public final class ArrowRings {
    private ArrowRings() {}

    /**
     * Writes {@code stream} into rings as Arrow batches with the sink that {@code sink} builds:
     * the sink's writer gathers the rows and encodes each one straight into the ring ({@link
     * ArrowRecordBatcher}), with the stream's parallelism: subtask i's rows go to ring i. The
     * builder's batcher is set (it replaces the encoder) and its alignment to 64 (the arrow codec
     * needs it); everything else (name, directory, capacity, timeouts, worker) is the caller's.
     *
     * @param type the row type (field names become column names)
     * @param shapes fixed shapes of array columns (may be null or empty: every array is ragged)
     * @param sink the sink's builder, of any element type: it becomes a builder of Rows
     * @param options batch limits (null: {@link ArrowBatchOptions#defaults()})
     * @throws IllegalArgumentException for a column type without an Arrow mapping or a bad shape
     */
    @SuppressWarnings("unchecked")
    public static DataStreamSink<Row> sinkTo(DataStream<Row> stream, RowTypeInfo type, Map<String, int[]> shapes,
            RingSinkBuilder<?> sink, ArrowBatchOptions options) {
        if (stream == null || sink == null) {
            throw new IllegalArgumentException("ArrowRings: stream and sink builder must not be null");
        }
        ArrowSchema schema = ArrowSchema.of(type, shapes);
        RingSinkBuilder<Row> rows = (RingSinkBuilder<Row>) sink; // the element type matters only to the encoder
        RingSink<Row> ringSink = rows.setBatcher(new ArrowRecordBatcher(schema, options)).setAlign(64).build();
        int parallelism = stream.getParallelism();
        DataStreamSink<Row> out = stream.sinkTo(ringSink).name("Arrow ring sink");
        if (parallelism > 0) { // forward, so that the rows of subtask i stay in ring i
            out.setParallelism(parallelism);
        }
        return out;
    }

    /** {@link #sinkTo} with default batch options. */
    public static DataStreamSink<Row> sinkTo(DataStream<Row> stream, RowTypeInfo type, Map<String, int[]> shapes,
            RingSinkBuilder<?> sink) {
        return sinkTo(stream, type, shapes, sink, null);
    }
}
