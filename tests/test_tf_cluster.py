"""One TF cluster inside the Flink job (issue 9).

First the pieces of the protocol on the Python side, with real role processes
(``python -P -m flinktf_ipc.worker``) and this test playing the JVM operator (it reads the address
files and writes the spec files, docs/FORMAT.md "TF cluster"); then the whole thing end to end on
the embedded Flink mini-cluster (marked ``flink``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flinktf_ipc import _cluster_worker as cw
from flinktf_ipc import heartbeat as hbm
from flinktf_ipc import tf_cluster
from flinktf_ipc.tf_cluster import TFClusterConfig, entry_of, train

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
ENTRY = str(TESTS / "cluster_entry.py")


def wait_for(cond: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    start = time.monotonic()
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def nested_entry() -> Callable[[Any], None]:
    def run_main(context: Any) -> None:
        pass
    return run_main


def module_level(context: Any) -> None:
    pass


# ---- the job side: arguments, entries --------------------------------------------------------

def test_entry_of_names_installed_modules_and_paths_of_scripts() -> None:
    from flinktf_ipc import worker
    assert entry_of(worker.main) == "flinktf_ipc.worker:main"  # installed: imported by name
    # this test module is not installed (pytest put tests/ on sys.path, python -P does not): a path
    assert entry_of(module_level) == f"{__file__}:module_level"
    assert entry_of("my_pkg.train:main") == "my_pkg.train:main"
    assert entry_of("rel/train.py:main") == os.path.abspath("rel/train.py") + ":main"


@pytest.mark.parametrize("bad, says", [
    (lambda c: None, "lambda"),
    (nested_entry(), "nested"),
    (print, "module-level function"),
    ("pkg.mod:not an identifier", "expected"),
])
def test_entry_that_no_process_can_import_is_a_value_error(bad: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        entry_of(bad)
    with pytest.raises(ValueError, match=says):
        train(2, 0, bad)


def test_entry_from_an_interactive_main_is_a_value_error() -> None:
    code = ("from flinktf_ipc.tf_cluster import entry_of\n"
            "def run_main(context): pass\n"
            "try:\n    entry_of(run_main)\nexcept ValueError as e:\n    print('ValueError', e)\n")
    out = subprocess.run([sys.executable, "-P", "-"], input=code, capture_output=True, text=True, timeout=60)
    assert "ValueError" in out.stdout and "interactive" in out.stdout, out


@pytest.mark.parametrize("args, says", [
    ((0, 1), "num_workers must be an int >= 1"),
    ((-1, 0), "num_workers"),
    ((True, 0), "num_workers"),
    ((2.0, 0), "num_workers"),
    ((2, -1), "num_ps must be an int >= 0"),
])
def test_train_rejects_bad_counts_before_the_job_starts(args: tuple[Any, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        train(*args, module_level)


def test_train_names_an_unknown_option() -> None:
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['epochs'\]"):
        train(1, 0, module_level, epochs=3)


@pytest.mark.parametrize("props, says", [
    ({"a": None}, "is not a string or number"),
    ({"a": [1, 2]}, "is not a string or number"),
    ({1: "x"}, "names are non-empty strings"),
    (["a", "b"], "dict"),
])
def test_bad_property_types_are_value_errors(props: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        train(1, 0, module_level, properties=props)


def test_config_builder_checks_everything_in_build() -> None:
    cfg = (TFClusterConfig.builder().name("c1").role("worker", 2).role("ps", 1).chief()
           .entry(module_level).properties({"n": 3, "flag": True, "s": "x"}).build())
    roles = [(r.name, r.count, r.fed) for r in cfg.roles]
    assert roles == [("worker", 2, False), ("ps", 1, False), ("chief", 1, False)]
    assert cfg.chief == "chief:0"
    assert cfg.properties == {"n": "3", "flag": "true", "s": "x"}
    assert TFClusterConfig.builder().workers(1).entry(module_level).build().chief == "worker:0"
    with pytest.raises(ValueError) as e:
        (TFClusterConfig.builder().name("bad name").role("ps", 0).role("Bad", 1).entry(lambda c: None)
         .heartbeat(timeout=-1).build())
    msg = str(e.value)
    for part in ("cluster name", "needs the role 'worker'", "role 'ps': the number of processes", "role name 'Bad'",
                 "lambda", "heartbeat_timeout"):
        assert part in msg, (part, msg)


def test_train_refuses_to_run_inside_a_role_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLINKTF_WORKER_CONTEXT", "/nonexistent")
    with pytest.raises(RuntimeError, match="if __name__"):
        train(1, 0, module_level)


def test_tfcontext_of_a_process_that_is_no_cluster_role() -> None:
    from flinktf_ipc.tf_cluster import TFContext
    from flinktf_ipc.worker import WorkerContext
    plain = WorkerContext(entry="m:f", rings=["/r"], role="worker", index=2)
    with pytest.raises(ValueError, match="not a role of a TF cluster"):
        TFContext(plain)
    served = WorkerContext(entry="m:f", rings=["/r"], role="worker", index=2, output_ring="/o")  # stream inference
    ctx = TFContext(served)
    got = (ctx.get_job_name(), ctx.get_task_index(), ctx.is_chief, ctx.chief_checkpoint_dir)
    assert got == ("worker", 2, False, None)
    with pytest.raises(ValueError, match="stream-inference worker"):
        ctx.get_cluster()
    assert "inference worker:2" in repr(ctx)


def test_inference_has_its_place() -> None:
    assert "inference" not in tf_cluster.__all__ or hasattr(tf_cluster, "inference")
    with pytest.raises(AttributeError):
        tf_cluster.no_such_name  # noqa: B018


# ---- the process side: port, files, spec ------------------------------------------------------

def test_reserved_port_is_held_and_outside_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch) -> None:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    s = cw.reserve_port()
    try:
        port = s.getsockname()[1]
        assert not lo <= port <= hi, (port, lo, hi)
        with pytest.raises(OSError), socket.socket() as other:  # nobody else gets it, v4 or v6
            other.bind(("0.0.0.0", port))
    finally:
        s.close()
    with socket.socket() as other:  # released: TF can bind it now
        other.bind(("0.0.0.0", port))


def test_reserve_skips_a_taken_port_and_says_when_none_is_left(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = cw.reserve_port()
    port = taken.getsockname()[1]
    try:
        s = cw.reserve_port([port, port + 1 if port < 65535 else port - 1])
        assert s.getsockname()[1] != port
        s.close()
        monkeypatch.setenv(cw.PORTS_ENV, f"{port}-{port}")
        with pytest.raises(OSError, match="no free port"):
            cw.reserve_port()
    finally:
        taken.close()


def test_protocol_files_are_private_and_replaced_whole(tmp_path: Path) -> None:
    p = tmp_path / "x.addr.json"
    cw.write_json_file(str(p), {"host": "h", "port": 1, "pid": 2})
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    assert json.loads(p.read_text()) == {"host": "h", "port": 1, "pid": 2}
    assert not list(tmp_path.glob("*.tmp-*"))
    (tmp_path / "s.json").write_text('{"epoch": 1, "cluster": {"worker": ["a:1"]}}')
    with pytest.raises(ValueError, match="malformed spec"):
        cw.read_spec(str(tmp_path / "s.json"))
    assert cw.read_spec(str(tmp_path / "absent.json")) is None


class FakeOperator:
    """This test as the JVM side of N role processes: context files, address files -> spec files.

    (The real operator and AM are Java, tested end to end below; this checks the Python process
    alone, including what it does when the JVM side is gone.)"""

    def __init__(self, d: Path, roles: dict[str, int], entry: str, out: Path, *, chief: str = "worker:0",
                 peer_heartbeat: str | None = None, env: dict[str, str] | None = None) -> None:
        self.d, self.roles, self.out = d, roles, out
        self.procs: dict[tuple[str, int], subprocess.Popen[str]] = {}
        for role, n in roles.items():
            for i in range(n):
                stem = d / f"t-{role}-{i}"
                ctx = {"version": 1, "entry": entry, "rings": [], "role": role, "index": i, "attempt": 0,
                       "heartbeat": f"{stem}.{role}.hb", "peer_heartbeat": peer_heartbeat,
                       "heartbeat_interval": 0.2, "heartbeat_timeout": 2.0,
                       "checkpoint_dir": str(d / "ckpt" / f"{role}-{i}"), "properties": {"out": str(out)},
                       "cluster": {"name": "t", "roles": roles, "chief": chief,
                                   "address_file": f"t-{role}-{i}.addr.json",  # relative: beside the context
                                   "spec_file": f"{stem}.spec.json"}}
                (d / f"t-{role}-{i}.{role}.json").write_text(json.dumps(ctx))
                self.procs[role, i] = subprocess.Popen(
                    [sys.executable, "-P", "-m", "flinktf_ipc.worker"], stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True,
                    env={**os.environ, **(env or {}), "FLINKTF_WORKER_CONTEXT": str(d / f"t-{role}-{i}.{role}.json")})

    def addresses(self) -> dict[tuple[str, int], dict[str, Any]]:
        got = {}
        for (role, i) in self.procs:
            p = self.d / f"t-{role}-{i}.addr.json"
            if p.exists():
                got[role, i] = json.loads(p.read_text())
        return got

    def hand_out_spec(self, epoch: int = 0) -> dict[str, list[str]]:
        addrs = wait_for(lambda: (a := self.addresses()) and len(a) == len(self.procs) and a, 120,
                         "every process's address file")
        cluster = {role: [f"{addrs[role, i]['host']}:{addrs[role, i]['port']}" for i in range(n)]
                   for role, n in self.roles.items()}
        for (role, i) in self.procs:
            cw.write_json_file(str(self.d / f"t-{role}-{i}.spec.json"),
                               {"epoch": epoch, "cluster": cluster, "task": {"type": role, "index": i}})
        return cluster

    def kill(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


@pytest.fixture
def operators(tmp_path: Path) -> Iterator[Callable[..., FakeOperator]]:
    made: list[FakeOperator] = []

    def make(*args: Any, **kwargs: Any) -> FakeOperator:
        made.append(FakeOperator(*args, **kwargs))
        return made[-1]

    yield make
    for op in made:
        op.kill()


@pytest.mark.timeout(240)
def test_role_processes_hold_their_ports_until_the_spec_then_run_main_with_tf_config(tmp_path: Path,
                                                                                       operators: Any) -> None:
    out = tmp_path / "out"
    out.mkdir()
    op = operators(tmp_path, {"worker": 2, "ps": 1}, f"{ENTRY}:report", out)
    addrs = wait_for(lambda: (a := op.addresses()) and len(a) == 3 and a, 120, "three address files")
    for (role, i), a in addrs.items():
        assert stat.S_IMODE(os.stat(tmp_path / f"t-{role}-{i}.addr.json").st_mode) == 0o600
        assert a["pid"] == op.procs[role, i].pid
        with pytest.raises(OSError), socket.socket() as other:  # held while the AM gathers the others
            other.bind(("0.0.0.0", a["port"]))
    time.sleep(0.5)
    assert not list(out.iterdir()), "run_main ran before the spec was there"
    cluster = op.hand_out_spec(epoch=7)
    for p in op.procs.values():
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-3000:]
    for (role, i) in op.procs:
        r = json.loads((out / f"report-{role}-{i}-0.json").read_text())
        assert r["cluster"] == cluster and r["tf_config"] == r["env_tf_config"]
        assert r["tf_config"] == {"cluster": cluster, "task": {"type": role, "index": i}}
        assert (r["job"], r["index"], r["epoch"], r["attempt"]) == (role, i, 7, 0)
        assert r["is_chief"] == ((role, i) == ("worker", 0))
        assert r["checkpoint_dir"] == str(tmp_path / "ckpt" / f"{role}-{i}")
        assert r["chief_checkpoint_dir"] == str(tmp_path / "ckpt" / "worker-0")
        assert r["target"].endswith(f":{r['port']}")  # TF's server got the reserved port
        assert r["legacy_keras"] == "1"  # tf_keras is installed: tf.keras is Keras 2 (model.fit under MWMS)


@pytest.mark.timeout(120)
def test_a_process_waiting_for_its_spec_ends_when_the_jvm_side_is_gone(tmp_path: Path, operators: Any) -> None:
    # A "JVM side" whose heartbeat says it runs, then dies without a word (SIGKILL).
    jvm = subprocess.Popen([sys.executable, "-P", "-c", (
        "import sys, time\nfrom flinktf_ipc import heartbeat as h\n"
        f"w = h.HeartbeatWriter({str(tmp_path / 'writer.hb')!r}, 'writer', 0.2); w.start()\n"
        "print('up', flush=True); time.sleep(600)")], stdout=subprocess.PIPE, text=True)
    assert jvm.stdout is not None and jvm.stdout.readline().strip() == "up"
    out = tmp_path / "out"
    out.mkdir()
    op = operators(tmp_path, {"worker": 1}, f"{ENTRY}:report", out, peer_heartbeat=str(tmp_path / "writer.hb"))
    wait_for(lambda: op.addresses(), 120, "the address file")
    jvm.send_signal(signal.SIGKILL)
    jvm.wait(timeout=10)
    p = op.procs["worker", 0]
    _, err = p.communicate(timeout=60)
    assert p.returncode == 3, err[-3000:]
    assert "PeerLost" in err and "is exited" in err, err[-3000:]  # the watchdog or the spec wait: whichever is first
    assert hbm.read_heartbeat(tmp_path / "t-worker-0.worker.hb").state is hbm.State.FAILED
    assert not list(out.iterdir())


@pytest.mark.timeout(120)
def test_an_entry_that_raises_at_import_fails_before_registering(tmp_path: Path, operators: Any) -> None:
    op = operators(tmp_path, {"worker": 1}, f"{TESTS / 'cluster_entry_broken.py'}:run_main", tmp_path)
    p = op.procs["worker", 0]
    _, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "fails at import" in err, err[-3000:]
    assert not op.addresses()


# ---- end to end: the embedded Flink mini-cluster ------------------------------------------------
# Each job takes 30-90 s here (three to five TF processes start); one job serves several
# assertions where that is honest (the failover job's final attempt is also the stream-mode run).

def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def _read(p: Path) -> Any:
    return json.loads(p.read_text())


@pytest.fixture(scope="module")
def flink_env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Makes configured environments; the log dir is set before the gateway JVM starts."""
    flink = pytest.importorskip("flinktf_ipc.flink")
    log_dir = tmp_path_factory.mktemp("flink-logs")
    flink.jar_path()

    def make(*, restart_attempts: int, checkpoint_ms: int | None = None, checkpoint_dir: Path | None = None) -> Any:
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

    return make


