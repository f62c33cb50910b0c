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
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayDeque;
import java.util.Objects;

/**
 * The reading side of a ring (docs/FORMAT.md), in pure Java over a {@link MappedByteBuffer} of the
 * ring file: the mirror of {@link RingWriter} and of the C reader ({@code fti_reader_next}), with
 * the same validation of every value the writer process stored, since that memory is untrusted.
 *
 * <p>{@link #next} hands out a {@link Batch} of consecutive records as zero-copy views of the
 * mapping; the space goes back to the writer when the batch is {@linkplain Batch#release()
 * released} (batches released out of order are held until the older ones are released too). A
 * view must not be used after its batch is released: the writer may then overwrite its bytes.
 *
 * <p>Waiting spins briefly, then announces the sleep in {@code reader_sleeping}, re-checks and
 * sleeps in {@code FUTEX_WAIT} through the JNI shim, in slices of at most 100 ms; between slices
 * it checks the writer's process (pid and start time), the file size, the deadline and thread
 * interruption. A killed writer is {@link PeerLostException}, an aborted stream too (after the
 * published records are drained), a damaged ring {@link RingCorruptException}.
 *
 * <p>Threading: {@link #next} runs on one thread at a time; {@link Batch#release()} and {@link
 * #close()} may be called from any thread.
 */
public final class RingReader implements AutoCloseable {
    private static final VarHandle LONGS =
            MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INTS =
            MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    static final long SLICE_NS = RingWriter.SLICE_NS;
    static final long LIVENESS_NS = RingWriter.LIVENESS_NS;
    private static final long SPIN_NS = 20_000; // as the C reader: spin this long before a sleep
    private static final long OPEN_POLL_MS = 5;

    private final Path path;
    private final Object fileKey;
    private final MappedByteBuffer buf;
    private final ByteBuffer view; // read-only duplicate handed to batches
    private final long capacity;
    private final long mask;
    private final int align;
    private final int maxRecord;

    private long cursor; // next frame to hand out
    private long cachedWrite; // last write_pos seen: frames are readable up to it
    private long recordsOut, bytesOut, emptyWaits, emptyWaitNs;
    private boolean eof;

    private final Object releaseLock = new Object();
    private final ArrayDeque<Batch> leases = new ArrayDeque<>(); // handed out, oldest first
    private long released; // last value stored to read_pos
    private volatile boolean closed;
    private boolean detached;

    private RingReader(Path path, Object fileKey, MappedByteBuffer buf) {
        this.path = path;
        this.fileKey = fileKey;
        this.buf = buf;
        this.view = buf.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
        this.capacity = buf.getLong(CAPACITY_OFF);
        this.mask = capacity - 1;
        this.align = buf.getInt(ALIGN_OFF);
        this.maxRecord = buf.getInt(MAX_RECORD_OFF);
    }

    /**
     * Opens the ring at {@code path} as its reader, waiting up to {@code timeoutNanos} (&lt; 0: no
     * limit) for the file to appear and its creator to finish it ({@code version} stored).
     *
     * @throws RingTimeoutException if no ready ring appeared in time
     * @throws RingCorruptException if the file is not a valid ring (or of another major version)
     * @throws RingException if the ring already has a live reader
     */
    public static RingReader open(Path path, long timeoutNanos) throws IOException, InterruptedException {
        Objects.requireNonNull(path, "path");
        NativeRing.ensureLoaded(); // fail at open, not at the first sleep
        long start = System.nanoTime();
        while (true) {
            String why;
            try {
                RingReader r = tryOpen(path);
                if (r != null) {
                    return r;
                }
                why = "the ring is still being created";
            } catch (NoSuchFileException e) {
                why = "no such file";
            }
            if (timeoutNanos >= 0 && System.nanoTime() - start >= timeoutNanos) {
                throw new RingTimeoutException(path, "no ready ring after " + timeoutNanos / 1_000_000 + " ms (" + why + ")");
            }
            if (Thread.interrupted()) {
                throw new InterruptedException("interrupted while waiting for ring " + path);
            }
            Thread.sleep(OPEN_POLL_MS);
        }
    }

