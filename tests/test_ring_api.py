"""The Python API of the ring in one process: records, batches, views, errors, close."""

import errno
import os
import stat

import numpy as np
import pytest

import flinktf_ipc as fti
from flinktf_ipc import (
    PeerLost,
    RecordTooLarge,
    RingClosed,
    RingCorrupt,
    RingError,
    RingReader,
    RingTimeout,
    RingWriter,
)


def test_exception_hierarchy():
    for exc in (RingTimeout, RingClosed, PeerLost, RingCorrupt, RecordTooLarge):
        assert issubclass(exc, RingError)
    assert issubclass(RingTimeout, TimeoutError)
    assert issubclass(RecordTooLarge, ValueError)


def test_records_round_trip_any_bytes_like(ring_path):
    with RingWriter.create(ring_path, capacity=1 << 16) as w, RingReader.open(ring_path) as r:
        w.write(b"abc")
        w.write(bytearray(b"de"))
        w.write(memoryview(b"xfgx")[1:3])
        w.write(np.arange(4, dtype=np.int32))
        w.write(b"")
        got = [bytes(r.read(timeout=1)) for _ in range(5)]
        assert got == [b"abc", b"de", b"fg", np.arange(4, dtype=np.int32).tobytes(), b""]


def test_write_many_is_one_batch(ring_path):
    with RingWriter.create(ring_path, capacity=1 << 16) as w, RingReader.open(ring_path) as r:
        assert w.write_many([bytes([i]) * i for i in range(100)]) == 100
        batch = r.read_batch(1000, timeout=1)
        assert len(batch) == 100
        assert [bytes(x) for x in batch] == [bytes([i]) * i for i in range(100)]
        assert batch.lengths.tolist() == list(range(100))
        assert batch.nbytes == sum(range(100))


def test_end_of_stream_after_drain(ring_path):
    w = RingWriter.create(ring_path, capacity=1 << 16)
    r = RingReader.open(ring_path)
    w.write_many([b"1", b"2", b"3"])
    w.close()
    assert [bytes(x) for x in r] == [b"1", b"2", b"3"]
    assert r.read(timeout=0) is None
    assert len(r.read_batch(10)) == 0
    assert r.eof
    r.close()
    assert not os.path.exists(ring_path)  # the last side to leave removed the file


def test_reader_close_fails_next_write(ring_path):
    w = RingWriter.create(ring_path, capacity=1 << 16)
    r = RingReader.open(ring_path)
    r.close()
    with pytest.raises(RingClosed, match="reader closed"):
        w.write(b"x")
    w.close()


def test_record_too_large_writes_nothing(ring_path):
    with RingWriter.create(ring_path, capacity=1 << 16) as w, RingReader.open(ring_path) as r:
        assert w.max_record == (1 << 16) // 4
        with pytest.raises(RecordTooLarge, match="exceeds"):
            w.write(b"x" * (w.max_record + 1))
        with pytest.raises(RecordTooLarge):
            w.write_many([b"ok", b"x" * (w.max_record + 1)])
        with pytest.raises(RingTimeout):
            r.read(timeout=0)  # nothing at all went in, not even the first record
        w.write(b"y" * w.max_record)
        assert len(r.read(timeout=1)) == w.max_record


def test_timeouts(ring_path):
    with RingWriter.create(ring_path, capacity=4096) as w, RingReader.open(ring_path) as r:
        with pytest.raises(RingTimeout):
            r.read(timeout=0.05)
        held = []
        with pytest.raises(RingTimeout, match="full"):
            while True:
                w.write(b"z" * 1000, timeout=0.05)
                held.append(1)
        assert len(held) == 4
        with pytest.raises(RingTimeout):
            w.flush(timeout=0.05)
        with pytest.raises(ValueError):
            r.read(timeout=-1)


def test_flush_returns_once_consumed(ring_path):
    with RingWriter.create(ring_path, capacity=1 << 16) as w, RingReader.open(ring_path) as r:
        w.write_many([b"a"] * 10)
        batch = r.read_batch(100, timeout=1)
        with pytest.raises(RingTimeout):
            w.flush(timeout=0.05)  # handed out but still viewed: not consumed yet
        del batch
        w.flush(timeout=1)


def test_open_waits_then_times_out(ring_path):
    with pytest.raises(RingTimeout, match="no ring ready"):
        RingReader.open(ring_path, timeout=0.1)


