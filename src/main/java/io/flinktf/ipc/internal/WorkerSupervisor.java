package io.flinktf.ipc.internal;

import java.io.File;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Starts the TF worker process of one ring ({@code PYTHON -P -m flinktf_ipc.worker} with the
 * context file of docs/FORMAT.md), writes the writer side's heartbeat and watches the worker's.
 *
 * <p>A daemon thread ticks every 100 ms: it writes {@code <stem>.writer.hb} every heartbeat
 * interval, sees at once when the worker process exits, and reads {@code <stem>.worker.hb} every
 * interval; a heartbeat older than the timeout (a worker stopped with SIGSTOP, or deadlocked)
 * gets the worker killed. The thread never touches Flink: it keeps the first error, which the
 * task thread picks up through {@link #check()} (from write/flush/timers, and between the slices
 * of a ring wait through the ring writer's wait check).
 *
 * <p>A worker whose heartbeat says {@code finished} (its entry returned) no longer beats; it is
 * not hung but tearing down (TF's teardown can take tens of seconds on a loaded machine), so it
 * gets an exit grace of its own instead of the heartbeat timeout. Every verdict (a kill, a
 * failure) is logged, kept as the task's error, written to the writer heartbeat's message (what
 * {@code flinktf-ipc stat} shows) and appended to the worker's stderr file as a line starting
 * with {@link #NOTE_PREFIX}: a kill is never silent.
 */
public final class WorkerSupervisor {
    private static final Logger LOG = LoggerFactory.getLogger(WorkerSupervisor.class);
    /** Starts the supervisor's lines in a worker's stderr file (read by the demo and by users). */
    public static final String NOTE_PREFIX = "[flinktf-ipc supervisor] ";
    private static final long TICK_MS = 100;
    private static final int TAIL_LINES = 30;
    private static final int TAIL_BYTES = 8192;
    /** A worker that never wrote a heartbeat gets at least this long to start (interpreter, imports). */
    private static final long MIN_STARTUP_NS = TimeUnit.SECONDS.toNanos(30);
    /** flinktf_ipc.entry.EXIT_BAD_ENTRY: the worker cannot find its entry; no restart would help. */
    static final int EXIT_BAD_ENTRY = 4;

    /**
     * Who one process is: its task's identity and files. The options shared by every task of a
     * sink or cluster come apart, as one {@link WorkerOptions}.
     */
    public static final class Task {
        private final String role;
        private final int index;
        private final int attempt;
        private final Path stem;
        private Path ring;
        private List<Path> rings;
        private String checkpointDir;
        private String who;
        private LongSupplier recordsWritten = () -> 0L;
        private String clusterJson;
        private boolean exitZeroIsSuccess;
        private List<Path> extraFiles = Collections.emptyList();
        private Map<String, String> contextExtras = Collections.emptyMap();

        /** Task {@code role}:{@code index} in Flink attempt {@code attempt}, files {@code <stem>.<suffix>}. */
        public Task(String role, int index, int attempt, Path stem) {
            this.role = role;
            this.index = index;
            this.attempt = attempt;
            this.stem = stem;
            this.who = role + " " + index;
        }

        /** The one ring the process reads (a sink's, or a fed role's). */
        public Task ring(Path ring) {
            this.ring = ring;
            this.rings = Collections.singletonList(ring);
            return this;
        }

        /** The process has no ring (an unfed role): {@code "rings": []}. */
        public Task noRing() {
            this.ring = null;
            this.rings = Collections.emptyList();
            return this;
        }

        /** This task's checkpoint directory (the same in every attempt), or null. */
        public Task checkpointDir(String dir) {
            this.checkpointDir = dir;
            return this;
        }

        /** Starts every message: who the task is, for people. */
        public Task who(String who) {
            this.who = who;
            return this;
        }

        /** Records written so far, for the writer heartbeat's progress. */
        public Task progress(LongSupplier recordsWritten) {
            this.recordsWritten = recordsWritten;
            return this;
        }

        /**
         * A TF cluster task: the context file's {@code "cluster"} object (JSON text); exit 0 is
         * success at any time when {@code exitZeroIsSuccess} (no stream to wait for); {@code
         * extraFiles} (address, spec) go with the others at {@link #stop()}.
         */
        public Task cluster(String clusterJson, boolean exitZeroIsSuccess, List<Path> extraFiles) {
            this.clusterJson = clusterJson;
            this.exitZeroIsSuccess = exitZeroIsSuccess;
            this.extraFiles = extraFiles;
            return this;
        }

        /** More context file keys, each with its value as JSON text (inference: "output_ring", ...). */
        public Task contextExtras(Map<String, String> keysToJson) {
            this.contextExtras = keysToJson;
            return this;
        }
    }

    private final WorkerOptions o;
    private final Task t;
    private final HeartbeatFile writerHb;
    private final Path workerHb;
    private final Path contextFile;
    private final Path stdoutFile;
    private final Path stderrFile;
    private final AtomicReference<IOException> error = new AtomicReference<>();
    private final Thread monitor;
    private final Thread shutdownHook;
    private Process process;
    private long launchedAt;
    private volatile boolean streamEnded; // after the end of the stream, exit 0 is success
    private volatile boolean stopping;
    private volatile String writerState = "starting";
    private volatile String writerMessage = "";
    private volatile long lastWorkerAgeNanos = -1;
    private long finishedSeenAt; // monitor thread only; 0: the worker has not said finished
    private long lastValidBeatAt; // monitor thread only; 0: no valid worker heartbeat read yet
    /** Set when a worker that had read the whole stream and said finished was killed after its exit grace. */
    private volatile String killedAfterFinish;
    private volatile boolean badEntry;
    private boolean stopped;

    private WorkerSupervisor(WorkerOptions o, Task t) {
        this.o = o;
        this.t = t;
        Path base = t.stem;
        this.writerHb = new HeartbeatFile(companion(base, "writer.hb"), "writer");
        this.workerHb = companion(base, t.role + ".hb");
        this.contextFile = companion(base, t.role + ".json");
        Path logs = logDirOption() != null ? logDirOption() : defaultLogDir();
        String stem = companion(base, t.role).getFileName().toString();
        this.stdoutFile = logs.resolve("flinktf-" + stem + ".out");
        this.stderrFile = logs.resolve("flinktf-" + stem + ".err");
        this.monitor = new Thread(this::monitorLoop, "flinktf-worker-monitor " + stem);
        this.monitor.setDaemon(true);
        // Last resort when the JVM exits without closing the sink (embedded mini-cluster, Ctrl-C):
        // no orphan worker, no file left in /dev/shm.
        this.shutdownHook = new Thread(() -> {
            stopping = true;
            Process p = process;
            if (p != null) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
            }
            deleteFiles();
        }, "flinktf-worker-cleanup " + stem);
    }

    private static Path companion(Path stem, String suffix) {
        return stem.resolveSibling(stem.getFileName() + "." + suffix);
    }

    /** Writes the context file and the first writer heartbeat, starts the worker and its monitor. */
    public static WorkerSupervisor start(WorkerOptions o, Task t) throws IOException {
        if (o.python() == null || t.rings == null) {
            throw new IllegalArgumentException("WorkerSupervisor: the interpreter and the rings must be decided");
        }
        WorkerSupervisor w = new WorkerSupervisor(o, t);
        try {
            w.launch();
        } catch (IOException | RuntimeException e) {
            w.stop();
            throw new IOException(t.who + ": cannot start the worker (" + o.python() + " -P -m flinktf_ipc.worker, entry "
                    + o.entry() + "): " + e.getMessage(), e);
        }
        return w;
    }

    private void launch() throws IOException {
        Files.createDirectories(stdoutFile.getParent());
        if (t.checkpointDir != null) {
            Files.createDirectories(Paths.get(t.checkpointDir));
        }
        Files.write(contextFile, contextJson().getBytes(StandardCharsets.UTF_8));
        // Fresh files, opened in append mode by the worker: the supervisor's notes land after its output.
        Files.deleteIfExists(stdoutFile);
        Files.deleteIfExists(stderrFile);
        writerHb.write("starting", "", progress());
        ProcessBuilder pb = new ProcessBuilder(o.python(), "-P", "-m", "flinktf_ipc.worker");
        pb.environment().put("FLINKTF_WORKER_CONTEXT", contextFile.toString());
        pb.environment().put("PYTHONUNBUFFERED", "1");
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(stdoutFile.toFile()));
        pb.redirectError(ProcessBuilder.Redirect.appendTo(stderrFile.toFile()));
        pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        Runtime.getRuntime().addShutdownHook(shutdownHook);
        launchedAt = System.nanoTime();
        process = pb.start();
        LOG.info("{}: started worker process {} ({} -P -m flinktf_ipc.worker, entry {}, files {}.*, log {})", t.who,
                process.pid(), o.python(), o.entry(), t.stem,
                stderrFile);
        writerState = "running";
        writerHb.write(writerState, "", progress());
        monitor.start();
    }

    private String contextJson() {
        StringBuilder b = new StringBuilder(512);
        b.append("{\"version\": 1, \"entry\": ").append(json(o.entry()));
        b.append(", \"rings\": [");
        List<Path> rings = t.rings;
        for (int i = 0; i < rings.size(); i++) {
            b.append(i == 0 ? "" : ", ").append(json(rings.get(i).toString()));
        }
        b.append(']');
        b.append(", \"role\": ").append(json(t.role));
        b.append(", \"index\": ").append(t.index);
        b.append(", \"attempt\": ").append(t.attempt);
        b.append(", \"heartbeat\": ").append(json(workerHb.toString()));
        b.append(", \"peer_heartbeat\": ").append(json(writerHb.path().toString()));
        b.append(", \"heartbeat_interval\": ").append(o.heartbeatIntervalNanos() / 1e9);
        b.append(", \"heartbeat_timeout\": ").append(o.heartbeatTimeoutNanos() / 1e9);
        if (t.checkpointDir != null) {
            b.append(", \"checkpoint_dir\": ").append(json(t.checkpointDir));
        }
        if (t.clusterJson != null) {
            b.append(", \"cluster\": ").append(t.clusterJson);
        }
        for (Map.Entry<String, String> e : t.contextExtras.entrySet()) {
            b.append(", ").append(json(e.getKey())).append(": ").append(e.getValue());
        }
        b.append(", \"properties\": {");
        String sep = "";
        for (Map.Entry<String, String> e : o.properties().entrySet()) {
            b.append(sep).append(json(e.getKey())).append(": ").append(json(e.getValue()));
            sep = ", ";
        }
        return b.append("}}\n").toString();
    }

    /** A JSON string literal (quotes, backslashes and control characters escaped). */
    public static String json(String v) {
        StringBuilder b = new StringBuilder(v.length() + 2).append('"');
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            if (c == '"' || c == '\\') {
                b.append('\\').append(c);
            } else if (c < 0x20) {
                b.append(String.format("\\u%04x", (int) c));
            } else {
                b.append(c);
            }
        }
        return b.append('"').toString();
    }

    private Path logDirOption() {
        return o.logDir() == null ? null : Paths.get(o.logDir());
    }

    private static Path defaultLogDir() {
        // Flink sets log.file for its processes: the worker's output goes beside the TaskManager log.
        String log = System.getProperty("log.file");
        if (log != null && !log.isEmpty()) {
            Path dir = Paths.get(log).toAbsolutePath().getParent();
            if (dir != null && Files.isDirectory(dir) && Files.isWritable(dir)) {
                return dir;
            }
        }
        return Paths.get(System.getProperty("java.io.tmpdir"), "flinktf-ipc-workers-" + System.getProperty("user.name"));
    }

    private Map<String, Long> progress() {
        return Collections.singletonMap("records", t.recordsWritten.getAsLong());
    }

    private void monitorLoop() {
        try {
            watch();
        } catch (RuntimeException | Error e) {
            // A monitor that died would leave the worker unwatched: that fails the task, loudly.
            fail(t.who + ": the worker monitor failed (" + e + "); killed the worker. " + tail());
            kill();
        }
    }

    private void watch() {
        long nextBeat = System.nanoTime() + o.heartbeatIntervalNanos();
        long nextCheck = nextBeat;
        while (!stopping) {
            long now = System.nanoTime();
            if (now - nextBeat >= 0) {
                beat();
                nextBeat = now + o.heartbeatIntervalNanos();
            }
            if (!process.isAlive()) {
                int status = process.exitValue();
                if (!exitIsSuccess(status)) {
                    failExit(status);
                }
                return; // nothing left to watch; the task thread picks the error up
            }
            if (now - nextCheck >= 0) {
                nextCheck = now + o.heartbeatIntervalNanos();
                checkWorkerHeartbeat(now);
            }
            try {
                Thread.sleep(TICK_MS);
            } catch (InterruptedException e) {
                return; // stop() interrupts
            }
        }
    }

    private void beat() {
        try {
            writerHb.write(writerState, writerMessage, progress());
        } catch (IOException e) {
            fail("cannot write the writer heartbeat " + writerHb.path() + ": " + e);
        }
    }

    private void checkWorkerHeartbeat(long now) {
        HeartbeatFile.Beat beat;
        String invalid = null;
        try {
            beat = HeartbeatFile.read(workerHb);
        } catch (IOException e) {
            beat = null; // garbage, a directory, a FIFO...: no valid heartbeat, judged like a missing one
            invalid = e.getMessage();
        }
        if (beat == null) {
            boolean started = lastValidBeatAt != 0;
            long waited = now - (started ? lastValidBeatAt : launchedAt);
            long limit = started ? o.heartbeatTimeoutNanos() : Math.max(o.heartbeatTimeoutNanos(), MIN_STARTUP_NS);
            if (waited > limit) {
                String what = invalid != null ? " has no valid heartbeat (" + invalid + ")"
                        : " wrote no heartbeat (" + workerHb + ")";
                fail(describe() + what + " for " + seconds(waited) + (started ? "" : " since its start")
                        + "; killed it. " + tail());
                kill();
            }
            return;
        }
        lastValidBeatAt = now;
        long age = beat.ageNanos();
        lastWorkerAgeNanos = age;
        if ("finished".equals(beat.state) || "failed".equals(beat.state)) {
            // It said its last word and stopped beating: it is exiting, not hung.
            checkExitGrace(now, beat.state);
            return;
        }
        // A worker still loading its entry and TensorFlow may miss beats (a big native library
        // loads under the GIL): it gets the startup grace, as one that has not beaten yet.
        long limit = "starting".equals(beat.state) ? Math.max(o.heartbeatTimeoutNanos(), MIN_STARTUP_NS)
                : o.heartbeatTimeoutNanos();
        if (age > limit && process.isAlive()) {
            fail(describe() + " is hung: its heartbeat is " + seconds(age) + " old (timeout "
                    + seconds(limit) + "; state " + beat.state + ", stopped with SIGSTOP or "
                    + "deadlocked?); killed it. " + tail());
            kill();
        }
    }

    private void checkExitGrace(long now, String state) {
        if (finishedSeenAt == 0) {
            finishedSeenAt = now | 1; // never 0
            return;
        }
        long waited = now - finishedSeenAt;
        if (waited <= o.exitGraceNanos() || !process.isAlive()) {
            return;
        }
        String what = describe() + " said " + state + " " + seconds(waited) + " ago but did not exit within its exit "
                + "grace (" + seconds(o.exitGraceNanos()) + ", the exit grace option); killed it.";
        if ("finished".equals(state) && workDone()) {
            // Its entry returned after reading the whole stream: nothing is lost, the task succeeds,
            // but the kill is said (log, heartbeat message, worker stderr). Set before the kill:
            // the task thread judges the exit status as soon as the process is gone.
            killedAfterFinish = what;
            writerMessage = what;
            kill();
            LOG.warn("{} The task succeeds: the worker had read the whole stream.", what);
            note(what + " The task succeeds: the worker had read the whole stream.");
        } else {
            fail(what + " " + tail());
            kill();
        }
    }

    /** Whether the worker's exit with {@code status} ends its part well. */
    private boolean exitIsSuccess(int status) {
        return workDone() && (status == 0 || killedAfterFinish != null);
    }

    /** Whether an exit now ends the worker's part: after the end of its stream, or at any time for a role without one. */
    private boolean workDone() {
        return streamEnded || t.exitZeroIsSuccess;
    }

    /** The message when a worker that finished was killed after its exit grace (the task succeeded), else null. */
    public String killedAfterFinish() {
        return killedAfterFinish;
    }

    /** Appends one line of the supervisor's to the worker's stderr file, best effort. */
    private void note(String text) {
        String line = NOTE_PREFIX + java.time.Instant.now() + " " + text.replace('\n', ' ') + "\n";
        try {
            Files.write(stderrFile, line.getBytes(StandardCharsets.UTF_8), java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.APPEND);
        } catch (IOException e) {
            LOG.debug("cannot append to {}", stderrFile, e);
        }
    }

    private void kill() {
        // A hung process does not act on SIGTERM (a stopped one cannot): SIGKILL at once.
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
    }

    private String describe() {
        return t.who + ": worker process " + process.pid() + " (role " + t.role + ", index " + t.index + ", attempt "
                + t.attempt + (t.ring != null ? ", ring " + t.ring : ", files " + t.stem + ".*") + ")";
    }

    private String exitMessage(int status) {
        String cause;
        if (status == 0) {
            cause = "exited with status 0 before the end of the stream (its entry returned early)";
        } else if (status == EXIT_BAD_ENTRY) {
            cause = "exited with status 4: its entry cannot be loaded (the job fails without restarts: "
                    + "every attempt would fail the same way)";
        } else if (status == 3) {
            cause = "exited with status 3: PeerLost (it lost the writer side, or the stream was aborted)";
        } else if (status > 128) {
            cause = "was killed by signal " + (status - 128);
        } else {
            cause = "exited with status " + status;
        }
        long age = lastWorkerAgeNanos;
        return describe() + " " + cause + "; last heartbeat age " + (age < 0 ? "n/a" : seconds(age)) + ". " + tail();
    }

    private static String seconds(long nanos) {
        return String.format("%.1f s", nanos / 1e9);
    }

    /** The last lines of the worker's stderr, for messages. */
    public String tail() {
        try (RandomAccessFile f = new RandomAccessFile(stderrFile.toFile(), "r")) {
            long len = f.length();
            int n = (int) Math.min(len, TAIL_BYTES);
            byte[] b = new byte[n];
            f.seek(len - n);
            f.readFully(b);
            if (n == 0) {
                return "stderr (" + stderrFile + ") is empty.";
            }
            List<String> lines = new ArrayList<>(Arrays.asList(new String(b, StandardCharsets.UTF_8).split("\n")));
            if (lines.size() > TAIL_LINES) {
                lines = lines.subList(lines.size() - TAIL_LINES, lines.size());
            }
            return "stderr (" + stderrFile + ") ends with:\n" + String.join("\n", lines);
        } catch (IOException e) {
            return "(no stderr: " + e.getMessage() + ")";
        }
    }

    private void failExit(int status) {
        if (status == EXIT_BAD_ENTRY) {
            badEntry = true;
        }
        fail(exitMessage(status));
    }

    /**
     * Throws when the worker could not load its entry: a {@code SuppressRestartsException}, so
     * Flink fails the job at once instead of spending the restart budget on the same error.
     */
    public void checkUnrecoverable() {
        IOException e = error.get();
        if (badEntry && e != null) {
            throw new org.apache.flink.runtime.execution.SuppressRestartsException(new IOException(e.getMessage(), e));
        }
    }

    private void fail(String message) {
        if (error.compareAndSet(null, new IOException(message))) {
            writerMessage = message;
            LOG.warn(message);
            // Only the verdict, not the stderr tail it quotes: the file already holds that.
            int cut = message.indexOf(" stderr (");
            note(cut < 0 ? message : message.substring(0, cut));
        }
    }

    /** Throws the monitor's first error, if any; called from the task thread. */
    public void check() throws IOException {
        checkUnrecoverable();
        IOException e = error.get();
        if (e != null) {
            throw new IOException(e.getMessage(), e);
        }
    }

    /**
     * After the ring reported its reader gone or closed: gives the monitor up to two heartbeat
     * intervals to see the worker's exit, and returns what it found (with the stderr tail), or
     * null when the worker still runs.
     */
    public IOException explain() throws InterruptedException {
        long deadline = System.nanoTime() + Math.max(2 * o.heartbeatIntervalNanos(), TimeUnit.SECONDS.toNanos(1));
        while (error.get() == null && System.nanoTime() - deadline < 0) {
            if (!process.isAlive() && !monitor.isAlive()) {
                break;
            }
            Thread.sleep(20);
        }
        IOException e = error.get();
        if (e == null && !process.isAlive()) {
            failExit(process.exitValue());
            e = error.get();
        }
        return e;
    }

    /**
     * The stream ended (the ring is finished): waits until the worker exits, while the monitor
     * keeps watching its heartbeat. Status 0 is success; anything else fails with the cause.
     */
    public void awaitExit() throws IOException, InterruptedException {
        endOfStream();
        while (!process.waitFor(TICK_MS, TimeUnit.MILLISECONDS)) {
            check();
        }
        monitor.join(TimeUnit.NANOSECONDS.toMillis(o.heartbeatIntervalNanos()) + 1000);
        check();
        int status = process.exitValue();
        if (!exitIsSuccess(status)) {
            failExit(status);
            check();
        }
    }

    /** The stream ended: from now on exit 0 is success; the writer heartbeat says {@code finished}. */
    public void endOfStream() {
        streamEnded = true;
        writerState = "finished";
        beat();
    }

    /**
     * Without waiting: false while the worker runs; true once it exited with status 0 where that is
     * success (after {@link #endOfStream}, or at any time with {@code exitZeroIsSuccess}); any other
     * exit throws, with the cause (status or signal, heartbeat age, stderr tail).
     */
    public boolean exitedCleanly() throws IOException {
        check();
        if (process.isAlive()) {
            return false;
        }
        int status = process.exitValue();
        if (!exitIsSuccess(status)) {
            failExit(status);
            check();
        }
        return true;
    }

    public long pid() {
        return process == null ? -1 : process.pid();
    }

    public Path stderrFile() {
        return stderrFile;
    }

    /**
     * Terminates the worker if it still runs (SIGTERM, then SIGKILL after the grace period), stops
     * the monitor and removes the context and heartbeat files. Idempotent; works on an interrupted
     * thread (a cancelled task) and keeps its interrupt status.
     */
    public void stop() {
        if (stopped) {
            return;
        }
        stopped = true;
        stopping = true;
        boolean interrupted = Thread.interrupted();
        try {
            monitor.interrupt();
            Process p = process;
            if (p != null && p.isAlive()) {
                List<ProcessHandle> children = new ArrayList<>();
                p.descendants().forEach(children::add);
                p.destroy();
                if (!waitFor(p, o.shutdownGraceNanos())) {
                    p.destroyForcibly();
                    waitFor(p, TimeUnit.SECONDS.toNanos(10));
                }
                children.forEach(ProcessHandle::destroyForcibly);
            }
            if (monitor.isAlive()) {
                monitor.join(5000);
            }
        } catch (InterruptedException e) {
            interrupted = true;
            if (process != null) {
                process.destroyForcibly();
            }
        } finally {
            deleteFiles();
            try {
                Runtime.getRuntime().removeShutdownHook(shutdownHook);
            } catch (IllegalStateException e) {
                // the JVM is shutting down: the hook runs anyway
            }
            if (interrupted) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static boolean waitFor(Process p, long nanos) throws InterruptedException {
        return p.waitFor(nanos, TimeUnit.NANOSECONDS);
    }

    private void deleteFiles() {
        List<Path> files = new ArrayList<>(t.extraFiles);
        files.add(contextFile);
        files.add(workerHb);
        for (Path p : files) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException e) {
                // best effort: a leftover small file is reported by flinktf-ipc stat
            }
        }
        try {
            writerHb.delete(); // under its lock, so after a heartbeat write in progress, not before
        } catch (IOException e) {
            // best effort
        }
        // A temp file of a heartbeat write cut short (the worker killed mid-write).
        String prefix = workerHb.getFileName() + ".tmp-";
        try (java.util.stream.Stream<Path> listing = Files.list(workerHb.getParent())) {
            listing.filter(f -> f.getFileName().toString().startsWith(prefix)).forEach(f -> f.toFile().delete());
        } catch (IOException | java.io.UncheckedIOException e) {
            // best effort
        }
    }
}
