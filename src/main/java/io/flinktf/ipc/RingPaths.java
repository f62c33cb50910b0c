package io.flinktf.ipc;

import java.io.IOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.attribute.PosixFilePermissions;

/** Where rings live: the per-user directory and the per-subtask file names readers rely on. */
public final class RingPaths {
    private RingPaths() {}

    /**
     * The default base directory, as the Python side's {@code default_ring_dir()}: {@code
     * $FLINKTF_IPC_DIR} if set, else {@code /dev/shm/flinktf-<uid>}.
     */
    public static Path defaultDirectory() {
        String env = System.getenv("FLINKTF_IPC_DIR");
        if (env != null && !env.isEmpty()) {
            return Paths.get(env);
        }
        return Paths.get("/dev/shm", "flinktf-" + currentUid());
    }

    /** {@code <base>/<name>-<subtask>.ring}: the ring of one parallel subtask (attempt 0). */
    public static Path ringPath(Path base, String name, int subtask) {
        return ringPath(base, name, subtask, 0);
    }

    /**
     * The ring of one attempt of one parallel subtask: {@code <base>/<name>-<subtask>.ring} for
     * attempt 0, {@code <base>/<name>-<subtask>.attempt<k>.ring} for attempt k &gt; 0, so a
     * restarted attempt gets a fresh ring (and fresh heartbeat files next to it) while the
     * first attempt keeps the name readers already use.
     */
    public static Path ringPath(Path base, String name, int subtask, int attempt) {
        checkName(name);
        if (subtask < 0) {
            throw new IllegalArgumentException("subtask index must be >= 0, got " + subtask);
        }
        if (attempt < 0) {
            throw new IllegalArgumentException("attempt must be >= 0, got " + attempt);
        }
        return base.resolve(name + "-" + subtask + (attempt == 0 ? "" : ".attempt" + attempt) + ".ring");
    }

    /**
     * The directory of one job's rings: {@code <base>/job-<jobId>}. A sink with workers (or with
     * {@code setPerJobDirectory(true)}) writes there, so two jobs with the same ring name never meet,
     * and a job's files are found, and cleaned, together.
     */
    public static Path jobDirectory(Path base, String jobId) {
        if (jobId == null || !jobId.matches("[A-Za-z0-9_-]{1,64}")) {
            throw new IllegalArgumentException("job id must be 1-64 characters of [A-Za-z0-9_-], got '" + jobId + "'");
        }
        return base.resolve(JOB_DIR_PREFIX + jobId);
    }

    /**
     * Removes a job's directory once it is empty: the last task of the job on this host to leave
     * does it. One still in use (another task's files are there) stays; {@code base} itself always does.
     */
    public static void removeIfEmpty(Path base, Path dir) {
        if (!dir.equals(base)) {
            try {
                Files.deleteIfExists(dir);
            } catch (IOException e) {
                // not empty: another task of the job still runs here
            }
        }
    }

    /** Per-job directories are {@code job-<job id>}: {@code flinktf-ipc stat} and {@code clean} know them so. */
    public static final String JOB_DIR_PREFIX = "job-";

    /**
     * Creates (mode 0700) and checks {@code base}, then {@code dir} inside it if different: a
     * per-job directory must not make its parent with default permissions.
     */
    public static void ensureDirectories(Path base, Path dir) throws IOException {
        ensureDirectory(base);
        if (!dir.equals(base)) {
            ensureDirectory(dir);
        }
    }

    /**
     * A file next to a ring: for {@code <stem>.ring}, {@code <stem>.<suffix>}; the heartbeat files
     * are {@code <stem>.writer.hb} and {@code <stem>.worker.hb} (docs/FORMAT.md).
     */
    public static Path sibling(Path ring, String suffix) {
        String f = ring.getFileName().toString();
        String stem = f.endsWith(".ring") ? f.substring(0, f.length() - ".ring".length()) : f;
        return ring.resolveSibling(stem + "." + suffix);
    }

    /** The heartbeat file of {@code role} ({@code writer}, {@code worker}) for {@code ring}. */
    public static Path heartbeatPath(Path ring, String role) {
        return sibling(ring, role + ".hb");
    }

    /** A ring name becomes part of a file name: letters, digits, '.', '_', '-' only. */
    static void checkName(String name) {
        if (name == null || name.isEmpty() || name.length() > 200 || !name.matches("[A-Za-z0-9._-]+")
                || name.startsWith(".")) {
            throw new IllegalArgumentException("ring name must be 1-200 characters of [A-Za-z0-9._-] "
                    + "not starting with '.', got '" + name + "'");
        }
    }

    static int currentUid() {
        try {
            return (Integer) Files.getAttribute(Paths.get("/proc/self"), "unix:uid");
        } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
            throw new IllegalStateException("cannot determine the current uid", e);
        }
    }

    /**
     * Creates {@code dir} with mode 0700 if missing; refuses a symlink, a directory owned by
     * someone else or one open to group/others (another user could then swap ring files under us).
     * The same rule as the Python side's.
     */
    public static void ensureDirectory(Path dir) throws IOException {
        if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
            if (dir.getParent() != null && !Files.exists(dir.getParent())) {
                Files.createDirectories(dir.getParent());
            }
            try {
                Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            } catch (FileAlreadyExistsException e) {
                // created concurrently (another subtask): checked below
            }
        }
        if (Files.isSymbolicLink(dir)) {
            throw new IOException("ring directory " + dir + " is a symlink; it must be a real directory");
        }
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException("ring directory " + dir + " is not a directory");
        }
        int owner = (Integer) Files.getAttribute(dir, "unix:uid", LinkOption.NOFOLLOW_LINKS);
        if (owner != currentUid()) {
            throw new IOException("ring directory " + dir + " belongs to uid " + owner + ", not to us ("
                    + currentUid() + ")");
        }
        int mode = (Integer) Files.getAttribute(dir, "unix:mode", LinkOption.NOFOLLOW_LINKS);
        if ((mode & 077) != 0) {
            throw new IOException("ring directory " + dir + " must have mode 0700, has "
                    + Integer.toOctalString(mode & 0777));
        }
    }
}
