package io.flinktf.ipc.inference;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** An in-flight batch survives the trip through the checkpointed state exactly; damage is refused. */
class InferenceStateTest {
    @Test
    void aBatchWithTimestampsComesBackExactly() throws IOException {
        byte[] message = {1, 2, 3, 4, 5, 6, 7, 8, 9};
        long[] ts = {Long.MIN_VALUE, 0, 42, Long.MAX_VALUE};
        InferenceOperator.Batch b = InferenceOperator.fromState(
                InferenceOperator.toState(new InferenceOperator.Batch(message, 4, ts)), "t");
        assertEquals(4, b.rows);
        assertArrayEquals(message, b.message);
        assertArrayEquals(ts, b.timestamps);
    }

    @Test
    void aBatchWithoutTimestampsStaysWithout() throws IOException {
        InferenceOperator.Batch b = InferenceOperator.fromState(
                InferenceOperator.toState(new InferenceOperator.Batch(new byte[] {7}, 3, null)), "t");
        assertEquals(3, b.rows);
        assertNull(b.timestamps);
        assertArrayEquals(new byte[] {7}, b.message);
    }

    @Test
    void aDamagedEntryIsAClearError() {
        byte[] good = InferenceOperator.toState(new InferenceOperator.Batch(new byte[] {7}, 2, new long[] {1, 2}));
        byte[] badMagic = good.clone();
        badMagic[0] ^= 1;
        IOException e = assertThrows(IOException.class, () -> InferenceOperator.fromState(badMagic, "subtask 0"));
        assertTrue(e.getMessage().contains("subtask 0: the in-flight state"), e.getMessage());
        byte[] cut = Arrays.copyOf(good, 20); // the timestamps do not fit
        e = assertThrows(IOException.class, () -> InferenceOperator.fromState(cut, "subtask 0"));
        assertTrue(e.getMessage().contains("damaged"), e.getMessage());
    }
}