@pytest.fixture
def ring_dir() -> Iterator[Path]:
    import shutil
    import uuid
    d = Path(f"/dev/shm/fti-cluster-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def out_dir(tmp_path: Path) -> Iterator[Path]:
    """Where the entries write; role processes still alive at teardown are killed (SIGCONT first)."""
    out = tmp_path / "out"
    out.mkdir()
    yield out
    for p in out.glob("*.json"):
        try:
            pid = json.loads(p.read_text()).get("pid")
        except (ValueError, AttributeError):
            continue
        if isinstance(pid, int) and _alive(pid):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)


def _no_leftovers(out: Path, ring_dir: Path) -> None:
    for p in out.glob("*.json"):
        pid = _read(p).get("pid")
        if isinstance(pid, int):
            wait_for(lambda pid=pid: not _alive(pid), 30, f"role process {pid} ({p.name}) to be gone")
    left = sorted(os.listdir(ring_dir)) if ring_dir.exists() else []
    assert not left, f"files left in {ring_dir}: {left}"


def _execute_in_background(env: Any, name: str) -> tuple[Any, list[BaseException]]:
    import threading
    errors: list[BaseException] = []

    def run() -> None:
        try:
            env.execute(name)
        except BaseException as e:  # noqa: BLE001 - the test looks at it
            errors.append(e)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


