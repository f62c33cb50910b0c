package io.flinktf.ipc.arrow;

import io.flinktf.ipc.RecordBatcher;
import io.flinktf.ipc.RingWriter;
import java.io.IOException;
import java.io.InterruptedIOException;
import org.apache.flink.types.Row;

/**
 * The {@code arrow} codec as a {@link RecordBatcher} of {@link io.flinktf.ipc.RingSink}: at open the
 * codec header record and the Schema message (every attempt's fresh ring is self-describing), then
 * one RecordBatch message per batch, each row encoded straight into the ring ({@link
 * ArrowRingBatcher}). A batch is cut at {@code batchRows} rows or {@code batchBytes} of buffers
 * here (at multiples of {@code batchSize} when one is set, {@link ArrowBatchOptions#full}), and by
 * the sink's writer when its first row is {@code linger} old, before every checkpoint barrier and
 * at end of input ({@link ArrowBatchOptions}).
 */
public final class ArrowRecordBatcher implements RecordBatcher<Row> {
    private static final long serialVersionUID = 1L;

    private final ArrowSchema schema;
    private final ArrowBatchOptions options;

    public ArrowRecordBatcher(ArrowSchema schema, ArrowBatchOptions options) {
        this.schema = schema;
        this.options = (options == null ? ArrowBatchOptions.defaults() : options).copy();
    }

    @Override
    public long lingerMillis() {
        return options.lingerMillis();
    }

    @Override
    public Batch<Row> open(RingWriter ring, long writeTimeoutNanos) throws IOException {
        try {
            ring.write(ArrowBatchEncoder.codecHeader(ArrowBatchOptions.codecParams(options.batchSize())), writeTimeoutNanos);
            ring.write(schema.schemaMessage(), writeTimeoutNanos);
            ring.publish();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new InterruptedIOException("interrupted while writing the Arrow stream's header");
        }
        // A fixed-size row reserves room for the rows that reach batchBytes at most (with a batch
        // size, up to the next multiple of it: the cut waits for one).
        long rowBytes = ArrowRingBatcher.fixedRowBytes(schema);
        int maxRows = options.batchRows();
        if (rowBytes > 0) {
            long toBytes = (options.batchBytes() + rowBytes - 1) / rowBytes + Math.max(0, options.batchSize() - 1);
            maxRows = (int) Math.max(1, Math.min(maxRows, toBytes));
        }
        ArrowRingBatcher batcher = new ArrowRingBatcher(schema, ring, maxRows, writeTimeoutNanos);
        return new Batch<Row>() {
            private long streamRows; // rows of this stream so far: cuts stay at multiples of the batch size

            @Override
            public boolean add(Row row) throws IOException, InterruptedException {
                batcher.add(row);
                streamRows++;
                return batcher.rows() >= batcher.maxRows()
                        || options.full(streamRows, batcher.rows(), batcher.bufferBytes());
            }

            @Override
            public int rows() {
                return batcher.rows();
            }

            @Override
            public int cut() throws IOException, InterruptedException {
                return batcher.flush();
            }
        };
    }
}
