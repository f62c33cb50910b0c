"""RingWriter and RingReader: the Python API of the shared-memory ring.

Records read are zero-copy views of the shared memory. The space of a batch goes back to the
writer only when every object viewing it (the batch, a record memoryview, a NumPy array made
from either) is gone, so a view never sees its bytes change.
"""

from __future__ import annotations

import atexit
import collections
import errno
import os
import stat
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np

from . import _binding as B
from .errors import RingError, RingTimeout

_SLICE_S = 0.25  # longest single C wait, so signals (Ctrl-C) are handled while blocked
_WAITING = (-errno.ETIMEDOUT, -errno.EAGAIN)
# Unmapping a big ring takes tens of ms (40 ms for 512 MiB): done off the thread that drops the
# last view (the training thread, at the end of an epoch) above this size.
_UNMAP_ASIDE_BYTES = 16 << 20
_unmapping: set[threading.Thread] = set()
_unmapping_lock = threading.Lock()


def _free_aside(h: B.Handle, _finalizing: Any = sys.is_finalizing) -> None:
    if _finalizing():
        # A batch dropped by the interpreter's own shutdown: no thread can start any more (the
        # start would wait for ever), so unmap here; nothing else runs now.
        B.reader_free(h)
        return

    def run() -> None:
        B.reader_free(h)
        with _unmapping_lock:
            _unmapping.discard(threading.current_thread())

    t = threading.Thread(target=run, name="flinktf-ipc-unmap", daemon=True)
    with _unmapping_lock:
        _unmapping.add(t)
    t.start()


@atexit.register
def _finish_unmapping() -> None:
    # the second side to leave removes the file: let pending leaves finish before the exit
    with _unmapping_lock:
        pending = list(_unmapping)
    for t in pending:
        t.join(timeout=5)


def ring_dir_path() -> str:
    """Where :func:`default_ring_dir` is, without creating or checking it (for read-only tools)."""
    return os.environ.get("FLINKTF_IPC_DIR") or f"/dev/shm/flinktf-{os.getuid()}"


def default_ring_dir() -> str:
    """The per-user ring directory, ``/dev/shm/flinktf-<uid>`` (mode 0700), created if needed.

    ``FLINKTF_IPC_DIR`` overrides the location. An existing directory must belong to the user
    and be closed to others.
    """
    path = ring_dir_path()
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise RingError(f"{path}: ring directory is a symlink; it must be a real directory owned by "
                        f"uid {os.getuid()} with mode 0700")
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise RingError(f"{path}: ring directory must be a directory owned by uid {os.getuid()} "
                        f"with mode 0700 (found mode {stat.S_IMODE(st.st_mode):o}, uid {st.st_uid})")
    return path


def _resolve(path: str | os.PathLike[str]) -> str:
    p = os.fspath(path)
    if "\0" in p:
        raise ValueError(f"ring path {p!r} contains a NUL byte")
    if not p or p.endswith(os.sep):
        raise ValueError(f"ring path {p!r} does not name a file")
    return p if os.sep in p else os.path.join(default_ring_dir(), p)


class _Clock:
    """A timeout (None = forever) cut into bounded slices for the C waits."""

    def __init__(self, timeout: float | None) -> None:
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 or None, got {timeout}")
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def slice_ns(self) -> int:
        if self.deadline is None:
            return int(_SLICE_S * 1e9)
        left = self.deadline - time.monotonic()
        return max(0, int(min(left, _SLICE_S) * 1e9))

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


def _call_with_timeout(call: Any, timeout: float | None) -> int:
    """Runs call(slice_ns) until it returns something other than 'still waiting' or time is up."""
    clock = _Clock(timeout)
    while True:
        rc = call(clock.slice_ns())
        if rc not in _WAITING or clock.expired():
            return int(rc)


