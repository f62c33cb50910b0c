/* Deterministic edge tests of the ring: wrap placement, sizes, alignment, close, timeouts,
 * version and reader-slot checks, peer death. */
#include "check.h"
#include "fti_layout.h"
#include "fti_ring.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#define MS INT64_C(1000000)

static fti_writer *mk_writer(const char *path, uint64_t cap, uint32_t align)
{
    fti_writer *w;
    CHECK_EQ(fti_writer_create(path, cap, align, &w, TERR, sizeof TERR), 0);
    return w;
}

static fti_reader *mk_reader(const char *path)
{
    fti_reader *r;
    char err[256];
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), 0);
    return r;
}

/* Reads exactly one record and checks it; returns its length. */
static uint32_t read_one(fti_reader *r, uint64_t seq, uint32_t align)
{
    fti_batch b;
    uint32_t off, len;
    CHECK_EQ(fti_reader_next(r, 1, &b, &off, &len, 1000 * MS), 0);
    CHECK_EQ(b.count, 1);
    CHECK(payload_ok(b.base + off, len, seq));
    CHECK_EQ(((uintptr_t)(b.base + off)) % align, 0);
    CHECK_EQ(fti_reader_release(r, b.end_pos), 0);
    return len;
}

static void write_one(fti_writer *w, uint32_t len, uint64_t seq)
{
    uint8_t *p;
    CHECK_EQ(fti_writer_reserve(w, len, &p, 1000 * MS), 0);
    fill_payload(p, len, seq);
    fti_writer_publish(w);
}

/* Writes records whose frames cover exactly `bytes` (each read back at once when `r` is given);
 * returns the next sequence number. */
static uint64_t write_span(fti_writer *w, fti_reader *r, uint64_t bytes, uint64_t seq, uint32_t align)
{
    for (uint64_t left = bytes; left > 0; seq++) {
        uint64_t len = left - align < fti_writer_max_record(w) ? left - align : fti_writer_max_record(w);
        len -= len % align;
        write_one(w, (uint32_t)len, seq);
        if (r)
            CHECK_EQ(read_one(r, seq, align), len);
        left -= len + align;
    }
    return seq;
}

/* For every 8-byte (or 64-byte) offset before the end, place the write position there and write
 * records that do and do not fit: each arrives whole, in order, aligned. */
static void test_wrap_placement(uint32_t align)
{
    const uint64_t cap = 4096;
    for (uint64_t back = align; back <= 512; back += align) {
        const char *path = test_path("wrap");
        fti_writer *w = mk_writer(path, cap, align);
        fti_reader *r = mk_reader(path);
        /* advance both positions to cap - back with filler records */
        uint64_t seq = write_span(w, r, cap - back, 0, align);
        /* a frame that ends exactly at the end of the data area, then one at index 0: two
         * batches, since a batch is contiguous in memory */
        uint64_t first_seq = seq;
        seq = write_span(w, NULL, back, seq, align);
        write_one(w, 16, seq++);
        fti_batch b;
        uint32_t off[64], len[64];
        for (uint64_t s = first_seq; s < seq;) {
            CHECK_EQ(fti_reader_next(r, 64, &b, off, len, 0), 0);
            CHECK(b.count > 0);
            for (uint32_t i = 0; i < b.count; i++, s++)
                CHECK(payload_ok(b.base + off[i], len[i], s));
            CHECK_EQ(fti_reader_release(r, b.end_pos), 0);
        }
        uint32_t sizes[] = {0, 1, 7, 8, 9, (uint32_t)back - align, (uint32_t)back, 200, 1024};
        for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
            if (sizes[i] > fti_writer_max_record(w))
                continue;
            write_one(w, sizes[i], seq);
            CHECK_EQ(read_one(r, seq++, align), sizes[i]);
        }
        fti_writer_free(w);
        fti_reader_free(r);
        CHECK(access(path, F_OK) != 0); /* the second side to detach removed the file */
    }
    PASS(align == 8 ? "wrap placement, align 8" : "wrap placement, align 64");
}

