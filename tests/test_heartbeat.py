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
