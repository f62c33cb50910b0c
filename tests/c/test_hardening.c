/* Hardening (issue 12): a held batch never starves the writer, polls report dead peers, a freed
 * writer aborts, shared values are copied before use, files must be safe to use, a full tmpfs is
 * ENOSPC, a dead reader's slot is taken over, resumed waits count once. */
#include "check.h"
#include "fti_layout.h"
#include "fti_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#define MS INT64_C(1000000)

static fti_writer *mk_writer(const char *path, uint64_t cap, uint32_t align)
{
    fti_writer *w;
    char err[256];
    int rc = fti_writer_create(path, cap, align, &w, err, sizeof err);
    if (rc)
        fprintf(stderr, "create %s: %d %s\n", path, rc, err);
    CHECK_EQ(rc, 0);
    return w;
}

static fti_reader *mk_reader(const char *path)
{
    fti_reader *r;
    char err[256];
    int rc = fti_reader_open(path, &r, err, sizeof err);
    if (rc)
        fprintf(stderr, "open %s: %d %s\n", path, rc, err);
    CHECK_EQ(rc, 0);
    return r;
}

/* Item 1: whatever the record sizes, a reader that holds only its latest batch and has read
 * everything published leaves the writer room for a record of any size it accepts. */
static void test_held_batch_never_starves_writer(uint32_t align)
{
    const uint64_t cap = 4096;
    uint64_t rng = 99 + align;
    static uint8_t src[4096];
    for (int round = 0; round < 400; round++) {
        const char *path = test_path("held");
        fti_writer *w = mk_writer(path, cap, align);
        fti_reader *r = mk_reader(path);
        uint32_t max = fti_writer_max_record(w);
        /* big records, mostly above half of max_record: where the old bound starved */
        uint32_t lo = (uint32_t)(rng_next(&rng) % (max + 1));
        uint64_t held_end = 0;
        int have_held = 0;
        for (int step = 0; step < 100; step++) {
            /* the writer fills the ring as far as it goes without waiting */
            uint32_t len = lo + (uint32_t)(rng_next(&rng) % (max - lo + 1));
            int rc;
            while ((rc = fti_writer_write(w, src, len, 0)) == 0)
                len = lo + (uint32_t)(rng_next(&rng) % (max - lo + 1));
            CHECK_EQ(rc, -EAGAIN);
            /* the reader takes everything published, batch by batch, holding only the latest */
            fti_batch b;
            uint32_t off[64], lens[64];
            while ((rc = fti_reader_next(r, 64, &b, off, lens, 0)) == 0) {
                if (have_held)
                    CHECK_EQ(fti_reader_release(r, held_end), 0);
                held_end = b.end_pos;
                have_held = 1;
            }
            CHECK_EQ(rc, -EAGAIN);
            /* now it would wait while holding one batch: a record of any size must fit */
            len = (uint32_t)(rng_next(&rng) % 2 ? max : rng_next(&rng) % (max + 1));
            rc = fti_writer_write(w, src, len, 0);
            if (rc != 0)
                fprintf(stderr, "round %d step %d: %u-byte write starved (held batch to %llu): %s\n",
                        round, step, len, (unsigned long long)held_end, fti_writer_error(w));
            CHECK_EQ(rc, 0);
        }
        fti_writer_close(w);
        fti_writer_free(w);
        fti_reader_free(r);
    }
    PASS(align == 8 ? "a held batch never starves the writer, align 8"
                    : "a held batch never starves the writer, align 64");
}

/* The repro: 4 KiB ring, 1024 + 1000 + 1024 bytes, one batch held, a 1024-byte write. */
static void test_held_batch_repro(void)
{
    const char *path = test_path("repro");
    fti_writer *w = mk_writer(path, 4096, 8);
    fti_reader *r = mk_reader(path);
    static uint8_t src[1024];
    CHECK_EQ(fti_writer_write(w, src, 1024, 0), 0);
    CHECK_EQ(fti_writer_write(w, src, 1000, 0), 0);
    CHECK_EQ(fti_writer_write(w, src, 1024, 0), 0);
    fti_batch held, b;
    uint32_t off[1024], lens[1024];
    CHECK_EQ(fti_reader_next(r, 1024, &held, off, lens, 0), 0);
    CHECK(held.count < 3); /* a batch never pins more than cap/2 - align */
    CHECK_EQ(fti_reader_next(r, 1024, &b, off, lens, 0), 0);
    CHECK_EQ(fti_reader_release(r, held.end_pos), 0);
    CHECK_EQ(fti_writer_write(w, src, 1024, 0), 0); /* while b is held */
    fti_writer_free(w);
    fti_reader_free(r);
    PASS("issue 12 item 1 repro");
}

