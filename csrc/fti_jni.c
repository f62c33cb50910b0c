/*
 * fti_jni.c — the JNI shim of the Java ring writer (io.flinktf.ipc.internal.NativeRing).
 *
 * The Java writer stores frames and positions itself through a memory mapping; it needs native
 * code only to sleep on and wake a futex word of that mapping (Java has no public API for it), and
 * to report the C library's layout table so a Java test can compare offsets. Nothing here runs per
 * record: futexWake only when the reader announced it sleeps, futexWait only when the ring is full.
 *
 * The futexes are NOT FUTEX_PRIVATE_FLAG: the word lives in a MAP_SHARED file mapping that another
 * process (the reader) sleeps on, and private futexes are keyed by (mm, address).
 */
#include <errno.h>
#include <fcntl.h>
#include <jni.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fti_ring.h"

/* Address of the 4-byte word at `offset` of a direct buffer, or NULL (with a Java exception). */
static uint32_t *word_at(JNIEnv *env, jobject buf, jint offset) {
    uint8_t *base = (*env)->GetDirectBufferAddress(env, buf);
    jlong cap = (*env)->GetDirectBufferCapacity(env, buf);
    if (base == NULL || cap < 0) {
        jclass iae = (*env)->FindClass(env, "java/lang/IllegalArgumentException");
        if (iae != NULL) (*env)->ThrowNew(env, iae, "futex: not a direct buffer");
        return NULL;
    }
    if (offset < 0 || (offset & 3) != 0 || (jlong)offset + 4 > cap) {
        jclass iae = (*env)->FindClass(env, "java/lang/IllegalArgumentException");
        if (iae != NULL) (*env)->ThrowNew(env, iae, "futex: offset outside the buffer or unaligned");
        return NULL;
    }
    return (uint32_t *)(base + offset);
}

JNIEXPORT jint JNICALL Java_io_flinktf_ipc_internal_NativeRing_futexWake0(JNIEnv *env, jclass cls,
                                                                         jobject buf, jint offset) {
    (void)cls;
    uint32_t *w = word_at(env, buf, offset);
    if (w == NULL) return -EINVAL;
    long r = syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    return r < 0 ? -errno : (jint)r;
}

JNIEXPORT jint JNICALL Java_io_flinktf_ipc_internal_NativeRing_futexWait0(JNIEnv *env, jclass cls,
                                                                         jobject buf, jint offset,
                                                                         jint expected,
                                                                         jlong timeout_ns) {
    (void)cls;
    uint32_t *w = word_at(env, buf, offset);
    if (w == NULL) return -EINVAL;
    if (timeout_ns < 0) timeout_ns = 0; /* the Java side always bounds its waits */
    struct timespec ts = {.tv_sec = (time_t)(timeout_ns / 1000000000),
                          .tv_nsec = (long)(timeout_ns % 1000000000)};
    /* FUTEX_WAIT's timeout is relative (CLOCK_MONOTONIC). */
    long r = syscall(SYS_futex, w, FUTEX_WAIT, (uint32_t)expected, &ts, NULL, 0);
    return r < 0 ? -errno : 0;
}

/* Reserves every page of the ring file at `path` (posix_fallocate): on a full tmpfs this is
 * -ENOSPC at creation instead of a SIGBUS at the first write that touches a new page. */
JNIEXPORT jint JNICALL Java_io_flinktf_ipc_internal_NativeRing_allocate0(JNIEnv *env, jclass cls,
                                                                        jstring path, jlong len) {
    (void)cls;
    const char *p = (*env)->GetStringUTFChars(env, path, NULL);
    if (p == NULL) return -ENOMEM;
    int fd = open(p, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    int rc = fd < 0 ? -errno : -posix_fallocate(fd, 0, (off_t)len);
    if (fd >= 0) close(fd);
    (*env)->ReleaseStringUTFChars(env, path, p);
    return rc;
}

JNIEXPORT jstring JNICALL Java_io_flinktf_ipc_internal_NativeRing_layoutTable0(JNIEnv *env,
                                                                              jclass cls) {
    (void)cls;
    const fti_layout_field *f = fti_layout_fields();
    size_t cap = 64, len = 0;
    for (const fti_layout_field *p = f; p->name != NULL; p++) cap += strlen(p->name) + 24;
    char *s = malloc(cap);
    if (s == NULL) return NULL;
    s[0] = '\0';
    for (const fti_layout_field *p = f; p->name != NULL; p++) {
        int n = snprintf(s + len, cap - len, "%s %u %u\n", p->name, (unsigned)p->offset,
                         (unsigned)p->size);
        if (n < 0 || (size_t)n >= cap - len) break;
        len += (size_t)n;
    }
    jstring out = (*env)->NewStringUTF(env, s);
    free(s);
    return out;
}
