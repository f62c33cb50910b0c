package io.flinktf.ipc.arrow;

import java.lang.reflect.Array;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;

/**
 * The reading half of the {@code arrow} codec on the JVM: Arrow IPC messages another process wrote
 * (pyarrow in a worker) back into Flink {@link Row}s, for the types {@link ArrowSchema} maps.
 *
 * <p>The bytes are untrusted. Every flatbuffer offset, vector length, buffer position and length,
 * node length and null count, list offset and UTF-8 string is checked before use; anything off is
 * an {@link IllegalArgumentException} saying what and where (the caller adds the ring). The
 * schema message must match the expected schema exactly (names, types, shapes): a worker that
 * produced another type is told so by column. Only uncompressed little-endian messages of
 * metadata version V4/V5 are accepted.
 *
 * <p>Used by one thread.
 */
public final class ArrowBatchDecoder {
    private static final int CONTINUATION = 0xFFFFFFFF;
    private static final byte HEADER_SCHEMA = ArrowSchema.HEADER_SCHEMA;
    private static final byte HEADER_RECORD_BATCH = ArrowSchema.HEADER_RECORD_BATCH;

    private final ArrowSchema schema;
    private final List<ArrowSchema.FieldSpec> fields;
    private final boolean[] primitive; // per field: an array column holds a primitive Java array
    private final int nodesPerBatch;
    private final int buffersPerBatch;
    private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
            .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);

    public ArrowBatchDecoder(ArrowSchema schema, RowTypeInfo type) {
        this.schema = schema;
        this.fields = schema.fields();
        if (type.getArity() != fields.size()) {
            throw new IllegalArgumentException("ArrowBatchDecoder: row type of arity " + type.getArity()
                    + " for a schema of " + fields.size() + " columns");
        }
        this.primitive = new boolean[fields.size()];
        int nodes = 0;
        int buffers = 0;
        for (int i = 0; i < fields.size(); i++) {
            ArrowSchema.FieldSpec f = fields.get(i);
            TypeInformation<?> t = type.getTypeAt(i);
            primitive[i] = t instanceof PrimitiveArrayTypeInfo;
            int levels = !f.array ? 0 : f.shape != null ? f.shape.length : 1;
            nodes += levels + 1;
            buffers += levels + (f.array && f.shape == null ? 1 : 0) + leafBuffers(f.leaf);
        }
        this.nodesPerBatch = nodes;
        this.buffersPerBatch = buffers;
    }

    private static int leafBuffers(ArrowSchema.Leaf leaf) {
        return leaf == ArrowSchema.Leaf.UTF8 || leaf == ArrowSchema.Leaf.BINARY ? 3 : 2; // validity (+ offsets) + data
    }

    public ArrowSchema schema() {
        return schema;
    }

    // ---- the message frame and the flatbuffer reader ---------------------------------------------

    /** A message: its flatbuffer (as a slice) and its body (as a slice). */
    private static final class Message {
        final Flat fb;
        final int root;
        final byte headerType;
        final int header;
        final ByteBuffer body;

        Message(Flat fb, int root, byte headerType, int header, ByteBuffer body) {
            this.fb = fb;
            this.root = root;
            this.headerType = headerType;
            this.header = header;
            this.body = body;
        }
    }

    private static Message message(ByteBuffer rec) {
        ByteBuffer b = rec.slice().order(ByteOrder.LITTLE_ENDIAN);
        int n = b.remaining();
        if (n < 8 || b.getInt(0) != CONTINUATION) {
            throw new IllegalArgumentException("a record of " + n + " bytes is not an encapsulated Arrow IPC message"
                    + (n >= 4 ? String.format(" (starts 0x%08x, expected the continuation 0xffffffff)", b.getInt(0)) : ""));
        }
        int metaLen = b.getInt(4);
        if (metaLen <= 0 || metaLen > n - 8) {
            throw new IllegalArgumentException("Arrow message metadata length " + metaLen + " does not fit the record ("
                    + n + " bytes)");
        }
        Flat fb = new Flat(slice(b, 8, metaLen));
        int root = fb.root();
        int version = fb.i16(root, 0, 0);
        if (version < 3) { // V4 = 3, V5 = 4
            throw new IllegalArgumentException("Arrow metadata version " + version + " is not supported (V4/V5 only)");
        }
        byte headerType = fb.u8(root, 1, (byte) 0);
        int header = fb.table(root, 2);
        long bodyLength = fb.i64(root, 3, 0);
        long bodyStart = 8L + metaLen;
        if (header < 0 || bodyLength < 0 || bodyLength > n - bodyStart) {
            throw new IllegalArgumentException("Arrow message without a header, or body of " + bodyLength
                    + " bytes past the record (" + (n - bodyStart) + " left)");
        }
        return new Message(fb, root, headerType, header, slice(b, (int) bodyStart, (int) bodyLength));
    }

    private static ByteBuffer slice(ByteBuffer b, int at, int len) {
        ByteBuffer d = b.duplicate();
        d.limit(at + len).position(at);
        return d.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** Bounds-checked reads of a flatbuffer: every offset is checked against the buffer. */
    private static final class Flat {
        final ByteBuffer b;

        Flat(ByteBuffer b) {
            this.b = b;
        }

        private int check(long pos, long len) {
            if (pos < 0 || len < 0 || pos + len > b.limit()) {
                throw new IllegalArgumentException("malformed Arrow flatbuffer: " + len + " bytes at " + pos
                        + " outside its " + b.limit() + " bytes");
            }
            return (int) pos;
        }

        int root() {
            return check(b.getInt(check(0, 4)) & 0xffffffffL, 4);
        }

        /** Position of field {@code index} of the table at {@code table}, or -1 if absent. */
        int field(int table, int index) {
            long vt = (long) table - b.getInt(check(table, 4));
            int vtSize = b.getShort(check(vt, 4)) & 0xffff;
            int tableSize = b.getShort(check(vt + 2, 2)) & 0xffff;
            int slot = 4 + 2 * index;
            if (slot + 2 > vtSize) {
                return -1;
            }
            int off = b.getShort(check(vt + slot, 2)) & 0xffff;
            if (off == 0) {
                return -1;
            }
            if (off >= tableSize) {
                throw new IllegalArgumentException("malformed Arrow flatbuffer: field offset " + off + " past its table");
            }
            return check((long) table + off, 1);
        }

        int deref(int pos) {
            return check(pos + (b.getInt(check(pos, 4)) & 0xffffffffL), 4);
        }

        int table(int table, int index) {
            int f = field(table, index);
            return f < 0 ? -1 : deref(f);
        }

        byte u8(int table, int index, byte dflt) {
            int f = field(table, index);
            return f < 0 ? dflt : b.get(check(f, 1));
        }

        short i16(int table, int index, int dflt) {
            int f = field(table, index);
            return f < 0 ? (short) dflt : b.getShort(check(f, 2));
        }

        int i32(int table, int index, int dflt) {
            int f = field(table, index);
            return f < 0 ? dflt : b.getInt(check(f, 4));
        }

        long i64(int table, int index, long dflt) {
            int f = field(table, index);
            return f < 0 ? dflt : b.getLong(check(f, 8));
        }

        /** {start, length} of the vector at field {@code index} with elements of {@code elem} bytes; null if absent. */
        int[] vector(int table, int index, int elem) {
            int f = field(table, index);
            if (f < 0) {
                return null;
            }
            int v = deref(f);
            long len = b.getInt(v) & 0xffffffffL;
            check(v + 4L, len * elem);
            return new int[] {v + 4, (int) len};
        }

        String string(int table, int index) {
            int f = field(table, index);
            if (f < 0) {
                return null;
            }
            int s = deref(f);
            long len = b.getInt(s) & 0xffffffffL;
            check(s + 4L, len);
            byte[] out = new byte[(int) len];
            for (int i = 0; i < len; i++) {
                out[i] = b.get(s + 4 + i);
            }
            return new String(out, StandardCharsets.UTF_8);
        }
    }

    // ---- the schema -------------------------------------------------------------------------------

    /** Checks that {@code rec} is a Schema message equal to the expected schema. */
    public void checkSchema(ByteBuffer rec) {
        try {
            checkSchema0(rec);
        } catch (IndexOutOfBoundsException | java.nio.BufferUnderflowException | NegativeArraySizeException e) {
            throw new IllegalArgumentException("malformed Arrow schema message: " + e, e);
        }
    }

    private void checkSchema0(ByteBuffer rec) {
        Message m = message(rec);
        if (m.headerType != HEADER_SCHEMA) {
            throw new IllegalArgumentException("expected an Arrow Schema message, got message type " + m.headerType);
        }
        Flat fb = m.fb;
        if (fb.i16(m.header, 0, 0) != 0) {
            throw new IllegalArgumentException("big-endian Arrow data is not supported");
        }
        int[] vec = fb.vector(m.header, 1, 4);
        int n = vec == null ? 0 : vec[1];
        if (n != fields.size()) {
            throw new IllegalArgumentException("the results have " + n + " columns, the output row type "
                    + fields.size() + " " + schema.fieldNames());
        }
        for (int i = 0; i < n; i++) {
            ArrowSchema.FieldSpec want = fields.get(i);
            int field = fb.deref(vec[0] + 4 * i);
            String name = fb.string(field, 0);
            if (!want.name.equals(name)) {
                throw new IllegalArgumentException("result column " + i + " is named '" + name + "', the output row type has '"
                        + want.name + "' there " + schema.fieldNames());
            }
            String got = describe(fb, field);
            String expected = describe(want);
            if (!got.equals(expected)) {
                throw new IllegalArgumentException("result column '" + name + "' is " + got + ", the output row type wants "
                        + expected);
            }
        }
    }

    /** A field's type as text, from the flatbuffer, e.g. "fixed_size_list<4>(float32)". */
    private static String describe(Flat fb, int field) {
        byte tag = fb.u8(field, 2, (byte) 0);
        int type = fb.table(field, 3);
        if (fb.field(field, 4) >= 0) {
            return "dictionary-encoded";
        }
        int[] children = fb.vector(field, 5, 4);
        String child = children != null && children[1] == 1 ? describe(fb, fb.deref(children[0])) : "?";
        switch (tag) {
            case ArrowSchema.TYPE_INT:
                return (fb.u8(type, 1, (byte) 0) != 0 ? "int" : "uint") + fb.i32(type, 0, 0);
            case ArrowSchema.TYPE_FLOATING_POINT:
                int p = fb.i16(type, 0, 0);
                return p == 1 ? "float32" : p == 2 ? "float64" : "float16";
            case ArrowSchema.TYPE_BOOL:
                return "bool";
            case ArrowSchema.TYPE_UTF8:
                return "utf8";
            case ArrowSchema.TYPE_BINARY:
                return "binary";
            case ArrowSchema.TYPE_LIST:
                return "list(" + child + ")";
            case ArrowSchema.TYPE_FIXED_SIZE_LIST:
                return "fixed_size_list<" + fb.i32(type, 0, 0) + ">(" + child + ")";
            default:
                return "Arrow type #" + tag;
        }
    }

    private static String describe(ArrowSchema.FieldSpec f) {
        String leaf;
        switch (f.leaf) {
            case INT8:
            case INT16:
            case INT32:
            case INT64:
                leaf = "int" + f.leaf.width * 8;
                break;
            case FLOAT32:
                leaf = "float32";
                break;
            case FLOAT64:
                leaf = "float64";
                break;
            default:
                leaf = f.leaf.name().toLowerCase(java.util.Locale.ROOT);
        }
        if (!f.array) {
            return leaf;
        }
        if (f.shape == null) {
            return "list(" + leaf + ")";
        }
        String s = leaf;
        for (int d = f.shape.length - 1; d >= 0; d--) {
            s = "fixed_size_list<" + f.shape[d] + ">(" + s + ")";
        }
        return s;
    }

    // ---- record batches -----------------------------------------------------------------------------

    /** Cursor over a batch's nodes and buffers, in Arrow's depth-first order. */
    private static final class Walk {
        final long[] nodes; // length, null_count pairs
        final long[] buffers; // offset, length pairs
        final ByteBuffer body;
        int node;
        int buffer;

        Walk(long[] nodes, long[] buffers, ByteBuffer body) {
            this.nodes = nodes;
            this.buffers = buffers;
            this.body = body;
        }

        /** {length, null_count} of the next node, checked against the expected length. */
        long[] node(String column, long expectLength) {
            long len = nodes[2 * node];
            long nulls = nodes[2 * node + 1];
            node++;
            if (len != expectLength || nulls < 0 || nulls > len) {
                throw new IllegalArgumentException("column '" + column + "': node of length " + len + " with " + nulls
                        + " nulls where " + expectLength + " values are due");
            }
            return new long[] {len, nulls};
        }

        /** The next buffer as a slice of the body, at least {@code need} bytes long. */
        ByteBuffer buffer(String column, String what, long need) {
            long off = buffers[2 * buffer];
            long len = buffers[2 * buffer + 1];
            buffer++;
            if (off < 0 || len < 0 || off + len > body.limit() || (off & 7) != 0) {
                throw new IllegalArgumentException("column '" + column + "': " + what + " buffer of " + len + " bytes at "
                        + off + " is outside the " + body.limit() + "-byte body (or not 8-aligned)");
            }
            if (len < need) {
                throw new IllegalArgumentException("column '" + column + "': " + what + " buffer has " + len + " bytes, "
                        + need + " are due");
            }
            return slice(body, (int) off, (int) len);
        }

        /** The validity bitmap of a node (null when it has no nulls). */
        ByteBuffer validity(String column, long[] node) {
            ByteBuffer v = buffer(column, "validity", node[1] == 0 ? 0 : (node[0] + 7) / 8);
            return node[1] == 0 ? null : v;
        }
    }

    private static boolean valid(ByteBuffer bits, long i) {
        return bits == null || (bits.get((int) (i >>> 3)) & (1 << (i & 7))) != 0;
    }

    /**
     * Decodes one RecordBatch message into rows of the output row type. Throws
     * IllegalArgumentException for a message that breaks the format or the schema.
     */
    public List<Row> decode(ByteBuffer rec) {
        try {
            return decode0(rec);
        } catch (IndexOutOfBoundsException | java.nio.BufferUnderflowException | NegativeArraySizeException e) {
            throw new IllegalArgumentException("malformed Arrow record batch message: " + e, e);
        }
    }

    private List<Row> decode0(ByteBuffer rec) {
        Message m = message(rec);
        if (m.headerType != HEADER_RECORD_BATCH) {
            throw new IllegalArgumentException("expected an Arrow RecordBatch message, got message type " + m.headerType);
        }
        Flat fb = m.fb;
        long length = fb.i64(m.header, 0, 0);
        if (fb.field(m.header, 3) >= 0) {
            throw new IllegalArgumentException("compressed Arrow record batches are not supported");
        }
        if (fb.field(m.header, 4) >= 0) {
            throw new IllegalArgumentException("Arrow record batches with variadic buffers are not supported");
        }
        // Every column needs at least a bit per row in the body: a bound before anything is allocated.
        if (length < 0 || length > Integer.MAX_VALUE - 8 || length > 8L * m.body.limit() + 8) {
            throw new IllegalArgumentException("record batch length " + length + " for a body of " + m.body.limit() + " bytes");
        }
        int[] nv = fb.vector(m.header, 1, 16);
        int[] bv = fb.vector(m.header, 2, 16);
        int nn = nv == null ? 0 : nv[1];
        int nb = bv == null ? 0 : bv[1];
        if (nn != nodesPerBatch || nb != buffersPerBatch) {
            throw new IllegalArgumentException("record batch with " + nn + " nodes and " + nb + " buffers; the schema "
                    + schema.fieldNames() + " has " + nodesPerBatch + " and " + buffersPerBatch);
        }
        long[] nodes = new long[2 * nn];
        for (int i = 0; i < 2 * nn; i++) {
            nodes[i] = fb.b.getLong(nv[0] + 8 * i);
        }
        long[] buffers = new long[2 * nb];
        for (int i = 0; i < 2 * nb; i++) {
            buffers[i] = fb.b.getLong(bv[0] + 8 * i);
        }
        Walk w = new Walk(nodes, buffers, m.body);
        int n = (int) length;
        List<Row> rows = new ArrayList<>(n);
        for (int r = 0; r < n; r++) {
            rows.add(new Row(fields.size()));
        }
        for (int c = 0; c < fields.size(); c++) {
            ArrowSchema.FieldSpec f = fields.get(c);
            Object[] values = column(w, f, n, primitive[c]);
            for (int r = 0; r < n; r++) {
                rows.get(r).setField(c, values[r]);
            }
        }
        return rows;
    }

    private Object[] column(Walk w, ArrowSchema.FieldSpec f, int n, boolean primitiveArray) {
        if (!f.array) {
            return leaf(w, f.name, f.leaf, n, true); // a null scalar is a null field
        }
        long[] node = w.node(f.name, n);
        ByteBuffer validity = w.validity(f.name, node);
        Object[] out = new Object[n];
        if (f.shape != null) {
            long per = ArrowSchema.product(f.shape);
            long values = n;
            for (int d = 1; d < f.shape.length; d++) { // inner fixed-size lists: no nulls
                values *= f.shape[d - 1];
                long[] inner = w.node(f.name, values);
                if (inner[1] != 0) {
                    throw new IllegalArgumentException("column '" + f.name + "': nulls inside a nested fixed-size list");
                }
                w.validity(f.name, inner);
            }
            long total = n * per;
            if (total > Integer.MAX_VALUE - 8) {
                throw new IllegalArgumentException("column '" + f.name + "': " + total + " values in one batch");
            }
            Object[] flat = leaf(w, f.name, f.leaf, (int) total, !primitiveArray);
            for (int r = 0; r < n; r++) {
                out[r] = valid(validity, r) ? array(flat, (int) (r * per), (int) per, f, primitiveArray) : null;
            }
            return out;
        }
        ByteBuffer offsets = w.buffer(f.name, "offsets", 4L * (n + 1));
        int first = offsets.getInt(0);
        int prev = first;
        for (int r = 1; r <= n; r++) {
            int o = offsets.getInt(4 * r);
            if (o < prev) {
                throw new IllegalArgumentException("column '" + f.name + "': list offsets decrease at row " + r);
            }
            prev = o;
        }
        if (first < 0) {
            throw new IllegalArgumentException("column '" + f.name + "': negative list offset " + first);
        }
        Object[] flat = leaf(w, f.name, f.leaf, prev, !primitiveArray);
        for (int r = 0; r < n; r++) {
            int a = offsets.getInt(4 * r);
            int b = offsets.getInt(4 * r + 4);
            out[r] = valid(validity, r) ? array(flat, a, b - a, f, primitiveArray) : null;
        }
        return out;
    }

    /** Elements {@code [from, from+len)} as the Java array the row type wants. */
    private static Object array(Object[] flat, int from, int len, ArrowSchema.FieldSpec f, boolean primitiveArray) {
        if (!primitiveArray) {
            Object out = Array.newInstance(f.leaf.javaClass, len);
            System.arraycopy(flat, from, out, 0, len);
            return out;
        }
        Object out = Array.newInstance(primitiveClass(f.leaf), len);
        for (int i = 0; i < len; i++) {
            Array.set(out, i, flat[from + i]);
        }
        return out;
    }

    private static Class<?> primitiveClass(ArrowSchema.Leaf leaf) {
        switch (leaf) {
            case INT8:
                return byte.class;
            case INT16:
                return short.class;
            case INT32:
                return int.class;
            case INT64:
                return long.class;
            case FLOAT32:
                return float.class;
            case FLOAT64:
                return double.class;
            case BOOL:
                return boolean.class;
            default:
                throw new IllegalArgumentException("no primitive array of " + leaf.flinkName);
        }
    }

    /** {@code n} values of a leaf column (node, validity, [offsets,] data); nulls only if allowed. */
    private Object[] leaf(Walk w, String name, ArrowSchema.Leaf leaf, int n, boolean nullsAllowed) {
        long[] node = w.node(name, n);
        ByteBuffer validity = w.validity(name, node);
        if (validity != null && !nullsAllowed) {
            throw new IllegalArgumentException("column '" + name + "': " + node[1] + " null element(s) in a primitive array");
        }
        switch (leaf) {
            case BOOL: {
                ByteBuffer d = w.buffer(name, "data", (n + 7L) / 8);
                Object[] out = new Object[n];
                for (int i = 0; i < n; i++) {
                    out[i] = valid(validity, i) ? (Boolean) valid(d, i) : null;
                }
                return out;
            }
            case UTF8:
            case BINARY: {
                ByteBuffer offsets = w.buffer(name, "offsets", 4L * (n + 1));
                int prev = offsets.getInt(0);
                if (prev < 0) {
                    throw new IllegalArgumentException("column '" + name + "': negative offset " + prev);
                }
                for (int i = 1; i <= n; i++) {
                    int o = offsets.getInt(4 * i);
                    if (o < prev) {
                        throw new IllegalArgumentException("column '" + name + "': offsets decrease at value " + i);
                    }
                    prev = o;
                }
                ByteBuffer d = w.buffer(name, "data", prev);
                Object[] out = new Object[n];
                for (int i = 0; i < n; i++) {
                    if (!valid(validity, i)) {
                        continue;
                    }
                    int a = offsets.getInt(4 * i);
                    ByteBuffer v = slice(d, a, offsets.getInt(4 * i + 4) - a);
                    if (leaf == ArrowSchema.Leaf.BINARY) {
                        byte[] b = new byte[v.remaining()];
                        v.get(b);
                        out[i] = b;
                    } else {
                        try {
                            CharBuffer s = utf8.decode(v);
                            out[i] = s.toString();
                        } catch (CharacterCodingException e) {
                            throw new IllegalArgumentException("column '" + name + "': value " + i + " is not valid UTF-8");
                        }
                    }
                }
                return out;
            }
            default: {
                int width = leaf.width;
                ByteBuffer d = w.buffer(name, "data", (long) n * width);
                Object[] out = new Object[n];
                for (int i = 0; i < n; i++) {
                    if (!valid(validity, i)) {
                        continue;
                    }
                    int at = i * width;
                    switch (leaf) {
                        case INT8:
                            out[i] = d.get(at);
                            break;
                        case INT16:
                            out[i] = d.getShort(at);
                            break;
                        case INT32:
                            out[i] = d.getInt(at);
                            break;
                        case INT64:
                            out[i] = d.getLong(at);
                            break;
                        case FLOAT32:
                            out[i] = d.getFloat(at);
                            break;
                        default:
                            out[i] = d.getDouble(at);
                    }
                }
                return out;
            }
        }
    }

    /** Row count of a RecordBatch message, without decoding it (for matching before the rows). */
    public static long rowCount(ByteBuffer rec) {
        Message m = message(rec);
        if (m.headerType != HEADER_RECORD_BATCH) {
            throw new IllegalArgumentException("expected an Arrow RecordBatch message, got message type " + m.headerType);
        }
        return m.fb.i64(m.header, 0, 0);
    }
}