class RingWriter:
    """The producer end of a ring. Create with :meth:`create`."""

    def __init__(self, handle: B.Handle, path: str) -> None:
        self._h: B.Handle | None = handle
        self.path = path
        self.max_record = B.writer_max_record(handle)

    @classmethod
    def create(cls, path: str | os.PathLike[str], capacity: int = 64 << 20, align: int = 8) -> RingWriter:
        """Creates the ring file (mode 0600); FileExistsError if the path exists.

        A bare name is placed in :func:`default_ring_dir`. ``capacity`` (data bytes) must be a
        power of two; ``align`` is 8, or 64 for payloads aligned for SIMD and DLPack.
        """
        p = _resolve(path)
        return cls(B.writer_create(p, capacity, align), p)

    def _handle(self) -> B.Handle:
        if self._h is None:
            raise ValueError(f"{self.path}: the writer is closed")
        return self._h

    def _check_size(self, n: int) -> None:
        if n > self.max_record:
            B.raise_for(-errno.EMSGSIZE, self.path,
                        f"record of {n} bytes exceeds the ring's maximum of {self.max_record} bytes")

    def write(self, data: Any, timeout: float | None = None) -> None:
        """Writes one record (any bytes-like object); blocks while the ring is full."""
        h = self._handle()
        rc = _call_with_timeout(lambda ns: B.writer_write(h, data, ns), timeout)
        if rc:
            B.writer_fail(h, rc, self.path)

    def write_many(self, records: Iterable[Any], timeout: float | None = None) -> int:
        """Writes records and publishes them with one store; returns how many were written.

        If it fails part-way (the ring stayed full until ``timeout``, the reader left), the
        exception's ``written`` says how many records were published before it.
        """
        h = self._handle()
        iov = B.IoVec(records if isinstance(records, (list, tuple)) else list(records))
        self._check_size(iov.largest)  # before anything is written
        clock = _Clock(timeout)
        done = 0
        while done < iov.n:
            rc = iov.write(h, done, clock.slice_ns())
            if rc > 0:
                done += rc
            elif rc not in _WAITING or clock.expired():
                try:
                    B.writer_fail(h, rc, self.path)
                except RingError as e:
                    e.written = done  # type: ignore[attr-defined]  # published: a retry must skip them
                    raise
        return done

    def reserve(self, size: int, timeout: float | None = None) -> memoryview:
        """Reserves a record of ``size`` bytes and returns it to fill in place (no copy).

        The record becomes visible at the next :meth:`publish` (or write/flush/close).
        """
        h = self._handle()
        self._check_size(size)
        out: list[Any] = []

        def attempt(ns: int) -> int:
            rc, buf = B.writer_reserve(h, size, ns)
            out.append(buf)
            return rc

        rc = _call_with_timeout(attempt, timeout)
        if rc:
            B.writer_fail(h, rc, self.path)
        return memoryview(out[-1])

    def publish(self) -> None:
        """Makes every reserved record visible to the reader."""
        B.writer_publish(self._handle())

    def flush(self, timeout: float | None = None) -> None:
        """Waits until the reader has consumed every record written so far."""
        h = self._handle()
        rc = _call_with_timeout(lambda ns: B.writer_flush(h, ns), timeout)
        if rc:
            B.writer_fail(h, rc, self.path)

    def close(self) -> None:
        """Ends the stream: the reader drains what remains, then sees end of stream.

        The only way a stream ends complete (with a clean ``with`` exit): a writer that is
        dropped without it aborts the stream.
        """
        if self._h is not None:
            B.writer_close(self._h)
            self._free()

    def abort(self) -> None:
        """Ends the stream as incomplete: the reader drains what remains, then gets PeerLost."""
        if self._h is not None:
            B.writer_abort(self._h)
            self._free()

    def _free(self) -> None:
        if self._h is not None:
            B.writer_free(self._h)  # aborts the stream unless it was closed
            self._h = None

    def __enter__(self) -> RingWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc is None:
            self.close()
        else:
            self.abort()  # a writer that failed half-way must not look like a complete stream

    def __del__(self) -> None:
        self._free()  # dropped without close(): the producer failed, the stream is incomplete


