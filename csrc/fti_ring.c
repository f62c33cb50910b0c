/*
 * fti_ring.c — the flinktf-ipc single-producer/single-consumer shared-memory ring.
 * Format and ordering rules: docs/FORMAT.md. Offsets: fti_layout.h.
 */
#define _GNU_SOURCE
#include "fti_ring.h"
#include "fti_layout.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <libgen.h>
#include <time.h>
#include <unistd.h>

#define SLICE_NS INT64_C(100000000) /* longest single sleep: liveness is checked at least this often */
#define SPIN_NS INT64_C(20000)      /* spin before announcing a sleep, while waits are short */
#define SPIN_MIN_NS INT64_C(2000)   /* spin when this side's waits have been long: a spin is wasted */
#define SPIN_MAX_NS INT64_C(100000) /* longest spin, when waits have been short enough to catch */
#define QUICK_SPINS 64u             /* polls before a wait reads the clock: most waits end here */
#define POLL_CHECK_NS INT64_C(10000000) /* polls (timeout 0) check the peer at most this often */
#define STALE_CREATE_NS INT64_C(2000000000) /* an unfinished header this old has no live creator */
#define ERR_LEN 256

/* The shared header, seen through atomics. Same layout as struct fti_header (asserted below):
 * fields that change after creation are _Atomic, the identity fields are plain. */
struct shm {
    uint64_t magic;
    _Atomic uint32_t version;
    uint32_t header_size;
    uint64_t capacity;
    uint32_t align;
    uint32_t max_record;
    uint64_t created_ns;
    uint8_t _pad0[88];
    _Atomic uint64_t write_pos;
    _Atomic uint32_t writer_pid;
    _Atomic uint32_t writer_closed;
    _Atomic uint64_t writer_start;
    _Atomic uint64_t records_in, bytes_in, full_waits, full_wait_ns;
    uint8_t _pad1[72];
    _Atomic uint64_t read_pos;
    _Atomic uint32_t reader_pid;
    _Atomic uint32_t reader_closed;
    _Atomic uint64_t reader_start;
    _Atomic uint64_t records_out, bytes_out, empty_waits, empty_wait_ns;
    uint8_t _pad2[72];
    _Atomic uint32_t reader_sleeping;
    _Atomic uint32_t writer_sleeping;
    _Atomic uint32_t detached;
    uint8_t _pad3[116];
};
#define SAME_AS_LAYOUT(field) \
    _Static_assert(offsetof(struct shm, field) == offsetof(struct fti_header, field), #field);
FTI_LAYOUT_FIELDS(SAME_AS_LAYOUT)
_Static_assert(sizeof(struct shm) == sizeof(struct fti_header), "shm view size");

/* State common to both ends. */
struct ring {
    struct shm *h;
    uint8_t *data;
    size_t map_len;
    uint64_t cap, mask;
    uint32_t align, max_record;
    int fd;                  /* kept open: waits compare the file size with the mapping */
    int64_t peer_checked_ns; /* last liveness check of a poll (timeout 0): rate-limits /proc reads */
    int wait_timed_out;      /* the last wait ran out: the next one resumes it (counted once) */
    int64_t wait_avg_ns;     /* moving average (1/8) of how long this side's waits lasted */
    char path[PATH_MAX];
    char err[ERR_LEN];
};

struct fti_writer {
    struct ring r;
    uint64_t pos;          /* end of the frames reserved so far */
    uint64_t published;    /* last value stored to write_pos */
    uint64_t cached_read;  /* last read_pos seen: space is free up to cached_read + cap */
    uint64_t pending_records, pending_bytes;
    int closed;
};

/* Threading: fti_reader_next runs on one thread at a time; fti_reader_release and
 * fti_reader_close may run on any thread meanwhile. So the fields those two touch are atomic, and
 * releases are serialized by `release_lock` (read_pos must only grow). */
struct fti_reader {
    struct ring r;
    _Atomic uint64_t cursor;   /* next frame to hand out (stored by next, read by release) */
    uint64_t cached_write;     /* last write_pos seen: frames are readable up to it */
    _Atomic uint64_t released; /* last value stored to read_pos */
    _Atomic int closing;       /* fti_reader_close was called: a running next returns -EPIPE */
    _Atomic int release_lock;
};

/* ------------------------------------------------------------------ helpers */

static int64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* timeout (< 0 forever, 0 never) to an absolute monotonic deadline with the same convention */
static int64_t deadline_of(int64_t timeout_ns)
{
    if (timeout_ns <= 0)
        return timeout_ns;
    return now_ns(CLOCK_MONOTONIC) + timeout_ns;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static uint64_t frame_size(const struct ring *r, uint32_t len) { return align_up((uint64_t)r->align + len, r->align); }

static void set_err(struct ring *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct ring *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t ns)
{
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    /* Not FUTEX_PRIVATE: the word lives in a mapping shared with another process. */
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, &ts, NULL, 0);
}

/* After a release store of our position: wake the other side only if it announced a sleep.
 * The seq_cst fence pairs with the one in wait_until (Dekker): either the sleeper sees our
 * position or we see its announcement. */
static void ring_doorbell(_Atomic uint32_t *sleeping)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(sleeping, memory_order_relaxed)) {
        atomic_store_explicit(sleeping, 0, memory_order_relaxed);
        syscall(SYS_futex, (uint32_t *)sleeping, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    }
}

uint64_t fti_process_start_time(uint32_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    /* The command name (field 2) may hold spaces and ')': fields resume after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return 0;
    p++;
    /* A zombie (killed, not yet reaped) keeps its /proc entry, but it will never read or write. */
    if (p[1] == 'Z' || p[1] == 'X')
        return 0;
    for (int field = 3; field < 22 && p; field++) /* p is at the space before field 3 */
        p = strchr(p + 1, ' ');
    return p ? strtoull(p + 1, NULL, 10) : 0;
}

/* 1 alive, 0 gone, -1 never attached. A start time of 0 means the peer has claimed its pid
 * slot but not yet recorded its start time: only existence can be checked then. */
static int peer_alive(uint32_t pid, uint64_t start)
{
    if (pid == 0)
        return -1;
    uint64_t now_start = fti_process_start_time(pid);
    if (now_start == 0)
        return 0;
    return start == 0 || start == now_start;
}

