/* The ring's own cost per record, without a second process or the scheduler, beside a bare ring
 * doing the same work: one thread writes 16384 64-byte records (publishing every 16), then reads
 * them in batches of up to 1024, copying each out, and releases; rounds through an 8 MiB ring.
 * The bare ring is bench_ring.c's (u64 length + payload, no checks, no futex word) in one
 * thread. The two alternate in blocks of 25 rounds (interleaved: machine noise hits both alike).
 * Prints ns per record (write + read) of each and their ratio.
 * Noise from other jobs hits it far less than a two-process run, and callgrind can count its
 * instructions: valgrind --tool=callgrind bench_percall 40
 * usage: bench_percall [ROUNDS] [SIZE] */
#define _GNU_SOURCE
#include "fti_ring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PER_ROUND 16384
#define CAP (UINT64_C(8) << 20)
#define BLOCK 25

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static uint8_t src[1 << 16], out[1 << 16];
static double write_ns[2]; /* time in the write halves of the rounds: ring, bare */

static __attribute__((noinline)) int ring_rounds(fti_writer *w, fti_reader *r, uint32_t size, int rounds)
{
    static uint32_t off[1024], lens[1024];
    for (int round = 0; round < rounds; round++) {
        double t0 = now_ns();
        for (int i = 0; i < PER_ROUND; i++) {
            uint8_t *p;
            if (fti_writer_reserve(w, size, &p, 0))
                return 2;
            memcpy(p, src, size);
            if ((i & 15) == 15)
                fti_writer_publish(w);
        }
        write_ns[0] += now_ns() - t0;
        for (uint64_t got = 0; got < PER_ROUND;) {
            fti_batch b;
            if (fti_reader_next(r, 1024, &b, off, lens, 0))
                return 3;
            for (uint32_t k = 0; k < b.count; k++)
                memcpy(out, b.base + off[k], lens[k]);
            got += b.count;
            if (fti_reader_release(r, b.end_pos))
                return 4;
        }
    }
    return 0;
}

/* bench_ring.c's bare ring, both sides in one thread: positions in memory another thread could
 * read (volatile stores stand in for the release stores), the same frames and wrap rule. */
struct bare {
    volatile uint64_t wpos, rpos;
    uint64_t w_pos, w_cached_r, r_pos, r_cached_w;
    uint8_t *data;
};

static __attribute__((noinline)) int bare_rounds(struct bare *b, uint32_t size, int rounds)
{
    const uint64_t fsize = 8 + ((size + 7) & ~UINT64_C(7));
    for (int round = 0; round < rounds; round++) {
        double t0 = now_ns();
        uint64_t pos = b->w_pos;
        for (int i = 0; i < PER_ROUND; i++) {
            uint64_t idx = pos & (CAP - 1), to_end = CAP - idx;
            uint64_t need = fsize > to_end ? to_end + fsize : fsize;
            if (pos + need - b->w_cached_r > CAP) {
                b->wpos = pos;
                b->w_cached_r = b->rpos;
                if (pos + need - b->w_cached_r > CAP)
                    return 2; /* one thread: the reader has released everything */
            }
            if (fsize > to_end) {
                memcpy(b->data + idx, &(uint64_t){UINT64_MAX}, 8);
                pos += to_end;
                idx = 0;
            }
            uint64_t len = size;
            memcpy(b->data + idx, &len, 8);
            memcpy(b->data + idx + 8, src, size);
            pos += fsize;
            if ((i & 15) == 15)
                b->wpos = pos;
        }
        b->wpos = b->w_pos = pos;
        write_ns[1] += now_ns() - t0;
        uint64_t rpos = b->r_pos, got = 0;
        while (got < PER_ROUND) {
            if (rpos == b->r_cached_w) {
                b->rpos = rpos;
                b->r_cached_w = b->wpos;
                if (rpos == b->r_cached_w)
                    return 3;
            }
            uint64_t idx = rpos & (CAP - 1), len;
            memcpy(&len, b->data + idx, 8);
            if (len == UINT64_MAX) {
                rpos += CAP - idx;
                continue;
            }
            memcpy(out, b->data + idx + 8, len);
            rpos += 8 + ((len + 7) & ~UINT64_C(7));
            if (++got % 16 == 0)
                b->rpos = rpos;
        }
        b->rpos = b->r_pos = rpos;
    }
    return 0;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 400;
    uint32_t size = argc > 2 ? (uint32_t)atoi(argv[2]) : 64;
    if (size < 8 || size > sizeof src)
        return 1;
    char path[64], err[256];
    snprintf(path, sizeof path, "/dev/shm/fti-bench-percall-%d", (int)getpid());
    unlink(path);
    fti_writer *w;
    fti_reader *r;
    if (fti_writer_create(path, CAP, 8, &w, err, sizeof err) || fti_reader_open(path, &r, err, sizeof err))
        return 1;
    struct bare b = {0};
    b.data = aligned_alloc(4096, CAP);
    if (!b.data)
        return 1;
    memset(b.data, 0, CAP);
    int blocks = (rounds + BLOCK - 1) / BLOCK, rc = 0;
    double *ring_ns = calloc(blocks, sizeof(double)), *bare_ns = calloc(blocks, sizeof(double));
    double ring_sum = 0, bare_sum = 0;
    for (int k = 0; k < blocks && !rc; k++) {
        double t0 = now_ns();
        rc = ring_rounds(w, r, size, BLOCK);
        double t1 = now_ns();
        rc = rc ? rc : bare_rounds(&b, size, BLOCK) * 10;
        double t2 = now_ns();
        ring_ns[k] = (t1 - t0) / (BLOCK * (double)PER_ROUND);
        bare_ns[k] = (t2 - t1) / (BLOCK * (double)PER_ROUND);
        ring_sum += t1 - t0;
        bare_sum += t2 - t1;
    }
    fti_writer_close(w);
    fti_writer_free(w);
    fti_reader_free(r);
    if (rc)
        return rc;
    /* medians of the blocks: a block that the scheduler interrupted does not move them */
    qsort(ring_ns, blocks, sizeof(double), cmp);
    qsort(bare_ns, blocks, sizeof(double), cmp);
    double ring_med = ring_ns[blocks / 2], bare_med = bare_ns[blocks / 2];
    printf("{\"size\": %u, \"records\": %llu, \"ns_per_record\": %.2f, \"bare_ns_per_record\": %.2f, "
           "\"ring_mean_ns\": %.2f, \"bare_mean_ns\": %.2f, \"ring_write_share\": %.2f, "
           "\"bare_write_share\": %.2f, \"bare_over_ring\": %.3f, \"check\": %u}\n",
           size, (unsigned long long)blocks * BLOCK * PER_ROUND, ring_med, bare_med,
           ring_sum / ((double)blocks * BLOCK * PER_ROUND), bare_sum / ((double)blocks * BLOCK * PER_ROUND),
           write_ns[0] / ring_sum, write_ns[1] / bare_sum, bare_med / ring_med, out[0]);
    free(ring_ns);
    free(bare_ns);
    free(b.data);
    return 0;
}
