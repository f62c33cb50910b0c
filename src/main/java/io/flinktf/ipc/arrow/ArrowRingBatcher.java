package io.flinktf.ipc.arrow;

import io.flinktf.ipc.RingWriter;
import java.io.IOException;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.DoubleBuffer;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.LongBuffer;
import java.nio.ShortBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.apache.flink.types.Row;

/**
 * Rows into a ring as Arrow RecordBatch messages, each row's values encoded once, straight into
 * the ring: the same bytes as {@link ArrowBatchEncoder#encode()} (docs/FORMAT.md, "arrow"), with
 * no column buffer and no message array in between.
 *
 * <p>When every column has a fixed size per row (fixed-width numbers, fixed-shape arrays of them:
 * MNIST's 784 floats and its label), the first row of a batch reserves a ring frame for {@code
 * maxRows} rows ({@link RingWriter#reserveRecord}) and each row is written at its place in the
 * reserved body: a primitive array in one bulk copy, a scalar in one store. {@link #flush} writes the
 * flatbuffer in front, moves the buffers down if the batch is short (and up to make room for
 * validity bitmaps, which are gathered aside, if it has nulls), and commits the frame at the
 * message's exact length. Other schemas (strings, bytes, booleans, ragged arrays), and batches whose
 * reservation would not fit the ring's largest record, go through {@link ArrowBatchEncoder} and
 * {@link ArrowBatchEncoder#IN_PLACE} (one copy of each column buffer into the frame).
 *
 * <p>The checks are the encoder's, with the same messages: the exact Java type of every value, the
 * element count of a fixed-shape array, the arity. A row that fails is not added, and the rows
 * before it stay in the batch (in the direct mode even after a failure mid-row).
 *
 * <p>One thread. While a batch is open (rows added, not flushed) the ring holds its reserved frame:
 * nothing else may be written to the ring until {@link #flush} or {@link #clear}.
 */
public final class ArrowRingBatcher {
    private static final int SCALAR = 0;
    private static final int SHAPE = 1;
    private static final int A = ArrowBatchEncoder.BODY_ALIGN;
    private static final byte[] ZEROS = new byte[4096];

    private final RingWriter ring;
    private final int maxRows;
    private final long timeoutNanos;
    private final String[] names;
    private final int n;

    // The copy path: schemas or sizes the direct one cannot take.
    private final ArrowBatchEncoder fallback;

    // The direct path, one entry per column.
    private final int[] kind;
    private final ArrowSchema.Leaf[] leaf;
    private final int[] size; // values per row (1 for a scalar)
    private final int[][] shape;
    private final String[] typeName;
    private final long[] reservedValues; // body offset of each column's values in the reserved layout
    private final byte[][] rowBits; // validity of the rows, materialized at the first null
    private final int[] rowNulls;
    private final byte[][] leafBits; // validity of a fixed-shape column's elements (boxed arrays)
    private final int[] leafNulls;
    private final int[] savedRowNulls;
    private final int[] savedLeafNulls;
    private final int bufferCount; // Arrow buffers of a batch: 2 per scalar, rank + 2 per fixed-shape column
    private final int prefix; // continuation, length, flatbuffer, padding: the same for every batch
    private final int reservedSize;
    private final byte[] move = new byte[64 << 10];

    private ByteBuffer frame; // the reserved record (index 0: its first byte); null: none open
    private Buffer[] views; // per column: a typed view of its values in the frame
    private int rows;

