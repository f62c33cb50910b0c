/*
 * fti_layout.h — the one definition of the flinktf-ipc ring file layout.
 *
 * Every offset of the shared header lives here, with a static assert on each, and
 * docs/FORMAT.md mirrors it. Java and Python never hand-copy these numbers: they read
 * them through fti_layout_fields() (see fti_ring.h) and a test compares.
 *
 * All integers are little-endian. Positions are 64-bit byte counts that never wrap;
 * the data index of a position is (pos & (capacity - 1)).
 */
#ifndef FTI_LAYOUT_H
#define FTI_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define FTI_MAGIC UINT64_C(0x31474E4952495446) /* the bytes "FTIRING1" read as a little-endian u64 */
#define FTI_VERSION_MAJOR 1u
#define FTI_VERSION_MINOR 0u
#define FTI_VERSION ((FTI_VERSION_MAJOR << 16) | FTI_VERSION_MINOR)

#define FTI_HEADER_SIZE 4096u         /* data area starts one page in: payloads stay 64-aligned */
#define FTI_CACHE_LINE 128u           /* two 64-byte lines: keeps the adjacent-line prefetcher off */
#define FTI_FRAME_HEADER 8u           /* u32 length + u32 kind */
#define FTI_MIN_CAPACITY 4096u
#define FTI_MAX_CAPACITY (UINT64_C(1) << 40)

#define FTI_FRAME_DATA 1u /* a record: `length` payload bytes follow the frame header */
#define FTI_FRAME_PAD 2u  /* filler to the end of the data area: `length` is the whole frame size */

/* Frames start at multiples of `align`; the payload starts `align` bytes later when
 * align is 64 (so payloads are 64-byte aligned), 8 bytes later when align is 8.
 * A record's frame size is align_up(frame_space + length, align). */

struct fti_header {
    /* --- identity: written once by the creator, `version` last with release --- */
    uint64_t magic;          /*   0 */
    uint32_t version;        /*   8  major << 16 | minor; 0 while the file is being created */
    uint32_t header_size;    /*  12  bytes before the data area */
    uint64_t capacity;       /*  16  data area bytes, a power of two */
    uint32_t align;          /*  24  8 or 64: frame and payload alignment */
    uint32_t max_record;     /*  28  largest payload accepted: capacity / 4 */
    uint64_t created_ns;     /*  32  CLOCK_REALTIME at creation */
    uint8_t  _pad0[88];      /*  40 */

    /* --- writer line: only the writer stores here --- */
    uint64_t write_pos;      /* 128  producer position, store-release after the frames it covers */
    uint32_t writer_pid;     /* 136 */
    uint32_t writer_closed;  /* 140  1: end of stream after the last publication; 2: aborted */
    uint64_t writer_start;   /* 144  writer process start time, clock ticks since boot */
    uint64_t records_in;     /* 152 */
    uint64_t bytes_in;       /* 160  payload bytes written */
    uint64_t full_waits;     /* 168  times the writer found the ring full and had to wait */
    uint64_t full_wait_ns;   /* 176  time spent waiting for space */
    uint8_t  _pad1[72];      /* 184 */

    /* --- reader line: only the reader stores here (reader_pid is claimed with CAS) --- */
    uint64_t read_pos;       /* 256  consumer position, store-release once the bytes are unused */
    uint32_t reader_pid;     /* 264 */
    uint32_t reader_closed;  /* 268 */
    uint64_t reader_start;   /* 272 */
    uint64_t records_out;    /* 280 */
    uint64_t bytes_out;      /* 288 */
    uint64_t empty_waits;    /* 296  times the reader found the ring empty and had to wait */
    uint64_t empty_wait_ns;  /* 304 */
    uint8_t  _pad2[72];      /* 312 */

    /* --- doorbell line: futex words, written only around a sleep --- */
    uint32_t reader_sleeping; /* 384  1 while the reader sleeps (or is about to) on it */
    uint32_t writer_sleeping; /* 388  1 while the writer sleeps (or is about to) on it */
    uint32_t detached;        /* 392  sides that closed; the second one unlinks the file */
    uint8_t  _pad3[116];      /* 396 */
};

#define FTI_ASSERT_AT(field, off) \
    _Static_assert(offsetof(struct fti_header, field) == (off), #field " moved")
FTI_ASSERT_AT(magic, 0);
FTI_ASSERT_AT(version, 8);
FTI_ASSERT_AT(header_size, 12);
FTI_ASSERT_AT(capacity, 16);
FTI_ASSERT_AT(align, 24);
FTI_ASSERT_AT(max_record, 28);
FTI_ASSERT_AT(created_ns, 32);
FTI_ASSERT_AT(write_pos, 128);
FTI_ASSERT_AT(writer_pid, 136);
FTI_ASSERT_AT(writer_closed, 140);
FTI_ASSERT_AT(writer_start, 144);
FTI_ASSERT_AT(records_in, 152);
FTI_ASSERT_AT(bytes_in, 160);
FTI_ASSERT_AT(full_waits, 168);
FTI_ASSERT_AT(full_wait_ns, 176);
FTI_ASSERT_AT(read_pos, 256);
FTI_ASSERT_AT(reader_pid, 264);
FTI_ASSERT_AT(reader_closed, 268);
FTI_ASSERT_AT(reader_start, 272);
FTI_ASSERT_AT(records_out, 280);
FTI_ASSERT_AT(bytes_out, 288);
FTI_ASSERT_AT(empty_waits, 296);
FTI_ASSERT_AT(empty_wait_ns, 304);
FTI_ASSERT_AT(reader_sleeping, 384);
FTI_ASSERT_AT(writer_sleeping, 388);
FTI_ASSERT_AT(detached, 392);
_Static_assert(sizeof(struct fti_header) == 512, "header struct size");
_Static_assert(sizeof(struct fti_header) <= FTI_HEADER_SIZE, "header fits its page");

/* The table that Java and Python check their constants against. */
#define FTI_LAYOUT_FIELDS(X)                                                                 \
    X(magic) X(version) X(header_size) X(capacity) X(align) X(max_record) X(created_ns)     \
    X(write_pos) X(writer_pid) X(writer_closed) X(writer_start) X(records_in) X(bytes_in)  \
    X(full_waits) X(full_wait_ns) X(read_pos) X(reader_pid) X(reader_closed)               \
    X(reader_start) X(records_out) X(bytes_out) X(empty_waits) X(empty_wait_ns)            \
    X(reader_sleeping) X(writer_sleeping) X(detached)

#endif /* FTI_LAYOUT_H */
