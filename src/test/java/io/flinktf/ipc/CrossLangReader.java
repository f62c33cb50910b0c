package io.flinktf.ipc;

import java.nio.ByteBuffer;
import java.nio.file.Paths;

/**
 * The Java reader end of the cross-language tests (tests/test_jvm_ring_reader.py compiles and runs
 * it against the installed jar): reads the records {@link CrossLangWriter} defines (record i: its
 * size, i as a little-endian long, then the byte i &amp; 0xff) from a ring another process writes,
 * checks every byte, and prints "OK &lt;count&gt;" at end of stream.
 *
 * <pre>
 * CrossLangReader PATH [MAX_BATCH]
 * </pre>
 * Prints "opened" once attached. On a ring error prints "ERROR &lt;exception class&gt;: &lt;message&gt;"
 * and exits 3; on a content mismatch prints "MISMATCH ..." and exits 4.
 */
final class CrossLangReader {
    private CrossLangReader() {}

    public static void main(String[] args) throws Exception {
        int maxBatch = args.length > 1 ? Integer.parseInt(args[1]) : 256;
        long i = 0;
        try (RingReader r = RingReader.open(Paths.get(args[0]), 60_000_000_000L)) {
            System.out.println("opened");
            System.out.flush();
            RingReader.Batch b;
            while ((b = r.next(maxBatch, 60_000_000_000L)) != null) {
                for (int k = 0; k < b.count(); k++, i++) {
                    String bad = check(i, b.record(k), r.maxRecord());
                    if (bad != null) {
                        System.out.println("MISMATCH record " + i + ": " + bad);
                        System.exit(4);
                    }
                }
                b.release();
            }
        } catch (RingException e) {
            System.out.println("ERROR " + e.getClass().getSimpleName() + ": " + e.getMessage() + " (after " + i + " records)");
            System.out.flush();
            System.exit(3);
        }
        System.out.println("OK " + i);
    }

    /** Null when record {@code i} is as CrossLangWriter makes it, else what differs. */
    static String check(long i, ByteBuffer rec, int maxRecord) {
        int n = CrossLangWriter.size(i, maxRecord);
        if (rec.remaining() != n) {
            return "length " + rec.remaining() + " != " + n;
        }
        for (int k = 0; k < n; k++) {
            byte want = k < 8 ? (byte) (i >>> (8 * k)) : (byte) i;
            if (rec.get(k) != want) {
                return "byte " + k + " is " + rec.get(k) + ", expected " + want;
            }
        }
        return null;
    }
}
