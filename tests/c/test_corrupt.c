/* Corruption: random damage to the header and the frames of a ring with records in it. Opening
 * and reading must either succeed within bounds or fail with a clean error; never crash, never
 * read outside the mapping (run under ASan+UBSan too). */
#include "check.h"
#include "fti_layout.h"
#include "fti_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>

static int expected_error(int rc)
{
    return rc == -EPROTO || rc == -EPROTONOSUPPORT || rc == -EAGAIN || rc == -EOWNERDEAD || rc == -ETIMEDOUT;
}

static void damage(const char *path, uint64_t *rng, uint64_t cap)
{
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    uint8_t *m = mmap(NULL, FTI_HEADER_SIZE + cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(m != MAP_FAILED);
    close(fd);
    int hits = 1 + (int)(rng_next(rng) % 4);
    for (int i = 0; i < hits; i++) {
        uint64_t x = rng_next(rng);
        uint64_t where;
        switch (x & 3) {
        case 0: where = (x >> 8) % 512; break;                                 /* header */
        case 1: /* a frame length or kind among the unread frames */
        case 2: {
            uint64_t rp, wp;
            memcpy(&rp, m + 256, 8);
            memcpy(&wp, m + 128, 8);
            uint64_t span = wp > rp && wp - rp <= cap ? wp - rp : cap;
            where = FTI_HEADER_SIZE + (((rp + (x >> 8) % span) & (cap - 1)) & ~UINT64_C(7)) + (x & 1) * 4;
            break;
        }
        default: where = FTI_HEADER_SIZE + (x >> 8) % cap; break;             /* anywhere in data */
        }
        uint64_t v = rng_next(rng);
        int width = 1 << (rng_next(rng) % 4); /* 1, 2, 4 or 8 bytes */
        if (where + width > FTI_HEADER_SIZE + cap)
            width = 1;
        memcpy(m + where, &v, width);
    }
    munmap(m, FTI_HEADER_SIZE + cap);
}

int main(int argc, char **argv)
{
    int iterations = argc > 1 ? atoi(argv[1]) : 20000;
    uint64_t rng = 42;
    int opened = 0, failed_open = 0, failed_read = 0;
    static uint8_t sink[1 << 16];
    for (int it = 0; it < iterations; it++) {
        uint64_t cap = rng_next(&rng) & 1 ? 4096 : 16384;
        uint32_t align = rng_next(&rng) & 1 ? 8 : 64;
        const char *path = test_path("corrupt");
        fti_writer *w;
        CHECK_EQ(fti_writer_create(path, cap, align, &w, TERR, sizeof TERR), 0);
        /* records, with a wrap in most rings: write and consume a prefix first */
        uint64_t skip = rng_next(&rng) % cap;
        fti_reader *r;
        char err[256];
        CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), 0);
        for (uint64_t done = 0; done < skip;) {
            uint32_t len = (uint32_t)(rng_next(&rng) % 300);
            CHECK_EQ(fti_writer_write(w, sink, len, 0), 0);
            fti_batch b;
            uint32_t off, ln;
            CHECK_EQ(fti_reader_next(r, 1, &b, &off, &ln, 0), 0);
            CHECK_EQ(fti_reader_release(r, b.end_pos), 0);
            done += ln + align;
        }
        int n = (int)(rng_next(&rng) % 40);
        for (int i = 0; i < n; i++)
            if (fti_writer_write(w, sink, (uint32_t)(rng_next(&rng) % 600), 0) != 0)
                break;
        fti_reader_free(r); /* detaches; the file stays for the writer */
        if (rng_next(&rng) & 1)
            fti_writer_close(w);
        damage(path, &rng, cap);
        /* a fresh reader on the damaged file: the reader slot was taken, clear it like a new ring */
        int fd = open(path, O_RDWR);
        uint32_t zero = 0;
        CHECK_EQ(pwrite(fd, &zero, 4, 264), 4);
        CHECK_EQ(pwrite(fd, &zero, 4, 268), 4);
        close(fd);
        int rc = fti_reader_open(path, &r, err, sizeof err);
        if (rc) {
            CHECK(expected_error(rc) || rc == -EBUSY);
            failed_open++;
        } else {
            opened++;
            for (int rounds = 0; rounds < 200; rounds++) {
                fti_batch b;
                uint32_t off[64], ln[64];
                rc = fti_reader_next(r, 64, &b, off, ln, 0);
                if (rc) {
                    CHECK(expected_error(rc));
                    if (rc == -EPROTO)
                        failed_read++;
                    break;
                }
                if (b.count == 0)
                    break;
                for (uint32_t i = 0; i < b.count; i++) {
                    CHECK(ln[i] <= cap / 4);
                    CHECK((uint64_t)off[i] + ln[i] <= cap);
                    memcpy(sink, b.base + off[i], ln[i]); /* touches every byte handed out */
                }
                CHECK_EQ(fti_reader_release(r, b.end_pos), 0);
            }
            fti_reader_free(r);
        }
        fti_writer_free(w);
        unlink(path);
    }
    printf("ok - %d damaged rings: %d opened (%d reads refused as corrupt), %d refused at open\n", iterations,
           opened, failed_read, failed_open);
    return 0;
}
