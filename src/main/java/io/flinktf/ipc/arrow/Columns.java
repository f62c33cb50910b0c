package io.flinktf.ipc.arrow;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * Column builders: rows go in one value at a time, Arrow buffers come out. Each builder fills
 * its buffers in the Arrow layout (little-endian values, int32 offsets, LSB-first bitmaps), so
 * encoding a batch is copying them into the message body. Used by one thread.
 */
final class Columns {
    private Columns() {}

    /** The error of a value whose Java type is not the column's (both encoders say it alike). */
    static IllegalArgumentException wrongType(String name, Object v, String expected) {
        return new IllegalArgumentException("column '" + name + "': declared " + expected + ", got a value of "
                + "Java type " + javaType(v) + (v instanceof Number || v instanceof Boolean ? " (" + v + ")" : "")
                + ": the stream's values do not match the declared row type (declare the type the values have, "
                + "or CAST them in the query; nothing is converted silently)");
    }

    static String javaType(Object v) {
        Class<?> c = v.getClass();
        return c.isArray() ? c.getComponentType().getName() + "[]" : c.getName();
    }

    /** The error of a fixed-shape value with the wrong number of elements. */
    static IllegalArgumentException wrongSize(String name, int n, int[] shape, int size) {
        return new IllegalArgumentException("column '" + name + "': array of " + n
                + " values, the declared shape " + Arrays.toString(shape) + " needs " + size);
    }

    /** A growable little-endian byte buffer. */
    static final class Buf {
        byte[] data = new byte[256];
        ByteBuffer bb = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        int size;

        void ensure(int more) {
            long need = (long) size + more;
            if (need > data.length) {
                if (need > Integer.MAX_VALUE - 64) {
                    throw new IllegalStateException("Arrow batch buffer over 2 GiB: lower the batch limits");
                }
                data = Arrays.copyOf(data, (int) Math.min(Integer.MAX_VALUE - 64, Math.max(need, 2L * data.length)));
                bb = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
            }
        }

        void put(byte v) {
            ensure(1);
            data[size++] = v;
        }

        void putShort(short v) {
            ensure(2);
            bb.putShort(size, v);
            size += 2;
        }

        void putInt(int v) {
            ensure(4);
            bb.putInt(size, v);
            size += 4;
        }

        void putLong(long v) {
            ensure(8);
            bb.putLong(size, v);
            size += 8;
        }

        void putFloat(float v) {
            ensure(4);
            bb.putFloat(size, v);
            size += 4;
        }

        void putDouble(double v) {
            ensure(8);
            bb.putDouble(size, v);
            size += 8;
        }

        void putBytes(byte[] b) {
            ensure(b.length);
            System.arraycopy(b, 0, data, size, b.length);
            size += b.length;
        }

        void zeros(int n) {
            ensure(n);
            Arrays.fill(data, size, size + n, (byte) 0);
            size += n;
        }

        /** Positions the view at the end, for a bulk put of {@code bytes} bytes. */
        ByteBuffer bulk(int bytes) {
            ensure(bytes);
            bb.limit(size + bytes).position(size);
            ByteBuffer view = bb.slice().order(ByteOrder.LITTLE_ENDIAN);
            bb.clear(); // the absolute puts of later values need the whole array again
            size += bytes;
            return view;
        }

        void reset() {
            size = 0;
            bb.clear();
        }
    }

    /** A validity or boolean bitmap (bit i of byte i/8, least significant first). */
    static final class Bits {
        final Buf buf = new Buf();
        int length;

        void add(boolean bit) {
            if ((length & 7) == 0) {
                buf.put((byte) 0);
            }
            if (bit) {
                buf.data[length >>> 3] |= (byte) (1 << (length & 7));
            }
            length++;
        }