    /**
     * @param schema the stream's schema
     * @param ring the ring, align 64 (so that every buffer is 64-byte aligned in the reader)
     * @param maxRows rows per batch at most: the caller flushes at this count (or earlier)
     * @param timeoutNanos how long a write may wait for ring space (&lt; 0: no limit)
     */
    public ArrowRingBatcher(ArrowSchema schema, RingWriter ring, int maxRows, long timeoutNanos) {
        if (ring.align() != A) {
            throw new IllegalArgumentException("ArrowRingBatcher: the ring's align must be " + A + ", got " + ring.align());
        }
        if (maxRows < 1) {
            throw new IllegalArgumentException("ArrowRingBatcher: maxRows must be >= 1, got " + maxRows);
        }
        this.ring = ring;
        this.maxRows = maxRows;
        this.timeoutNanos = timeoutNanos;
        this.fallback = new ArrowBatchEncoder(schema);
        List<ArrowSchema.FieldSpec> fields = schema.fields();
        this.n = fields.size();
        this.names = schema.fieldNames().toArray(new String[0]);
        kind = new int[n];
        leaf = new ArrowSchema.Leaf[n];
        size = new int[n];
        shape = new int[n][];
        typeName = new String[n];
        reservedValues = new long[n];
        rowBits = new byte[n][];
        rowNulls = new int[n];
        leafBits = new byte[n][];
        leafNulls = new int[n];
        savedRowNulls = new int[n];
        savedLeafNulls = new int[n];
        boolean direct = true;
        for (int i = 0; i < n; i++) {
            ArrowSchema.FieldSpec f = fields.get(i);
            leaf[i] = f.leaf;
            if (f.leaf.width == 0 || (f.array && f.shape == null)) {
                direct = false; // variable size per row, or bits: the column builders take it
            }
            kind[i] = f.array ? SHAPE : SCALAR;
            shape[i] = f.shape;
            size[i] = f.shape == null ? 1 : ArrowSchema.product(f.shape);
            typeName[i] = f.array ? "array of " + f.leaf.flinkName + " with shape " + Arrays.toString(f.shape)
                    : f.leaf.flinkName + " (" + f.leaf.javaClass.getName() + ")";
        }
        int buffers = 0;
        for (int i = 0; i < n; i++) {
            buffers += kind[i] == SHAPE && shape[i] != null ? shape[i].length + 2 : 2;
        }
        this.bufferCount = buffers;
        int pre = 0;
        long total = 0;
        if (direct) {
            // The reserved layout: maxRows rows, no nulls; room after it for every bitmap.
            long pos = 0;
            long bitmaps = 0;
            for (int i = 0; i < n; i++) {
                reservedValues[i] = pos; // validity and the inner levels' buffers are empty
                pos = ArrowBatchEncoder.align(pos + (long) maxRows * size[i] * leaf[i].width, A);
                bitmaps += ArrowBatchEncoder.align((maxRows + 7) / 8, A);
                if (kind[i] == SHAPE) {
                    bitmaps += ArrowBatchEncoder.align(((long) maxRows * size[i] + 7) / 8, A);
                }
            }
            pre = (int) ArrowBatchEncoder.align(8L + meta(maxRows, pos).length, A);
            total = pre + pos + bitmaps;
            if (total > ring.maxRecord()) {
                direct = false; // the copy path writes what fits and refuses what does not, as before
            }
        }
        this.prefix = direct ? pre : -1;
        this.reservedSize = direct ? (int) total : -1;
    }

    /** Bytes of one row's values when every column has a fixed size (no nulls), else -1. */
    static long fixedRowBytes(ArrowSchema schema) {
        long b = 0;
        for (ArrowSchema.FieldSpec f : schema.fields()) {
            if (f.leaf.width == 0 || (f.array && f.shape == null)) {
                return -1;
            }
            b += (long) f.leaf.width * (f.shape == null ? 1 : ArrowSchema.product(f.shape));
        }
        return b;
    }

    /** The most rows a batch holds. */
    public int maxRows() {
        return maxRows;
    }

    /** True when rows are encoded straight into the ring; false: through {@link ArrowBatchEncoder}. */
    public boolean isDirect() {
        return prefix >= 0;
    }

    /** Rows in the open batch. */
    public int rows() {
        return isDirect() ? rows : fallback.rows();
    }

    /** Bytes of the open batch's buffers without metadata and padding (as {@link ArrowBatchEncoder#bufferBytes}). */
    public long bufferBytes() {
        if (!isDirect()) {
            return fallback.bufferBytes();
        }
        long b = 0;
        for (int i = 0; i < n; i++) {
            b += (long) rows * size[i] * leaf[i].width;
            b += rowNulls[i] == 0 ? 0 : (rows + 7) / 8;
            if (kind[i] == SHAPE) {
                b += leafNulls[i] == 0 ? 0 : ((long) rows * size[i] + 7) / 8;
            }
        }
        return b;
    }

