package io.flinktf.ipc;

import io.flinktf.ipc.internal.HeartbeatFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Collections;

/**
 * The JVM writer side on its own, for tests/test_failover.py: creates a ring, writes its writer
 * heartbeat every interval, writes {@code records} 8-byte ids, then either holds ("hold": prints
 * "ready" and waits to be killed or stopped) or aborts the stream ("abort").
 *
 * <p>Usage: {@code WriterSideMain RING INTERVAL_MS hold|abort RECORDS}
 */
public final class WriterSideMain {
    private WriterSideMain() {}

    public static void main(String[] args) throws Exception {
        Path ring = Paths.get(args[0]);
        long intervalMs = Long.parseLong(args[1]);
        String mode = args[2];
        int records = Integer.parseInt(args[3]);
        RingWriter w = RingWriter.create(ring, 1 << 16, 8);
        HeartbeatFile hb = new HeartbeatFile(RingPaths.heartbeatPath(ring, "writer"), "writer");
        hb.write("running", "", Collections.singletonMap("records", 0L));
        Thread beats = new Thread(() -> {
            try {
                while (true) {
                    Thread.sleep(intervalMs);
                    hb.write("running", "", Collections.singletonMap("records", w.recordsWritten()));
                }
            } catch (Exception e) {
                // interrupted at exit
            }
        }, "heartbeat");
        beats.setDaemon(true);
        beats.start();
        byte[] rec = new byte[8];
        ByteBuffer b = ByteBuffer.wrap(rec).order(ByteOrder.LITTLE_ENDIAN);
        for (long i = 0; i < records; i++) {
            b.putLong(0, i);
            w.write(rec, 30_000_000_000L);
        }
        w.publish();
        if (mode.equals("abort")) {
            w.abort();
            beats.interrupt();
            beats.join();
            hb.write("failed", "aborted by the test", Collections.singletonMap("records", w.recordsWritten()));
            w.detach();
            System.out.println("aborted");
            return;
        }
        hb.write("running", "", Collections.singletonMap("records", w.recordsWritten()));
        System.out.println("ready");
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
