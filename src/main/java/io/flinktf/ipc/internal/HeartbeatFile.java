package io.flinktf.ipc.internal;

import java.io.IOException;
import java.io.InputStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

/**
 * Heartbeat files (docs/FORMAT.md, "Heartbeat files"), as {@code flinktf_ipc.heartbeat} writes
 * and reads them: {@code key=value} lines with the escapes of {@link Properties}, replaced
 * atomically (temp file + rename) so a reader sees the old file or the new one, never part of one.
 */
public final class HeartbeatFile {
    public static final int VERSION = 1;

    private final Path path;
    private final String role;
    private final long pid = ProcessInfo.selfPid();
    private final long startTime = ProcessInfo.selfStartTime();
    private long seq;

    public HeartbeatFile(Path path, String role) {
        this.path = path;
        this.role = role;
    }

    public Path path() {
        return path;
    }

    /**
     * Writes one heartbeat now. {@code mono_ns} is {@link System#nanoTime()}: CLOCK_MONOTONIC on
     * Linux, the clock every process on the host shares, so ages compare across processes.
     * Synchronized: the monitor thread and the task thread (final state) both write.
     */
    public synchronized void write(String state, String message, Map<String, Long> progress) throws IOException {
        seq++;
        Instant now = Instant.now();
        StringBuilder b = new StringBuilder(256);
        b.append("version=").append(VERSION).append('\n');
        b.append("role=").append(escape(role)).append('\n');
        b.append("pid=").append(pid).append('\n');
        b.append("start_time=").append(startTime).append('\n');
        b.append("wall_ns=").append(now.getEpochSecond() * 1_000_000_000L + now.getNano()).append('\n');
        b.append("mono_ns=").append(System.nanoTime()).append('\n');
        b.append("seq=").append(seq).append('\n');
        b.append("state=").append(state).append('\n');
        b.append("message=").append(escape(message == null ? "" : message)).append('\n');
        for (Map.Entry<String, Long> e : new TreeMap<>(progress).entrySet()) {
            b.append("progress.").append(e.getKey()).append('=').append(e.getValue()).append('\n');
        }
        Path tmp = path.resolveSibling(path.getFileName() + ".tmp-" + pid + "-" + Thread.currentThread().getId());
        try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
            w.write(b.toString());
        }
        try {
            Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
    }

    /** Removes the file (and a temp file this thread may have left). */
    public synchronized void delete() throws IOException {
        Files.deleteIfExists(path);
        Files.deleteIfExists(path.resolveSibling(path.getFileName() + ".tmp-" + pid + "-" + Thread.currentThread().getId()));
    }

    static String escape(String v) {
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r");
    }

    /** One heartbeat as read; {@link #read} returns null when there is no file. */
    public static final class Beat {
        public final String role;
        public final long pid;
        public final long startTime;
        public final long monoNanos;
        public final long seq;
        public final String state;
        public final String message;

        Beat(Properties p, Path path) throws IOException {
            try {
                int version = Integer.parseInt(p.getProperty("version"));
                if (version != VERSION) {
                    throw new IOException(path + ": heartbeat format " + version + ", this library reads " + VERSION);
                }
                this.role = req(p, "role", path);
                this.pid = Long.parseLong(req(p, "pid", path));
                this.startTime = Long.parseLong(req(p, "start_time", path));
                this.monoNanos = Long.parseLong(req(p, "mono_ns", path));
                this.seq = Long.parseLong(req(p, "seq", path));
                this.state = req(p, "state", path);
                this.message = p.getProperty("message", "");
            } catch (NumberFormatException e) {
                throw new IOException(path + ": malformed heartbeat: " + e.getMessage(), e);
            }
        }

        private static String req(Properties p, String key, Path path) throws IOException {
            String v = p.getProperty(key);
            if (v == null) {
                throw new IOException(path + ": heartbeat lacks " + key);
            }
            return v;
        }

        /** Nanoseconds since it was written, on the shared monotonic clock. */
        public long ageNanos() {
            return Math.max(0, System.nanoTime() - monoNanos);
        }
    }

    /** Reads a heartbeat file; null if it does not exist (yet). */
    public static Beat read(Path path) throws IOException {
        Properties p = new Properties();
        try (InputStream in = Files.newInputStream(path)) {
            p.load(new java.io.InputStreamReader(in, StandardCharsets.UTF_8));
        } catch (NoSuchFileException e) {
            return null;
        }
        if (p.getProperty("version") == null) {
            throw new IOException(path + ": not a heartbeat file (no version)");
        }
        return new Beat(p, path);
    }
}
