package io.flinktf.ipc.arrow;

import org.apache.flink.api.common.operators.ProcessingTimeService.ProcessingTimeCallback;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;

/**
 * Rows in, Arrow IPC messages out ({@code byte[]}, one ring record each): at open the codec
 * header record and the Schema message, then one RecordBatch message per batch (see {@link
 * ArrowBatchOptions} for when a batch is cut). Every subtask starts its stream at open, so the
 * fresh ring of a restarted attempt starts with the header again.
 *
 * <p>Chained to a {@code RingSink} (bytes encoder, align 64) by {@link ArrowRings#sinkTo}. A batch
 * is flushed in {@link #prepareSnapshotPreBarrier}, before the sink's own pre-barrier flush, so a
 * completed checkpoint means the reader has every row before the barrier. Everything, the linger
 * timer included, runs in the task's mailbox thread.
 */
public final class ArrowBatchOperator extends AbstractStreamOperator<byte[]>
        implements OneInputStreamOperator<Row, byte[]>, ProcessingTimeCallback {
    private static final long serialVersionUID = 1L;

    private final ArrowSchema schema;
    private final ArrowBatchOptions options;

    private transient ArrowBatchEncoder encoder;
    private transient StreamRecord<byte[]> reuse;
    private transient long firstRowTime;
    private transient long streamRows; // rows of this stream so far: cuts stay at multiples of the batch size
    private transient boolean timerPending;
    private transient Counter batches;
    private transient Counter lingerFlushes;

    public ArrowBatchOperator(ArrowSchema schema, ArrowBatchOptions options) {
        this.schema = schema;
        this.options = options.copy();
    }

    @Override
    public void open() throws Exception {
        super.open();
        encoder = new ArrowBatchEncoder(schema);
        reuse = new StreamRecord<>(null);
        batches = getMetricGroup().counter("arrowBatches");
        lingerFlushes = getMetricGroup().counter("arrowLingerFlushes");
        output.collect(reuse.replace(ArrowBatchEncoder.codecHeader(ArrowBatchOptions.codecParams(options.batchSize()))));
        output.collect(reuse.replace(schema.schemaMessage()));
    }

    @Override
    public void processElement(StreamRecord<Row> element) throws Exception {
        encoder.add(element.getValue());
        streamRows++;
        if (encoder.rows() == 1) {
            firstRowTime = getProcessingTimeService().getCurrentProcessingTime();
            if (!timerPending) {
                timerPending = true;
                getProcessingTimeService().registerTimer(firstRowTime + options.lingerMillis(), this);
            }
        }
        if (options.full(streamRows, encoder.rows(), encoder.bufferBytes())) {
            flush();
        }
    }

    @Override
    public void onProcessingTime(long time) throws Exception {
        timerPending = false;
        if (encoder.rows() == 0) {
            return;
        }
        long due = firstRowTime + options.lingerMillis();
        if (time >= due) {
            lingerFlushes.inc();
            flush();
        } else { // the batch that armed this timer was cut already; the current one is younger
            timerPending = true;
            getProcessingTimeService().registerTimer(due, this);
        }
    }

    private void flush() {
        if (encoder.rows() == 0) {
            return;
        }
        output.collect(reuse.replace(encoder.encode()));
        batches.inc();
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        flush();
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    @Override
    public void finish() throws Exception {
        flush();
        super.finish();
    }
}
