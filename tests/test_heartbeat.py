"""Heartbeat files across real processes: atomic replacement, stale and exited detection."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from flinktf_ipc import heartbeat as hbm
from flinktf_ipc.heartbeat import Heartbeat, HeartbeatWriter, Liveness, State


def _beating_process(path, interval, extra=""):
    code = textwrap.dedent(f"""
        import sys, time
        from flinktf_ipc.heartbeat import HeartbeatWriter
        w = HeartbeatWriter({str(path)!r}, "worker", interval={interval})
        {extra}
        w.start()
        print("beating", flush=True)
        time.sleep(600)
    """)
    # cwd elsewhere: "-c" puts the cwd first on sys.path, and the source tree has no extension
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=path.parent)
    assert p.stdout.readline().strip() == "beating"
    return p


def test_round_trip_with_awkward_message(tmp_path):
    path = tmp_path / "hb"
    w = HeartbeatWriter(path, "writer")
    w.progress({"records": 12, "bytes": 34})
    w.set_state(State.FAILED, "boom = bad\nsecond line \\ backslash, ünïcode")
    hb = hbm.read_heartbeat(path)
    assert hb.role == "writer" and hb.pid == os.getpid() and hb.state is State.FAILED
    assert hb.message == "boom = bad\nsecond line \\ backslash, ünïcode"
    assert hb.progress == {"records": 12, "bytes": 34}
    assert hbm.check(path)[0] is Liveness.FAILED


@pytest.mark.timeout(60)
def test_concurrent_reader_never_sees_a_torn_file(tmp_path):
    path = tmp_path / "hb"
    p = _beating_process(path, 0.0005, extra='w.progress({"records": 1})')
    try:
        seqs = []
        for _ in range(3000):
            hb = hbm.read_heartbeat(path)  # raises on a partial file
            assert hb.progress == {"records": 1}
            seqs.append(hb.seq)
        assert seqs == sorted(seqs) and seqs[-1] > seqs[0]
        assert not [f for f in os.listdir(tmp_path) if f != "hb" and not f.startswith("hb.tmp-")]
    finally:
        p.kill()
        p.wait()


def test_stale_detection_at_the_boundary(tmp_path):
    path = tmp_path / "hb"
    now = time.monotonic_ns()
    start = hbm._binding.process_start_time(os.getpid())

    def write(age_s):
        hb = Heartbeat("worker", os.getpid(), start, time.time_ns(), now - int(age_s * 1e9), 1, State.RUNNING)
        path.write_text(hbm.encode(hb))

    write(9.5)
    assert hbm.check(path, timeout=10)[0] is Liveness.ALIVE
    write(10.5)
    verdict, hb = hbm.check(path, timeout=10)
    assert verdict is Liveness.STALE and 10.5 <= hb.age() < 12


@pytest.mark.timeout(60)
def test_stopped_process_turns_stale_and_killed_process_exited(tmp_path):
    path = tmp_path / "hb"
    p = _beating_process(path, 0.05)
    try:
        assert hbm.check(path, timeout=0.5)[0] is Liveness.ALIVE
        p.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while hbm.check(path, timeout=0.5)[0] is Liveness.ALIVE:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert hbm.check(path, timeout=0.5)[0] is Liveness.STALE
        p.send_signal(signal.SIGKILL)
        p.wait()
        assert hbm.check(path, timeout=0.5)[0] is Liveness.EXITED
    finally:
        p.kill()
        p.wait()


def test_missing_and_malformed(tmp_path):
    assert hbm.check(tmp_path / "none")[0] is Liveness.MISSING
    (tmp_path / "bad").write_text("version=1\nrole=x\n")
    with pytest.raises(ValueError, match="lacks"):
        hbm.read_heartbeat(tmp_path / "bad")
    (tmp_path / "future").write_text("version=9\n")
    with pytest.raises(ValueError, match="format 9"):
        hbm.read_heartbeat(tmp_path / "future")


def test_context_manager_records_outcome(tmp_path):
    with HeartbeatWriter(tmp_path / "ok", "worker", interval=0.01):
        time.sleep(0.05)
    assert hbm.read_heartbeat(tmp_path / "ok").state is State.FINISHED
    with pytest.raises(RuntimeError), HeartbeatWriter(tmp_path / "ko", "worker", interval=0.01):
        raise RuntimeError("bad input")
    hb = hbm.read_heartbeat(tmp_path / "ko")
    assert hb.state is State.FAILED and "bad input" in hb.message


# ---- damaged files: check() always returns a verdict (issue 12 item 2) --------------------------

def _age_file(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)


def _valid(pid=None, mono_ns=None):
    return hbm.encode(Heartbeat("writer", pid or os.getpid(), hbm._binding.process_start_time(os.getpid()),
                                time.time_ns(), mono_ns or time.monotonic_ns(), 1, State.RUNNING))


DAMAGED = {
    "garbage": lambda p: p.write_text("this is not a heartbeat"),
    "binary": lambda p: p.write_bytes(b"version=1\nrole=\xff\xfe\x00\n"),
    "bad_number": lambda p: p.write_text(_valid().replace("seq=1", "seq=one")),
    "huge_pid": lambda p: p.write_text(_valid(pid=10**30)),
    "future": lambda p: p.write_text(_valid(mono_ns=time.monotonic_ns() + 3600 * 10**9)),
    "empty": lambda p: p.write_text(""),
    "directory": lambda p: p.mkdir(),
    "fifo": lambda p: os.mkfifo(p),
    "symlink": lambda p: (p.with_name("target").write_text(_valid()), p.symlink_to(p.with_name("target"))),
    "huge": lambda p: p.write_text("x=" + "y" * (1 << 20)),
}


@pytest.mark.timeout(30)
@pytest.mark.parametrize("kind", sorted(DAMAGED))
def test_check_gives_a_verdict_for_a_damaged_file_unreadable_then_stale(tmp_path, kind):
    path = tmp_path / "hb"
    DAMAGED[kind](path)
    with pytest.raises(ValueError):
        hbm.read_heartbeat(path)  # the reason, for whoever wants it (a FIFO does not block)
    assert hbm.check(path, timeout=5) == (Liveness.UNREADABLE, None)
    _age_file(path, 6)
    assert hbm.check(path, timeout=5) == (Liveness.STALE, None)


def test_heartbeat_files_are_private_and_a_symlink_is_replaced_not_followed(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep me")
    (tmp_path / "hb").symlink_to(target)
    w = HeartbeatWriter(tmp_path / "hb", "worker")
    w.beat()
    assert target.read_text() == "keep me"
    assert not (tmp_path / "hb").is_symlink()
    assert os.stat(tmp_path / "hb").st_mode & 0o777 == 0o600
    assert hbm.check(tmp_path / "hb")[0] is Liveness.ALIVE


@pytest.mark.timeout(60)
def test_writer_thread_survives_failed_writes_reports_them_and_leaves_no_temp_file(tmp_path, capfd):
    d = tmp_path / "d"
    d.mkdir()
    w = HeartbeatWriter(d / "hb", "worker", interval=0.02).start()
    try:
        # The target became a non-empty directory: every rename fails (EISDIR/ENOTEMPTY).
        (d / "hb").unlink()
        (d / "hb").mkdir()
        (d / "hb" / "x").write_text("")
        deadline = time.monotonic() + 20
        while w.failures < 5:
            assert time.monotonic() < deadline, "the beating thread stopped"
            time.sleep(0.02)
        assert w._thread is not None and w._thread.is_alive()
        assert sorted(os.listdir(d)) == ["hb"], "no temp file left behind"
        # Fixed: it writes again.
        (d / "hb" / "x").unlink()
        (d / "hb").rmdir()
        while hbm.check(d / "hb")[0] is not Liveness.ALIVE:
            assert time.monotonic() < deadline, "the beating thread did not resume"
            time.sleep(0.02)
    finally:
        w.stop()
    err = capfd.readouterr().err
    assert err.count("cannot write") == 1, err  # reported once, not once per interval
    assert "written again" in err