    /** The reader, or null when the file is not ready yet (empty, or version still 0). */
    private static RingReader tryOpen(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE,
                LinkOption.NOFOLLOW_LINKS)) { // the mapping outlives the channel
            Object key = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
            long size = ch.size();
            if (size == 0) {
                return null; // created, not yet sized
            }
            if (size < HEADER_SIZE) {
                throw new RingCorruptException(path, "not a ring file (size " + size + ")");
            }
            ByteBuffer head = ch.map(FileChannel.MapMode.READ_ONLY, 0, HEADER_SIZE).order(ByteOrder.LITTLE_ENDIAN);
            int version = (int) INTS.getAcquire(head, VERSION_OFF);
            if (version == 0) {
                return null;
            }
            checkIdentity(path, head, version, size);
            if (size > Integer.MAX_VALUE) {
                throw new RingException(path, "capacity " + (size - HEADER_SIZE) + " is too large for the Java reader "
                        + "(one mapping holds at most 2 GiB; rings up to " + MAX_CAPACITY_JAVA + " bytes)");
            }
            MappedByteBuffer m = ch.map(FileChannel.MapMode.READ_WRITE, 0, size);
            m.order(ByteOrder.LITTLE_ENDIAN);
            RingReader r = new RingReader(path, key, m);
            r.claim();
            return r;
        }
    }

    /** check_identity of fti_ring.c: every identity field read once, then checked. */
    private static void checkIdentity(Path path, ByteBuffer h, int version, long fileSize) throws RingException {
        long magic = h.getLong(MAGIC_OFF);
        if (magic != MAGIC) {
            throw new RingCorruptException(path, String.format("bad magic 0x%016x (expected 0x%016x): not a flinktf-ipc ring",
                    magic, MAGIC));
        }
        if (version >>> 16 != VERSION_MAJOR) {
            throw new RingCorruptException(path, "ring layout version " + (version >>> 16) + "." + (version & 0xffff)
                    + " is not supported (this library reads " + VERSION_MAJOR + ".x, is " + VERSION_MAJOR + "."
                    + VERSION_MINOR + ")");
        }
        int headerSize = h.getInt(HEADER_SIZE_OFF);
        long cap = h.getLong(CAPACITY_OFF);
        if (headerSize != HEADER_SIZE || cap < MIN_CAPACITY || cap > (1L << 40) || Long.bitCount(cap) != 1
                || fileSize != HEADER_SIZE + cap) {
            throw new RingCorruptException(path, "bad geometry: header_size " + headerSize + ", capacity "
                    + Long.toUnsignedString(cap) + ", file size " + fileSize);
        }
        int align = h.getInt(ALIGN_OFF);
        int maxRecord = h.getInt(MAX_RECORD_OFF);
        if ((align != 8 && align != 64) || maxRecord != Layout.maxRecord(cap)) {
            throw new RingCorruptException(path, "bad align " + align + " or max_record " + Integer.toUnsignedString(maxRecord)
                    + " for capacity " + cap);
        }
        long wp = (long) LONGS.getAcquire(h, WRITE_POS_OFF);
        long rp = (long) LONGS.getAcquire(h, READ_POS_OFF);
        if (Long.compareUnsigned(rp, wp) > 0 || Long.compareUnsigned(wp - rp, cap) > 0 || ((wp | rp) & (align - 1)) != 0) {
            throw new RingCorruptException(path, "bad positions: read " + Long.toUnsignedString(rp) + ", write "
                    + Long.toUnsignedString(wp) + ", capacity " + cap);
        }
    }

    /**
     * Claims reader_pid with a compare-and-swap, as claim_reader in fti_ring.c: a slot held by a
     * dead reader that never closed is taken over (the new reader resumes at read_pos: frames the
     * dead one held but did not release come again).
     */
    private void claim() throws RingException {
        int me = (int) ProcessInfo.selfPid();
        boolean claimed = false;
        for (int attempt = 0; attempt < 8 && !claimed; attempt++) {
            int holder = (int) INTS.compareAndExchange(buf, READER_PID_OFF, 0, me);
            if (holder == 0) {
                claimed = true;
                break;
            }
            long start = (long) LONGS.getAcquire(buf, READER_START_OFF);
            long hpid = holder & 0xffffffffL;
            long now = ProcessInfo.startTime(hpid);
            if (now != 0 && (start == 0 || now == start)) {
                throw new RingException(path, "the ring already has a reader (pid " + hpid + ")");
            }
            if ((int) INTS.getAcquire(buf, READER_CLOSED_OFF) != 0) {
                throw new RingException(path, "the ring's reader (pid " + hpid + ", now gone) closed it: its writer was "
                        + "told the stream has no reader");
            }
            // The holder is dead: take its slot, unless another newcomer did first.
            if ((int) INTS.compareAndExchange(buf, READER_PID_OFF, holder, me) == holder) {
                LONGS.setOpaque(buf, READER_START_OFF, 0L);
                claimed = true;
            }
        }
        if (!claimed) {
            throw new RingException(path, "the reader slot keeps changing hands");
        }
        // Pairs with the writer's acquire load of reader_start in its liveness check.
        LONGS.setRelease(buf, READER_START_OFF, ProcessInfo.selfStartTime());
        long rp = (long) LONGS.getAcquire(buf, READ_POS_OFF);
        long wp = (long) LONGS.getAcquire(buf, WRITE_POS_OFF);
        if ((rp & (align - 1)) != 0 || Long.compareUnsigned(rp, wp) > 0 || Long.compareUnsigned(wp - rp, capacity) > 0) {
            INTS.setRelease(buf, READER_PID_OFF, 0); // moved since the identity checks: let go of the slot
            throw new RingCorruptException(path, "read position " + Long.toUnsignedString(rp)
                    + " changed to an invalid value during open");
        }
        cursor = rp;
        cachedWrite = rp;
        released = rp;
        recordsOut = (long) LONGS.getOpaque(buf, RECORDS_OUT_OFF);
        bytesOut = (long) LONGS.getOpaque(buf, BYTES_OUT_OFF);
        emptyWaits = (long) LONGS.getOpaque(buf, EMPTY_WAITS_OFF);
        emptyWaitNs = (long) LONGS.getOpaque(buf, EMPTY_WAIT_NS_OFF);
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

    /** True once {@link #next} returned end of stream (never for an aborted stream). */
    public boolean isEndOfStream() {
        return eof;
    }

    /**
     * The next batch of up to {@code maxRecords} consecutive records, waiting up to {@code
     * timeoutNanos} (&lt; 0: no limit, 0: no wait) for at least one; null at end of stream. A batch
     * is contiguous in the mapping and covers at most half the data area, so a reader that holds
     * one batch while it waits for the next leaves the writer room for any record.
     *
     * @throws RingTimeoutException if nothing arrived in time
     * @throws PeerLostException if the writer's process is gone, or it aborted the stream (after
     *     every published record was handed out)
     * @throws RingCorruptException if a position or frame breaks the format
     * @throws InterruptedException if the thread was interrupted while waiting
     */
    public Batch next(int maxRecords, long timeoutNanos) throws IOException, InterruptedException {
        if (maxRecords < 1) {
            throw new IllegalArgumentException("maxRecords must be >= 1, got " + maxRecords);
        }
        if (closed) {
            throw new IllegalStateException("ring " + path + ": the reader is closed");
        }
        if (eof) {
            return null;
        }
        try {
            return nextBatch(maxRecords, timeoutNanos);
        } catch (InternalError e) {
            // The JDK's answer to SIGBUS on a mapping: the file was truncated under us.
            throw new RingCorruptException(path, "the ring file shrank under its mapping: " + e.getMessage());
        }
    }

    private Batch nextBatch(int maxRecords, long timeoutNanos) throws IOException, InterruptedException {
        long deadline = timeoutNanos < 0 ? Long.MAX_VALUE : System.nanoTime() + timeoutNanos;
        boolean bounded = timeoutNanos >= 0;
        int[] offsets = null;
        int[] lens = null;
        while (true) {
            if (cursor == cachedWrite) {
                wakeWriterIfSleeping(); // about to wait: a writer asleep for space must not wait on us
                awaitData(bounded, deadline, timeoutNanos);
                if (cursor == cachedWrite) { // the writer closed and everything was handed out
                    if ((int) INTS.getAcquire(buf, WRITER_CLOSED_OFF) == 2) {
                        // not end of stream: every later call says aborted again (as the C reader)
                        throw new PeerLostException(path, "the writer aborted the stream: it is incomplete");
                    }
                    eof = true;
                    return null;
                }
            }
            if (offsets == null) {
                int n = (int) Math.min(maxRecords, (capacity / 2) / align + 1); // frames are >= align bytes
                offsets = new int[n];
                lens = new int[n];
            }
            // A batch pins at most cap/2 - align bytes (a padding frame before it included), except
            // that its first record is always admitted: a writer wrapping a record of max_record
            // (cap/4) needs at most cap/2 + align bytes free, so a reader that holds one batch
            // while it waits for the next never starves the writer (fti_reader_next's rule).
            final long bound = capacity / 2 - align;
            final long pinned = cursor;
            long first = cursor & mask;
            long end = cursor;
            long bytes = 0;
            int n = 0;
            boolean same = true;
            while (n < offsets.length && end < cachedWrite) {
                long idx = end & mask;
                if (idx < first) {
                    break; // the previous frame ended exactly at the end of the data area
                }
                int at = HEADER_SIZE + (int) idx;
                // Read once: the writer could change them between check and use.
                long len = buf.getInt(at) & 0xffffffffL;
                int kind = buf.getInt(at + 4);
                long avail = cachedWrite - end;
                if (kind == FRAME_PAD) {
                    if (len != capacity - idx || len > avail) {
                        throw new RingCorruptException(path, "padding frame at position " + end + " has length " + len
                                + " (expected " + (capacity - idx) + ", " + avail + " published)");
                    }
                    if (n > 0) {
                        break; // a batch is contiguous: the next one starts after the wrap
                    }
                    end += len;
                    first = 0;
                    continue;
                }
                long fsize = Layout.frameSize(len, align);
                if (kind != FRAME_DATA || len > maxRecord || fsize > avail || idx + fsize > capacity) {
                    throw new RingCorruptException(path, "frame at position " + end + ": kind " + kind + ", length " + len
                            + " (max " + maxRecord + ", " + avail + " bytes published, " + (capacity - idx) + " to the end)");
                }
                if (n > 0 && end + fsize - pinned > bound) {
                    break;
                }
                offsets[n] = at + align;
                lens[n] = (int) len;
                bytes += len;
                same &= len == lens[0];
                n++;
                end += fsize;
            }
            if (n == 0) {
                cursor = end; // only a padding frame was published so far
                continue;
            }
            recordsOut += n;
            bytesOut += bytes;
            LONGS.setOpaque(buf, RECORDS_OUT_OFF, recordsOut);
            LONGS.setOpaque(buf, BYTES_OUT_OFF, bytesOut);
            cursor = end;
            Batch b = new Batch(this, n, offsets, lens, end);
            synchronized (releaseLock) {
                leases.addLast(b);
            }
            return b;
        }
    }

    /**
     * reader_has_data of fti_ring.c: true when a frame is readable or the writer closed (then
     * cachedWrite is final); throws on positions that break the format.
     */
    private boolean hasData() throws RingCorruptException {
        // Pairs with the writer's release store of write_pos: the frames before it are complete.
        long wp = (long) LONGS.getAcquire(buf, WRITE_POS_OFF);
        checkWritePos(wp);
        cachedWrite = wp;
        if (wp != cursor) {
            return true;
        }
        // Pairs with the writer's release store of writer_closed: write_pos is then final.
        if ((int) INTS.getAcquire(buf, WRITER_CLOSED_OFF) != 0) {
            wp = (long) LONGS.getAcquire(buf, WRITE_POS_OFF);
            checkWritePos(wp);
            cachedWrite = wp;
            return true;
        }
        return false;
    }

    private void checkWritePos(long wp) throws RingCorruptException {
        long rel;
        synchronized (releaseLock) {
            rel = released;
        }
        if (Long.compareUnsigned(wp, cachedWrite) < 0 || Long.compareUnsigned(wp - rel, capacity) > 0
                || (wp & (align - 1)) != 0) {
            throw new RingCorruptException(path, "write position " + Long.toUnsignedString(wp) + " invalid (seen "
                    + cachedWrite + ", released " + rel + ", capacity " + capacity + ")");
        }
    }

    /** wait_until of fti_ring.c for the reader: returns once hasData() said yes. */
    private void awaitData(boolean bounded, long deadline, long timeoutNanos) throws IOException, InterruptedException {
        if (hasData()) {
            return;
        }
        if (bounded && timeoutNanos == 0) {
            throw new RingTimeoutException(path, "no record arrived in time");
        }
        long start = System.nanoTime();
        LONGS.setOpaque(buf, EMPTY_WAITS_OFF, ++emptyWaits);
        try {
            for (int i = 1; System.nanoTime() - start < SPIN_NS; i++) {
                Thread.onSpinWait();
                if (hasData()) {
                    return;
                }
            }
            long nextLiveness = start;
            while (true) {
                long now = System.nanoTime();
                if (Thread.interrupted()) {
                    throw new InterruptedException("interrupted while waiting for the writer of ring " + path);
                }
                if (now - nextLiveness >= 0) {
                    checkWriterAlive();
                    checkFileSize();
                    nextLiveness = now + LIVENESS_NS;
                }
                if (closed) {
                    throw new RingClosedException(path, "the reader was closed while it waited");
                }
                long slice = SLICE_NS;
                if (bounded) {
                    long left = deadline - now;
                    if (left <= 0) {
                        throw new RingTimeoutException(path, "no record arrived within " + timeoutNanos / 1_000_000
                                + " ms (read position " + cursor + ")");
                    }
                    slice = Math.min(slice, left);
                }
                INTS.setVolatile(buf, READER_SLEEPING_OFF, 1);
                // Dekker with the writer's "release write_pos; full fence; load reader_sleeping".
                VarHandle.fullFence();
                if (hasData()) {
                    return;
                }
                int r = NativeRing.futexWait(buf, READER_SLEEPING_OFF, 1, Math.min(slice, LIVENESS_NS));
                if (r < 0 && r != -11 && r != -110 && r != -4) { // EAGAIN, ETIMEDOUT, EINTR are normal
                    throw new RingException(path, "futex wait failed: errno " + (-r));
                }
                INTS.setVolatile(buf, READER_SLEEPING_OFF, 0);
                if (hasData()) {
                    return;
                }
            }
        } finally {
            INTS.setVolatile(buf, READER_SLEEPING_OFF, 0);
            emptyWaitNs += System.nanoTime() - start;
            LONGS.setOpaque(buf, EMPTY_WAIT_NS_OFF, emptyWaitNs);
        }
    }

    private void checkWriterAlive() throws PeerLostException {
        long pid = (int) INTS.getOpaque(buf, WRITER_PID_OFF) & 0xffffffffL;
        long start = (long) LONGS.getOpaque(buf, WRITER_START_OFF);
        if (pid == 0) {
            return; // never attached
        }
        long now = ProcessInfo.startTime(pid);
        if (now == 0 || (start != 0 && now != start)) {
            throw new PeerLostException(path, "the writer process " + pid + " is gone");
        }
    }

    /**
     * A file cut shorter than its mapping would fault (SIGBUS) on the next access. By path, not by
     * descriptor: a channel would be closed by a thread interrupt. A file unlinked meanwhile is
     * fine (the mapping stays); one replaced by another is not ours to judge here.
     */
    private void checkFileSize() throws IOException {
        BasicFileAttributes a;
        try {
            a = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        } catch (NoSuchFileException e) {
            return;
        }
        long size = a.size();
        if (Objects.equals(a.fileKey(), fileKey) && size != buf.capacity()) {
            throw new RingCorruptException(path, "the ring file is " + size + " bytes, its mapping " + buf.capacity()
                    + ": it was truncated or replaced");
        }
    }

    /** Called by {@link Batch#release()}: gives back the space up to the oldest batch still held. */
    private void release(Batch b) {
        synchronized (releaseLock) {
            if (b.released) {
                return;
            }
            b.released = true;
            long end = -1;
            while (!leases.isEmpty() && leases.peekFirst().released) {
                end = leases.pollFirst().endPos;
            }
            if (end < 0 || detached || end <= released) {
                return;
            }
            released = end;
            // Pairs with the writer's acquire load of read_pos: we no longer read before it.
            LONGS.setRelease(buf, READ_POS_OFF, end);
        }
        wakeWriterIfSleeping();
    }

    private void wakeWriterIfSleeping() {
        // Dekker with the writer's "writer_sleeping = 1; full fence; re-check read_pos".
        VarHandle.fullFence();
        if ((int) INTS.getVolatile(buf, WRITER_SLEEPING_OFF) == 1) {
            INTS.setVolatile(buf, WRITER_SLEEPING_OFF, 0);
            NativeRing.futexWake(buf, WRITER_SLEEPING_OFF);
        }
    }

    /** Position up to which the space was given back (read_pos as this reader stored it). */
    public long releasedPosition() {
        synchronized (releaseLock) {
            return released;
        }
    }

    /** write_pos as the writer last published it. */
    public long writePosition() {
        return (long) LONGS.getAcquire(buf, WRITE_POS_OFF);
    }

    public long recordsRead() {
        return (long) LONGS.getOpaque(buf, RECORDS_OUT_OFF);
    }

    /**
     * Leaves the ring: stores {@code reader_closed = 1} (the writer's next write fails with
     * RingClosed), wakes a sleeping writer, and detaches; the second side to detach, or a reader
     * whose writer is gone, removes the file. Views of batches not yet released stay readable
     * (the mapping lives until the garbage collector drops it). Idempotent.
     */
    @Override
    public void close() throws IOException {
        synchronized (releaseLock) {
            if (detached) {
                return;
            }
            closed = true;
            // Pairs with the writer's acquire load of reader_closed.
            INTS.setRelease(buf, READER_CLOSED_OFF, 1);
            wakeWriterIfSleeping();
            detached = true;
            int before = (int) INTS.getAndAdd(buf, DETACHED_OFF, 1);
            boolean writerGone;
            try {
                checkWriterAlive();
                writerGone = false;
            } catch (PeerLostException e) {
                writerGone = true;
            }
            if (before >= 1 || writerGone) {
                removeIfStillOurs();
            }
        }
    }

    private void removeIfStillOurs() throws IOException {
        try {
            Object key = Files.readAttributes(path, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS).fileKey();
            if (Objects.equals(key, fileKey)) {
                Files.deleteIfExists(path);
            }
        } catch (NoSuchFileException e) {
            // already removed
        }
    }

    /** The mapping, for tests in this package. */
    ByteBuffer mapping() {
        return buf;
    }

    /**
     * Records handed out together: views of the mapping, valid until {@link #release()}. Not
     * thread-safe itself, but {@link #release()} may run on any thread.
     */
    public static final class Batch {
        private final RingReader reader;
        private final int count;
        private final int[] offsets; // payload index in the mapping
        private final int[] lens;
        final long endPos;
        private volatile boolean released;

        Batch(RingReader reader, int count, int[] offsets, int[] lens, long endPos) {
            this.reader = reader;
            this.count = count;
            this.offsets = java.util.Arrays.copyOf(offsets, count);
            this.lens = java.util.Arrays.copyOf(lens, count);
            this.endPos = endPos;
        }

        /** Records in the batch (at least 1). */
        public int count() {
            return count;
        }

        /** Payload length of record {@code i}. */
        public int length(int i) {
            return lens[Objects.checkIndex(i, count)];
        }

        /** Index of record {@code i}'s payload in {@link #buffer()}. */
        public int offset(int i) {
            return offsets[Objects.checkIndex(i, count)];
        }

        /**
         * The read-only, little-endian view of the whole mapping that {@link #offset} indexes: for
         * decoders that read in place without a slice per record. Shared: do not move its position.
         */
        public ByteBuffer buffer() {
            checkHeld();
            return reader.view;
        }

        /** Record {@code i} as a read-only little-endian slice of the mapping (no copy). */
        public ByteBuffer record(int i) {
            checkHeld();
            int off = offset(i);
            ByteBuffer d = reader.view.duplicate();
            d.limit(off + lens[i]).position(off);
            return d.slice().order(ByteOrder.LITTLE_ENDIAN);
        }

        /** A copy of record {@code i}. */
        public byte[] copy(int i) {
            byte[] out = new byte[length(i)];
            record(i).get(out);
            return out;
        }

        /** The ring position after the batch's last frame. */
        public long endPosition() {
            return endPos;
        }

        public boolean isReleased() {
            return released;
        }

        /** Gives the batch's space back (in order: after every older batch is released). Idempotent. */
        public void release() {
            reader.release(this);
        }

        private void checkHeld() {
            if (released) {
                throw new IllegalStateException("ring " + reader.path + ": the batch was released");
            }
        }
    }
}
