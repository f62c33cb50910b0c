package io.flinktf.ipc.arrow;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import org.apache.flink.api.common.typeinfo.BasicArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

class ArrowBatchEncoderTest {
    private static RowTypeInfo rowType(String[] names, TypeInformation<?>... types) {
        return new RowTypeInfo(types, names);
    }

    @Test
    void everyTypeOfTheMappingEncodesWithAlignedBuffersAndOneNodePerLevel() {
        ArrowBatchEncoder enc = new ArrowBatchEncoder(ArrowSchema.of(ArrowRows.TYPE, ArrowRows.SHAPES));
        for (long i = 0; i < 100; i++) {
            enc.add(ArrowRows.row(i));
        }
        assertEquals(100, enc.rows());
        ArrowMessages.Parsed p = ArrowMessages.parse(enc.encode());
        assertEquals(3, p.headerType);
        assertEquals(100, p.rows);
        // 9 scalars (1 node each), x: 3 levels, img: 2, four lists: 2 each
        assertEquals(9 + 3 + 2 + 4 * 2, p.nodes.length / 2);
        assertEquals(100, p.nodes[0]);
        assertEquals(100 * 6, p.nodes[2 * 11], "x leaf: 6 values per row");
        assertEquals(0, enc.rows(), "encode starts a new batch");
    }

    @Test
    void emptyBatchIsAValidMessage() {
        ArrowBatchEncoder enc = new ArrowBatchEncoder(ArrowSchema.of(ArrowRows.TYPE, ArrowRows.SHAPES));
        ArrowMessages.Parsed p = ArrowMessages.parse(enc.encode());
        assertEquals(0, p.rows);
        for (int i = 0; i < p.nodes.length; i += 2) {
            assertEquals(0, p.nodes[i]);
        }
    }

    @Test
    void valuesLandWhereArrowExpectsThem() {
        RowTypeInfo t = rowType(new String[] {"v", "s", "b"}, Types.INT, Types.STRING, Types.BOOLEAN);
        ArrowBatchEncoder enc = new ArrowBatchEncoder(ArrowSchema.of(t, null));
        enc.add(Row.of(7, "ä", true));
        enc.add(Row.of(null, null, null));
        enc.add(Row.of(-1, "日本", true));
        byte[] msg = enc.encode();
        ArrowMessages.Parsed p = ArrowMessages.parse(msg);
        ByteBuffer body = ByteBuffer.wrap(msg, p.bodyStart, (int) p.bodyLength).slice().order(ByteOrder.LITTLE_ENDIAN);
        long[] b = p.buffers;
        // v: validity 0b101, values 7, 0, -1
        assertEquals(1, b[1]);
        assertEquals(0b101, body.get((int) b[0]));
        assertEquals(7, body.getInt((int) b[2]));
        assertEquals(-1, body.getInt((int) b[2] + 8));
        assertEquals(1, p.nodes[1], "one null in v");
        // s: offsets 0, 2, 2, 8 then the UTF-8 bytes
        int offs = (int) b[6];
        assertArrayEquals(new int[] {0, 2, 2, 8}, new int[] {body.getInt(offs), body.getInt(offs + 4),
            body.getInt(offs + 8), body.getInt(offs + 12)});
        byte[] chars = new byte[8];
        body.position((int) b[8]);
        body.get(chars);
        assertEquals("ä日本", new String(chars, StandardCharsets.UTF_8));
        // b: bit-packed 0b101
        assertEquals(0b101, body.get((int) b[12]));
    }

