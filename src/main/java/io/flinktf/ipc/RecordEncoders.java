package io.flinktf.ipc;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** Built-in encoders. Row encoders (Arrow batches, tf.Example) live with the tensor-batch code. */
public final class RecordEncoders {
    private RecordEncoders() {}

    /** {@code byte[]} as is. */
    public static RecordEncoder<byte[]> bytes() {
        return new BytesEncoder();
    }

    /** A {@code Long} as 8 little-endian bytes (e.g. the output of {@code fromSequence}). */
    public static RecordEncoder<Long> longLE() {
        return sequence(8);
    }

    /**
     * A {@code Long} as a record of {@code size} bytes (≥ 8): the value as 8 little-endian bytes,
     * then zeros. For tests and benchmarks that need sequence-numbered records of a given size.
     */
    public static RecordEncoder<Long> sequence(int size) {
        if (size < 8) {
            throw new IllegalArgumentException("sequence record size must be >= 8, got " + size);
        }
        return new SequenceEncoder(size);
    }

    /** A {@code String} as UTF-8 bytes. */
    public static RecordEncoder<String> utf8() {
        return new Utf8Encoder();
    }

    /**
     * The encoder named {@code name}: "bytes", "long" or "utf8" (for callers such as the Python
     * wrapper that pick one by name).
     */
    @SuppressWarnings("unchecked")
    public static <T> RecordEncoder<T> byName(String name) {
        switch (name) {
            case "bytes":
                return (RecordEncoder<T>) bytes();
            case "long":
                return (RecordEncoder<T>) longLE();
            case "utf8":
                return (RecordEncoder<T>) utf8();
            default:
                throw new IllegalArgumentException(
                        "unknown encoder '" + name + "': expected one of bytes, long, utf8");
        }
    }

    static final class BytesEncoder implements RecordEncoder<byte[]> {
        private static final long serialVersionUID = 1L;

        @Override
        public int encodedSize(byte[] value) {
            return value.length;
        }

        @Override
        public void encode(byte[] value, ByteBuffer target) {
            target.put(value);
        }
    }

    static final class SequenceEncoder implements RecordEncoder<Long> {
        private static final long serialVersionUID = 1L;
        private final int size;

        SequenceEncoder(int size) {
            this.size = size;
        }

        @Override
        public int encodedSize(Long value) {
            return size;
        }

        @Override
        public void encode(Long value, ByteBuffer target) {
            target.putLong(value);
            // The frame may hold an older record's bytes: zero the rest so records are deterministic.
            for (int i = 8; i + 8 <= size; i += 8) {
                target.putLong(0L);
            }
            while (target.hasRemaining()) {
                target.put((byte) 0);
            }
        }
    }

    static final class Utf8Encoder implements RecordEncoder<String> {
        private static final long serialVersionUID = 1L;
        private transient String last;
        private transient byte[] lastBytes;

        private byte[] bytesOf(String value) {
            if (value != last) {
                lastBytes = value.getBytes(StandardCharsets.UTF_8);
                last = value;
            }
            return lastBytes;
        }

        @Override
        public int encodedSize(String value) {
            return bytesOf(value).length;
        }

        @Override
        public void encode(String value, ByteBuffer target) {
            target.put(bytesOf(value));
            last = null;
            lastBytes = null;
        }
    }
}
