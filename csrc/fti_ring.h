/*
 * fti_ring.h — public API of the flinktf-ipc shared-memory ring.
 *
 * One writer process and one reader process share a file mapped MAP_SHARED (layout in
 * fti_layout.h, spec in docs/FORMAT.md). Every function returns 0 (or a count) on success
 * and -errno on failure:
 *   -EAGAIN     nothing to do without waiting and timeout_ns was 0; file not ready yet
 *   -ETIMEDOUT  the wait ran out
 *   -EMSGSIZE   record larger than the ring's max_record
 *   -EPIPE      the other side closed the ring
 *   -EOWNERDEAD the other side's process is gone (pid and start time no longer match)
 *   -EPROTO     the shared memory is corrupt (a message says where)
 *   -EPROTONOSUPPORT  the file's major layout version is not this library's
 *   -EBUSY      the ring already has a reader
 *   -ECONNABORTED  the writer aborted the stream (after the reader drained what was published)
 *   -EACCES     the file or its directory is not safe to use (owner, mode); -ELOOP a symlink
 *   -ENOSPC     no room for the ring's pages (creation reserves them all)
 * Timeouts are in nanoseconds: < 0 waits without limit, 0 never waits (but still reports a dead
 * peer: a poll checks its liveness at most every 10 ms).
 *
 * Paths: a ring's directory must not be a symlink, must belong to the user (or root) and must not
 * be writable by others unless it has the sticky bit; the file must be a regular file of the user
 * that no one else may write (docs/ARCHITECTURE.md, "Security").
 *
 * Threads: a writer handle is used by one thread at a time. A reader handle too, except that
 * fti_reader_release and fti_reader_close may be called from any thread at any time, also while
 * another thread is inside fti_reader_next (close makes that call return -EPIPE promptly).
 * fti_reader_free must not run concurrently with any other call on the handle.
 */
#ifndef FTI_RING_H
#define FTI_RING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FTI_MUST_USE __attribute__((warn_unused_result))
#else
#define FTI_MUST_USE
#endif

typedef struct fti_writer fti_writer;
typedef struct fti_reader fti_reader;

/* One record handed out by the reader: `offset` is from the batch base pointer. */
typedef struct fti_batch {
    const uint8_t *base;  /* start of the first payload of the batch */
    uint64_t end_pos;     /* ring position just past the batch: pass to fti_reader_release */
    uint32_t count;       /* records in the batch; 0 means end of stream */
    uint32_t stride;      /* distance between payloads when every record has the same size, else 0 */
} fti_batch;

typedef struct fti_layout_field {
    const char *name;
    uint32_t offset;
    uint32_t size;
} fti_layout_field;

/* A snapshot of a ring's header, read without attaching (for monitoring). */
typedef struct fti_stat {
    uint32_t version, align, max_record;
    uint64_t capacity, created_ns;
    uint64_t write_pos, read_pos;
    uint32_t writer_pid, reader_pid, writer_closed, reader_closed;
    int32_t writer_alive, reader_alive; /* 1 alive, 0 gone, -1 never attached */
    uint64_t records_in, bytes_in, full_waits, full_wait_ns;
    uint64_t records_out, bytes_out, empty_waits, empty_wait_ns;
} fti_stat;

/* ---- writer ---- */

/* Creates the file (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600) with `capacity` data bytes (a power of
 * two, >= FTI_MIN_CAPACITY) and payload alignment 8 or 64, its pages reserved (posix_fallocate:
 * -ENOSPC, and no file left, when they do not fit). -EEXIST if the path exists. On failure a
 * message is left in err. */
FTI_MUST_USE int fti_writer_create(const char *path, uint64_t capacity, uint32_t align,
                                   fti_writer **out, char *err, size_t errlen);

/* Reserves a frame for a `len`-byte record and sets *data to its payload. The record becomes
 * visible to the reader at the next fti_writer_publish. Waits while the ring is full (publishing
 * what is pending first, so the reader can make room). */
FTI_MUST_USE int fti_writer_reserve(fti_writer *w, uint32_t len, uint8_t **data, int64_t timeout_ns);

/* Makes every reserved frame visible with one release store; wakes the reader only if it sleeps. */
void fti_writer_publish(fti_writer *w);

/* reserve + copy + publish. */
FTI_MUST_USE int fti_writer_write(fti_writer *w, const void *data, uint32_t len, int64_t timeout_ns);

/* Writes `n` records and publishes them together. Returns how many were written (all of them
 * unless an error stopped it: then the error if none was written). */
FTI_MUST_USE int64_t fti_writer_writev(fti_writer *w, const void *const *data, const uint32_t *lens,
                                       uint64_t n, int64_t timeout_ns);

/* Waits until the reader has released everything published so far. */
FTI_MUST_USE int fti_writer_flush(fti_writer *w, int64_t timeout_ns);

/* Publishes what is pending and marks end of stream. The handle stays valid for stats. The only
 * way a stream ends complete: a writer freed without it is aborted. */
void fti_writer_close(fti_writer *w);

/* Publishes what is pending and marks the stream aborted: the reader drains, then gets
 * -ECONNABORTED instead of end of stream. */
void fti_writer_abort(fti_writer *w);

/* Aborts the stream unless fti_writer_close came first, unmaps and frees; removes the file when
 * the reader has detached too. */
void fti_writer_free(fti_writer *w);

uint32_t fti_writer_max_record(const fti_writer *w);
const char *fti_writer_error(const fti_writer *w); /* message of the last failure */

/* ---- reader ---- */

/* Maps an existing ring, validates its whole header and claims the reader slot (taking it over
 * from a reader process that died without closing). -ENOENT if missing, -EAGAIN if the creator
 * has not finished, -EOWNERDEAD if it died before finishing, -EBUSY if a live reader holds it. */
FTI_MUST_USE int fti_reader_open(const char *path, fti_reader **out, char *err, size_t errlen);

/* Hands out up to `max` records that follow the previously handed-out ones, contiguous in memory.
 * A batch stops at the wrap and pins at most capacity/2 - align bytes (its first record is always
 * taken): holding one batch while waiting for the next never starves the writer.
 * offsets[i]/lens[i] locate record i from batch->base. The bytes stay valid and unchanged until
 * released. batch->count == 0 means end of stream. */
FTI_MUST_USE int fti_reader_next(fti_reader *r, uint32_t max, fti_batch *batch, uint32_t *offsets,
                                 uint32_t *lens, int64_t timeout_ns);

/* Gives the space before `pos` (a batch's end_pos) back to the writer. -EINVAL (nothing done) for
 * a position before what was released or past what was handed out. Any thread. */
FTI_MUST_USE int fti_reader_release(fti_reader *r, uint64_t pos);

/* Marks the reader gone: the writer's next write fails with -EPIPE, a running or later
 * fti_reader_next returns -EPIPE. Mapping stays valid. Any thread. */
void fti_reader_close(fti_reader *r);

/* Unmaps and frees; removes the file when the writer has detached too (or is dead). */
void fti_reader_free(fti_reader *r);

uint32_t fti_reader_max_record(const fti_reader *r);
const char *fti_reader_error(const fti_reader *r);

/* ---- inspection ---- */

FTI_MUST_USE int fti_ring_stat(const char *path, fti_stat *st, char *err, size_t errlen);

/* Field table of the layout (terminated by a NULL name), for the bindings' layout tests. */
const fti_layout_field *fti_layout_fields(void);

/* Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), 0 if gone. */
uint64_t fti_process_start_time(uint32_t pid);

#ifdef __cplusplus
}
#endif
#endif /* FTI_RING_H */
