"""Hardening (issue 12): the ring's promises under misuse, death, damage and hostile files,
across real processes."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from flinktf_ipc import (
    PeerLost,
    RingClosed,
    RingCorrupt,
    RingError,
    RingReader,
    RingTimeout,
    RingWriter,
    ring_stat,
)
from flinktf_ipc.errors import RingOSError, RingPermissionError


# ---- 1: a held batch never starves the writer -------------------------------------------


@pytest.mark.timeout(60)
def test_holding_the_previous_batch_never_starves_the_writer(ring_path):
    # the repro: 4 KiB ring, 1024 + 1000 + 1024 bytes, one batch held, a 1024-byte write
    with RingWriter.create(ring_path, capacity=4096) as w, RingReader.open(ring_path) as r:
        for size in (1024, 1000, 1024):
            w.write(bytes([size & 0xFF]) * size, timeout=1)
        held = r.read_batch(1024, timeout=1)
        errors: list[BaseException] = []

        def write() -> None:
            try:
                w.write(b"n" * 1024, timeout=10)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        t = threading.Thread(target=write)
        t.start()
        nxt = r.read_batch(1024, timeout=10)  # was: both this and the write timed out
        assert [len(x) for x in held] + [len(x) for x in nxt] == [1024, 1000, 1024]
        del held  # the iter_batches pattern: the previous batch goes once the next is in hand
        last = r.read_batch(1024, timeout=10)
        assert [bytes(x) for x in last] == [b"n" * 1024]
        t.join(timeout=10)
        assert not t.is_alive() and not errors


@pytest.mark.timeout(120)
def test_iter_batches_with_big_records_holding_the_previous(ring_path, peer):
    # records above half of max_record, the previous batch held while the next is read
    writer = peer("write-pattern", ring_path, 400, 12 * 1024)  # 64 KiB ring: max_record 16 KiB
    with RingReader.open(ring_path, timeout=10) as r:
        prev = None
        seen = 0
        for batch in r.iter_batches(64, timeout=20):
            for rec in batch:
                assert bytes(rec[:1]) == bytes([seen & 0xFF])
                seen += 1
            prev = batch  # noqa: F841 - held while the next batch is read
        assert seen == 400
    writer.wait(timeout=30)
    assert writer.returncode == 0, writer.stderr.read()


# ---- 3: a poll reports a dead peer -----------------------------------------------------


@pytest.mark.timeout(60)
def test_polling_with_timeout_zero_reports_a_dead_writer(ring_path, peer):
    writer = peer("write-hang", ring_path, 3)
    assert writer.stdout.readline().strip() == "written"
    with RingReader.open(ring_path, timeout=10) as r:
        assert len(r.read_batch(10, timeout=5)) == 3
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=10)
        deadline = time.monotonic() + 10
        with pytest.raises(PeerLost, match="is gone"):
            while time.monotonic() < deadline:
                try:
                    r.read(timeout=0)
                except RingTimeout:
                    time.sleep(0.001)


# ---- 5: only close() ends a stream --------------------------------------------------------


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["del", "raise"])
def test_writer_dropped_without_close_aborts_the_stream(ring_path, peer, how):
    writer = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "ring_peer.py"),
                               "write-drop", ring_path, "5", how], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "written"
        with RingReader.open(ring_path, timeout=10) as r:
            writer.stdin.write("go\n")
            writer.stdin.flush()
            got = [int.from_bytes(r.read(timeout=10), "little") for _ in range(5)]
            assert got == list(range(5))  # what was published is delivered
            with pytest.raises(PeerLost, match="aborted"):
                r.read(timeout=10)
    finally:
        writer.kill()
        writer.wait(timeout=10)


def test_writer_garbage_collected_aborts(ring_path):
    w = RingWriter.create(ring_path, capacity=4096)
    r = RingReader.open(ring_path)
    w.write(b"x")
    del w
    assert bytes(r.read(timeout=1)) == b"x"
    with pytest.raises(PeerLost, match="aborted"):
        r.read(timeout=1)
    r.close()


def test_a_batch_held_at_interpreter_exit_does_not_hang_the_exit(ring_path):
    # A big ring is unmapped on a thread of its own when its last view goes; a view that goes
    # only when the interpreter itself shuts down cannot start a thread (the start waited for
    # ever, and the process never exited).
    code = f"""
