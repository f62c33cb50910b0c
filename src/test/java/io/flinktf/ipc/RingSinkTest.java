package io.flinktf.ipc;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestartStrategyOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.ExceptionUtils;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** RingSink in a real Flink mini-cluster, read by {@link TestReader}s (the C/Python reader is tested from pytest). */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class RingSinkTest {
    @TempDir
    Path tmp;

    @Test
    void builderChecksArgumentsWithClearMessages() {
        RingSinkBuilder<byte[]> b = RingSink.builder();
        assertMessage(() -> b.setName("a/b"), "ring name");
        assertMessage(() -> b.setName(""), "ring name");
        assertMessage(() -> b.setBaseDir("relative/dir"), "absolute");
        assertMessage(() -> b.setCapacity(3000), "power of two");
        assertMessage(() -> b.setAlign(32), "align must be 8 or 64");
        assertMessage(() -> b.setWriteTimeout(Duration.ZERO), "writeTimeout must be a positive");
        assertMessage(() -> b.setFlushTimeoutMillis(-1), "flushTimeout must be a positive");
        assertMessage(() -> b.setEncoderName("nope"), "unknown encoder 'nope'");
        assertMessage(() -> b.setBatchRecords(0), "batchRecords");
        IllegalStateException e = assertThrows(IllegalStateException.class, b::build);
        assertTrue(e.getMessage().contains("setName"), e.getMessage());
        b.setName("x");
        e = assertThrows(IllegalStateException.class, b::build);
        assertTrue(e.getMessage().contains("setEncoder"), e.getMessage());
        RingSink<byte[]> sink = b.setBaseDir(tmp.toString()).setEncoder(RecordEncoders.bytes()).build();
        assertEquals(tmp.resolve("x-3.ring"), sink.ringPath(3));
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable call, String part) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().startsWith("RingSink: ") && e.getMessage().contains(part), e.getMessage());
    }

    private static StreamExecutionEnvironment env(int parallelism) {
        Configuration conf = new Configuration();
        conf.set(RestartStrategyOptions.RESTART_STRATEGY, "none");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);
        return env;
    }

    /** Reads one ring to the end on a thread; the records are the little-endian longs. */
    private static Thread readRing(Path path, List<Long> out, AtomicReference<Throwable> err, long stopAfter) {
        Thread t = new Thread(() -> {
            try {
                long deadline = System.currentTimeMillis() + 60_000;
                while (!Files.exists(path)) {
                    if (System.currentTimeMillis() > deadline) {
                        throw new AssertionError("ring " + path + " never appeared");
                    }
                    Thread.sleep(10);
                }
                Thread.sleep(50); // let the creator finish the header (TestReader does not wait on version)
                try (TestReader r = new TestReader(path)) {
                    byte[] rec;
                    while ((rec = r.next(60_000)) != null) {
                        out.add(ByteBuffer.wrap(rec).order(ByteOrder.LITTLE_ENDIAN).getLong());
                        if (out.size() == stopAfter) {
                            return; // close (reader_closed) mid-stream
                        }
                    }
                }
            } catch (Throwable e) {
                err.set(e);
            }
        });
        t.start();
        return t;
    }

    @Test
    void eachSubtaskWritesItsOwnRingWithCheckpointsAndTheReadersSeeEndOfStream() throws Exception {
        final long n = 200_000;
        StreamExecutionEnvironment env = env(2);
        env.enableCheckpointing(100);
        env.fromSequence(0, n - 1)
                .sinkTo(RingSink.<Long>builder()
                        .setBaseDir(tmp.toString())
                        .setName("seq")
                        .setCapacity(64 * 1024)
                        .setAlign(8)
                        .setEncoder(RecordEncoders.longLE())
                        .setFlushTimeout(Duration.ofSeconds(60))
                        .build());
        List<List<Long>> got = new ArrayList<>();
        List<Thread> readers = new ArrayList<>();
        AtomicReference<Throwable> err = new AtomicReference<>();
        for (int i = 0; i < 2; i++) {
            got.add(new ArrayList<>());
            readers.add(readRing(tmp.resolve("seq-" + i + ".ring"), got.get(i), err, -1));
        }
        env.execute("ring-sink-test");
        for (Thread t : readers) {
            t.join();
        }
        assertNull(err.get(), () -> String.valueOf(err.get()));
        boolean[] seen = new boolean[(int) n];
        for (List<Long> ring : got) {
            assertFalse(ring.isEmpty(), "both subtasks wrote");
            for (int i = 0; i < ring.size(); i++) {
                long v = ring.get(i);
                assertTrue(i == 0 || v > ring.get(i - 1), "in order within a ring");
                assertFalse(seen[(int) v], "exactly once: " + v);
                seen[(int) v] = true;
            }
        }
        assertEquals(n, got.get(0).size() + got.get(1).size());
    }

    @Test
    void aReaderThatClosesFailsTheJobWithAnIOExceptionNamingTheRing() throws Exception {
        StreamExecutionEnvironment env = env(1);
        env.fromSequence(0, 100_000_000L)
                .sinkTo(RingSink.<Long>builder()
                        .setBaseDir(tmp.toString())
                        .setName("quit")
                        .setCapacity(4096)
                        .setEncoder(RecordEncoders.longLE())
                        .build());
        List<Long> got = new ArrayList<>();
        AtomicReference<Throwable> err = new AtomicReference<>();
        Thread reader = readRing(tmp.resolve("quit-0.ring"), got, err, 1000);
        JobClient job = env.executeAsync("ring-sink-reader-quits");
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> job.getJobExecutionResult().get(100, TimeUnit.SECONDS));
        reader.join();
        assertNull(err.get());
        Throwable io = ExceptionUtils.findThrowable(e, t -> t instanceof java.io.IOException
                && String.valueOf(t.getMessage()).startsWith("RingSink 'quit' subtask 0")).orElse(null);
        assertNotNull(io, () -> ExceptionUtils.stringifyException(e));
        assertTrue(io.getMessage().contains("quit-0.ring") && io.getMessage().contains("reader closed"), io.getMessage());
    }
}
