package io.flinktf.ipc.arrow;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.api.common.typeinfo.BasicArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.BasicTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.RowTypeInfo;

/**
 * The Arrow schema of a stream of Flink {@code Row}s (docs/FORMAT.md, "arrow"):
 *
 * <table>
 *   <caption>Flink type → Arrow type</caption>
 *   <tr><td>TINYINT, SMALLINT, INT, BIGINT</td><td>Int(8/16/32/64, signed)</td></tr>
 *   <tr><td>FLOAT, DOUBLE</td><td>FloatingPoint(SINGLE/DOUBLE)</td></tr>
 *   <tr><td>BOOLEAN</td><td>Bool (bit-packed)</td></tr>
 *   <tr><td>STRING</td><td>Utf8</td></tr>
 *   <tr><td>BYTES ({@code byte[]})</td><td>Binary</td></tr>
 *   <tr><td>array ({@code float[]}, {@code Float[]}, ...) with a declared shape</td>
 *       <td>FixedSizeList, one nested level per dimension (shape [28, 28]: FixedSizeList(28) of
 *       FixedSizeList(28) of the element), field metadata {@code flinktf.shape} = the shape as a
 *       JSON list</td></tr>
 *   <tr><td>array without a shape</td><td>List (ragged)</td></tr>
 * </table>
 *
 * <p>A {@code byte[]} column with a declared shape is a fixed-shape int8 tensor instead of BYTES.
 * Every field is nullable; nulls are Arrow nulls (the reader applies its null policy).
 */
public final class ArrowSchema implements Serializable {
    private static final long serialVersionUID = 1L;

    /** Metadata key of a fixed-shape field: its shape as a JSON list. */
    public static final String SHAPE_KEY = "flinktf.shape";

    /** Element (leaf) types. */
    enum Leaf {
        INT8(1, "TINYINT", Byte.class),
        INT16(2, "SMALLINT", Short.class),
        INT32(4, "INT", Integer.class),
        INT64(8, "BIGINT", Long.class),
        FLOAT32(4, "FLOAT", Float.class),
        FLOAT64(8, "DOUBLE", Double.class),
        BOOL(0, "BOOLEAN", Boolean.class),
        UTF8(0, "STRING", String.class),
        BINARY(0, "BYTES", byte[].class);

        final int width;
        final String flinkName;
        /** The Java class of a value of this type in a Flink Row (exactly this class, no widening). */
        final Class<?> javaClass;

        Leaf(int width, String flinkName, Class<?> javaClass) {
            this.width = width;
            this.flinkName = flinkName;
            this.javaClass = javaClass;
        }

        byte typeTag() {
            switch (this) {
                case BOOL:
                    return TYPE_BOOL;
                case UTF8:
                    return TYPE_UTF8;
                case BINARY:
                    return TYPE_BINARY;
                case FLOAT32:
                case FLOAT64:
                    return TYPE_FLOATING_POINT;
                default:
                    return TYPE_INT;
            }
        }
    }

    /** One top-level field: a scalar of {@code leaf}, or an array of it (fixed shape or ragged). */
    static final class FieldSpec implements Serializable {
        private static final long serialVersionUID = 1L;
        final String name;
        final Leaf leaf;
        final boolean array;
        final int[] shape; // null: scalar, or ragged if array

        FieldSpec(String name, Leaf leaf, boolean array, int[] shape) {
            this.name = name;
            this.leaf = leaf;
            this.array = array;
            this.shape = shape;
        }
    }

    private final List<FieldSpec> fields;

    private ArrowSchema(List<FieldSpec> fields) {
        this.fields = Collections.unmodifiableList(fields);
    }

    /**
     * The schema of rows of {@code type}; {@code shapes} (may be null) gives array columns a fixed
     * shape. Throws IllegalArgumentException naming the column for a type without a mapping, a
     * shape on a non-array column or for an unknown column, or a bad shape.
     */
    public static ArrowSchema of(RowTypeInfo type, Map<String, int[]> shapes) {
        if (type == null) {
            throw new IllegalArgumentException("ArrowSchema: the row type must not be null");
        }
        Map<String, int[]> left = new LinkedHashMap<>(shapes == null ? Map.of() : shapes);
        String[] names = type.getFieldNames();
        List<FieldSpec> out = new ArrayList<>();
        for (int i = 0; i < names.length; i++) {
            String name = names[i];
            int[] shape = left.remove(name);
            if (shape != null) {
                checkShape(name, shape);
            }
            out.add(spec(name, type.getTypeAt(i), shape));
        }
        if (!left.isEmpty()) {
            throw new IllegalArgumentException("ArrowSchema: shapes given for unknown column(s) " + left.keySet()
                    + "; the row has " + Arrays.toString(names));
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("ArrowSchema: the row type has no fields");
        }
        return new ArrowSchema(out);
    }