/* Item 3: a poll (timeout 0) reports a dead writer as -EOWNERDEAD, and a dead reader too. */
static void test_poll_reports_dead_peer(void)
{
    const char *path = test_path("poll");
    pid_t child = fork();
    if (child == 0) {
        fti_writer *w = mk_writer(path, 4096, 8);
        CHECK_EQ(fti_writer_write(w, "x", 1, 0), 0);
        pause();
        _exit(0);
    }
    fti_reader *r = NULL;
    char err[256];
    for (int i = 0; i < 500 && fti_reader_open(path, &r, err, sizeof err) != 0; i++)
        usleep(10000);
    CHECK(r != NULL);
    kill(child, SIGKILL);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    fti_batch b;
    uint32_t off, len;
    CHECK_EQ(fti_reader_next(r, 1, &b, &off, &len, 0), 0); /* what was published comes first */
    CHECK_EQ(fti_reader_release(r, b.end_pos), 0);
    int rc = -EAGAIN;
    for (int i = 0; i < 2000 && rc == -EAGAIN; i++) {
        rc = fti_reader_next(r, 1, &b, &off, &len, 0);
        if (rc == -EAGAIN)
            usleep(1000);
    }
    CHECK_EQ(rc, -EOWNERDEAD);
    fti_reader_free(r);

    path = test_path("poll2");
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
        if (st.reader_pid && st.reader_alive == 1)
            break;
        usleep(10000);
    }
    uint8_t *p;
    while (fti_writer_reserve(w, 1000, &p, 0) == 0)
        ;
    kill(child, SIGKILL);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    rc = -EAGAIN;
    for (int i = 0; i < 2000 && rc == -EAGAIN; i++) {
        rc = fti_writer_reserve(w, 1000, &p, 0);
        if (rc == -EAGAIN)
            usleep(1000);
    }
    CHECK_EQ(rc, -EOWNERDEAD);
    fti_writer_free(w);
    PASS("timeout 0 polls report a dead peer");
}

/* Item 5: a writer freed without close aborts the stream; close then free ends it. */
static void test_free_without_close_aborts(void)
{
    const char *path = test_path("dropped");
    fti_writer *w = mk_writer(path, 4096, 8);
    fti_reader *r = mk_reader(path);
    CHECK_EQ(fti_writer_write(w, "abc", 3, 0), 0);
    fti_writer_free(w);
    fti_batch b;
    uint32_t off[4], len[4];
    CHECK_EQ(fti_reader_next(r, 4, &b, off, len, 0), 0);
    CHECK_EQ(b.count, 1);
    CHECK_EQ(fti_reader_next(r, 4, &b, off, len, 1000 * MS), -ECONNABORTED);
    fti_reader_free(r);

    path = test_path("closed");
    w = mk_writer(path, 4096, 8);
    r = mk_reader(path);
    fti_writer_close(w);
    fti_writer_free(w);
    CHECK_EQ(fti_reader_next(r, 4, &b, off, len, 1000 * MS), 0);
    CHECK_EQ(b.count, 0);
    fti_reader_free(r);
    PASS("a writer freed without close aborts the stream");
}

static uint8_t *map_file(const char *path, size_t len)
{
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    close(fd);
    return m;
}

static void put64(uint8_t *m, size_t off, uint64_t v) { __atomic_store_n((uint64_t *)(m + off), v, __ATOMIC_RELEASE); }
static void put32(uint8_t *m, size_t off, uint32_t v) { __atomic_store_n((uint32_t *)(m + off), v, __ATOMIC_RELEASE); }

struct flipper {
    uint8_t *m;
    _Atomic int stop;
};

static void *flip_align(void *arg)
{
    struct flipper *f = arg;
    for (uint32_t i = 0; !atomic_load(&f->stop); i++) {
        put32(f->m, 24, (i & 1) ? 0 : 8);                      /* align: 0 would divide by zero */
        put64(f->m, 16, (i & 2) ? UINT64_C(1) << 39 : 4096);   /* capacity far beyond the file */
    }
    return NULL;
}

