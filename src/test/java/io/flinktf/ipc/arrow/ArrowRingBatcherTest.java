package io.flinktf.ipc.arrow;

import static org.junit.jupiter.api.Assertions.*;

import io.flinktf.ipc.RecordTooLargeException;
import io.flinktf.ipc.RingPaths;
import io.flinktf.ipc.RingReader;
import io.flinktf.ipc.RingWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.typeinfo.BasicArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link ArrowRingBatcher} writes, straight into the ring, the very bytes {@link
 * ArrowBatchEncoder#encode()} makes of the same rows (full and short batches, nulls of rows and of
 * elements, over old bytes), with the encoder's checks and messages.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ArrowRingBatcherTest {
    private static final long SECOND = 1_000_000_000L;

    @TempDir
    Path tmp;

    /** Every fixed-size type: the direct path takes this schema. */
    static final String[] NAMES = {"i8", "i16", "i32", "i64", "f32", "f64", "x", "img", "boxed", "m", "d"};
    static final TypeInformation<?>[] TYPES = {
        Types.BYTE, Types.SHORT, Types.INT, Types.LONG, Types.FLOAT, Types.DOUBLE,
        PrimitiveArrayTypeInfo.FLOAT_PRIMITIVE_ARRAY_TYPE_INFO, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO,
        BasicArrayTypeInfo.FLOAT_ARRAY_TYPE_INFO, PrimitiveArrayTypeInfo.INT_PRIMITIVE_ARRAY_TYPE_INFO,
        PrimitiveArrayTypeInfo.DOUBLE_PRIMITIVE_ARRAY_TYPE_INFO
    };
    static final Map<String, int[]> SHAPES = Map.of("x", new int[] {2, 3}, "img", new int[] {4},
            "boxed", new int[] {10}, "m", new int[] {2, 2, 2}, "d", new int[] {5});
    static final ArrowSchema SCHEMA = ArrowSchema.of(new RowTypeInfo(TYPES, NAMES), SHAPES);

    /** Row i; column c is null when (i + c) % 7 == 0 and {@code nulls}; boxed elements are null now and then. */
    static Row row(long i, boolean nulls) {
        Object[] v = new Object[NAMES.length];
        v[0] = (byte) (i * 7);
        v[1] = (short) (i * 1000);
        v[2] = (int) (i * 2654435761L);
        v[3] = i * 0x9E3779B97F4A7C15L;
        v[4] = i * 0.5f - 3f;
        v[5] = i / 3.0;
        float[] x = new float[6];
        for (int k = 0; k < 6; k++) {
            x[k] = i * 6 + k;
        }
        v[6] = x;
        v[7] = new byte[] {(byte) i, (byte) -i, 1, -1};
        if (i % 3 == 0) { // a primitive row among boxed ones: its valid bits go in at an odd offset, in bulk
            float[] prim = new float[10];
            for (int k = 0; k < 10; k++) {
                prim[k] = (float) (i + k) / 4;
            }
            v[8] = prim;
        } else {
            Float[] boxed = new Float[10];
            for (int k = 0; k < 10; k++) {
                boxed[k] = nulls && (i + k) % 5 == 3 ? null : (float) (i + k) / 4;
            }
            v[8] = boxed;
        }
        int[] m = new int[8];
        for (int k = 0; k < 8; k++) {
            m[k] = (int) (i * 8 + k);
        }
        v[9] = m;
        double[] d = new double[5];
        for (int k = 0; k < 5; k++) {
            d[k] = i - k / 7.0;
        }
        v[10] = d;
        for (int c = 0; nulls && c < v.length; c++) {
            if ((i + c) % 7 == 0) {
                v[c] = null;
            }
        }
        return Row.of(v);
    }

    private Path ring(String name) throws Exception {
        Path d = tmp.resolve("rings");
        RingPaths.ensureDirectory(d);
        return d.resolve(name);
    }

    private static byte[] next(RingReader r) throws Exception {
        RingReader.Batch b = r.next(1, 10 * SECOND);
        assertNotNull(b);
        byte[] out = b.copy(0);
        b.release();
        return out;
    }

    @Test
    void directWritesTheEncodersBytesForFullShortAndNullBatchesOverOldBytes() throws Exception {
        Path p = ring("direct.ring");
        try (RingWriter w = RingWriter.create(p, 1 << 18, 64); RingReader r = RingReader.open(p, 10 * SECOND)) {
            ArrowRingBatcher batcher = new ArrowRingBatcher(SCHEMA, w, 100, 10 * SECOND);
            assertTrue(batcher.isDirect());
            ArrowBatchEncoder enc = new ArrowBatchEncoder(SCHEMA);
            long i = 0;
            int[] sizes = {100, 37, 1, 100, 99, 64, 3, 100};
            for (int round = 0; round < 40; round++) {
                byte[] junk = new byte[20_000 + 4_000 * (round % 5)]; // old bytes where the batches go
                Arrays.fill(junk, (byte) 0x5a);
                w.write(junk, SECOND);
                w.publish();
                assertArrayEquals(junk, next(r));
                boolean nulls = round % 2 == 1;
                int rows = sizes[round % sizes.length];
                for (int k = 0; k < rows; k++, i++) {
                    batcher.add(row(i, nulls));
                    enc.add(row(i, nulls));
                }
                assertEquals(enc.rows(), batcher.rows());
                assertEquals(enc.bufferBytes(), batcher.bufferBytes(), "round " + round);
                byte[] expected = enc.encode();
                assertEquals(expected.length, batcher.flush());
                w.publish();
                assertArrayEquals(expected, next(r), "round " + round + ", " + rows + " rows, nulls " + nulls);
                assertEquals(0, batcher.rows());
            }
            assertEquals(0, batcher.flush(), "an empty batch writes nothing");
        }
    }

    @Test
    void aRowThatFailsIsNotAddedAndSaysWhatTheEncoderSays() throws Exception {
        Path p = ring("fail.ring");
        try (RingWriter w = RingWriter.create(p, 1 << 20, 64); RingReader r = RingReader.open(p, 10 * SECOND)) {
            ArrowRingBatcher batcher = new ArrowRingBatcher(SCHEMA, w, 50, 10 * SECOND);
            ArrowBatchEncoder enc = new ArrowBatchEncoder(SCHEMA);
            Row[] bad = new Row[6];
            for (int b = 0; b < bad.length; b++) {
                bad[b] = row(1000 + b, false);
            }
            bad[0].setField(0, 1); // an Integer in a TINYINT column: the row's first value
            bad[1].setField(5, 1.5f); // a Float in a DOUBLE column, mid-row
            bad[2].setField(6, new float[5]); // 5 values, the shape needs 6
            bad[3].setField(8, new Object[] {1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f, 2.0, 3f}); // a Double among the boxed floats
            bad[4].setField(9, new long[8]); // long[] for an INT array
            bad[5].setField(10, "not an array");
            for (int k = 0; k < 20; k++) {
                Row good = row(k, true);
                enc.add(good);
                batcher.add(good);
                Row b = bad[k % bad.length];
                IllegalArgumentException direct = assertThrows(IllegalArgumentException.class, () -> batcher.add(b));
                ArrowBatchEncoder probe = new ArrowBatchEncoder(SCHEMA);
                IllegalArgumentException old = assertThrows(IllegalArgumentException.class, () -> probe.add(b));
                assertEquals(old.getMessage(), direct.getMessage());
            }
            IllegalArgumentException arity = assertThrows(IllegalArgumentException.class, () -> batcher.add(Row.of(1L)));
            assertTrue(arity.getMessage().contains("arity 1"), arity.getMessage());
            byte[] expected = enc.encode();
            batcher.flush();
            w.publish();
            assertArrayEquals(expected, next(r), "the rows before and after the failures, nothing of them");
        }
    }

    @Test
    void aFullBatchRefusesARowAndClearGivesTheSpaceBack() throws Exception {
        Path p = ring("full.ring");
        try (RingWriter w = RingWriter.create(p, 1 << 20, 64); RingReader r = RingReader.open(p, 10 * SECOND)) {
            ArrowRingBatcher batcher = new ArrowRingBatcher(SCHEMA, w, 2, 10 * SECOND);
            batcher.add(row(0, false));
            batcher.add(row(1, false));
            assertThrows(IllegalStateException.class, () -> batcher.add(row(2, false)));
            assertThrows(IllegalStateException.class, () -> w.write(new byte[8], SECOND),
                    "nothing else goes into the ring while a batch holds its frame");
            batcher.clear();
            assertEquals(0, batcher.rows());
            w.write(new byte[] {1, 2, 3}, SECOND);
            w.publish();
            assertArrayEquals(new byte[] {1, 2, 3}, next(r), "the dropped batch left nothing behind");
        }
    }

    @Test
    void otherSchemasAndOversizedReservationsTakeTheCopyPathWithItsErrors() throws Exception {
        Path p = ring("copy.ring");
        try (RingWriter w = RingWriter.create(p, 1 << 16, 64); RingReader r = RingReader.open(p, 10 * SECOND)) {
            // strings, booleans, ragged arrays: not fixed-size, the column builders take them
            ArrowSchema rows = ArrowSchema.of(ArrowRows.TYPE, ArrowRows.SHAPES);
            ArrowRingBatcher copy = new ArrowRingBatcher(rows, w, 10, 10 * SECOND);
            assertFalse(copy.isDirect());
            ArrowBatchEncoder enc = new ArrowBatchEncoder(rows);
            for (long i = 0; i < 10; i++) {
                copy.add(ArrowRows.row(i));
                enc.add(ArrowRows.row(i));
            }
            assertThrows(IllegalStateException.class, () -> copy.add(ArrowRows.row(11)));
            byte[] expected = enc.encode();
            copy.flush();
            w.publish();
            assertArrayEquals(expected, next(r));

            // 1000 rows of ~150 bytes do not fit a 32 KiB record: the copy path, which writes a short batch...
            ArrowRingBatcher big = new ArrowRingBatcher(SCHEMA, w, 1000, 10 * SECOND);
            assertFalse(big.isDirect());
            big.add(row(0, false));
            enc = new ArrowBatchEncoder(SCHEMA);
            enc.add(row(0, false));
            expected = enc.encode();
            big.flush();
            w.publish();
            assertArrayEquals(expected, next(r));
            // ...and refuses an oversized one as a ring write does
            for (int i = 0; i < 1000; i++) {
                big.add(row(i, false));
            }
            assertThrows(RecordTooLargeException.class, big::flush);
        }
    }
}
