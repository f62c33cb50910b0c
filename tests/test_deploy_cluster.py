"""Jobs on a real standalone Flink cluster (the apache-flink wheel's own scripts, our conf), and
what makes that work: per-job ring directories, the stale-file sweep, entry checks.

The ``cluster`` tests share one cluster (1 JobManager + 2 TaskManagers, 2 slots each, small
memory, ports and ring directory of their own) and run in file order: the main job, a
TaskManager killed mid-run, two jobs with the same sink name at once, then stopping the cluster.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from flinktf_ipc import RingWriter, _binding, cleanup
from flinktf_ipc import heartbeat as hbm

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_JOB = Path(__file__).with_name("cluster_job.py")
CTR = ROOT / "examples" / "ctr.py"


# ---- helpers ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(cond: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.3)


def ids_by_attempt(out: Path) -> dict[tuple[int, int], np.ndarray]:
    got = {}
    for p in out.glob("ids-*.bin"):
        index, attempt = map(int, p.stem.split("-")[1:])
        got[(index, attempt)] = np.fromfile(p, dtype=np.uint64).astype(np.int64)
    return got


def assert_zero_lost(out: Path, n: int) -> dict[tuple[int, int], np.ndarray]:
    got = ids_by_attempt(out)
    assert got, f"no worker output in {out}"
    seen = np.bincount(np.concatenate(list(got.values())), minlength=n)
    assert len(seen) == n, "ids beyond the source"
    assert (seen > 0).all(), f"{int((seen == 0).sum())} ids lost, first {np.flatnonzero(seen == 0)[:10]}"
    return got


def consumed(out: Path) -> int:
    return sum(p.stat().st_size // 8 for p in out.glob("ids-*-0.bin"))


def ring_dir_files(d: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, ds, fs in os.walk(d) for f in fs + ds)


def client_output(p: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        raise AssertionError(f"flink run did not finish within {timeout:.0f} s:\n{out[-4000:]}") from None
    return out


# ---- the shared cluster ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from flinktf_ipc.local_cluster import LocalCluster

    home = tmp_path_factory.mktemp("cluster")
    ring_dir = f"/dev/shm/flinktf-test-cluster-{os.getpid()}"
    os.makedirs(ring_dir, mode=0o700, exist_ok=True)
    c = LocalCluster(home, rest_port=free_port(), rpc_port=free_port(), slots=2, ring_dir=ring_dir)
    try:
        c.start(taskmanagers=2, timeout=240)
        yield c
    finally:
        c.stop()
        shutil.rmtree(ring_dir, ignore_errors=True)


@pytest.mark.cluster
@pytest.mark.timeout(600)
def test_cluster_runs_the_main_job(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    st = cluster.status()
    assert len(st["taskmanagers"]) == 2 and st["overview"]["slots-total"] == 4, st
    work = tmp_path / "ctr"
    p = cluster.submit(CTR, ["--rows", "200000", "--parallelism", "2", "--workdir", str(work)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = client_output(p, 540)
    assert p.returncode == 0, out[-4000:]
    assert "demo succeeded" in out, out[-4000:]
    assert len(glob.glob(str(work / "checkpoints" / "*" / "model.keras"))) == 2, out[-2000:]
    # The workers logged where the job said (the demo's own logs/ folder), on the TaskManager host.
    assert glob.glob(str(work / "logs" / "flinktf-ctr*.worker.err")), out[-2000:]
    assert ring_dir_files(cluster.ring_dir) == [], "the job's directory is gone with the job"


@pytest.mark.cluster
@pytest.mark.timeout(600)
def test_killed_taskmanager_is_replaced_and_the_job_loses_nothing(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    n = 120_000
    out = tmp_path / "out"
    p = cluster.submit(CLUSTER_JOB, ["--name", "killtm", "--rows", str(n), "--out", str(out), "--delay", "0.02",
                                     "--checkpoint-ms", "1000"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: consumed(out) >= 20_000 and len(list(out.glob("pid-*-0"))) == 2, 240,
                 "both workers to consume 20000 ids")
        time.sleep(2.5)  # a checkpoint completes past what was consumed
        worker = int((out / "pid-0-0").read_text())
        with open(f"/proc/{worker}/stat") as f:
            tm = int(f.read().rsplit(")", 1)[1].split()[1])  # the worker's parent: its TaskManager
        assert tm in cluster.taskmanager_pids(), (tm, cluster.taskmanager_pids())
        job_dir = Path(cluster.ring_dir) / f"job-{(out / 'job_id').read_text()}"
        assert list(job_dir.glob("killtm-*.ring")), "the rings are in the job's directory"
        cluster.kill_taskmanager(tm)
        wait_for(lambda: not alive(tm), 30, "the TaskManager to die")
        wait_for(lambda: not alive(worker), 60, "its worker to exit on its own (writer lost)")
        cluster.add_taskmanager(timeout=240)
        text = client_output(p, 480)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, text[-4000:]
    got = assert_zero_lost(out, n)
    assert any(attempt > 0 for _, attempt in got), f"a later attempt took over: {sorted(got)}"
    # Nothing stale: the killed TaskManager's ring, heartbeats and context files were swept.
    wait_for(lambda: ring_dir_files(cluster.ring_dir) == [], 30, f"{cluster.ring_dir} to be empty")
    logs = "".join(Path(f).read_text(errors="replace") for f in glob.glob(str(cluster.log_dir / "*taskexecutor*.log")))
    assert "removed stale ring files whose processes are gone" in logs


@pytest.mark.cluster
@pytest.mark.timeout(600)
def test_two_jobs_with_the_same_sink_name_run_at_once(cluster, tmp_path) -> None:  # type: ignore[no-untyped-def]
    n = 30_000
    outs = [tmp_path / "a", tmp_path / "b"]
    procs = [cluster.submit(CLUSTER_JOB, ["--name", "same", "--rows", str(n), "--out", str(o), "--delay", "0.01"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for o in outs]
    texts = [client_output(p, 540) for p in procs]
    for p, t in zip(procs, texts, strict=True):
        assert p.returncode == 0, t[-4000:]
    rings = []
    for o in outs:
        assert_zero_lost(o, n)
        for c in o.glob("context-*.json"):
            rings += json.loads(c.read_text())["rings"]
    job_ids = [(o / "job_id").read_text() for o in outs]
    assert job_ids[0] != job_ids[1]
    assert len(rings) == len(set(rings)) == 4, rings
    for jid in job_ids:
        assert sum(f"/job-{jid}/same-" in r for r in rings) == 2, rings
    assert ring_dir_files(cluster.ring_dir) == []


@pytest.mark.cluster
@pytest.mark.timeout(600)
@pytest.mark.parametrize("example, args", [("seed_ps.py", []), ("mwms_train.py", ["--rows", "4000"])])
def test_tf_cluster_examples_run_on_the_standalone_cluster(cluster, tmp_path, example, args) -> None:  # type: ignore[no-untyped-def]
    """Issue 9's TF cluster inside the job: the seed's ps + 3 workers, and two MWMS workers training
    one model, submitted with `flink run -py` like the main job."""
    script = ROOT / "examples" / example
    if not script.exists():
        pytest.skip(f"examples/{example} (issue 9) is not in this tree")
    if example == "mwms_train.py":
        args = [*args, "--workdir", str(tmp_path)]
    p = cluster.submit(script, args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = client_output(p, 540)
    assert p.returncode == 0, out[-4000:]
    if example == "mwms_train.py":
        assert "identical weights: True" in out, out[-3000:]
    wait_for(lambda: ring_dir_files(cluster.ring_dir) == [], 30, f"{cluster.ring_dir} to be empty")


@pytest.mark.cluster
@pytest.mark.timeout(300)
def test_stopping_the_cluster_leaves_no_process_and_no_file(cluster) -> None:  # type: ignore[no-untyped-def]
    pids = cluster.pids()
    assert pids
    workers = [int(x) for x in subprocess.run(["pgrep", "-f", "flinktf_ipc.worker"], capture_output=True,
                                              text=True).stdout.split()]
    ours = [w for w in workers if _ancestor_in(w, pids)]
    cluster.stop()
    for pid in pids + ours:
        wait_for(lambda pid=pid: not alive(pid), 60, f"process {pid} to exit")
    assert cluster.pids() == []
    assert cluster.overview() is None
    left = subprocess.run(["pgrep", "-f", str(cluster.conf_dir)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes still run with our conf: {left}"
    assert ring_dir_files(cluster.ring_dir) == []
    assert not list(cluster.pid_dir.glob("*.pid"))


def _ancestor_in(pid: int, ancestors: list[int]) -> bool:
    for _ in range(10):
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
        if pid in ancestors:
            return True
    return False


# ---- entries that resolve everywhere (embedded mini-cluster, in a process of its own) -------------

ENTRY_JOB = Path(__file__).with_name("entry_job.py")

PROJECT_TRAIN = '''
import os

def main(context):
    n = 0
    with context.reader(timeout=60) as r:
        for batch in r.iter_batches(1024, timeout=60):
            n += len(batch)
    with open(os.path.join(context.properties["out"], "done"), "w") as f:
        f.write(str(n))
'''


def run_entry_job(tmp_path: Path, entry: str, *extra: str, script: Path = ENTRY_JOB,
                  timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The job runs in a child process: its own PyFlink gateway and log dir (this pytest process's
    gateway, if any, keeps the log dir its first user gave it)."""
    for d in ("rings", "logs", "out"):
        (tmp_path / d).mkdir(mode=0o700, exist_ok=True)
    cmd = [sys.executable, str(script), "--entry", entry, "--ring-dir", str(tmp_path / "rings"),
           "--log-dir", str(tmp_path / "logs"), "--out", str(tmp_path / "out"), *extra]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.flink
