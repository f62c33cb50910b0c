package io.flinktf.ipc;

import static io.flinktf.ipc.internal.Layout.*;
import static org.junit.jupiter.api.Assertions.*;

import io.flinktf.ipc.internal.NativeRing;
import io.flinktf.ipc.internal.ProcessInfo;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

@Timeout(value = 60, unit = TimeUnit.SECONDS)
class RingWriterTest {
    @TempDir
    Path tmp;

    private static final long MS = 1_000_000L;

    private static byte[] record(long seq, int len) {
        byte[] b = new byte[len];
        Random r = new Random(seq);
        r.nextBytes(b);
        return b;
    }

    @Test
    void createsFileExclusivelyWithModesAndFullHeader() throws Exception {
        Path dir = tmp.resolve("rings");
        Path p = dir.resolve("a.ring");
        try (RingWriter w = RingWriter.create(p, 8192, 64)) {
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(p)));
            assertEquals(HEADER_SIZE + 8192, Files.size(p));
            ByteBuffer h = w.mapping().duplicate().order(ByteOrder.LITTLE_ENDIAN);
            // The u64 FTI_MAGIC, stored little-endian, exactly as the C writer stores it.
            assertEquals(MAGIC, ByteBuffer.wrap(Arrays.copyOfRange(Files.readAllBytes(p), 0, 8))
                    .order(ByteOrder.LITTLE_ENDIAN).getLong());
            assertEquals(MAGIC, h.getLong(MAGIC_OFF));
            assertEquals(1 << 16, h.getInt(VERSION_OFF));
            assertEquals(HEADER_SIZE, h.getInt(HEADER_SIZE_OFF));
            assertEquals(8192, h.getLong(CAPACITY_OFF));
            assertEquals(64, h.getInt(ALIGN_OFF));
            assertEquals(2048, h.getInt(MAX_RECORD_OFF));
            assertTrue(Math.abs(h.getLong(CREATED_NS_OFF) / 1_000_000_000L - System.currentTimeMillis() / 1000) < 60);
            assertEquals(ProcessInfo.selfPid(), h.getInt(WRITER_PID_OFF));
            assertEquals(ProcessInfo.selfStartTime(), h.getLong(WRITER_START_OFF));
            assertTrue(h.getLong(WRITER_START_OFF) > 0);
            assertThrows(FileAlreadyExistsException.class, () -> RingWriter.create(p, 8192, 64));
        }
    }

    @Test
    void refusesToFollowASymlink() throws Exception {
        Path target = tmp.resolve("target");
        Path link = tmp.resolve("link.ring");
        Files.createSymbolicLink(link, target);
        assertThrows(FileAlreadyExistsException.class, () -> RingWriter.create(link, 4096, 8));
        assertFalse(Files.exists(target, LinkOption.NOFOLLOW_LINKS));
    }

    @Test
    void aSymlinkedRingDirectoryIsRefusedAndSaysSo() throws Exception {
        Path real = Files.createDirectory(tmp.resolve("real"),
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Path link = Files.createSymbolicLink(tmp.resolve("linked"), real);
        java.io.IOException e = assertThrows(java.io.IOException.class,
                () -> RingWriter.create(link.resolve("a.ring"), 4096, 8));
        assertTrue(e.getMessage().contains("symlink"), e.getMessage());
        assertFalse(Files.exists(real.resolve("a.ring")));
    }

    @Test
    void aNameWithANulIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> RingPaths.ringPath(tmp, "x.ring\0junk", 0));
        assertThrows(IllegalArgumentException.class, () -> RingPaths.ringPath(tmp, "", 0));
    }

    @Test
    void creationReservesEveryPage() throws Exception {
        Path p = tmp.resolve("rings").resolve("full.ring");
        try (RingWriter w = RingWriter.create(p, 1 << 20, 8)) {
            // a sparse file would have almost no blocks; a reserved one has them all (512-byte units)
            long blocks = (Long) Files.getAttribute(p, "unix:size") > 0
                    ? Long.parseLong(new String(new ProcessBuilder("stat", "-c", "%b", p.toString())
                            .start().getInputStream().readAllBytes()).trim())
                    : 0;
            assertTrue(blocks * 512 >= HEADER_SIZE + (1 << 20), "blocks " + blocks);
        }
    }

    @Test
    void rejectsBadGeometryWithClearMessages() {
        IllegalArgumentException e =
                assertThrows(IllegalArgumentException.class, () -> RingWriter.create(tmp.resolve("x"), 5000, 8));
        assertTrue(e.getMessage().contains("power of two"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> RingWriter.create(tmp.resolve("x"), 4096, 16));
        assertTrue(e.getMessage().contains("align must be 8 or 64"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> RingWriter.create(tmp.resolve("x"), 2048, 8));
        assertFalse(Files.exists(tmp.resolve("x")));
    }

    @Test
    void recordThatDoesNotFitBeforeTheEndGoesBehindAPadFrame() throws Exception {
        long cap = 4096;
        long start = 3 * cap - 16; // data index 4080: 16 bytes left before the end
        try (RingWriter w = RingWriter.create(tmp.resolve("pad.ring"), cap, 8, start)) {
            ByteBuffer m = w.mapping().duplicate().order(ByteOrder.LITTLE_ENDIAN);
            byte[] r9 = record(1, 9); // frame 8 + 9 -> 24 > 16: PAD then the record at index 0
            w.write(r9, 0);
            w.publish();
            assertEquals(16, m.getInt(HEADER_SIZE + 4080), "PAD length = distance to the end");
            assertEquals(FRAME_PAD, m.getInt(HEADER_SIZE + 4084));
            assertEquals(9, m.getInt(HEADER_SIZE));
            assertEquals(FRAME_DATA, m.getInt(HEADER_SIZE + 4));
            byte[] got = new byte[9];
            m.position(HEADER_SIZE + 8);
            m.get(got);
            assertArrayEquals(r9, got);
            assertEquals(start + 16 + 24, m.getLong(WRITE_POS_OFF));
            try (TestReader r = new TestReader(w.path())) {
                assertArrayEquals(r9, r.next(1000));
                assertEquals(1, r.pads);
                w.finish();
                assertNull(r.next(1000), "end of stream");
            }
        }
    }

    @Test
    void recordThatExactlyFillsTheTailNeedsNoPad() throws Exception {
        long cap = 4096;
        try (RingWriter w = RingWriter.create(tmp.resolve("exact.ring"), cap, 64, cap - 128)) {
            ByteBuffer m = w.mapping().duplicate().order(ByteOrder.LITTLE_ENDIAN);
            byte[] r64 = record(2, 64); // frame 64 + 64 = 128 = the tail
            w.write(r64, 0);
            byte[] r1 = record(3, 1);
            w.write(r1, 0);
            w.publish();
            assertEquals(64, m.getInt(HEADER_SIZE + 4096 - 128));
            assertEquals(FRAME_DATA, m.getInt(HEADER_SIZE + 4096 - 124));
            assertEquals(1, m.getInt(HEADER_SIZE), "second record wraps to index 0 without a PAD");
            assertEquals(cap - 128 + 128 + 128, m.getLong(WRITE_POS_OFF));
            try (TestReader r = new TestReader(w.path())) {
                assertArrayEquals(r64, r.next(1000));
                assertArrayEquals(r1, r.next(1000));
                assertEquals(0, r.pads);
                w.finish();
                assertNull(r.next(1000), "end of stream");
            }
        }
    }

    @Test
    void positionsPastTwoToThe32Work() throws Exception {
        long start = (1L << 32) - 256;
        try (RingWriter w = RingWriter.create(tmp.resolve("big.ring"), 4096, 8, start)) {
            try (TestReader r = new TestReader(w.path())) {
                for (int i = 0; i < 200; i++) {
                    w.write(record(i, i % 50), 1000 * MS);
                    w.publish();
                    assertArrayEquals(record(i, i % 50), r.next(1000));
                }
                assertTrue(w.writePosition() > (1L << 32));
                w.finish();
                assertNull(r.next(1000), "end of stream");
            }
        }
    }

    @Test
    void maxRecordIsAcceptedAndALargerRecordThrowsBeforeWriting() throws Exception {
        long cap = 4096;
        long start = cap - 64; // near the wrap: an oversized record must not even write a PAD
        try (RingWriter w = RingWriter.create(tmp.resolve("max.ring"), cap, 8, start)) {
            assertEquals(1024, w.maxRecord());
            ByteBuffer m = w.mapping().duplicate().order(ByteOrder.LITTLE_ENDIAN);
            byte[] before = new byte[HEADER_SIZE + (int) cap];
            m.get(before);
            RecordTooLargeException e =
                    assertThrows(RecordTooLargeException.class, () -> w.write(new byte[1025], 0));
            assertTrue(e.getMessage().contains("1025") && e.getMessage().contains("1024"), e.getMessage());
            assertThrows(RecordTooLargeException.class,
                    () -> w.write(1L, RecordEncoders.sequence(4000), 0));
            w.publish();
            byte[] after = new byte[HEADER_SIZE + (int) cap];
            m.position(0);
            m.get(after);
            assertArrayEquals(before, after, "nothing written");
            try (TestReader r = new TestReader(w.path())) {
                byte[] max = record(7, 1024);
                w.write(max, 1000 * MS);
                w.publish();
                assertArrayEquals(max, r.next(1000));
                w.finish();
                assertNull(r.next(1000), "end of stream");
            }
        }
    }

    @Test
    void manySizesAcrossManyWrapsArriveExactly() throws Exception {
        for (int align : new int[] {8, 64}) {
            Path p = tmp.resolve("many-" + align + ".ring");
            final int n = 20000;
            AtomicReference<Throwable> err = new AtomicReference<>();
            try (RingWriter w = RingWriter.create(p, 16384, align)) {
                Thread reader = new Thread(() -> {
                    try (TestReader r = new TestReader(p)) {
                        for (int i = 0; i < n; i++) {
                            byte[] got = r.next(20000);
                            int len = new Random(i * 31L).nextInt(w.maxRecord() + 1);
                            if (!Arrays.equals(record(i, len), got)) {
                                throw new AssertionError("record " + i + " differs (len " + len + ")");
                            }
                        }
                        if (r.next(20000) != null) {
                            throw new AssertionError("expected end of stream");
                        }
                        if (r.pads == 0) {
                            throw new AssertionError("no PAD frame seen");
                        }
                    } catch (Throwable t) {
                        err.set(t);
                    }
                });
                reader.start();
                for (int i = 0; i < n; i++) {
                    int len = new Random(i * 31L).nextInt(w.maxRecord() + 1);
                    w.write(record(i, len), 20_000 * MS);
                }
                w.finish();
                reader.join();
                assertNull(err.get(), () -> String.valueOf(err.get()));
                assertEquals(n, w.recordsWritten());
                assertTrue(w.fullWaits() > 0, "a 16 KiB ring must have filled");
            }
        }
    }

    @Test
    void fullRingWithNoReaderTimesOut() throws Exception {
        try (RingWriter w = RingWriter.create(tmp.resolve("full.ring"), 4096, 8)) {
            int written = 0;
            RingTimeoutException e = null;
            try {
                for (; written < 1000; written++) {
                    w.write(new byte[100], 200 * MS);
                }
            } catch (RingTimeoutException t) {
                e = t;
            }
            assertNotNull(e);
            assertTrue(e.getMessage().contains("full.ring"), e.getMessage());
            assertEquals(4096 / 112, written);
            assertTrue(w.fullWaitNanos() >= 150 * MS);
        }
    }

    @Test
    void readerClosedFailsTheWaitingWriter() throws Exception {
        Path p = tmp.resolve("closed.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8)) {
            TestReader r = new TestReader(p);
            Thread closer = new Thread(() -> {
                sleep(300);
                r.markClosed();
            });
            closer.start();
            RingClosedException e = assertThrows(RingClosedException.class, () -> {
                for (int i = 0; i < 1000; i++) {
                    w.write(new byte[100], 10_000 * MS);
                }
            });
            assertTrue(e.getMessage().contains("reader closed") && e.getMessage().contains("closed.ring"), e.getMessage());
            closer.join();
        }
    }

    @Test
    void deadReaderProcessFailsTheWaitingWriter() throws Exception {
        Process proc = new ProcessBuilder("sleep", "30").start();
        long pid = proc.pid();
        long start = ProcessInfo.startTime(pid);
        assertTrue(start > 0);
        Path p = tmp.resolve("dead.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8)) {
            ByteBuffer m = w.mapping();
            m.putInt(READER_PID_OFF, (int) pid); // as if that process had claimed the ring
            m.putLong(READER_START_OFF, start);
            Thread killer = new Thread(() -> {
                sleep(300);
                proc.destroyForcibly();
            });
            killer.start();
            PeerLostException e = assertThrows(PeerLostException.class, () -> {
                for (int i = 0; i < 1000; i++) {
                    w.write(new byte[100], 10_000 * MS);
                }
            });
            assertTrue(e.getMessage().contains("reader process " + pid + " is gone"), e.getMessage());
            killer.join();
        } finally {
            proc.destroyForcibly().waitFor();
        }
    }

    @Test
    void aKilledButUnreapedReaderCountsAsGone() throws Exception {
        Process proc = new ProcessBuilder("sleep", "30").start();
        long start = ProcessInfo.startTime(proc.pid());
        assertTrue(ProcessInfo.isAlive(proc.pid(), start));
        // A grandchild killed by a parent that does not reap it (the JVM would reap its own child).
        Process sh = new ProcessBuilder("python3", "-c", "import os, time\n"
                + "pid = os.fork()\n"
                + "if pid == 0:\n    time.sleep(30)\n    os._exit(0)\n"
                + "print(pid, flush=True)\nos.kill(pid, 9)\ntime.sleep(3)\n").start();
        long zpid = Long.parseLong(new java.io.BufferedReader(new java.io.InputStreamReader(
                sh.getInputStream(), java.nio.charset.StandardCharsets.US_ASCII)).readLine().trim());
        sleep(300);
        assertTrue(sh.isAlive(), "the zombie's parent still runs");
        assertTrue(Files.exists(Path.of("/proc/" + zpid)), "the zombie still has its /proc entry");
        assertEquals(0, ProcessInfo.startTime(zpid), "zombie " + zpid + " is not alive");
        sh.waitFor();
        proc.destroyForcibly().waitFor();
    }

    @Test
    void interruptEndsTheWait() throws Exception {
        try (RingWriter w = RingWriter.create(tmp.resolve("intr.ring"), 4096, 8)) {
            Thread me = Thread.currentThread();
            Thread t = new Thread(() -> {
                sleep(300);
                me.interrupt();
            });
            t.start();
            assertThrows(InterruptedException.class, () -> {
                for (int i = 0; i < 1000; i++) {
                    w.write(new byte[100], -1);
                }
            });
            t.join();
        }
    }

    @Test
    void flushWaitsUntilTheReaderReleasedEverything() throws Exception {
        Path p = tmp.resolve("flush.ring");
        try (RingWriter w = RingWriter.create(p, 65536, 8); TestReader r = new TestReader(p)) {
            for (int i = 0; i < 100; i++) {
                w.write(record(i, 100), 0);
            }
            Thread t = new Thread(() -> {
                try {
                    sleep(200);
                    for (int i = 0; i < 100; i++) {
                        r.next(10000);
                    }
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            t.start();
            w.flush(10_000 * MS);
            assertEquals(w.writePosition(), w.readPosition());
            t.join();
            assertThrows(RingTimeoutException.class, () -> {
                w.write(record(1, 10), 0);
                w.flush(100 * MS);
            });
        }
    }

    @Test
    void publishWakesASleepingReader() throws Exception {
        Path p = tmp.resolve("wake.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8); TestReader r = new TestReader(p)) {
            AtomicReference<Integer> rc = new AtomicReference<>();
            Thread sleeper = new Thread(() -> {
                ByteBuffer m = r.buf;
                m.putInt(READER_SLEEPING_OFF, 1);
                VarHandle.fullFence();
                if (m.getLong(WRITE_POS_OFF) == 0) {
                    rc.set(NativeRing.futexWait(m, READER_SLEEPING_OFF, 1, 30_000 * MS));
                }
            });
            sleeper.start();
            while (r.buf.getInt(READER_SLEEPING_OFF) != 1 || sleeper.getState() != Thread.State.RUNNABLE) {
                Thread.onSpinWait();
            }
            sleep(200); // let it enter FUTEX_WAIT
            w.write(record(1, 10), 0); // the reader sleeps: published and woken at once
            sleeper.join();
            assertEquals(0, (int) rc.get(), "woken by FUTEX_WAKE, not by the 30 s timeout");
            assertEquals(0, r.buf.getInt(READER_SLEEPING_OFF), "waker clears the announcement");
            assertArrayEquals(record(1, 10), r.next(1000));
            w.finish();
        }
    }

    @Test
    void finishThenCloseIsEndOfStreamAndBothSidesDetach() throws Exception {
        Path p = tmp.resolve("eos.ring");
        RingWriter w = RingWriter.create(p, 4096, 8);
        TestReader r = new TestReader(p);
        w.write(record(1, 5), 0);
        w.finish();
        w.close();
        assertEquals(1, r.buf.getInt(WRITER_CLOSED_OFF));
        assertFalse(w.isAborted());
        assertEquals(1, r.buf.getLong(RECORDS_IN_OFF));
        assertEquals(5, r.buf.getLong(BYTES_IN_OFF));
        assertArrayEquals(record(1, 5), r.next(1000));
        assertNull(r.next(1000));
        assertTrue(Files.exists(p), "reader still attached");
        r.close();
        assertEquals(2, r.buf.getInt(DETACHED_OFF));
    }

    @Test
    void tryWithResourcesLeftByAnExceptionAbortsTheStream() throws Exception {
        // was: close() finished the stream, so the reader took a crashed producer for a complete one
        Path p = tmp.resolve("crash.ring");
        RingWriter[] kept = new RingWriter[1];
        IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> {
            try (RingWriter w = RingWriter.create(p, 4096, 8)) {
                kept[0] = w;
                w.write(record(1, 5), 0);
                w.write(record(2, 7), 0); // staged, not yet published: the abort publishes it
                throw new IllegalStateException("the producer failed");
            }
        });
        assertEquals("the producer failed", thrown.getMessage());
        try (RingReader r = RingReader.open(p, 1_000 * MS)) {
            RingReader.Batch b = r.next(16, 1_000 * MS);
            assertEquals(2, b.count(), "what was written before the exception is drained");
            assertArrayEquals(record(1, 5), b.copy(0));
            assertArrayEquals(record(2, 7), b.copy(1));
            b.release();
            PeerLostException e = assertThrows(PeerLostException.class, () -> r.next(16, 1_000 * MS),
                    "an aborted stream, not end of stream");
            assertTrue(e.getMessage().contains("aborted"), e.getMessage());
        }
        assertTrue(kept[0].isFinished() && kept[0].isAborted());
        assertFalse(Files.exists(p), "both sides detached: the file is gone");
    }

    @Test
    void closeWithoutFinishAbortsAndASecondCloseIsANoOp() throws Exception {
        Path p = tmp.resolve("twice.ring");
        RingWriter w = RingWriter.create(p, 4096, 8);
        TestReader r = new TestReader(p);
        w.write(record(1, 5), 0);
        w.close();
        assertEquals(2, r.buf.getInt(WRITER_CLOSED_OFF), "close of an open stream aborts it");
        assertEquals(1, r.buf.getInt(DETACHED_OFF));
        w.close();
        w.finish(); // an aborted stream never turns into a complete one
        w.close();
        assertEquals(2, r.buf.getInt(WRITER_CLOSED_OFF));
        assertEquals(1, r.buf.getInt(DETACHED_OFF), "detached once");
        assertTrue(Files.exists(p), "reader still attached");
        assertArrayEquals(record(1, 5), r.next(1000));
        r.close();
        assertEquals(2, r.buf.getInt(DETACHED_OFF));
    }

    @Test
    void closeAfterFinishTwiceStaysEndOfStream() throws Exception {
        Path p = tmp.resolve("fin2.ring");
        RingWriter w = RingWriter.create(p, 4096, 8);
        TestReader r = new TestReader(p);
        w.finish();
        w.close();
        w.close();
        w.abort(); // no-op after finish
        assertEquals(1, r.buf.getInt(WRITER_CLOSED_OFF));
        assertEquals(1, r.buf.getInt(DETACHED_OFF));
        assertNull(r.next(1000), "end of stream");
        r.close();
    }

    @Test
    void writerDetachingSecondRemovesTheFile() throws Exception {
        Path p = tmp.resolve("rm.ring");
        RingWriter w = RingWriter.create(p, 4096, 8);
        TestReader r = new TestReader(p);
        r.close();
        w.detach();
        assertFalse(Files.exists(p));
        assertEquals(0, r.buf.getInt(WRITER_CLOSED_OFF), "detach alone is not end of stream");
    }

    @Test
    void staleRingOfAGoneWriterIsReplacedButALiveOneIsNot() throws Exception {
        Path p = tmp.resolve("stale.ring");
        RingWriter live = RingWriter.create(p, 4096, 8);
        FileAlreadyExistsException e = assertThrows(FileAlreadyExistsException.class, () -> RingWriter.removeStale(p));
        assertTrue(e.getMessage().contains("live writer"), e.getMessage());
        live.detach(); // an earlier attempt in this process that went away
        assertTrue(RingWriter.removeStale(p));
        assertFalse(Files.exists(p));
        Files.write(p, new byte[600]);
        assertThrows(FileAlreadyExistsException.class, () -> RingWriter.removeStale(p));
    }

    @Test
    void encoderThatLiesAboutItsSizeIsCaught() throws Exception {
        RecordEncoder<String> liar = new RecordEncoder<String>() {
            @Override
            public int encodedSize(String value) {
                return 10;
            }

            @Override
            public void encode(String value, ByteBuffer target) {
                target.put(new byte[4]);
            }
        };
        try (RingWriter w = RingWriter.create(tmp.resolve("liar.ring"), 4096, 8)) {
            assertThrows(IllegalStateException.class, () -> w.write("x", liar, 0));
            assertEquals(8, w.write(42L, RecordEncoders.longLE(), 0));
            assertEquals(3, w.write("héy".substring(0, 2) + "!", RecordEncoders.utf8(), 0) - 1);
        }
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