    /**
     * Appends one row (its arity must be the schema's); the first row of a batch reserves the ring
     * space, waiting for it like a write.
     *
     * @throws IllegalArgumentException a value does not fit its column (the row is not added)
     * @throws IllegalStateException the batch holds {@code maxRows} rows already: flush first
     */
    public void add(Row row) throws IOException, InterruptedException {
        if (!isDirect()) {
            if (fallback.rows() >= maxRows) {
                throw full();
            }
            fallback.add(row);
            return;
        }
        if (rows >= maxRows) {
            throw full();
        }
        if (row.getArity() != n) {
            throw new IllegalArgumentException("ArrowBatchEncoder: row of arity " + row.getArity()
                    + ", the schema has " + n + " columns " + Arrays.asList(names));
        }
        if (frame == null) {
            open();
        }
        Set<String> named = row.getFieldNames(false);
        System.arraycopy(rowNulls, 0, savedRowNulls, 0, n);
        System.arraycopy(leafNulls, 0, savedLeafNulls, 0, n);
        try {
            for (int i = 0; i < n; i++) {
                Object v = named == null ? row.getField(i) : row.getField(names[i]);
                if (kind[i] == SCALAR) {
                    putScalar(i, v);
                } else {
                    putShape(i, v);
                }
            }
        } catch (RuntimeException e) { // the row's slots are rewritten by the next row
            System.arraycopy(savedRowNulls, 0, rowNulls, 0, n);
            System.arraycopy(savedLeafNulls, 0, leafNulls, 0, n);
            throw e;
        }
        rows++;
    }

    private IllegalStateException full() {
        return new IllegalStateException("ArrowRingBatcher: the batch holds " + maxRows + " rows already; flush first");
    }

    private void open() throws IOException, InterruptedException {
        ring.reserveRecord(reservedSize, timeoutNanos);
        frame = ring.reservedBuffer();
        if (views == null) {
            views = new Buffer[n];
        }
        for (int i = 0; i < n; i++) {
            int at = prefix + (int) reservedValues[i];
            ByteBuffer b = frame.duplicate();
            b.limit(at + maxRows * size[i] * leaf[i].width).position(at);
            b = b.slice().order(ByteOrder.LITTLE_ENDIAN);
            switch (leaf[i]) {
                case INT16:
                    views[i] = b.asShortBuffer();
                    break;
                case INT32:
                    views[i] = b.asIntBuffer();
                    break;
                case INT64:
                    views[i] = b.asLongBuffer();
                    break;
                case FLOAT32:
                    views[i] = b.asFloatBuffer();
                    break;
                case FLOAT64:
                    views[i] = b.asDoubleBuffer();
                    break;
                default:
                    views[i] = b;
            }
        }
    }

    private void putScalar(int i, Object v) {
        int at = rows; // the slot, in values
        if (v == null) {
            putZero(i, at);
            setRowBit(i, false);
            return;
        }
        ArrowSchema.Leaf l = leaf[i];
        if (v.getClass() != l.javaClass) { // exactly that class: no widening, narrowing or rounding
            throw Columns.wrongType(names[i], v, typeName[i]);
        }
        putValue(i, l, at, v);
        setRowBit(i, true);
    }

    private void putValue(int i, ArrowSchema.Leaf l, int at, Object v) {
        switch (l) {
            case INT8:
                ((ByteBuffer) views[i]).put(at, (Byte) v);
                break;
            case INT16:
                ((ShortBuffer) views[i]).put(at, (Short) v);
                break;
            case INT32:
                ((IntBuffer) views[i]).put(at, (Integer) v);
                break;
            case INT64:
                ((LongBuffer) views[i]).put(at, (Long) v);
                break;
            case FLOAT32:
                ((FloatBuffer) views[i]).put(at, (Float) v);
                break;
            case FLOAT64:
                ((DoubleBuffer) views[i]).put(at, (Double) v);
                break;
            default:
                throw new AssertionError(l);
        }
    }

