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
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;

/**
 * Rows → Arrow batches → ring, the two ways: {@code encode()} into a message array then a copy
 * into the ring (the baseline), and {@link ArrowBatchEncoder#IN_PLACE} straight into the ring
 * frame. MNIST-shaped rows; a Python process reads the ring raw ({@code RingReader}, releases
 * every batch at once) so the writer is what is measured. Runs alternate; medians with min-max.
 *
 * <pre>
 * java -cp flinktf-ipc.jar:flink-dist.jar io.flinktf.ipc.arrow.bench.ArrowInPlaceBench [ROWS [RUNS [PYTHON]]]
 * </pre>
 */
public final class ArrowInPlaceBench {
    private ArrowInPlaceBench() {}

    private static final String READER = String.join("\n",
            "import sys",
            "from flinktf_ipc import RingReader",
            "r = RingReader.open(sys.argv[1], timeout=60)",
            "print('ready', flush=True)",
            "n = 0",
            "for b in r.iter_batches(64, timeout=60):",
            "    n += len(b)",
            "print(n, flush=True)",
            "r.close()");

    public static void main(String[] args) throws Exception {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 100_000;
        int runs = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        String python = args.length > 2 ? args[2] : "python3";
        int batchRows = 1024;
        RowTypeInfo type = new RowTypeInfo(new TypeInformation<?>[] {
            PrimitiveArrayTypeInfo.FLOAT_PRIMITIVE_ARRAY_TYPE_INFO, Types.LONG}, new String[] {"x", "y"});
        ArrowSchema schema = ArrowSchema.of(type, Map.of("x", new int[] {28, 28}));
        Row[] pool = new Row[64];
        SplittableRandom rnd = new SplittableRandom(1);
        for (int i = 0; i < pool.length; i++) {
            float[] x = new float[ArrowBench.PIXELS];
            for (int k = 0; k < x.length; k++) {
                x[k] = (float) rnd.nextDouble();
            }
            pool[i] = Row.of(x, (long) (i % 10));
        }
        System.out.printf("machine: %d cpus, java %s; %d rows x %d bytes payload, batches of %d rows, %d runs each%n",
                Runtime.getRuntime().availableProcessors(), System.getProperty("java.version"), rows,
                ArrowBench.ROW_BYTES, batchRows, runs);
        List<Double> copy = new ArrayList<>();
        List<Double> inPlace = new ArrayList<>();
        run(schema, pool, rows, batchRows, python, false); // warm-up of both paths
        run(schema, pool, rows, batchRows, python, true);
        for (int r = 0; r < runs; r++) {
            copy.add(run(schema, pool, rows, batchRows, python, false));
            inPlace.add(run(schema, pool, rows, batchRows, python, true));
        }
        report("encode() + copy (baseline)", copy, rows);
        report("in place (IN_PLACE)", inPlace, rows);
    }

    private static void report(String what, List<Double> rowsPerSec, int rows) {
        List<Double> s = new ArrayList<>(rowsPerSec);
        Collections.sort(s);
        double median = s.get(s.size() / 2);
        System.out.printf("%-28s median %,10.0f rows/s (%7.1f MB/s payload), min %,10.0f, max %,10.0f%n", what, median,
                median * ArrowBench.ROW_BYTES / 1e6, s.get(0), s.get(s.size() - 1));
    }

    /** One run; rows per second from the first write until the reader has released everything. */
    private static double run(ArrowSchema schema, Row[] pool, int rows, int batchRows, String python, boolean inPlace)
            throws Exception {
        Path dir = RingPaths.defaultDirectory();
        Path ring = dir.resolve("arrow-inplace-bench-" + ProcessHandle.current().pid() + ".ring");
        Files.deleteIfExists(ring);
        long timeout = 60_000_000_000L;
        ArrowBatchEncoder enc = new ArrowBatchEncoder(schema);
        try (RingWriter w = RingWriter.create(ring, 64L << 20, 64)) {
            Process p = new ProcessBuilder(python, "-P", "-c", READER, ring.toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).directory(dir.toFile()).start();
            try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                if (!"ready".equals(out.readLine())) {
                    throw new IllegalStateException("the Python reader did not start");
                }
                long t0 = System.nanoTime();
                long batches = 0;
                for (int i = 0; i < rows; i++) {
                    enc.add(pool[i & 63]);
                    if (enc.rows() == batchRows || i == rows - 1) {
                        if (inPlace) {
                            w.write(enc, ArrowBatchEncoder.IN_PLACE, timeout);
                        } else {
                            w.write(enc.encode(), timeout);
                        }
                        w.publish();
                        batches++;
                    }
                }
                w.finish();
                long got = Long.parseLong(out.readLine().trim());
                double s = (System.nanoTime() - t0) / 1e9;
                if (got != batches) {
                    throw new IllegalStateException("the reader got " + got + " records, expected " + batches);
                }
                p.waitFor();
                return rows / s;
            }
        } finally {
            Files.deleteIfExists(ring);
        }
    }
}
