/* Writer sleeps with a slow reader (issue 13 item 2): a writer thread writes 64-byte records as
 * fast as it can into a 1 MiB ring; a reader thread takes batches of up to 64 and spends ~1 µs
 * per record, so the writer is always waiting for space. Prints the writer thread's voluntary
 * context switches (its futex sleeps) per million records.
 * usage: bench_wakeups [RECORDS]   (build against any fti_ring.c to compare library versions)
 *        bench_wakeups --read PATH  only the slow reader, of a ring another process writes (the
 *                                   Java writer: its process's switches are counted outside)
 *        bench_wakeups --latency GAP_US N  wake-up latency (issue 13 item 6): a writer process
 *          publishes N 16-byte records GAP_US apart (a sleep, or a spin below 200 µs; a
 *          CLOCK_MONOTONIC stamp in each), this
 *          process reads them with an unbounded wait; prints p50/p99 of publication -> next()
 *          returning, and the reader's CPU share over the run (its spins). */
#define _GNU_SOURCE
#include "fti_ring.h"

#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
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

static int64_t mono_ns(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int latency(int64_t gap_ns, uint64_t n)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "/dev/shm/fti-bench-latency-%d", (int)getpid());
    unlink(path);
    pid_t child = fork();
    if (child == 0) {
        fti_writer *w;
        if (fti_writer_create(path, 1 << 20, 8, &w, err, sizeof err) != 0)
            _exit(1);
        for (uint64_t i = 0; i < n; i++) {
            if (gap_ns >= 200000) {
                struct timespec gap = {gap_ns / 1000000000, gap_ns % 1000000000};
                nanosleep(&gap, NULL);
            } else { /* a sleep this short would last ~60 µs: the writer spins the gap out */
                int64_t until = mono_ns(CLOCK_MONOTONIC) + gap_ns;
                while (mono_ns(CLOCK_MONOTONIC) < until)
                    ;
            }
            int64_t rec[2] = {(int64_t)i, mono_ns(CLOCK_MONOTONIC)};
            if (fti_writer_write(w, rec, sizeof rec, -1) != 0)
                _exit(2);
        }
        fti_writer_close(w);
        fti_writer_free(w);
        _exit(0);
    }
    /* writer and reader on cores of their own when there are two (the parent pins both: run
     * under `chrt -f 10` other jobs then cannot delay a wake-up; no side spins unbounded) */
    cpu_set_t allowed, one;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) >= 2) {
        for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE && seen < 2; cpu++) {
            if (CPU_ISSET(cpu, &allowed)) {
                CPU_ZERO(&one);
                CPU_SET(cpu, &one);
                sched_setaffinity(seen++ ? 0 : child, sizeof one, &one);
            }
        }
    }
    fti_reader *r = NULL;
    for (int i = 0; i < 30000 && fti_reader_open(path, &r, err, sizeof err) != 0; i++)
        usleep(1000);
    if (!r)
        return 1;
    int64_t *lat = calloc(n, sizeof *lat);
    uint64_t got = 0, skip = n / 20; /* the first ones: start-up */
    int64_t cpu0 = 0, wall0 = 0;
    static uint32_t off[64], len[64];
    for (;;) {
        fti_batch b;
        if (fti_reader_next(r, 64, &b, off, len, -1) != 0 || b.count == 0)
            break;
        int64_t now = mono_ns(CLOCK_MONOTONIC);
        for (uint32_t k = 0; k < b.count && got < n; k++, got++) {
            int64_t rec[2];
            memcpy(rec, b.base + off[k], sizeof rec);
            lat[got] = now - rec[1];
        }
        if (got >= skip && wall0 == 0) {
            cpu0 = mono_ns(CLOCK_THREAD_CPUTIME_ID);
            wall0 = now;
        }
        if (fti_reader_release(r, b.end_pos) != 0)
            return 3;
    }
    double cpu = (double)(mono_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0) / (double)(mono_ns(CLOCK_MONOTONIC) - wall0);
    fti_reader_free(r);
    waitpid(child, NULL, 0);
    if (got != n)
        return 4;
    qsort(lat + skip, n - skip, sizeof *lat, cmp_i64);
    uint64_t m = n - skip;
    printf("{\"gap_us\": %.0f, \"records\": %llu, \"p50_us\": %.1f, \"p99_us\": %.1f, \"reader_cpu\": %.4f}\n",
           gap_ns / 1e3, (unsigned long long)n, lat[skip + m / 2] / 1e3, lat[skip + m * 99 / 100] / 1e3, cpu);
    free(lat);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 3 && !strcmp(argv[1], "--latency"))
        return latency((int64_t)(atof(argv[2]) * 1000), strtoull(argv[3], NULL, 10));
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