def test_create_refuses_existing_path(ring_path):
    with RingWriter.create(ring_path, capacity=4096), pytest.raises(FileExistsError):
        RingWriter.create(ring_path, capacity=4096)
    with pytest.raises(ValueError, match="power of two"):
        RingWriter.create(ring_path + "-x", capacity=5000)


def test_second_reader_refused(ring_path):
    with RingWriter.create(ring_path, capacity=4096), RingReader.open(ring_path):
        with pytest.raises(RingError, match="already has a reader"):
            RingReader.open(ring_path)


def test_version_mismatch_names_both(ring_path):
    with RingWriter.create(ring_path, capacity=4096):
        offset, _ = fti.layout_fields()["version"]
        with open(ring_path, "r+b") as f:
            f.seek(offset)
            f.write((7 << 16 | 1).to_bytes(4, "little"))
        with pytest.raises(RingCorrupt, match=r"7\.1.*1\.x"):
            RingReader.open(ring_path)


def test_not_a_ring(ring_path):
    with open(ring_path, "wb") as f:
        f.write(b"\x01" * 8192)
    with pytest.raises(RingCorrupt, match="magic"):
        RingReader.open(ring_path, timeout=0)


def test_default_dir_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("FLINKTF_IPC_DIR", str(tmp_path / "rings"))
    d = fti.default_ring_dir()
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    with RingWriter.create("bare-name", capacity=4096) as w:
        assert w.path == os.path.join(d, "bare-name")
        assert stat.S_IMODE(os.stat(w.path).st_mode) == 0o600
    os.chmod(d, 0o755)
    with pytest.raises(RingError, match="mode 0700"):
        fti.default_ring_dir()


def test_equal_size_batch_as_one_array(ring_path):
    with RingWriter.create(ring_path, capacity=1 << 16, align=64) as w, RingReader.open(ring_path) as r:
        rows = np.arange(40, dtype=np.float32).reshape(10, 4)
        w.write_many(list(rows))
        batch = r.read_batch(100, timeout=1)
        arr = batch.as_array(np.float32)
        assert arr.shape == (10, 4)
        np.testing.assert_array_equal(arr, rows)
        assert not arr.flags.owndata  # a view of the ring, not a copy
        assert batch[0].obj is not None
        for rec in batch:
            assert np.frombuffer(rec, np.uint8).ctypes.data % 64 == 0
        w.write_many([b"ab", b"abc"])
        with pytest.raises(ValueError, match="equal size"):
            r.read_batch(10, timeout=1).as_array()


def test_space_returns_only_when_views_are_gone(ring_path):
    with RingWriter.create(ring_path, capacity=4096) as w, RingReader.open(ring_path) as r:
        w.write(b"\x07" * 1000)
        arr = np.frombuffer(r.read(timeout=1), np.uint8)  # the record itself is dropped here
        filled = 0
        with pytest.raises(RingTimeout):
            while True:
                w.write(b"\x08" * 1000, timeout=0.05)
                filled += 1
        assert filled == 3  # the held record keeps its 1 KiB
        assert (arr == 7).all()
        batch = r.read_batch(10, timeout=1)
        batch.release()  # drops the batch's own hold...
        with pytest.raises(ValueError, match="released"):
            batch[0]
        del arr  # ...and now the first record's space goes back too
        w.write(b"\x09" * 1000, timeout=1)


def test_closing_reader_keeps_views_valid(ring_path):
    w = RingWriter.create(ring_path, capacity=4096)
    r = RingReader.open(ring_path)
    w.write(b"keep me")
    rec = r.read(timeout=1)
    r.close()
    with pytest.raises(ValueError, match="closed"):
        r.read()
    assert bytes(rec) == b"keep me"  # the mapping lives until the last view is gone
    del rec
    w.close()


def test_stat_counts(ring_path):
    with RingWriter.create(ring_path, capacity=1 << 16) as w, RingReader.open(ring_path) as r:
        w.write_many([b"x" * 10] * 5)
        for _ in r.read_batch(10, timeout=1):
            pass
        st = fti.ring_stat(ring_path)
        assert (st.records_in, st.bytes_in, st.records_out, st.bytes_out) == (5, 50, 5, 50)
        assert st.writer_pid == st.reader_pid == os.getpid()
        assert st.writer_alive == 1 and st.reader_alive == 1
        assert st.version == (1, 0)