/* Item 7: values from shared memory are copied, validated and only then used. */
static void test_untrusted_values_copied(void)
{
    /* a header changing under open: never a crash, never a ring bigger than the file */
    const char *path = test_path("flip");
    fti_writer *w = mk_writer(path, 4096, 8);
    uint8_t *m = map_file(path, FTI_HEADER_SIZE + 4096);
    put64(m, 128, 8); /* positions that are not multiples of every align */
    put64(m, 256, 8);
    struct flipper f = {m, 0};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, flip_align, &f), 0);
    int ok = 0, bad = 0;
    for (int i = 0; i < 20000; i++) {
        fti_reader *r;
        char err[256];
        fti_stat st;
        int rc = fti_ring_stat(path, &st, err, sizeof err);
        if (rc == 0) {
            CHECK(st.align == 8 && st.capacity == 4096);
            ok++;
        } else {
            CHECK_EQ(rc, -EPROTO);
            bad++;
        }
        rc = fti_reader_open(path, &r, err, sizeof err);
        if (rc == 0) {
            CHECK_EQ(fti_reader_max_record(r), 1024);
            fti_reader_close(r);
            put32(m, 264, 0); /* give the slot back for the next round (reader_pid) */
            put32(m, 268, 0);
            fti_reader_free(r);
            put32(m, 392, 0);
        } else {
            CHECK_EQ(rc, -EPROTO);
        }
    }
    atomic_store(&f.stop, 1);
    pthread_join(t, NULL);
    printf("  (header flips: %d stat ok, %d refused)\n", ok, bad);
    put32(m, 24, 8);
    put64(m, 16, 4096);
    munmap(m, FTI_HEADER_SIZE + 4096);
    fti_writer_free(w);
    unlink(path);

    /* write_pos read after writer_closed is validated too: backwards or too far is -EPROTO */
    for (int variant = 0; variant < 3; variant++) {
        path = test_path("closedpos");
        w = mk_writer(path, 4096, 8);
        fti_reader *r = mk_reader(path);
        for (int i = 0; i < 4; i++)
            CHECK_EQ(fti_writer_write(w, "12345678", 8, 0), 0);
        fti_batch b;
        uint32_t off[8], len[8];
        CHECK_EQ(fti_reader_next(r, 8, &b, off, len, 0), 0);
        CHECK_EQ(b.count, 4);
        m = map_file(path, FTI_HEADER_SIZE + 4096);
        uint64_t bad_wp = variant == 0 ? 32 : variant == 1 ? 64 + 4096 + 8 : 68;
        put64(m, 128, bad_wp);
        put32(m, 140, 1);
        CHECK_EQ(fti_reader_next(r, 8, &b, off, len, 200 * MS), -EPROTO);
        CHECK(strstr(fti_reader_error(r), "write position") != NULL);
        munmap(m, FTI_HEADER_SIZE + 4096);
        fti_writer_free(w);
        fti_reader_free(r);
    }

    /* a release position outside what was handed out is refused and changes nothing */
    path = test_path("release");
    w = mk_writer(path, 4096, 8);
    fti_reader *r = mk_reader(path);
    CHECK_EQ(fti_writer_write(w, "12345678", 8, 0), 0);
    fti_batch b;
    uint32_t off[8], len[8];
    CHECK_EQ(fti_reader_next(r, 8, &b, off, len, 0), 0);
    CHECK_EQ(fti_reader_release(r, b.end_pos + 16), -EINVAL);
    CHECK_EQ(fti_reader_release(r, 4), -EINVAL);
    fti_stat st;
    CHECK_EQ(fti_ring_stat(path, &st, TERR, sizeof TERR), 0);
    CHECK_EQ(st.read_pos, 0);
    CHECK_EQ(fti_reader_release(r, b.end_pos), 0);
    CHECK_EQ(fti_reader_release(r, 0), -EINVAL);
    CHECK_EQ(fti_reader_release(r, b.end_pos), 0); /* again: nothing to do */
    fti_writer_free(w);
    fti_reader_free(r);
    PASS("shared values copied and validated before use");
}

