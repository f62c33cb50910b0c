package io.flinktf.ipc;

import static org.junit.jupiter.api.Assertions.*;

import io.flinktf.ipc.internal.StaleFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Per-job ring directories and the stale-file sweep (the Python side's rule is compared from pytest). */
class PerJobDirectoryTest {
    @TempDir
    Path tmp;

    @Test
    void sinksWithWorkersWriteTheJobsDirectory() {
        RingSink<byte[]> plain = RingSink.<byte[]>builder().setName("f").setBaseDir(tmp.toString())
                .setEncoder(RecordEncoders.bytes()).build();
        assertFalse(plain.config().usesJobDirectory());
        assertEquals(tmp.resolve("f-1.ring"), plain.ringPath(1));
        assertEquals(tmp.resolve("f-1.ring"), plain.ringPath(1, 0, "abc"));

        RingSink<byte[]> workers = RingSink.<byte[]>builder().setName("f").setBaseDir(tmp.toString())
                .setEncoder(RecordEncoders.bytes()).setWorkerEntry("pkg.train:main").build();
        assertTrue(workers.config().usesJobDirectory());
        assertEquals(tmp.resolve("job-abc").resolve("f-1.attempt2.ring"), workers.ringPath(1, 2, "abc"));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> workers.ringPath(1));
        assertTrue(e.getMessage().contains("job id"), e.getMessage());

        RingSink<byte[]> optOut = RingSink.<byte[]>builder().setName("f").setBaseDir(tmp.toString())
                .setEncoder(RecordEncoders.bytes()).setWorkerEntry("pkg.train:main").setPerJobDirectory(false).build();
        assertEquals(tmp.resolve("f-0.ring"), optOut.ringPath(0));
        assertThrows(IllegalArgumentException.class, () -> RingPaths.jobDirectory(tmp, "../x"));
    }

    @Test
    void ensureDirectoriesMakesBothPrivate() throws Exception {
        Path base = tmp.resolve("base");
        Path job = RingPaths.jobDirectory(base, "0123");
        RingPaths.ensureDirectories(base, job);
        for (Path d : new Path[] {base, job}) {
            assertEquals("rwx------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(d)));
        }
    }

    @Test
    void sweepKeepsLiveRingsAndTheJobDirectoryInUse() throws Exception {
        Path job = RingPaths.jobDirectory(tmp, "live");
        RingPaths.ensureDirectories(tmp, job);
        try (RingWriter w = RingWriter.create(job.resolve("a-0.ring"), 1 << 16, 8)) {
            Files.writeString(job.resolve("a-0.worker.json"), "{}");
            List<StaleFiles.Removed> removed = StaleFiles.sweep(tmp, job);
            assertTrue(removed.isEmpty(), removed.toString());
            assertTrue(Files.exists(job.resolve("a-0.ring")) && Files.exists(job.resolve("a-0.worker.json")));
            w.abort();
        }
    }
}
