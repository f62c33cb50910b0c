package io.flinktf.ipc.arrow;

import io.flinktf.ipc.RingWriter;
import java.nio.file.Paths;

/**
 * The Java end of tests/test_jvm_arrow.py (compiled there against the installed jar): writes an
 * {@code arrow} stream of {@link ArrowRows} into a new ring, one RecordBatch per batch size given,
 * rows numbered on across batches.
 *
 * <pre>
 * ArrowCrossLangWriter PATH CAPACITY SIZES   (SIZES: comma-separated batch sizes, 0 allowed)
 * </pre>
 */
final class ArrowCrossLangWriter {
    private ArrowCrossLangWriter() {}

    public static void main(String[] args) throws Exception {
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
}