/* Item 9: a ring that does not fit its tmpfs is -ENOSPC at creation, with nothing left. */
static void test_full_tmpfs(void)
{
    pid_t child = fork();
    if (child == 0) {
        /* a private mount namespace: the small tmpfs is seen by this child only */
        if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            _exit(77);
        char dir[] = "/tmp/fti-small-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        if (mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700") != 0)
            _exit(77);
        char path[128];
        snprintf(path, sizeof path, "%s/big.ring", dir);
        fti_writer *w;
        char err[256];
        CHECK_EQ(fti_writer_create(path, 4 << 20, 8, &w, err, sizeof err), -ENOSPC);
        CHECK(strstr(err, "reserve") != NULL);
        CHECK(access(path, F_OK) != 0); /* nothing left behind */
        snprintf(path, sizeof path, "%s/small.ring", dir);
        w = mk_writer(path, 256 << 10, 8); /* the space is still there for a ring that fits */
        fti_writer_free(w);
        /* a ring truncated under its reader: reported between wait slices, not a SIGBUS */
        snprintf(path, sizeof path, "%s/cut.ring", dir);
        w = mk_writer(path, 64 << 10, 8);
        fti_reader *r = mk_reader(path);
        CHECK_EQ(truncate(path, 4096), 0);
        fti_batch b;
        uint32_t off, len;
        CHECK_EQ(fti_reader_next(r, 1, &b, &off, &len, 1000 * MS), -EPROTO);
        CHECK(strstr(fti_reader_error(r), "truncated") != NULL);
        fti_reader_free(r);
        fti_writer_free(w);
        umount(dir);
        rmdir(dir);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77) {
        printf("ok - full tmpfs # SKIP cannot mount a tmpfs here\n");
        return;
    }
    CHECK_EQ(WEXITSTATUS(status), 0);
    PASS("full tmpfs: ENOSPC at creation, nothing left; truncation reported");
}

/* Item 10: paths that are not safe are refused, whichever way they are named. */
static void test_unsafe_paths(void)
{
    char dir[] = "/dev/shm/fti-dir-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256], link[256], err[256];
    fti_writer *w;
    fti_reader *r;

    /* a directory writable by others, without the sticky bit */
    CHECK_EQ(chmod(dir, 0777), 0);
    snprintf(path, sizeof path, "%s/a.ring", dir);
    CHECK_EQ(fti_writer_create(path, 4096, 8, &w, err, sizeof err), -EACCES);
    CHECK(strstr(err, "sticky") != NULL);
    CHECK_EQ(chmod(dir, 01777), 0); /* with it (like /dev/shm): fine */
    w = mk_writer(path, 4096, 8);
    CHECK_EQ(chmod(dir, 0777), 0);
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), -EACCES);
    CHECK_EQ(fti_ring_stat(path, &(fti_stat){0}, err, sizeof err), -EACCES);
    CHECK_EQ(chmod(dir, 0700), 0);

    /* a file others may write */
    CHECK_EQ(chmod(path, 0666), 0);
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), -EACCES);
    CHECK(strstr(err, "writable by others") != NULL);
    CHECK_EQ(chmod(path, 0600), 0);

    /* a file of another user (only root can make one to test with) */
    if (geteuid() == 0) {
        CHECK_EQ(chown(path, 12345, 12345), 0);
        CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), -EACCES);
        CHECK(strstr(err, "uid 12345") != NULL);
        CHECK_EQ(chown(path, 0, 0), 0);
    }

    /* a symlinked directory, and a symlink as the ring itself */
    snprintf(link, sizeof link, "%s-link", dir);
    unlink(link);
    CHECK_EQ(symlink(dir, link), 0);
    char via[300];
    snprintf(via, sizeof via, "%s/a.ring", link);
    CHECK_EQ(fti_reader_open(via, &r, err, sizeof err), -ELOOP);
    CHECK(strstr(err, "symlink") != NULL);
    snprintf(via, sizeof via, "%s/b.ring", link);
    CHECK_EQ(fti_writer_create(via, 4096, 8, &(fti_writer *){0}, err, sizeof err), -ELOOP);
    snprintf(via, sizeof via, "%s/l.ring", dir);
    CHECK_EQ(symlink(path, via), 0);
    CHECK_EQ(fti_reader_open(via, &r, err, sizeof err), -ELOOP);
    CHECK(strstr(err, "symlink") != NULL);
    unlink(via);
    unlink(link);

    /* a directory, and an empty name */
    CHECK_EQ(fti_reader_open(dir, &r, err, sizeof err), -EISDIR);
    char slash[300];
    snprintf(slash, sizeof slash, "%s/", dir);
    CHECK_EQ(fti_reader_open(slash, &r, err, sizeof err), -EISDIR);
    CHECK_EQ(fti_reader_open("", &r, err, sizeof err), -EINVAL);

    r = mk_reader(path); /* the same ring, safe again, opens */
    fti_writer_close(w);
    fti_writer_free(w);
    fti_reader_free(r);
    rmdir(dir);
    PASS("unsafe paths refused: directory modes, owners, symlinks");
}

