"""The flinktf-ipc command, run as a user would."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flinktf_ipc import RingReader, RingWriter
from flinktf_ipc.heartbeat import HeartbeatWriter

CLI = shutil.which("flinktf-ipc", path=str(Path(sys.executable).parent))


def run(*args, env=None):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=120, env=env)


def test_stat_shows_peers_fill_counters_and_heartbeats(tmp_path):
    d = tmp_path / "rings"
    d.mkdir(mode=0o700)
    path = str(d / "job-0.ring")
    with RingWriter.create(path, capacity=1 << 16) as w, RingReader.open(path) as r:
        w.write_many([b"x" * 100] * 10)
        batch = r.read_batch(4, timeout=1)
        HeartbeatWriter(d / "job-0.worker.hb", "worker").start()
        out = run("stat", str(d))
        assert out.returncode == 0, out.stderr
        text = out.stdout
        assert "job-0.ring" in text and f"writer pid {os.getpid()} alive" in text
        assert "in 10 rec 1KB" in text and "out 4 rec 400B" in text
        assert "worker alive" in text
        del batch
    assert "no rings" in run("stat", str(d)).stdout


def test_stat_reports_a_damaged_file(tmp_path):
    (tmp_path / "junk").write_bytes(b"\0" * 8192)
    out = run("stat", str(tmp_path))
    assert "not a readable ring" in out.stdout


@pytest.mark.timeout(180)
def test_doctor_passes_here_and_names_the_fix_when_java_is_missing(tmp_path):
    ok = run("doctor")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all checks passed" in ok.stdout
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # no java on PATH
    bad = run("doctor", env=env)
    assert bad.returncode == 1
    assert "FAIL java" in bad.stdout and "install Java 17" in bad.stdout
