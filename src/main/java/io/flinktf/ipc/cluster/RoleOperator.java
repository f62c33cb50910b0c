package io.flinktf.ipc.cluster;

import io.flinktf.ipc.PeerLostException;
import io.flinktf.ipc.RingException;
import io.flinktf.ipc.RingPaths;
import io.flinktf.ipc.RingReader;
import io.flinktf.ipc.RingTimeoutException;
import io.flinktf.ipc.RingWriter;
import io.flinktf.ipc.arrow.ArrowBatchDecoder;
import io.flinktf.ipc.arrow.ArrowBatchEncoder;
import io.flinktf.ipc.arrow.ArrowBatchOptions;
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
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
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
 * <p>Output rows ({@code output_row_type}): the process creates and writes an output ring
 * ({@code <stem>.out.ring}, an {@code arrow} codec stream of the output schema); the operator opens
 * it once it appears and emits what it holds, without waiting, from the poll timer and every wait
 * ({@link #pollOutput()}); when the process exits 0 the ring is drained to its end of stream before
 * {@code Finished} goes out. Rows are not matched to inputs; after a restart the new attempt emits
 * again (at-least-once).
 *
 * <p>Everything runs in the task's mailbox thread.
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
    /** Records (Arrow batches) of the output ring taken per poll, so one poll never holds the mailbox long. */
    private static final int OUTPUT_RECORDS_PER_POLL = 256;
    private static final long MAX_OUTPUT_CAPACITY = 16L << 20;
    private static final byte[] ARROW_HEADER = "flinktf-codec:arrow\n".getBytes(StandardCharsets.UTF_8);

    private final RoleSettings settings;
    private final transient OperatorEventGateway coordinator;
    /** Yields to every mail of the task (events come with the lowest priority, so this one must too). */
    private final transient MailboxExecutor mailbox;

    private transient String who;
    private transient int index;
    private transient int attempt;
    private transient Path dir;
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
    private transient long streamRows; // rows of this stream so far: cuts stay at multiples of the batch size
    private transient boolean lingerArmed;
    private transient boolean closed;
    private transient RingReader outputReader; // null: no output type, or the process has not created it yet
    private transient ArrowBatchDecoder outputDecoder;
    private transient int outputPreamble; // records of the output stream's head seen: codec header, schema
    private transient boolean outputEnded;
    private transient long outputRows;

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
        // The job's files live in a directory of its own: two jobs with one cluster name never meet.
        dir = RingPaths.jobDirectory(settings.baseDirectory(), getRuntimeContext().getJobInfo().getJobId().toString());
        RingPaths.ensureDirectories(settings.baseDirectory(), dir); // mode 0700, ours: the spec and address live there
        files = new TaskFiles(dir, c.name(), settings.role, index, attempt);
        if (settings.fed()) {
            ring = createRing();
            encoder = new ArrowBatchEncoder(settings.schema);
            // The stream is self-describing from its first record: every attempt's fresh ring too.
            writeRecord(ArrowBatchEncoder.codecHeader(ArrowBatchOptions.codecParams(settings.config.batchSize())));
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
        if (settings.outputSchema != null) {
            Map<String, String> extras = new LinkedHashMap<>();
            extras.put("output_ring", WorkerSupervisor.json(files.output.toString()));
            extras.put("output_schema", WorkerSupervisor.json(
                    Base64.getEncoder().encodeToString(settings.outputSchema.schemaMessage())));
            extras.put("output_capacity", Long.toString(Math.min(c.ringCapacity(), MAX_OUTPUT_CAPACITY)));
            task.contextExtras(extras);
            outputDecoder = new ArrowBatchDecoder(settings.outputSchema, c.outputRowType());
            removeStaleOutput();
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
        streamRows++;
        if (encoder.rows() == 1) {
            firstRowTime = getProcessingTimeService().getCurrentProcessingTime();
            if (!lingerArmed) {
                lingerArmed = true;
                getProcessingTimeService().registerTimer(firstRowTime + settings.config.lingerMillis(), this::onLinger);
            }
        }
        TFClusterConfig c = settings.config;
        if (ArrowBatchOptions.full(c.batchSize(), c.batchRows(), c.batchBytes(), streamRows, encoder.rows(),
                encoder.bufferBytes())) {
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
            drainOutputToEnd();
            done = true;
            LOG.info("{}: process {} finished{}", who, process.pid(),
                    settings.outputSchema == null ? "" : " (" + outputRows + " output rows)");
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

    // ---- output rows (output_row_type): the process's output ring into the stream ----

    /**
     * Emits what the output ring holds, without waiting (mailbox thread: the poll timer and every
     * wait). Opens the ring once the process created it. At most {@link #OUTPUT_RECORDS_PER_POLL}
     * records per call; the rest comes at the next poll.
     */
    private void pollOutput() throws Exception {
        takeOutput();
    }

    /** {@link #pollOutput()}; true when it stopped at an empty ring (not at the limit or the end). */
    private boolean takeOutput() throws Exception {
        if (outputDecoder == null || outputEnded || closed) {
            return false;
        }
        if (outputReader == null && !openOutput()) {
            return true;
        }
        int taken = 0;
        while (taken < OUTPUT_RECORDS_PER_POLL && !outputEnded) {
            RingReader.Batch b;
            try {
                b = outputReader.next(Math.min(64, OUTPUT_RECORDS_PER_POLL - taken), 0);
            } catch (RingTimeoutException empty) {
                return true;
            } catch (RingException e) {
                throw outputFailure(e);
            }
            if (b == null) {
                outputEnded = true;
                return false;
            }
            try {
                taken += b.count();
                for (int i = 0; i < b.count(); i++) {
                    outputRecord(b.record(i));
                }
            } finally {
                b.release();
            }
        }
        return false;
    }

    /** Opens the output ring if the process created it; false while it has not. */
    private boolean openOutput() throws Exception {
        try {
            outputReader = RingReader.open(files.output, 0);
            return true;
        } catch (RingTimeoutException notYet) {
            return false;
        } catch (RingException e) {
            throw outputFailure(e);
        }
    }

    /** One record of the output stream: the codec header, the schema, then record batches of rows. */
    private void outputRecord(ByteBuffer rec) throws IOException {
        try {
            if (outputPreamble == 0) {
                byte[] got = new byte[Math.min(rec.remaining(), ARROW_HEADER.length)];
                rec.duplicate().get(got);
                if (!Arrays.equals(got, ARROW_HEADER)) {
                    throw new IllegalArgumentException("the first record is not the arrow codec header (flinktf-codec:arrow); "
                            + "output rows must come from TFContext.emit()");
                }
                outputPreamble = 1;
            } else if (outputPreamble == 1) {
                outputDecoder.checkSchema(rec);
                outputPreamble = 2;
            } else {
                List<Row> rows = outputDecoder.decode(rec);
                for (Row row : rows) {
                    output.collect(new StreamRecord<>(row));
                }
                outputRows += rows.size();
            }
        } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
            throw new IOException(who + ": output ring " + files.output + ": bad "
                    + (outputPreamble == 0 ? "stream header" : outputPreamble == 1 ? "schema" : "record batch")
                    + ": " + e.getMessage(), e);
        }
    }

    /**
     * The process exited 0: everything it emitted is in the ring, closed. Emits the rest up to the
     * end of stream; a ring the process never created means it emitted nothing (and never asked for
     * its output), a ring left open or aborted fails the task.
     */
    private void drainOutputToEnd() throws Exception {
        if (outputDecoder == null || outputEnded) {
            return;
        }
        if (outputReader == null && !openOutput()) {
            if (!Files.exists(files.output, LinkOption.NOFOLLOW_LINKS)) {
                outputEnded = true; // python side closes (and so creates) it at a clean return: a process of another kind
                return;
            }
            throw new IOException(who + ": output ring " + files.output + " was never made ready by the process");
        }
        while (!outputEnded) {
            if (takeOutput() && !outputEnded) { // empty, and the writer is gone: nothing more can come
                throw new IOException(who + ": output ring " + files.output + ": the process exited without ending its "
                        + "output stream (" + outputRows + " rows came); it ends when run_main returns");
            }
        }
    }

    /** After the process is gone: leaves the output ring and removes its file. */
    private void closeOutput() throws IOException {
        if (outputDecoder == null) {
            return;
        }
        try {
            if (outputReader != null) {
                outputReader.close();
            }
        } finally {
            Files.deleteIfExists(files.output); // the process is gone: nobody else removes it
        }
    }

    private IOException outputFailure(RingException e) throws InterruptedException {
        if (e instanceof PeerLostException) {
            // An aborted stream: the process failed (run_main raised) and exits next; its status and
            // stderr (the traceback) say why, so give it up to a heartbeat timeout to end.
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(settings.config.heartbeatTimeoutMillis());
            while (process.explain() == null && System.nanoTime() - deadline < 0) {
                // explain() waits up to two heartbeat intervals per call
            }
        }
        return failure("output ring " + files.output, e);
    }

    private void removeStaleOutput() throws IOException {
        if (Files.exists(files.output, LinkOption.NOFOLLOW_LINKS)) {
            try {
                RingWriter.removeStale(files.output); // a file of a gone process; a live one's throws
            } catch (FileAlreadyExistsException e) {
                throw new IOException(who + ": " + e.getMessage(), e);
            }
        }
    }

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
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(who + ": interrupted", e);
        } catch (Exception e) {
            throw new IllegalStateException(who + ": " + e.getMessage(), e);
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

    private void onStop() throws Exception {
        if (done || closed) {
            return;
        }
        pollOutput(); // what it emitted so far (a stopped process does not end its output stream)
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
            try {
                if (ring != null) {
                    ring.abort(); // no-op after finish: the reader must not take a cut stream for a whole one
                    ring.detachAndRemove();
                }
            } finally {
                closeOutput();
                if (dir != null) {
                    RingPaths.removeIfEmpty(settings.baseDirectory(), dir); // the last task of the job here
                }
                super.close();
            }
        }
    }
}
