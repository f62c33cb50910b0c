package io.flinktf.ipc;

import io.flinktf.ipc.internal.RingSinkWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.Objects;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;

/**
 * A Flink Sink V2 that writes each parallel subtask's records into its own shared-memory ring,
 * {@code <baseDir>/<name>-<subtask>.ring}, for a TensorFlow worker on the same host to read
 * zero-copy ({@code flinktf_ipc.RingReader}).
 *
 * <ul>
 *   <li>A full ring back-pressures the job: {@code write} waits in bounded, interruptible slices,
 *       up to the write timeout, then fails with an IOException naming the ring.
 *   <li>At a checkpoint ({@code flush(false)}) the writer waits until the reader has consumed every
 *       record written so far, up to the flush timeout: a completed checkpoint means the reader has
 *       the records (at-least-once).
 *   <li>At end of input ({@code flush(true)}) the ring is closed: the reader sees end of stream.
 *   <li>A reader that closed the ring, or whose process died, fails the task with an IOException
 *       naming the ring and the cause.
 * </ul>
 *
 * <pre>{@code
 * stream.sinkTo(RingSink.<byte[]>builder()
 *         .setName("features")
 *         .setEncoder(RecordEncoders.bytes())
 *         .build());
 * }</pre>
 */
public final class RingSink<IN> implements Sink<IN> {
    private static final long serialVersionUID = 1L;

    private final Config<IN> config;

    private RingSink(Config<IN> config) {
        this.config = config;
    }

    public static <IN> Builder<IN> builder() {
        return new Builder<>();
    }

    @Override
    public SinkWriter<IN> createWriter(WriterInitContext context) throws IOException {
        return new RingSinkWriter<>(config, context);
    }

    /** The ring file of {@code subtask}: {@code <baseDir>/<name>-<subtask>.ring}. */
    public Path ringPath(int subtask) {
        return RingPaths.ringPath(config.baseDirectory(), config.name, subtask);
    }

    /** The settings a sink was built with; immutable and serializable. */
    public static final class Config<IN> implements java.io.Serializable {
        private static final long serialVersionUID = 1L;

        /** null: {@link RingPaths#defaultDirectory()}, resolved on the TaskManager. */
        public final String baseDir;
        public final String name;
        public final long capacity;
        public final int align;
        public final RecordEncoder<IN> encoder;
        public final long writeTimeoutNanos;
        public final long flushTimeoutNanos;
        public final long publishIntervalMillis;
        public final int batchRecords;
        public final boolean replaceStale;

        Config(Builder<IN> b) {
            this.baseDir = b.baseDir;
            this.name = b.name;
            this.capacity = b.capacity;
            this.align = b.align;
            this.encoder = b.encoder;
            this.writeTimeoutNanos = b.writeTimeout.toNanos();
            this.flushTimeoutNanos = b.flushTimeout.toNanos();
            this.publishIntervalMillis = b.publishInterval.toMillis();
            this.batchRecords = b.batchRecords;
            this.replaceStale = b.replaceStale;
        }

        public Path baseDirectory() {
            return baseDir == null ? RingPaths.defaultDirectory() : Paths.get(baseDir);
        }
    }

    /** Builds a {@link RingSink}; every setter checks its argument and says what is wrong. */
    public static final class Builder<IN> {
        private String baseDir;
        private String name;
        private long capacity = 64L << 20;
        private int align = 64;
        private RecordEncoder<IN> encoder;
        private Duration writeTimeout = Duration.ofMinutes(10);
        private Duration flushTimeout = Duration.ofMinutes(10);
        private Duration publishInterval = Duration.ofMillis(1);
        private int batchRecords = 64;
        private boolean replaceStale = true;

        private Builder() {}

        /** Directory of the ring files (default {@code /dev/shm/flinktf-<uid>}, created mode 0700). */
        public Builder<IN> setBaseDir(String baseDir) {
            if (baseDir == null || baseDir.isEmpty()) {
                throw new IllegalArgumentException("RingSink: baseDir must be a non-empty path");
            }
            if (!Paths.get(baseDir).isAbsolute()) {
                throw new IllegalArgumentException("RingSink: baseDir must be absolute (TaskManagers "
                        + "may run in another working directory), got '" + baseDir + "'");
            }
            this.baseDir = baseDir;
            return this;
        }