@pytest.mark.timeout(300)
def test_readme_module_entry_runs_from_the_project_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """README: worker_entry="my_project.train:main", with the job's script beside my_project/ (the
    client imports it from there; the worker, run with -P elsewhere, gets that directory)."""
    project = tmp_path / "proj"
    (project / "my_project").mkdir(parents=True)
    (project / "my_project" / "__init__.py").write_text("")
    (project / "my_project" / "train.py").write_text(PROJECT_TRAIN)
    script = project / "job.py"
    shutil.copy(ENTRY_JOB, script)  # `python job.py`: its directory is on the client's path
    r = run_entry_job(tmp_path, "my_project.train:main", script=script)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert (tmp_path / "out" / "done").read_text() == "5000"
    assert ring_dir_files(str(tmp_path / "rings")) == []


@pytest.mark.flink
@pytest.mark.timeout(300)
def test_entry_that_does_not_resolve_is_refused_when_the_job_is_built(tmp_path) -> None:  # type: ignore[no-untyped-def]
    r = run_entry_job(tmp_path, "no_such_project.train:main")
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: worker entry 'no_such_project.train:main' cannot be loaded by"), last
    assert sys.executable in last and "pip install -e" in last, last
    r = run_entry_job(tmp_path, "/nowhere/train.py:main")
    assert "no such file /nowhere/train.py" in r.stderr.strip().splitlines()[-1], r.stderr[-2000:]
    assert not list((tmp_path / "rings").iterdir()), "refused before any job ran"


