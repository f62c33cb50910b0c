package io.flinktf.ipc;

import static org.junit.jupiter.api.Assertions.*;

import io.flinktf.ipc.internal.Layout;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A record reserved at its largest size and filled in place ({@link RingWriter#reserveRecord}),
 * then committed shorter: the reader sees exactly the committed bytes, before and across the wrap,
 * and the next record follows the shrunk frame.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RingReserveTest {
    private static final long SECOND = 1_000_000_000L;

    @TempDir
    Path tmp;

    private Path ring(String name) throws Exception {
        Path d = tmp.resolve("rings");
        RingPaths.ensureDirectory(d);
        return d.resolve(name);
    }

    private static byte[] bytes(int n, int seed) {
        byte[] b = new byte[n];
        for (int i = 0; i < n; i++) {
            b[i] = (byte) (seed + i * 31);
        }
        return b;
    }

    private static byte[] next(RingReader r) throws Exception {
        RingReader.Batch b = r.next(1, SECOND);
        assertNotNull(b);
        byte[] out = b.copy(0);
        b.release();
        return out;
    }

    @Test
    void aShorterCommitShrinksTheFrameBeforeAndAcrossTheWrap() throws Exception {
        long capacity = 8192; // max_record 2048
        // 3 frames of 1024 from here: the reservation of 1500 bytes no longer fits before the end
        long start = 4 * capacity - 3 * 1024;
        Path p = ring("r.ring");
        try (RingWriter w = RingWriter.create(p, capacity, 64, start); RingReader r = RingReader.open(p, SECOND)) {
            int pads = 0;
            for (int round = 0; round < 12; round++) {
                long before = w.writePosition();
                int len = 100 + 97 * round;
                w.reserveRecord(1500, SECOND);
                assertTrue(w.hasReservedRecord());
                ByteBuffer space = w.reservedBuffer();
                assertEquals(1500, space.capacity());
                space.put(bytes(len, round));
                w.commitRecord(len);
                assertFalse(w.hasReservedRecord());
                w.publish();
                long after = w.writePosition();
                long idx = before & (capacity - 1);
                long pad = capacity - idx < Layout.frameSize(1500, 64) ? capacity - idx : 0;
                pads += pad > 0 ? 1 : 0;
                assertEquals(before + pad + Layout.frameSize(len, 64), after, "round " + round + ": the shrunk frame");
                assertArrayEquals(bytes(len, round), next(r), "round " + round);
                byte[] small = bytes(10, 100 + round); // the next record right after the shrunk frame
                w.write(small, SECOND);
                w.publish();
                assertArrayEquals(small, next(r));
            }
            assertTrue(pads > 0, "a reservation went behind a PAD frame to the start of the data area");
        }
    }

    @Test
    void nothingElseIsWrittenWhileAReservationIsOpenAndACancelPublishesNothing() throws Exception {
        Path p = ring("c.ring");
        try (RingWriter w = RingWriter.create(p, 1 << 16, 64); RingReader r = RingReader.open(p, SECOND)) {
            assertThrows(IllegalStateException.class, () -> w.commitRecord(0), "no reservation");
            assertThrows(IllegalStateException.class, w::reservedBuffer);
            assertThrows(RecordTooLargeException.class, () -> w.reserveRecord(w.maxRecord() + 1, SECOND));
            w.reserveRecord(1000, SECOND);
            assertThrows(IllegalStateException.class, () -> w.write(new byte[4], SECOND));
            assertThrows(IllegalStateException.class, () -> w.reserveRecord(10, SECOND));
            assertThrows(IllegalArgumentException.class, () -> w.commitRecord(1001));
            w.publish(); // covers the records before the open one only: none
            assertThrows(RingTimeoutException.class, () -> r.next(1, 0));
            w.reservedBuffer().put(bytes(1000, 7));
            w.cancelRecord();
            w.write(bytes(5, 1), SECOND);
            w.reserveRecord(64, SECOND);
            w.finish(); // drops the open record: never published
            assertArrayEquals(bytes(5, 1), next(r));
            assertNull(r.next(1, SECOND), "end of stream, without the dropped record");
            assertFalse(w.hasReservedRecord());
        }
    }
}