    private void putZero(int i, int at) {
        switch (leaf[i]) {
            case INT8:
                ((ByteBuffer) views[i]).put(at, (byte) 0);
                break;
            case INT16:
                ((ShortBuffer) views[i]).put(at, (short) 0);
                break;
            case INT32:
                ((IntBuffer) views[i]).put(at, 0);
                break;
            case INT64:
                ((LongBuffer) views[i]).put(at, 0L);
                break;
            case FLOAT32:
                ((FloatBuffer) views[i]).put(at, 0f);
                break;
            case FLOAT64:
                ((DoubleBuffer) views[i]).put(at, 0d);
                break;
            default:
                throw new AssertionError(leaf[i]);
        }
    }

    private void putShape(int i, Object v) {
        int m = size[i];
        int at = rows * m;
        if (v == null) { // a null row keeps its slots: zeros, valid elements
            int bytes = m * leaf[i].width;
            int off = prefix + (int) reservedValues[i] + at * leaf[i].width;
            for (int k = 0; k < bytes; k += ZEROS.length) {
                put(off + k, ZEROS, 0, Math.min(ZEROS.length, bytes - k));
            }
            setLeafBits(i, at, m);
            setRowBit(i, false);
            return;
        }
        if (!v.getClass().isArray()) {
            throw Columns.wrongType(names[i], v, typeName[i]);
        }
        int len = java.lang.reflect.Array.getLength(v);
        if (len != m) { // checked first: a failed row leaves the batch as it was
            throw Columns.wrongSize(names[i], len, shape[i], m);
        }
        ArrowSchema.Leaf l = leaf[i];
        boolean bulk = true;
        switch (l) { // the primitive array of the leaf type: one bulk copy into the frame
            case INT8:
                if (v instanceof byte[]) {
                    ((ByteBuffer) views[i].position(at)).put((byte[]) v);
                } else {
                    bulk = false;
                }
                break;
            case INT16:
                if (v instanceof short[]) {
                    ((ShortBuffer) views[i].position(at)).put((short[]) v);
                } else {
                    bulk = false;
                }
                break;
            case INT32:
                if (v instanceof int[]) {
                    ((IntBuffer) views[i].position(at)).put((int[]) v);
                } else {
                    bulk = false;
                }
                break;
            case INT64:
                if (v instanceof long[]) {
                    ((LongBuffer) views[i].position(at)).put((long[]) v);
                } else {
                    bulk = false;
                }
                break;
            case FLOAT32:
                if (v instanceof float[]) {
                    ((FloatBuffer) views[i].position(at)).put((float[]) v);
                } else {
                    bulk = false;
                }
                break;
            case FLOAT64:
                if (v instanceof double[]) {
                    ((DoubleBuffer) views[i].position(at)).put((double[]) v);
                } else {
                    bulk = false;
                }
                break;
            default:
                throw new AssertionError(l);
        }
        if (bulk) {
            setLeafBits(i, at, m);
        } else {
            putBoxed(i, l, at, v);
        }
        setRowBit(i, true);
    }

    /** A boxed array ({@code Float[]}): element by element, nulls allowed, each of exactly the leaf's class. */
    private void putBoxed(int i, ArrowSchema.Leaf l, int at, Object v) {
        if (!(v instanceof Object[])) {
            throw Columns.wrongType(names[i], v, "an array of " + l.flinkName);
        }
        Object[] a = (Object[]) v;
        for (Object e : a) { // checked first: nothing is written for a row that fails
            if (e != null && e.getClass() != l.javaClass) {
                throw Columns.wrongType(names[i], e, l.flinkName + " (" + l.javaClass.getName() + ")");
            }
        }
        for (int k = 0; k < a.length; k++) {
            if (a[k] == null) {
                putZero(i, at + k);
                setLeafBit(i, at + k, false);
            } else {
                putValue(i, l, at + k, a[k]);
                setLeafBit(i, at + k, true);
            }
        }
    }

    private void setRowBit(int i, boolean valid) {
        byte[] bits = rowBits[i];
        if (!valid) {
            if (rowNulls[i]++ == 0 && bits == null) {
                bits = rowBits[i] = new byte[(maxRows + 7) / 8];
                setOnes(bits, 0, rows);
            }
        } else if (bits == null) {
            return; // no null yet: no bitmap
        }
        int b = rows;
        if (valid) {
            bits[b >>> 3] |= (byte) (1 << (b & 7));
        } else {
            bits[b >>> 3] &= (byte) ~(1 << (b & 7));
        }
    }