/* Item 11: the slot of a reader that died without closing is taken over. */
static void test_dead_reader_taken_over(void)
{
    const char *path = test_path("takeover");
    fti_writer *w = mk_writer(path, 4096, 8);
    CHECK_EQ(fti_writer_write(w, "12345678", 8, 0), 0);
    pid_t child = fork();
    if (child == 0) {
        fti_reader *cr = mk_reader(path);
        fti_batch b;
        uint32_t off, len;
        CHECK_EQ(fti_reader_next(cr, 1, &b, &off, &len, 1000 * MS), 0); /* taken, not released */
        printf("  (child reader attached)\n");
        fflush(stdout);
        pause();
        _exit(0);
    }
    fti_stat st;
    for (int i = 0; i < 500; i++) {
        CHECK_EQ(fti_ring_stat(path, &st, TERR, sizeof TERR), 0);
        if (st.records_out == 1)
            break;
        usleep(10000);
    }
    CHECK_EQ(st.records_out, 1);
    fti_reader *r;
    char err[256];
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), -EBUSY); /* alive: refused */
    kill(child, SIGKILL);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    r = mk_reader(path);
    fti_batch b;
    uint32_t off, len;
    CHECK_EQ(fti_reader_next(r, 1, &b, &off, &len, 1000 * MS), 0); /* unreleased: again */
    CHECK_EQ(len, 8);
    CHECK(memcmp(b.base + off, "12345678", 8) == 0);
    CHECK_EQ(fti_ring_stat(path, &st, TERR, sizeof TERR), 0);
    CHECK_EQ(st.reader_pid, (uint32_t)getpid());
    CHECK_EQ(st.reader_alive, 1);
    fti_reader_close(r);
    fti_reader_free(r);
    /* a reader that closed is not replaced: its writer was told there is no reader */
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), -EBUSY);
    fti_writer_free(w);
    PASS("a dead reader's slot is taken over");
}

/* Item 14: a creator that died leaves a file that is reported, not waited on; resumed waits
 * count once. */
static void test_dead_creator_and_wait_counts(void)
{
    const char *path = test_path("zeros");
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    CHECK_EQ(ftruncate(fd, FTI_HEADER_SIZE + 4096), 0);
    struct timespec old[2] = {{.tv_sec = time(NULL) - 60}, {.tv_sec = time(NULL) - 60}};
    CHECK_EQ(futimens(fd, old), 0); /* mtime; ctime is now, so only the pid rule can apply */
    close(fd);
    fti_reader *r;
    char err[256];
    /* all zero, just made: still being created */
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), -EAGAIN);
    /* a creator pid that is gone */
    uint8_t *m = map_file(path, FTI_HEADER_SIZE);
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    put32(m, 136, (uint32_t)child);
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), -EOWNERDEAD);
    CHECK(strstr(err, "died") != NULL);
    munmap(m, FTI_HEADER_SIZE);
    unlink(path);

    /* an empty file for a while: not a ring */
    fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0);
    close(fd);
    CHECK_EQ(fti_ring_stat(path, &(fti_stat){0}, err, sizeof err), -EAGAIN);
    unlink(path);

    /* a wait resumed in slices (as the Python binding does) counts once */
    path = test_path("waits");
    fti_writer *w = mk_writer(path, 4096, 8);
    r = mk_reader(path);
    fti_batch b;
    uint32_t off, len;
    for (int i = 0; i < 5; i++)
        CHECK_EQ(fti_reader_next(r, 1, &b, &off, &len, 5 * MS), -ETIMEDOUT);
    CHECK_EQ(fti_writer_write(w, "x", 1, 0), 0);
    CHECK_EQ(fti_reader_next(r, 1, &b, &off, &len, 5 * MS), 0);
    CHECK_EQ(fti_reader_release(r, b.end_pos), 0);
    CHECK_EQ(fti_reader_next(r, 1, &b, &off, &len, 5 * MS), -ETIMEDOUT);
    fti_stat st;
    CHECK_EQ(fti_ring_stat(path, &st, err, sizeof err), 0);
    CHECK_EQ(st.empty_waits, 2);
    fti_writer_free(w);
    fti_reader_free(r);
    PASS("dead creator reported; resumed waits counted once");
}

