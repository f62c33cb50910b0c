"""The worker process entry point, as the JVM side starts it: context file, heartbeats, exits."""

import json
import os
import re
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


# ---- the JVM supervisor, in an embedded Flink job ------------------------------------------------

SLOW_EXIT_ENTRY = textwrap.dedent("""
    import atexit, os, time

    def main(context):
        with open(os.path.join(context.properties["out"], f"pid-{context.index}"), "w") as f:
            f.write(str(os.getpid()))
        n = 0
        with context.reader(timeout=60) as r:
            for rec in r:
                n += 1
        with open(os.path.join(context.properties["out"], f"count-{context.index}"), "w") as f:
            f.write(str(n))
        # The entry returned (state finished), then the interpreter takes long to go: TF teardown.
        atexit.register(time.sleep, float(context.properties[f"exit_delay_{context.index}"]))

    def holds(context):
        with open(os.path.join(context.properties["out"], "pid-0"), "w") as f:
            f.write(str(os.getpid()))
        r = context.reader(timeout=60)
        held = r.read_batch(1, timeout=60)  # a record view never released: every checkpoint waits
        assert len(held)
        time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.fixture
def job_dir(tmp_path):
    """ring dir (0700), worker log dir and output dir of one job; leftover workers are killed after."""
    d = {"rings": tmp_path / "rings", "logs": tmp_path / "logs", "out": tmp_path / "out"}
    d["rings"].mkdir(mode=0o700)
    d["out"].mkdir()
    (tmp_path / "entries.py").write_text(SLOW_EXIT_ENTRY)
    d["entry"] = tmp_path / "entries.py"
    yield d
    for p in d["out"].glob("pid-*"):
        pid = int(p.read_text())
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.flink
@pytest.mark.timeout(240)
def test_finished_worker_gets_an_exit_grace_and_a_kill_after_it_is_said(tmp_path, job_dir):
    """Issue 12 item 4: a worker that said finished but exits slowly is not killed as hung (worker
    0: exit takes 5 s, heartbeat timeout 1.5 s); one that exceeds the exit grace is killed, the task
    still succeeds (it read everything) and the kill is in its stderr file (worker 1)."""
    flink = pytest.importorskip("flinktf_ipc.flink")
    from pyflink.common import WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource

    n = 10_000
    env = flink.configure(restart_attempts=0, log_dir=str(tmp_path / "flink-logs"))
    env.set_parallelism(2)
    sink = (flink.RingSink.builder().base_dir(job_dir["rings"]).name("slow").capacity(1 << 16).align(8)
            .encoder("long").worker_entry(f"{job_dir['entry']}:main").worker_python(sys.executable)
            .worker_log_dir(job_dir["logs"]).heartbeat_interval(0.5).heartbeat_timeout(1.5)
            .worker_exit_grace(12)
            .worker_properties({"out": str(job_dir["out"]), "exit_delay_0": "5", "exit_delay_1": "600"}).build())
    env.from_source(NumberSequenceSource(0, n - 1), WatermarkStrategy.no_watermarks(), "seq").sink_to(sink)
    env.execute("flinktf-ipc slow worker exit")  # restart_attempts=0: any kill as hung fails the job

    counts = [int((job_dir["out"] / f"count-{i}").read_text()) for i in (0, 1)]
    assert sum(counts) == n
    err0 = (job_dir["logs"] / "flinktf-slow-0.worker.err").read_text()
    err1 = (job_dir["logs"] / "flinktf-slow-1.worker.err").read_text()
    assert "[flinktf-ipc supervisor]" not in err0, err0
    assert "[flinktf-ipc supervisor]" in err1 and "did not exit within its exit grace" in err1, err1
    assert "The task succeeds" in err1
    assert not _alive(int((job_dir["out"] / "pid-1").read_text()))
    assert not os.listdir(job_dir["rings"]), os.listdir(job_dir["rings"])


@pytest.mark.flink
@pytest.mark.timeout(240)
def test_flush_timeout_defaults_below_the_checkpoint_timeout_and_names_ring_worker_bytes(tmp_path, job_dir):
    """Issue 12 item 13: a worker that holds a record view blocks the checkpoint drain; the sink's
    own error (ring, worker pid, bytes not consumed) must come before Flink's "Checkpoint expired"."""
    flink = pytest.importorskip("flinktf_ipc.flink")
    flink_arrow = pytest.importorskip("flinktf_ipc.flink_arrow")
    from py4j.protocol import Py4JJavaError
    from pyflink.common import Configuration, Types
    from pyflink.table import StreamTableEnvironment

    env = flink.configure(restart_attempts=0, log_dir=str(tmp_path / "flink-logs"))
    env.set_parallelism(1)
    env.enable_checkpointing(1000)
    conf = Configuration()
    conf.set_string("execution.checkpointing.timeout", "10 s")
    env.configure(conf)
    # An endless, slow source: the ring never fills, only the checkpoint drain waits.
    t_env = StreamTableEnvironment.create(env)
    t_env.execute_sql("CREATE TEMPORARY TABLE src (id BIGINT) WITH ('connector' = 'datagen', "
                      "'rows-per-second' = '20')")
    rows = t_env.to_data_stream(t_env.sql_query("SELECT id FROM src"))
    flink_arrow.arrow_sink(rows, Types.ROW_NAMED(["id"], [Types.LONG()]), name="held", batch_rows=1,
                           base_dir=job_dir["rings"], capacity=1 << 20, worker_entry=f"{job_dir['entry']}:holds",
                           worker_python=sys.executable, worker_log_dir=job_dir["logs"],
                           worker_properties={"out": str(job_dir["out"])})
    with pytest.raises(Py4JJavaError) as info:
        env.execute("flinktf-ipc held record view")
    text = str(info.value)
    assert "checkpoint flush timed out after 5000 ms" in text, text[-4000:]
    ring = re.escape(str(job_dir["rings"])) + r"/job-[0-9a-f]+/held-0\.ring"  # the job's own directory
    assert re.search("bytes of ring " + ring + " were not consumed", text), text[-4000:]
    pid = int((job_dir["out"] / "pid-0").read_text())
    assert f"worker process {pid}" in text, text[-4000:]
    assert "Checkpoint expired" not in text, text[-4000:]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("damage", ["garbage", "fifo", "directory", "deleted", "future"])
def test_worker_exits_when_the_writer_heartbeat_is_damaged(tmp_path, damage):
    """Issue 12 item 2: a damaged writer heartbeat killed the watchdog (or blocked it, a FIFO, or
    was ignored: missing, a future time) and the worker waited forever; now it is a lost writer
    after the timeout: exit 3, PeerLost."""
    peer_hb = tmp_path / "writer.hb"
    hbm.HeartbeatWriter(peer_hb, "writer").beat()  # a valid one first, as the JVM writes it before the start
    p = start_worker(tmp_path, "waits", [], peer_heartbeat=str(peer_hb), heartbeat_timeout=1.0)
    try:
        time.sleep(0.5)
        peer_hb.unlink()
        if damage == "garbage":
            peer_hb.write_bytes(b"\xff\xfe not a heartbeat")
        elif damage == "fifo":
            os.mkfifo(peer_hb)
        elif damage == "directory":
            peer_hb.mkdir()
        elif damage == "future":
            hb = hbm.Heartbeat("writer", os.getpid(), hbm._binding.process_start_time(os.getpid()), time.time_ns(),
                               time.monotonic_ns() + 3600 * 10**9, 1, hbm.State.RUNNING)
            peer_hb.write_text(hbm.encode(hb))
        _, err = p.communicate(timeout=60)
        assert p.returncode == 3, err
        assert "PeerLost" in err, err
        assert hbm.read_heartbeat(tmp_path / "worker.hb").state is hbm.State.FAILED
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


GIL_HOLDING_ENTRY = '''
import ctypes

# Like loading a big native library (TensorFlow): the GIL is held for seconds, no heartbeat is written.
ctypes.PyDLL(None).sleep(4)


def main(context):
    n = 0
    with context.reader() as r:
        for _ in r:
            n += 1
    with open(context.properties["out"], "w") as f:
        f.write(str(n))
'''


@pytest.mark.flink
@pytest.mark.timeout(240)
def test_a_worker_loading_its_entry_is_not_killed_as_hung(tmp_path, job_dir):
    """A worker whose import holds the GIL longer than the heartbeat timeout (4 s against 1.5 s)
    says "starting" until its entry is loaded and gets the startup grace, not a kill as hung."""
    flink = pytest.importorskip("flinktf_ipc.flink")
    from pyflink.common import WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource

    entry = tmp_path / "gil_entry.py"
    entry.write_text(GIL_HOLDING_ENTRY)
    n = 1000
    env = flink.configure(restart_attempts=0, log_dir=str(tmp_path / "flink-logs"))
    env.set_parallelism(1)
    sink = (flink.RingSink.builder().base_dir(job_dir["rings"]).name("gil").capacity(1 << 16).align(8)
            .encoder("long").worker_entry(f"{entry}:main").worker_python(sys.executable)
            .worker_log_dir(job_dir["logs"]).heartbeat_interval(0.5).heartbeat_timeout(1.5)
            .worker_properties({"out": str(job_dir["out"] / "count")}).build())
    env.from_source(NumberSequenceSource(0, n - 1), WatermarkStrategy.no_watermarks(), "seq").sink_to(sink)
    env.execute("flinktf-ipc worker loading its entry")  # restart_attempts=0: a kill as hung fails the job
    assert int((job_dir["out"] / "count").read_text()) == n
