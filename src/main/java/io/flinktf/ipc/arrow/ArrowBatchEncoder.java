package io.flinktf.ipc.arrow;

import io.flinktf.ipc.RecordEncoder;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;
import org.apache.flink.types.Row;

/**
 * Gathers {@link Row}s into columns and encodes them as one Arrow IPC RecordBatch message
 * (docs/FORMAT.md, "arrow"): continuation {@code 0xFFFFFFFF}, int32 metadata length, the
 * flatbuffer {@code Message}, zero padding so that the body starts at a multiple of 64 bytes from
 * the message start, then the body, in which every buffer starts at a multiple of 64. A ring
 * with {@code align = 64} puts the message at a 64-byte aligned address, so every column buffer
 * is 64-byte aligned in the reader's memory and wraps without a copy.
 *
 * <p>Used by one thread. A row whose value does not fit its column (a wrong Java type, an array
 * whose length does not match the declared shape) raises IllegalArgumentException naming the
 * column; rows added before it in the batch are kept only if the failing value was the row's
 * first: after a failure mid-row the encoder refuses to encode ({@link #isBroken}).
 */
public final class ArrowBatchEncoder {
    static final int BODY_ALIGN = 64;

    private final ArrowSchema schema;
    private final String[] names;
    private final Columns.Column[] columns;
    private final Columns.Layout layout = new Columns.Layout();
    private int rows;
    private boolean broken;
    // The layout of the current batch once prepare() ran; null: not prepared.
    private byte[] preparedMeta;
    private long[] preparedBuffers;
    private int preparedPrefix;
    private int preparedSize;

    public ArrowBatchEncoder(ArrowSchema schema) {
        this.schema = schema;
        List<String> n = schema.fieldNames();
        this.names = n.toArray(new String[0]);
        this.columns = schema.newColumns();
    }

    public ArrowSchema schema() {
        return schema;
    }

    /** Appends one row; its arity must be the schema's. */
    public void add(Row row) {
        if (preparedMeta != null) {
            throw new IllegalStateException("ArrowBatchEncoder: the batch was laid out for a write; write it first");
        }
        if (broken) {
            throw new IllegalStateException("ArrowBatchEncoder: an earlier row failed half-way; the batch is lost");
        }
        if (row.getArity() != columns.length) {
            throw new IllegalArgumentException("ArrowBatchEncoder: row of arity " + row.getArity()
                    + ", the schema has " + columns.length + " columns " + schema.fieldNames());
        }
        Set<String> named = row.getFieldNames(false);
        for (int i = 0; i < columns.length; i++) {
            Object v = named == null ? row.getField(i) : row.getField(names[i]);
            try {
                columns[i].append(v);
            } catch (RuntimeException e) {
                broken = i > 0;
                throw e;
            }
        }
        rows++;
    }

    /** Rows added since the last {@link #encode}. */
    public int rows() {
        return rows;
    }

    public boolean isBroken() {
        return broken;
    }

    /** Size of the buffers gathered so far, without metadata and padding: the batch-bytes measure. */
    public long bufferBytes() {
        long n = 0;
        for (Columns.Column c : columns) {
            n += c.bytes();
        }
        return n;
    }

    /** The RecordBatch message of the rows added since the last call (possibly none); starts a new batch. */
    public byte[] encode() {
        byte[] out = new byte[prepare()];
        writeTo(ByteBuffer.wrap(out));
        return out;
    }

    /**
     * Writes the batch straight into a ring's reserved frame (one copy of each column buffer, no
     * intermediate message array): {@code ringWriter.write(encoder, ArrowBatchEncoder.IN_PLACE,
     * timeout)}. The writer asks the size first, and may ask again after a wait that timed out;
     * the batch is laid out once and starts anew once written.
     */
    public static final RecordEncoder<ArrowBatchEncoder> IN_PLACE = new RecordEncoder<ArrowBatchEncoder>() {
        private static final long serialVersionUID = 1L;

        @Override
        public int encodedSize(ArrowBatchEncoder batch) {
            return batch.prepare();
        }

        @Override
        public void encode(ArrowBatchEncoder batch, ByteBuffer target) {
            batch.writeTo(target);
        }
    };

    /** The RecordBatch message's metadata flatbuffer: rows, field nodes, buffers (offset, length). */
    static byte[] recordBatchMessage(long rows, Columns.Layout nodes, long[] buffers, int nb, long bodyLength) {
        FlatBufferBuilder fb = new FlatBufferBuilder(256 + 16 * (nodes.nodeCount + nb));
        int nodeVec = fb.createLongPairVector(nodes.nodes, nodes.nodeCount);
        int bufVec = fb.createLongPairVector(buffers, nb);
        fb.startTable(5);
        fb.addLong(0, rows);
        fb.addOffset(1, nodeVec);
        fb.addOffset(2, bufVec);
        int batch = fb.endTable();
        return ArrowSchema.message(fb, ArrowSchema.HEADER_RECORD_BATCH, batch, bodyLength);
    }

