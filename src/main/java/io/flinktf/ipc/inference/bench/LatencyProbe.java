package io.flinktf.ipc.inference.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.types.Row;

/**
 * End-to-end latency probes for bench/bench_inference.py: {@link Stamp} writes {@code
 * System.nanoTime()} into a BIGINT field of each row as it enters (right after the source,
 * chained), {@link Record} notes each row's (stamp, now) as it leaves, and writes the pairs to
 * {@code <prefix>-<subtask>.lat} (little-endian int64 pairs) when the job ends. Both ends run in
 * one JVM (the embedded mini-cluster), so the two nanoTime values share a clock; files, not
 * statics, carry the result because the job's classes live in their own class loader.
 */
public final class LatencyProbe {
    private LatencyProbe() {}

    /**
     * Passes rows on at a steady {@code rate} per second: row i leaves at start + i / rate (parked
     * until then; at once when it is late, so a path that cannot keep up builds a queue that the
     * latency shows). Flink's datagen paces in bursts of a second's rows, which measures a burst.
     */
    public static final class Throttle implements MapFunction<Row, Row> {
        private static final long serialVersionUID = 1L;
        private final double rate;
        private transient long start;
        private transient long count;

        public Throttle(double rate) {
            this.rate = rate;
        }

        @Override
        public Row map(Row row) {
            long now = System.nanoTime();
            if (count == 0) {
                start = now;
            }
            long due = start + (long) (count++ * 1e9 / rate);
            for (long left = due - now; left > 0; left = due - System.nanoTime()) {
                if (left > 60_000) {
                    java.util.concurrent.locks.LockSupport.parkNanos(left - 50_000);
                } else {
                    Thread.onSpinWait();
                }
            }
            return row;
        }
    }

    /** Sets field {@code index} of each row to the current {@code System.nanoTime()}. */
    public static final class Stamp implements MapFunction<Row, Row> {
        private static final long serialVersionUID = 1L;
        private final int index;

        public Stamp(int index) {
            this.index = index;
        }

        @Override
        public Row map(Row row) {
            row.setField(index, System.nanoTime());
            return row;
        }
    }

    /** A sink that keeps (stamp of field {@code index}, arrival) per row and writes them at the end. */
    public static final class Record implements Sink<Row> {
        private static final long serialVersionUID = 1L;
        private final int index;
        private final String prefix;

        public Record(int index, String prefix) {
            this.index = index;
            this.prefix = prefix;
        }

        @Override
        public SinkWriter<Row> createWriter(WriterInitContext context) {
            Path out = Paths.get(prefix + "-" + context.getTaskInfo().getIndexOfThisSubtask() + ".lat");
            return new SinkWriter<Row>() {
                private long[] pairs = new long[1 << 16];
                private int n;

                @Override
                public void write(Row row, Context c) {
                    long now = System.nanoTime();
                    if (n + 2 > pairs.length) {
                        pairs = Arrays.copyOf(pairs, pairs.length * 2);
                    }
                    Object v = row.getField(index);
                    pairs[n++] = v instanceof Long ? (Long) v : -1;
                    pairs[n++] = now;
                }

                @Override
                public void flush(boolean endOfInput) throws IOException {
                    if (!endOfInput) {
                        return;
                    }
                    ByteBuffer b = ByteBuffer.allocate(8 * n).order(ByteOrder.LITTLE_ENDIAN);
                    b.asLongBuffer().put(pairs, 0, n);
                    try (FileChannel ch = FileChannel.open(out, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                            StandardOpenOption.TRUNCATE_EXISTING)) {
                        while (b.hasRemaining()) {
                            ch.write(b);
                        }
                    }
                }

                @Override
                public void close() {}
            };
        }
    }
}
