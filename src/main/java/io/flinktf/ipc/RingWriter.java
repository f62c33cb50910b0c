package io.flinktf.ipc;

import static io.flinktf.ipc.internal.Layout.*;

import io.flinktf.ipc.internal.Layout;
import io.flinktf.ipc.internal.NativeRing;
import io.flinktf.ipc.internal.ProcessInfo;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Objects;
import java.util.Set;

/**
 * The writing side of a ring (docs/FORMAT.md), in pure Java over a {@link MappedByteBuffer} of the
 * ring file: records are copied (or encoded) straight into the shared mapping and published with
 * one release store of {@code write_pos} per batch. The only native calls are the futex wake of a
 * reader that announced it sleeps, and the futex wait when the ring is full.
 *
 * <p>Records written are staged; they become visible when a batch fills ({@link #setBatch}), when
 * the reader is seen sleeping, or on {@link #publish}, {@link #flush}, {@link #finish}. Waits are
 * bounded slices of at most 100 ms: in between the writer checks that the reader did not close and
 * that its process still exists, and honours thread interruption.
 *
 * <p>A stream ends in one of two ways, once: {@link #finish()} ends it complete (the reader drains,
 * then sees end of stream), {@link #abort()} ends it incomplete (the reader drains, then gets
 * {@link PeerLostException} "aborted"). {@link #finish()} is the only way to a complete stream:
 * {@link #close()} on a stream that was not ended aborts it, so a writer closed by
 * try-with-resources because an exception was thrown never passes a crashed producer off as a
 * complete stream (a dropped writer is not a clean close; the Python writer's {@code with} block
 * and {@code __del__} follow the same rule):
 *
 * <pre>
 * state    finish()    abort()     close()
 * open     finished    aborted     aborted, detached
 * finished (no-op)     (no-op)     detached
 * aborted  (no-op)     (no-op)     detached
 * </pre>
 *
 * <pre>{@code
 * try (RingWriter w = RingWriter.create(path, 1 << 20, 64)) {
 *     for (byte[] r : records) {
 *         w.write(r, timeout);
 *     }
 *     w.finish(); // complete; without it (an exception above) close() aborts
 * }
 * }</pre>
 *
 * <p>Not thread-safe: one thread writes. The statistics getters ({@link #fill} etc.) read the shared
 * header and may be called from any thread.
 */
public final class RingWriter implements AutoCloseable {
    // Positions and counters through a little-endian long view of the mapping: getAcquire and
    // setRelease give the orderings FORMAT.md asks for, with no private JDK API.
    private static final VarHandle LONGS =
            MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    // Flags and futex words.
    private static final VarHandle INTS =
            MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    static final long SLICE_NS = 100_000_000L; // longest single sleep: bounds liveness/cancel latency
    static final long LIVENESS_NS = 50_000_000L; // reader process check period while waiting
    private static final int SPINS = 256;

    private final Path path;
    private final Object fileKey;
    private final MappedByteBuffer buf; // the whole file: header then data area
    private final ByteBuffer data; // duplicate used for payload copies (position/limit)
    private final long capacity;
    private final long mask;
    private final int align;
    private final int maxRecord;

    private long writePos; // staged position (frames written, maybe not yet published)
    private long publishedPos; // last value stored to write_pos
    private long cachedReadPos; // last read_pos seen: refreshed only when space seems short
    private long recordsIn, bytesIn, fullWaits, fullWaitNs;
    private int pendingRecords;
    private long pendingBytes;
    private int batchRecords = 64;
    private long batchBytes;
    private long reservedFrame;
    private int openMax = -1; // >= 0 while a record reserved by reserveRecord is open: its maximum length
    private int openAt; // the open record's payload index in the mapping
    private boolean finished;
    private boolean detached;
    private boolean aborted;
    private WaitCheck waitCheck;

    /**
     * A check run between the slices of every wait (ring full, flush), before the reader's pid
     * check: it throws to end the wait, e.g. because a monitor found the reader hung.
     */
    @FunctionalInterface
    public interface WaitCheck {
        void check() throws IOException;
    }

    private RingWriter(Path path, Object fileKey, MappedByteBuffer buf, long capacity, int align, long startPos) {
        this.path = path;
        this.fileKey = fileKey;
        this.buf = buf;
        this.data = buf.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        this.capacity = capacity;
        this.mask = capacity - 1;
        this.align = align;
        this.maxRecord = (int) Layout.maxRecord(capacity);
        this.batchBytes = Math.max(capacity / 8, align);
        this.writePos = startPos;
        this.publishedPos = startPos;
        this.cachedReadPos = startPos;
    }