        public Builder<IN> setBaseDir(Path baseDir) {
            return setBaseDir(baseDir == null ? null : baseDir.toString());
        }

        /** Job-level ring name; subtask i writes {@code <baseDir>/<name>-<i>.ring}. Required. */
        public Builder<IN> setName(String name) {
            try {
                RingPaths.checkName(name);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("RingSink: " + e.getMessage(), e);
            }
            this.name = name;
            return this;
        }

        /** Data area bytes per ring: a power of two, 4 KiB .. 1 GiB (default 64 MiB). */
        public Builder<IN> setCapacity(long capacity) {
            try {
                RingWriter.checkGeometry(capacity, 8);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("RingSink: " + e.getMessage(), e);
            }
            this.capacity = capacity;
            return this;
        }

        /** Frame/payload alignment, 8 or 64 (default 64: payloads usable by DLPack). */
        public Builder<IN> setAlign(int align) {
            if (align != 8 && align != 64) {
                throw new IllegalArgumentException("RingSink: align must be 8 or 64, got " + align);
            }
            this.align = align;
            return this;
        }

        /** How an element becomes a record. Required. */
        public Builder<IN> setEncoder(RecordEncoder<IN> encoder) {
            this.encoder = Objects.requireNonNull(encoder, "RingSink: encoder must not be null");
            return this;
        }

        /** One of the built-in encoders by name: "bytes", "long", "utf8" (see {@link RecordEncoders#byName}). */
        public Builder<IN> setEncoderName(String name) {
            try {
                return setEncoder(RecordEncoders.byName(Objects.requireNonNull(name, "encoder name")));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("RingSink: " + e.getMessage(), e);
            }
        }

        /** Longest a write waits for space before failing the task (default 10 min). */
        public Builder<IN> setWriteTimeout(Duration timeout) {
            this.writeTimeout = positive("writeTimeout", timeout);
            return this;
        }

        public Builder<IN> setWriteTimeoutMillis(long millis) {
            return setWriteTimeout(Duration.ofMillis(millis));
        }

        /** Longest a checkpoint waits for the reader to drain the ring (default 10 min). */
        public Builder<IN> setFlushTimeout(Duration timeout) {
            this.flushTimeout = positive("flushTimeout", timeout);
            return this;
        }

        public Builder<IN> setFlushTimeoutMillis(long millis) {
            return setFlushTimeout(Duration.ofMillis(millis));
        }

        /** Longest a written record stays unpublished when no more input arrives (default 1 ms). */
        public Builder<IN> setPublishInterval(Duration interval) {
            this.publishInterval = positive("publishInterval", interval);
            if (interval.toMillis() < 1) {
                throw new IllegalArgumentException("RingSink: publishInterval must be at least 1 ms, got " + interval);
            }
            return this;
        }

        /** Records staged before one release store publishes them (default 64). */
        public Builder<IN> setBatchRecords(int records) {
            if (records < 1) {
                throw new IllegalArgumentException("RingSink: batchRecords must be >= 1, got " + records);
            }
            this.batchRecords = records;
            return this;
        }

        /**
         * Whether a ring file left by a writer that is gone (a failed earlier attempt) is replaced
         * (default true). A file of a live writer is never replaced.
         */
        public Builder<IN> setReplaceStale(boolean replace) {
            this.replaceStale = replace;
            return this;
        }

        private static Duration positive(String what, Duration d) {
            if (d == null || d.isNegative() || d.isZero()) {
                throw new IllegalArgumentException("RingSink: " + what + " must be a positive duration, got " + d);
            }
            return d;
        }

        public RingSink<IN> build() {
            if (name == null) {
                throw new IllegalStateException("RingSink: setName(...) is required (readers find rings by name)");
            }
            if (encoder == null) {
                throw new IllegalStateException("RingSink: setEncoder(...) is required, e.g. RecordEncoders.bytes()");
            }
            return new RingSink<>(new Config<>(this));
        }
    }
}
