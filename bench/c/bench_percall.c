/* The ring's own cost per record, without a second process or the scheduler: one thread writes
 * 16384 64-byte records (publishing every 16), then reads them in batches of up to 1024, copying
 * each out, and releases; N rounds through an 8 MiB ring. Prints ns per record (write + read).
 * Noise from other jobs hits it far less than a two-process run, and callgrind can count its
 * instructions: valgrind --tool=callgrind bench_percall 40
 * usage: bench_percall [ROUNDS] */
#define _GNU_SOURCE
#include "fti_ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 400;
    char path[64], err[256];
    snprintf(path, sizeof path, "/dev/shm/fti-bench-percall-%d", (int)getpid());
    unlink(path);
    fti_writer *w;
    fti_reader *r;
    if (fti_writer_create(path, 8 << 20, 8, &w, err, sizeof err) || fti_reader_open(path, &r, err, sizeof err))
        return 1;
    static uint8_t src[64], out[64];
    static uint32_t off[1024], lens[1024];
    uint64_t total = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int round = 0; round < rounds; round++) {
        for (int i = 0; i < 16384; i++) {
            uint8_t *p;
            if (fti_writer_reserve(w, 64, &p, 0))
                return 2;
            memcpy(p, src, 64);
            if ((i & 15) == 15)
                fti_writer_publish(w);
        }
        for (uint64_t got = 0; got < 16384;) {
            fti_batch b;
            if (fti_reader_next(r, 1024, &b, off, lens, 0))
                return 3;
            for (uint32_t k = 0; k < b.count; k++)
                memcpy(out, b.base + off[k], lens[k]);
            got += b.count;
            total += b.count;
            if (fti_reader_release(r, b.end_pos))
                return 4;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
    fti_writer_close(w);
    fti_writer_free(w);
    fti_reader_free(r);
    printf("{\"records\": %llu, \"ns_per_record\": %.1f, \"check\": %u}\n", (unsigned long long)total,
           ns / (double)total, out[0]);
    return 0;
}