    /**
     * Creates the ring file at {@code path} (which must not exist) with {@code capacity} data bytes
     * (a power of two, 4096 ≤ capacity ≤ 2^30 for the Java writer) and frame alignment 8 or 64.
     * The parent directory is created with mode 0700 if missing.
     */
    public static RingWriter create(Path path, long capacity, int align) throws IOException {
        return create(path, capacity, align, 0);
    }

    /**
     * As {@link #create(Path, long, int)}, with both positions starting at {@code startPos}: tests
     * use it to place the first records just before the wrap of the data area or of 2^32.
     */
    static RingWriter create(Path path, long capacity, int align, long startPos) throws IOException {
        Objects.requireNonNull(path, "path");
        checkGeometry(capacity, align);
        if (startPos < 0 || (startPos & (align - 1)) != 0) {
            throw new IllegalArgumentException("start position must be a non-negative multiple of align");
        }
        NativeRing.ensureLoaded(); // fail at creation, not at the first sleep
        RingPaths.ensureDirectory(path.toAbsolutePath().getParent());

        Set<OpenOption> opts = new HashSet<>(Arrays.asList(StandardOpenOption.CREATE_NEW,
                StandardOpenOption.READ, StandardOpenOption.WRITE, LinkOption.NOFOLLOW_LINKS));
        long size = HEADER_SIZE + capacity;
        MappedByteBuffer buf;
        Object key;
        // CREATE_NEW + NOFOLLOW_LINKS is O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600 as fti_writer_create.
        try (FileChannel ch = FileChannel.open(path, opts,
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
            try {
                // Every page reserved now, as fti_writer_create does: a sparse file on a full
                // tmpfs would fail with SIGBUS (InternalError) at the first write to a new page.
                int rc = NativeRing.allocate(path, size);
                if (rc != 0) {
                    throw new java.nio.file.FileSystemException(path.toString(), null, "cannot reserve "
                            + size + " bytes for the ring: "
                            + (rc == -28 ? "no space left on device (ENOSPC)" : "errno " + -rc));
                }
                buf = ch.map(FileChannel.MapMode.READ_WRITE, 0, size);
                key = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
            } catch (IOException | RuntimeException e) {
                Files.deleteIfExists(path);
                throw e;
            }
        } // the mapping outlives the channel
        buf.order(ByteOrder.LITTLE_ENDIAN);
        RingWriter w = new RingWriter(path, key, buf, capacity, align, startPos);
        w.initHeader(startPos);
        return w;
    }

    /**
     * Removes a ring file left behind by a writer that is gone: its process no longer exists, or it
     * is this process and that writer already detached (an earlier attempt of a restarted task).
     * Returns false when {@code path} does not exist; throws if it belongs to a live writer or is
     * not a ring file.
     */
    public static boolean removeStale(Path path) throws IOException {
        ByteBuffer h = ByteBuffer.allocate(512).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS)) {
            while (h.hasRemaining() && ch.read(h) >= 0) {
                // read the whole header
            }
        } catch (java.nio.file.NoSuchFileException e) {
            return false;
        }
        if (h.position() < 512 || h.getLong(MAGIC_OFF) != MAGIC) {
            throw new java.nio.file.FileAlreadyExistsException(path.toString(), null,
                    "exists and is not a ring file; refusing to replace it");
        }
        long pid = h.getInt(WRITER_PID_OFF) & 0xffffffffL;
        long start = h.getLong(WRITER_START_OFF);
        boolean self = pid == ProcessInfo.selfPid() && start == ProcessInfo.selfStartTime();
        boolean stale = self ? h.getInt(DETACHED_OFF) >= 1 : !ProcessInfo.isAlive(pid, start);
        if (!stale) {
            throw new java.nio.file.FileAlreadyExistsException(path.toString(), null,
                    "ring is in use by live writer process " + pid + " (another job with the same ring name?)");
        }
        Files.deleteIfExists(path);
        return true;
    }

    static void checkGeometry(long capacity, int align) {
        if (capacity < MIN_CAPACITY || capacity > MAX_CAPACITY_JAVA || Long.bitCount(capacity) != 1) {
            throw new IllegalArgumentException("capacity must be a power of two between " + MIN_CAPACITY
                    + " and " + MAX_CAPACITY_JAVA + " bytes, got " + capacity);
        }
        if (align != 8 && align != 64) {
            throw new IllegalArgumentException("align must be 8 or 64, got " + align);
        }
    }

    private void initHeader(long startPos) {
        buf.putLong(MAGIC_OFF, MAGIC);
        buf.putInt(HEADER_SIZE_OFF, HEADER_SIZE);
        buf.putLong(CAPACITY_OFF, capacity);
        buf.putInt(ALIGN_OFF, align);
        buf.putInt(MAX_RECORD_OFF, maxRecord);
        Instant now = Instant.now();
        buf.putLong(CREATED_NS_OFF, now.getEpochSecond() * 1_000_000_000L + now.getNano());
        buf.putLong(WRITE_POS_OFF, startPos);
        buf.putInt(WRITER_PID_OFF, (int) ProcessInfo.selfPid());
        buf.putLong(WRITER_START_OFF, ProcessInfo.selfStartTime());
        buf.putLong(READ_POS_OFF, startPos);
        // Everything above is plain; this release store pairs with the reader's acquire load of
        // version: a reader that sees it non-zero sees the whole header.
        INTS.setRelease(buf, VERSION_OFF, VERSION);
    }

    /**
     * Publication policy: publish once {@code records} records or {@code bytes} payload bytes are
     * staged (defaults 64 and capacity/8). Larger batches mean fewer release stores and fences.
     */
    public void setBatch(int records, long bytes) {
        if (records < 1 || bytes < 1) {
            throw new IllegalArgumentException("batch limits must be >= 1");
        }
        this.batchRecords = records;
        this.batchBytes = bytes;
    }

    /** Installs the check run between wait slices (null: none). See {@link WaitCheck}. */
    public void setWaitCheck(WaitCheck check) {
        this.waitCheck = check;
    }

    public Path path() {
        return path;
    }

    public long capacity() {
        return capacity;
    }

    public int align() {
        return align;
    }

    public int maxRecord() {
        return maxRecord;
    }

    /** Writes {@code b} as one record. */
    public void write(byte[] b, long timeoutNanos) throws IOException, InterruptedException {
        write(b, 0, b.length, timeoutNanos);
    }

    /**
     * Writes {@code len} bytes of {@code b} from {@code off} as one record, waiting up to {@code
     * timeoutNanos} for space (&lt; 0: no limit, 0: no wait).
     *
     * @throws RecordTooLargeException if {@code len > maxRecord()}; nothing is written
     * @throws RingTimeoutException if no space freed up in time
     * @throws RingClosedException if the reader closed the ring
     * @throws PeerLostException if the reader's process is gone
     * @throws InterruptedException if the thread was interrupted while waiting
     */
    public void write(byte[] b, int off, int len, long timeoutNanos) throws IOException, InterruptedException {
        Objects.checkFromIndexSize(off, len, b.length);
        int at = reserve(len, timeoutNanos);
        data.limit(at + len).position(at);
        data.put(b, off, len);
        commit(len);
    }

    /**
     * Encodes {@code value} with {@code encoder} straight into the ring as one record; returns the
     * payload size. Same waits and exceptions as {@link #write(byte[], int, int, long)}.
     */
    public <T> int write(T value, RecordEncoder<? super T> encoder, long timeoutNanos)
            throws IOException, InterruptedException {
        int len = encoder.encodedSize(value);
        int at = reserve(len, timeoutNanos);
        data.limit(at + len).position(at);
        encoder.encode(value, data);
        if (data.position() != at + len) {
            throw new IllegalStateException("encoder " + encoder.getClass().getName() + " wrote "
                    + (data.position() - at) + " bytes but declared " + len);
        }
        commit(len);
        return len;
    }

    /**
     * Reserves a frame for one record of at most {@code maxLen} bytes that the caller fills in place
     * through {@link #reservedBuffer()} (e.g. an Arrow batch whose rows arrive one by one) and ends
     * with {@link #commitRecord} (its actual length, which may be smaller: the frame shrinks) or
     * {@link #cancelRecord}. Nothing else is written while it is open; {@link #publish} and {@link
     * #flush} cover only the records before it. Same waits and exceptions as {@link #write(byte[],
     * int, int, long)}.
     */
    public void reserveRecord(int maxLen, long timeoutNanos) throws IOException, InterruptedException {
        openAt = reserve(maxLen, timeoutNanos);
        openMax = maxLen;
    }

    /**
     * The open record's space (little-endian; index 0 is its first payload byte, the capacity its
     * maximum length). It holds old bytes: whatever the record does not write is garbage.
     */
    public ByteBuffer reservedBuffer() {
        if (openMax < 0) {
            throw new IllegalStateException("ring " + path + ": no record is reserved");
        }
        ByteBuffer d = buf.duplicate();
        d.limit(openAt + openMax).position(openAt);
        return d.slice().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** True between {@link #reserveRecord} and {@link #commitRecord} / {@link #cancelRecord}. */
    public boolean hasReservedRecord() {
        return openMax >= 0;
    }

    /** Ends the open record with its first {@code len} bytes (at most the reserved maximum) and stages it. */
    public void commitRecord(int len) throws RingClosedException {
        if (openMax < 0) {
            throw new IllegalStateException("ring " + path + ": no record is reserved");
        }
        if (len < 0 || len > openMax) {
            throw new IllegalArgumentException("record of " + len + " bytes, " + openMax + " were reserved");
        }
        openMax = -1;
        // Still unpublished: the shorter length and frame are what the reader will see.
        buf.putInt(openAt - align, len);
        reservedFrame = Layout.frameSize(len, align);
        commit(len);
    }

    /** Drops the open record (nothing of it is published); no-op without one. */
    public void cancelRecord() {
        openMax = -1;
    }

    /** Reserves a frame for a {@code len}-byte record; returns the buffer index of its payload. */
    private int reserve(int len, long timeoutNanos) throws IOException, InterruptedException {
        if (openMax >= 0) {
            throw new IllegalStateException("ring " + path + ": a reserved record is open; commit or cancel it first");
        }
        if (finished) {
            throw new IllegalStateException("ring " + path + " is already closed for writing");
        }
        if (len < 0 || len > maxRecord) {
            throw new RecordTooLargeException(path,
                    "record of " + len + " bytes exceeds max_record " + maxRecord);
        }
        long frame = Layout.frameSize(len, align);
        int idx = (int) (writePos & mask);
        long tail = capacity - idx;
        // A frame that does not fit before the end goes to index 0 behind a PAD frame.
        long need = frame <= tail ? frame : tail + frame;
        if (writePos + need - cachedReadPos > capacity) {
            refreshReadPos();
            if (writePos + need - cachedReadPos > capacity) {
                awaitReadPos(writePos + need - capacity, timeoutNanos, true);
            }
        }
        if (frame > tail) {
            buf.putInt(HEADER_SIZE + idx, (int) tail);
            buf.putInt(HEADER_SIZE + idx + 4, FRAME_PAD);
            writePos += tail;
            idx = 0;
        }
        buf.putInt(HEADER_SIZE + idx, len);
        buf.putInt(HEADER_SIZE + idx + 4, FRAME_DATA);
        reservedFrame = frame;
        return HEADER_SIZE + idx + align;
    }

    private void commit(int len) throws RingClosedException {
        writePos += reservedFrame;
        pendingRecords++;
        pendingBytes += len;
        if (pendingRecords >= batchRecords || pendingBytes >= batchBytes || readerSleeping()) {
            publish();
            // The reader line is loaded once per batch, not per record.
            if ((int) INTS.getAcquire(buf, READER_CLOSED_OFF) != 0) {
                throw new RingClosedException(path, "reader closed");
            }
        }
    }

    private boolean readerSleeping() {
        // Opaque: a hint read per record from a line the reader writes only around sleeps; the
        // fenced re-check in publish() is what makes the wake-up reliable.
        return (int) INTS.getOpaque(buf, READER_SLEEPING_OFF) != 0;
    }

    /** Makes every staged record visible with one release store, and wakes the reader if it sleeps. */
    public void publish() {
        if (writePos == publishedPos) {
            return;
        }
        recordsIn += pendingRecords;
        bytesIn += pendingBytes;
        pendingRecords = 0;
        pendingBytes = 0;
        LONGS.setOpaque(buf, RECORDS_IN_OFF, recordsIn);
        LONGS.setOpaque(buf, BYTES_IN_OFF, bytesIn);
        // Pairs with the reader's acquire load of write_pos: the frames before it are complete.
        LONGS.setRelease(buf, WRITE_POS_OFF, writePos);
        publishedPos = writePos;
        wakeReaderIfSleeping();
    }

    private void wakeReaderIfSleeping() {
        // Dekker with the reader's "reader_sleeping = 1; full fence; re-check write_pos": either it
        // sees our position or we see its announcement here.
        VarHandle.fullFence();
        if ((int) INTS.getVolatile(buf, READER_SLEEPING_OFF) == 1) {
            INTS.setVolatile(buf, READER_SLEEPING_OFF, 0);
            NativeRing.futexWake(buf, READER_SLEEPING_OFF);
        }
    }

    private void refreshReadPos() throws RingCorruptException {
        // Pairs with the reader's release store of read_pos: the bytes before it are free.
        long rp = (long) LONGS.getAcquire(buf, READ_POS_OFF);
        if (rp < cachedReadPos || rp > publishedPos || (rp & (align - 1)) != 0) {
            throw new RingCorruptException(path, "read_pos " + rp + " outside [" + cachedReadPos + ", "
                    + publishedPos + "] or not a multiple of " + align);
        }
        cachedReadPos = rp;
    }

    /**
     * Waits until read_pos ≥ target: spins briefly, then sleeps on writer_sleeping in slices of
     * at most 100 ms, checking reader_closed, the reader's process and interruption in between.
     */
    private void awaitReadPos(long target, long timeoutNanos, boolean full)
            throws IOException, InterruptedException {
        publish(); // the reader can only free space it has seen
        for (int i = 0; i < SPINS; i++) {
            refreshReadPos();
            if (cachedReadPos >= target) {
                return;
            }
            Thread.onSpinWait();
        }
        long start = System.nanoTime();
        if (full) {
            LONGS.setOpaque(buf, FULL_WAITS_OFF, ++fullWaits);
        }
        long nextLivenessCheck = start;
        try {
            while (true) {
                refreshReadPos();
                if (cachedReadPos >= target) {
                    return;
                }
                if ((int) INTS.getAcquire(buf, READER_CLOSED_OFF) != 0) {
                    throw new RingClosedException(path, "reader closed");
                }
                long now = System.nanoTime();
                if (now - nextLivenessCheck >= 0) {
                    if (waitCheck != null) {
                        waitCheck.check(); // its cause (e.g. a hung reader) names more than "gone"
                    }
                    checkReaderAlive();
                    nextLivenessCheck = now + LIVENESS_NS;
                }
                if (Thread.interrupted()) {
                    throw new InterruptedException("interrupted while waiting for the reader of ring " + path);
                }
                long remaining = timeoutNanos < 0 ? SLICE_NS : timeoutNanos - (now - start);
                if (remaining <= 0) {
                    throw new RingTimeoutException(path, (full ? "no space for " : "reader did not consume ")
                            + (target - cachedReadPos) + " bytes within " + timeoutNanos / 1_000_000 + " ms"
                            + " (write_pos " + publishedPos + ", read_pos " + cachedReadPos + ")");
                }
                INTS.setVolatile(buf, WRITER_SLEEPING_OFF, 1);
                // Dekker with the reader's "release read_pos; full fence; load writer_sleeping".
                VarHandle.fullFence();
                refreshReadPos();
                if (cachedReadPos >= target) {
                    return;
                }
                int r = NativeRing.futexWait(buf, WRITER_SLEEPING_OFF, 1, Math.min(remaining, SLICE_NS));
                if (r < 0 && r != -11 && r != -110 && r != -4) { // EAGAIN, ETIMEDOUT, EINTR are normal
                    throw new RingException(path, "futex wait failed: errno " + (-r));
                }
            }
        } finally {
            INTS.setVolatile(buf, WRITER_SLEEPING_OFF, 0);
            if (full) {
                fullWaitNs += System.nanoTime() - start;
                LONGS.setOpaque(buf, FULL_WAIT_NS_OFF, fullWaitNs);
            }
        }
    }

    private void checkReaderAlive() throws PeerLostException {
        int pid = (int) INTS.getVolatile(buf, READER_PID_OFF);
        if (pid == 0) {
            return; // no reader attached yet
        }
        long start = (long) LONGS.getAcquire(buf, READER_START_OFF);
        if (start == 0) {
            return; // the reader claimed the slot and has not stored its start time yet
        }
        if (!ProcessInfo.isAlive(pid & 0xffffffffL, start)) {
            throw new PeerLostException(path, "reader process " + (pid & 0xffffffffL) + " is gone");
        }
    }

    /**
     * Publishes everything and waits until the reader has released it all (read_pos == write_pos),
     * up to {@code timeoutNanos}.
     */
    public void flush(long timeoutNanos) throws IOException, InterruptedException {
        publish();
        refreshReadPos();
        if (cachedReadPos < publishedPos) {
            awaitReadPos(publishedPos, timeoutNanos, false);
        }
    }

    /**
     * Publishes what is staged and marks the end of the stream complete ({@code writer_closed = 1}):
     * the only way to a complete stream. No-op once the stream has ended (finished or aborted).
     */
    public void finish() {
        end(1);
    }

    /**
     * Publishes what is staged and marks the stream aborted ({@code writer_closed = 2}): the reader
     * drains what was published, then gets PeerLost ("aborted") instead of end of stream, so it
     * can tell a failed job from a slow one. No-op after {@link #finish()} or a previous abort.
     */
    public void abort() {
        if (end(2)) {
            aborted = true;
        }
    }

    /** Publishes what is staged and stores writer_closed = {@code how}; false if already ended. */
    private boolean end(int how) {
        if (finished) {
            return false;
        }
        publish();
        finished = true;
        openMax = -1; // an open record is dropped: it was never published
        // Pairs with the reader's acquire load of writer_closed, after which its load of
        // write_pos sees the final position.
        INTS.setRelease(buf, WRITER_CLOSED_OFF, how);
        wakeReaderIfSleeping();
        return true;
    }

    /** True after {@link #finish()} or {@link #abort()}: no more writes. */
    public boolean isFinished() {
        return finished;
    }

    /** True after {@link #abort()}, or {@link #close()} of a stream that was not finished. */
    public boolean isAborted() {
        return aborted;
    }

    /**
     * Leaves the ring without marking end of stream (after a failure: the reader must not take a
     * crash for a complete stream). The second side to detach removes the file.
     */
    public void detach() throws IOException {
        if (detached) {
            return;
        }
        detached = true;
        int before = (int) INTS.getAndAdd(buf, DETACHED_OFF, 1);
        if (before >= 1) {
            removeIfStillOurs();
        }
    }

    /**
     * {@link #detach()}, then removes the file even if the reader did not detach: for an owner that
     * knows the reader is gone for good (it killed the reader's process).
     */
    public void detachAndRemove() throws IOException {
        detach();
        removeIfStillOurs();
    }

    private void removeIfStillOurs() throws IOException {
        try {
            Object key = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
            if (Objects.equals(key, fileKey)) {
                Files.deleteIfExists(path);
            }
        } catch (java.nio.file.NoSuchFileException e) {
            // already removed
        }
    }

    /**
     * Leaves the ring: a stream not ended by {@link #finish()} or {@link #abort()} is aborted first
     * ({@code writer_closed = 2}: the reader drains what was published, then gets PeerLost
     * "aborted", never end of stream), then {@link #detach()}. So try-with-resources left by an
     * exception aborts; call {@link #finish()} at the end of the block for a complete stream.
     * Idempotent.
     */
    @Override
    public void close() throws IOException {
        abort(); // no-op after finish() or abort()
        detach();
    }

    // ---- statistics, readable from any thread ----

    /** write_pos as published. */
    public long writePosition() {
        return (long) LONGS.getAcquire(buf, WRITE_POS_OFF);
    }

    /** read_pos as the reader last released it. */
    public long readPosition() {
        return (long) LONGS.getAcquire(buf, READ_POS_OFF);
    }

    /** Fraction of the data area holding published, unreleased bytes (0..1). */
    public double fill() {
        long rp = readPosition();
        long wp = writePosition();
        return Math.max(0, Math.min(capacity, wp - rp)) / (double) capacity;
    }

    public long recordsWritten() {
        return (long) LONGS.getOpaque(buf, RECORDS_IN_OFF);
    }

    public long bytesWritten() {
        return (long) LONGS.getOpaque(buf, BYTES_IN_OFF);
    }

    /** Times the writer found the ring full and had to wait. */
    public long fullWaits() {
        return (long) LONGS.getOpaque(buf, FULL_WAITS_OFF);
    }

    /** Nanoseconds spent waiting for space. */
    public long fullWaitNanos() {
        return (long) LONGS.getOpaque(buf, FULL_WAIT_NS_OFF);
    }

    /** Records staged and not yet published. */
    public int pendingRecords() {
        return pendingRecords;
    }

    /** The mapping, for tests in this package. */
    ByteBuffer mapping() {
        return buf;
    }
}
