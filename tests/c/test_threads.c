/* The reader's threading contract (fti_ring.h): fti_reader_release and fti_reader_close may run
 * on any thread while another thread is inside fti_reader_next. Three threads: a writer, a reader
 * that hands each batch to a releaser thread (as Python does when the last view of a batch is
 * dropped elsewhere), the releaser; then a close from another thread ends a blocked next. Built
 * with ThreadSanitizer too: a data race on the handle's state fails it. */
#include "check.h"
#include "fti_ring.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#define N_RECORDS 200000
#define QLEN 64
#define TIMEOUT_NS (INT64_C(30) * 1000000000)

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qcond = PTHREAD_COND_INITIALIZER;
static uint64_t queue[QLEN];
static int qhead, qtail, qdone;

static void *writer_main(void *arg)
{
    fti_writer *w = arg;
    uint64_t rng = 5;
    for (uint64_t seq = 0; seq < N_RECORDS; seq++) {
        uint32_t len = 8 + (uint32_t)(rng_next(&rng) % 200);
        uint8_t *p;
        CHECK_EQ(fti_writer_reserve(w, len, &p, TIMEOUT_NS), 0);
        fill_payload(p, len, seq);
        if ((seq & 15) == 0)
            fti_writer_publish(w);
    }
    fti_writer_close(w);
    return NULL;
}

static void *releaser_main(void *arg)
{
    fti_reader *r = arg;
    for (;;) {
        pthread_mutex_lock(&qlock);
        while (qhead == qtail && !qdone)
            pthread_cond_wait(&qcond, &qlock);
        if (qhead == qtail && qdone) {
            pthread_mutex_unlock(&qlock);
            return NULL;
        }
        uint64_t pos = queue[qhead++ % QLEN];
        pthread_cond_broadcast(&qcond);
        pthread_mutex_unlock(&qlock);
        CHECK_EQ(fti_reader_release(r, pos), 0);
    }
}

struct blocked {
    fti_reader *r;
    int rc;
};

static void *blocked_next(void *arg)
{
    struct blocked *bl = arg;
    fti_batch b;
    uint32_t off, len;
    bl->rc = fti_reader_next(bl->r, 1, &b, &off, &len, -1); /* no limit: only close ends it */
    return NULL;
}

int main(void)
{
    const char *path = test_path("threads");
    fti_writer *w;
    fti_reader *r;
    char err[256];
    CHECK_EQ(fti_writer_create(path, 1 << 14, 8, &w, err, sizeof err), 0);
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), 0);
    pthread_t wt, rt;
    CHECK_EQ(pthread_create(&wt, NULL, writer_main, w), 0);
    CHECK_EQ(pthread_create(&rt, NULL, releaser_main, r), 0);
    uint64_t seq = 0, rng = 5;
    static uint32_t off[128], len[128];
    for (;;) {
        fti_batch b;
        int rc = fti_reader_next(r, 128, &b, off, len, TIMEOUT_NS);
        CHECK_EQ(rc, 0);
        if (b.count == 0)
            break;
        for (uint32_t i = 0; i < b.count; i++, seq++) {
            CHECK_EQ(len[i], 8 + (uint32_t)(rng_next(&rng) % 200));
            CHECK(payload_ok(b.base + off[i], len[i], seq));
        }
        pthread_mutex_lock(&qlock);
        while (qtail - qhead == QLEN)
            pthread_cond_wait(&qcond, &qlock);
        queue[qtail++ % QLEN] = b.end_pos;
        pthread_cond_broadcast(&qcond);
        pthread_mutex_unlock(&qlock);
    }
    CHECK_EQ(seq, N_RECORDS);
    pthread_mutex_lock(&qlock);
    qdone = 1;
    pthread_cond_broadcast(&qcond);
    pthread_mutex_unlock(&qlock);
    CHECK_EQ(pthread_join(rt, NULL), 0);
    CHECK_EQ(pthread_join(wt, NULL), 0);
    fti_writer_free(w);
    fti_reader_free(r);
    PASS("releases on another thread while next runs");

    /* close from another thread ends a next that waits without limit */
    path = test_path("threads-close");
    CHECK_EQ(fti_writer_create(path, 1 << 14, 8, &w, err, sizeof err), 0);
    CHECK_EQ(fti_reader_open(path, &r, err, sizeof err), 0);
    struct blocked bl = {r, 1};
    pthread_t bt;
    CHECK_EQ(pthread_create(&bt, NULL, blocked_next, &bl), 0);
    struct timespec pause_ts = {0, 50 * 1000000};
    nanosleep(&pause_ts, NULL); /* let it reach its sleep (either way close must end it) */
    fti_reader_close(r);
    CHECK_EQ(pthread_join(bt, NULL), 0);
    CHECK_EQ(bl.rc, -EPIPE);
    CHECK_EQ(fti_writer_write(w, "x", 1, 0), -EPIPE);
    fti_reader_free(r);
    fti_writer_free(w);
    PASS("close on another thread ends a running next");
    return 0;
}
