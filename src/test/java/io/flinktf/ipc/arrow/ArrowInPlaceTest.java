package io.flinktf.ipc.arrow;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** The in-place path writes the very bytes of {@link ArrowBatchEncoder#encode()}, padding zeroed. */
class ArrowInPlaceTest {
    @Test
    void inPlaceWritesTheSameMessageAsEncodeOverOldBytes() {
        ArrowSchema schema = ArrowSchema.of(ArrowRows.TYPE, ArrowRows.SHAPES);
        ArrowBatchEncoder a = new ArrowBatchEncoder(schema);
        ArrowBatchEncoder b = new ArrowBatchEncoder(schema);
        for (int round = 0; round < 3; round++) {
            for (long i = 0; i < 37 + round * 50; i++) {
                a.add(ArrowRows.row(i));
                b.add(ArrowRows.row(i));
            }
            byte[] expected = a.encode();
            int size = ArrowBatchEncoder.IN_PLACE.encodedSize(b);
            assertEquals(size, ArrowBatchEncoder.IN_PLACE.encodedSize(b), "asking again (after a timed-out wait) lays out nothing new");
            assertThrows(IllegalStateException.class, () -> b.add(ArrowRows.row(0)), "no row joins a batch laid out for a write");
            assertEquals(expected.length, size);
            byte[] frame = new byte[size + 64];
            Arrays.fill(frame, (byte) 0x5a); // a ring frame holds old bytes
            ByteBuffer target = ByteBuffer.wrap(frame);
            target.position(32).limit(32 + size);
            ArrowBatchEncoder.IN_PLACE.encode(b, target);
            assertEquals(32 + size, target.position(), "exactly the declared size");
            assertArrayEquals(expected, Arrays.copyOfRange(frame, 32, 32 + size));
            assertEquals(0, b.rows(), "the batch starts anew");
        }
    }
}