@pytest.mark.flink
@pytest.mark.timeout(420)
def test_seed_example_batch_mode_ps_and_three_workers(flink_env: Any, ring_dir: Path, out_dir: Path) -> None:
    """The seed's train(3, 1, run_main): every role gets the same spec; the workers compute w+b,
    w*b, w/b on the ps-held variables; the ps is stopped when the workers are done; the job ends."""
    env = flink_env(restart_attempts=0)
    import cluster_entry
    # heartbeat_timeout: four processes loading TensorFlow at once on a loaded 2-core machine keep
    # the GIL (dlopen) longer than the 10 s default; base_dir: this test's own directory
    result = train(3, 1, cluster_entry.seed, properties={"out": str(out_dir)}, stream_env=env,
                   heartbeat_timeout=60, base_dir=ring_dir)
    assert result is None  # no output_row_type: nothing to return
    env.execute("seed example")
    specs = {(s["job"], s["index"]): s for s in map(_read, out_dir.glob("spec-*.json"))}
    assert set(specs) == {("worker", 0), ("worker", 1), ("worker", 2), ("ps", 0)}
    cluster = specs["worker", 0]["tf_config"]["cluster"]
    assert len(cluster["worker"]) == 3 and len(cluster["ps"]) == 1
    assert len(set(cluster["worker"] + cluster["ps"])) == 4
    for (job, index), s in specs.items():
        assert s["tf_config"] == {"cluster": cluster, "task": {"type": job, "index": index}} == s["env_tf_config"]
        assert s["is_chief"] == ((job, index) == ("worker", 0)) and s["epoch"] == 0
    for i in range(3):
        r = _read(out_dir / f"seed-{i}-0.json")
        assert r["add"] == [[7.0, 7.0], [7.0, 7.0]] and r["mul"] == [[10.0, 10.0], [10.0, 10.0]]
        assert sum(r["div"], []) == pytest.approx([0.4] * 4)
    ps_pid = specs["ps", 0]["pid"]
    wait_for(lambda: not _alive(ps_pid), 30, "the ps process (stopped by the AM) to be gone")
    _no_leftovers(out_dir, ring_dir)


