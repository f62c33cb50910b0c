package io.flinktf.ipc.arrow.bench;

import io.flinktf.ipc.RingPaths;
import io.flinktf.ipc.RingReader;
import io.flinktf.ipc.RingWriter;
import io.flinktf.ipc.arrow.ArrowBatchEncoder;
import io.flinktf.ipc.arrow.ArrowRingBatcher;
import io.flinktf.ipc.arrow.ArrowSchema;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.types.Row;

/**
 * Rows → Arrow batches → ring, three ways: {@code encode()} into a message array then a copy into
 * the ring (the baseline: the old path), {@link ArrowBatchEncoder#IN_PLACE} (column buffers copied
 * once into the ring frame), and {@link ArrowRingBatcher} (each row encoded straight into the
 * reserved frame). MNIST-shaped rows; a Python process reads the ring raw ({@code RingReader},
 * releases every batch at once) so the writer is what is measured, or, with {@code pyarrow},
 * decodes every batch into NumPy views ({@code ArrowRingReader}). Runs alternate; medians with
 * min-max. {@code stages} instead times the writer's steps in this process.
 *
 * <pre>
 * java -cp flinktf-ipc.jar:flink-dist.jar io.flinktf.ipc.arrow.bench.ArrowInPlaceBench [ROWS [RUNS [PYTHON [pyarrow]]]]
 * java -cp flinktf-ipc.jar:flink-dist.jar io.flinktf.ipc.arrow.bench.ArrowInPlaceBench stages [ROWS [RUNS]]
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
            "    del b",  // released before close, not by a finalizer at exit
            "print(n, flush=True)",
            "r.close()");

    /** {@code pyarrow} as the 4th argument: the reader decodes every batch into NumPy views, as ArrowBench's. */
    private static final String DECODER = String.join("\n",
            "import sys",
            "from flinktf_ipc.arrow import ArrowRingReader, column_to_numpy",
            "r = ArrowRingReader(sys.argv[1], timeout=60)",
            // pyarrow imports pandas at its first to_numpy (~0.24 s, once per process): before the clock
            "import pyarrow as pa; pa.array([0]).to_numpy(zero_copy_only=True)",
            "print('ready', flush=True)",
            "n = 0; s = 0.0",
            "while (rb := r.read_batch(timeout=60)) is not None:",
            "    x = column_to_numpy(rb.column(0), 'x'); y = column_to_numpy(rb.column(1), 'y')",
            "    assert x.shape == (len(y), 28, 28)",
            "    n += 1; s += float(y.sum()) + float(x[:, 0, 0].sum())",
            "    del rb, x, y",
            "print(n, flush=True)",
            "r.close()");

    private static final String[] MODES = {"encode() + copy (baseline)", "in place (IN_PLACE)", "direct (ArrowRingBatcher)"};

    public static void main(String[] args) throws Exception {
        boolean stages = args.length > 0 && args[0].equals("stages");
        int a = stages ? 1 : 0;
        int rows = args.length > a ? Integer.parseInt(args[a]) : 100_000;
        int runs = args.length > a + 1 ? Integer.parseInt(args[a + 1]) : 5;
        String python = args.length > a + 2 ? args[a + 2] : "python3";
        boolean decode = args.length > a + 3 && args[a + 3].equals("pyarrow");
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
        if (stages) {
            stages(schema, pool, rows, batchRows, runs);
            return;
        }
        List<List<Double>> results = new ArrayList<>();
        for (int m = 0; m < MODES.length; m++) {
            run(schema, pool, rows, batchRows, python, m, decode); // warm-up of every path
            results.add(new ArrayList<>());
        }
        for (int r = 0; r < runs; r++) {
            for (int m = 0; m < MODES.length; m++) {
                results.get(m).add(run(schema, pool, rows, batchRows, python, m, decode));
            }
        }
        double base = median(results.get(0));
        for (int m = 0; m < MODES.length; m++) {
            report(MODES[m], results.get(m), base);
        }
    }

    /**
     * The writer's steps, each timed alone in this process , as rows/s: rows into column buffers; that plus {@code encode()};
     * rows through {@code IN_PLACE} into a direct buffer; rows through {@link ArrowRingBatcher} into
     * a ring that a Java {@link RingReader} thread empties.
     */
    private static void stages(ArrowSchema schema, Row[] pool, int rows, int batchRows, int runs) throws Exception {
        String[] names = {"rows -> column buffers", "  + encode() (byte[])", "  + IN_PLACE into memory",
            "rows -> ring, direct"};
        List<List<Double>> res = new ArrayList<>();
        for (int k = 0; k < names.length; k++) {
            res.add(new ArrayList<>());
        }
        ByteBuffer mem = ByteBuffer.allocateDirect(8 << 20);
        Path ring = RingPaths.defaultDirectory().resolve("arrow-stages-" + ProcessHandle.current().pid() + ".ring");
        Files.deleteIfExists(ring);
        try (RingWriter w = RingWriter.create(ring, 64L << 20, 64)) {
            ArrowRingBatcher direct = new ArrowRingBatcher(schema, w, batchRows, 60_000_000_000L);
            Thread reader = new Thread(() -> {
                try (RingReader rr = RingReader.open(ring, 60_000_000_000L)) {
                    RingReader.Batch b;
                    while ((b = rr.next(64, 60_000_000_000L)) != null) {
                        b.release();
                    }
                } catch (Exception e) {
                    e.printStackTrace();
                }
            }, "ring-reader");
            reader.setDaemon(true);
            reader.start();
            for (int r = -1; r < runs; r++) { // round -1 warms up
                for (int k = 0; k < names.length; k++) {
                    ArrowBatchEncoder enc = new ArrowBatchEncoder(schema);
                    long t0 = System.nanoTime();
                    for (int i = 0; i < rows; i++) {
                        if (k == 3) {
                            direct.add(pool[i & 63]);
                        } else {
                            enc.add(pool[i & 63]);
                        }
                        if ((i + 1) % batchRows == 0 || i == rows - 1) {
                            if (k == 0) {
                                enc.clear();
                            } else if (k == 1) {
                                enc.encode();
                            } else if (k == 2) {
                                mem.clear();
                                ArrowBatchEncoder.IN_PLACE.encodedSize(enc);
                                ArrowBatchEncoder.IN_PLACE.encode(enc, mem);
                            } else {
                                direct.flush();
                                w.publish();
                            }
                        }
                    }
                    double s = (System.nanoTime() - t0) / 1e9;
                    if (r >= 0) {
                        res.get(k).add(rows / s);
                    }
                }
            }
            w.finish(); // the reader thread ends at end of stream, not at an abort
        } finally {
            Files.deleteIfExists(ring);
        }
        for (int k = 0; k < names.length; k++) {
            report(names[k], res.get(k), median(res.get(0)));
        }
    }

    private static double median(List<Double> v) {
        List<Double> s = new ArrayList<>(v);
        Collections.sort(s);
        return s.get(s.size() / 2);
    }

    private static void report(String what, List<Double> rowsPerSec, double base) {
        List<Double> s = new ArrayList<>(rowsPerSec);
        Collections.sort(s);
        double median = s.get(s.size() / 2);
        System.out.printf("%-28s median %,10.0f rows/s (%7.1f MB/s payload), min %,10.0f, max %,10.0f  (%.2fx)%n",
                what, median, median * ArrowBench.ROW_BYTES / 1e6, s.get(0), s.get(s.size() - 1), median / base);
    }

    /** One run; rows per second from the first write until the reader has released everything. */
    private static double run(ArrowSchema schema, Row[] pool, int rows, int batchRows, String python, int mode, boolean decode)
            throws Exception {
        Path dir = RingPaths.defaultDirectory();
        Path ring = dir.resolve("arrow-inplace-bench-" + ProcessHandle.current().pid() + ".ring");
        Files.deleteIfExists(ring);
        long timeout = 60_000_000_000L;
        ArrowBatchEncoder enc = new ArrowBatchEncoder(schema);
        try (RingWriter w = RingWriter.create(ring, 64L << 20, 64)) {
            ArrowRingBatcher direct = new ArrowRingBatcher(schema, w, batchRows, timeout);
            if (decode) { // the decoder reads the stream from its start: header and schema first
                w.write(ArrowBatchEncoder.codecHeader("{}"), timeout);
                w.write(schema.schemaMessage(), timeout);
                w.publish();
            }
            Process p = new ProcessBuilder(python, "-P", "-c", decode ? DECODER : READER, ring.toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).directory(dir.toFile()).start();
            try (BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                if (!"ready".equals(out.readLine())) {
                    throw new IllegalStateException("the Python reader did not start");
                }
                long t0 = System.nanoTime();
                long batches = 0;
                for (int i = 0; i < rows; i++) {
                    if (mode == 2) {
                        direct.add(pool[i & 63]);
                    } else {
                        enc.add(pool[i & 63]);
                    }
                    if ((i + 1) % batchRows == 0 || i == rows - 1) {
                        if (mode == 0) {
                            w.write(enc.encode(), timeout);
                        } else if (mode == 1) {
                            w.write(enc, ArrowBatchEncoder.IN_PLACE, timeout);
                        } else {
                            direct.flush();
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
                if (!p.waitFor(60, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                }
                return rows / s;
            }
        } finally {
            Files.deleteIfExists(ring);
        }
    }
}