/* The file shrank below the mapping: touching the lost pages would raise SIGBUS. Checked where
 * it is cheap (at open, between wait slices); a truncation between two checks is not caught. */
static int ring_truncated(struct ring *r)
{
    struct stat st;
    if (r->fd < 0 || fstat(r->fd, &st) != 0 || (uint64_t)st.st_size >= r->map_len)
        return 0;
    set_err(r, "the ring file was truncated to %lld bytes under us (the ring needs %zu)",
            (long long)st.st_size, r->map_len);
    return -EPROTO;
}

/* The wait loop both sides use: `ready` returns 1 when the waiter may go on, 0 to keep
 * waiting, or -errno. Spin briefly, then announce the sleep on `sleeping` and sleep on it in
 * slices, checking the peer (and the file size) between slices. A poll (deadline 0) checks the
 * peer too, at most every POLL_CHECK_NS: a dead peer is -EOWNERDEAD whatever the timeout. */
typedef int (*ready_fn)(void *ctx);
typedef int (*peer_fn)(void *ctx);

static int peer_check(struct ring *r, peer_fn peer_ok, void *ctx)
{
    int rc = peer_ok(ctx);
    return rc < 0 ? rc : ring_truncated(r);
}

static int wait_until(struct ring *r, _Atomic uint32_t *sleeping, ready_fn ready, peer_fn peer_ok,
                      void *ctx, int64_t deadline, _Atomic uint64_t *waits, _Atomic uint64_t *wait_ns)
{
    int rc = ready(ctx);
    if (rc) {
        r->wait_timed_out = 0;
        return rc < 0 ? rc : 0;
    }
    if (deadline == 0) {
        int64_t now = now_ns(CLOCK_MONOTONIC);
        if (now - r->peer_checked_ns >= POLL_CHECK_NS) {
            r->peer_checked_ns = now;
            rc = peer_check(r, peer_ok, ctx);
            if (rc < 0)
                return rc;
            rc = ready(ctx); /* the peer may have published, then exited */
            if (rc)
                return rc < 0 ? rc : 0;
        }
        return -EAGAIN;
    }
    /* A wait that resumes one that ran out (a binding waiting in slices) is the same wait.
     * Single-writer counters: a plain load + store is enough, readers only sample them. */
    if (!r->wait_timed_out)
        atomic_store_explicit(waits, atomic_load_explicit(waits, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    /* A peer that keeps up publishes again within a few polls: such a wait costs no clock read
     * (its time, well under a microsecond, is not added to wait_ns). */
    for (unsigned i = 0; rc == 0 && i < QUICK_SPINS; i++) {
        cpu_relax();
        rc = ready(ctx);
    }
    if (rc) {
        r->wait_timed_out = 0;
        r->wait_avg_ns -= r->wait_avg_ns / 8;
        return rc < 0 ? rc : 0;
    }
    int64_t start = now_ns(CLOCK_MONOTONIC), now = start;
    /* Adaptive spin: while the recent waits were short, spin twice their length (at least
     * SPIN_NS, at most SPIN_MAX_NS) to catch the next record without the futex round trip
     * (the wake-up latency, and the peer's FUTEX_WAKE call); once they are long (a record every
     * millisecond, an idle stream), spin only SPIN_MIN_NS: there a spin burns the core without
     * ever catching one. Bounded by the deadline. */
    int64_t spin = 2 * r->wait_avg_ns;
    spin = spin > SPIN_MAX_NS ? SPIN_MIN_NS : spin < SPIN_NS ? SPIN_NS : spin;
    if (deadline > 0 && deadline - start < spin)
        spin = deadline - start;
    for (unsigned i = 1; rc == 0 && now - start < spin; i++) {
        cpu_relax();
        rc = ready(ctx);
        if ((i & 63) == 0)
            now = now_ns(CLOCK_MONOTONIC);
    }
    while (rc == 0) {
        rc = peer_check(r, peer_ok, ctx);
        if (rc < 0)
            break;
        now = now_ns(CLOCK_MONOTONIC);
        if (deadline > 0 && now >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        int64_t slice = deadline > 0 && deadline - now < SLICE_NS ? deadline - now : SLICE_NS;
        atomic_store_explicit(sleeping, 1, memory_order_relaxed);
        /* pairs with the fence in ring_doorbell */
        atomic_thread_fence(memory_order_seq_cst);
        rc = ready(ctx);
        if (rc == 0)
            futex_wait(sleeping, 1, slice);
        atomic_store_explicit(sleeping, 0, memory_order_relaxed);
        if (rc == 0)
            rc = ready(ctx);
    }
    r->wait_timed_out = rc == -ETIMEDOUT;
    int64_t spent = now_ns(CLOCK_MONOTONIC) - start;
    r->wait_avg_ns += (spent - r->wait_avg_ns) / 8;
    atomic_store_explicit(wait_ns, atomic_load_explicit(wait_ns, memory_order_relaxed) + (uint64_t)spent,
                          memory_order_relaxed);
    return rc < 0 ? rc : 0;
}

static void ring_unmap(struct ring *r)
{
    if (r->h)
        munmap(r->h, r->map_len);
    r->h = NULL;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
}

/* Leaves the ring and unmaps it. The second side to leave removes the file; so does a side whose
 * peer (given by its pid and start time slots) died. A peer that never attached counts as alive:
 * a reader may still come to drain the ring. */
static void ring_leave(struct ring *r, _Atomic uint32_t *peer_pid, _Atomic uint64_t *peer_start)
{
    int peer = peer_alive(atomic_load_explicit(peer_pid, memory_order_acquire),
                          atomic_load_explicit(peer_start, memory_order_relaxed));
    uint32_t before = atomic_fetch_add_explicit(&r->h->detached, 1, memory_order_acq_rel);
    if (before >= 1 || peer == 0) {
        /* only if the name still means our file: it may have been removed and made anew (the
         * next ring of the same name) while we were leaving */
        struct stat mine, named;
        if (r->fd < 0 || (fstat(r->fd, &mine) == 0 && lstat(r->path, &named) == 0 &&
                          mine.st_dev == named.st_dev && mine.st_ino == named.st_ino))
            unlink(r->path);
    }
    ring_unmap(r);
}

/* ------------------------------------------------------------------ files */

/* Opens `path` for a ring the way a bare name in the 0700 ring directory would be safe: the
 * parent directory must not be a symlink, must belong to us (or root) and must not be writable
 * by others unless sticky (/dev/shm, /tmp); an existing file must be a regular file of ours that
 * no one else may write. Returns the fd or -errno with a message in err. */
static int open_ring_file(const char *path, int flags, char *err, size_t errlen)
{
    if (path[0] == '\0') {
        snprintf(err, errlen, "empty ring path");
        return -EINVAL;
    }
    if (strlen(path) >= PATH_MAX) {
        snprintf(err, errlen, "path too long");
        return -ENAMETOOLONG;
    }
    char dir_buf[PATH_MAX], base_buf[PATH_MAX];
    strcpy(dir_buf, path);
    strcpy(base_buf, path);
    const char *dir = dirname(dir_buf), *base = basename(base_buf);
    size_t plen = strlen(path);
    if (path[plen - 1] == '/' || !strcmp(base, ".") || !strcmp(base, "..") || !strcmp(base, "/")) {
        snprintf(err, errlen, "%s names a directory, not a ring file", path);
        return -EISDIR;
    }
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        int e = errno;
        struct stat ls;
        if ((e == ELOOP || e == ENOTDIR) && lstat(dir, &ls) == 0 && S_ISLNK(ls.st_mode)) {
            snprintf(err, errlen, "directory %s is a symlink: refusing to follow it to a ring", dir);
            return -ELOOP;
        }
        snprintf(err, errlen, "directory %s: %s", dir, strerror(e));
        return -e;
    }
    struct stat ds;
    uid_t me = geteuid();
    if (fstat(dfd, &ds) != 0) {
        int e = errno;
        close(dfd);
        snprintf(err, errlen, "directory %s: %s", dir, strerror(e));
        return -e;
    }
    if (ds.st_uid != me && ds.st_uid != 0) {
        close(dfd);
        snprintf(err, errlen, "directory %s belongs to uid %u, not to us (%u) nor root", dir,
                 (unsigned)ds.st_uid, (unsigned)me);
        return -EACCES;
    }
    if ((ds.st_mode & (S_IWGRP | S_IWOTH)) && !(ds.st_mode & S_ISVTX)) {
        close(dfd);
        snprintf(err, errlen, "directory %s is writable by others (mode %o) without the sticky bit: "
                 "anyone could replace the ring", dir, (unsigned)(ds.st_mode & 07777));
        return -EACCES;
    }
    int fd = openat(dfd, base, flags | O_NOFOLLOW | O_CLOEXEC, 0600);
    int e = errno;
    close(dfd);
    if (fd < 0) {
        if (e == ELOOP)
            snprintf(err, errlen, "%s is a symlink: refusing to follow it", path);
        else
            snprintf(err, errlen, "%s", strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        e = errno;
        close(fd);
        snprintf(err, errlen, "%s", strerror(e));
        return -e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "not a regular file (mode %o)", (unsigned)st.st_mode);
        return -EPROTO;
    }
    if (st.st_uid != me) {
        close(fd);
        snprintf(err, errlen, "the file belongs to uid %u, not to us (%u): refusing to use it",
                 (unsigned)st.st_uid, (unsigned)me);
        return -EACCES;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        close(fd);
        snprintf(err, errlen, "the file is writable by others (mode %o): refusing to use it",
                 (unsigned)(st.st_mode & 07777));
        return -EACCES;
    }
    return fd;
}

/* ------------------------------------------------------------------ layout */

const fti_layout_field *fti_layout_fields(void)
{
#define FIELD_ROW(f) {#f, (uint32_t)offsetof(struct fti_header, f), (uint32_t)sizeof(((struct fti_header *)0)->f)},
    static const fti_layout_field fields[] = {FTI_LAYOUT_FIELDS(FIELD_ROW){NULL, 0, 0}};
#undef FIELD_ROW
    return fields;
}

/* ------------------------------------------------------------------ writer */

static uint32_t max_record_for(uint64_t capacity)
{
    uint64_t m = capacity / 4;
    return m > (UINT64_C(1) << 30) ? (UINT32_C(1) << 30) : (uint32_t)m;
}

int fti_writer_create(const char *path, uint64_t capacity, uint32_t align, fti_writer **out, char *err,
                      size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    if (capacity < FTI_MIN_CAPACITY || capacity > FTI_MAX_CAPACITY || (capacity & (capacity - 1)) ||
        (align != 8 && align != 64)) {
        snprintf(err, errlen, "capacity must be a power of two in [%u, 2^40] and align 8 or 64",
                 FTI_MIN_CAPACITY);
        return -EINVAL;
    }
    fti_writer *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    int fd = open_ring_file(path, O_RDWR | O_CREAT | O_EXCL, err, errlen);
    if (fd < 0) {
        free(w);
        return fd;
    }
    size_t len = FTI_HEADER_SIZE + capacity;
    /* Reserve every page now: a sparse file on a full tmpfs would SIGBUS at the first write
     * that touches a new page. posix_fallocate returns the error number itself. */
    int rc = -posix_fallocate(fd, 0, (off_t)len);
    if (rc)
        snprintf(err, errlen, "cannot reserve %zu bytes for the ring: %s", len, strerror(-rc));
    /* Populated like the reader's: the writer's first pass over the ring then takes no page
     * faults (a 64 MiB ring's first pass took ~16,000, one per 4 KiB page, on the hot path). */
    void *m = rc ? MAP_FAILED : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (!rc && m == MAP_FAILED) {
        rc = -errno;
        snprintf(err, errlen, "cannot map %zu bytes: %s", len, strerror(-rc));
    }
    if (rc) {
        close(fd);
        unlink(path);
        free(w);
        return rc;
    }
    struct ring *r = &w->r;
    r->h = m;
    r->fd = fd;
    r->data = (uint8_t *)m + FTI_HEADER_SIZE;
    r->map_len = len;
    r->cap = capacity;
    r->mask = capacity - 1;
    r->align = align;
    r->max_record = max_record_for(capacity);
    r->wait_avg_ns = SPIN_NS / 2;
    strcpy(r->path, path);

    struct shm *h = r->h;
    h->magic = FTI_MAGIC;
    h->header_size = FTI_HEADER_SIZE;
    h->capacity = capacity;
    h->align = align;
    h->max_record = r->max_record;
    h->created_ns = (uint64_t)now_ns(CLOCK_REALTIME);
    atomic_store_explicit(&h->writer_pid, (uint32_t)getpid(), memory_order_relaxed);
    atomic_store_explicit(&h->writer_start, fti_process_start_time((uint32_t)getpid()), memory_order_relaxed);
    /* Last, with release: pairs with the acquire load in fti_reader_open, so a reader that sees
     * a version sees every other header field. */
    atomic_store_explicit(&h->version, FTI_VERSION, memory_order_release);
    *out = w;
    return 0;
}

static int writer_space_ready(void *ctx);
static int writer_peer_ok(void *ctx);

struct space_wait {
    fti_writer *w;
    uint64_t need;
};

/* Reloads read_pos (acquire: pairs with the release in fti_reader_release, so the bytes before
 * it are no longer read) and checks it against what this writer published. */
static int writer_refresh(fti_writer *w)
{
    uint64_t rp = atomic_load_explicit(&w->r.h->read_pos, memory_order_acquire);
    if (rp < w->cached_read || rp > w->published || rp % w->r.align) {
        set_err(&w->r, "read position %llu outside [%llu, %llu] or not a multiple of %u",
                (unsigned long long)rp, (unsigned long long)w->cached_read,
                (unsigned long long)w->published, w->r.align);
        return -EPROTO;
    }
    w->cached_read = rp;
    return 0;
}

static int writer_reader_gone(fti_writer *w)
{
    if (atomic_load_explicit(&w->r.h->reader_closed, memory_order_acquire)) {
        set_err(&w->r, "the reader closed the ring");
        return -EPIPE;
    }
    return 0;
}

static int writer_space_ready(void *ctx)
{
    struct space_wait *sw = ctx;
    int rc = writer_reader_gone(sw->w);
    if (!rc)
        rc = writer_refresh(sw->w);
    if (rc)
        return rc;
    return sw->w->r.cap - (sw->w->pos - sw->w->cached_read) >= sw->need;
}

static int writer_peer_ok(void *ctx)
{
    fti_writer *w = ((struct space_wait *)ctx)->w;
    struct shm *h = w->r.h;
    uint32_t pid = atomic_load_explicit(&h->reader_pid, memory_order_acquire);
    if (peer_alive(pid, atomic_load_explicit(&h->reader_start, memory_order_relaxed)) == 0) {
        set_err(&w->r, "the reader process %u is gone", pid);
        return -EOWNERDEAD;
    }
    return 0;
}

static int reserve_until(fti_writer *w, uint32_t len, uint8_t **data, int64_t deadline)
{
    struct ring *r = &w->r;
    if (w->closed) {
        set_err(r, "write after close");
        return -EPIPE;
    }
    if (len > r->max_record) {
        set_err(r, "record of %u bytes exceeds the ring's maximum of %u bytes", len, r->max_record);
        return -EMSGSIZE;
    }
    int rc = writer_reader_gone(w);
    if (rc)
        return rc;
    uint64_t fsize = frame_size(r, len);
    uint64_t idx = w->pos & r->mask, to_end = r->cap - idx;
    uint64_t need = fsize > to_end ? to_end + fsize : fsize;
    if (r->cap - (w->pos - w->cached_read) < need) {
        struct space_wait sw = {w, need};
        rc = writer_space_ready(&sw);
        if (rc == 0) {
            /* The reader can only make room from what it can see. */
            fti_writer_publish(w);
            rc = wait_until(r, &r->h->writer_sleeping, writer_space_ready, writer_peer_ok, &sw, deadline,
                            &r->h->full_waits, &r->h->full_wait_ns);
            if (rc == -EAGAIN || rc == -ETIMEDOUT)
                set_err(r, "the ring stayed full (%llu bytes needed)", (unsigned long long)need);
        }
        if (rc < 0)
            return rc;
    }
    if (fsize > to_end) {
        uint32_t *pad = (uint32_t *)(r->data + idx);
        pad[0] = (uint32_t)to_end;
        pad[1] = FTI_FRAME_PAD;
        w->pos += to_end;
        idx = 0;
    }
    uint32_t *hdr = (uint32_t *)(r->data + idx);
    hdr[0] = len;
    hdr[1] = FTI_FRAME_DATA;
    *data = r->data + idx + r->align;
    w->pos += fsize;
    w->pending_records++;
    w->pending_bytes += len;
    return 0;
}

/* Out of line so that the fast path below saves no registers. */
static __attribute__((noinline)) int reserve_slow(fti_writer *w, uint32_t len, uint8_t **data, int64_t timeout_ns)
{
    return reserve_until(w, len, data, deadline_of(timeout_ns));
}

int fti_writer_reserve(fti_writer *w, uint32_t len, uint8_t **data, int64_t timeout_ns)
{
    /* Fast path, taken by almost every record: the frame fits before the end of the data area
     * and in the space already known free. The same checks as reserve_until, in locals. */
    struct ring *r = &w->r;
    const uint64_t a = r->align, pos = w->pos, cap = r->cap;
    const uint64_t fsize = (a + len + a - 1) & ~(a - 1), idx = pos & r->mask;
    if (__builtin_expect(!w->closed && len <= r->max_record && fsize <= cap - idx &&
                         cap - (pos - w->cached_read) >= fsize &&
                         !atomic_load_explicit(&r->h->reader_closed, memory_order_acquire), 1)) {
        uint8_t *frame = r->data + idx;
        ((uint32_t *)frame)[0] = len;
        ((uint32_t *)frame)[1] = FTI_FRAME_DATA;
        *data = frame + a;
        w->pos = pos + fsize;
        w->pending_records++;
        w->pending_bytes += len;
        return 0;
    }
    return reserve_slow(w, len, data, timeout_ns);
}

void fti_writer_publish(fti_writer *w)
{
    if (w->pos == w->published)
        return;
    struct shm *h = w->r.h;
    atomic_store_explicit(&h->records_in,
                          atomic_load_explicit(&h->records_in, memory_order_relaxed) + w->pending_records,
                          memory_order_relaxed);
    atomic_store_explicit(&h->bytes_in,
                          atomic_load_explicit(&h->bytes_in, memory_order_relaxed) + w->pending_bytes,
                          memory_order_relaxed);
    w->pending_records = w->pending_bytes = 0;
    /* pairs with the acquire load of write_pos in the reader: frames before it are complete */
    atomic_store_explicit(&h->write_pos, w->pos, memory_order_release);
    w->published = w->pos;
    ring_doorbell(&h->reader_sleeping);
}

int fti_writer_write(fti_writer *w, const void *data, uint32_t len, int64_t timeout_ns)
{
    uint8_t *dst;
    int rc = reserve_until(w, len, &dst, deadline_of(timeout_ns));
    if (rc)
        return rc;
    memcpy(dst, data, len);
    fti_writer_publish(w);
    return 0;
}

int64_t fti_writer_writev(fti_writer *w, const void *const *data, const uint32_t *lens, uint64_t n,
                          int64_t timeout_ns)
{
    int64_t deadline = deadline_of(timeout_ns);
    uint64_t i;
    int rc = 0;
    for (i = 0; i < n; i++) {
        uint8_t *dst;
        rc = reserve_until(w, lens[i], &dst, deadline);
        if (rc)
            break;
        memcpy(dst, data[i], lens[i]);
    }
    fti_writer_publish(w);
    return i > 0 ? (int64_t)i : rc;
}

static int writer_drained(void *ctx)
{
    fti_writer *w = ((struct space_wait *)ctx)->w;
    int rc = writer_refresh(w);
    if (rc)
        return rc;
    if (w->cached_read == w->published)
        return 1;
    return writer_reader_gone(w);
}

int fti_writer_flush(fti_writer *w, int64_t timeout_ns)
{
    fti_writer_publish(w);
    struct space_wait sw = {w, 0};
    int rc = wait_until(&w->r, &w->r.h->writer_sleeping, writer_drained, writer_peer_ok, &sw,
                        deadline_of(timeout_ns), &w->r.h->full_waits, &w->r.h->full_wait_ns);
    if (rc == -EAGAIN || rc == -ETIMEDOUT)
        set_err(&w->r, "the reader has not consumed %llu published bytes",
                (unsigned long long)(w->published - w->cached_read));
    return rc;
}

static void writer_end(fti_writer *w, uint32_t how)
{
    if (w->closed)
        return;
    fti_writer_publish(w);
    w->closed = 1;
    /* pairs with the acquire load of writer_closed in the reader: write_pos is final */
    atomic_store_explicit(&w->r.h->writer_closed, how, memory_order_release);
    ring_doorbell(&w->r.h->reader_sleeping);
}

void fti_writer_close(fti_writer *w) { writer_end(w, 1); }
void fti_writer_abort(fti_writer *w) { writer_end(w, 2); }

void fti_writer_free(fti_writer *w)
{
    if (!w)
        return;
    /* Only fti_writer_close ends a stream: a writer freed without it (its producer failed, an
     * exception unwound past it) must not look complete to the reader. */
    fti_writer_abort(w);
    ring_leave(&w->r, &w->r.h->reader_pid, &w->r.h->reader_start);
    free(w);
}

uint32_t fti_writer_max_record(const fti_writer *w) { return w->r.max_record; }
const char *fti_writer_error(const fti_writer *w) { return w->r.err; }

/* ------------------------------------------------------------------ open and validate */

/* The identity block and positions, copied once out of untrusted memory: everything after the
 * checks uses this copy, never the shared header again (the peer may change it meanwhile). */
struct identity {
    uint64_t magic, capacity, created_ns, write_pos, read_pos, writer_start;
    uint32_t version, header_size, align, max_record, writer_pid;
};

static void copy_identity(const struct shm *h, struct identity *id)
{
    id->version = atomic_load_explicit(&h->version, memory_order_acquire); /* first: pairs with create */
    id->magic = __atomic_load_n(&h->magic, __ATOMIC_RELAXED);
    id->header_size = __atomic_load_n(&h->header_size, __ATOMIC_RELAXED);
    id->capacity = __atomic_load_n(&h->capacity, __ATOMIC_RELAXED);
    id->align = __atomic_load_n(&h->align, __ATOMIC_RELAXED);
    id->max_record = __atomic_load_n(&h->max_record, __ATOMIC_RELAXED);
    id->created_ns = __atomic_load_n(&h->created_ns, __ATOMIC_RELAXED);
    id->write_pos = atomic_load_explicit(&h->write_pos, memory_order_acquire);
    id->read_pos = atomic_load_explicit(&h->read_pos, memory_order_acquire);
    id->writer_pid = atomic_load_explicit(&h->writer_pid, memory_order_relaxed);
    id->writer_start = atomic_load_explicit(&h->writer_start, memory_order_relaxed);
}

/* Checks a copied identity block against the file. */
static int check_identity(const struct identity *id, const struct stat *st, char *err, size_t errlen)
{
    uint64_t file_size = (uint64_t)st->st_size;
    if (id->version == 0) {
        /* Not finished yet, or never will be: a creator that died, or a file of zeros. */
        if (peer_alive(id->writer_pid, id->writer_start) == 0) {
            snprintf(err, errlen, "its creator (pid %u) died before finishing the ring", id->writer_pid);
            return -EOWNERDEAD;
        }
        int64_t changed = (int64_t)(st->st_ctim.tv_sec > st->st_mtim.tv_sec ? st->st_ctim.tv_sec
                                                                             : st->st_mtim.tv_sec);
        int64_t age_s = now_ns(CLOCK_REALTIME) / 1000000000 - changed;
        if (id->writer_pid == 0 && age_s * 1000000000 > STALE_CREATE_NS) {
            snprintf(err, errlen, "the header is still empty %llds after the file was made: not a ring, "
                     "or its creator died", (long long)age_s);
            return -EPROTO;
        }
        snprintf(err, errlen, "the ring is still being created");
        return -EAGAIN;
    }
    if (id->magic != FTI_MAGIC) {
        snprintf(err, errlen, "bad magic 0x%016llx (expected 0x%016llx): not a flinktf-ipc ring",
                 (unsigned long long)id->magic, (unsigned long long)FTI_MAGIC);
        return -EPROTO;
    }
    if (id->version >> 16 != FTI_VERSION_MAJOR) {
        snprintf(err, errlen, "ring layout version %u.%u is not supported (this library reads %u.x, is %u.%u)",
                 id->version >> 16, id->version & 0xffff, FTI_VERSION_MAJOR, FTI_VERSION_MAJOR,
                 FTI_VERSION_MINOR);
        return -EPROTONOSUPPORT;
    }
    uint64_t cap = id->capacity;
    if (id->header_size != FTI_HEADER_SIZE || cap < FTI_MIN_CAPACITY || cap > FTI_MAX_CAPACITY ||
        (cap & (cap - 1)) || file_size != FTI_HEADER_SIZE + cap) {
        snprintf(err, errlen, "bad geometry: header_size %u, capacity %llu, file size %llu",
                 id->header_size, (unsigned long long)cap, (unsigned long long)file_size);
        return -EPROTO;
    }
    if ((id->align != 8 && id->align != 64) || id->max_record != max_record_for(cap)) {
        snprintf(err, errlen, "bad align %u or max_record %u for capacity %llu", id->align, id->max_record,
                 (unsigned long long)cap);
        return -EPROTO;
    }
    uint64_t wp = id->write_pos, rp = id->read_pos;
    if (rp > wp || wp - rp > cap || (wp | rp) % id->align) {
        snprintf(err, errlen, "bad positions: read %llu, write %llu, capacity %llu", (unsigned long long)rp,
                 (unsigned long long)wp, (unsigned long long)cap);
        return -EPROTO;
    }
    return 0;
}

/* Maps `path` (PROT_READ|PROT_WRITE unless readonly) and validates its header; fills `id` with
 * the copy the ring was set up from. */
static int map_ring(struct ring *r, const char *path, int readonly, struct identity *id, char *err,
                    size_t errlen)
{
    r->fd = -1;
    int fd = open_ring_file(path, readonly ? O_RDONLY : O_RDWR, err, errlen);
    if (fd < 0)
        return fd;
    struct stat st;
    int rc = fstat(fd, &st) ? -errno : 0;
    if (!rc && (uint64_t)st.st_size < FTI_HEADER_SIZE) {
        int64_t age_ns = now_ns(CLOCK_REALTIME) - ((int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec);
        if (st.st_size == 0 && age_ns <= STALE_CREATE_NS) {
            snprintf(err, errlen, "the ring is still being created (empty file)");
            rc = -EAGAIN;
        } else {
            snprintf(err, errlen, "not a ring file (size %lld)", (long long)st.st_size);
            rc = -EPROTO;
        }
    }
    void *m = MAP_FAILED;
    size_t len = rc ? 0 : (readonly ? FTI_HEADER_SIZE : (size_t)st.st_size);
    if (!rc) {
        /* The reader's mapping is populated at open: its first pass over the ring then takes no
         * page faults (measured 7 GB/s on first touch against 20 GB/s mapped). */
        m = mmap(NULL, len, readonly ? PROT_READ : PROT_READ | PROT_WRITE,
                 readonly ? MAP_SHARED : MAP_SHARED | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = -errno;
            snprintf(err, errlen, "cannot map %zu bytes: %s", len, strerror(-rc));
        }
    }
    if (!rc) {
        copy_identity(m, id);
        rc = check_identity(id, &st, err, errlen);
        if (rc)
            munmap(m, len);
    }
    if (rc) {
        close(fd);
        return rc;
    }
    r->h = m;
    r->fd = fd;
    r->map_len = len;
    r->cap = id->capacity;
    r->mask = r->cap - 1;
    r->align = id->align;
    r->max_record = id->max_record;
    r->data = readonly ? NULL : (uint8_t *)m + FTI_HEADER_SIZE;
    strcpy(r->path, path);
    return 0;
}

int fti_ring_stat(const char *path, fti_stat *st, char *err, size_t errlen)
{
    struct ring r = {0};
    struct identity id;
    int rc = map_ring(&r, path, 1, &id, err, errlen);
    if (rc)
        return rc;
    struct shm *h = r.h;
    memset(st, 0, sizeof *st);
    st->version = id.version;
    st->align = id.align;
    st->max_record = id.max_record;
    st->capacity = id.capacity;
    st->created_ns = id.created_ns;
    st->write_pos = atomic_load_explicit(&h->write_pos, memory_order_acquire);
    st->read_pos = atomic_load_explicit(&h->read_pos, memory_order_acquire);
    st->writer_pid = atomic_load_explicit(&h->writer_pid, memory_order_relaxed);
    st->reader_pid = atomic_load_explicit(&h->reader_pid, memory_order_relaxed);
    st->writer_closed = atomic_load_explicit(&h->writer_closed, memory_order_relaxed);
    st->reader_closed = atomic_load_explicit(&h->reader_closed, memory_order_relaxed);
    st->writer_alive = peer_alive(st->writer_pid, atomic_load_explicit(&h->writer_start, memory_order_relaxed));
    st->reader_alive = peer_alive(st->reader_pid, atomic_load_explicit(&h->reader_start, memory_order_relaxed));
    st->records_in = atomic_load_explicit(&h->records_in, memory_order_relaxed);
    st->bytes_in = atomic_load_explicit(&h->bytes_in, memory_order_relaxed);
    st->full_waits = atomic_load_explicit(&h->full_waits, memory_order_relaxed);
    st->full_wait_ns = atomic_load_explicit(&h->full_wait_ns, memory_order_relaxed);
    st->records_out = atomic_load_explicit(&h->records_out, memory_order_relaxed);
    st->bytes_out = atomic_load_explicit(&h->bytes_out, memory_order_relaxed);
    st->empty_waits = atomic_load_explicit(&h->empty_waits, memory_order_relaxed);
    st->empty_wait_ns = atomic_load_explicit(&h->empty_wait_ns, memory_order_relaxed);
    ring_unmap(&r);
    return 0;
}

/* ------------------------------------------------------------------ reader */

/* Claims the reader slot. A slot held by a dead reader that never closed is taken over: the new
 * reader resumes at read_pos (frames the dead one had but did not release come again). */
static int claim_reader(struct shm *h, char *err, size_t errlen)
{
    uint32_t me = (uint32_t)getpid();
    for (int attempt = 0; attempt < 8; attempt++) {
        uint32_t holder = 0;
        if (atomic_compare_exchange_strong_explicit(&h->reader_pid, &holder, me, memory_order_acq_rel,
                                                    memory_order_acquire))
            return 0;
        uint64_t start = atomic_load_explicit(&h->reader_start, memory_order_acquire);
        if (peer_alive(holder, start) != 0) {
            snprintf(err, errlen, "the ring already has a reader (pid %u)", holder);
            return -EBUSY;
        }
        if (atomic_load_explicit(&h->reader_closed, memory_order_acquire)) {
            snprintf(err, errlen, "the ring's reader (pid %u, now gone) closed it: its writer was told "
                     "the stream has no reader", holder);
            return -EBUSY;
        }
        /* The holder is dead: take its slot, unless another newcomer did first. */
        if (atomic_compare_exchange_strong_explicit(&h->reader_pid, &holder, me, memory_order_acq_rel,
                                                    memory_order_acquire)) {
            atomic_store_explicit(&h->reader_start, 0, memory_order_relaxed);
            return 0;
        }
    }
    snprintf(err, errlen, "the reader slot keeps changing hands");
    return -EBUSY;
}

int fti_reader_open(const char *path, fti_reader **out, char *err, size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    fti_reader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return -ENOMEM;
    struct identity id;
    int rc = map_ring(&rd->r, path, 0, &id, err, errlen);
    if (rc) {
        free(rd);
        return rc;
    }
    struct shm *h = rd->r.h;
    rc = claim_reader(h, err, errlen);
    if (rc) {
        ring_unmap(&rd->r);
        free(rd);
        return rc;
    }
    atomic_store_explicit(&h->reader_start, fti_process_start_time((uint32_t)getpid()), memory_order_release);
    uint64_t rp = atomic_load_explicit(&h->read_pos, memory_order_acquire);
    if (rp % rd->r.align || rp < id.read_pos || rp > id.write_pos) { /* moved since the checks */
        snprintf(err, errlen, "read position %llu changed to an invalid value during open", (unsigned long long)rp);
        atomic_store_explicit(&h->reader_pid, 0, memory_order_release);
        ring_unmap(&rd->r);
        free(rd);
        return -EPROTO;
    }
    rd->cached_write = rp;
    rd->r.wait_avg_ns = SPIN_NS / 2;
    atomic_store_explicit(&rd->cursor, rp, memory_order_relaxed);
    atomic_store_explicit(&rd->released, rp, memory_order_relaxed);
    *out = rd;
    return 0;
}

/* Validates a write_pos loaded from shared memory; caches it if good. */
static int reader_take_write_pos(fti_reader *rd, uint64_t wp)
{
    /* released is loaded after write_pos: a writer that wrote up to wp had seen a read_pos that
     * our release stored after `released` (release -> writer acquire -> release -> our acquire) */
    uint64_t released = atomic_load_explicit(&rd->released, memory_order_acquire);
    if (wp < rd->cached_write || wp - released > rd->r.cap || wp % rd->r.align) {
        set_err(&rd->r, "write position %llu invalid (seen %llu, released %llu, capacity %llu)",
                (unsigned long long)wp, (unsigned long long)rd->cached_write,
                (unsigned long long)released, (unsigned long long)rd->r.cap);
        return -EPROTO;
    }
    rd->cached_write = wp;
    return 0;
}

static int reader_has_data(void *ctx)
{
    fti_reader *rd = ctx;
    struct shm *h = rd->r.h;
    if (atomic_load_explicit(&rd->closing, memory_order_acquire)) {
        set_err(&rd->r, "the reader was closed");
        return -EPIPE;
    }
    /* acquire: pairs with the release store in fti_writer_publish */
    int rc = reader_take_write_pos(rd, atomic_load_explicit(&h->write_pos, memory_order_acquire));
    if (rc)
        return rc;
    if (rd->cached_write != atomic_load_explicit(&rd->cursor, memory_order_relaxed))
        return 1;
    /* acquire: pairs with the release in fti_writer_close; write_pos is then final */
    if (atomic_load_explicit(&h->writer_closed, memory_order_acquire)) {
        rc = reader_take_write_pos(rd, atomic_load_explicit(&h->write_pos, memory_order_acquire));
        return rc ? rc : 1;
    }
    return 0;
}

static int reader_peer_ok(void *ctx)
{
    fti_reader *rd = ctx;
    struct shm *h = rd->r.h;
    uint32_t pid = atomic_load_explicit(&h->writer_pid, memory_order_relaxed);
    if (peer_alive(pid, atomic_load_explicit(&h->writer_start, memory_order_relaxed)) == 0) {
        set_err(&rd->r, "the writer process %u is gone", pid);
        return -EOWNERDEAD;
    }
    return 0;
}

int fti_reader_next(fti_reader *rd, uint32_t max, fti_batch *b, uint32_t *offsets, uint32_t *lens,
                    int64_t timeout_ns)
{
    struct ring *r = &rd->r;
    struct shm *h = r->h;
    int64_t deadline = deadline_of(timeout_ns);
    memset(b, 0, sizeof *b);
    if (max == 0)
        return -EINVAL;
    /* A batch pins at most cap/2 - align bytes (a padding frame before it included), except that
     * its first record is always admitted. A writer wrapping a record of max_record (cap/4)
     * needs at most cap/2 + align bytes free (the padding plus the frame), so a reader that holds
     * one batch while it waits for the next never starves the writer, whatever the record sizes. */
    const uint64_t bound = r->cap / 2 - r->align;
    uint64_t cursor = atomic_load_explicit(&rd->cursor, memory_order_relaxed);
    const uint64_t pinned = cursor; /* where this batch's hold starts (a padding frame included) */
    for (;;) {
        if (cursor == rd->cached_write) {
            /* About to wait: a writer asleep for space must not wait on our hysteresis. */
            ring_doorbell(&h->writer_sleeping);
            int rc = wait_until(r, &h->reader_sleeping, reader_has_data, reader_peer_ok, rd, deadline,
                                &h->empty_waits, &h->empty_wait_ns);
            if (rc == -EAGAIN || rc == -ETIMEDOUT)
                set_err(r, "no record arrived in time");
            if (rc)
                return rc;
            if (cursor == rd->cached_write) {
                b->end_pos = cursor; /* writer closed and everything handed out */
                if (atomic_load_explicit(&h->writer_closed, memory_order_relaxed) == 2) {
                    set_err(r, "the writer aborted the stream: it is incomplete");
                    return -ECONNABORTED;
                }
                return 0;
            }
        }
        /* the ring's geometry in locals: the stores to offsets[]/lens[] could alias the handle */
        const uint64_t cap = r->cap, a = r->align, written = rd->cached_write;
        const uint32_t max_record = r->max_record;
        const uint8_t *data = r->data;
        uint64_t first = cursor & r->mask, end = cursor, bytes = 0;
        uint32_t n = 0, same = 1, len0 = 0;
        /* A batch's frames lie in one run from `first`: every frame must end by `hard` (the end
         * of the data area or what is published, whichever comes first; past it the frame is
         * corrupt), a frame after the first that ends past `soft` (the pin bound) ends the
         * batch, and the run ends where the data area does (the next frame is at its start). */
        uint64_t hard = end + (cap - first);
        const uint64_t soft = pinned + bound;
        if (written < hard)
            hard = written;
        while (n < max && end < hard) {
            const uint32_t *fh = (const uint32_t *)(data + first + (end - cursor));
            /* read once: the peer could change them between check and use */
            uint32_t len = __atomic_load_n(&fh[0], __ATOMIC_RELAXED);
            uint32_t kind = __atomic_load_n(&fh[1], __ATOMIC_RELAXED);
            uint64_t fend = end + ((a + len + a - 1) & ~(a - 1)); /* no overflow: len < 2^32 */
            if (__builtin_expect(kind != FTI_FRAME_DATA || len > max_record || fend > hard, 0)) {
                uint64_t idx = first + (end - cursor), avail = written - end;
                if (kind == FTI_FRAME_PAD && len == cap - idx && len <= avail) {
                    if (n > 0)
                        break; /* a batch is contiguous: the next one starts after the wrap */
                    end += len; /* to the end of the data area: the next pass starts at index 0 */
                    continue;
                }
                if (kind == FTI_FRAME_PAD)
                    set_err(r, "padding frame at position %llu has length %u (expected %llu, %llu published)",
                            (unsigned long long)end, len, (unsigned long long)(cap - idx),
                            (unsigned long long)avail);
                else
                    set_err(r, "frame at position %llu: kind %u, length %u (max %u, %llu bytes published, %llu to "
                            "the end)", (unsigned long long)end, kind, len, max_record, (unsigned long long)avail,
                            (unsigned long long)(cap - idx));
                return -EPROTO;
            }
            if (n == 0)
                len0 = len;
            else if (fend > soft)
                break;
            offsets[n] = (uint32_t)(end - cursor);
            lens[n] = len;
            bytes += len;
            same &= len == len0;
            n++;
            end = fend;
        }
        if (n == 0) {
            cursor = end; /* only a padding frame was published so far */
            atomic_store_explicit(&rd->cursor, cursor, memory_order_release);
            continue;
        }
        b->base = r->data + first + r->align;
        b->count = n;
        b->end_pos = end;
        b->stride = same ? (uint32_t)frame_size(r, lens[0]) : 0;
        atomic_store_explicit(&h->records_out, atomic_load_explicit(&h->records_out, memory_order_relaxed) + n,
                              memory_order_relaxed);
        atomic_store_explicit(&h->bytes_out, atomic_load_explicit(&h->bytes_out, memory_order_relaxed) + bytes,
                              memory_order_relaxed);
        /* release: a thread that releases up to end_pos has seen the batch handed out */
        atomic_store_explicit(&rd->cursor, end, memory_order_release);
        return 0;
    }
}

/* Wake hysteresis: a writer that sleeps because the ring is full is woken only once a quarter of
 * the ring is free (not as soon as one record's space is), or when the reader itself waits (it
 * rings before it waits, see fti_reader_next). A slow reader then costs the writer one sleep per
 * quarter ring instead of one per few records. A writer that needs more than the quarter wakes,
 * finds too little, and sleeps again; one that needs less but is not woken is woken at the
 * latest when the reader catches up and waits, and checks by itself every slice regardless. */
static int reader_should_wake_writer(fti_reader *rd, uint64_t released_to)
{
    if (atomic_load_explicit(&rd->r.h->reader_sleeping, memory_order_relaxed))
        return 1; /* a release from another thread while the reading thread waits */
    uint64_t wp = atomic_load_explicit(&rd->r.h->write_pos, memory_order_relaxed);
    uint64_t used = wp - released_to; /* a bad value only costs a wake-up */
    return used > rd->r.cap || rd->r.cap - used >= rd->r.cap / 4;
}

int fti_reader_release(fti_reader *rd, uint64_t pos)
{
    /* Releases may come from any thread (the one that dropped the last view of a batch): a spin
     * lock keeps read_pos growing when two of them race; it is held for two stores. */
    while (atomic_exchange_explicit(&rd->release_lock, 1, memory_order_acquire))
        cpu_relax();
    uint64_t released = atomic_load_explicit(&rd->released, memory_order_relaxed);
    uint64_t cursor = atomic_load_explicit(&rd->cursor, memory_order_acquire);
    int rc = 0;
    if (pos < released || pos > cursor || pos % rd->r.align) {
        set_err(&rd->r, "release position %llu is not between the released %llu and the handed-out %llu",
                (unsigned long long)pos, (unsigned long long)released, (unsigned long long)cursor);
        rc = -EINVAL;
    } else if (pos > released) {
        atomic_store_explicit(&rd->released, pos, memory_order_release);
        /* pairs with the acquire load of read_pos in the writer: we no longer read before pos */
        atomic_store_explicit(&rd->r.h->read_pos, pos, memory_order_release);
    }
    atomic_store_explicit(&rd->release_lock, 0, memory_order_release);
    if (rc == 0 && pos > released && reader_should_wake_writer(rd, pos))
        ring_doorbell(&rd->r.h->writer_sleeping);
    return rc;
}

void fti_reader_close(fti_reader *rd)
{
    if (atomic_exchange_explicit(&rd->closing, 1, memory_order_acq_rel))
        return;
    /* pairs with the acquire load in the writer's checks */
    atomic_store_explicit(&rd->r.h->reader_closed, 1, memory_order_release);
    ring_doorbell(&rd->r.h->writer_sleeping);
    /* a next() running on another thread sees `closing` within its wait: wake it if it sleeps */
    ring_doorbell(&rd->r.h->reader_sleeping);
}

void fti_reader_free(fti_reader *rd)
{
    if (!rd)
        return;
    fti_reader_close(rd);
    ring_leave(&rd->r, &rd->r.h->writer_pid, &rd->r.h->writer_start);
    free(rd);
}

uint32_t fti_reader_max_record(const fti_reader *rd) { return rd->r.max_record; }
const char *fti_reader_error(const fti_reader *rd) { return rd->r.err; }
