"""Workers, heartbeats and failover, end to end: a real embedded Flink job whose RingSink starts
TF worker processes (tests/failover_entry.py through ``python -P -m flinktf_ipc.worker``), and real
signals: SIGKILL and SIGSTOP of a worker, SIGKILL and SIGSTOP of the JVM writer side, cancel.

Each Flink job takes 10-20 s here; the jobs are kept small (parallelism 1, 100 K records)."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import compile_java

from flinktf_ipc import RingReader
from flinktf_ipc import heartbeat as hbm
from flinktf_ipc.errors import PeerLost

flink = pytest.importorskip("flinktf_ipc.flink")
pytestmark = pytest.mark.flink

REPO = Path(__file__).resolve().parent.parent
ENTRY = str(Path(__file__).resolve().with_name("failover_entry.py")) + ":main"
WRITER_SIDE_SRC = REPO / "src/test/java/io/flinktf/ipc/WriterSideMain.java"


# ---- helpers ----------------------------------------------------------------------------------

def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_for(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.05) -> float:
    """Polls ``cond`` until true; returns the seconds it took, fails the test after ``timeout``."""
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - start


def worker_pid(out: Path, index: int, attempt: int) -> int | None:
    try:
        return int((out / f"pid-{index}-{attempt}").read_text())
    except (FileNotFoundError, ValueError):
        return None


def consumed(out: Path, index: int, attempt: int) -> int:
    try:
        return os.path.getsize(out / f"ids-{index}-{attempt}.bin") // 8
    except FileNotFoundError:
        return 0


def ids_by_attempt(out: Path, index: int = 0) -> dict[int, np.ndarray]:
    got = {}
    for p in glob.glob(str(out / f"ids-{index}-*.bin")):
        attempt = int(Path(p).stem.rsplit("-", 1)[1])
        got[attempt] = np.fromfile(p, dtype="<u8").astype(np.int64)
    return dict(sorted(got.items()))


@pytest.fixture
def ring_dir() -> Iterator[Path]:
    """A fresh ring directory in /dev/shm; the test asserts it ends empty, teardown removes it."""
    d = Path(f"/dev/shm/fti-failover-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def out_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the entry writes ids and pids; stopped or leftover workers are killed at teardown."""
    out = tmp_path / "out"
    out.mkdir()
    yield out
    for p in out.glob("pid-*"):
        pid = int(p.read_text())
        if alive(pid):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def flink_env(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Makes configured environments; the log dir is set before the gateway JVM starts."""
    log_dir = tmp_path_factory.mktemp("flink-logs")
    flink.jar_path()  # fail early and clearly if the package has no jar

    def make(*, restart_attempts: int, checkpoint_ms: int | None = None,
             checkpoint_dir: Path | None = None):  # type: ignore[no-untyped-def]
        from pyflink.common import Configuration
        env = flink.configure(restart_attempts=restart_attempts, restart_delay_ms=500, log_dir=str(log_dir))
        env.set_parallelism(1)
        if checkpoint_ms is not None:
            env.enable_checkpointing(checkpoint_ms)
        if checkpoint_dir is not None:
            conf = Configuration()
            conf.set_string("execution.checkpointing.storage", "filesystem")
            conf.set_string("execution.checkpointing.dir", checkpoint_dir.as_uri())
            env.configure(conf)
        return env

    make.log_dir = log_dir  # type: ignore[attr-defined]
    return make


def sequence_stream(env, n: int):  # type: ignore[no-untyped-def]
    from pyflink.common import WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource
    # A Java source of Longs (no Python per record); the "long" encoder writes 8 bytes LE each.
    return env.from_source(NumberSequenceSource(0, n - 1), WatermarkStrategy.no_watermarks(), "seq")


def worker_sink(ring_dir: Path, out: Path, name: str, *, delay: float, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    return (flink.RingSink.builder().checkpoint_dir(out.parent / "tf-ckpt").worker_python(sys.executable)
            .base_dir(ring_dir).name(name).capacity(1 << 16).align(8).encoder("long")
            .flush_timeout(60).worker_entry(ENTRY)
            .worker_properties({"out": str(out), "delay_attempt0": str(delay)})
            .heartbeat_interval(0.5).heartbeat_timeout(timeout).worker_shutdown_grace(2).build())


def in_background(fn: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


def assert_no_leftovers(ring_dir: Path, out: Path) -> None:
    for p in out.glob("pid-*"):
        pid = int(p.read_text())
        wait_for(lambda pid=pid: not alive(pid), 15, f"worker {pid} ({p.name}) to be gone")
    left = sorted(os.listdir(ring_dir)) if ring_dir.exists() else []
    assert not left, f"files left in {ring_dir}: {left}"


def flink_logs_contain(log_dir: Path, text: str) -> bool:
    for p in log_dir.glob("*.log"):
        with open(p, errors="replace") as f:
            if text in f.read():
                return True
    return False


def assert_zero_lost(out: Path, n: int) -> dict[int, np.ndarray]:
    by_attempt = ids_by_attempt(out)
    everything = np.concatenate(list(by_attempt.values()))
    seen = np.bincount(everything, minlength=n)
    assert len(seen) == n, f"ids beyond the source: max {everything.max()}"
    assert (seen > 0).all(), f"{int((seen == 0).sum())} ids lost, first {np.flatnonzero(seen == 0)[:10]}"
    for attempt, ids in by_attempt.items():
        assert (np.diff(ids) > 0).all(), f"attempt {attempt} read ids out of order or twice"
    return by_attempt


# ---- worker killed, hung -----------------------------------------------------------------------

@pytest.mark.timeout(150)
def test_killed_worker_restarts_from_checkpoint_and_loses_nothing(flink_env, ring_dir, out_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    n = 100_000
    ckpt = tmp_path / "ckpt"
    env = flink_env(restart_attempts=2, checkpoint_ms=300, checkpoint_dir=ckpt)
    sequence_stream(env, n).sink_to(worker_sink(ring_dir, out_dir, "kill", delay=0.01))
    killed: list[int] = []

    def kill_mid_stream() -> None:
        # Mid-stream, and after a checkpoint completed: the restart then resumes from it.
        wait_for(lambda: consumed(out_dir, 0, 0) >= 20_000 and glob.glob(str(ckpt / "*" / "chk-*" / "_metadata")),
                 90, "attempt 0 to consume 20000 ids past a completed checkpoint")
        pid = worker_pid(out_dir, 0, 0)
        assert pid is not None
        killed.append(consumed(out_dir, 0, 0))
        os.kill(pid, signal.SIGKILL)

    watcher, errors = in_background(kill_mid_stream)
    job_id = str(env.execute("flinktf-ipc failover: worker killed").get_job_id())
    watcher.join(timeout=10)
    assert not errors, errors
    assert killed and killed[0] < n, "the worker was killed mid-stream"

    by_attempt = assert_zero_lost(out_dir, n)
    assert 0 in by_attempt and 1 in by_attempt, f"a second attempt took over: {sorted(by_attempt)}"
    last = by_attempt[max(by_attempt)]
    resumed_at = int(last.min())
    assert resumed_at > 0, "the new attempt resumed from a checkpoint, not from the start"
    assert np.array_equal(last, np.arange(resumed_at, n)), "the last attempt read the replay in full, once"
    # Every id before the restored checkpoint was consumed exactly once: duplicates are confined
    # to what the killed attempt read after that checkpoint.
    everything = np.concatenate(list(by_attempt.values()))
    seen = np.bincount(everything, minlength=n)
    dups = np.flatnonzero(seen > 1)
    assert (seen[:resumed_at] == 1).all()
    assert dups.size == 0 or dups.min() >= resumed_at
    print(f"killed after {killed[0]} ids; resumed at {resumed_at}; {dups.size} duplicates")
    # Each attempt's worker knew its attempt, its own ring, and the shared checkpoint directory.
    import json
    for attempt in (0, 1):
        ctx = json.loads((out_dir / f"context-0-{attempt}.json").read_text())
        assert ctx["attempt"] == attempt and ctx["index"] == 0
        assert ctx["rings"] == flink.ring_paths(ring_dir, "kill", 1, attempt=attempt, job_id=job_id)
        assert ctx["checkpoint_dir"] == str(out_dir.parent / "tf-ckpt" / "0")
    assert_no_leftovers(ring_dir, out_dir)
    assert flink_logs_contain(flink_env.log_dir, "was killed by signal 9"), "the task failure names the cause"


@pytest.mark.timeout(150)
def test_stopped_worker_is_detected_within_the_timeout_and_the_job_completes(flink_env, ring_dir, out_dir) -> None:  # type: ignore[no-untyped-def]
    n = 60_000
    timeout = 3.0
    env = flink_env(restart_attempts=2, checkpoint_ms=500)
    sequence_stream(env, n).sink_to(worker_sink(ring_dir, out_dir, "hang", delay=0.01, timeout=timeout))
    detected: list[float] = []

    def stop_mid_stream() -> None:
        wait_for(lambda: consumed(out_dir, 0, 0) >= 10_000, 90, "attempt 0 to consume 10000 ids")
        pid = worker_pid(out_dir, 0, 0)
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # alive to every pid check: only the heartbeat age tells
        detected.append(wait_for(lambda: not alive(pid), 60, "the hung worker to be killed"))

    watcher, errors = in_background(stop_mid_stream)
    env.execute("flinktf-ipc failover: worker hung")
    watcher.join(timeout=10)
    assert not errors, errors
    # Declared dead by its heartbeat's age (the log says so), never before that heartbeat went
    # stale: at least the timeout less one heartbeat interval after the stop.
    assert detected and detected[0] >= timeout - 1.0, f"killed after {detected} s (timeout {timeout} s)"
    by_attempt = assert_zero_lost(out_dir, n)
    assert len(by_attempt) >= 2, "a fresh attempt took over"
    assert_no_leftovers(ring_dir, out_dir)
    assert flink_logs_contain(flink_env.log_dir, "is hung: its heartbeat is"), "the failure gives the heartbeat age"


@pytest.mark.timeout(120)
def test_failing_worker_fails_the_job_with_the_tail_of_its_stderr(flink_env, ring_dir, out_dir) -> None:  # type: ignore[no-untyped-def]
    from py4j.protocol import Py4JJavaError
    env = flink_env(restart_attempts=0)
    sink = (flink.RingSink.builder().base_dir(ring_dir).name("fails").capacity(1 << 16).align(8).encoder("long")
            .worker_entry(ENTRY.replace(":main", ":fails")).heartbeat_interval(0.5).build())
    sequence_stream(env, 10**9).sink_to(sink)
    with pytest.raises(Py4JJavaError) as info:
        env.execute("flinktf-ipc failing worker")
    text = str(info.value)
    assert "RingSink 'fails' subtask 0: worker process" in text, text[-3000:]
    assert "exited with status 1" in text and "fails-0.ring" in text, text[-3000:]
    assert "ValueError: feature column 'x' has NaN in attempt 0" in text, text[-3000:]
    assert not os.listdir(ring_dir), os.listdir(ring_dir)


# ---- cancel -------------------------------------------------------------------------------------

@pytest.mark.timeout(120)
def test_cancel_leaves_no_worker_and_no_file(flink_env, ring_dir, out_dir) -> None:  # type: ignore[no-untyped-def]
    env = flink_env(restart_attempts=0)
    sequence_stream(env, 10**12).sink_to(worker_sink(ring_dir, out_dir, "cancel", delay=0.002))
    client = env.execute_async("flinktf-ipc cancel")
    try:
        wait_for(lambda: consumed(out_dir, 0, 0) >= 1000, 90, "the worker to consume")
        pid = worker_pid(out_dir, 0, 0)
        assert pid is not None and alive(pid)
        ring = Path(flink.ring_paths(ring_dir, "cancel", 1, job_id=str(client.get_job_id()))[0])
        assert ring.exists()
        assert hbm.read_heartbeat(ring.with_suffix(".writer.hb")).state is hbm.State.RUNNING
        assert hbm.read_heartbeat(ring.with_suffix(".worker.hb")).pid == pid
    finally:
        client.cancel().result()
    # (The embedded mini-cluster shuts down with its only job: no status to poll afterwards.)
    wait_for(lambda: not alive(pid), 15, "the worker to be terminated")
    wait_for(lambda: not os.listdir(ring_dir), 15, f"{ring_dir} to be empty")
    assert_no_leftovers(ring_dir, out_dir)


# ---- the writer side lost (a JVM writer without Flink) -----------------------------------------

@pytest.fixture(scope="module")
def writer_side_cp(tmp_path_factory: pytest.TempPathFactory) -> str:
    return compile_java(tmp_path_factory.mktemp("java"), [WRITER_SIDE_SRC])


def start_writer_side(cp: str, ring: Path, mode: str, records: int) -> subprocess.Popen[str]:
    return subprocess.Popen(["java", "-Xmx64m", "-cp", cp, "io.flinktf.ipc.WriterSideMain", str(ring), "100", mode,
                             str(records)], stdout=subprocess.PIPE, text=True)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP])
def test_worker_exits_with_peer_lost_when_the_jvm_writer_is_lost(  # type: ignore[no-untyped-def]
        writer_side_cp, ring_dir, out_dir, tmp_path, sig) -> None:
    import json
    ring_dir.mkdir(mode=0o700)
    ring = ring_dir / "lost-0.ring"
    jvm = start_writer_side(writer_side_cp, ring, "hold", 1000)
    worker = None
    try:
        assert jvm.stdout is not None and jvm.stdout.readline().strip() == "ready"
        # The JVM's heartbeat is what flinktf_ipc.heartbeat reads: pid, start time, fresh, counting.
        hb = hbm.read_heartbeat(ring_dir / "lost-0.writer.hb")
        assert (hb.role, hb.pid, hb.state, hb.progress) == ("writer", jvm.pid, hbm.State.RUNNING, {"records": 1000})
        assert hbm.check(ring_dir / "lost-0.writer.hb")[0] is hbm.Liveness.ALIVE
        ctx = {"version": 1, "entry": ENTRY, "rings": [str(ring)], "role": "worker", "index": 0, "attempt": 0,
               "heartbeat": str(ring_dir / "lost-0.worker.hb"), "peer_heartbeat": str(ring_dir / "lost-0.writer.hb"),
               "heartbeat_interval": 0.2, "heartbeat_timeout": 2.0, "properties": {"out": str(out_dir)}}
        (tmp_path / "ctx.json").write_text(json.dumps(ctx))
        worker = subprocess.Popen([sys.executable, "-P", "-m", "flinktf_ipc.worker"], stderr=subprocess.PIPE, text=True,
                                  env=dict(os.environ, FLINKTF_WORKER_CONTEXT=str(tmp_path / "ctx.json")), cwd=tmp_path)
        wait_for(lambda: consumed(out_dir, 0, 0) == 1000, 30, "the worker to read the 1000 records")
        assert worker.poll() is None, "a live writer keeps the worker waiting"
        jvm.send_signal(sig)
        _, err = worker.communicate(timeout=30)
        assert worker.returncode == 3, err
        assert "PeerLost" in err, err
        verdict = hbm.read_heartbeat(ring_dir / "lost-0.worker.hb")
        assert verdict.state is hbm.State.FAILED
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait()
        if jvm.poll() is None:
            jvm.send_signal(signal.SIGCONT)
            jvm.kill()
        jvm.wait(timeout=30)
    assert not alive(worker.pid)


@pytest.mark.timeout(60)
def test_aborted_jvm_stream_is_drained_then_raises_peer_lost(writer_side_cp, ring_dir) -> None:  # type: ignore[no-untyped-def]
    ring_dir.mkdir(mode=0o700)
    ring = ring_dir / "abort-0.ring"
    jvm = start_writer_side(writer_side_cp, ring, "abort", 1000)
    assert jvm.stdout is not None and jvm.stdout.readline().strip() == "aborted"
    assert jvm.wait(timeout=30) == 0
    ids: list[int] = []
    with RingReader.open(ring, timeout=10) as r:
        with pytest.raises(PeerLost, match="abort"):
            while True:
                batch = r.read_batch(256, timeout=10)
                assert len(batch), "an aborted stream never ends cleanly"
                ids.extend(int(x) for x in batch.as_array(np.uint64)[:, 0])
                del batch
    assert ids == list(range(1000)), "everything published before the abort is delivered"
