package io.flinktf.ipc;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Paths;
import java.util.Arrays;

/**
 * The Java end of the cross-language tests (tests/test_jvm_ring.py compiles and runs it against the
 * installed jar). Record i has size {@link #size}(i, maxRecord) and holds i as a little-endian
 * long (truncated below 8 bytes), then the byte (i &amp; 0xff) repeated: the Python side computes
 * the same and compares.
 *
 * <pre>
 * CrossLangWriter PATH CAPACITY ALIGN START_POS COUNT [LINGER_MS [fail]]
 * </pre>
 * COUNT &lt; 0 writes until the reader fails it. LINGER_MS: pause before finishing (the reader is
 * then asleep and must be woken by the finish). Exit 0 after finish and close; on a ring error
 * prints "ERROR &lt;exception class&gt;: &lt;message&gt;" on stderr and exits 3. {@code fail}: after
 * the linger, throws out of the try-with-resources instead of finishing (a crashed producer: the
 * close aborts the stream; the JVM exits 1).
 */
final class CrossLangWriter {
    private CrossLangWriter() {}

    static final int[] SPECIAL = {0, 1, 7, 8, 9, 15, 16, 17, 55, 56, 57, 63, 64, 65, 127, 128, 129};

    static int size(long i, int maxRecord) {
        if (i < SPECIAL.length) {
            return Math.min(SPECIAL[(int) i], maxRecord);
        }
        if (i % 97 == 0) {
            return maxRecord;
        }
        if (i % 89 == 0) {
            return maxRecord - 1;
        }
        return (int) (((i * 2654435761L) & 0xffffffffL) % (maxRecord + 1));
    }

    public static void main(String[] args) throws Exception {
        String path = args[0];
        long capacity = Long.parseLong(args[1]);
        int align = Integer.parseInt(args[2]);
        long start = Long.parseLong(args[3]);
        long count = Long.parseLong(args[4]);
        long lingerMs = args.length > 5 ? Long.parseLong(args[5]) : 0;
        boolean fail = args.length > 6 && args[6].equals("fail");
        try (RingWriter w = RingWriter.create(Paths.get(path), capacity, align, start)) {
            System.out.println("created");
            System.out.flush();
            byte[] buf = new byte[w.maxRecord()];
            ByteBuffer seq = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            for (long i = 0; count < 0 || i < count; i++) {
                int n = size(i, w.maxRecord());
                seq.putLong(0, i);
                System.arraycopy(seq.array(), 0, buf, 0, Math.min(8, n));
                if (n > 8) {
                    Arrays.fill(buf, 8, n, (byte) i);
                }
                w.write(buf, 0, n, 60_000_000_000L);
            }
            w.publish();
            if (lingerMs > 0) {
                Thread.sleep(lingerMs);
            }
            if (fail) {
                throw new IllegalStateException("producer failed after " + count + " records (test)");
            }
            w.finish(); // complete; the try's close() without it aborts the stream
        } catch (RingException e) {
            System.err.println("ERROR " + e.getClass().getSimpleName() + ": " + e.getMessage());
            System.exit(3);
        }
    }
}
