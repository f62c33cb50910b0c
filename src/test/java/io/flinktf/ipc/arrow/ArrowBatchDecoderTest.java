package io.flinktf.ipc.arrow;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

/**
 * The reader of Arrow record batches that workers send back: every type of the mapping round-trips
 * through the encoder, a schema of another shape or type is refused by column, and damaged
 * messages are IllegalArgumentException (never an index error or a huge allocation).
 */
class ArrowBatchDecoderTest {
    private static final ArrowSchema SCHEMA = ArrowSchema.of(ArrowRows.TYPE, ArrowRows.SHAPES);

    private static byte[] encode(int rows) {
        ArrowBatchEncoder enc = new ArrowBatchEncoder(SCHEMA);
        for (long i = 0; i < rows; i++) {
            enc.add(ArrowRows.row(i));
        }
        return enc.encode();
    }

    @Test
    void everyTypeRoundTripsThroughEncoderAndDecoder() {
        ArrowBatchDecoder dec = new ArrowBatchDecoder(SCHEMA, ArrowRows.TYPE);
        dec.checkSchema(ByteBuffer.wrap(SCHEMA.schemaMessage()));
        List<Row> rows = dec.decode(ByteBuffer.wrap(encode(100)));
        assertEquals(100, rows.size());
        for (int i = 0; i < 100; i++) {
            Row want = ArrowRows.row(i);
            assertEquals(want, rows.get(i), "row " + i);
        }
        assertEquals(0, dec.decode(ByteBuffer.wrap(encode(0))).size(), "an empty batch is valid");
    }

    @Test
    void aSchemaOfAnotherTypeOrShapeIsRefusedByColumn() {
        RowTypeInfo want = new RowTypeInfo(new TypeInformation<?>[] {Types.LONG, Types.FLOAT}, new String[] {"id", "y"});
        ArrowBatchDecoder dec = new ArrowBatchDecoder(ArrowSchema.of(want, null), want);
        RowTypeInfo doubles = new RowTypeInfo(new TypeInformation<?>[] {Types.LONG, Types.DOUBLE}, new String[] {"id", "y"});
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> dec.checkSchema(ByteBuffer.wrap(ArrowSchema.of(doubles, null).schemaMessage())));
        assertEquals("result column 'y' is float64, the output row type wants float32", e.getMessage());
        RowTypeInfo renamed = new RowTypeInfo(new TypeInformation<?>[] {Types.LONG, Types.FLOAT}, new String[] {"id", "z"});
        e = assertThrows(IllegalArgumentException.class,
                () -> dec.checkSchema(ByteBuffer.wrap(ArrowSchema.of(renamed, null).schemaMessage())));
        assertTrue(e.getMessage().contains("named 'z'"), e.getMessage());
        RowTypeInfo arrays = new RowTypeInfo(new TypeInformation<?>[] {Types.PRIMITIVE_ARRAY(Types.FLOAT)}, new String[] {"v"});
        ArrowBatchDecoder shaped = new ArrowBatchDecoder(ArrowSchema.of(arrays, Map.of("v", new int[] {3})), arrays);
        e = assertThrows(IllegalArgumentException.class,
                () -> shaped.checkSchema(ByteBuffer.wrap(ArrowSchema.of(arrays, Map.of("v", new int[] {4})).schemaMessage())));
        assertEquals("result column 'v' is fixed_size_list<4>(float32), the output row type wants "
                + "fixed_size_list<3>(float32)", e.getMessage());
    }

    @Test
    void aTruncatedOrMisframedMessageIsRefused() {
        ArrowBatchDecoder dec = new ArrowBatchDecoder(SCHEMA, ArrowRows.TYPE);
        byte[] msg = encode(10);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> dec.decode(ByteBuffer.wrap(msg, 0, msg.length - 64)));
        assertTrue(e.getMessage().contains("past the record"), e.getMessage());
        byte[] bad = msg.clone();
        bad[0] = 0;
        e = assertThrows(IllegalArgumentException.class, () -> dec.decode(ByteBuffer.wrap(bad)));
        assertTrue(e.getMessage().contains("continuation"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> dec.decode(ByteBuffer.wrap(SCHEMA.schemaMessage())));
        assertTrue(e.getMessage().contains("expected an Arrow RecordBatch"), e.getMessage());
    }

    @Test
    void randomDamageIsAlwaysAClearErrorOrValidRows() {
        ArrowBatchDecoder dec = new ArrowBatchDecoder(SCHEMA, ArrowRows.TYPE);
        byte[] msg = encode(20);
        Random rnd = new Random(42);
        int refused = 0;
        for (int round = 0; round < 3000; round++) {
            byte[] d = msg.clone();
            int flips = 1 + rnd.nextInt(4);
            for (int k = 0; k < flips; k++) {
                // mostly the metadata (offsets, lengths, counts), sometimes the body
                int at = rnd.nextInt(4) == 0 ? rnd.nextInt(d.length) : rnd.nextInt(Math.min(d.length, 1024));
                d[at] = (byte) rnd.nextInt(256);
            }
            try {
                List<Row> rows = dec.decode(ByteBuffer.wrap(d));
                assertTrue(rows.size() <= 8L * d.length + 8);
            } catch (IllegalArgumentException e) {
                refused++;
            }
        }
        assertTrue(refused > 0);
        List<Object> sink = new ArrayList<>();
        sink.add(refused); // keeps the loop from being optimised into nothing
    }
}