static void test_sizes(void)
{
    const char *path = test_path("sizes");
    fti_writer *w = mk_writer(path, 1 << 16, 8);
    fti_reader *r = mk_reader(path);
    uint32_t max = fti_writer_max_record(w);
    CHECK_EQ(max, (1 << 16) / 4);
    CHECK_EQ(fti_reader_max_record(r), max);
    uint8_t *p;
    static uint8_t big[1 << 15];
    CHECK_EQ(fti_writer_reserve(w, max + 1, &p, 0), -EMSGSIZE);
    CHECK_EQ(fti_writer_write(w, big, max + 1, 0), -EMSGSIZE);
    CHECK(strstr(fti_writer_error(w), "exceeds") != NULL);
    /* nothing was written by the refused records */
    fti_batch b;
    uint32_t off[4], len[4];
    CHECK_EQ(fti_reader_next(r, 4, &b, off, len, 0), -EAGAIN);
    write_one(w, 0, 1);
    write_one(w, max, 2);
    CHECK_EQ(read_one(r, 1, 8), 0);
    CHECK_EQ(read_one(r, 2, 8), max);
    fti_writer_free(w);
    fti_reader_free(r);
    PASS("zero-length, maximum and oversized records");
}

static void test_batches_and_stride(void)
{
    const char *path = test_path("batch");
    fti_writer *w = mk_writer(path, 1 << 16, 8);
    fti_reader *r = mk_reader(path);
    static uint8_t rec[100][64];
    const void *ptrs[100];
    uint32_t lens[100];
    for (int i = 0; i < 100; i++) {
        fill_payload(rec[i], 64, (uint64_t)i);
        ptrs[i] = rec[i];
        lens[i] = 64;
    }
    CHECK_EQ(fti_writer_writev(w, ptrs, lens, 100, 0), 100);
    fti_batch b;
    uint32_t off[128], len[128];
    CHECK_EQ(fti_reader_next(r, 128, &b, off, len, 0), 0);
    CHECK_EQ(b.count, 100);
    CHECK_EQ(b.stride, 72);
    for (uint32_t i = 0; i < b.count; i++) {
        CHECK_EQ(off[i], i * 72);
        CHECK(payload_ok(b.base + off[i], len[i], i));
    }
    /* mixed sizes: no common stride */
    write_one(w, 10, 0);
    write_one(w, 20, 1);
    CHECK_EQ(fti_reader_next(r, 128, &b, off, len, 0), 0);
    CHECK_EQ(b.count, 2);
    CHECK_EQ(b.stride, 0);
    CHECK_EQ(fti_reader_release(r, b.end_pos), 0);
    fti_stat st;
    char err[256];
    CHECK_EQ(fti_ring_stat(path, &st, err, sizeof err), 0);
    CHECK_EQ(st.records_in, 102);
    CHECK_EQ(st.records_out, 102);
    CHECK_EQ(st.bytes_in, 100 * 64 + 30);
    CHECK_EQ(st.writer_alive, 1);
    CHECK_EQ(st.reader_alive, 1);
    fti_writer_free(w);
    fti_reader_free(r);
    PASS("batched publication, batches and stride");
}

