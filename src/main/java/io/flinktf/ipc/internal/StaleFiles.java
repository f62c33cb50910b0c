package io.flinktf.ipc.internal;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

/**
 * Finds and removes the files of rings whose processes are all gone (a SIGKILLed TaskManager runs
 * no cleanup): the same rule as {@code flinktf-ipc clean} (flinktf_ipc/cleanup.py), a test compares.
 *
 * <p>Files are grouped by stem: {@code <stem>.ring}, {@code <stem>.<role>.hb}, {@code
 * <stem>.<role>.json} and the temp files {@code <file>.tmp-*} of an interrupted heartbeat write. A
 * group is stale when no process named in it is alive: the ring's writer and reader (pid and start
 * time in its header) and the writer of each heartbeat file. A ring whose header is not complete
 * yet (being created) counts as live for {@link #GRACE_NANOS}. Per-job directories ({@code job-*})
 * left empty are removed once older than the same grace, or at once when the sweep emptied them.
 */
public final class StaleFiles {
    /** A file younger than this whose owner cannot be read yet is left alone (being created). */
    static final long GRACE_NANOS = TimeUnit.SECONDS.toNanos(30);

    private StaleFiles() {}

    /** One stale group: its stem, the dead pids it named, and the files removed. */
    public static final class Removed {
        public final Path dir;
        public final String stem;
        public final List<Long> deadPids;
        public final List<Path> files;

        Removed(Path dir, String stem, List<Long> deadPids, List<Path> files) {
            this.dir = dir;
            this.stem = stem;
            this.deadPids = deadPids;
            this.files = files;
        }

        @Override
        public String toString() {
            List<String> names = new ArrayList<>();
            files.forEach(f -> names.add(f.getFileName().toString()));
            return dir + ": " + names + " (processes gone: " + deadPids + ")";
        }
    }

    /**
     * Removes the stale groups in {@code base} and in its {@code job-*} directories, and the empty
     * {@code job-*} directories older than the grace (never {@code keep}). Best effort: a file
     * that cannot be read or removed is left. Returns what was removed.
     */
    public static List<Removed> sweep(Path base, Path keep) {
        List<Removed> out = new ArrayList<>();
        sweepDir(base, out);
        try (DirectoryStream<Path> dirs = Files.newDirectoryStream(base, "job-*")) {
            for (Path d : dirs) {
                if (!Files.isDirectory(d, LinkOption.NOFOLLOW_LINKS)) {
                    continue;
                }
                int before = out.size();
                sweepDir(d, out);
                boolean emptied = out.size() > before;
                if (!d.equals(keep) && isEmpty(d) && (emptied || olderThanGrace(d))) {
                    try {
                        Files.delete(d);
                    } catch (IOException e) {
                        // not empty any more (a job starting), or gone already
                    }
                }
            }
        } catch (IOException e) {
            // no base directory yet: nothing to sweep
        }
        return out;
    }

    /** The stem a file belongs to, or null for a file that is not ours. */
    static String stemOf(String name) {
        int tmp = name.indexOf(".tmp-");
        if (tmp > 0) {
            name = name.substring(0, tmp);
        }
        if (name.endsWith(".ring")) {
            return name.substring(0, name.length() - ".ring".length());
        }
        if (name.endsWith(".hb") || name.endsWith(".json")) {
            String s = name.substring(0, name.lastIndexOf('.'));
            int role = s.lastIndexOf('.');
            return role > 0 ? s.substring(0, role) : null;
        }
        return null;
    }

    private static void sweepDir(Path dir, List<Removed> out) {
        Map<String, List<Path>> groups = new TreeMap<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
            for (Path f : files) {
                String stem = stemOf(f.getFileName().toString());
                if (stem != null && Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)) {
                    groups.computeIfAbsent(stem, k -> new ArrayList<>()).add(f);
                }
            }
        } catch (IOException e) {
            return;
        }
        for (Map.Entry<String, List<Path>> g : groups.entrySet()) {
            List<Long> dead = new ArrayList<>();
            if (isStale(g.getValue(), dead)) {
                List<Path> removed = new ArrayList<>();
                for (Path f : g.getValue()) {
                    try {
                        if (Files.deleteIfExists(f)) {
                            removed.add(f);
                        }
                    } catch (IOException e) {
                        // best effort
                    }
                }
                if (!removed.isEmpty()) {
                    out.add(new Removed(dir, g.getKey(), dead, removed));
                }
            }
        }
    }

    /** True when no process of the group lives; collects the dead pids it named. */
    static boolean isStale(List<Path> group, List<Long> dead) {
        boolean unknownYoung = false;
        for (Path f : group) {
            String name = f.getFileName().toString();
            long[][] owners;
            try {
                if (name.endsWith(".ring")) {
                    owners = ringOwners(f);
                } else if (name.endsWith(".hb")) {
                    HeartbeatFile.Beat b = HeartbeatFile.read(f);
                    owners = b == null ? new long[0][] : new long[][] {{b.pid, b.startTime}};
                } else {
                    continue; // context and temp files name no process: they follow their group
                }
            } catch (IOException | RuntimeException e) {
                owners = null;
            }
            if (owners == null) { // unreadable: being written, or not ours
                if (!olderThanGrace(f)) {
                    unknownYoung = true;
                }
                continue;
            }
            for (long[] o : owners) {
                if (ProcessInfo.isAlive(o[0], o[1])) {
                    return false;
                }
                dead.add(o[0]);
            }
        }
        // A group naming no process at all (a lone context or temp file) is stale once it is old.
        if (dead.isEmpty()) {
            for (Path f : group) {
                if (!olderThanGrace(f)) {
                    return false;
                }
            }
        }
        return !unknownYoung;
    }

    /** {writer, reader} pid and start time from a ring header; null when the header is incomplete. */
    private static long[][] ringOwners(Path ring) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(ring, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            while (h.hasRemaining() && ch.read(h) >= 0) {
                // the whole header
            }
        } catch (NoSuchFileException e) {
            return new long[0][];
        }
        if (h.position() < 512 || h.getLong(Layout.MAGIC_OFF) != Layout.MAGIC || h.getInt(Layout.VERSION_OFF) == 0) {
            return null;
        }
        long wpid = h.getInt(Layout.WRITER_PID_OFF) & 0xffffffffL;
        long rpid = h.getInt(Layout.READER_PID_OFF) & 0xffffffffL;
        long[] writer = {wpid, h.getLong(Layout.WRITER_START_OFF)};
        if (rpid == 0) {
            return new long[][] {writer};
        }
        return new long[][] {writer, {rpid, h.getLong(Layout.READER_START_OFF)}};
    }

    private static boolean isEmpty(Path dir) {
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dir)) {
            return !s.iterator().hasNext();
        } catch (IOException e) {
            return false;
        }
    }

    private static boolean olderThanGrace(Path p) {
        try {
            long mtime = Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS).toMillis();
            return System.currentTimeMillis() - mtime > TimeUnit.NANOSECONDS.toMillis(GRACE_NANOS);
        } catch (IOException e) {
            return false;
        }
    }
}
