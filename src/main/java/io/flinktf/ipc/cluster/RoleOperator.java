package io.flinktf.ipc.cluster;

import io.flinktf.ipc.RingException;
import io.flinktf.ipc.RingPaths;
import io.flinktf.ipc.RingTimeoutException;
import io.flinktf.ipc.RingWriter;
import io.flinktf.ipc.arrow.ArrowBatchEncoder;
import io.flinktf.ipc.internal.WorkerSupervisor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.api.common.operators.ProcessingTimeService.ProcessingTimeCallback;
import org.apache.flink.runtime.operators.coordination.OperatorEvent;
import org.apache.flink.runtime.operators.coordination.OperatorEventGateway;
import org.apache.flink.runtime.operators.coordination.OperatorEventHandler;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.StreamOperatorParameters;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.runtime.tasks.mailbox.TaskMailbox;
import org.apache.flink.types.Row;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One TF task: a subtask of a role operator starts, watches and ends one Python process, and
 * (fed roles) writes its input rows into the process's ring as Arrow record batches.
 *
 * <p>Life of a task (CLUSTER-PROTOCOL.md): at open the ring (fed: codec header and schema
 * first) and the process start ({@link WorkerSupervisor}, context file with the {@code cluster}
 * key); a poll timer waits for the process's address file and sends {@code Register} to the
 * coordinator; the {@code Spec} event becomes the spec file the process waits for. Rows are
 * batched and written all along (a full ring, which is normal before the process has its spec,
 * is waited out while yielding the mailbox, so events and timers still run). At end of input the
 * ring is finished and the task stays alive, yielding, until its process exits: exit 0 then is
 * success ({@code Finished} to the coordinator), as is the end that a {@code Stop} event asks for
 * (ps roles). Anything else fails the task; the coordinator restarts the whole cluster.
 *
 * <p>Everything runs in the task's mailbox thread. Output rows (issue 10) are not produced yet:
 * a result ring read by {@code io.flinktf.ipc.RingReader} plugs in at {@link #pollOutput()}.
 */
final class RoleOperator extends AbstractStreamOperator<Row>
        implements OneInputStreamOperator<Row, Row>, BoundedOneInput, OperatorEventHandler, ProcessingTimeCallback {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(RoleOperator.class);
    /** The poll timer's period: the address file, the process's state, the registration deadline. */
    static final long POLL_MS = 25;
    /** One slice of a wait on the ring before the mailbox gets a turn. */
    private static final long SLICE_NS = TimeUnit.MILLISECONDS.toNanos(20);
    private static final int MAX_ADDRESS_BYTES = 4096;

    private final RoleSettings settings;
    private final transient OperatorEventGateway coordinator;
    /** Yields to every mail of the task (events come with the lowest priority, so this one must too). */
    private final transient MailboxExecutor mailbox;

    private transient String who;
    private transient int index;
    private transient int attempt;
    private transient TaskFiles files;
    private transient RingWriter ring; // null: not fed
    private transient ArrowBatchEncoder encoder;
    private transient WorkerSupervisor process;
    private transient long startedNanos;
    private transient boolean registered;
    private transient int epoch = -1;
    private transient boolean inputEnded;
    private transient boolean done; // the process ended as it should (or was stopped)
    private transient boolean writing; // in a ring wait that yields: the linger timer keeps off
    private transient long firstRowTime;
    private transient boolean lingerArmed;
    private transient boolean closed;

    RoleOperator(StreamOperatorParameters<Row> parameters, RoleSettings settings, OperatorEventGateway coordinator) {
        super(parameters);
        this.settings = settings;
        this.coordinator = coordinator;
        this.mailbox = parameters.getContainingTask().getMailboxExecutorFactory().createExecutor(TaskMailbox.MIN_PRIORITY);
    }

    @Override
    public void open() throws Exception {
        super.open();
        TFClusterConfig c = settings.config;
        index = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        attempt = getRuntimeContext().getTaskInfo().getAttemptNumber();
        who = "TF cluster '" + c.name() + "' task " + settings.role + ":" + index + " attempt " + attempt;
        files = new TaskFiles(settings.baseDirectory(), c.name(), settings.role, index, attempt);
        RingPaths.ensureDirectory(settings.baseDirectory()); // mode 0700, ours: the spec and address live there
        if (settings.fed()) {
            ring = createRing();
            encoder = new ArrowBatchEncoder(settings.schema);
            // The stream is self-describing from its first record: every attempt's fresh ring too.
            writeRecord(ArrowBatchEncoder.codecHeader("{}"));
            writeRecord(settings.schema.schemaMessage());
            ring.publish();
        }
        startProcess();
        armPoll();
    }

    private RingWriter createRing() throws IOException {
        TFClusterConfig c = settings.config;
        try {
            return RingWriter.create(files.ring, c.ringCapacity(), 64);
        } catch (FileAlreadyExistsException e) {
            try {
                RingWriter.removeStale(files.ring); // a file of a gone writer; a live one's throws
                LOG.info("{}: replaced the stale ring {}", who, files.ring);
                return RingWriter.create(files.ring, c.ringCapacity(), 64);
            } catch (IOException e2) {
                throw new IOException(who + ": cannot create the ring: " + e2.getMessage(), e2);
            }
        } catch (IOException e) {
            throw new IOException(who + ": cannot create the ring " + files.ring + ": " + e.getMessage(), e);
        }
    }

    private void startProcess() throws IOException {
        TFClusterConfig c = settings.config;
        RingWriter r = ring;
        WorkerSupervisor.Task task = new WorkerSupervisor.Task(settings.role, index, attempt, files.stem)
                .checkpointDir(c.checkpointDir() == null ? null
                        : Paths.get(c.checkpointDir(), settings.role + "-" + index).toString())
                .who(who)
                .progress(r == null ? () -> 0L : r::recordsWritten)
                // an unfed role's process is done when its entry returns, whenever that is
                .cluster(clusterJson(), r == null, Arrays.asList(files.address, files.spec, files.companion("spec.json.tmp")));
        if (r != null) {
            task.ring(files.ring);
        } else {
            task.noRing();
        }
        // Left by a task of the same name whose TaskManager died: its address is not this process's.
        Files.deleteIfExists(files.address);
        Files.deleteIfExists(files.spec);
        try {
            process = WorkerSupervisor.start(settings.worker, task);
        } catch (IOException e) {
            if (ring != null) {
                ring.abort();
                ring.detachAndRemove();
            }
            throw e;
        }
        startedNanos = System.nanoTime();
        if (ring != null) {
            ring.setWaitCheck(process::check); // a hung process ends a ring wait at once
        }
    }

    /** The context file's "cluster" object (docs/FORMAT.md "TF cluster"). */
    private String clusterJson() {
        TFClusterConfig c = settings.config;
        StringBuilder b = new StringBuilder("{\"name\": ").append(Json.quote(c.name())).append(", \"roles\": {");
        String sep = "";
        for (Map.Entry<String, Integer> e : c.roleCounts().entrySet()) {
            b.append(sep).append(Json.quote(e.getKey())).append(": ").append(e.getValue());
            sep = ", ";
        }
        b.append("}, \"chief\": ").append(Json.quote(c.chief()));
        b.append(", \"address_file\": ").append(Json.quote(files.address.toString()));
        b.append(", \"spec_file\": ").append(Json.quote(files.spec.toString()));
        return b.append('}').toString();
    }

    // ---- input: rows into Arrow batches into the ring ----

    @Override
    public void processElement(StreamRecord<Row> element) throws Exception {
        if (done) {
            return; // stopped by the AM: the work is over, the rest of the input has no reader
        }
        process.check();
        encoder.add(element.getValue());
        if (encoder.rows() == 1) {
            firstRowTime = getProcessingTimeService().getCurrentProcessingTime();
            if (!lingerArmed) {
                lingerArmed = true;
                getProcessingTimeService().registerTimer(firstRowTime + settings.config.lingerMillis(), this::onLinger);
            }
        }
        if (encoder.rows() >= settings.config.batchRows() || encoder.bufferBytes() >= settings.config.batchBytes()) {
            writeBatch();
        }
    }

    private void onLinger(long time) throws Exception {
        lingerArmed = false;
        if (encoder.rows() == 0 || done || ring.isFinished()) {
            return;
        }
        long due = firstRowTime + settings.config.lingerMillis();
        if (time >= due && !writing) {
            writeBatch();
        } else { // a younger batch, or a write in progress that yields to this timer: look again later
            lingerArmed = true;
            getProcessingTimeService().registerTimer(Math.max(due, time + 1), this::onLinger);
        }
    }

    private void writeBatch() throws Exception {
        if (encoder.rows() == 0 || done) {
            return;
        }
        // In place: the column buffers go straight into the reserved frame (no message array).
        writeWaiting(timeout -> ring.write(encoder, ArrowBatchEncoder.IN_PLACE, timeout));
        ring.publish();
    }

    /** One ring write with a timeout: a record, or the current batch in place. */
    @FunctionalInterface
    private interface RingWrite {
        void write(long timeoutNanos) throws IOException, InterruptedException;
    }

    /**
     * Writes one record, waiting for space in slices; between slices the mailbox runs (the spec
     * event the process waits for, the poll timer), so a full ring never holds up the cluster.
     */
    private void writeRecord(byte[] record) throws Exception {
        writeWaiting(timeout -> ring.write(record, timeout));
    }

    private void writeWaiting(RingWrite write) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(settings.config.writeTimeoutMillis());
        writing = true;
        try {
            while (true) {
                try {
                    write.write(SLICE_NS);
                    return;
                } catch (RingTimeoutException e) {
                    if (System.nanoTime() - deadline > 0) {
                        throw new IOException(who + ": no ring space for " + settings.config.writeTimeoutMillis()
                                + " ms (the process does not read): " + e.getMessage(), e);
                    }
                } catch (RingException e) {
                    throw failure("write failed", e);
                }
                yieldMailbox();
                if (done) {
                    return; // stopped while waiting
                }
            }
        } finally {
            writing = false;
        }
    }

    /** Flushes before the barrier: a completed checkpoint means the process has every row before it. */
    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        super.prepareSnapshotPreBarrier(checkpointId);
        if (ring == null || done || ring.isFinished()) {
            return;
        }
        writeBatch();
        long start = System.nanoTime();
        long deadline = start + settings.flushTimeoutNanos;
        while (true) {
            try {
                ring.flush(SLICE_NS);
                long ms = (System.nanoTime() - start) / 1_000_000;
                if (ms >= 1000) {
                    LOG.info("{}: checkpoint {} waited {} ms for the process to drain its ring", who, checkpointId, ms);
                }
                return;
            } catch (RingTimeoutException e) {
                if (System.nanoTime() - deadline > 0) {
                    throw new IOException(who + ": checkpoint " + checkpointId + ": the process did not drain its ring"
                            + " within " + settings.flushTimeoutNanos / 1_000_000 + " ms (flush timeout): " + e.getMessage(), e);
                }
            } catch (RingException e) {
                throw failure("checkpoint flush failed", e);
            }
            yieldMailbox();
            if (done) {
                return;
            }
        }
    }

    private IOException failure(String what, RingException e) throws InterruptedException {
        // "reader gone/closed" says less than the process's exit status, stderr or heartbeat age.
        IOException cause = process.explain();
        if (cause != null) {
            IOException io = new IOException(cause.getMessage() + " (" + what + ": " + e.getMessage() + ")", e);
            io.addSuppressed(cause);
            return io;
        }
        return new IOException(who + ": " + what + ": " + e.getMessage(), e);
    }

    private void yieldMailbox() throws Exception {
        while (mailbox.tryYield()) {
            // run what is pending: events, timers
        }
        if (process != null) { // null while open() writes the stream's first records
            process.check();
            poll();
        }
    }

    @Override
    public void endInput() throws Exception {
        if (ring != null && !done) {
            writeBatch();
            ring.finish(); // the process drains what is left, then sees end of stream
        }
        inputEnded = true;
        if (!done) {
            process.endOfStream(); // exit 0 is success from now on
        }
        // The task stays alive until the process ends: yielding, so events (spec, stop) and timers run.
        while (!done) {
            poll();
            if (!done && !mailbox.tryYield()) {
                Thread.sleep(POLL_MS);
            }
        }
    }

    // ---- the poll timer: address file, process state, registration deadline ----

    private void armPoll() {
        getProcessingTimeService().registerTimer(getProcessingTimeService().getCurrentProcessingTime() + POLL_MS, this);
    }

    @Override
    public void onProcessingTime(long time) throws Exception {
        if (closed || done) {
            return;
        }
        poll();
        if (!done) {
            armPoll();
        }
    }

    private void poll() throws Exception {
        if (done) {
            return;
        }
        if (process.exitedCleanly()) { // throws for an exit that is a failure
            done = true;
            LOG.info("{}: process {} finished", who, process.pid());
            coordinator.sendEventToCoordinator(new ClusterEvents.Finished(settings.role, index, attempt));
            return;
        }
        if (!registered) {
            Address a = readAddress();
            if (a != null) {
                registered = true;
                LOG.info("{}: process {} listens on {}:{}", who, a.pid, a.host, a.port);
                coordinator.sendEventToCoordinator(new ClusterEvents.Register(settings.role, index, attempt, a.host, a.port));
            }
        }
        if (epoch < 0 && System.nanoTime() - startedNanos > TimeUnit.MILLISECONDS.toNanos(settings.config.registrationTimeoutMillis())) {
            throw new IOException(who + ": no cluster spec within " + settings.config.registrationTimeoutMillis() + " ms ("
                    + (registered ? "this task registered; others did not: see the JobManager log"
                            : "the process wrote no address file " + files.address) + "). " + process.tail());
        }
        pollOutput();
    }

    /**
     * Issue 10 hook (output_row_type), called in the mailbox thread by the poll timer and between
     * the slices of every ring wait. To come: the context gets {@code "output_ring": <stem>.out.ring}
     * (a {@link TaskFiles} companion, removed at close); the process creates and writes it; here,
     * once it exists, {@code io.flinktf.ipc.RingReader.open(path, 0)}, then each call drains {@code
     * reader.next(n, 0)} without waiting, decodes each record into a {@code Row} of {@code
     * config.outputRowType()} and emits it with {@code output.collect}, then releases the batch;
     * endInput keeps calling it until the result ring's end of stream.
     */
    private void pollOutput() {}

    private static final class Address {
        final String host;
        final int port;
        final long pid;

        Address(String host, int port, long pid) {
            this.host = host;
            this.port = port;
            this.pid = pid;
        }
    }

    /** The address file, once the process renamed it into place; null before. */
    private Address readAddress() throws IOException {
        byte[] bytes;
        try (SeekableByteChannel ch = Files.newByteChannel(files.address, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            if (ch.size() > MAX_ADDRESS_BYTES) {
                throw new IOException(who + ": address file " + files.address + " is " + ch.size() + " bytes long");
            }
            ByteBuffer b = ByteBuffer.allocate((int) ch.size());
            while (b.hasRemaining() && ch.read(b) >= 0) {
                // read it all
            }
            bytes = Arrays.copyOf(b.array(), b.position());
        } catch (NoSuchFileException e) {
            return null;
        }
        String text = new String(bytes, StandardCharsets.UTF_8);
        try {
            Map<String, Object> m = Json.parseObject(text);
            Object host = m.get("host");
            Object port = m.get("port");
            Object pid = m.get("pid");
            if (!(host instanceof String) || ((String) host).isEmpty() || !(port instanceof Long)
                    || (Long) port < 1 || (Long) port > 65535) {
                throw new IllegalArgumentException("needs \"host\" (a string) and \"port\" (1..65535)");
            }
            return new Address((String) host, ((Long) port).intValue(), pid instanceof Long ? (Long) pid : -1);
        } catch (IllegalArgumentException e) {
            throw new IOException(who + ": bad address file " + files.address + " (" + e.getMessage() + "): " + text, e);
        }
    }

    // ---- events from the coordinator ----

    @Override
    public void handleOperatorEvent(OperatorEvent event) {
        try {
            if (event instanceof ClusterEvents.Spec) {
                onSpec((ClusterEvents.Spec) event);
            } else if (event instanceof ClusterEvents.Stop) {
                onStop();
            } else {
                throw new IllegalArgumentException("unexpected event " + event);
            }
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(who + ": " + e.getMessage(), e);
        }
    }

    private void onSpec(ClusterEvents.Spec spec) throws IOException {
        if (done || closed) {
            return;
        }
        epoch = spec.epoch;
        String json = "{\"epoch\": " + spec.epoch + ", \"cluster\": " + spec.clusterJson + ", \"task\": {\"type\": "
                + Json.quote(settings.role) + ", \"index\": " + index + "}}\n";
        Path tmp = files.companion("spec.json.tmp");
        Files.deleteIfExists(tmp);
        Files.write(tmp, json.getBytes(StandardCharsets.UTF_8), StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE,
                LinkOption.NOFOLLOW_LINKS);
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-------"));
        Files.move(tmp, files.spec, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        LOG.info("{}: spec of epoch {}: {}", who, spec.epoch, spec.clusterJson);
    }

    private void onStop() {
        if (done || closed) {
            return;
        }
        LOG.info("{}: the AM stops process {} (the work is done)", who, process.pid());
        done = true; // before stop(): the end it causes is success
        process.stop();
        if (ring != null) {
            ring.abort(); // no reader is left
        }
    }

    @Override
    public void close() throws Exception {
        if (closed) {
            return;
        }
        closed = true;
        try {
            if (process != null) {
                if (!done) {
                    LOG.info("{}: task ends before its process did; stopping process {}", who, process.pid());
                }
                process.stop(); // SIGTERM, SIGKILL after the grace; heartbeat, context, address, spec files go
            }
        } finally {
            if (ring != null) {
                ring.abort(); // no-op after finish: the reader must not take a cut stream for a whole one
                ring.detachAndRemove();
            }
            super.close();
        }
    }
}
