package io.flinktf.ipc.internal;

import java.io.IOException;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.EnumSet;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;

/**
 * Heartbeat files (docs/FORMAT.md, "Heartbeat files"), as {@code flinktf_ipc.heartbeat} writes
 * and reads them: {@code key=value} lines with the escapes of {@link Properties}, replaced
 * atomically (temp file + rename) so a reader sees the old file or the new one, never part of one.
 * Files are created 0600 without following a symlink; {@link #read} takes regular files only (a
 * FIFO in the place of one cannot block it), at most {@link #MAX_FILE_BYTES}, and turns anything
 * malformed into an {@link IOException}: never a runtime exception.
 */
public final class HeartbeatFile {
    public static final int VERSION = 1;
    /** A heartbeat is a few hundred bytes; a larger file is not one. */
    public static final int MAX_FILE_BYTES = 64 << 10;
    /** A heartbeat this far in the future of System.nanoTime() is garbage: it would never turn stale. */
    private static final long FUTURE_SLACK_NANOS = 1_000_000_000L;

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
        ByteBuffer data = ByteBuffer.wrap(b.toString().getBytes(StandardCharsets.UTF_8));
        try {
            try (SeekableByteChannel ch = createPrivate(tmp)) {
                while (data.hasRemaining()) {
                    ch.write(data);
                }
            }
            // rename(2) replaces a symlink at path itself, never its target.
            Files.move(tmp, path, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp); // a failed write leaves no temp file behind
            throw e;
        }
    }

    private static SeekableByteChannel createPrivate(Path tmp) throws IOException {
        EnumSet<StandardOpenOption> opts = EnumSet.of(StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW);
        java.nio.file.attribute.FileAttribute<?> mode =
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"));
        try {
            return Files.newByteChannel(tmp, opts, mode);
        } catch (FileAlreadyExistsException e) {
            Files.deleteIfExists(tmp); // a write of ours cut short (or anything else there: never followed)
            return Files.newByteChannel(tmp, opts, mode);
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
                if (pid <= 0 || pid > Integer.MAX_VALUE || startTime < 0 || monoNanos < 0 || seq < 0) {
                    throw new IOException(path + ": heartbeat values out of range (pid " + pid + ", start_time "
                            + startTime + ", mono_ns " + monoNanos + ", seq " + seq + ")");
                }
                if (monoNanos - System.nanoTime() > FUTURE_SLACK_NANOS) {
                    throw new IOException(path + ": heartbeat mono_ns " + monoNanos + " is in the future of this "
                            + "host's monotonic clock");
                }
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

    /**
     * Reads a heartbeat file; null if it does not exist (yet). Anything else that is not a valid
     * heartbeat (garbage, not UTF-8, a directory, FIFO or symlink, values out of range, a time in
     * the future) is an IOException; this method never blocks on a FIFO and never throws an
     * unchecked exception for what it finds.
     */
    public static Beat read(Path path) throws IOException {
        BasicFileAttributes attrs;
        try {
            attrs = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return null;
        }
        if (!attrs.isRegularFile()) {
            // Checked before the open: opening a FIFO for reading blocks until a writer comes.
            throw new IOException(path + ": not a regular file (" + (attrs.isDirectory() ? "a directory"
                    : attrs.isSymbolicLink() ? "a symlink" : "a FIFO, socket or device") + "), not a heartbeat");
        }
        if (attrs.size() > MAX_FILE_BYTES) {
            throw new IOException(path + ": " + attrs.size() + " bytes, not a heartbeat");
        }
        ByteBuffer buf = ByteBuffer.allocate(MAX_FILE_BYTES + 1);
        try (SeekableByteChannel ch = Files.newByteChannel(path,
                java.util.Set.of(StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS))) {
            while (buf.hasRemaining() && ch.read(buf) >= 0) {
                // until EOF or one byte past the limit
            }
        } catch (NoSuchFileException e) {
            return null;
        }
        if (!buf.hasRemaining()) {
            throw new IOException(path + ": larger than " + MAX_FILE_BYTES + " bytes, not a heartbeat");
        }
        buf.flip();
        Properties p = new Properties();
        try {
            String text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(buf).toString();
            p.load(new StringReader(text));
        } catch (CharacterCodingException e) {
            throw new IOException(path + ": not UTF-8, not a heartbeat", e);
        } catch (IllegalArgumentException e) { // a malformed backslash-u escape
            throw new IOException(path + ": malformed heartbeat: " + e.getMessage(), e);
        }
        if (p.getProperty("version") == null) {
            throw new IOException(path + ": not a heartbeat file (no version)");
        }
        return new Beat(p, path);
    }
}
