package io.flinktf.ipc.inference;

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
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.streaming.api.functions.async.ResultFuture;
import org.apache.flink.streaming.api.functions.async.RichAsyncFunction;
import org.apache.flink.types.Row;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One subtask of stream inference, inside Flink's async I/O operator ({@code
 * AsyncDataStream.orderedWait}): the operator keeps the in-flight rows in its queue (waiting by
 * yielding the mailbox when it is full), emits results in input order through the mailbox,
 * snapshots in-flight rows at each checkpoint and re-sends them after a restore, and drains at the
 * end of the input. This function owns the rest of the subtask:
 *
 * <ul>
 *   <li>the <b>input ring</b> (JVM to worker): rows become Arrow record batches (the {@code arrow}
 *       codec stream of docs/FORMAT.md). A batch goes out at once when the worker is idle (every
 *       row sent so far was answered: a lone record is not held), else when it reaches the batch
 *       limits or its first row is {@code linger} old (1 ms by default), by a small flusher
 *       thread; the ring is written under one lock;
 *   <li>the <b>worker process</b> ({@link WorkerSupervisor}: start, heartbeats, failure), told
 *       its output ring and the output schema through its context file;
 *   <li>the <b>output ring</b> (worker to JVM), read by one reader thread per subtask with
 *       {@link RingReader}: Arrow record batches decoded by {@link ArrowBatchDecoder} into rows of
 *       the output row type, matched to the pending rows by position (one result row per input
 *       row, in order) and handed to their futures.
 * </ul>
 *
 * <p>Any failure (the worker exits or hangs, too many or too few results, a result of the wrong
 * type, a damaged ring) is kept (the first one), fails the oldest pending row's future (which
 * fails the task), and is rethrown by the next {@code asyncInvoke} and by {@code close}: the job
 * fails with a message naming the ring, and never waits for results that cannot come.
 */