        /** {@code n} set bits: whole bytes at once (a 784-value row was 784 calls of add). */
        void addOnes(int n) {
            while (n > 0 && (length & 7) != 0) {
                add(true);
                n--;
            }
            int bytes = n >>> 3;
            if (bytes > 0) {
                buf.ensure(bytes);
                Arrays.fill(buf.data, buf.size, buf.size + bytes, (byte) 0xFF);
                buf.size += bytes;
                length += bytes << 3;
            }
            for (int i = 0; i < (n & 7); i++) {
                add(true);
            }
        }

        void reset() {
            buf.reset();
            length = 0;
        }
    }

    /** Where the nodes and buffers of a batch are gathered, in Arrow's depth-first order. */
    static final class Layout {
        long[] nodes = new long[32]; // length, null_count pairs
        int nodeCount;
        byte[][] bufData = new byte[32][];
        int[] bufLen = new int[32];
        int bufCount;

        void node(long length, long nullCount) {
            if (2 * nodeCount + 2 > nodes.length) {
                nodes = Arrays.copyOf(nodes, nodes.length * 2);
            }
            nodes[2 * nodeCount] = length;
            nodes[2 * nodeCount + 1] = nullCount;
            nodeCount++;
        }

        void buffer(byte[] data, int length) {
            if (bufCount == bufLen.length) {
                bufData = Arrays.copyOf(bufData, bufCount * 2);
                bufLen = Arrays.copyOf(bufLen, bufCount * 2);
            }
            bufData[bufCount] = data;
            bufLen[bufCount] = length;
            bufCount++;
        }

        void reset() {
            nodeCount = 0;
            bufCount = 0;
            Arrays.fill(bufData, null);
        }
    }

    /** A column of values of one Arrow type; every builder tracks its own validity. */
    abstract static class Column {
        final String name;
        int length;
        int nullCount;
        final Bits validity = new Bits();

        Column(String name) {
            this.name = name;
        }

        /** Appends one row's value; {@code v} may be null. */
        final void append(Object v) {
            if (v == null) {
                nullCount++;
                validity.add(false);
                appendEmpty();
            } else {
                appendValue(v); // first: a value of the wrong type leaves this column as it was
                validity.add(true);
            }
            length++;
        }

        /** The value slot of a null. */
        abstract void appendEmpty();

        abstract void appendValue(Object v);

        /** This column's nodes and buffers (validity first, empty when there are no nulls). */
        void layout(Layout out) {
            out.node(length, nullCount);
            out.buffer(validity.buf.data, nullCount == 0 ? 0 : validity.buf.size);
            dataLayout(out);
        }

        abstract void dataLayout(Layout out);

        /** Bytes the buffers take (without padding). */
        long bytes() {
            return (nullCount == 0 ? 0 : validity.buf.size) + dataBytes();
        }

        abstract long dataBytes();

        void reset() {
            length = 0;
            nullCount = 0;
            validity.reset();
        }

        IllegalArgumentException wrongType(Object v, String expected) {
            return Columns.wrongType(name, v, expected);
        }

        static String javaType(Object v) {
            return Columns.javaType(v);
        }

        /**
         * Appends the elements of an array (a list row, or all values of a fixed-shape row);
         * returns how many. Primitive arrays are copied in bulk; boxed ones may hold nulls.
         */
        int appendArray(Object array) {
            if (!(array instanceof Object[])) {
                throw wrongType(array, "an array of " + typeName());
            }
            Object[] a = (Object[]) array;
            for (Object v : a) {
                append(v);
            }
            return a.length;
        }

        /** {@code n} valid zero values (the child slots of a null fixed-size list row). */
        void appendZeros(int n) {
            for (int i = 0; i < n; i++) {
                validity.add(true);
                appendEmpty();
                length++;
            }
        }

        abstract String typeName();
    }

    /** Signed integers and floats of 1, 2, 4 or 8 bytes. */
    static final class FixedWidth extends Column {
        final ArrowSchema.Leaf leaf;
        final Buf values = new Buf();