    @Test
    void namedRowsAreReadByName() {
        RowTypeInfo t = rowType(new String[] {"a", "b"}, Types.LONG, Types.LONG);
        ArrowBatchEncoder enc = new ArrowBatchEncoder(ArrowSchema.of(t, null));
        Row r = Row.withNames();
        r.setField("b", 2L);
        r.setField("a", 1L);
        enc.add(r);
        byte[] msg = enc.encode();
        ArrowMessages.Parsed p = ArrowMessages.parse(msg);
        ByteBuffer body = ByteBuffer.wrap(msg, p.bodyStart, (int) p.bodyLength).slice().order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1L, body.getLong((int) p.buffers[2]));
        assertEquals(2L, body.getLong((int) p.buffers[6]));
    }

    @Test
    void aWrongShapeNamesTheColumnAndLeavesTheBatchIntact() {
        RowTypeInfo t = rowType(new String[] {"x", "y"}, PrimitiveArrayTypeInfo.FLOAT_PRIMITIVE_ARRAY_TYPE_INFO, Types.LONG);
        Map<String, int[]> shapes = new HashMap<>();
        shapes.put("x", new int[] {2, 2});
        ArrowBatchEncoder enc = new ArrowBatchEncoder(ArrowSchema.of(t, shapes));
        enc.add(Row.of(new float[4], 1L));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> enc.add(Row.of(new float[3], 2L)));
        assertTrue(e.getMessage().contains("column 'x'") && e.getMessage().contains("[2, 2] needs 4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> enc.add(Row.of(new float[4], "no")));
        assertTrue(e.getMessage().contains("column 'y'"), e.getMessage());
        assertTrue(enc.isBroken(), "a row that failed after its first column poisons the batch");
        assertThrows(IllegalStateException.class, enc::encode);
        enc.clear();
        enc.add(Row.of(new float[4], 3L));
        assertEquals(1, ArrowMessages.parse(enc.encode()).rows);
        assertThrows(IllegalArgumentException.class, () -> enc.add(Row.of(1L)), "arity");
    }

    @Test
    void aValueOfAnotherJavaTypeThanDeclaredFailsNamingColumnDeclaredAndActualType() {
        // Issue 12 item 12: a FLOAT declared BIGINT was truncated, a BIGINT declared INT narrowed.
        Object[][] cases = {
            {Types.LONG, 1.5f, "BIGINT", "java.lang.Float"},
            {Types.INT, 1L << 40, "INT", "java.lang.Long"},
            {Types.SHORT, 7, "SMALLINT", "java.lang.Integer"},
            {Types.BYTE, (short) 300, "TINYINT", "java.lang.Short"},
            {Types.FLOAT, 0.1, "FLOAT", "java.lang.Double"},
            {Types.DOUBLE, 3, "DOUBLE", "java.lang.Integer"},
            {Types.BOOLEAN, 1, "BOOLEAN", "java.lang.Integer"},
            {Types.STRING, 5L, "STRING", "java.lang.Long"},
            {PrimitiveArrayTypeInfo.FLOAT_PRIMITIVE_ARRAY_TYPE_INFO, new double[] {1.0}, "FLOAT", "double[]"},
            {BasicArrayTypeInfo.LONG_ARRAY_TYPE_INFO, new Object[] {1L, 2}, "BIGINT", "java.lang.Integer"},
        };
        for (Object[] c : cases) {
            RowTypeInfo t = rowType(new String[] {"feature"}, (TypeInformation<?>) c[0]);
            ArrowBatchEncoder enc = new ArrowBatchEncoder(ArrowSchema.of(t, null));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> enc.add(Row.of(c[1])),
                    c[0] + " takes no " + c[3]);
            String m = e.getMessage();
            assertTrue(m.contains("column 'feature': declared ") && m.contains((String) c[2]) && m.contains((String) c[3]), m);
        }
        // The exact types still go through.
        RowTypeInfo t = rowType(new String[] {"a", "b", "c", "d", "e", "f"}, Types.BYTE, Types.SHORT, Types.INT, Types.LONG,
                Types.FLOAT, Types.DOUBLE);
        ArrowBatchEncoder enc = new ArrowBatchEncoder(ArrowSchema.of(t, null));
        enc.add(Row.of((byte) 1, (short) 2, 3, 4L, 5f, 6.0));
        assertEquals(1, ArrowMessages.parse(enc.encode()).rows);
    }

    @Test
    void schemaMessageHasNoBodyAndIsPaddedTo8() {
        ArrowMessages.Parsed p = ArrowMessages.parse(ArrowSchema.of(ArrowRows.TYPE, ArrowRows.SHAPES).schemaMessage());
        assertEquals(1, p.headerType);
        assertEquals(0, p.bodyLength);
    }

    @Test
    void schemaErrorsNameTheColumn() {
        RowTypeInfo t = rowType(new String[] {"ts", "v", "arr"}, Types.LOCAL_DATE_TIME, Types.INT,
                PrimitiveArrayTypeInfo.FLOAT_PRIMITIVE_ARRAY_TYPE_INFO);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ArrowSchema.of(t, null));
        assertTrue(e.getMessage().contains("column 'ts'") && e.getMessage().contains("no Arrow mapping"), e.getMessage());
        RowTypeInfo ok = rowType(new String[] {"v", "arr"}, Types.INT, PrimitiveArrayTypeInfo.FLOAT_PRIMITIVE_ARRAY_TYPE_INFO);
        e = assertThrows(IllegalArgumentException.class, () -> ArrowSchema.of(ok, Map.of("v", new int[] {2})));
        assertTrue(e.getMessage().contains("column 'v'") && e.getMessage().contains("takes no shape"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ArrowSchema.of(ok, Map.of("nope", new int[] {2})));
        assertTrue(e.getMessage().contains("unknown column") && e.getMessage().contains("nope"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ArrowSchema.of(ok, Map.of("arr", new int[] {2, 0})));
        assertTrue(e.getMessage().contains("dimension < 1"), e.getMessage());
        assertArrayEquals(new int[] {3, 4}, ArrowSchema.of(ok, Map.of("arr", new int[] {3, 4})).shape("arr"));
    }

    @Test
    void optionsCheckTheirArguments() {
        assertThrows(IllegalArgumentException.class, () -> ArrowBatchOptions.defaults().setBatchRows(0));
        assertThrows(IllegalArgumentException.class, () -> ArrowBatchOptions.defaults().setBatchBytes(1));
        assertThrows(IllegalArgumentException.class, () -> ArrowBatchOptions.defaults().setLingerMillis(0));
    }
}
