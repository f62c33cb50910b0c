package io.flinktf.ipc.bench;

import io.flinktf.ipc.RingWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Paths;
import java.util.concurrent.locks.LockSupport;

/**
 * Java writer benchmark: creates a ring and writes records into it for a reader in another process
 * (the Python {@code RingReader}, started by the benchmark runner).
 *
 * <pre>
 * java -cp flinktf-ipc.jar io.flinktf.ipc.bench.WriterBench PATH CAPACITY COUNT SIZE [ALIGN] [--latency]
 * </pre>
 *
 * Throughput mode: COUNT records of SIZE bytes (SIZE ≥ 8; bytes 0..7 hold the little-endian
 * sequence number), then waits until the reader has consumed everything and closes. The clock runs
 * from the first write to the reader's last release, so the figure is end to end.
 *
 * <p>Latency mode ({@code --latency}): COUNT records of max(SIZE, 16) bytes, one every ~1 ms so the
 * reader goes to sleep in between; bytes 8..15 hold {@code System.nanoTime()} at publication
 * (CLOCK_MONOTONIC on Linux, the same clock as Python's {@code time.monotonic_ns()}): the reader
 * computes the wake-up latency.
 *
 * <p>Prints one JSON line: {"mode", "records", "size", "seconds", "records_per_s", "gb_per_s",
 * "full_waits", "full_wait_ms"}.
 */
public final class WriterBench {
    private WriterBench() {}

    public static void main(String[] args) throws Exception {
        boolean latency = false;
        java.util.List<String> pos = new java.util.ArrayList<>();
        for (String a : args) {
            if (a.equals("--latency")) {
                latency = true;
            } else {
                pos.add(a);
            }
        }
        if (pos.size() < 4) {
            System.err.println("usage: WriterBench PATH CAPACITY COUNT SIZE [ALIGN] [--latency]");
            System.exit(2);
        }
        String path = pos.get(0);
        long capacity = Long.parseLong(pos.get(1));
        long count = Long.parseLong(pos.get(2));
        int size = Integer.parseInt(pos.get(3));
        int align = pos.size() > 4 ? Integer.parseInt(pos.get(4)) : 64;
        if (size < 8) {
            throw new IllegalArgumentException("SIZE must be >= 8 (the sequence number)");
        }
        if (latency) {
            size = Math.max(size, 16);
        }
        byte[] rec = new byte[size];
        ByteBuffer bb = ByteBuffer.wrap(rec).order(ByteOrder.LITTLE_ENDIAN);
        long timeout = 600_000_000_000L;
        try (RingWriter w = RingWriter.create(Paths.get(path), capacity, align)) {
            long t0 = System.nanoTime();
            if (latency) {
                for (long i = 0; i < count; i++) {
                    LockSupport.parkNanos(1_000_000L);
                    bb.putLong(0, i);
                    bb.putLong(8, System.nanoTime());
                    w.write(rec, timeout);
                    w.publish();
                }
            } else {
                for (long i = 0; i < count; i++) {
                    bb.putLong(0, i);
                    w.write(rec, timeout);
                }
            }
            w.flush(timeout);
            long t1 = System.nanoTime();
            w.finish(); // complete: the reader sees end of stream, not an abort
            double s = (t1 - t0) / 1e9;
            System.out.printf(java.util.Locale.ROOT,
                    "{\"mode\": \"%s\", \"records\": %d, \"size\": %d, \"seconds\": %.6f, "
                            + "\"records_per_s\": %.1f, \"gb_per_s\": %.4f, \"full_waits\": %d, \"full_wait_ms\": %.3f}%n",
                    latency ? "latency" : "throughput", count, size, s, count / s, count * (double) size / s / 1e9,
                    w.fullWaits(), w.fullWaitNanos() / 1e6);
        }
    }
}
