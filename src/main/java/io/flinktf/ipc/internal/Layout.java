package io.flinktf.ipc.internal;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The ring file layout as the Java writer uses it. The offsets mirror csrc/fti_layout.h (the one
 * definition); they are not trusted on their own: {@code LayoutTest} compares every one of them
 * with the table the C library reports through {@link NativeRing#layoutFields()}.
 */
public final class Layout {
    private Layout() {}

    public static final long MAGIC = 0x31474E4952495446L; // the bytes "FTIRING1" as a little-endian long
    public static final int VERSION_MAJOR = 1;
    public static final int VERSION_MINOR = 0;
    public static final int VERSION = (VERSION_MAJOR << 16) | VERSION_MINOR;

    public static final int HEADER_SIZE = 4096;
    public static final int FRAME_HEADER = 8;
    public static final long MIN_CAPACITY = 4096;
    /** The format allows 2^40; one Java mapping is limited to 2 GiB, so the Java writer stops at 2^30. */
    public static final long MAX_CAPACITY_JAVA = 1L << 30;
    public static final long MAX_RECORD_LIMIT = 1L << 30;

    public static final int FRAME_DATA = 1;
    public static final int FRAME_PAD = 2;

    // identity
    public static final int MAGIC_OFF = 0;
    public static final int VERSION_OFF = 8;
    public static final int HEADER_SIZE_OFF = 12;
    public static final int CAPACITY_OFF = 16;
    public static final int ALIGN_OFF = 24;
    public static final int MAX_RECORD_OFF = 28;
    public static final int CREATED_NS_OFF = 32;
    // writer line
    public static final int WRITE_POS_OFF = 128;
    public static final int WRITER_PID_OFF = 136;
    public static final int WRITER_CLOSED_OFF = 140;
    public static final int WRITER_START_OFF = 144;
    public static final int RECORDS_IN_OFF = 152;
    public static final int BYTES_IN_OFF = 160;
    public static final int FULL_WAITS_OFF = 168;
    public static final int FULL_WAIT_NS_OFF = 176;
    // reader line
    public static final int READ_POS_OFF = 256;
    public static final int READER_PID_OFF = 264;
    public static final int READER_CLOSED_OFF = 268;
    public static final int READER_START_OFF = 272;
    public static final int RECORDS_OUT_OFF = 280;
    public static final int BYTES_OUT_OFF = 288;
    public static final int EMPTY_WAITS_OFF = 296;
    public static final int EMPTY_WAIT_NS_OFF = 304;
    // doorbell line
    public static final int READER_SLEEPING_OFF = 384;
    public static final int WRITER_SLEEPING_OFF = 388;
    public static final int DETACHED_OFF = 392;

    /** name -> {offset, size}, in the order of FTI_LAYOUT_FIELDS, for the comparison with C. */
    public static Map<String, int[]> fields() {
        Map<String, int[]> m = new LinkedHashMap<>();
        m.put("magic", new int[] {MAGIC_OFF, 8});
        m.put("version", new int[] {VERSION_OFF, 4});
        m.put("header_size", new int[] {HEADER_SIZE_OFF, 4});
        m.put("capacity", new int[] {CAPACITY_OFF, 8});
        m.put("align", new int[] {ALIGN_OFF, 4});
        m.put("max_record", new int[] {MAX_RECORD_OFF, 4});
        m.put("created_ns", new int[] {CREATED_NS_OFF, 8});
        m.put("write_pos", new int[] {WRITE_POS_OFF, 8});
        m.put("writer_pid", new int[] {WRITER_PID_OFF, 4});
        m.put("writer_closed", new int[] {WRITER_CLOSED_OFF, 4});
        m.put("writer_start", new int[] {WRITER_START_OFF, 8});
        m.put("records_in", new int[] {RECORDS_IN_OFF, 8});
        m.put("bytes_in", new int[] {BYTES_IN_OFF, 8});
        m.put("full_waits", new int[] {FULL_WAITS_OFF, 8});
        m.put("full_wait_ns", new int[] {FULL_WAIT_NS_OFF, 8});
        m.put("read_pos", new int[] {READ_POS_OFF, 8});
        m.put("reader_pid", new int[] {READER_PID_OFF, 4});
        m.put("reader_closed", new int[] {READER_CLOSED_OFF, 4});
        m.put("reader_start", new int[] {READER_START_OFF, 8});
        m.put("records_out", new int[] {RECORDS_OUT_OFF, 8});
        m.put("bytes_out", new int[] {BYTES_OUT_OFF, 8});
        m.put("empty_waits", new int[] {EMPTY_WAITS_OFF, 8});
        m.put("empty_wait_ns", new int[] {EMPTY_WAIT_NS_OFF, 8});
        m.put("reader_sleeping", new int[] {READER_SLEEPING_OFF, 4});
        m.put("writer_sleeping", new int[] {WRITER_SLEEPING_OFF, 4});
        m.put("detached", new int[] {DETACHED_OFF, 4});
        return m;
    }

    /** Largest payload a ring of this capacity accepts: min(capacity / 4, 2^30). */
    public static long maxRecord(long capacity) {
        return Math.min(capacity / 4, MAX_RECORD_LIMIT);
    }

    /** Bytes a frame of {@code len} payload bytes occupies: align_up(align + len, align). */
    public static long frameSize(long len, int align) {
        return (align + len + align - 1) & -(long) align;
    }
}