    private static void checkShape(String name, int[] shape) {
        if (shape.length == 0) {
            throw new IllegalArgumentException("ArrowSchema: column '" + name
                    + "': a shape needs at least one dimension (a scalar column takes no shape)");
        }
        long n = 1;
        for (int d : shape) {
            if (d < 1) {
                throw new IllegalArgumentException("ArrowSchema: column '" + name + "': shape "
                        + Arrays.toString(shape) + " has a dimension < 1");
            }
            n *= d;
            if (n > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("ArrowSchema: column '" + name + "': shape "
                        + Arrays.toString(shape) + " has more than 2^31-1 elements");
            }
        }
    }

    static int product(int[] shape) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    private static Leaf basicLeaf(TypeInformation<?> t) {
        if (BasicTypeInfo.BYTE_TYPE_INFO.equals(t)) {
            return Leaf.INT8;
        } else if (BasicTypeInfo.SHORT_TYPE_INFO.equals(t)) {
            return Leaf.INT16;
        } else if (BasicTypeInfo.INT_TYPE_INFO.equals(t)) {
            return Leaf.INT32;
        } else if (BasicTypeInfo.LONG_TYPE_INFO.equals(t)) {
            return Leaf.INT64;
        } else if (BasicTypeInfo.FLOAT_TYPE_INFO.equals(t)) {
            return Leaf.FLOAT32;
        } else if (BasicTypeInfo.DOUBLE_TYPE_INFO.equals(t)) {
            return Leaf.FLOAT64;
        } else if (BasicTypeInfo.BOOLEAN_TYPE_INFO.equals(t)) {
            return Leaf.BOOL;
        } else if (BasicTypeInfo.STRING_TYPE_INFO.equals(t)) {
            return Leaf.UTF8;
        }
        return null;
    }

    private static Leaf primitiveArrayLeaf(TypeInformation<?> t) {
        if (PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO.equals(t)) {
            return Leaf.INT8;
        } else if (PrimitiveArrayTypeInfo.SHORT_PRIMITIVE_ARRAY_TYPE_INFO.equals(t)) {
            return Leaf.INT16;
        } else if (PrimitiveArrayTypeInfo.INT_PRIMITIVE_ARRAY_TYPE_INFO.equals(t)) {
            return Leaf.INT32;
        } else if (PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO.equals(t)) {
            return Leaf.INT64;
        } else if (PrimitiveArrayTypeInfo.FLOAT_PRIMITIVE_ARRAY_TYPE_INFO.equals(t)) {
            return Leaf.FLOAT32;
        } else if (PrimitiveArrayTypeInfo.DOUBLE_PRIMITIVE_ARRAY_TYPE_INFO.equals(t)) {
            return Leaf.FLOAT64;
        } else if (PrimitiveArrayTypeInfo.BOOLEAN_PRIMITIVE_ARRAY_TYPE_INFO.equals(t)) {
            return Leaf.BOOL;
        }
        return null;
    }

    private static FieldSpec spec(String name, TypeInformation<?> t, int[] shape) {
        Leaf leaf = basicLeaf(t);
        if (leaf != null) {
            if (shape != null) {
                throw new IllegalArgumentException("ArrowSchema: column '" + name + "' is " + t
                        + ", not an array: it takes no shape");
            }
            return new FieldSpec(name, leaf, false, null);
        }
        if (PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO.equals(t) && shape == null) {
            return new FieldSpec(name, Leaf.BINARY, false, null); // BYTES
        }
        leaf = primitiveArrayLeaf(t);
        if (leaf == null && t instanceof BasicArrayTypeInfo) {
            leaf = basicLeaf(((BasicArrayTypeInfo<?, ?>) t).getComponentInfo());
        }
        if (leaf == null) {
            throw new IllegalArgumentException("ArrowSchema: column '" + name + "': Flink type " + t
                    + " has no Arrow mapping (supported: TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, "
                    + "BOOLEAN, STRING, BYTES, and primitive or basic arrays of those)");
        }
        return new FieldSpec(name, leaf, true, shape == null ? null : shape.clone());
    }

    /** Column names, in order. */
    public List<String> fieldNames() {
        List<String> n = new ArrayList<>();
        for (FieldSpec f : fields) {
            n.add(f.name);
        }
        return n;
    }

    List<FieldSpec> fields() {
        return fields;
    }

    /** The declared shape of a column, or null (scalar or ragged). */
    public int[] shape(String column) {
        for (FieldSpec f : fields) {
            if (f.name.equals(column)) {
                return f.shape == null ? null : f.shape.clone();
            }
        }
        throw new IllegalArgumentException("ArrowSchema: no column '" + column + "'");
    }

    /** New empty column builders for this schema. */
    Columns.Column[] newColumns() {
        Columns.Column[] cols = new Columns.Column[fields.size()];
        for (int i = 0; i < cols.length; i++) {
            FieldSpec f = fields.get(i);
            Columns.Column leaf = newLeaf(f.name, f.leaf);
            if (!f.array) {
                cols[i] = leaf;
            } else if (f.shape != null) {
                cols[i] = new Columns.FixedShape(f.name, f.shape, leaf);
            } else {
                cols[i] = new Columns.Ragged(f.name, leaf);
            }
        }
        return cols;
    }