    /**
     * Lays the current batch out (once: again only after {@link #writeTo}) and returns the size of
     * its message: continuation, metadata length, flatbuffer, padding, body.
     */
    int prepare() {
        if (broken) {
            throw new IllegalStateException("ArrowBatchEncoder: an earlier row failed half-way; the batch is lost");
        }
        if (preparedMeta != null) {
            return preparedSize;
        }
        layout.reset();
        for (Columns.Column c : columns) {
            c.layout(layout);
        }
        int nb = layout.bufCount;
        long[] buffers = new long[2 * nb];
        long pos = 0;
        for (int i = 0; i < nb; i++) {
            pos = align(pos, BODY_ALIGN);
            buffers[2 * i] = pos;
            buffers[2 * i + 1] = layout.bufLen[i];
            pos += layout.bufLen[i];
        }
        long bodyLength = align(pos, BODY_ALIGN);
        byte[] meta = recordBatchMessage(rows, layout, buffers, nb, bodyLength);
        long prefix = align(8L + meta.length, BODY_ALIGN);
        long total = prefix + bodyLength;
        if (total > Integer.MAX_VALUE - 64) {
            throw new IllegalStateException("Arrow message of " + total + " bytes: lower the batch limits");
        }
        preparedMeta = meta;
        preparedBuffers = buffers;
        preparedPrefix = (int) prefix;
        preparedSize = (int) total;
        return preparedSize;
    }

    /**
     * Writes the prepared message at {@code target}'s position (relative puts, exactly {@link
     * #prepare()} bytes, padding zeroed: a ring frame holds old bytes) and starts a new batch.
     */
    void writeTo(ByteBuffer target) {
        prepare();
        ByteOrder order = target.order();
        target.order(ByteOrder.LITTLE_ENDIAN);
        int start = target.position();
        target.putInt(0xFFFFFFFF);
        target.putInt(preparedPrefix - 8);
        target.put(preparedMeta);
        zeros(target, start + preparedPrefix - target.position());
        int bodyStart = start + preparedPrefix;
        for (int i = 0; i < layout.bufCount; i++) {
            zeros(target, bodyStart + (int) preparedBuffers[2 * i] - target.position());
            target.put(layout.bufData[i], 0, layout.bufLen[i]);
        }
        zeros(target, start + preparedSize - target.position());
        target.order(order);
        preparedMeta = null;
        preparedBuffers = null;
        layout.reset();
        for (Columns.Column c : columns) {
            c.reset();
        }
        rows = 0;
    }

    private static final byte[] ZEROS = new byte[BODY_ALIGN];

    private static void zeros(ByteBuffer target, int n) {
        while (n > 0) {
            int k = Math.min(n, ZEROS.length);
            target.put(ZEROS, 0, k);
            n -= k;
        }
    }

    /** Drops the rows gathered so far. */
    public void clear() {
        for (Columns.Column c : columns) {
            c.reset();
        }
        layout.reset();
        preparedMeta = null;
        preparedBuffers = null;
        rows = 0;
        broken = false;
    }

    static long align(long n, int a) {
        return (n + a - 1) & -(long) a;
    }

    /**
     * A message of {@code meta} and a zeroed body of {@code bodyLength} bytes: continuation,
     * metadata length (flatbuffer plus padding), flatbuffer, padding so that the body starts at a
     * multiple of {@code align}.
     */
    static byte[] encapsulate(byte[] meta, long bodyLength, int align) {
        long prefix = align(8L + meta.length, align);
        long total = prefix + bodyLength;
        if (total > Integer.MAX_VALUE - 64) {
            throw new IllegalStateException("Arrow message of " + total + " bytes: lower the batch limits");
        }
        byte[] out = new byte[(int) total];
        putIntLE(out, 0, 0xFFFFFFFF);
        putIntLE(out, 4, (int) (prefix - 8));
        System.arraycopy(meta, 0, out, 8, meta.length);
        return out;
    }

    private static void putIntLE(byte[] b, int at, int v) {
        b[at] = (byte) v;
        b[at + 1] = (byte) (v >>> 8);
        b[at + 2] = (byte) (v >>> 16);
        b[at + 3] = (byte) (v >>> 24);
    }

    /** The codec header record {@code flinktf-codec:arrow\n<paramsJson>} (docs/FORMAT.md). */
    public static byte[] codecHeader(String paramsJson) {
        return ("flinktf-codec:arrow\n" + paramsJson).getBytes(StandardCharsets.UTF_8);
    }
}