    private void setLeafBits(int i, int at, int m) {
        if (leafBits[i] != null) {
            setOnes(leafBits[i], at, m);
        }
    }

    private void setLeafBit(int i, int at, boolean valid) {
        byte[] bits = leafBits[i];
        if (!valid) {
            if (leafNulls[i]++ == 0 && bits == null) {
                bits = leafBits[i] = new byte[(int) (((long) maxRows * size[i] + 7) / 8)];
                setOnes(bits, 0, at);
            }
        } else if (bits == null) {
            return;
        }
        if (valid) {
            bits[at >>> 3] |= (byte) (1 << (at & 7));
        } else {
            bits[at >>> 3] &= (byte) ~(1 << (at & 7));
        }
    }

    private static void setOnes(byte[] bits, int from, int count) {
        for (int b = from; b < from + count; b++) {
            bits[b >>> 3] |= (byte) (1 << (b & 7));
        }
    }

    /**
     * Writes the open batch as one ring record (staged; the ring's publication policy applies) and
     * starts a new batch; returns its message size, 0 if the batch has no rows.
     */
    public int flush() throws IOException, InterruptedException {
        if (!isDirect()) {
            return fallback.rows() == 0 ? 0 : ring.write(fallback, ArrowBatchEncoder.IN_PLACE, timeoutNanos);
        }
        if (rows == 0) {
            return 0;
        }
        // The batch's own layout: the encoder's, buffer by buffer in Arrow's depth-first order.
        Columns.Layout nodes = new Columns.Layout();
        long[] buffers = new long[2 * bufferCount];
        int nb = 0;
        long[] target = new long[n]; // body offset of each column's values
        byte[][] bitmap = new byte[2 * n][];
        long[] bitmapAt = new long[2 * n];
        int[] bitmapLen = new int[2 * n];
        long[] bitmapBits = new long[2 * n];
        int nbits = 0;
        long pos = 0;
        for (int i = 0; i < n; i++) {
            nodes.node(rows, rowNulls[i]);
            int vlen = rowNulls[i] == 0 ? 0 : (rows + 7) / 8;
            pos = ArrowBatchEncoder.align(pos, A);
            buffers[2 * nb] = pos;
            buffers[2 * nb++ + 1] = vlen;
            if (vlen > 0) {
                bitmap[nbits] = rowBits[i];
                bitmapBits[nbits] = rows;
                bitmapAt[nbits] = pos;
                bitmapLen[nbits++] = vlen;
            }
            pos += vlen;
            long elements = rows;
            if (kind[i] == SHAPE) {
                for (int d = 0; d < shape[i].length - 1; d++) { // inner levels: never null
                    elements *= shape[i][d];
                    nodes.node(elements, 0);
                    pos = ArrowBatchEncoder.align(pos, A);
                    buffers[2 * nb] = pos;
                    buffers[2 * nb++ + 1] = 0;
                }
                elements = (long) rows * size[i];
                nodes.node(elements, leafNulls[i]);
                int llen = leafNulls[i] == 0 ? 0 : (int) ((elements + 7) / 8);
                pos = ArrowBatchEncoder.align(pos, A);
                buffers[2 * nb] = pos;
                buffers[2 * nb++ + 1] = llen;
                if (llen > 0) {
                    bitmap[nbits] = leafBits[i];
                    bitmapBits[nbits] = elements;
                    bitmapAt[nbits] = pos;
                    bitmapLen[nbits++] = llen;
                }
                pos += llen;
            }
            long dlen = elements * leaf[i].width;
            pos = ArrowBatchEncoder.align(pos, A);
            buffers[2 * nb] = pos;
            buffers[2 * nb++ + 1] = dlen;
            target[i] = pos;
            pos += dlen;
        }
        long bodyLength = ArrowBatchEncoder.align(pos, A);
        byte[] meta = ArrowBatchEncoder.recordBatchMessage(rows, nodes, buffers, nb, bodyLength);
        if (ArrowBatchEncoder.align(8L + meta.length, A) != prefix || prefix + bodyLength > reservedSize) {
            throw new IllegalStateException("ArrowRingBatcher: the batch's layout outgrew its reservation ("
                    + meta.length + " metadata bytes, " + bodyLength + " body bytes)");
        }
        // The values to their places: those that move down in order, then those that move up in reverse.
        for (int i = 0; i < n; i++) {
            if (target[i] < reservedValues[i]) {
                moveValues(reservedValues[i], target[i], (long) rows * size[i] * leaf[i].width);
            }
        }
        for (int i = n - 1; i >= 0; i--) {
            if (target[i] > reservedValues[i]) {
                moveValues(reservedValues[i], target[i], (long) rows * size[i] * leaf[i].width);
            }
        }
        for (int k = 0; k < nbits; k++) {
            put(prefix + (int) bitmapAt[k], bitmap[k], 0, bitmapLen[k]);
            // Bits past the batch's end are zero (a row that failed may have set its own).
            int used = (int) (bitmapBits[k] & 7);
            if (used != 0) {
                int last = prefix + (int) bitmapAt[k] + bitmapLen[k] - 1;
                frame.put(last, (byte) (bitmap[k][bitmapLen[k] - 1] & ((1 << used) - 1)));
            }
        }
        // Zero every byte between the buffers (a ring frame holds old bytes).
        long end = 0;
        for (int b = 0; b < nb; b++) {
            zero(prefix + end, prefix + buffers[2 * b]);
            end = buffers[2 * b] + buffers[2 * b + 1];
        }
        zero(prefix + end, prefix + bodyLength);
        frame.putInt(0, 0xFFFFFFFF);
        frame.putInt(4, prefix - 8);
        put(8, meta, 0, meta.length);
        zero(8 + meta.length, prefix);
        int len = (int) (prefix + bodyLength);
        frame = null;
        resetBatch();
        ring.commitRecord(len);
        return len;
    }

