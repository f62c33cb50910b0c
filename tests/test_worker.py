"""The worker process entry point, as the JVM side starts it: context file, heartbeats, exits."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from flinktf_ipc import RingWriter
from flinktf_ipc import heartbeat as hbm

ENTRY = textwrap.dedent("""
    def main(context):
        with context.reader() as r, open(context.properties["out"], "a") as out:
            for rec in r:
                out.write(rec.tobytes().decode() + "\\n")
                context.progress({"records": 1})

    def fails(context):
        raise ValueError("bad feature column")

    def waits(context):
        import time
        time.sleep(600)
""")


def start_worker(tmp_path, fn, rings, **extra):
    entry = tmp_path / "user_entry.py"
    entry.write_text(ENTRY)
    ctx = {"version": 1, "entry": f"{entry}:{fn}", "rings": rings, "index": 3, "attempt": 1,
           "heartbeat": str(tmp_path / "worker.hb"), "heartbeat_interval": 0.1,
           "properties": {"out": str(tmp_path / "out.txt")}, **extra}
    (tmp_path / "ctx.json").write_text(json.dumps(ctx))
    env = dict(os.environ, FLINKTF_WORKER_CONTEXT=str(tmp_path / "ctx.json"))
    return subprocess.Popen([sys.executable, "-P", "-m", "flinktf_ipc.worker"], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(60)
def test_worker_runs_entry_and_reports_finished(tmp_path, ring_path):
    with RingWriter.create(ring_path, capacity=1 << 16) as w:
        p = start_worker(tmp_path, "main", [ring_path])
        w.write_many([f"id-{i}".encode() for i in range(1000)])
    _, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert (tmp_path / "out.txt").read_text().split() == [f"id-{i}" for i in range(1000)]
    hb = hbm.read_heartbeat(tmp_path / "worker.hb")
    assert hb.state is hbm.State.FINISHED and hb.role == "worker"


@pytest.mark.timeout(60)
def test_failing_entry_exits_nonzero_with_traceback(tmp_path):
    p = start_worker(tmp_path, "fails", [])
    _, err = p.communicate(timeout=30)
    assert p.returncode == 1
    assert "ValueError: bad feature column" in err
    hb = hbm.read_heartbeat(tmp_path / "worker.hb")
    assert hb.state is hbm.State.FAILED and "bad feature column" in hb.message


@pytest.mark.timeout(60)
def test_worker_exits_when_writer_side_is_lost(tmp_path):
    peer_hb = tmp_path / "writer.hb"
    code = (f"from flinktf_ipc.heartbeat import HeartbeatWriter; import time; "
            f"HeartbeatWriter({str(peer_hb)!r}, 'writer', interval=0.1).start(); print('up', flush=True); "
            f"time.sleep(600)")
    writer = subprocess.Popen([sys.executable, "-P", "-c", code], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert writer.stdout.readline().strip() == "up"
        p = start_worker(tmp_path, "waits", [], peer_heartbeat=str(peer_hb), heartbeat_timeout=1.0)
        time.sleep(1.0)
        assert p.poll() is None  # a live writer keeps the worker going
        writer.send_signal(signal.SIGSTOP)  # hung, not dead: only the heartbeat age tells
        _, err = p.communicate(timeout=30)
        assert p.returncode == 3
        assert "PeerLost" in err and "stale" in err
    finally:
        writer.kill()
        writer.wait()


def test_bad_context_is_a_clear_error(tmp_path):
    (tmp_path / "ctx.json").write_text(json.dumps({"version": 9, "entry": "x", "rings": []}))
    env = dict(os.environ, FLINKTF_WORKER_CONTEXT=str(tmp_path / "ctx.json"))
    p = subprocess.run([sys.executable, "-P", "-m", "flinktf_ipc.worker"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "worker context version 9" in p.stderr