        FixedWidth(String name, ArrowSchema.Leaf leaf) {
            super(name);
            this.leaf = leaf;
        }

        @Override
        String typeName() {
            return leaf.flinkName;
        }

        @Override
        void appendEmpty() {
            values.zeros(leaf.width);
        }

        @Override
        void appendValue(Object v) {
            if (v.getClass() != leaf.javaClass) { // exactly that class: no widening, narrowing or rounding
                throw wrongType(v, typeName() + " (" + leaf.javaClass.getName() + ")");
            }
            Number n = (Number) v;
            switch (leaf) {
                case INT8:
                    values.put(n.byteValue());
                    break;
                case INT16:
                    values.putShort(n.shortValue());
                    break;
                case INT32:
                    values.putInt(n.intValue());
                    break;
                case INT64:
                    values.putLong(n.longValue());
                    break;
                case FLOAT32:
                    values.putFloat(n.floatValue());
                    break;
                case FLOAT64:
                    values.putDouble(n.doubleValue());
                    break;
                default:
                    throw new AssertionError(leaf);
            }
        }

        @Override
        int appendArray(Object array) {
            int n;
            switch (leaf) {
                case INT8:
                    if (!(array instanceof byte[])) {
                        return super.appendArray(array);
                    }
                    values.putBytes((byte[]) array);
                    n = ((byte[]) array).length;
                    break;
                case INT16:
                    if (!(array instanceof short[])) {
                        return super.appendArray(array);
                    }
                    n = ((short[]) array).length;
                    values.bulk(2 * n).asShortBuffer().put((short[]) array);
                    break;
                case INT32:
                    if (!(array instanceof int[])) {
                        return super.appendArray(array);
                    }
                    n = ((int[]) array).length;
                    values.bulk(4 * n).asIntBuffer().put((int[]) array);
                    break;
                case INT64:
                    if (!(array instanceof long[])) {
                        return super.appendArray(array);
                    }
                    n = ((long[]) array).length;
                    values.bulk(8 * n).asLongBuffer().put((long[]) array);
                    break;
                case FLOAT32:
                    if (!(array instanceof float[])) {
                        return super.appendArray(array);
                    }
                    n = ((float[]) array).length;
                    values.bulk(4 * n).asFloatBuffer().put((float[]) array);
                    break;
                case FLOAT64:
                    if (!(array instanceof double[])) {
                        return super.appendArray(array);
                    }
                    n = ((double[]) array).length;
                    values.bulk(8 * n).asDoubleBuffer().put((double[]) array);
                    break;
                default:
                    throw new AssertionError(leaf);
            }
            validity.addOnes(n);
            length += n;
            return n;
        }

        @Override
        void dataLayout(Layout out) {
            out.buffer(values.data, values.size);
        }

        @Override
        long dataBytes() {
            return values.size;
        }

        @Override
        void reset() {
            super.reset();
            values.reset();
        }
    }

    /** Booleans, bit-packed. */
    static final class Bool extends Column {
        final Bits values = new Bits();

        Bool(String name) {
            super(name);
        }

        @Override
        String typeName() {
            return "BOOLEAN";
        }

        @Override
        void appendEmpty() {
            values.add(false);
        }

        @Override
        void appendValue(Object v) {
            if (!(v instanceof Boolean)) {
                throw wrongType(v, typeName() + " (java.lang.Boolean)");
            }
            values.add((Boolean) v);
        }

        @Override
        int appendArray(Object array) {
            if (!(array instanceof boolean[])) {
                return super.appendArray(array);
            }
            boolean[] a = (boolean[]) array;
            for (boolean b : a) {
                validity.add(true);
                values.add(b);
            }
            length += a.length;
            return a.length;
        }

        @Override
        void dataLayout(Layout out) {
            out.buffer(values.buf.data, values.buf.size);
        }

        @Override
        long dataBytes() {
            return values.buf.size;
        }

        @Override
        void reset() {
            super.reset();
            values.reset();
        }
    }