static void test_close_and_timeouts(void)
{
    const char *path = test_path("close");
    fti_writer *w = mk_writer(path, 4096, 8);
    fti_reader *r = mk_reader(path);
    fti_batch b;
    uint32_t off[8], len[8];
    CHECK_EQ(fti_reader_next(r, 8, &b, off, len, 0), -EAGAIN);
    CHECK_EQ(fti_reader_next(r, 8, &b, off, len, 20 * MS), -ETIMEDOUT);
    write_one(w, 100, 7);
    fti_writer_close(w);
    CHECK_EQ(read_one(r, 7, 8), 100); /* drains what remains */
    CHECK_EQ(fti_reader_next(r, 8, &b, off, len, 1000 * MS), 0);
    CHECK_EQ(b.count, 0); /* then end of stream */
    CHECK_EQ(fti_reader_next(r, 8, &b, off, len, 0), 0);
    CHECK_EQ(b.count, 0);
    fti_writer_free(w);
    fti_reader_free(r);

    path = test_path("rclose");
    w = mk_writer(path, 4096, 8);
    r = mk_reader(path);
    /* full ring: the write times out, flush too */
    uint8_t *p;
    int n = 0;
    while (fti_writer_reserve(w, 1000, &p, 0) == 0)
        n++;
    CHECK_EQ(n, 4);
    CHECK_EQ(fti_writer_reserve(w, 1000, &p, 20 * MS), -ETIMEDOUT);
    CHECK_EQ(fti_writer_flush(w, 20 * MS), -ETIMEDOUT);
    fti_reader_close(r);
    CHECK_EQ(fti_writer_write(w, "x", 1, 0), -EPIPE);
    CHECK(strstr(fti_writer_error(w), "closed") != NULL);
    fti_reader_free(r);
    fti_writer_free(w);
    CHECK(access(path, F_OK) != 0);
    PASS("close on either side, timeouts");
}

static void test_open_checks(void)
{
    const char *path = test_path("open");
    fti_reader *r;
    char err[256];
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), -ENOENT);
    fti_writer *w = mk_writer(path, 4096, 8);
    CHECK_EQ(fti_writer_create(path, 4096, 8, &(fti_writer *){0}, TERR, sizeof TERR), -EEXIST);
    CHECK_EQ(fti_writer_create("/dev/shm/fti-bad-cap", 5000, 8, &(fti_writer *){0}, TERR, sizeof TERR), -EINVAL);
    CHECK_EQ(fti_writer_create("/dev/shm/fti-bad-align", 4096, 16, &(fti_writer *){0}, TERR, sizeof TERR), -EINVAL);
    r = mk_reader(path);
    fti_reader *r2;
    CHECK_EQ(fti_reader_open(path, &r2, err, sizeof err), -EBUSY);
    CHECK(strstr(err, "already has a reader") != NULL);
    fti_reader_free(r);
    fti_writer_free(w);

    /* a future major version is refused with both versions in the message */
    path = test_path("version");
    w = mk_writer(path, 4096, 8);
    FILE *f = fopen(path, "r+b");
    uint32_t v2 = 2u << 16 | 3u;
    fseek(f, 8, SEEK_SET);
    fwrite(&v2, 4, 1, f);
    fclose(f);
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), -EPROTONOSUPPORT);
    CHECK(strstr(err, "2.3") != NULL && strstr(err, "1.x") != NULL);
    /* not yet published: version 0 means "being created" */
    f = fopen(path, "r+b");
    uint32_t zero = 0;
    fseek(f, 8, SEEK_SET);
    fwrite(&zero, 4, 1, f);
    fclose(f);
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), -EAGAIN);
    fti_writer_free(w);
    unlink(path);

    /* the layout table is the one the header asserts */
    const fti_layout_field *fl = fti_layout_fields();
    int found = 0;
    for (; fl->name; fl++)
        if (!strcmp(fl->name, "read_pos")) {
            CHECK_EQ(fl->offset, 256);
            CHECK_EQ(fl->size, 8);
            found = 1;
        }
    CHECK(found);
    PASS("open checks: missing, exists, busy, version, layout table");
}