class Batch(Sequence[memoryview]):
    """Records handed out together: zero-copy memoryviews of the shared memory.

    The batch's space is given back to the writer when the batch and every view made from it
    are gone. :meth:`release` drops the batch's own hold early.
    """

    __slots__ = ("_buf", "_lens", "_offsets", "_stride")

    def __init__(self, buf: memoryview | None, offsets: np.ndarray, lens: np.ndarray, stride: int) -> None:
        self._buf = buf
        self._offsets = offsets
        self._lens = lens
        self._stride = stride

    def __len__(self) -> int:
        return len(self._lens)

    @overload
    def __getitem__(self, i: int) -> memoryview: ...
    @overload
    def __getitem__(self, i: slice) -> list[memoryview]: ...
    def __getitem__(self, i: int | slice) -> memoryview | list[memoryview]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        buf = self._view()
        off = int(self._offsets[i])
        return buf[off:off + int(self._lens[i])]

    def __iter__(self) -> Iterator[memoryview]:
        buf = self._view()
        for off, n in zip(self._offsets.tolist(), self._lens.tolist(), strict=True):
            yield buf[off:off + n]

    def _view(self) -> memoryview:
        if self._buf is None:
            raise ValueError("the batch was released")
        return self._buf

    @property
    def lengths(self) -> np.ndarray:
        """Length of each record (uint32)."""
        return self._lens

    @property
    def nbytes(self) -> int:
        """Payload bytes in the batch."""
        return int(self._lens.sum(dtype=np.uint64))

    def as_array(self, dtype: Any = np.uint8) -> np.ndarray:
        """All records as one 2-D NumPy view (records x items), without copying.

        Needs records of equal size, a multiple of the dtype's item size.
        """
        dt = np.dtype(dtype)
        n = len(self)
        size = int(self._lens[0]) if n else 0
        if n and (self._stride == 0 or size % dt.itemsize):
            raise ValueError("as_array needs records of equal size, a multiple of the item size "
                             f"({dt.itemsize}); sizes here range {int(self._lens.min())}..{int(self._lens.max())}")
        if n == 0:
            return np.empty((0, 0), dt)
        return np.ndarray((n, size // dt.itemsize), dt, buffer=self._view(), offset=int(self._offsets[0]),
                          strides=(self._stride, dt.itemsize))

    def release(self) -> None:
        """Drops the batch's hold on its space; views taken from it stay valid and keep it."""
        self._buf = None


class RingReader:
    """The consumer end of a ring. Open with :meth:`open`.

    Threads: one thread reads (``read``, ``read_batch``, iteration) at a time. Record views and
    batches may be dropped on any thread, and :meth:`close` may be called from any thread: a
    read running meanwhile raises RingClosed, and the mapping stays until it has returned.
    """

    def __init__(self, handle: B.Handle, path: str, max_batch: int = 4096) -> None:
        self._h: B.Handle | None = handle
        self.path = path
        self._scratch = B.BatchScratch(max_batch)
        self._lock = threading.RLock()
        self._leases: collections.deque[list[Any]] = collections.deque()  # [end_pos, released]
        self._closed = False
        self._eof = False
        self._in_next = 0  # reads inside the C library: the handle must outlive them
        # read(): the batch it serves records from (one C call per batch, not per record)
        self._held: Batch | None = None
        self._hbuf: memoryview | None = None
        self._hoffs: list[int] = []
        self._hends: list[int] = []
        self._hi = 0
        self._hn = 0

    @classmethod
    def open(cls, path: str | os.PathLike[str], timeout: float | None = 5.0) -> RingReader:
        """Opens a ring as its reader, waiting up to ``timeout`` for the file to appear.

        Raises RingTimeout if no ready ring appeared, RingCorrupt if the file is not a valid
        ring (or of another major layout version), PeerLost if its creator died before finishing
        it, RingError if the ring already has a live reader (a dead reader's slot is taken over:
        records it had not given back come again).
        """
        p = _resolve(path)
        clock = _Clock(timeout)
        while True:
            rc, h, msg = B.reader_open(p)
            if rc == 0:
                return cls(h, p)
            if rc in (-errno.ENOENT, -errno.EAGAIN):
                if clock.expired():
                    raise RingTimeout(f"{p}: no ring ready after {timeout} s ({msg})")
                time.sleep(0.005)
                continue
            B.raise_for(rc, p, msg)

    def _handle(self) -> B.Handle:
        if self._h is None or self._closed:
            raise ValueError(f"{self.path}: the reader is closed")
        return self._h

    @staticmethod
    def _empty() -> Batch:
        return Batch(None, np.empty(0, np.uint32), np.empty(0, np.uint32), 0)

    def read_batch(self, max_records: int = 1024, timeout: float | None = None) -> Batch:
        """Up to ``max_records`` records, waiting for at least one; empty only at end of stream.

        A batch pins at most half the ring, so holding the previous batch while the next is
        read never starves the writer, whatever the record sizes.
        """
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        if self._hi < self._hn:  # records read() has taken from the ring but not served yet
            return self._rest_of_held(max_records)
        self._drop_held()  # read() served all of it: its hold must not pin the space any longer
        with self._lock:
            h = self._handle()
            if self._eof:
                return self._empty()
            self._in_next += 1
        try:
            sc = self._scratch
            rc = _call_with_timeout(lambda ns: sc.next(h, max_records, ns), timeout)
            if rc:
                B.reader_fail(h, rc, self.path)
            b = sc.batch
            n = b.count
            if n == 0:
                self._eof = True
                return self._empty()
            entry = [b.end_pos, False]
            with self._lock:
                self._leases.append(entry)
            buf, _ = sc.lease(lambda _cdata, e=entry: self._lease_done(e))
            return Batch(memoryview(buf), sc.offsets[:n].copy(), sc.lens[:n].copy(), b.stride)
        finally:
            with self._lock:
                self._in_next -= 1
                if self._closed and not self._leases and not self._in_next:
                    self._free()

    def _rest_of_held(self, max_records: int) -> Batch:
        held = self._held
        assert held is not None
        i, j = self._hi, min(self._hn, self._hi + max_records)
        self._hi = j
        batch = Batch(held._buf, held._offsets[i:j], held._lens[i:j], held._stride)
        if j == self._hn:
            self._drop_held()
        return batch

    def _drop_held(self) -> None:
        self._held = self._hbuf = None
        self._hi = self._hn = 0

    def read(self, timeout: float | None = None) -> memoryview | None:
        """One record as a zero-copy memoryview; None at end of stream.

        Served from a batch taken from the ring in one call (records already published come at
        once; ``timeout`` applies when none is there). The batch's space goes back to the writer
        once read() has moved past its last record and no view of it is left.
        """
        i = self._hi
        buf = self._hbuf
        if i < self._hn and buf is not None:  # None: close() on another thread dropped it
            self._hi = i + 1
            return buf[self._hoffs[i]:self._hends[i]]
        return self._read_next_batch(timeout)

    def _read_next_batch(self, timeout: float | None) -> memoryview | None:
        self._drop_held()  # our hold must not pin the space while we wait for the next
        batch = self.read_batch(self._scratch.max, timeout)
        n = len(batch)
        if n == 0:
            return None
        offs = batch._offsets.tolist()
        ends = (batch._offsets + batch._lens).tolist()
        buf = batch._view()
        if n > 1:
            self._held, self._hbuf, self._hoffs, self._hends = batch, buf, offs, ends
            self._hi, self._hn = 1, n
        return buf[offs[0]:ends[0]]

    def iter_batches(self, max_records: int = 1024, timeout: float | None = None) -> Iterator[Batch]:
        """Batches until end of stream.

        A batch pins at most half the ring, so holding the previous batch while the next is
        read never starves the writer; holding more than that can.
        """
        while True:
            batch = self.read_batch(max_records, timeout)
            if not len(batch):
                return
            yield batch
            del batch  # our own reference must not pin the space while we wait for the next

    def __iter__(self) -> Iterator[memoryview]:
        """Records until end of stream (the caller may hold the last one while we read on)."""
        for batch in self.iter_batches():
            records = iter(batch)
            del batch
            yield from records

    def _lease_done(self, entry: list[Any]) -> None:
        # Called when the last view of a batch is gone (any thread: fti_reader_release may run
        # beside a next on the reading thread). Space goes back in order: up to the oldest batch
        # still viewed.
        with self._lock:
            entry[1] = True
            end = None
            while self._leases and self._leases[0][1]:
                end = self._leases.popleft()[0]
            if self._h is None:
                return
            if end is not None:
                B.reader_release(self._h, end)  # positions come from the library: cannot fail
            if self._closed and not self._leases and not self._in_next:
                self._free()

    def _free(self) -> None:
        if self._h is not None:
            h, self._h = self._h, None
            if B.reader_max_record(h) * 4 >= _UNMAP_ASIDE_BYTES:
                _free_aside(h)  # the ring is already closed: only the unmap and unlink remain
            else:
                B.reader_free(h)

    @property
    def eof(self) -> bool:
        """True once end of stream was returned."""
        return self._eof

    def close(self) -> None:
        """Leaves the ring: the writer's next write raises RingClosed.

        May be called from any thread; a read running meanwhile raises RingClosed. The mapping
        stays until the last record view is gone and no read is running, so views never dangle.
        """
        with self._lock:
            if self._closed or self._h is None:
                return
            self._closed = True
            B.reader_close(self._h)
            self._drop_held()  # may give back the last lease (and free, in _lease_done)
            if not self._leases and not self._in_next:
                self._free()

    def __enter__(self) -> RingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def ring_stat(path: str | os.PathLike[str]) -> B.RingStat:
    """A snapshot of a ring's header, read without attaching to it."""
    return B.ring_stat(_resolve(path))


def layout_fields() -> dict[str, tuple[int, int]]:
    """The header layout as the C library defines it: name -> (offset, size)."""
    return B.layout_fields()


__all__ = ["Batch", "RingReader", "RingWriter", "default_ring_dir", "layout_fields", "ring_stat"]