@pytest.mark.flink
@pytest.mark.timeout(300)
def test_entry_missing_on_the_taskmanager_fails_the_job_at_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The entry resolves on the client but not where the worker runs (here: handed to the Java
    builder behind the client check's back): the worker says so in one line and the job fails
    without restarts, though 3 were allowed."""
    r = run_entry_job(tmp_path, "gone_from_this_host.train:main", "--unchecked", "--rows", str(10**9),
                      "--restart-attempts", "3")
    text = r.stdout + r.stderr
    assert r.returncode == 1, text[-3000:]
    assert "exited with status 4: its entry cannot be loaded" in text, text[-3000:]
    assert "worker entry 'gone_from_this_host.train:main' cannot be loaded by" in text, text[-3000:]
    assert "SuppressRestartsException" in text, text[-3000:]
    logs = tmp_path / "logs"
    errs = sorted(p.name for p in logs.glob("*.err"))
    assert errs == ["flinktf-entry-0.worker.err"], f"one attempt only, no restart: {errs}"
    # The worker's own words: one line (the supervisor may add its own lines after it).
    err = (logs / errs[0]).read_text()
    lines = [ln for ln in err.splitlines() if ln.startswith("flinktf_ipc.worker:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "fix:" in lines[0] and sys.executable in lines[0], lines[0]
    assert ring_dir_files(str(tmp_path / "rings")) == []


# ---- stale files: the JVM sweep and `flinktf-ipc clean` follow one rule ---------------------------

def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _heartbeat(path: Path, role: str, pid: int, start: int) -> None:
    path.write_text(hbm.encode(hbm.Heartbeat(role=role, pid=pid, start_time=start, wall_ns=0, mono_ns=0, seq=1,
                                             state=hbm.State.RUNNING)))


def _make_dir_with_leftovers(d: Path) -> None:
    """A mix: a ring of a killed writer with its heartbeat and context files, a live ring, a live
    heartbeat without a ring, a lone old context file, a fresh unreadable file, an empty job dir."""
    d.mkdir(mode=0o700)
    job = d / "job-0123abcd"
    job.mkdir(mode=0o700)
    code = ("import sys,os,signal; from flinktf_ipc import RingWriter; w = RingWriter.create(sys.argv[1], "
            "capacity=1<<16); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-P", "-c", code, str(job / "dead-0.ring")], check=False)
    dead = _dead_pid()
    for role in ("writer", "worker"):
        _heartbeat(job / f"dead-0.{role}.hb", role, dead, 1)
    (job / "dead-0.worker.json").write_text("{}")
    (job / "dead-0.worker.hb.tmp-1-2").write_text("x")
    _heartbeat(d / "alive-0.worker.hb", "worker", os.getpid(), _binding.process_start_time(os.getpid()))
    (d / "alive-0.worker.json").write_text("{}")
    lone = d / "lone-0.worker.json"
    lone.write_text("{}")
    old = time.time() - 3600
    os.utime(lone, (old, old))
    (d / "young-0.ring").write_bytes(b"\0" * 100)  # a ring being created: no header yet
    empty = d / "job-empty"
    empty.mkdir(mode=0o700)
    os.utime(empty, (old, old))


def test_clean_and_the_jvm_sweep_remove_the_same_files(tmp_path) -> None:
    from flinktf_ipc import flink

    a, b = tmp_path / "py", tmp_path / "java"
    _make_dir_with_leftovers(a)
    _make_dir_with_leftovers(b)
    stale, dirs = cleanup.clean(str(a))
    assert {os.path.basename(f) for g in stale for f in g.files} == {
        "dead-0.ring", "dead-0.writer.hb", "dead-0.worker.hb", "dead-0.worker.json", "dead-0.worker.hb.tmp-1-2",
        "lone-0.worker.json"}
    assert {os.path.basename(d) for d in dirs} == {"job-0123abcd", "job-empty"}
    # The JVM's rule (io.flinktf.ipc.internal.StaleFiles), run in a JVM on the other copy.
    classpath = os.pathsep.join([flink.jar_path(), *glob.glob(os.path.join(
        os.path.dirname(__import__("pyflink").__file__), "lib", "flink-dist-*.jar"))])
    src = tmp_path / "Sweep.java"
    src.write_text("""
        import io.flinktf.ipc.internal.StaleFiles;
        import java.nio.file.Paths;
        public class Sweep { public static void main(String[] a) {
            for (StaleFiles.Removed r : StaleFiles.sweep(Paths.get(a[0]), Paths.get(a[0]))) System.out.println(r);
        } }""")
    java = shutil.which("java")
    if java is None:
        pytest.skip("no java")
    r = subprocess.run([java, "-cp", classpath, str(src), str(b)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert ring_dir_files(str(a)) == ring_dir_files(str(b)), r.stdout
    assert ring_dir_files(str(a)) == ["alive-0.worker.hb", "alive-0.worker.json", "young-0.ring"]


def test_clean_command_and_stat_by_job(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from flinktf_ipc.cli import main

    d = tmp_path / "rings"
    _make_dir_with_leftovers(d)
    live_job = d / "job-feed"
    live_job.mkdir(mode=0o700)
    with RingWriter.create(str(live_job / "feat-0.ring"), capacity=1 << 16):
        assert main(["stat", str(d)]) == 0
        out = capsys.readouterr().out
        assert f"job feed  ({live_job})" in out and "feat-0.ring" in out, out
        assert f"job 0123abcd  ({d / 'job-0123abcd'})" in out, out
        assert main(["clean", "--dry-run", str(d)]) == 0
        out = capsys.readouterr().out
        assert "would remove job-0123abcd/dead-0.ring" in out and (d / "job-0123abcd" / "dead-0.ring").exists()
        assert main(["clean", str(d)]) == 0
        out = capsys.readouterr().out
        assert "removed job-0123abcd/dead-0.ring" in out, out
        assert "feat-0.ring" not in out  # a live writer's ring is kept
        assert (live_job / "feat-0.ring").exists()
    assert not (d / "job-0123abcd").exists()


def test_cluster_conf_stays_out_of_site_packages(tmp_path) -> None:
    from flinktf_ipc.local_cluster import LocalCluster, flink_home

    c = LocalCluster(tmp_path / "c", rest_port=1, rpc_port=2, ring_dir="/dev/shm/x")
    c.write_conf()
    conf = (c.conf_dir / "config.yaml").read_text()
    assert "rest.port: 1\n" in conf and "jobmanager.rpc.port: 2\n" in conf and "env.java.opts.all: --add" in conf
    assert f"python.executable: {sys.executable}" in conf
    env = c.env()
    assert env["FLINK_CONF_DIR"] == str(c.conf_dir) and env["FLINK_LOG_DIR"] == str(c.log_dir)
    assert env["FLINKTF_IPC_DIR"] == "/dev/shm/x"
    assert not str(c.home).startswith(str(flink_home()))
    cmd = c.submit_command(CTR, ["--rows", "1"])
    assert cmd[-4:] == ["-py", str(CTR), "--rows", "1"] and "-pyexec" in cmd



@pytest.mark.parametrize("entry, why", [
    ("no_such_module_anywhere:main", "no module named 'no_such_module_anywhere'"),
    ("/nowhere/train.py:main", "no such file /nowhere/train.py"),
    ("json:no_such_function", "module json has no function no_such_function"),
])
def test_worker_that_cannot_find_its_entry_exits_4_with_one_line(tmp_path, entry, why) -> None:  # type: ignore[no-untyped-def]
    ctx = tmp_path / "ctx.json"
    ctx.write_text(json.dumps({"version": 1, "entry": entry, "rings": [str(tmp_path / "r.ring")]}))
    r = subprocess.run([sys.executable, "-P", "-m", "flinktf_ipc.worker"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120, env=dict(os.environ, FLINKTF_WORKER_CONTEXT=str(ctx)))
    assert r.returncode == 4, r.stderr
    assert why in r.stderr and f"'{entry}'" in r.stderr, r.stderr
    if "no_such_function" not in entry:  # found before anything runs: one line, no traceback
        assert r.stderr.count("\n") == 1 and sys.executable in r.stderr and "fix:" in r.stderr, r.stderr


def test_module_entry_found_in_a_project_directory_is_passed_to_the_worker(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from flinktf_ipc import entry

    (tmp_path / "resolve_project").mkdir()
    (tmp_path / "resolve_project" / "__init__.py").write_text("")
    (tmp_path / "resolve_project" / "train.py").write_text("def main(context): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert entry.resolve("resolve_project.train:main") == ("resolve_project.train:main", [str(tmp_path)])
    assert entry.resolve("json:loads") == ("json:loads", [])  # the stdlib: nothing to pass
    assert entry.resolve("flinktf_ipc.worker:main") == ("flinktf_ipc.worker:main", [])  # installed
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.py").write_text("def main(context): pass\n")
    assert entry.resolve("t.py:main") == (f"{tmp_path}/t.py:main", [])
