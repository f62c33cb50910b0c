"""cffi build script (out-of-line API mode): emits the C source of ``flinktf_ipc._fti_cffi``.

CMake runs ``python _build_ffi.py OUT.c`` and compiles OUT.c against the static ring library,
so the declarations below are the only place Python learns the C API (csrc/fti_ring.h).
"""

import sys

import cffi

CDEF = """
#define FTI_VERSION_MAJOR ...
#define FTI_VERSION_MINOR ...
#define FTI_HEADER_SIZE ...
#define FTI_MIN_CAPACITY ...
#define FTI_FRAME_HEADER ...

typedef struct fti_writer fti_writer;
typedef struct fti_reader fti_reader;
typedef struct fti_batch {
    const uint8_t *base;
    uint64_t end_pos;
    uint32_t count;
    uint32_t stride;
} fti_batch;
typedef struct fti_layout_field {
    const char *name;
    uint32_t offset;
    uint32_t size;
} fti_layout_field;
typedef struct fti_stat {
    uint32_t version, align, max_record;
    uint64_t capacity, created_ns;
    uint64_t write_pos, read_pos;
    uint32_t writer_pid, reader_pid, writer_closed, reader_closed;
    int32_t writer_alive, reader_alive;
    uint64_t records_in, bytes_in, full_waits, full_wait_ns;
    uint64_t records_out, bytes_out, empty_waits, empty_wait_ns;
} fti_stat;

int fti_writer_create(const char *path, uint64_t capacity, uint32_t align, fti_writer **out,
                      char *err, size_t errlen);
int fti_writer_reserve(fti_writer *w, uint32_t len, uint8_t **data, int64_t timeout_ns);
void fti_writer_publish(fti_writer *w);
int fti_writer_write(fti_writer *w, const void *data, uint32_t len, int64_t timeout_ns);
int64_t fti_writer_writev(fti_writer *w, const void *const *data, const uint32_t *lens,
                          uint64_t n, int64_t timeout_ns);
int fti_writer_flush(fti_writer *w, int64_t timeout_ns);
void fti_writer_close(fti_writer *w);
void fti_writer_abort(fti_writer *w);
void fti_writer_free(fti_writer *w);
uint32_t fti_writer_max_record(const fti_writer *w);
const char *fti_writer_error(const fti_writer *w);

int fti_reader_open(const char *path, fti_reader **out, char *err, size_t errlen);
int fti_reader_next(fti_reader *r, uint32_t max, fti_batch *batch, uint32_t *offsets,
                    uint32_t *lens, int64_t timeout_ns);
int fti_reader_release(fti_reader *r, uint64_t pos);
void fti_reader_close(fti_reader *r);
void fti_reader_free(fti_reader *r);
uint32_t fti_reader_max_record(const fti_reader *r);
const char *fti_reader_error(const fti_reader *r);

int fti_ring_stat(const char *path, fti_stat *st, char *err, size_t errlen);
const fti_layout_field *fti_layout_fields(void);
uint64_t fti_process_start_time(uint32_t pid);
"""


def make_builder() -> cffi.FFI:
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    ffi.set_source("flinktf_ipc._fti_cffi", '#include "fti_layout.h"\n#include "fti_ring.h"\n')
    return ffi


if __name__ == "__main__":
    make_builder().emit_c_code(sys.argv[1])
