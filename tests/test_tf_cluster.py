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
        r = json.loads((out / f"report-{role}-{i}-0").read_text())
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