MWMS_ENTRY = str(REPO / "examples" / "mwms_train.py")


def _mwms_job(env: Any, rows: int, ring_dir: Path, out: Path, tf_ckpt: Path, *, step_delay: float,
              heartbeat_timeout: float = 10.0) -> None:
    """examples/mwms_train.py's job, with this test's ring dir and properties."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("mwms_train", MWMS_ENTRY)
    assert spec is not None and spec.loader is not None
    example = sys.modules["mwms_train"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.build(env, rows, checkpoint_dir=str(tf_ckpt),
                  properties={"out": str(out), "step_delay": step_delay, "checkpoint_steps": 10},
                  base_dir=ring_dir, ring_capacity=1 << 16,  # a small ring: input still comes after the restart
                  heartbeat={"interval": 0.5, "timeout": heartbeat_timeout}, shutdown_grace=2)


def _causes(e: BaseException) -> str:
    """The Java chain's messages (a Py4JJavaError's text is the whole trace)."""
    return "\n".join(line for line in str(e).splitlines() if not line.lstrip().startswith("at "))[-6000:]


def _ids(out: Path) -> Any:
    import numpy as np
    parts = [np.fromfile(p, dtype="<i8") for p in sorted(out.glob("ids-*.bin"))]
    return np.concatenate(parts) if parts else np.zeros(0, dtype="<i8")


def _tf_checkpoint_step(tf_ckpt: Path) -> int:
    steps = [int(p.name[len("ckpt-"):-len(".index")]) for p in (tf_ckpt / "worker-0").glob("ckpt-*.index")]
    return max(steps, default=0)


def _failover(flink_env: Any, ring_dir: Path, out: Path, tmp_path: Path, sig: signal.Signals,
              heartbeat_timeout: float) -> None:
    """Two fed MWMS workers train one model; worker 1 gets ``sig`` mid-training, after a Flink
    checkpoint and a TF checkpoint of the chief: the whole cluster restarts (attempt 1, new spec),
    both workers resume from the chief's checkpoint, and the final attempt's model is one model."""
    import numpy as np
    rows = 12_000
    flink_ckpt, tf_ckpt = tmp_path / "flink-ckpt", tmp_path / "tf-ckpt"
    env = flink_env(restart_attempts=3, checkpoint_ms=400, checkpoint_dir=flink_ckpt)
    _mwms_job(env, rows, ring_dir, out, tf_ckpt, step_delay=0.1, heartbeat_timeout=heartbeat_timeout)
    thread, errors = _execute_in_background(env, f"mwms failover {sig.name}")
    wait_for(lambda: _tf_checkpoint_step(tf_ckpt) >= 20 and list(flink_ckpt.glob("*/chk-*/_metadata")), 300,
             "a TF checkpoint at step 20 and a completed Flink checkpoint")
    killed_attempt = max(int(p.stem.rsplit("-", 1)[1]) for p in out.glob("start-1-*.json"))
    victim = _read(out / f"start-1-{killed_attempt}.json")["pid"]
    os.kill(victim, sig)
    thread.join(timeout=400)
    assert not thread.is_alive(), "the job did not end"
    if sig == signal.SIGSTOP and _alive(victim):
        os.kill(victim, signal.SIGCONT)
    assert not errors, _causes(errors[0])
    final = max(int(p.stem.rsplit("-", 1)[1]) for p in out.glob("done-0-*.json"))
    assert final > killed_attempt  # the cluster restarted: both workers, as a new attempt
    assert not list(out.glob(f"done-*-{killed_attempt}.json"))
    before = {i: _read(out / f"start-{i}-{killed_attempt}.json") for i in range(2)}
    after = {i: _read(out / f"start-{i}-{final}.json") for i in range(2)}
    assert after[0]["epoch"] == after[1]["epoch"] > before[0]["epoch"]
    assert after[0]["tf_config"]["cluster"] == after[1]["tf_config"]["cluster"]  # one new spec
    assert after[0]["tf_config"]["cluster"] != before[0]["tf_config"]["cluster"]  # new ports
    restored = after[0]["restored_step"]
    assert restored >= 20 and after[1]["restored_step"] == restored  # both from the chief's checkpoint
    assert after[0]["restored_from"].startswith(str(tf_ckpt / "worker-0"))
    done = {i: _read(out / f"done-{i}-{final}.json") for i in range(2)}
    assert done[0]["weights"] == done[1]["weights"]  # one model: identical on both workers
    assert done[0]["steps"] == done[1]["steps"] > restored
    assert (Path(done[0]["model"]) / "saved_model.pb").exists() and done[1]["model"] is None
    seen = np.bincount(_ids(out), minlength=rows)
    assert len(seen) == rows and (seen > 0).all(), f"{int((seen == 0).sum())} ids lost"
    _no_leftovers(out, ring_dir)


@pytest.mark.flink
@pytest.mark.timeout(600)
def test_mwms_stream_mode_sigkill_one_worker_restarts_the_cluster_from_the_chiefs_checkpoint(
        flink_env: Any, ring_dir: Path, out_dir: Path, tmp_path: Path) -> None:
    # a killed process is seen at once (pid and start time): the heartbeat timeout plays no part
    _failover(flink_env, ring_dir, out_dir, tmp_path, signal.SIGKILL, heartbeat_timeout=60)


@pytest.mark.flink
@pytest.mark.timeout(600)
def test_mwms_stream_mode_sigstop_one_worker_is_seen_through_heartbeats(
        flink_env: Any, ring_dir: Path, out_dir: Path, tmp_path: Path) -> None:
    _failover(flink_env, ring_dir, out_dir, tmp_path, signal.SIGSTOP, heartbeat_timeout=15)


@pytest.mark.flink
@pytest.mark.timeout(300)
def test_input_ds_without_a_row_type_is_a_value_error(flink_env: Any) -> None:
    from pyflink.common import Types
    env = flink_env(restart_attempts=0)
    stream = env.from_collection([1, 2, 3], type_info=Types.LONG()).map(lambda v: (v, v))  # pickled, no row type
    with pytest.raises(ValueError, match="input_ds has no row type"):
        train(2, 0, module_level, stream_env=env, input_ds=stream)


@pytest.mark.flink
@pytest.mark.timeout(420)
def test_an_entry_that_raises_at_import_fails_the_job_with_its_message(flink_env: Any, ring_dir: Path) -> None:
    env = flink_env(restart_attempts=0)
    (TFClusterConfig.builder().name("broken").role("worker", 2)
     .entry(f"{TESTS / 'cluster_entry_broken.py'}:run_main").base_dir(ring_dir).build().add_to(env))
    with pytest.raises(Exception) as e:
        env.execute("entry raises at import")
    assert "fails at import" in str(e.value), str(e.value)[-3000:]  # the Java chain, with the process's stderr
    wait_for(lambda: not (ring_dir.exists() and os.listdir(ring_dir)), 30, "the cluster's files to be gone")


@pytest.mark.flink
@pytest.mark.timeout(420)
def test_a_port_taken_before_tf_binds_it_restarts_the_cluster_with_new_ports(
        flink_env: Any, ring_dir: Path, out_dir: Path) -> None:
    env = flink_env(restart_attempts=2)
    (TFClusterConfig.builder().name("ports").role("worker", 2).entry(f"{ENTRY}:hold_port")
     .properties({"out": str(out_dir)}).base_dir(ring_dir).build().add_to(env))
    env.execute("a port taken")
    held = {_read(p)["port"] for p in out_dir.glob("holder-*")}
    assert len(held) == 1  # attempt 0: worker 0 lost its port to another process before TF bound it: TF failed
    assert not (out_dir / "report-worker-0-0.json").exists()
    reports = [_read(out_dir / f"report-worker-{i}-1.json") for i in range(2)]
    assert reports[0]["cluster"] == reports[1]["cluster"] and reports[0]["epoch"] >= 1
    assert not held & {r["port"] for r in reports}  # the next round has new ports
    _no_leftovers(out_dir, ring_dir)