/* The last side to leave removes the file only if the name still means its ring: a ring made
 * anew under the same name (the next stream) while an old reader was still leaving survives. */
static void test_leave_removes_only_its_own_file(void)
{
    const char *path = test_path("reused");
    fti_writer *w = mk_writer(path, 4096, 8);
    fti_reader *r = mk_reader(path);
    fti_writer_close(w);
    fti_writer_free(w);
    CHECK_EQ(unlink(path), 0); /* someone cleaned up, and the next ring takes the name */
    fti_writer *w2 = mk_writer(path, 4096, 8);
    fti_reader_free(r); /* the old ring's second side leaves */
    CHECK(access(path, F_OK) == 0);
    fti_reader *r2 = mk_reader(path);
    fti_writer_close(w2);
    fti_writer_free(w2);
    fti_reader_free(r2);
    CHECK(access(path, F_OK) != 0);
    PASS("leaving removes only the ring's own file");
}

/* Issue 13 item 6: the reader's adaptive spin (longer after short waits) still ends at the
 * deadline and still notices a dead writer. The writer publishes records a few tens of
 * microseconds apart (the reader's spin grows to its longest), then stops, then dies. */
static void test_spinning_wait_honours_timeout_and_peer_death(void)
{
    const char *path = test_path("spin");
    pid_t child = fork();
    if (child == 0) {
        fti_writer *w = mk_writer(path, 1 << 16, 8);
        for (uint64_t i = 0; i < 400; i++) {
            struct timespec gap = {0, 20000};
            nanosleep(&gap, NULL);
            CHECK_EQ(fti_writer_write(w, &i, sizeof i, -1), 0);
        }
        pause(); /* alive, writing nothing, until killed */
        _exit(0);
    }
    alarm(120); /* watchdog: a spin that ignored the deadline or the peer would hang here */
    fti_reader *r = NULL;
    char err[256];
    for (int i = 0; i < 500 && fti_reader_open(path, &r, err, sizeof err) != 0; i++)
        usleep(10000);
    CHECK(r != NULL);
    fti_batch b;
    uint32_t off[64], len[64];
    for (uint64_t got = 0; got < 400;) {
        CHECK_EQ(fti_reader_next(r, 64, &b, off, len, -1), 0);
        CHECK(b.count > 0);
        for (uint32_t k = 0; k < b.count; k++, got++) {
            uint64_t v;
            memcpy(&v, b.base + off[k], sizeof v);
            CHECK_EQ(v, got);
        }
        CHECK_EQ(fti_reader_release(r, b.end_pos), 0);
    }
    for (int i = 0; i < 20; i++) /* the writer is alive and idle: each wait runs out */
        CHECK_EQ(fti_reader_next(r, 64, &b, off, len, 1000000), -ETIMEDOUT);
    for (int i = 0; i < 50; i++) /* deadlines shorter than any spin: the spin is cut there */
        CHECK_EQ(fti_reader_next(r, 64, &b, off, len, 1000), -ETIMEDOUT);
    kill(child, SIGKILL);
    CHECK_EQ(waitpid(child, NULL, 0), child);
    CHECK_EQ(fti_reader_next(r, 64, &b, off, len, -1), -EOWNERDEAD);
    alarm(0);
    fti_reader_free(r);
    unlink(path);
    PASS("spinning wait honours timeout and peer death");
}

/* test_hardening [NAME]: all tests, or those whose function name contains NAME */
int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0); /* forked children must not repeat buffered lines */
    const char *only = argc > 1 ? argv[1] : "";
#define RUN(call) do { if (strstr(#call, only)) call; } while (0)
    RUN(test_held_batch_repro());
    RUN(test_held_batch_never_starves_writer(8));
    RUN(test_held_batch_never_starves_writer(64));
    RUN(test_poll_reports_dead_peer());
    RUN(test_free_without_close_aborts());
    RUN(test_untrusted_values_copied());
    RUN(test_full_tmpfs());
    RUN(test_unsafe_paths());
    RUN(test_dead_reader_taken_over());
    RUN(test_dead_creator_and_wait_counts());
    RUN(test_leave_removes_only_its_own_file());
    RUN(test_spinning_wait_honours_timeout_and_peer_death());
    printf("all hardening tests passed\n");
    return 0;
}