    private void moveValues(long from, long to, long len) {
        int src = prefix + (int) from;
        int dst = prefix + (int) to;
        int l = (int) len;
        if (dst < src) {
            for (int k = 0; k < l; k += move.length) {
                int c = Math.min(move.length, l - k);
                get(src + k, move, 0, c);
                put(dst + k, move, 0, c);
            }
        } else {
            for (int k = l; k > 0; k -= move.length) {
                int c = Math.min(move.length, k);
                get(src + k - c, move, 0, c);
                put(dst + k - c, move, 0, c);
            }
        }
    }

    // Bulk copies at an index of the frame (Java 11 has no absolute bulk put/get).
    private void put(int at, byte[] src, int off, int len) {
        frame.position(at);
        frame.put(src, off, len);
    }

    private void get(int at, byte[] dst, int off, int len) {
        frame.position(at);
        frame.get(dst, off, len);
    }

    private void zero(long from, long to) {
        for (long p = from; p < to; p += ZEROS.length) {
            put((int) p, ZEROS, 0, (int) Math.min(ZEROS.length, to - p));
        }
    }

    /** The metadata of a full batch without nulls: its size is every batch's (all fields are written). */
    private byte[] meta(int r, long bodyLength) {
        Columns.Layout nodes = new Columns.Layout();
        for (int i = 0; i < n; i++) {
            nodes.node(r, 0);
            if (kind[i] == SHAPE) {
                for (int d = 0; d < shape[i].length; d++) { // inner levels, the leaf
                    nodes.node(r, 0);
                }
            }
        }
        // The buffers' offsets and lengths do not change the size: zeros will do.
        return ArrowBatchEncoder.recordBatchMessage(r, nodes, new long[2 * bufferCount], bufferCount, bodyLength);
    }

    private void resetBatch() {
        rows = 0;
        Arrays.fill(rowNulls, 0);
        Arrays.fill(leafNulls, 0);
        for (int i = 0; i < n; i++) {
            if (rowBits[i] != null) {
                Arrays.fill(rowBits[i], (byte) 0);
            }
            if (leafBits[i] != null) {
                Arrays.fill(leafBits[i], (byte) 0);
            }
        }
        // The bitmaps stay allocated but are only used again after a null: drop them.
        Arrays.fill(rowBits, null);
        Arrays.fill(leafBits, null);
    }

    /** Drops the open batch (its reserved ring space is given back). */
    public void clear() {
        if (isDirect()) {
            if (frame != null) {
                ring.cancelRecord();
                frame = null;
            }
            resetBatch();
        } else {
            fallback.clear();
        }
    }
}
