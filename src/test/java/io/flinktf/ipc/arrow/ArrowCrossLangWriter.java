package io.flinktf.ipc.arrow;

import io.flinktf.ipc.RingWriter;
import java.nio.file.Paths;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;

/**
 * The Java end of tests/test_jvm_arrow.py (compiled there against the installed jar): writes an
 * {@code arrow} stream of {@link ArrowRows} into a new ring, one RecordBatch per batch size given,
 * rows numbered on across batches.
 *
 * <pre>
 * ArrowCrossLangWriter PATH CAPACITY SIZES [direct]   (SIZES: comma-separated batch sizes, 0 allowed)
 * </pre>
 *
 * <p>{@code direct}: the fixed-size columns of ArrowRows only ({@link #DIRECT}), through {@link
 * ArrowRingBatcher} (each row encoded straight into the ring); a size of 0 writes no batch.
 */
final class ArrowCrossLangWriter {
    private ArrowCrossLangWriter() {}

    /** The columns of ArrowRows with a fixed size per row. */
    static final int[] DIRECT = {0, 1, 2, 3, 4, 5, 9, 10};

    public static void main(String[] args) throws Exception {
        if (args.length > 3 && args[3].equals("direct")) {
            direct(args);
            return;
        }
        long capacity = Long.parseLong(args[1]);
        ArrowSchema schema = ArrowSchema.of(ArrowRows.TYPE, ArrowRows.SHAPES);
        ArrowBatchEncoder enc = new ArrowBatchEncoder(schema);
        long timeout = 60_000_000_000L;
        try (RingWriter w = RingWriter.create(Paths.get(args[0]), capacity, 64)) {
            w.write(ArrowBatchEncoder.codecHeader("{}"), timeout);
            w.write(schema.schemaMessage(), timeout);
            long i = 0;
            for (String s : args[2].split(",")) {
                int n = Integer.parseInt(s);
                for (int k = 0; k < n; k++) {
                    enc.add(ArrowRows.row(i++));
                }
                w.write(enc.encode(), timeout);
            }
            w.finish();
        }
    }

    private static void direct(String[] args) throws Exception {
        String[] names = new String[DIRECT.length];
        TypeInformation<?>[] types = new TypeInformation<?>[DIRECT.length];
        for (int c = 0; c < DIRECT.length; c++) {
            names[c] = ArrowRows.NAMES[DIRECT[c]];
            types[c] = ArrowRows.TYPES[DIRECT[c]];
        }
        ArrowSchema schema = ArrowSchema.of(new RowTypeInfo(types, names), ArrowRows.SHAPES);
        int maxRows = 1;
        for (String s : args[2].split(",")) {
            maxRows = Math.max(maxRows, Integer.parseInt(s));
        }
        long timeout = 60_000_000_000L;
        try (RingWriter w = RingWriter.create(Paths.get(args[0]), Long.parseLong(args[1]), 64)) {
            w.write(ArrowBatchEncoder.codecHeader("{}"), timeout);
            w.write(schema.schemaMessage(), timeout);
            ArrowRingBatcher batcher = new ArrowRingBatcher(schema, w, maxRows, timeout);
            if (!batcher.isDirect()) {
                throw new IllegalStateException("the batches do not fit the ring for the direct path");
            }
            long i = 0;
            for (String s : args[2].split(",")) {
                int n = Integer.parseInt(s);
                for (int k = 0; k < n; k++) {
                    Row full = ArrowRows.row(i++);
                    Row row = new Row(DIRECT.length);
                    for (int c = 0; c < DIRECT.length; c++) {
                        row.setField(c, full.getField(DIRECT[c]));
                    }
                    batcher.add(row);
                }
                batcher.flush();
            }
            w.finish();
        }
    }
}
