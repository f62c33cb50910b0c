/* C writer -> C reader across two processes, and a bare memcpy of the same records beside it.
 * usage: bench_ring RECORD_SIZE TOTAL_BYTES [CAPACITY]
 *          prints one JSON line: records/s and GB/s (payload) for the ring and for memcpy.
 *        bench_ring --write PATH RECORD_SIZE COUNT [CAPACITY]
 *          only writes (creates the ring at PATH), for a reader in another language. */
#define _GNU_SOURCE
#include "fti_ring.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GROUP 64 /* records per publication: write_many */
static char TERR[256];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int writer(const char *path, uint32_t size, uint64_t n, uint64_t cap)
{
    fti_writer *w;
    if (fti_writer_create(path, cap, 8, &w, TERR, sizeof TERR) != 0)
        return 1;
    uint8_t *src = malloc(size ? size : 1);
    memset(src, 0xab, size);
    for (uint64_t i = 0; i < n;) {
        for (int g = 0; g < GROUP && i < n; g++, i++) {
            uint8_t *p;
            if (fti_writer_reserve(w, size, &p, -1) != 0)
                return 2;
            memcpy(p, src, size);
            if (size >= 8)
                memcpy(p, &i, 8);
        }
        fti_writer_publish(w);
    }
    fti_writer_close(w);
    fti_writer_free(w);
    free(src);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && !strcmp(argv[1], "--write"))
        return writer(argv[2], (uint32_t)strtoul(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
                      argc > 5 ? strtoull(argv[5], NULL, 10) : (UINT64_C(64) << 20));
    if (argc < 3) {
        fprintf(stderr, "usage: %s RECORD_SIZE TOTAL_BYTES [CAPACITY]\n", argv[0]);
        return 2;
    }
    uint32_t size = (uint32_t)strtoul(argv[1], NULL, 10);
    uint64_t total = strtoull(argv[2], NULL, 10);
    uint64_t cap = argc > 3 ? strtoull(argv[3], NULL, 10) : (UINT64_C(64) << 20);
    uint64_t n = total / (size ? size : 1);
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/fti-bench-%d", (int)getpid());
    unlink(path);

    pid_t child = fork();
    if (child == 0)
        _exit(writer(path, size, n, cap));
    fti_reader *r = NULL;
    char err[256];
    while (fti_reader_open(path, &r, err, sizeof err) != 0)
        usleep(1000);
    static uint32_t off[1024], lens[1024];
    uint64_t got = 0, check = 0;
    double t0 = 0;
    for (;;) {
        fti_batch b;
        if (fti_reader_next(r, 1024, &b, off, lens, -1) != 0)
            return 3;
        if (b.count == 0)
            break;
        if (got == 0)
            t0 = now_s();
        for (uint32_t i = 0; i < b.count; i++)
            check += b.base[off[i]]; /* touch every record */
        got += b.count;
        if (fti_reader_release(r, b.end_pos) != 0)
            return 4;
    }
    double ring_s = now_s() - t0;
    fti_reader_free(r);
    int status;
    waitpid(child, &status, 0);
    if (got != n || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench: got %llu of %llu records\n", (unsigned long long)got, (unsigned long long)n);
        return 4;
    }

    /* baseline: memcpy of the same records into a buffer of the ring's size, one process */
    uint8_t *dst = malloc(cap), *src = malloc(size ? size : 1);
    memset(src, 0xcd, size);
    memset(dst, 0, cap);
    uint64_t stride = (size + 15) & ~UINT64_C(7);
    double t1 = now_s();
    for (uint64_t i = 0, at = 0; i < n; i++) {
        if (at + stride > cap)
            at = 0;
        memcpy(dst + at, src, size);
        at += stride;
    }
    double mem_s = now_s() - t1;
    check += dst[cap / 2];
    printf("{\"size\": %u, \"records\": %llu, \"ring_records_per_s\": %.0f, \"ring_gb_per_s\": %.3f, "
           "\"memcpy_records_per_s\": %.0f, \"memcpy_gb_per_s\": %.3f, \"check\": %llu}\n",
           size, (unsigned long long)n, n / ring_s, (double)n * size / ring_s / 1e9, n / mem_s,
           (double)n * size / mem_s / 1e9, (unsigned long long)(check & 1));
    free(dst);
    free(src);
    return 0;
}
