package io.flinktf.ipc.arrow.bench;

import io.flinktf.ipc.RingPaths;
import io.flinktf.ipc.RingWriter;
import io.flinktf.ipc.arrow.ArrowBatchEncoder;
import io.flinktf.ipc.arrow.ArrowSchema;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;

/**
 * MNIST-shaped rows (784 float32 + int64 label) through the JVM Arrow encoder, alone and then
 * end to end: encoder → ring (align 64) → a Python process that decodes every batch with pyarrow
 * into NumPy views ({@code flinktf_ipc.arrow.column_to_numpy}) and sums the labels and one pixel
 * column, so every batch is really read.
 *
 * <pre>
 * java -cp flinktf-ipc.jar:flink-dist.jar io.flinktf.ipc.arrow.bench.ArrowBench [ROWS [BATCH_ROWS [PYTHON]]]
 * </pre>
 */
public final class ArrowBench {
    private ArrowBench() {}

    static final int PIXELS = 784;
    static final int ROW_BYTES = PIXELS * 4 + 8;

    private static final String READER = String.join("\n",
            "import sys, time",
            "from flinktf_ipc.arrow import ArrowRingReader, column_to_numpy",
            "r = ArrowRingReader(sys.argv[1], timeout=60)",
            "print('ready', flush=True)",
            "n = 0; s = 0.0; t0 = time.perf_counter()",
            "while (rb := r.read_batch(timeout=60)) is not None:",
            "    x = column_to_numpy(rb.column(0), 'x'); y = column_to_numpy(rb.column(1), 'y')",
            "    assert x.shape == (len(y), 28, 28)",
            "    n += len(y); s += float(y.sum()) + float(x[:, 0, 0].sum())",
            "    del rb, x, y",
            "print(n, time.perf_counter() - t0, s, flush=True)",
            "r.close()");

    public static void main(String[] args) throws Exception {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 200_000;
        int batchRows = args.length > 1 ? Integer.parseInt(args[1]) : 1024;
        String python = args.length > 2 ? args[2] : "python3";
        RowTypeInfo type = new RowTypeInfo(new TypeInformation<?>[] {
            PrimitiveArrayTypeInfo.FLOAT_PRIMITIVE_ARRAY_TYPE_INFO, Types.LONG}, new String[] {"x", "y"});
        ArrowSchema schema = ArrowSchema.of(type, Map.of("x", new int[] {28, 28}));
        Row[] pool = new Row[64];
        SplittableRandom rnd = new SplittableRandom(1);
        for (int i = 0; i < pool.length; i++) {
            float[] x = new float[PIXELS];
            for (int k = 0; k < PIXELS; k++) {
                x[k] = (float) rnd.nextDouble();
            }
            pool[i] = Row.of(x, (long) (i % 10));
        }
        System.out.printf("machine: %d cpus, java %s; rows %d x %d bytes payload, batches of %d rows%n",
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"), rows, ROW_BYTES,
                batchRows);

        // 1. the encoder alone (Rows -> Arrow messages in memory)
        ArrowBatchEncoder enc = new ArrowBatchEncoder(schema);
        for (int rep = 0; rep < 2; rep++) { // the first round warms up the JIT
            long t0 = System.nanoTime();
            long bytes = 0;
            for (int i = 0; i < rows; i++) {
                enc.add(pool[i & 63]);
                if (enc.rows() == batchRows) {
                    bytes += enc.encode().length;
                }
            }
            bytes += enc.encode().length;
            double s = (System.nanoTime() - t0) / 1e9;
            if (rep == 1) {
                System.out.printf("encoder only:            %,12.0f rows/s  %8.1f MB/s payload  (%,d message bytes)%n",
                        rows / s, rows * (double) ROW_BYTES / s / 1e6, bytes);
            }
        }

        // 2. end to end: encoder -> ring -> Python pyarrow decode
        Path dir = RingPaths.defaultDirectory();
        Path ring = dir.resolve("arrow-bench-" + ProcessHandle.current().pid() + ".ring");
        Files.deleteIfExists(ring);
        long timeout = 60_000_000_000L;
        try (RingWriter w = RingWriter.create(ring, 64L << 20, 64)) {
            w.write(ArrowBatchEncoder.codecHeader("{}"), timeout);
            w.write(schema.schemaMessage(), timeout);
            w.publish();
            Process p = new ProcessBuilder(python, "-P", "-c", READER, ring.toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).directory(dir.toFile()).start();
            try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                String ready = out.readLine();
                if (!"ready".equals(ready)) {
                    throw new IllegalStateException("the Python reader did not start: " + ready);
                }
                long t0 = System.nanoTime();
                for (int i = 0; i < rows; i++) {
                    enc.add(pool[i & 63]);
                    if (enc.rows() == batchRows) {
                        w.write(enc.encode(), timeout);
                    }
                }
                if (enc.rows() > 0) {
                    w.write(enc.encode(), timeout);
                }
                w.finish();
                String[] result = out.readLine().trim().split(" ");
                double s = (System.nanoTime() - t0) / 1e9;
                if (Long.parseLong(result[0]) != rows) {
                    throw new IllegalStateException("the reader got " + result[0] + " rows, expected " + rows);
                }
                System.out.printf("encoder -> ring -> pyarrow: %,9.0f rows/s  %8.1f MB/s payload  (%.2f s; ring full waits %d)%n",
                        rows / s, rows * (double) ROW_BYTES / s / 1e6, s, w.fullWaits());
            }
            p.waitFor();
        }
    }
}
