"""The one module that touches the C library: thin calls and the errno -> exception mapping.

Blocking C calls release the GIL (cffi does so for every call in API mode); their waits are
bounded by the caller-supplied slice, so Python stays responsive to signals.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

try:
    from ._fti_cffi import ffi, lib  # type: ignore[import-not-found]
except ModuleNotFoundError as e:  # the source tree, not the built package (no compiled extension in it)
    if e.name != f"{__package__}._fti_cffi":
        raise
    raise ModuleNotFoundError(
        f"{__package__}._fti_cffi is not built in {os.path.dirname(__file__)}: this is the source tree, "
        "which shadows the installed package when Python starts in the checkout (python -c, python -m, "
        "a script beside it). Run `make install`, then start Python with -P or from another directory.",
        name=e.name) from None
from .errors import (
    PeerLost,
    RecordTooLarge,
    RingClosed,
    RingCorrupt,
    RingError,
    RingFileExists,
    RingFileNotFound,
    RingOSError,
    RingPermissionError,
    RingTimeout,
)

Handle = Any  # an opaque cdata pointer (fti_writer * / fti_reader *)

VERSION = (lib.FTI_VERSION_MAJOR, lib.FTI_VERSION_MINOR)
HEADER_SIZE: int = lib.FTI_HEADER_SIZE
MIN_CAPACITY: int = lib.FTI_MIN_CAPACITY
_ERRLEN = 256

_EXCEPTIONS: dict[int, type[Exception]] = {
    errno.ETIMEDOUT: RingTimeout,
    errno.EAGAIN: RingTimeout,
    errno.EPIPE: RingClosed,
    errno.EOWNERDEAD: PeerLost,
    errno.ECONNABORTED: PeerLost,
    errno.EPROTO: RingCorrupt,
    errno.EPROTONOSUPPORT: RingCorrupt,
    errno.EMSGSIZE: RecordTooLarge,
    errno.EBUSY: RingError,
}
_OS_EXCEPTIONS: dict[int, type[RingOSError]] = {
    errno.EEXIST: RingFileExists,
    errno.ENOENT: RingFileNotFound,
    errno.EACCES: RingPermissionError,
    errno.EPERM: RingPermissionError,
}
MAX_CAPACITY = 1 << 40


def raise_for(rc: int, path: str, message: str = "") -> NoReturn:
    """Raises the exception for a negative errno return of the C library."""
    code = -rc
    text = f"{path}: {message or os.strerror(code)}"
    exc = _EXCEPTIONS.get(code)
    if exc is not None:
        raise exc(text)
    raise _OS_EXCEPTIONS.get(code, RingOSError)(code, message or os.strerror(code), path)


def _message(buf: Any) -> str:
    return ffi.string(buf).decode("utf-8", "replace")


# ---- writer -----------------------------------------------------------------------------


def writer_create(path: str, capacity: int, align: int) -> Handle:
    if (not isinstance(capacity, int) or not MIN_CAPACITY <= capacity <= MAX_CAPACITY
            or capacity & (capacity - 1) or align not in (8, 64)):
        raise ValueError(
            f"capacity must be a power of two in [{MIN_CAPACITY}, 2**40] and align 8 or 64 "
            f"(got capacity={capacity}, align={align})"
        )
    out = ffi.new("fti_writer **")
    err = ffi.new("char[]", _ERRLEN)
    rc = lib.fti_writer_create(os.fsencode(path), capacity, align, out, err, _ERRLEN)
    if rc:
        raise_for(rc, path, _message(err))
    return out[0]


def writer_fail(w: Handle, rc: int, path: str) -> NoReturn:
    raise_for(rc, path, _message(lib.fti_writer_error(w)))


def writer_write(w: Handle, data: Any, timeout_ns: int) -> int:
    buf = ffi.from_buffer(data)
    return int(lib.fti_writer_write(w, buf, len(buf), timeout_ns))


class IoVec:
    """Pointers and lengths of records for fti_writer_writev, made once per write_many."""

    def __init__(self, records: Sequence[Any]) -> None:
        self._bufs = [ffi.from_buffer(r) for r in records]  # keeps the records' memory alive
        sizes = [len(b) for b in self._bufs]
        self.n = len(sizes)
        self.largest = max(sizes, default=0)
        self._ptrs = ffi.new("void *[]", self._bufs)
        self._lens = ffi.new("uint32_t[]", sizes)

    def write(self, w: Handle, start: int, timeout_ns: int) -> int:
        """Writes records start.. and publishes them together; returns how many went in, or -errno."""
        return int(lib.fti_writer_writev(w, self._ptrs + start, self._lens + start, self.n - start, timeout_ns))


def writer_reserve(w: Handle, size: int, timeout_ns: int) -> tuple[int, Any]:
    """Reserves a record; returns (rc, writable buffer of `size` bytes)."""
    out = ffi.new("uint8_t **")
    rc = lib.fti_writer_reserve(w, size, out, timeout_ns)
    return int(rc), (ffi.buffer(out[0], size) if rc == 0 else None)


def writer_publish(w: Handle) -> None:
    lib.fti_writer_publish(w)


def writer_flush(w: Handle, timeout_ns: int) -> int:
    return int(lib.fti_writer_flush(w, timeout_ns))


def writer_close(w: Handle) -> None:
    lib.fti_writer_close(w)


def writer_abort(w: Handle) -> None:
    lib.fti_writer_abort(w)


def writer_free(w: Handle) -> None:
    lib.fti_writer_free(w)


def writer_max_record(w: Handle) -> int:
    return int(lib.fti_writer_max_record(w))


# ---- reader -----------------------------------------------------------------------------


def reader_open(path: str) -> tuple[int, Handle, str]:
    """One attempt; returns (rc, handle or None, message)."""
    out = ffi.new("fti_reader **")
    err = ffi.new("char[]", _ERRLEN)
    rc = lib.fti_reader_open(os.fsencode(path), out, err, _ERRLEN)
    return int(rc), (out[0] if rc == 0 else None), _message(err)


def reader_fail(r: Handle, rc: int, path: str) -> NoReturn:
    raise_for(rc, path, _message(lib.fti_reader_error(r)))


class BatchScratch:
    """Per-reader output arrays for fti_reader_next, reused across calls."""

    def __init__(self, max_records: int) -> None:
        import numpy as np

        self.max = max_records
        self.batch = ffi.new("fti_batch *")
        self.offsets = np.empty(max_records, np.uint32)
        self.lens = np.empty(max_records, np.uint32)
        self._c_offsets = ffi.from_buffer("uint32_t[]", self.offsets)
        self._c_lens = ffi.from_buffer("uint32_t[]", self.lens)

    def next(self, r: Handle, max_records: int, timeout_ns: int) -> int:
        return int(lib.fti_reader_next(r, min(max_records, self.max), self.batch, self._c_offsets,
                                       self._c_lens, timeout_ns))

    def lease(self, on_release: Any) -> tuple[Any, int]:
        """The batch's memory as a buffer whose last reference calls on_release; and its size."""
        b = self.batch
        n = b.count
        size = int(self.offsets[n - 1]) + int(self.lens[n - 1])
        owner = ffi.gc(ffi.cast("uint8_t *", b.base), on_release)
        return ffi.buffer(owner, size), size


