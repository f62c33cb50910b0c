"""The ring across real processes: stress with checksums, killed peers, held views."""

import os
import signal

import numpy as np
import pytest

from flinktf_ipc import PeerLost, RingReader, RingWriter


@pytest.mark.timeout(600)
def test_stress_ten_million_records_across_processes(ring_path, peer):
    n = 10_000_000
    writer = peer("stress-write", ring_path, n, 4 << 20)
    reader = peer("stress-read", ring_path, n)
    out, err = reader.communicate(timeout=540)
    assert reader.returncode == 0, err
    assert f"verified {n} records" in out
    _, werr = writer.communicate(timeout=60)
    assert writer.returncode == 0, werr
    assert not os.path.exists(ring_path)


@pytest.mark.timeout(60)
def test_writer_killed_reader_gets_peer_lost(ring_path, peer):
    writer = peer("write-hang", ring_path, 100)
    assert writer.stdout.readline().strip() == "written"
    with RingReader.open(ring_path, timeout=10) as r:
        got = [int.from_bytes(rec, "little") for rec in r.read_batch(1000, timeout=5)]
        assert got == list(range(100))  # what was published is still delivered
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        # PeerLost, not RingTimeout: the dead writer is detected within the wait
        with pytest.raises(PeerLost, match=f"writer process {writer.pid} is gone"):
            r.read(timeout=8)


@pytest.mark.timeout(60)
def test_reader_killed_writer_gets_peer_lost(ring_path, peer):
    with RingWriter.create(ring_path, capacity=1 << 16) as w:
        reader = peer("read-hang", ring_path)
        assert reader.stdout.readline().strip() == "attached"
        reader.send_signal(signal.SIGKILL)
        reader.wait(timeout=10)
        with pytest.raises(PeerLost, match=f"reader process {reader.pid} is gone"):
            for _ in range(1000):  # fills the ring, then waits on a dead reader
                w.write(b"x" * 1000, timeout=8)
    assert not os.path.exists(ring_path)


@pytest.mark.timeout(120)
def test_held_array_never_changes_while_writer_runs(ring_path, peer):
    n, size = 300, 1024  # 300 KiB through a 64 KiB ring
    writer = peer("write-pattern", ring_path, n, size)
    with RingReader.open(ring_path, timeout=10) as r:
        first = np.frombuffer(r.read(timeout=10), np.uint8)
        assert (first == 0).all()
        later = [np.frombuffer(rec, np.uint8).copy() for rec in r.read_batch(10, timeout=10)]
        line = writer.stdout.readline()  # the writer fills the ring and waits on our array
        assert line.startswith("full at"), line
        assert (first == 0).all()
        del first  # gives the space back: the writer goes on
        seen = 1 + len(later)
        for rec in r:
            assert bytes(rec) == bytes([seen & 0xFF]) * size
            seen += 1
        assert seen == n
    writer.wait(timeout=30)
    assert writer.returncode == 0, writer.stderr.read()


@pytest.mark.timeout(120)
def test_iterating_records_on_a_small_ring_never_starves_the_writer(ring_path, peer):
    # 300 records of 1 KiB through a 64 KiB ring, read one record at a time while holding the last
    writer = peer("write-pattern", ring_path, 300, 1024)
    with RingReader.open(ring_path, timeout=10) as r:
        held = None
        for i, rec in enumerate(r):
            assert bytes(rec) == bytes([i & 0xFF]) * 1024
            held = rec  # noqa: F841 - the caller keeps a record while the next is read
        assert i == 299
    writer.wait(timeout=30)