/* A peer killed with SIGKILL turns into -EOWNERDEAD within the wait, never a hang. */
static void test_peer_killed(void)
{
    const char *path = test_path("kill");
    pid_t child = fork();
    if (child == 0) {
        fti_writer *w = mk_writer(path, 4096, 8);
        write_one(w, 10, 1);
        pause(); /* killed here, without closing */
        _exit(0);
    }
    fti_reader *r = NULL;
    char err[256];
    for (int i = 0; i < 500 && fti_reader_open(path, &r, err, sizeof err) != 0; i++)
        usleep(10000);
    CHECK(r != NULL);
    CHECK_EQ(read_one(r, 1, 8), 10);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    fti_batch b;
    uint32_t off, len;
    CHECK_EQ(fti_reader_next(r, 1, &b, &off, &len, 5000 * MS), -EOWNERDEAD);
    CHECK(strstr(fti_reader_error(r), "is gone") != NULL);
    fti_reader_free(r);
    CHECK(access(path, F_OK) != 0); /* a dead writer's ring is removed by the reader */

    path = test_path("kill2");
    fti_writer *w = mk_writer(path, 4096, 8);
    child = fork();
    if (child == 0) {
        fti_reader *cr = mk_reader(path);
        (void)cr;
        pause();
        _exit(0);
    }
    fti_stat st;
    for (int i = 0; i < 500; i++) {
        CHECK_EQ(fti_ring_stat(path, &st, err, sizeof err), 0);
        if (st.reader_pid)
            break;
        usleep(10000);
    }
    uint8_t *p;
    while (fti_writer_reserve(w, 1000, &p, 0) == 0)
        ;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK_EQ(fti_writer_reserve(w, 1000, &p, 5000 * MS), -EOWNERDEAD);
    fti_writer_free(w);
    CHECK(access(path, F_OK) != 0);
    PASS("SIGKILL of either peer: -EOWNERDEAD");
}

/* writer_closed = 2: the reader drains, then gets -ECONNABORTED instead of end of stream. */
static void test_abort_and_batch_bound(void)
{
    const char *path = test_path("abort");
    fti_writer *w = mk_writer(path, 4096, 8);
    fti_reader *r = mk_reader(path);
    for (int i = 0; i < 30; i++)
        write_one(w, 56, (uint64_t)i); /* 64-byte frames: 30 of them fill 1920 bytes */
    fti_writer_abort(w);
    fti_batch b;
    uint32_t off[64], len[64];
    CHECK_EQ(fti_reader_next(r, 64, &b, off, len, 0), 0);
    CHECK_EQ(b.count, 30);
    CHECK_EQ(fti_reader_next(r, 64, &b, off, len, 1000 * MS), -ECONNABORTED);
    CHECK(strstr(fti_reader_error(r), "aborted") != NULL);
    fti_writer_free(w);
    fti_reader_free(r);

    /* a batch never pins more than half the data area less one alignment unit */
    path = test_path("half");
    w = mk_writer(path, 4096, 8);
    r = mk_reader(path);
    for (int i = 0; i < 60; i++)
        write_one(w, 56, (uint64_t)i);
    CHECK_EQ(fti_reader_next(r, 64, &b, off, len, 0), 0);
    CHECK_EQ(b.count, 31); /* 31 x 64 = 1984 <= capacity / 2 - 8 = 2040 < 32 x 64 */
    fti_writer_free(w);
    fti_reader_free(r);
    PASS("abort, batch bound");
}

/* A killed peer that nobody reaped yet (a zombie) counts as gone. */
static void test_zombie_is_gone(void)
{
    pid_t child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    CHECK(fti_process_start_time((uint32_t)child) != 0);
    kill(child, SIGKILL);
    for (int i = 0; i < 500 && fti_process_start_time((uint32_t)child) != 0; i++)
        usleep(10000); /* not reaped yet: the /proc entry stays, in state Z */
    CHECK_EQ(fti_process_start_time((uint32_t)child), 0);
    waitpid(child, NULL, 0);
    PASS("zombie counts as gone");
}

int main(void)
{
    test_wrap_placement(8);
    test_wrap_placement(64);
    test_sizes();
    test_batches_and_stride();
    test_close_and_timeouts();
    test_open_checks();
    test_peer_killed();
    test_abort_and_batch_bound();
    test_zombie_is_gone();
    printf("all ring tests passed\n");
    return 0;
}