def reader_release(r: Handle, pos: int) -> int:
    """Gives space back up to pos (any thread); 0, or -EINVAL for a position never handed out."""
    return int(lib.fti_reader_release(r, pos))


def reader_close(r: Handle) -> None:
    lib.fti_reader_close(r)


def reader_free(r: Handle) -> None:
    lib.fti_reader_free(r)


def reader_max_record(r: Handle) -> int:
    return int(lib.fti_reader_max_record(r))


# ---- inspection -------------------------------------------------------------------------


@dataclass(frozen=True)
class RingStat:
    """A snapshot of a ring's header (see docs/FORMAT.md for each field)."""

    path: str
    version: tuple[int, int]
    capacity: int
    align: int
    max_record: int
    created_ns: int
    write_pos: int
    read_pos: int
    writer_pid: int
    reader_pid: int
    writer_closed: bool
    reader_closed: bool
    writer_alive: int  # 1 alive, 0 gone, -1 never attached
    reader_alive: int
    records_in: int
    bytes_in: int
    full_waits: int
    full_wait_ns: int
    records_out: int
    bytes_out: int
    empty_waits: int
    empty_wait_ns: int

    @property
    def fill(self) -> float:
        """Fraction of the data area holding bytes the reader has not given back."""
        return (self.write_pos - self.read_pos) / self.capacity


def ring_stat(path: str) -> RingStat:
    st = ffi.new("fti_stat *")
    err = ffi.new("char[]", _ERRLEN)
    rc = lib.fti_ring_stat(os.fsencode(path), st, err, _ERRLEN)
    if rc == -errno.EAGAIN:  # a snapshot does not wait: not a timeout
        raise RingError(f"{path}: {_message(err)}")
    if rc:
        raise_for(rc, path, _message(err))
    names = [f.name for f in RingStat.__dataclass_fields__.values()][3:]
    values = {n: getattr(st, n) for n in names}
    values["writer_closed"] = bool(values["writer_closed"])
    values["reader_closed"] = bool(values["reader_closed"])
    return RingStat(path=path, version=(st.version >> 16, st.version & 0xFFFF), capacity=st.capacity,
                    **values)


def layout_fields() -> dict[str, tuple[int, int]]:
    """The header layout as the C library defines it: name -> (offset, size)."""
    out = {}
    f = lib.fti_layout_fields()
    i = 0
    while f[i].name != ffi.NULL:
        out[ffi.string(f[i].name).decode()] = (f[i].offset, f[i].size)
        i += 1
    return out


def process_start_time(pid: int) -> int:
    """Start time of a process in clock ticks since boot; 0 if it does not exist."""
    return int(lib.fti_process_start_time(pid))
