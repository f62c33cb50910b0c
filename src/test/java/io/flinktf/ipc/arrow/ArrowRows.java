package io.flinktf.ipc.arrow;

import java.util.Map;
import org.apache.flink.api.common.typeinfo.BasicArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;

/**
 * Deterministic test rows with every type of the mapping; tests/test_jvm_arrow.py computes the same
 * rows in Python ({@code expected_row}) and compares them with what pyarrow decodes. Column c of
 * row i is null when (i + c) % 11 == 0.
 */
final class ArrowRows {
    private ArrowRows() {}

    static final String[] NAMES = {
        "i8", "i16", "i32", "i64", "f32", "f64", "b", "s", "bin",
        "x", "img", "rag", "boxed", "bools", "strs"
    };
    static final TypeInformation<?>[] TYPES = {
        Types.BYTE, Types.SHORT, Types.INT, Types.LONG, Types.FLOAT, Types.DOUBLE, Types.BOOLEAN,
        Types.STRING, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
        PrimitiveArrayTypeInfo.FLOAT_PRIMITIVE_ARRAY_TYPE_INFO, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
        PrimitiveArrayTypeInfo.LONG_PRIMITIVE_ARRAY_TYPE_INFO, BasicArrayTypeInfo.FLOAT_ARRAY_TYPE_INFO,
        PrimitiveArrayTypeInfo.BOOLEAN_PRIMITIVE_ARRAY_TYPE_INFO, BasicArrayTypeInfo.STRING_ARRAY_TYPE_INFO
    };
    static final RowTypeInfo TYPE = new RowTypeInfo(TYPES, NAMES);
    static final Map<String, int[]> SHAPES = Map.of("x", new int[] {2, 3}, "img", new int[] {4});

    static String text(long i) {
        return "zeile-" + i + "-äöü-日本-🙂".repeat((int) (i % 3));
    }

    static Row row(long i) {
        Object[] v = new Object[NAMES.length];
        v[0] = (byte) (i * 7);
        v[1] = (short) (i * 1000);
        v[2] = (int) (i * 2654435761L);
        v[3] = i * 0x9E3779B97F4A7C15L;
        v[4] = i * 0.5f - 3f;
        v[5] = i / 3.0;
        v[6] = i % 3 == 0;
        v[7] = text(i);
        byte[] bin = new byte[(int) (i % 7)];
        for (int k = 0; k < bin.length; k++) {
            bin[k] = (byte) (i + k);
        }
        v[8] = bin;
        float[] x = new float[6];
        for (int k = 0; k < 6; k++) {
            x[k] = i * 6 + k;
        }
        v[9] = x;
        v[10] = new byte[] {(byte) i, (byte) -i, 1, -1};
        long[] rag = new long[(int) (i % 4)];
        for (int k = 0; k < rag.length; k++) {
            rag[k] = i * 10 + k;
        }
        v[11] = rag;
        Float[] boxed = new Float[(int) (i % 3)];
        for (int k = 0; k < boxed.length; k++) {
            boxed[k] = (i + k) % 4 == 3 ? null : (float) (i + k) / 4;
        }
        v[12] = boxed;
        boolean[] bools = new boolean[(int) (i % 3)];
        for (int k = 0; k < bools.length; k++) {
            bools[k] = (i + k) % 2 == 0;
        }
        v[13] = bools;
        String[] strs = new String[(int) (i % 3)];
        for (int k = 0; k < strs.length; k++) {
            strs[k] = (i + k) % 4 == 3 ? null : "ß" + (i + k);
        }
        v[14] = strs;
        for (int c = 0; c < v.length; c++) {
            if ((i + c) % 11 == 0) {
                v[c] = null;
            }
        }
        return Row.of(v);
    }
}
