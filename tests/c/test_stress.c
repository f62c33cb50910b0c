/* Stress: millions of records of random sizes, each with its sequence number and a payload
 * derived from it, written in random-size groups and read in random-size batches; every
 * record is checked in order. Across two processes (fork) and, for ThreadSanitizer, two
 * threads of one process. */
#include "check.h"
#include "fti_ring.h"

#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>

#ifdef __SANITIZE_ADDRESS__
#define SANITIZED 1
#elif defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#define NO_FORK 1
#else
#define SANITIZED 0
#endif

#define TIMEOUT_NS (INT64_C(30) * 1000000000)
static uint64_t n_records;

/* Same sequence of sizes on both sides: mostly small, some up to 16 KiB, some empty. */
static uint32_t size_of(uint64_t *rng)
{
    uint64_t x = rng_next(rng);
    switch (x & 15) {
    case 0: return 0;
    case 1: return (uint32_t)(x >> 8) % 16384;
    case 2: case 3: return (uint32_t)(x >> 8) % 1024;
    default: return (uint32_t)(x >> 8) % 128;
    }
}

static void *writer_main(void *arg)
{
    fti_writer *w = arg;
    uint64_t sizes = 1, groups = 2, seq = 0;
    while (seq < n_records) {
        uint64_t group = 1 + rng_next(&groups) % 64;
        for (uint64_t i = 0; i < group && seq < n_records; i++, seq++) {
            uint32_t len = size_of(&sizes);
            uint8_t *p;
            int rc = fti_writer_reserve(w, len, &p, TIMEOUT_NS);
            if (rc) {
                fprintf(stderr, "writer: reserve %llu: %d %s\n", (unsigned long long)seq, rc, fti_writer_error(w));
                exit(2);
            }
            fill_payload(p, len, seq);
        }
        fti_writer_publish(w);
    }
    fti_writer_close(w);
    return NULL;
}

static void read_all(fti_reader *r)
{
    uint64_t sizes = 1, batches = 3, seq = 0, bytes = 0;
    static uint32_t off[256], len[256];
    for (;;) {
        fti_batch b;
        uint32_t max = 1 + (uint32_t)(rng_next(&batches) % 256);
        int rc = fti_reader_next(r, max, &b, off, len, TIMEOUT_NS);
        if (rc) {
            fprintf(stderr, "reader at %llu: %d %s\n", (unsigned long long)seq, rc, fti_reader_error(r));
            exit(3);
        }
        if (b.count == 0)
            break;
        CHECK(b.count <= max);
        for (uint32_t i = 0; i < b.count; i++, seq++) {
            CHECK_EQ(len[i], size_of(&sizes));
            if (!payload_ok(b.base + off[i], len[i], seq)) {
                fprintf(stderr, "record %llu: payload mismatch\n", (unsigned long long)seq);
                exit(4);
            }
            bytes += len[i];
        }
        CHECK_EQ(fti_reader_release(r, b.end_pos), 0);
    }
    CHECK_EQ(seq, n_records);
    printf("  %llu records, %llu payload bytes checked\n", (unsigned long long)seq, (unsigned long long)bytes);
}

#ifndef NO_FORK
static void stress_fork(void)
{
    const char *path = test_path("stress-fork");
    pid_t child = fork();
    if (child == 0) {
        fti_writer *w;
        CHECK_EQ(fti_writer_create(path, 1 << 20, 8, &w, TERR, sizeof TERR), 0);
        writer_main(w);
        fti_writer_free(w);
        _exit(0);
    }
    fti_reader *r = NULL;
    char err[256];
    for (int i = 0; i < 1000 && fti_reader_open(path, &r, err, sizeof err) != 0; i++)
        usleep(5000);
    CHECK(r != NULL);
    read_all(r);
    fti_reader_free(r);
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(access(path, F_OK) != 0);
    PASS("two-process stress");
}
#endif

static void stress_threads(uint32_t align)
{
    const char *path = test_path("stress-threads");
    fti_writer *w;
    fti_reader *r;
    char err[256];
    CHECK_EQ(fti_writer_create(path, 1 << 16, align, &w, TERR, sizeof TERR), 0);
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, writer_main, w), 0);
    read_all(r);
    CHECK_EQ(pthread_join(t, NULL), 0);
    fti_writer_free(w);
    fti_reader_free(r);
    PASS(align == 8 ? "two-thread stress, align 8" : "two-thread stress, align 64");
}

int main(int argc, char **argv)
{
    n_records = argc > 1 ? strtoull(argv[1], NULL, 10) : (SANITIZED ? 1000000 : 10000000);
#ifndef NO_FORK
    stress_fork();
#endif
    n_records = SANITIZED ? 200000 : 1000000;
    stress_threads(8);
    stress_threads(64);
    printf("all stress tests passed\n");
    return 0;
}
