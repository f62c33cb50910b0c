package io.flinktf.ipc;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.flinktf.ipc.internal.Layout;
import io.flinktf.ipc.internal.NativeRing;
import java.util.ArrayList;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The Java offsets are a copy; this is the test that keeps them equal to the C definition. */
class LayoutTest {
    @Test
    void javaOffsetsMatchTheCLibrary() {
        Map<String, int[]> c = NativeRing.layoutFields();
        Map<String, int[]> java = Layout.fields();
        assertEquals(new ArrayList<>(c.keySet()), new ArrayList<>(java.keySet()), "field names and order");
        for (Map.Entry<String, int[]> e : c.entrySet()) {
            assertArrayEquals(e.getValue(), java.get(e.getKey()), "offset/size of " + e.getKey());
        }
    }

    @Test
    void frameSizeAndMaxRecordFollowTheSpec() {
        assertEquals(8, Layout.frameSize(0, 8));
        assertEquals(16, Layout.frameSize(1, 8));
        assertEquals(16, Layout.frameSize(8, 8));
        assertEquals(64, Layout.frameSize(0, 64));
        assertEquals(128, Layout.frameSize(1, 64));
        assertEquals(128, Layout.frameSize(64, 64));
        assertEquals(1024, Layout.maxRecord(4096));
        assertEquals(1L << 30, Layout.maxRecord(1L << 40));
    }
}