    private static Columns.Column newLeaf(String name, Leaf leaf) {
        switch (leaf) {
            case BOOL:
                return new Columns.Bool(name);
            case UTF8:
                return new Columns.VarBinary(name, true);
            case BINARY:
                return new Columns.VarBinary(name, false);
            default:
                return new Columns.FixedWidth(name, leaf);
        }
    }

    // ---- the Schema message ------------------------------------------------------------------

    // Type union tags (Schema.fbs) and message header tags (Message.fbs).
    static final byte TYPE_INT = 2;
    static final byte TYPE_FLOATING_POINT = 3;
    static final byte TYPE_BINARY = 4;
    static final byte TYPE_UTF8 = 5;
    static final byte TYPE_BOOL = 6;
    static final byte TYPE_LIST = 12;
    static final byte TYPE_FIXED_SIZE_LIST = 16;
    static final byte HEADER_SCHEMA = 1;
    static final byte HEADER_RECORD_BATCH = 3;
    static final short METADATA_V5 = 4;

    /** The encapsulated Schema message (continuation, length, flatbuffer, padding to 8; no body). */
    public byte[] schemaMessage() {
        FlatBufferBuilder fb = new FlatBufferBuilder(1024);
        int[] fieldOffsets = new int[fields.size()];
        for (int i = 0; i < fieldOffsets.length; i++) {
            fieldOffsets[i] = field(fb, fields.get(i));
        }
        int fieldVec = fb.createOffsetVector(fieldOffsets);
        fb.startTable(4);
        fb.addShort(0, 0); // endianness: Little
        fb.addOffset(1, fieldVec);
        int schema = fb.endTable();
        return ArrowBatchEncoder.encapsulate(message(fb, HEADER_SCHEMA, schema, 0), 0, 8);
    }

    static byte[] message(FlatBufferBuilder fb, byte headerType, int header, long bodyLength) {
        fb.startTable(5);
        fb.addShort(0, METADATA_V5);
        fb.addByte(1, headerType);
        fb.addOffset(2, header);
        fb.addLong(3, bodyLength);
        return fb.finish(fb.endTable());
    }

    private static int field(FlatBufferBuilder fb, FieldSpec f) {
        int child = -1;
        if (f.array) {
            child = fieldTable(fb, "item", leafType(fb, f.leaf), f.leaf.typeTag(), -1, -1);
            if (f.shape != null) {
                for (int d = f.shape.length - 1; d >= 1; d--) {
                    child = fieldTable(fb, "item", fixedSizeList(fb, f.shape[d]), TYPE_FIXED_SIZE_LIST, child, -1);
                }
            }
        }
        int meta = -1;
        if (f.shape != null) {
            StringBuilder json = new StringBuilder("[");
            for (int d = 0; d < f.shape.length; d++) {
                json.append(d == 0 ? "" : ",").append(f.shape[d]);
            }
            int key = fb.createString(SHAPE_KEY);
            int value = fb.createString(json.append(']').toString());
            fb.startTable(2);
            fb.addOffset(0, key);
            fb.addOffset(1, value);
            meta = fb.createOffsetVector(new int[] {fb.endTable()});
        }
        if (!f.array) {
            return fieldTable(fb, f.name, leafType(fb, f.leaf), f.leaf.typeTag(), -1, meta);
        }
        if (f.shape != null) {
            return fieldTable(fb, f.name, fixedSizeList(fb, f.shape[0]), TYPE_FIXED_SIZE_LIST, child, meta);
        }
        fb.startTable(0);
        return fieldTable(fb, f.name, fb.endTable(), TYPE_LIST, child, meta);
    }

    private static int fixedSizeList(FlatBufferBuilder fb, int size) {
        fb.startTable(1);
        fb.addInt(0, size);
        return fb.endTable();
    }

    private static int leafType(FlatBufferBuilder fb, Leaf leaf) {
        switch (leaf) {
            case INT8:
            case INT16:
            case INT32:
            case INT64:
                fb.startTable(2);
                fb.addInt(0, leaf.width * 8);
                fb.addByte(1, 1); // is_signed
                return fb.endTable();
            case FLOAT32:
            case FLOAT64:
                fb.startTable(1);
                fb.addShort(0, leaf == Leaf.FLOAT32 ? 1 : 2); // Precision SINGLE / DOUBLE
                return fb.endTable();
            default: // Bool, Utf8, Binary: empty tables
                fb.startTable(0);
                return fb.endTable();
        }
    }

    /** A Field table; {@code child} and {@code meta} are -1 when absent. */
    private static int fieldTable(FlatBufferBuilder fb, String name, int type, byte typeTag, int child, int meta) {
        int nameOff = fb.createString(name);
        int children = fb.createOffsetVector(child < 0 ? new int[0] : new int[] {child});
        fb.startTable(7);
        fb.addOffset(0, nameOff);
        fb.addByte(1, 1); // nullable
        fb.addByte(2, typeTag);
        fb.addOffset(3, type);
        fb.addOffset(5, children);
        if (meta >= 0) {
            fb.addOffset(6, meta);
        }
        return fb.endTable();
    }
}