    /** Utf8 (from String) or Binary (from byte[]): int32 offsets, then the bytes. */
    static final class VarBinary extends Column {
        final boolean utf8;
        final Buf offsets = new Buf();
        final Buf values = new Buf();

        VarBinary(String name, boolean utf8) {
            super(name);
            this.utf8 = utf8;
            offsets.putInt(0);
        }

        @Override
        String typeName() {
            return utf8 ? "STRING" : "BYTES";
        }

        @Override
        void appendEmpty() {
            offsets.putInt(values.size);
        }

        @Override
        void appendValue(Object v) {
            if (utf8 && v instanceof String) {
                values.putBytes(((String) v).getBytes(StandardCharsets.UTF_8));
            } else if (!utf8 && v instanceof byte[]) {
                values.putBytes((byte[]) v);
            } else {
                throw wrongType(v, utf8 ? "STRING (java.lang.String)" : "BYTES (byte[])");
            }
            offsets.putInt(values.size);
        }

        @Override
        void dataLayout(Layout out) {
            out.buffer(offsets.data, offsets.size);
            out.buffer(values.data, values.size);
        }

        @Override
        long dataBytes() {
            return offsets.size + (long) values.size;
        }

        @Override
        void reset() {
            super.reset();
            offsets.reset();
            values.reset();
            offsets.putInt(0);
        }
    }

    /**
     * A fixed-shape column: nested FixedSizeLists, one level per dimension, over a flat leaf
     * column that receives the row's values in row-major order. A null row keeps its slots
     * (zeros) so that every row has prod(shape) values, as the format requires.
     */
    static final class FixedShape extends Column {
        final int[] shape;
        final int size;
        final Column leaf;

        FixedShape(String name, int[] shape, Column leaf) {
            super(name);
            this.shape = shape.clone();
            this.size = ArrowSchema.product(shape);
            this.leaf = leaf;
        }

        @Override
        String typeName() {
            return "array of " + leaf.typeName() + " with shape " + Arrays.toString(shape);
        }

        @Override
        void appendEmpty() {
            leaf.appendZeros(size);
        }

        @Override
        void appendValue(Object v) {
            if (!v.getClass().isArray()) {
                throw wrongType(v, typeName());
            }
            int n = java.lang.reflect.Array.getLength(v);
            if (n != size) { // checked first: a failed row leaves the batch as it was
                throw wrongSize(name, n, shape, size);
            }
            leaf.appendArray(v);
        }

        @Override
        void dataLayout(Layout out) {
            long rows = length;
            for (int d = 0; d < shape.length - 1; d++) {
                rows *= shape[d];
                out.node(rows, 0); // inner levels: never null
                out.buffer(validity.buf.data, 0);
            }
            leaf.layout(out);
        }

        @Override
        long dataBytes() {
            return leaf.bytes();
        }

        @Override
        void reset() {
            super.reset();
            leaf.reset();
        }
    }

    /** A ragged column: List (int32 offsets) over a leaf column. */
    static final class Ragged extends Column {
        final Buf offsets = new Buf();
        final Column leaf;

        Ragged(String name, Column leaf) {
            super(name);
            this.leaf = leaf;
            offsets.putInt(0);
        }

        @Override
        String typeName() {
            return "array of " + leaf.typeName();
        }

        @Override
        void appendEmpty() {
            offsets.putInt(leaf.length);
        }

        @Override
        void appendValue(Object v) {
            leaf.appendArray(v);
            offsets.putInt(leaf.length);
        }

        @Override
        void dataLayout(Layout out) {
            out.buffer(offsets.data, offsets.size);
            leaf.layout(out);
        }

        @Override
        long dataBytes() {
            return offsets.size + leaf.bytes();
        }

        @Override
        void reset() {
            super.reset();
            offsets.reset();
            offsets.putInt(0);
            leaf.reset();
        }
    }
}