public final class InferenceFunction extends RichAsyncFunction<Row, Row> implements ResultTypeQueryable<Row> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(InferenceFunction.class);
    private static final long POLL_NS = TimeUnit.MILLISECONDS.toNanos(200); // reader's check period
    private static final byte[] ARROW_HEADER = "flinktf-codec:arrow\n".getBytes(StandardCharsets.UTF_8);
    private static final int MAX_BATCH_RECORDS = 256;

    private final InferenceConfig config;
    private final String python;

    private transient String who;
    private transient Path inputRing;
    private transient Path outputRing;
    private transient Object lock; // guards writer, encoder, firstRowNanos
    private transient RingWriter writer;
    private transient ArrowBatchEncoder encoder;
    private transient long firstRowNanos;
    private transient WorkerSupervisor worker;
    private transient ConcurrentLinkedQueue<ResultFuture<Row>> pending; // in ring order
    private transient AtomicReference<Exception> error;
    private transient volatile long rowsSent;
    private transient volatile long rowsAnswered;
    private transient long batchesSent; // under lock
    private transient long batchesAnswered; // reader thread
    private transient volatile boolean stopping;
    private transient Thread flusher;
    private transient Thread reader;
    private transient java.util.concurrent.CountDownLatch ready; // the worker opened its output ring

    InferenceFunction(InferenceConfig config, String python) {
        this.config = config;
        this.python = python;
    }

    @Override
    public TypeInformation<Row> getProducedType() {
        return config.outputType;
    }

    @Override
    public void open(OpenContext openContext) throws Exception {
        int subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
        int attempt = getRuntimeContext().getTaskInfo().getAttemptNumber();
        who = "inference '" + config.name + "' subtask " + subtask + (attempt == 0 ? "" : " attempt " + attempt);
        inputRing = config.inputRing(subtask, attempt);
        outputRing = InferenceConfig.outputRing(inputRing);
        lock = new Object();
        ready = new java.util.concurrent.CountDownLatch(1);
        pending = new ConcurrentLinkedQueue<>();
        error = new AtomicReference<>();
        encoder = new ArrowBatchEncoder(config.inputSchema);
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
        flusher = new Thread(this::flushLoop, "flinktf-inference-flusher " + inputRing.getFileName());
        flusher.setDaemon(true);
        reader.start();
        flusher.start();
        awaitWorkerReady();
    }

    /**
     * Waits until the worker opened its output ring (its entry reached the inference loop: the
     * model is loaded), so rows are not queued behind the worker's start-up (interpreter, TF
     * import, model): PyFlink's own Python operators wait for their workers the same way. A worker
     * that fails first fails the task here; the wait is cancellable.
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

    // ---- input: rows into the input ring ---------------------------------------------------------

    @Override
    public void asyncInvoke(Row input, ResultFuture<Row> resultFuture) throws Exception {
        rethrow();
        pending.add(resultFuture);
        rethrow(); // a failure found between the check and the add must not leave this row waiting
        synchronized (lock) {
            encoder.add(input);
            int rows = encoder.rows();
            if (rows == 1) {
                firstRowNanos = System.nanoTime();
            }
            if (rows >= config.batchRows || encoder.bufferBytes() >= config.batchBytes || rowsSent == rowsAnswered) {
                flushLocked();
            } else if (rows == 1) {
                LockSupport.unpark(flusher);
            }
        }
    }

    /** Sends the batch gathered so far as one Arrow record batch and publishes it. Under {@code lock}. */
    private void flushLocked() throws IOException, InterruptedException {
        int n = encoder.rows();
        if (n == 0 || writer.isFinished()) {
            return;
        }
        byte[] msg = encoder.encode();
        // Counted before the worker can see them (a write publishes at once to a sleeping reader):
        // the answers are checked against this count.
        rowsSent += n;
        batchesSent++;
        try {
            writer.write(msg, 0, msg.length, config.writeTimeoutNanos);
        } catch (RingException e) {
            throw explained("cannot send rows to the worker", e);
        }
        writer.publish();
    }

    /** Sends a batch once its first row is {@code linger} old, or at once when the worker is idle. */
    private void flushLoop() {
        while (!stopping) {
            long wait = -1;
            try {
                synchronized (lock) {
                    if (encoder.rows() > 0 && !writer.isFinished()) {
                        long left = firstRowNanos + config.lingerNanos - System.nanoTime();
                        if (left <= 0 || rowsSent == rowsAnswered) {
                            flushLocked();
                        } else {
                            wait = left;
                        }
                    }
                }
            } catch (Exception e) {
                fail(e);
                return;
            }
            LockSupport.parkNanos(this, wait > 0 ? wait : POLL_NS);
        }
    }

    // ---- output: results from the output ring -----------------------------------------------------

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
        if (!java.util.Arrays.equals(got, ARROW_HEADER)) {
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

    /** Matches result rows to pending rows by position and completes their futures. */
    private void deliver(List<Row> rows) throws IOException {
        long before = rowsAnswered;
        if (before + rows.size() > rowsSent) {
            throw new IOException(who + ": output ring " + outputRing + ": the worker returned " + rows.size()
                    + " result rows, but only " + (rowsSent - before) + " input rows are waiting for a result "
                    + "(one result row per input row)");
        }
        for (Row row : rows) {
            ResultFuture<Row> f = pending.poll();
            if (f == null) { // cannot happen while rowsSent counts only queued rows
                throw new IOException(who + ": output ring " + outputRing + ": a result row without a pending input row");
            }
            f.complete(Collections.singletonList(row));
        }
        rowsAnswered = before + rows.size();
        if (rowsAnswered == rowsSent) {
            LockSupport.unpark(flusher); // the worker is idle: what waits goes now
        }
    }

    private void endOfResults() throws IOException {
        long open = rowsSent - rowsAnswered;
        if (open > 0 || !stopping && !pending.isEmpty()) {
            throw new IOException(who + ": output ring " + outputRing + ": the worker ended its results with "
                    + Math.max(open, pending.size()) + " input rows unanswered (one result row per input row)");
        }
    }

    // ---- failure -------------------------------------------------------------------------------

    private IOException explained(String what, Exception e) throws InterruptedException {
        IOException cause = null;
        if (worker != null) {
            // A worker that failed aborts its results first, then prints and exits: give its exit
            // (status, stderr tail) up to a heartbeat timeout to arrive; explain() waits 2 intervals.
            long deadline = System.nanoTime() + config.heartbeatTimeoutNanos;
            do {
                cause = worker.explain();
            } while (cause == null && e instanceof io.flinktf.ipc.PeerLostException && System.nanoTime() - deadline < 0);
        }
        if (cause != null && cause != e.getCause()) {
            IOException io = new IOException(cause.getMessage() + "\n(" + what + ": " + e.getMessage() + ")", e);
            io.addSuppressed(cause);
            return io;
        }
        return e instanceof IOException ? (IOException) e : new IOException(who + ": " + what + ": " + e, e);
    }

    /** Keeps the first failure and fails the oldest pending row with it (which fails the task). */
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
        ResultFuture<Row> oldest = pending.peek();
        if (oldest != null) {
            oldest.completeExceptionally(error.get());
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

    @Override
    public void timeout(Row input, ResultFuture<Row> resultFuture) {
        resultFuture.completeExceptionally(new TimeoutException(who + ": no result within " + config.resultTimeoutMillis
                + " ms from the worker (output ring " + outputRing + ", " + (rowsSent - rowsAnswered)
                + " rows at the worker); is the model that slow, or does the worker not emit?"));
    }

    // ---- the end -------------------------------------------------------------------------------

    /**
     * After the operator drained every in-flight row (end of input): ends the input stream, waits
     * for the worker to finish its results and exit 0. After a failure or a cancel: aborts the
     * input stream and stops the worker. Either way the rings and the worker's files go.
     */
    @Override
    public void close() throws Exception {
        if (writer == null) {
            return;
        }
        Exception failure = null;
        try {
            boolean graceful = error.get() == null && pending.isEmpty() && !Thread.currentThread().isInterrupted();
            if (graceful) {
                synchronized (lock) {
                    flushLocked();
                    writer.finish(); // the worker drains the input, ends its results, exits 0
                }
                worker.awaitExit();
                reader.join(TimeUnit.NANOSECONDS.toMillis(config.heartbeatTimeoutNanos) + 10_000);
                rethrow();
                LOG.info("{}: worker process {} finished: {} rows in {} batches, {} result batches", who, worker.pid(),
                        rowsAnswered, batchesSent, batchesAnswered);
            }
        } catch (Exception e) {
            failure = e;
        } finally {
            stopping = true;
            LockSupport.unpark(flusher);
            reader.interrupt();
            synchronized (lock) {
                writer.abort(); // no-op after finish: the worker must not take a failed run for a complete one
            }
            worker.stop();
            writer.detachAndRemove();
            reader.join(10_000);
            flusher.join(10_000);
            Files.deleteIfExists(outputRing); // the worker is gone: nobody else removes it
        }
        if (failure != null) {
            throw failure;
        }
    }
}