import sys
from flinktf_ipc import RingReader, RingWriter
w = RingWriter.create({ring_path!r}, capacity=64 << 20)
w.write(b"x" * 1000)
w.close()
r = RingReader.open({ring_path!r})
held = r.read_batch(16, timeout=5)   # module globals: dropped by the shutdown itself
r.close()
sys.stdout.write("read\\n")
"""
    proc = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "read\n"
    assert not os.path.exists(ring_path)  # the second side to leave removed the file


# ---- 6: write_many says how much it published --------------------------------------------


def test_write_many_timeout_says_how_many_were_published(ring_path):
    with RingWriter.create(ring_path, capacity=4096) as w, RingReader.open(ring_path) as r:
        records = [bytes([i]) * 1000 for i in range(10)]  # 1008-byte frames: 4 fit
        with pytest.raises(RingTimeout) as info:
            w.write_many(records, timeout=0.3)
        assert info.value.written == 4
        got = [bytes(x) for x in r.read_batch(100, timeout=1)]
        got += [bytes(x) for x in r.read_batch(100, timeout=1)]  # a batch pins at most half the ring
        assert got == records[:4]  # exactly the ones it said
        # a retry with the rest duplicates nothing
        done = threading.Thread(target=w.write_many, args=(records[info.value.written:],), kwargs={"timeout": 10})
        done.start()
        while len(got) < 10:
            got += [bytes(x) for x in r.read_batch(100, timeout=10)]
        done.join(timeout=10)
        assert got == records


# ---- 7: untrusted values after end of stream ---------------------------------------------


def test_write_pos_after_close_is_validated(ring_path):
    w = RingWriter.create(ring_path, capacity=4096)
    r = RingReader.open(ring_path)
    w.write(b"12345678")
    assert bytes(r.read(timeout=1)) == b"12345678"
    with open(ring_path, "r+b") as f:  # a writer gone wrong: write_pos backwards, then closed
        f.seek(128)
        f.write((8).to_bytes(8, "little"))
        f.seek(140)
        f.write((1).to_bytes(4, "little"))
    with pytest.raises(RingCorrupt, match="write position"):
        r.read(timeout=1)
    r.close()
    w.close()


# ---- 8: threads ---------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_close_from_another_thread_ends_a_blocked_read(ring_path):
    w = RingWriter.create(ring_path, capacity=4096)
    r = RingReader.open(ring_path)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            r.read()  # no timeout: only close() ends it
        except BaseException as e:  # noqa: BLE001
            outcome.append(e)

    t = threading.Thread(target=read)
    t.start()
    time.sleep(0.3)
    r.close()
    t.join(timeout=10)
    assert not t.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], RingClosed), outcome
    w.close()


@pytest.mark.timeout(300)
def test_views_dropped_on_other_threads_while_reading(ring_path, peer):
    import queue

    n = 200_000
    writer = peer("stress-write", ring_path, n, 1 << 16)
    q: queue.Queue = queue.Queue(maxsize=8)
    bad: list[str] = []

    def check() -> None:
        seen = 0
        while (batch := q.get()) is not None:
            for rec in batch:
                if int(np.frombuffer(rec, np.uint64)[0]) != seen:
                    bad.append(f"record {seen}")
                seen += 1
            del batch, rec  # the last views go on this thread while the reader is in next
        if seen != n:
            bad.append(f"saw {seen}")

    t = threading.Thread(target=check)
    t.start()
    with RingReader.open(ring_path, timeout=30) as r:
        for batch in r.iter_batches(256, timeout=60):
            q.put(batch)
            del batch
        q.put(None)
        t.join(timeout=120)
    assert not bad, bad[:5]
    writer.wait(timeout=30)
    assert writer.returncode == 0


# ---- 9: a full tmpfs ------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_full_tmpfs_is_enospc_with_nothing_left(tmp_path):
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    mnt = tmp_path / "small"
    mnt.mkdir(mode=0o700)
    code = (
        "import errno, os, sys\n"
        "from flinktf_ipc import RingWriter\n"
        "from flinktf_ipc.errors import RingOSError\n"
        "p = sys.argv[1] + '/big.ring'\n"
        "try:\n"
        "    RingWriter.create(p, capacity=4 << 20)\n"
        "except RingOSError as e:\n"
        "    assert e.errno == errno.ENOSPC, e\n"
        "    assert not os.path.exists(p)\n"
        "    print('ENOSPC', e)\n"
        "w = RingWriter.create(sys.argv[1] + '/small.ring', capacity=256 << 10)\n"
        "w.close()\n"
    )
    script = f"mount -t tmpfs -o size=1m,mode=0700 tmpfs {mnt} || exit 77; exec {sys.executable} -P -c \"$0\" {mnt}"
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, code],
                       capture_output=True, text=True, timeout=60)
    if p.returncode == 77 or "Operation not permitted" in p.stderr:
        pytest.skip("cannot mount a tmpfs here")
    assert p.returncode == 0, p.stderr
    assert "ENOSPC" in p.stdout and "reserve" in p.stdout


# ---- 10: unsafe paths -------------------------------------------------------------------------


def test_nul_and_empty_names_are_value_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("FLINKTF_IPC_DIR", str(tmp_path / "rings"))
    for bad in ("x.ring\0junk", "", str(tmp_path) + "/"):
        with pytest.raises(ValueError):
            RingWriter.create(bad, capacity=4096)
        with pytest.raises(ValueError):
            RingReader.open(bad, timeout=0)


def test_full_paths_get_the_checks_bare_names_get(tmp_path):
    d = tmp_path / "open"
    d.mkdir()
    os.chmod(d, 0o777)  # writable by others, no sticky bit
    with pytest.raises(RingPermissionError, match="sticky"):
        RingWriter.create(d / "a.ring", capacity=4096)
    os.chmod(d, 0o700)
    w = RingWriter.create(d / "a.ring", capacity=4096)
    os.chmod(d / "a.ring", 0o666)
    with pytest.raises(RingPermissionError, match="writable by others"):
        RingReader.open(d / "a.ring", timeout=0)
    os.chmod(d / "a.ring", 0o600)
    if os.geteuid() == 0:
        os.chown(d / "a.ring", 4321, 4321)
        with pytest.raises(RingPermissionError, match="uid 4321"):
            RingReader.open(d / "a.ring", timeout=0)
        with pytest.raises(RingPermissionError):
            ring_stat(d / "a.ring")
        os.chown(d / "a.ring", 0, 0)
    link = tmp_path / "link"
    link.symlink_to(d)
    with pytest.raises(RingOSError, match="symlink") as info:
        RingReader.open(link / "a.ring", timeout=0)
    assert info.value.errno == errno.ELOOP
    with RingReader.open(d / "a.ring", timeout=0):
        pass
    w.close()


def test_symlinked_ring_directory_says_symlink(tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    monkeypatch.setenv("FLINKTF_IPC_DIR", str(tmp_path / "link"))
    with pytest.raises(RingError, match="is a symlink"):
        RingWriter.create("x.ring", capacity=4096)


# ---- 11: a dead reader's slot is taken over ---------------------------------------------------


@pytest.mark.timeout(60)
def test_dead_readers_slot_is_taken_over(ring_path, peer):
    with RingWriter.create(ring_path, capacity=1 << 16) as w:
        w.write_many([i.to_bytes(8, "little") for i in range(10)])
        reader = peer("read-take-hang", ring_path)
        assert reader.stdout.readline().strip() == "took 10"
        with pytest.raises(RingError, match="already has a reader"):
            RingReader.open(ring_path, timeout=0)
        reader.send_signal(signal.SIGKILL)
        reader.wait(timeout=10)
        with RingReader.open(ring_path, timeout=5) as r:  # was: refused forever
            got = [int.from_bytes(x, "little") for x in r.read_batch(100, timeout=5)]
            assert got == list(range(10))  # not released by the dead reader: delivered again
            w.write(b"more")
            assert bytes(r.read(timeout=5)) == b"more"


# ---- 14: every failure a RingError or a ValueError --------------------------------------------


def test_bad_arguments_are_value_errors(ring_path):
    for cap in (-4096, 0, 5000, 1 << 41):
        with pytest.raises(ValueError):
            RingWriter.create(ring_path, capacity=cap)
    assert not os.path.exists(ring_path)


def test_os_failures_are_ring_errors(tmp_path):
    d = tmp_path / "d"
    d.mkdir(mode=0o700)
    RingWriter.create(d / "a.ring", capacity=4096).close()
    with pytest.raises(RingError):
        RingWriter.create(tmp_path / "missing" / "a.ring", capacity=4096)
    with pytest.raises(FileExistsError):  # still the built-in kind too
        RingWriter.create(d / "a.ring", capacity=4096)
    with pytest.raises(RingError):
        RingReader.open(d, timeout=0)  # a directory


def test_stat_of_an_empty_file_is_not_a_timeout(ring_path):
    open(ring_path, "wb").close()
    os.chmod(ring_path, 0o600)
    with pytest.raises(RingError, match="being created") as info:
        ring_stat(ring_path)
    assert not isinstance(info.value, RingTimeout)


@pytest.mark.timeout(30)
def test_all_zero_file_of_a_dead_creator_fails_fast(ring_path):
    with open(ring_path, "wb") as f:
        f.truncate(4096 + 4096)
    old = time.time() - 60
    os.utime(ring_path, (old, old))
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(child.stdout)
    with open(ring_path, "r+b") as f:  # the creator got as far as its pid, then died
        f.seek(136)
        f.write(dead_pid.to_bytes(4, "little"))
    t0 = time.monotonic()
    with pytest.raises(PeerLost, match="died before finishing"):
        RingReader.open(ring_path, timeout=20)
    assert time.monotonic() - t0 < 15  # not the whole timeout (generous: the machine is shared)


@pytest.mark.timeout(60)
def test_full_waits_counts_waits_not_slices(ring_path):
    with RingWriter.create(ring_path, capacity=4096) as w, RingReader.open(ring_path) as r:
        while True:
            try:
                w.write(b"x" * 1000, timeout=0)
            except RingTimeout:
                break

        def drain_later() -> None:
            time.sleep(1.2)  # several 0.25 s slices of the writer's wait
            del_batch = r.read_batch(100, timeout=1)
            del del_batch

        t = threading.Thread(target=drain_later)
        t.start()
        w.write(b"y" * 1000, timeout=10)
        t.join()
        assert ring_stat(ring_path).full_waits == 1


# ---- issue 13 item 6: the adaptive spin keeps the wait's contract -------------------------

_GAPPED_WRITER = """
import sys, time
from flinktf_ipc import RingWriter
w = RingWriter.create(sys.argv[1], capacity=1 << 16)
for i in range(300):
    time.sleep(0.00002)
    w.write(i.to_bytes(8, "little"))
print("written", flush=True)
time.sleep(600)  # alive, writing nothing, until killed
"""


@pytest.mark.timeout(120)
def test_spinning_wait_honours_timeouts_and_writer_death(ring_path):
    # Records tens of microseconds apart make the reader's spin its longest; then the writer
    # idles (each read times out, the spin cut at the deadline), then dies (PeerLost).
    writer = subprocess.Popen([sys.executable, "-P", "-c", _GAPPED_WRITER, ring_path], stdout=subprocess.PIPE,
                              text=True)
    try:
        with RingReader.open(ring_path, timeout=30) as r:
            for i in range(300):
                rec = r.read(timeout=30)
                assert rec is not None and int.from_bytes(rec, "little") == i
                del rec
            assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
            for timeout in (0.01, 0.001, 0.0001, 0.01):
                with pytest.raises(RingTimeout):
                    r.read(timeout=timeout)
            writer.send_signal(signal.SIGKILL)
            writer.wait(timeout=10)
            with pytest.raises(PeerLost, match="is gone"):
                r.read(timeout=None)
    finally:
        writer.kill()
        writer.wait(timeout=10)
