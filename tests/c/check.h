/* Test helpers: checks that fire with or without NDEBUG, and a scratch directory. */
#ifndef FTI_TEST_CHECK_H
#define FTI_TEST_CHECK_H
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#define CHECK(cond)                                                                    \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

#define CHECK_EQ(a, b)                                                                 \
    do {                                                                               \
        long long va_ = (long long)(a), vb_ = (long long)(b);                          \
        if (va_ != vb_) {                                                              \
            fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %lld, %s == %lld\n",       \
                    __FILE__, __LINE__, #a, va_, #b, vb_);                             \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

/* A fresh ring path under /dev/shm, removed first if a previous run left it. */
static inline const char *test_path(const char *name)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "/dev/shm/fti-test-%d-%s", (int)getpid(), name);
    unlink(buf);
    return buf;
}

/* xorshift64*: deterministic pseudo-random numbers for payloads and damage. */
static inline uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

/* Payload of record `seq`: its bytes are a function of seq and len, so the reader can verify. */
static inline void fill_payload(uint8_t *p, uint32_t len, uint64_t seq)
{
    uint64_t s = seq * 0x9E3779B97F4A7C15ull + len + 1;
    for (uint32_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            s = rng_next(&s);
        p[i] = (uint8_t)(s >> ((i & 7) * 8));
    }
}

static inline int payload_ok(const uint8_t *p, uint32_t len, uint64_t seq)
{
    uint64_t s = seq * 0x9E3779B97F4A7C15ull + len + 1;
    for (uint32_t i = 0; i < len; i++) {
        if ((i & 7) == 0)
            s = rng_next(&s);
        if (p[i] != (uint8_t)(s >> ((i & 7) * 8)))
            return 0;
    }
    return 1;
}

static char TERR[256] __attribute__((unused)); /* error messages of calls whose message the test does not check */

#define PASS(name) printf("ok - %s\n", name)
#endif
