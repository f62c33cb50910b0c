package io.flinktf.ipc;

import static io.flinktf.ipc.internal.Layout.*;
import static org.junit.jupiter.api.Assertions.*;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The Java RingReader against the Java writer (the C writer's side is tests/test_jvm_ring_reader.py,
 * through CrossLangReader): every record exact across wraps, end of stream and abort, waits and
 * wake-ups, every corruption the C reader rejects, a killed writer process, release order, close.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RingReaderTest {
    private static final long SECOND = 1_000_000_000L;

    @TempDir
    Path tmp;

    private Path ring(String name) throws Exception {
        Path d = tmp.resolve("rings");
        RingPaths.ensureDirectory(d);
        return d.resolve(name);
    }

    private static ByteBuffer le(RingWriter w) {
        return w.mapping().duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    @ParameterizedTest
    @CsvSource({"65536, 8, 0", "65536, 64, 0", "4096, 8, 20352", "4096, 64, 20352", "4096, 8, 4294967104",
            "4096, 64, 4294967104"})
    void javaWriterToJavaReaderEveryRecordExactAcrossTheWrap(long capacity, int align, long start) throws Exception {
        Path p = ring("x.ring");
        long count = 5000;
        RingWriter w = RingWriter.create(p, capacity, align, start);
        CompletableFuture<Void> writer = CompletableFuture.runAsync(() -> {
            try (w) {
                byte[] buf = new byte[w.maxRecord()];
                ByteBuffer seq = ByteBuffer.wrap(buf).order(ByteOrder.LITTLE_ENDIAN);
                for (long i = 0; i < count; i++) {
                    int n = CrossLangWriter.size(i, w.maxRecord());
                    seq.putLong(0, i);
                    Arrays.fill(buf, 8, Math.max(8, n), (byte) i);
                    w.write(buf, 0, n, 60 * SECOND);
                }
                w.finish(); // complete: the reader ends at end of stream
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        long i = 0;
        try (RingReader r = RingReader.open(p, 30 * SECOND)) {
            assertEquals(capacity, r.capacity());
            assertEquals(align, r.align());
            RingReader.Batch b;
            while ((b = r.next(64, 30 * SECOND)) != null) {
                assertTrue(b.count() >= 1);
                for (int k = 0; k < b.count(); k++, i++) {
                    assertNull(CrossLangReader.check(i, b.record(k), r.maxRecord()), "record " + i);
                    assertEquals(0, (b.offset(k) - HEADER_SIZE) % align, "payloads are aligned");
                }
                b.release();
            }
            assertTrue(r.isEndOfStream());
            assertNull(r.next(1, 0), "end of stream stays");
        }
        writer.get(30, TimeUnit.SECONDS);
        assertEquals(count, i);
        assertFalse(Files.exists(p), "the second side to detach removes the file");
    }

    @Test
    void abortedStreamIsDrainedThenPeerLost() throws Exception {
        Path p = ring("a.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8); RingReader r = RingReader.open(p, SECOND)) {
            w.write(new byte[] {7}, 0);
            w.abort();
            RingReader.Batch b = r.next(16, SECOND);
            assertEquals(1, b.count());
            assertEquals(7, b.record(0).get(0));
            PeerLostException e = assertThrows(PeerLostException.class, () -> r.next(16, SECOND));
            assertTrue(e.getMessage().contains("aborted"), e.getMessage());
            // a caller that asks again is told again: an aborted stream never reads as complete
            PeerLostException again = assertThrows(PeerLostException.class, () -> r.next(16, 0));
            assertTrue(again.getMessage().contains("aborted"), again.getMessage());
            assertFalse(r.isEndOfStream());
        }
    }

    @Test
    void waitsTimeOutAndAPollNeverWaits() throws Exception {
        Path p = ring("t.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8); RingReader r = RingReader.open(p, SECOND)) {
            assertThrows(RingTimeoutException.class, () -> r.next(1, 0));
            RingTimeoutException e = assertThrows(RingTimeoutException.class, () -> r.next(1, 150_000_000L));
            assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
            w.write(new byte[3], 0);
            w.publish();
            assertEquals(1, r.next(1, 0).count());
        }
    }

    @Test
    void aSleepingReaderIsWokenByAPublication() throws Exception {
        Path p = ring("s.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8); RingReader r = RingReader.open(p, SECOND)) {
            CompletableFuture<Integer> got = CompletableFuture.supplyAsync(() -> {
                try {
                    return r.next(8, 30 * SECOND).count();
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            // Wait until the reader announced its sleep, then publish: the doorbell must wake it.
            while (le(w).getInt(READER_SLEEPING_OFF) == 0) {
                Thread.sleep(1);
            }
            w.write(new byte[5], 0);
            w.publish();
            assertEquals(1, got.get(30, TimeUnit.SECONDS));
        }
    }

    @Test
    void openWaitsForTheFileAndTimesOut() throws Exception {
        Path p = ring("late.ring");
        RingTimeoutException e = assertThrows(RingTimeoutException.class, () -> RingReader.open(p, 50_000_000L));
        assertTrue(e.getMessage().contains("no such file"), e.getMessage());
        CompletableFuture<RingReader> opened = CompletableFuture.supplyAsync(() -> {
            try {
                return RingReader.open(p, 30 * SECOND);
            } catch (Exception ex) {
                throw new RuntimeException(ex);
            }
        });
        Thread.sleep(100);
        try (RingWriter w = RingWriter.create(p, 4096, 8); RingReader r = opened.get(30, TimeUnit.SECONDS)) {
            assertEquals(4096, r.capacity());
        }
    }

    @Test
    void theSlotOfADeadReaderThatNeverClosedIsTakenOver() throws Exception {
        Path p = ring("dead.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8)) {
            ByteBuffer h = le(w);
            h.putInt(READER_PID_OFF, Integer.MAX_VALUE - 7); // no such process
            h.putLong(READER_START_OFF, 12345);
            try (RingReader r = RingReader.open(p, SECOND)) {
                assertEquals(ProcessHandleHolder.PID, h.getInt(READER_PID_OFF) & 0xffffffffL);
            }
        }
        Path q = ring("deadclosed.ring");
        try (RingWriter w = RingWriter.create(q, 4096, 8)) {
            ByteBuffer h = le(w);
            h.putInt(READER_PID_OFF, Integer.MAX_VALUE - 7);
            h.putInt(READER_CLOSED_OFF, 1);
            RingException e = assertThrows(RingException.class, () -> RingReader.open(q, SECOND));
            assertTrue(e.getMessage().contains("closed it"), e.getMessage());
        }
    }

    private static final class ProcessHandleHolder {
        static final long PID = ProcessHandle.current().pid();
    }

    @Test
    void aSecondReaderIsRefused() throws Exception {
        Path p = ring("two.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8); RingReader r = RingReader.open(p, SECOND)) {
            RingException e = assertThrows(RingException.class, () -> RingReader.open(p, SECOND));
            assertTrue(e.getMessage().contains("already has a reader"), e.getMessage());
        }
    }

    @Test
    void spaceGoesBackInOrderWhenBatchesAreReleasedOutOfOrder() throws Exception {
        Path p = ring("o.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8); RingReader r = RingReader.open(p, SECOND)) {
            w.write(new byte[8], 0);
            w.publish();
            RingReader.Batch first = r.next(1, SECOND);
            w.write(new byte[8], 0);
            w.publish();
            RingReader.Batch second = r.next(1, SECOND);
            second.release();
            assertEquals(0, r.releasedPosition(), "the older batch is still held");
            assertEquals(0, w.readPosition());
            assertThrows(IllegalStateException.class, () -> second.record(0), "a released batch has no views");
            first.release();
            assertEquals(32, r.releasedPosition());
            assertEquals(32, w.readPosition());
            first.release(); // idempotent
        }
    }

    @Test
    void aClosedReaderFailsTheWritersNextWrite() throws Exception {
        Path p = ring("c.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8)) {
            RingReader r = RingReader.open(p, SECOND);
            r.close();
            r.close(); // idempotent
            assertThrows(RingClosedException.class, () -> {
                for (int i = 0; i < 1000; i++) {
                    w.write(new byte[8], 0);
                    w.publish();
                }
            });
            w.detach();
            assertFalse(Files.exists(p), "the writer detached second and removed the file");
        }
    }

    @Test
    void anInterruptedWaitThrowsInterruptedException() throws Exception {
        Path p = ring("i.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8); RingReader r = RingReader.open(p, SECOND)) {
            AtomicReference<Throwable> thrown = new AtomicReference<>();
            Thread t = new Thread(() -> {
                try {
                    r.next(1, -1);
                } catch (Throwable e) {
                    thrown.set(e);
                }
            });
            t.start();
            Thread.sleep(100);
            t.interrupt();
            t.join(30_000);
            assertInstanceOf(InterruptedException.class, thrown.get());
        }
    }

    @Test
    void aKilledWriterProcessIsPeerLostNotAHang() throws Exception {
        Path p = ring("k.ring");
        String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
        Process proc = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                "io.flinktf.ipc.WriterSideMain", p.toString(), "100", "hold", "10")
                .redirectErrorStream(true).start();
        try (BufferedReader out = new BufferedReader(new InputStreamReader(proc.getInputStream(), StandardCharsets.UTF_8))) {
            assertEquals("ready", out.readLine());
            try (RingReader r = RingReader.open(p, 10 * SECOND)) {
                int n = 0;
                while (n < 10) {
                    RingReader.Batch b = r.next(64, 10 * SECOND);
                    n += b.count();
                    b.release();
                }
                proc.destroyForcibly();
                proc.waitFor(30, TimeUnit.SECONDS);
                PeerLostException e = assertThrows(PeerLostException.class, () -> r.next(1, 60 * SECOND));
                assertTrue(e.getMessage().contains("writer process " + proc.pid() + " is gone"), e.getMessage());
            }
            assertFalse(Files.exists(p), "a reader whose writer died removes the file");
        } finally {
            proc.destroyForcibly();
            Files.deleteIfExists(RingPaths.heartbeatPath(p, "writer"));
        }
    }

    @Test
    void aRingTruncatedUnderTheReaderIsCorrupt() throws Exception {
        Path p = ring("trunc.ring");
        try (RingWriter w = RingWriter.create(p, 8192, 8); RingReader r = RingReader.open(p, SECOND)) {
            try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
                f.setLength(HEADER_SIZE);
            }
            RingCorruptException e = assertThrows(RingCorruptException.class, () -> r.next(1, 10 * SECOND));
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
        }
    }

    // ---- corruption: each value the C reader rejects, with the same rule --------------------------

    interface Damage {
        void apply(ByteBuffer h);
    }

    private void assertOpenRejects(String name, Damage damage, String expect) throws Exception {
        Path p = ring(name + ".ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8)) {
            damage.apply(le(w));
            RingException e = assertThrows(RingException.class, () -> RingReader.open(p, SECOND));
            assertInstanceOf(RingCorruptException.class, e, e.getMessage());
            assertTrue(e.getMessage().contains(expect), e.getMessage());
            assertTrue(e.getMessage().contains(p.toString()), "names the ring: " + e.getMessage());
        }
    }

    @Test
    void openRejectsABadIdentity() throws Exception {
        assertOpenRejects("magic", h -> h.putLong(MAGIC_OFF, 42), "bad magic");
        assertOpenRejects("major", h -> h.putInt(VERSION_OFF, 2 << 16), "version 2.0 is not supported");
        assertOpenRejects("hsize", h -> h.putInt(HEADER_SIZE_OFF, 512), "bad geometry");
        assertOpenRejects("cap", h -> h.putLong(CAPACITY_OFF, 4095), "bad geometry");
        assertOpenRejects("size", h -> h.putLong(CAPACITY_OFF, 8192), "bad geometry");
        assertOpenRejects("align", h -> h.putInt(ALIGN_OFF, 16), "bad align");
        assertOpenRejects("maxrec", h -> h.putInt(MAX_RECORD_OFF, 4096), "max_record");
        assertOpenRejects("pos", h -> h.putLong(READ_POS_OFF, 8), "bad positions");
        assertOpenRejects("span", h -> h.putLong(WRITE_POS_OFF, 8192), "bad positions");
        assertOpenRejects("unaligned", h -> h.putLong(WRITE_POS_OFF, 4), "bad positions");
    }

    private void assertNextRejects(String name, Damage damage, String expect) throws Exception {
        Path p = ring(name + ".ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8); RingReader r = RingReader.open(p, SECOND)) {
            w.write(new byte[100], 0);
            w.publish();
            damage.apply(le(w));
            RingCorruptException e = assertThrows(RingCorruptException.class, () -> r.next(16, SECOND));
            assertTrue(e.getMessage().contains(expect), e.getMessage());
        }
    }

    @Test
    void nextRejectsAWritePositionBeyondTheCapacityOrUnaligned() throws Exception {
        assertNextRejects("wp-far", h -> h.putLong(WRITE_POS_OFF, 8192), "write position 8192 invalid");
        assertNextRejects("wp-odd", h -> h.putLong(WRITE_POS_OFF, 116), "write position 116 invalid");
    }

    @Test
    void nextRejectsABadFrame() throws Exception {
        int d = HEADER_SIZE;
        assertNextRejects("kind", h -> h.putInt(d + 4, 9), "kind 9");
        assertNextRejects("len", h -> h.putInt(d, 2000), "length 2000");
        assertNextRejects("neg", h -> h.putInt(d, -1), "length 4294967295");
        assertNextRejects("past", h -> h.putInt(d, 120), "length 120 (max 1024, 112 bytes published");
        assertNextRejects("pad", h -> h.putInt(d + 4, FRAME_PAD), "padding frame at position 0 has length 100");
    }

    @Test
    void aWritePositionThatGoesBackIsCorrupt() throws Exception {
        Path p = ring("back.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8); RingReader r = RingReader.open(p, SECOND)) {
            w.write(new byte[8], 0);
            w.write(new byte[8], 0);
            w.publish();
            RingReader.Batch b = r.next(16, SECOND);
            assertEquals(2, b.count());
            le(w).putLong(WRITE_POS_OFF, 16);
            RingCorruptException e = assertThrows(RingCorruptException.class, () -> r.next(1, SECOND));
            assertTrue(e.getMessage().contains("write position 16 invalid (seen 32"), e.getMessage());
        }
    }

    @Test
    void aBatchStopsAtTheWrapAndAtHalfTheRing() throws Exception {
        Path p = ring("w.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8, 4096 - 64); RingReader r = RingReader.open(p, SECOND)) {
            w.setBatch(1000, 1 << 20);
            for (int i = 0; i < 4; i++) {
                w.write(new byte[8], 0); // 16-byte frames: four fill the 64 bytes before the wrap
            }
            w.write(new byte[8], 0); // after the wrap
            w.publish();
            assertEquals(4, r.next(100, SECOND).count(), "a batch is contiguous");
            assertEquals(1, r.next(100, SECOND).count());
        }
        Path q = ring("h.ring");
        try (RingWriter w = RingWriter.create(q, 4096, 8); RingReader r = RingReader.open(q, SECOND)) {
            w.setBatch(1000, 1 << 20);
            List<RingReader.Batch> held = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                w.write(new byte[8], 0);
            }
            w.publish();
            held.add(r.next(1000, SECOND));
            assertEquals(127, held.get(0).count(), "at most cap/2 - align (2040 bytes of 16-byte frames)");
        }
    }
}
