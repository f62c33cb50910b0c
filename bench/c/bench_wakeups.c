/* Writer sleeps with a slow reader (issue 13 item 2): a writer thread writes 64-byte records as
 * fast as it can into a 1 MiB ring; a reader thread takes batches of up to 64 and spends ~1 µs
 * per record, so the writer is always waiting for space. Prints the writer thread's voluntary
 * context switches (its futex sleeps) per million records.
 * usage: bench_wakeups [RECORDS]   (build against any fti_ring.c to compare library versions)
 *        bench_wakeups --read PATH  only the slow reader, of a ring another process writes (the
 *                                   Java writer: its process's switches are counted outside) */
#define _GNU_SOURCE
#include "fti_ring.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t n_records;
static long writer_switches;

static long thread_voluntary_switches(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", (long)syscall(SYS_gettid));
    FILE *f = fopen(path, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static void *writer_main(void *arg)
{
    fti_writer *w = arg;
    static uint8_t rec[64];
    long before = thread_voluntary_switches();
    for (uint64_t i = 0; i < n_records; i++)
        if (fti_writer_write(w, rec, sizeof rec, -1) != 0)
            exit(2);
    writer_switches = thread_voluntary_switches() - before;
    fti_writer_close(w);
    return NULL;
}

static void work_ns(int64_t ns)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000 + (b.tv_nsec - a.tv_nsec) < ns);
}

static int slow_read(fti_reader *r)
{
    static uint32_t off[64], len[64];
    uint64_t got = 0;
    for (;;) {
        fti_batch b;
        if (fti_reader_next(r, 64, &b, off, len, -1) != 0 || b.count == 0)
            break;
        work_ns(1000 * (int64_t)b.count);
        got += b.count;
        if (fti_reader_release(r, b.end_pos) != 0)
            return -1;
    }
    return (int)(got > 0);
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], "--read")) {
        fti_reader *r = NULL;
        char err[256];
        for (int i = 0; i < 30000 && fti_reader_open(argv[2], &r, err, sizeof err) != 0; i++)
            usleep(1000);
        if (!r)
            return 1;
        int ok = slow_read(r);
        fti_reader_free(r);
        return ok == 1 ? 0 : 2;
    }
    n_records = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    char path[128], err[256];
    snprintf(path, sizeof path, "/dev/shm/fti-bench-wakeups-%d", (int)getpid());
    unlink(path);
    fti_writer *w;
    fti_reader *r;
    if (fti_writer_create(path, 1 << 20, 8, &w, err, sizeof err) != 0 || fti_reader_open(path, &r, err, sizeof err) != 0)
        return 1;
    pthread_t t;
    pthread_create(&t, NULL, writer_main, w);
    static uint32_t off[64], len[64];
    uint64_t got = 0;
    for (;;) {
        fti_batch b;
        if (fti_reader_next(r, 64, &b, off, len, -1) != 0 || b.count == 0)
            break;
        work_ns(1000 * (int64_t)b.count);
        got += b.count;
        if (fti_reader_release(r, b.end_pos) != 0)
            return 3;
    }
    pthread_join(t, NULL);
    fti_writer_free(w);
    fti_reader_free(r);
    printf("{\"records\": %llu, \"writer_sleeps_per_million\": %.0f}\n", (unsigned long long)got,
           writer_switches / (got / 1e6));
    return got == n_records ? 0 : 4;
}