def test_errno_mapping_is_complete():
    from flinktf_ipc import _binding

    for code, exc in [(errno.ETIMEDOUT, RingTimeout), (errno.EPIPE, RingClosed),
                      (errno.EOWNERDEAD, PeerLost), (errno.EPROTO, RingCorrupt),
                      (errno.EMSGSIZE, RecordTooLarge), (errno.ENOSPC, RingError),
                      (errno.EACCES, RingError), (errno.ELOOP, RingError), (errno.ENOMEM, RingError)]:
        with pytest.raises(exc, match="some/path"):
            _binding.raise_for(-code, "some/path")


def test_file_starts_with_the_magic_bytes(ring_path):
    with RingWriter.create(ring_path, capacity=4096):
        with open(ring_path, "rb") as f:
            assert f.read(8) == b"FTIRING1"


def test_aborted_writer_is_not_end_of_stream(ring_path):
    w = RingWriter.create(ring_path, capacity=1 << 16)
    r = RingReader.open(ring_path)
    w.write_many([b"1", b"2"])
    w.abort()
    assert [bytes(x) for x in r.read_batch(10, timeout=1)] == [b"1", b"2"]  # what was published
    with pytest.raises(PeerLost, match="aborted"):
        r.read(timeout=1)
    r.close()


def test_writer_leaving_with_an_exception_aborts(ring_path):
    r = None
    with pytest.raises(RuntimeError), RingWriter.create(ring_path, capacity=1 << 16) as w:
        r = RingReader.open(ring_path)
        w.write(b"partial")
        raise RuntimeError("job failed")
    assert bytes(r.read(timeout=1)) == b"partial"
    with pytest.raises(PeerLost, match="aborted"):
        r.read(timeout=1)
    r.close()


def test_read_batch_after_read_does_not_pin_what_read_served(ring_path):
    """read() serves records from a batch it holds; once read_batch takes over (a codec reads its
    header with read(), then batches), that hold must not keep the served records' space."""
    with RingWriter.create(ring_path, capacity=4096) as w, RingReader.open(ring_path) as r:
        w.write_many([b"h" * 100, b"s" * 100])  # one publication: read() takes both as one batch
        assert bytes(r.read(timeout=1)) == b"h" * 100
        assert bytes(r.read(timeout=1)) == b"s" * 100
        w.write(b"d" * 100)
        assert len(r.read_batch(10, timeout=1)) == 1  # dropped at once
        assert fti.ring_stat(ring_path).read_pos == fti.ring_stat(ring_path).write_pos


def test_read_serves_a_held_batch_and_mixes_with_read_batch(ring_path):
    with RingWriter.create(ring_path, capacity=1 << 16) as w, RingReader.open(ring_path) as r:
        w.write_many([bytes([i]) * 8 for i in range(10)])
        first = r.read(timeout=1)  # takes all ten from the ring in one call, serves one
        assert bytes(first) == b"\0" * 8
        assert bytes(r.read(timeout=0)) == b"\1" * 8  # served without waiting
        rest = r.read_batch(3, timeout=0)  # continues with what read() holds
        assert [bytes(x) for x in rest] == [bytes([i]) * 8 for i in (2, 3, 4)]
        assert rest.as_array().tolist() == [[i] * 8 for i in (2, 3, 4)]
        assert [bytes(r.read(timeout=0)) for _ in range(5)] == [bytes([i]) * 8 for i in range(5, 10)]
        with pytest.raises(RingTimeout):
            r.read(timeout=0)
        assert bytes(first) == b"\0" * 8  # a view keeps its bytes
        before = fti.ring_stat(ring_path).read_pos
        del rest
        assert fti.ring_stat(ring_path).read_pos == before  # `first` still holds the batch
        del first
        assert fti.ring_stat(ring_path).read_pos > before
        w.close()
        assert r.read(timeout=1) is None


def test_big_ring_is_unmapped_aside_and_removed(ring_path):
    import threading
    import time as _time

    w = RingWriter.create(ring_path, capacity=32 << 20)  # above the size unmapped off-thread
    r = RingReader.open(ring_path)
    w.write(b"x" * 100)
    w.close()
    rec = r.read(timeout=1)
    r.close()  # the view keeps the mapping
    assert os.path.exists(ring_path) and bytes(rec) == b"x" * 100
    main = threading.current_thread()
    del rec  # the last view: the unmap and the file's removal happen on a helper thread
    deadline = _time.monotonic() + 10
    while os.path.exists(ring_path) and _time.monotonic() < deadline:
        _time.sleep(0.01)
    assert not os.path.exists(ring_path)
    assert threading.current_thread() is main
