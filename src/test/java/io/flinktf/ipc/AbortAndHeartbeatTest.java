package io.flinktf.ipc;

import static io.flinktf.ipc.internal.Layout.*;
import static org.junit.jupiter.api.Assertions.*;

import io.flinktf.ipc.internal.HeartbeatFile;
import io.flinktf.ipc.internal.ProcessInfo;
import java.io.IOException;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** RingWriter.abort, the wait check, heartbeat files and the per-attempt file names. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class AbortAndHeartbeatTest {
    @TempDir
    Path tmp;

    private Path dir() throws IOException {
        Path d = tmp.resolve("rings");
        RingPaths.ensureDirectory(d);
        return d;
    }

    private static int writerClosed(RingWriter w) {
        return w.mapping().duplicate().order(ByteOrder.LITTLE_ENDIAN).getInt(WRITER_CLOSED_OFF);
    }

    @Test
    void abortPublishesStagedRecordsThenMarksTheStreamAborted() throws Exception {
        try (RingWriter w = RingWriter.create(dir().resolve("a.ring"), 4096, 8)) {
            w.write(new byte[] {1, 2, 3}, 0);
            assertEquals(1, w.pendingRecords());
            w.abort();
            assertEquals(0, w.pendingRecords());
            assertEquals(1, w.recordsWritten());
            assertEquals(2, writerClosed(w));
            assertTrue(w.isFinished() && w.isAborted());
            w.finish(); // no-op: an aborted stream never turns into a complete one
            assertEquals(2, writerClosed(w));
            assertThrows(IllegalStateException.class, () -> w.write(new byte[1], 0));
        }
    }

    @Test
    void abortAfterFinishKeepsEndOfStream() throws Exception {
        try (RingWriter w = RingWriter.create(dir().resolve("f.ring"), 4096, 8)) {
            w.finish();
            w.abort();
            assertEquals(1, writerClosed(w));
            assertFalse(w.isAborted());
        }
    }

    @Test
    void waitCheckEndsAWaitOnAFullRing() throws Exception {
        Path p = dir().resolve("full.ring");
        try (RingWriter w = RingWriter.create(p, 4096, 8)) {
            w.setWaitCheck(() -> {
                throw new IOException("worker hung: heartbeat 12.0 s old");
            });
            IOException e = assertThrows(IOException.class, () -> {
                for (int i = 0; i < 10_000; i++) {
                    w.write(new byte[100], 60_000_000_000L);
                }
            });
            assertEquals("worker hung: heartbeat 12.0 s old", e.getMessage());
            w.detachAndRemove();
            assertFalse(Files.exists(p), "the owner removes the ring of a reader it knows is gone");
        }
    }

    @Test
    void heartbeatFileRoundTripsWithEscapesAndIsReplacedAtomically() throws Exception {
        Path hbPath = tmp.resolve("x.writer.hb");
        assertNull(HeartbeatFile.read(hbPath));
        HeartbeatFile hb = new HeartbeatFile(hbPath, "writer");
        hb.write("running", "", Collections.singletonMap("records", 7L));
        hb.write("failed", "line one\nline two \\ end", Collections.singletonMap("records", 9L));
        HeartbeatFile.Beat b = HeartbeatFile.read(hbPath);
        assertEquals("writer", b.role);
        assertEquals(ProcessInfo.selfPid(), b.pid);
        assertEquals(ProcessInfo.selfStartTime(), b.startTime);
        assertEquals(2, b.seq);
        assertEquals("failed", b.state);
        assertEquals("line one\nline two \\ end", b.message);
        long before = System.nanoTime();
        assertTrue(b.monoNanos > 0 && b.monoNanos <= before, "mono_ns is this JVM's System.nanoTime()");
        String text = new String(Files.readAllBytes(hbPath), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(text.contains("progress.records=9\n") && text.contains("message=line one\\nline two \\\\ end\n"), text);
        try (java.util.stream.Stream<Path> files = Files.list(tmp)) {
            assertEquals(1, files.count(), "no temp file left behind");
        }
        hb.delete();
        assertFalse(Files.exists(hbPath));
    }

    private static String validBeat(String pid, long monoNanos) {
        return "version=1\nrole=worker\npid=" + pid + "\nstart_time=1\nwall_ns=1\nmono_ns=" + monoNanos
                + "\nseq=1\nstate=running\nmessage=\n";
    }

    @Test
    void damagedHeartbeatFilesAreIOExceptionsAndAFifoDoesNotBlock() throws Exception {
        Path garbage = tmp.resolve("garbage.hb");
        Files.write(garbage, new byte[] {'v', '=', (byte) 0xff, (byte) 0xfe, 0, '\n'});
        Path dir = Files.createDirectory(tmp.resolve("dir.hb"));
        Path fifo = tmp.resolve("fifo.hb");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        Path future = tmp.resolve("future.hb");
        Files.writeString(future, validBeat("1", System.nanoTime() + TimeUnit.HOURS.toNanos(1)));
        Path hugePid = tmp.resolve("pid.hb");
        Files.writeString(hugePid, validBeat("99999999999999999999", System.nanoTime()));
        Path badEscape = tmp.resolve("escape.hb");
        Files.writeString(badEscape, validBeat("1", System.nanoTime()) + "message=\\uZZZZ\n");
        Path link = tmp.resolve("link.hb");
        Path target = tmp.resolve("target");
        Files.writeString(target, validBeat("1", System.nanoTime()));
        Files.createSymbolicLink(link, target);
        for (Path p : new Path[] {garbage, dir, fifo, future, hugePid, badEscape, link}) {
            IOException e = assertThrows(IOException.class, () -> HeartbeatFile.read(p), p.toString());
            assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
        }
        assertNotNull(HeartbeatFile.read(target));
    }

    @Test
    void heartbeatFilesArePrivateReplaceASymlinkAndAFailedWriteLeavesNoTempFile() throws Exception {
        Path target = tmp.resolve("precious");
        Files.writeString(target, "keep me");
        Path hbPath = tmp.resolve("w.writer.hb");
        Files.createSymbolicLink(hbPath, target);
        HeartbeatFile hb = new HeartbeatFile(hbPath, "writer");
        hb.write("running", "", Collections.emptyMap());
        assertEquals("keep me", Files.readString(target));
        assertFalse(Files.isSymbolicLink(hbPath));
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(hbPath)));
        Files.delete(hbPath);
        Files.createDirectories(hbPath.resolve("x")); // a non-empty directory: the rename fails
        assertThrows(IOException.class, () -> hb.write("running", "", Collections.emptyMap()));
        try (java.util.stream.Stream<Path> files = Files.list(tmp)) {
            assertEquals(java.util.List.of("precious", "w.writer.hb"),
                    files.map(f -> f.getFileName().toString()).sorted().collect(java.util.stream.Collectors.toList()));
        }
    }

    @Test
    void restartedAttemptsGetTheirOwnRingAndHeartbeatFiles() {
        Path base = tmp;
        assertEquals(base.resolve("f-2.ring"), RingPaths.ringPath(base, "f", 2));
        assertEquals(base.resolve("f-2.ring"), RingPaths.ringPath(base, "f", 2, 0));
        Path a3 = RingPaths.ringPath(base, "f", 2, 3);
        assertEquals(base.resolve("f-2.attempt3.ring"), a3);
        assertEquals(base.resolve("f-2.attempt3.writer.hb"), RingPaths.heartbeatPath(a3, "writer"));
        assertEquals(base.resolve("f-2.worker.hb"), RingPaths.heartbeatPath(base.resolve("f-2.ring"), "worker"));
        assertThrows(IllegalArgumentException.class, () -> RingPaths.ringPath(base, "f", 0, -1));
    }

    @Test
    void builderChecksWorkerSettings() {
        RingSinkBuilder<byte[]> b = RingSink.<byte[]>builder().setName("w").setEncoder(RecordEncoders.bytes());
        assertThrows(IllegalArgumentException.class, () -> b.setWorkerEntry(""));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> b.setWorkerEntry("train.py:main"));
        assertTrue(e.getMessage().contains("absolute"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> b.setCheckpointDir("relative"));
        assertThrows(IllegalArgumentException.class, () -> b.setHeartbeatTimeoutMillis(0));
        b.setWorkerEntry("pkg.train:main").setHeartbeatIntervalMillis(1000).setHeartbeatTimeoutMillis(1500);
        IllegalStateException s = assertThrows(IllegalStateException.class, b::build);
        assertTrue(s.getMessage().contains("twice the heartbeatInterval"), s.getMessage());
        RingSink<byte[]> sink = b.setHeartbeatTimeoutMillis(10_000).setWorkerProperty("epochs", "3").build();
        assertEquals("python3", sink.workerPython(), "no job python.executable: python3");
        assertEquals("3", sink.config().worker().properties().get("epochs"));
        assertEquals("pkg.train:main", sink.config().worker().entry());
        assertThrows(IllegalArgumentException.class, () -> b.setWorkerExitGraceMillis(0));
        assertEquals(60_000_000_000L, sink.config().worker().exitGraceNanos(), "a finished worker gets 60 s to exit");
    }

    @Test
    void flushTimeoutDefaultsBelowTheCheckpointTimeout() {
        long s = 1_000_000_000L;
        assertEquals(300 * s, RingSink.defaultFlushTimeoutNanos(600 * s), "Flink's default 10 min: 5 min");
        assertEquals(5 * s, RingSink.defaultFlushTimeoutNanos(10 * s));
        assertEquals(300 * s, RingSink.defaultFlushTimeoutNanos(3600 * s), "at most 5 min");
        assertEquals(300 * s, RingSink.defaultFlushTimeoutNanos(0), "unknown checkpoint timeout");
        RingSink<byte[]> unset = RingSink.<byte[]>builder().setName("f").setEncoder(RecordEncoders.bytes()).build();
        assertEquals(0, unset.config().flushTimeoutNanos(), "unset: derived from the job when the graph is built");
        assertEquals(300 * s, unset.flushTimeoutNanos());
        RingSink<byte[]> set = RingSink.<byte[]>builder().setName("f").setEncoder(RecordEncoders.bytes())
                .setFlushTimeoutMillis(1234).build();
        assertEquals(1_234_000_000L, set.flushTimeoutNanos());
    }
}
