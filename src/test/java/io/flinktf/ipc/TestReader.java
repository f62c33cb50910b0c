package io.flinktf.ipc;

import static io.flinktf.ipc.internal.Layout.*;

import io.flinktf.ipc.internal.NativeRing;
import io.flinktf.ipc.internal.ProcessInfo;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A minimal reader of the ring format for the Java tests: it validates every frame like the C
 * reader (kind, length, PAD reaching the end) so the writer's frames are checked independently of
 * the C and Python code. Polls; wakes the writer after each release as FORMAT.md requires.
 */
final class TestReader implements AutoCloseable {
    private static final VarHandle LONGS = MethodHandles.byteBufferViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle INTS = MethodHandles.byteBufferViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

    final MappedByteBuffer buf;
    final long capacity;
    final int align;
    final int maxRecord;
    long pos;
    int pads;

    TestReader(Path path) throws IOException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            buf = ch.map(FileChannel.MapMode.READ_WRITE, 0, ch.size());
        }
        buf.order(ByteOrder.LITTLE_ENDIAN);
        if ((int) INTS.getAcquire(buf, VERSION_OFF) != VERSION) {
            throw new IOException("bad version");
        }
        capacity = buf.getLong(CAPACITY_OFF);
        align = buf.getInt(ALIGN_OFF);
        maxRecord = buf.getInt(MAX_RECORD_OFF);
        int me = (int) ProcessInfo.selfPid();
        if (!INTS.compareAndSet(buf, READER_PID_OFF, 0, me)) {
            throw new IOException("ring has a reader");
        }
        LONGS.setRelease(buf, READER_START_OFF, ProcessInfo.selfStartTime());
        pos = (long) LONGS.getAcquire(buf, READ_POS_OFF);
    }

    /** The next record, or null at end of stream; waits up to timeoutMs. */
    byte[] next(long timeoutMs) throws IOException, InterruptedException {
        long deadline = System.currentTimeMillis() + timeoutMs;
        while (true) {
            boolean closed = (int) INTS.getAcquire(buf, WRITER_CLOSED_OFF) == 1;
            long wp = (long) LONGS.getAcquire(buf, WRITE_POS_OFF);
            if (wp < pos || wp - pos > capacity) {
                throw new IOException("positions corrupt: read " + pos + " write " + wp);
            }
            if (wp > pos) {
                int idx = (int) (pos & (capacity - 1));
                int len = buf.getInt(HEADER_SIZE + idx);
                int kind = buf.getInt(HEADER_SIZE + idx + 4);
                if (kind == FRAME_PAD) {
                    if (len != capacity - idx) {
                        throw new IOException("PAD length " + len + " at index " + idx + " != " + (capacity - idx));
                    }
                    pads++;
                    pos += len;
                    continue;
                }
                if (kind != FRAME_DATA || len < 0 || len > maxRecord) {
                    throw new IOException("bad frame kind " + kind + " len " + len + " at " + pos);
                }
                long frame = frameSize(len, align);
                if (idx + frame > capacity || pos + frame > wp) {
                    throw new IOException("frame at " + pos + " runs past the area or write_pos");
                }
                byte[] out = new byte[len];
                java.nio.ByteBuffer d = buf.duplicate();
                d.position(HEADER_SIZE + idx + align);
                d.get(out);
                pos += frame;
                release();
                return out;
            }
            if (closed) {
                return null;
            }
            if (System.currentTimeMillis() > deadline) {
                throw new IOException("timed out waiting for a record at " + pos);
            }
            Thread.onSpinWait();
            Thread.yield();
        }
    }

    private void release() {
        LONGS.setOpaque(buf, RECORDS_OUT_OFF, (long) LONGS.getOpaque(buf, RECORDS_OUT_OFF) + 1);
        LONGS.setRelease(buf, READ_POS_OFF, pos);
        VarHandle.fullFence();
        if ((int) INTS.getVolatile(buf, WRITER_SLEEPING_OFF) == 1) {
            INTS.setVolatile(buf, WRITER_SLEEPING_OFF, 0);
            NativeRing.futexWake(buf, WRITER_SLEEPING_OFF);
        }
    }

    void markClosed() {
        INTS.setRelease(buf, READER_CLOSED_OFF, 1);
    }

    @Override
    public void close() {
        markClosed();
        INTS.getAndAdd(buf, DETACHED_OFF, 1);
    }
}
