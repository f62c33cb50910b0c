package io.flinktf.ipc.inference;

import io.flinktf.ipc.PeerLostException;
import io.flinktf.ipc.RingException;
import io.flinktf.ipc.RingReader;
import io.flinktf.ipc.RingTimeoutException;
import io.flinktf.ipc.RingWriter;
import io.flinktf.ipc.arrow.ArrowBatchDecoder;
import io.flinktf.ipc.arrow.ArrowBatchEncoder;
import io.flinktf.ipc.internal.WorkerOptions;
import io.flinktf.ipc.internal.WorkerSupervisor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.flink.api.common.operators.MailboxExecutor;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeutils.base.array.BytePrimitiveArraySerializer;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.BoundedOneInput;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.api.operators.StreamOperatorParameters;
import org.apache.flink.streaming.api.watermark.Watermark;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.types.Row;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One subtask of stream inference. The unit of everything here is a <b>batch</b> of rows, never a
 * row: rows are appended to an Arrow batch as they come; a batch is one ring record, one entry of
 * the in-flight queue, one entry of the checkpointed state, one mail when its results are back.
 * (Flink's async I/O operator, which this replaces, paid a queue entry, a {@code ResultFuture}
 * and a mailbox mail per row: the JVM's per-row cost capped throughput near 250 K rows/s.)
 *
 * <ul>
 *   <li><b>Cutting batches</b> (mailbox thread): a batch goes to the input ring when it reaches
 *       {@code batch_rows}/{@code batch_bytes}, when the worker is idle (every row sent was
 *       answered: a lone record is not held), when its first row is {@code linger} old (a
 *       processing-time timer), before every checkpoint barrier ({@link
 *       #prepareSnapshotPreBarrier}), before a watermark, and at the end of the input. No row is
 *       ever held across a barrier outside the state.
 *   <li><b>In flight</b>: a batch sent keeps its Arrow message (and the rows' timestamps) in an
 *       ordered queue until its results are emitted. Each checkpoint writes the queue into
 *       operator state; a restored subtask sends those batches to its fresh worker first, so every
 *       input gets its output (exactly once downstream where the model is deterministic). At most
 *       {@code in_flight} rows wait; a row that finds the queue full yields the mailbox (results
 *       and timers keep running) until there is room.
 *   <li><b>Results</b>: one reader thread reads the output ring ({@link RingReader}), decodes each
 *       Arrow record batch into rows ({@link ArrowBatchDecoder}), checks the count (more rows than
 *       sent is an error at once) and hands the rows over; one mail (coalesced while pending)
 *       matches them to the in-flight batches by position and emits a batch's rows, with their
 *       input timestamps, once all of them are back: in input order, a batch's rows all in one
 *       mail (never half a batch before a barrier). A watermark waits behind the batches before it.
 *   <li><b>Failure</b>: whatever goes wrong first (the worker exits or hangs, too many or too few
 *       results, a result of the wrong type, a damaged ring) is kept, posted as a mail that throws
 *       it (so a waiting mailbox wakes) and rethrown by the next row: the task fails with a message
 *       naming the ring, never waits for results that cannot come.
 * </ul>
 */
public final class InferenceOperator extends AbstractStreamOperator<Row>
        implements OneInputStreamOperator<Row, Row>, BoundedOneInput {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(InferenceOperator.class);
    private static final long POLL_NS = TimeUnit.MILLISECONDS.toNanos(200); // reader's check period
    private static final byte[] ARROW_HEADER = "flinktf-codec:arrow\n".getBytes(StandardCharsets.UTF_8);
    private static final int MAX_BATCH_RECORDS = 256;
    private static final int STATE_MAGIC = 0x46544942; // "FTIB": one in-flight batch in the state
    private static final long NO_TIMESTAMP = Long.MIN_VALUE;

    private final InferenceConfig config;
    private final String python;
    private final transient MailboxExecutor mailbox;

    // ---- mailbox thread -------------------------------------------------------------------------
    private transient String who;
    private transient Path inputRing;
    private transient Path outputRing;
    private transient RingWriter writer;
    private transient ArrowBatchEncoder encoder;
    private transient long[] timestamps; // of the rows in the encoder; null while none has one
    private transient long firstRowMillis;
    private transient boolean timerPending;
    private transient long lingerMillis;
    private transient ArrayDeque<Object> inFlight; // Batch or Watermark, in input order
    private transient long inFlightRows;
    private transient List<Row> carry; // results of the oldest batch while it is answered in part
    private transient StreamRecord<Row> reuse;
    private transient ListState<byte[]> state;
    private transient List<byte[]> restored;
    private transient long batchesSent;
    private transient boolean finished;

    // ---- shared with the reader thread ------------------------------------------------------------
    private transient WorkerSupervisor worker;
    private transient volatile long rowsSent;
    private transient volatile long rowsAnswered; // decoded by the reader
    private transient volatile long lastProgressNanos; // the last answer, or the start of a busy spell
    private transient ConcurrentLinkedQueue<List<Row>> results;
    private transient AtomicBoolean resultsMailPosted;
    private transient AtomicReference<Exception> error;
    private transient volatile boolean stopping;
    private transient Thread reader;
    private transient CountDownLatch ready; // the worker opened its output ring
    private transient long batchesAnswered; // reader thread

    /** A batch sent to the worker: its Arrow message (for the state), its rows and their timestamps. */
    static final class Batch {
        final byte[] message;
        final int rows;
        final long[] timestamps; // null: none of the rows has one

        Batch(byte[] message, int rows, long[] timestamps) {
            this.message = message;
            this.rows = rows;
            this.timestamps = timestamps;
        }
    }

    InferenceOperator(StreamOperatorParameters<Row> parameters, InferenceConfig config, String python) {
        super(parameters);
        this.config = config;
        this.python = python;
        this.mailbox = parameters.getMailboxExecutor();
    }

    // ---- state --------------------------------------------------------------------------------------

    @Override
    public void initializeState(StateInitializationContext context) throws Exception {
        super.initializeState(context);
        state = context.getOperatorStateStore().getListState(
                new ListStateDescriptor<>("flinktf-inference-in-flight", BytePrimitiveArraySerializer.INSTANCE));
        restored = new ArrayList<>();
        if (context.isRestored()) {
            for (byte[] b : state.get()) {
                restored.add(b);
            }
        }
    }

    @Override
    public void prepareSnapshotPreBarrier(long checkpointId) throws Exception {
        flush(); // no row outside the state at the barrier
        super.prepareSnapshotPreBarrier(checkpointId);
    }

    @Override
    public void snapshotState(StateSnapshotContext context) throws Exception {
        super.snapshotState(context);
        List<byte[]> entries = new ArrayList<>(inFlight.size() + restored.size());
        entries.addAll(restored); // not sent yet (a checkpoint before open finished cannot happen, but be exact)
        for (Object o : inFlight) {
            if (o instanceof Batch) {
                entries.add(toState((Batch) o));
            }
        }
        state.update(entries);
    }

    /** magic, rows, timestamp count (0 or rows), the timestamps, the Arrow message: all little-endian. */
    static byte[] toState(Batch b) {
        int ts = b.timestamps == null ? 0 : b.rows;
        ByteBuffer out = ByteBuffer.allocate(12 + 8 * ts + b.message.length).order(ByteOrder.LITTLE_ENDIAN);
        out.putInt(STATE_MAGIC).putInt(b.rows).putInt(ts);
        for (int i = 0; i < ts; i++) {
            out.putLong(b.timestamps[i]);
        }
        out.put(b.message);
        return out.array();
    }

    static Batch fromState(byte[] entry, String who) throws IOException {
        ByteBuffer in = ByteBuffer.wrap(entry).order(ByteOrder.LITTLE_ENDIAN);
        if (entry.length < 12 || in.getInt() != STATE_MAGIC) {
            throw new IOException(who + ": the in-flight state holds an entry this version cannot read");
        }
        int rows = in.getInt();
        int ts = in.getInt();
        if (rows < 0 || (ts != 0 && ts != rows) || 12L + 8L * ts > entry.length) {
            throw new IOException(who + ": a damaged in-flight state entry (" + rows + " rows, " + ts + " timestamps)");
        }
        long[] timestamps = ts == 0 ? null : new long[ts];
        for (int i = 0; i < ts; i++) {
            timestamps[i] = in.getLong();
        }
        return new Batch(Arrays.copyOfRange(entry, in.position(), entry.length), rows, timestamps);
    }

    // ---- start ----------------------------------------------------------------------------------------

    @Override
    public void open() throws Exception {
        super.open();
        int subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        int attempt = getRuntimeContext().getTaskInfo().getAttemptNumber();
        who = "inference '" + config.name + "' subtask " + subtask + (attempt == 0 ? "" : " attempt " + attempt);
        inputRing = config.inputRing(subtask, attempt);
        outputRing = InferenceConfig.outputRing(inputRing);
        ready = new CountDownLatch(1);
        inFlight = new ArrayDeque<>();
        carry = new ArrayList<>();
        reuse = new StreamRecord<>(null);
        results = new ConcurrentLinkedQueue<>();
        resultsMailPosted = new AtomicBoolean();
        error = new AtomicReference<>();
        encoder = new ArrowBatchEncoder(config.inputSchema);
        lingerMillis = Math.max(1, TimeUnit.NANOSECONDS.toMillis(config.lingerNanos + 999_999));
        for (Path p : new Path[] {inputRing, outputRing}) {
            removeStale(p);
        }
        writer = RingWriter.create(inputRing, config.inputCapacity, 64);
        writer.setBatch(Integer.MAX_VALUE, Long.MAX_VALUE); // published explicitly, per Arrow batch
        byte[] head = ArrowBatchEncoder.codecHeader("{}");
        writer.write(head, 0, head.length, 0);
        byte[] schema = config.inputSchema.schemaMessage();
        writer.write(schema, 0, schema.length, 0);
        writer.publish();
        try {
            worker = startWorker(subtask, attempt);
        } catch (IOException e) {
            writer.abort();
            writer.detachAndRemove();
            throw e;
        }
        writer.setWaitCheck(worker::check);
        LOG.info("{}: worker process {} started (input ring {}, output ring {})", who, worker.pid(), inputRing, outputRing);
        reader = new Thread(this::readLoop, "flinktf-inference-reader " + inputRing.getFileName());
        reader.setDaemon(true);
        reader.start();
        awaitWorkerReady();
        if (!restored.isEmpty()) {
            long rows = 0;
            for (byte[] entry : restored) {
                Batch b = fromState(entry, who);
                send(b);
                rows += b.rows;
            }
            LOG.info("{}: sent the {} in-flight rows of the restored checkpoint ({} batches) again", who, rows,
                    restored.size());
            restored.clear();
        }
    }

    /**
     * Waits until the worker opened its output ring (its entry reached the inference loop: the
     * model is loaded), so rows are not queued behind the worker's start-up (interpreter, TF
     * import, model), as PyFlink's own Python operators wait for theirs. A worker that fails first
     * fails the task here; the wait is cancellable.
     */
    private void awaitWorkerReady() throws Exception {
        long start = System.nanoTime();
        while (!ready.await(POLL_NS, TimeUnit.NANOSECONDS)) {
            rethrow();
        }
        rethrow();
        LOG.info("{}: worker ready after {} ms", who, (System.nanoTime() - start) / 1_000_000);
    }

    private static void removeStale(Path p) throws IOException {
        if (Files.exists(p)) {
            try {
                RingWriter.removeStale(p);
            } catch (FileAlreadyExistsException e) {
                throw new IOException("inference: " + e.getMessage(), e);
            }
        }
    }

    private WorkerSupervisor startWorker(int subtask, int attempt) throws IOException {
        WorkerOptions o = new WorkerOptions(config.entry, python, config.heartbeatIntervalNanos,
                config.heartbeatTimeoutNanos, config.shutdownGraceNanos, config.exitGraceNanos, null, config.logDir,
                config.properties);
        Map<String, String> extras = new LinkedHashMap<>();
        extras.put("output_ring", WorkerSupervisor.json(outputRing.toString()));
        extras.put("output_schema", WorkerSupervisor.json(Base64.getEncoder().encodeToString(config.outputSchema.schemaMessage())));
        extras.put("output_capacity", Long.toString(config.outputCapacity));
        String file = inputRing.getFileName().toString();
        WorkerSupervisor.Task t = new WorkerSupervisor.Task("worker", subtask, attempt,
                inputRing.resolveSibling(file.substring(0, file.length() - ".ring".length())))
                .ring(inputRing).who(who).progress(() -> rowsSent).contextExtras(extras);
        return WorkerSupervisor.start(o, t);
    }

    // ---- input: rows into batches, batches into the input ring ------------------------------------

    @Override
    public void processElement(StreamRecord<Row> element) throws Exception {
        while (inFlightRows >= config.inFlight) {
            rethrow();
            mailbox.yield(); // results (and a failure) arrive as mails
        }
        int at = encoder.rows();
        try {
            encoder.add(element.getValue());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(who + ": an input row does not fit the input row type: " + e.getMessage(), e);
        }
        if (element.hasTimestamp() || timestamps != null) {
            if (timestamps == null) {
                timestamps = new long[Math.max(16, Math.min(config.batchRows, 1024))];
                Arrays.fill(timestamps, NO_TIMESTAMP);
            } else if (at >= timestamps.length) {
                int old = timestamps.length;
                timestamps = Arrays.copyOf(timestamps, Math.max(at + 1, 2 * old));
                Arrays.fill(timestamps, old, timestamps.length, NO_TIMESTAMP);
            }
            timestamps[at] = element.hasTimestamp() ? element.getTimestamp() : NO_TIMESTAMP;
        }
        int rows = at + 1;
        if (rows >= config.batchRows || rowsSent == rowsAnswered || encoder.bufferBytes() >= config.batchBytes) {
            flush();
        } else if (rows == 1) {
            firstRowMillis = getProcessingTimeService().getCurrentProcessingTime();
            if (!timerPending) {
                timerPending = true;
                getProcessingTimeService().registerTimer(firstRowMillis + lingerMillis, this::onLinger);
            }
        }
    }

    private void onLinger(long time) throws Exception {
        timerPending = false;
        if (encoder.rows() == 0) {
            return;
        }
        long due = firstRowMillis + lingerMillis;
        if (time >= due) {
            flush();
        } else { // the batch that armed this timer was cut already; the current one is younger
            timerPending = true;
            getProcessingTimeService().registerTimer(due, this::onLinger);
        }
    }

    /** Sends the rows gathered so far as one batch. Mailbox thread. */
    private void flush() throws Exception {
        int n = encoder.rows();
        if (n == 0 || finished) {
            return;
        }
        rethrow();
        long[] ts = null;
        if (timestamps != null) {
            ts = Arrays.copyOf(timestamps, n);
            Arrays.fill(timestamps, 0, n, NO_TIMESTAMP);
        }
        send(new Batch(encoder.encode(), n, ts));
    }

    private void send(Batch b) throws Exception {
        // Counted before the worker can see them (a write publishes at once to a sleeping reader):
        // the reader checks the answers against this count.
        if (rowsSent == rowsAnswered) {
            lastProgressNanos = System.nanoTime();
        }
        rowsSent += b.rows;
        inFlight.add(b);
        inFlightRows += b.rows;
        batchesSent++;
        try {
            writer.write(b.message, 0, b.message.length, config.writeTimeoutNanos);
        } catch (RingException e) {
            throw explained("cannot send rows to the worker", e);
        }
        writer.publish();
    }

    @Override
    public void processWatermark(Watermark mark) throws Exception {
        flush(); // the rows before it go first
        if (inFlight.isEmpty()) {
            super.processWatermark(mark);
        } else {
            inFlight.add(mark);
        }
    }

    // ---- output: results matched to batches, in order ------------------------------------------------

    /** The results mail: matches what the reader decoded to the in-flight batches and emits. */
    private void emitResults() throws Exception {
        resultsMailPosted.set(false);
        List<Row> rows;
        while ((rows = results.poll()) != null) {
            match(rows);
        }
        if (encoder.rows() > 0 && rowsSent == rowsAnswered) {
            flush(); // the worker is idle: what waits goes now
        }
    }

    private void match(List<Row> rows) throws Exception {
        int i = 0;
        int n = rows.size();
        while (i < n) {
            emitWatermarksAtHead();
            Object head = inFlight.peek();
            if (!(head instanceof Batch)) { // the reader checked the count against rows sent
                throw new IOException(who + ": output ring " + outputRing + ": a result row without an input row");
            }
            Batch b = (Batch) head;
            int need = b.rows - carry.size();
            int take = Math.min(need, n - i);
            if (carry.isEmpty() && take == need) {
                emit(b, rows, i);
            } else {
                carry.addAll(rows.subList(i, i + take));
                if (carry.size() == b.rows) {
                    emit(b, carry, 0);
                    carry.clear();
                }
            }
            i += take;
        }
        emitWatermarksAtHead();
    }

    /** Emits the rows of the oldest batch, {@code rows[from, from + b.rows)}, and retires it. */
    private void emit(Batch b, List<Row> rows, int from) {
        for (int k = 0; k < b.rows; k++) {
            Row r = rows.get(from + k);
            long ts = b.timestamps == null ? NO_TIMESTAMP : b.timestamps[k];
            if (ts == NO_TIMESTAMP) {
                reuse.replace(r);
                reuse.eraseTimestamp();
            } else {
                reuse.replace(r, ts);
            }
            output.collect(reuse);
        }
        inFlight.poll();
        inFlightRows -= b.rows;
    }

    private void emitWatermarksAtHead() throws Exception {
        while (inFlight.peek() instanceof Watermark) {
            super.processWatermark((Watermark) inFlight.poll());
        }
    }

    private void postResultsMail() {
        if (resultsMailPosted.compareAndSet(false, true)) {
            mailbox.execute(this::emitResults, "inference results");
        }
    }

    private void readLoop() {
        RingReader r = null;
        try {
            r = openOutput();
            ready.countDown();
            ArrowBatchDecoder decoder = new ArrowBatchDecoder(config.outputSchema, config.outputType);
            int preamble = 0; // codec header, then the schema
            while (true) {
                RingReader.Batch b;
                try {
                    b = r.next(MAX_BATCH_RECORDS, POLL_NS);
                } catch (RingTimeoutException idle) {
                    if (stopping) {
                        return;
                    }
                    worker.check();
                    checkResultTimeout();
                    continue;
                }
                if (b == null) {
                    endOfResults();
                    return;
                }
                for (int i = 0; i < b.count(); i++) {
                    ByteBuffer rec = b.record(i);
                    if (preamble == 0) {
                        checkCodecHeader(rec);
                    } else if (preamble == 1) {
                        decode(() -> decoder.checkSchema(rec), "schema");
                    } else {
                        deliver(decode(() -> decoder.decode(rec), "record batch"));
                        batchesAnswered++;
                    }
                    preamble = Math.min(2, preamble + 1);
                }
                b.release();
                postResultsMail();
            }
        } catch (InterruptedException e) {
            if (!stopping) {
                fail(new IOException(who + ": the result reader was interrupted"));
            }
        } catch (Exception e) {
            fail(e);
        } finally {
            ready.countDown(); // never leave open() waiting
            if (r != null) {
                try {
                    r.close();
                } catch (IOException e) {
                    LOG.warn("{}: closing the output ring {}: {}", who, outputRing, e.toString());
                }
            }
        }
    }

    /** Waits for the worker to create the output ring, watching the worker meanwhile. */
    private RingReader openOutput() throws Exception {
        while (true) {
            try {
                return RingReader.open(outputRing, POLL_NS);
            } catch (RingTimeoutException e) {
                if (stopping) {
                    throw new InterruptedException();
                }
                worker.check(); // a worker that died before creating it
            }
        }
    }

    private void checkCodecHeader(ByteBuffer rec) throws IOException {
        byte[] got = new byte[Math.min(rec.remaining(), ARROW_HEADER.length)];
        rec.duplicate().get(got);
        if (!Arrays.equals(got, ARROW_HEADER)) {
            throw new IOException(who + ": output ring " + outputRing + ": the first record is not the arrow codec header "
                    + "(flinktf-codec:arrow); results must come from flinktf_ipc.inference's emit()");
        }
    }

    private interface Step<T> {
        T run();
    }

    private <T> T decode(Step<T> step, String what) throws IOException {
        try {
            return step.run();
        } catch (IllegalArgumentException | IndexOutOfBoundsException e) {
            throw new IOException(who + ": output ring " + outputRing + ": bad result " + what + ": " + e.getMessage(), e);
        }
    }

    private void decode(Runnable step, String what) throws IOException {
        decode(() -> {
            step.run();
            return null;
        }, what);
    }

    /** Counts decoded result rows against the rows sent and hands them to the mailbox. Reader thread. */
    private void deliver(List<Row> rows) throws IOException {
        long before = rowsAnswered;
        if (before + rows.size() > rowsSent) {
            throw new IOException(who + ": output ring " + outputRing + ": the worker returned " + rows.size()
                    + " result rows, but only " + (rowsSent - before) + " input rows are waiting for a result "
                    + "(one result row per input row)");
        }
        if (rows.isEmpty()) {
            return;
        }
        results.add(rows);
        lastProgressNanos = System.nanoTime();
        rowsAnswered = before + rows.size();
    }

    private void endOfResults() throws IOException {
        long open = rowsSent - rowsAnswered;
        if (open > 0) {
            throw new IOException(who + ": output ring " + outputRing + ": the worker ended its results with " + open
                    + " input rows unanswered (one result row per input row)");
        }
    }

    /** With a result timeout: fails when rows wait and the worker answered nothing for that long. */
    private void checkResultTimeout() throws TimeoutException {
        long limit = TimeUnit.MILLISECONDS.toNanos(config.resultTimeoutMillis);
        if (limit > 0 && rowsSent > rowsAnswered && System.nanoTime() - lastProgressNanos > limit) {
            throw new TimeoutException(who + ": no result within " + config.resultTimeoutMillis + " ms from the worker "
                    + "(output ring " + outputRing + ", " + (rowsSent - rowsAnswered)
                    + " rows at the worker); is the model that slow, or does the worker not emit?");
        }
    }

    // ---- failure ---------------------------------------------------------------------------------

    private IOException explained(String what, Exception e) throws InterruptedException {
        IOException cause = null;
        if (worker != null) {
            // A worker that failed aborts its results first, then prints and exits: give its exit
            // (status, stderr tail) up to a heartbeat timeout to arrive; explain() waits 2 intervals.
            long deadline = System.nanoTime() + config.heartbeatTimeoutNanos;
            do {
                cause = worker.explain();
            } while (cause == null && e instanceof PeerLostException && System.nanoTime() - deadline < 0);
        }
        if (cause != null && cause != e.getCause()) {
            IOException io = new IOException(cause.getMessage() + "\n(" + what + ": " + e.getMessage() + ")", e);
            io.addSuppressed(cause);
            return io;
        }
        return e instanceof IOException ? (IOException) e : new IOException(who + ": " + what + ": " + e, e);
    }

    /** Keeps the first failure and posts it as a mail that throws it (which fails the task). Reader thread. */
    private void fail(Exception e) {
        Exception err = e;
        try {
            // The worker's exit status and stderr (a Python traceback) say more than the ring does.
            err = explained("output ring " + outputRing, e);
        } catch (InterruptedException ie) {
            Thread.currentThread().interrupt();
        }
        if (error.compareAndSet(null, err)) {
            LOG.warn("{}: failed: {}", who, err.getMessage());
        }
        if (!stopping) {
            try {
                mailbox.execute(this::rethrow, "inference failure");
            } catch (RuntimeException closed) { // the mailbox closed: the task ends anyway
                LOG.debug("{}: the failure mail was not taken: {}", who, closed.toString());
            }
        }
    }

    private void rethrow() throws IOException {
        Exception e = error.get();
        if (e != null) {
            throw new IOException(e.getMessage(), e);
        }
        if (worker != null) {
            worker.check();
        }
    }

    // ---- the end ---------------------------------------------------------------------------------

    @Override
    public void endInput() throws Exception {
        drain();
    }

    @Override
    public void finish() throws Exception {
        drain();
        super.finish();
    }

    /**
     * End of input: sends what is gathered, waits (yielding the mailbox) until every in-flight
     * batch is answered and emitted, then ends the input stream and waits for the worker to finish
     * its results and exit 0.
     */
    private void drain() throws Exception {
        if (finished) {
            return;
        }
        flush();
        while (!inFlight.isEmpty()) {
            rethrow();
            mailbox.yield();
        }
        finished = true;
        writer.finish(); // the worker drains the input, ends its results, exits 0
        worker.awaitExit();
        reader.join(TimeUnit.NANOSECONDS.toMillis(config.heartbeatTimeoutNanos) + 10_000);
        rethrow();
        LOG.info("{}: worker process {} finished: {} rows in {} batches, {} result batches", who, worker.pid(),
                rowsAnswered, batchesSent, batchesAnswered);
    }

    /**
     * After a clean end the worker is gone already; after a failure or a cancel: aborts the input
     * stream and stops the worker. Either way the rings and the worker's files go.
     */
    @Override
    public void close() throws Exception {
        try {
            if (writer != null) {
                stopping = true;
                if (reader != null) {
                    reader.interrupt();
                }
                writer.abort(); // no-op after finish: the worker must not take a failed run for a complete one
                if (worker != null) {
                    worker.stop();
                }
                writer.detachAndRemove();
                if (reader != null) {
                    reader.join(10_000);
                }
                Files.deleteIfExists(outputRing); // the worker is gone: nobody else removes it
            }
        } finally {
            super.close();
        }
    }
}
