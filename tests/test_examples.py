"""The examples, run as a newcomer runs them: the main job (Flink features -> rings -> Keras
workers started by the job) and the digits example on real data; bad options; Ctrl-C/SIGTERM."""

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, tmp_path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-P", str(ROOT / "examples" / f"{name}.py"), *args],
                          capture_output=True, text=True, timeout=400, cwd=tmp_path, env=env)


@pytest.mark.flink
@pytest.mark.timeout(420)
def test_click_through_job_trains_one_model_per_worker_over_two_epochs(tmp_path):
    p = run_example("ctr", "--workdir", str(tmp_path), "--rows", "300000", "--parallelism", "2", "--epochs", "2",
                    tmp_path=tmp_path)
    out = p.stdout
    assert p.returncode == 0, out[-3000:] + p.stderr[-5000:]
    assert "job FINISHED" in out and "300,000 rows reached the workers" in out and "demo succeeded" in out
    assert "600,000 rows trained over 2 epoch(s)" in out, out[-2000:]
    assert f"logs in   {tmp_path / 'logs'}" in out
    for i in range(2):
        d = tmp_path / "checkpoints" / str(i)
        assert (d / "model.keras").is_file()
        assert list(d.glob("ckpt/ckpt-*.index")), "checkpointed as it went"
        assert (d / "curves.png").stat().st_size > 1000, "the training curves are drawn"
        assert list(d.glob("tensorboard/events.out.tfevents.*")), "TensorBoard logs beside the model"
    logs = sorted(os.listdir(tmp_path / "logs"))
    assert any(f.endswith(".worker.err") for f in logs) and "flink" in logs, logs
    assert not (tmp_path / "flink-tmp").exists(), "the mini-cluster's temp folder is removed"


@pytest.mark.flink
@pytest.mark.timeout(420)
def test_digits_from_flink_reach_a_stated_accuracy(tmp_path):
    p = run_example("digits", "--workdir", str(tmp_path), "--epochs", "30", tmp_path=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    accuracy = float(p.stdout.split("accuracy ")[1].split("%")[0])
    assert accuracy > 90.0, p.stdout


@pytest.mark.flink
@pytest.mark.timeout(420)
def test_pytorch_trains_on_the_same_jobs_arrow_rings(tmp_path):
    """examples/torch_train.py: the main job's features, read with ArrowRingReader as zero-copy
    torch tensors, one PyTorch model per worker (torch is an optional extra: skipped without it)."""
    pytest.importorskip("torch")
    p = run_example("torch_train", "--workdir", str(tmp_path), "--rows", "200000", "--parallelism", "2",
                    "--epochs", "2", tmp_path=tmp_path)
    out = p.stdout
    assert p.returncode == 0, out[-3000:] + p.stderr[-5000:]
    assert "200,000 rows reached the workers" in out and "400,000 rows trained over 2 epoch(s)" in out, out[-2000:]
    assert "demo succeeded" in out, out[-2000:]
    for i in range(2):
        d = tmp_path / "checkpoints" / str(i)
        assert (d / "model.pt").stat().st_size > 1000 and (d / "curves.png").stat().st_size > 1000
    for err in (tmp_path / "logs").glob("*.worker.err"):
        assert "Warning" not in err.read_text(), err.read_text()[-2000:]  # e.g. a non-writable NumPy view


def test_make_leaves_the_torch_extra_out():
    """`make` installs every extra of pyproject.toml but those in skip-extras (torch: GBs from PyPI)."""
    out = subprocess.run([sys.executable, "scripts/requirements.py"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert not [r for r in out if r.startswith("torch")], out
    assert "tensorflow-cpu==2.20.0" in out and "apache-flink==2.3.0" in out and "polars>=1" in out


@pytest.mark.parametrize("args, says", [
    (["--rows", "-5"], "--rows must be at least 1000 per worker"),
    (["--rows", "0"], "--rows must be at least 1000 per worker"),
    (["--rate", "0"], "--rate must be at least 1"),
    (["--rate", "-3"], "--rate must be at least 1"),
    (["--parallelism", "0"], "--parallelism must be between 1 and"),
    (["--epochs", "0"], "--epochs must be between 1 and 100"),
    (["--workdir", "/proc/nope"], "is not a writable directory"),
])
def test_ctr_options_are_checked_before_anything_starts(tmp_path, args, says):
    start = time.monotonic()
    p = run_example("ctr", *args, tmp_path=tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], p.stderr  # one clear line, no trace
    assert "Traceback" not in p.stderr and "flinktf-ipc demo" not in p.stdout
    del start


@pytest.mark.parametrize("args, says", [(["--epochs", "-1"], "--epochs must be between 1"),
                                        (["--seed", "x"], "invalid int value")])
def test_digits_options_are_checked_before_anything_starts(tmp_path, args, says):
    p = run_example("digits", *args, tmp_path=tmp_path)
    assert p.returncode == 2 and says in p.stderr, p.stdout + p.stderr
    assert "Traceback" not in p.stderr


def _children(pid: int) -> set[int]:
    """Every descendant of pid (from /proc)."""
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in glob.glob(f"/proc/{p}/task/*/children"):
            try:
                kids = [int(x) for x in open(task).read().split()]
            except OSError:
                continue
            for k in kids:
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.flink
@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig, via", [(signal.SIGINT, "script"), (signal.SIGTERM, "script"),
                                      (signal.SIGTERM, "flinktf-ipc demo")])
def test_ctr_cancelled_by_a_signal_leaves_no_process_and_no_file(tmp_path, sig, via):
    ring_dir = tmp_path / "rings"
    ring_dir.mkdir(mode=0o700)
    work = tmp_path / "work"
    env = dict(os.environ, FLINKTF_IPC_DIR=str(ring_dir))
    args = ["--workdir", str(work), "--rows", "10000000", "--rate", "2000", "--parallelism", "1"]
    if via == "script":
        cmd, cwd = [sys.executable, "-P", str(ROOT / "examples" / "ctr.py"), *args], tmp_path
    else:  # the wrapper forwards the signal to the example it runs (from the checkout)
        cmd, cwd = [str(Path(sys.executable).parent / "flinktf-ipc"), "demo", *args], ROOT
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    procs: set[int] = set()
    try:
        deadline = time.monotonic() + 180
        # Wait until the worker is up (its heartbeat file, in the job's directory) and has said where it
        # is in its metrics.
        while not (list(ring_dir.rglob("*.worker.hb")) and list(work.glob("checkpoints/*/metrics.json"))):
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the job did not start its worker"
            time.sleep(0.5)
        procs = _children(p.pid)
        assert len(procs) >= 2, "the gateway JVM and the worker run"
        # the JVM's own temp files (its RPC jar) are in the run's folder, which goes (not in /tmp)
        assert list((work / "flink-tmp").rglob("flink-rpc*.jar")), list((work / "flink-tmp").rglob("*"))
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, out[-2000:] + err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert "cancelled; logs in" in err
    deadline = time.monotonic() + 30
    while any(_alive(c) for c in procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [c for c in procs if _alive(c)], "no process of the job is left"
    assert not os.listdir(ring_dir), os.listdir(ring_dir)
    assert not (work / "flink-tmp").exists()


def test_the_progress_line_names_each_workers_phase(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("ctr_example", ROOT / "examples" / "ctr.py")
    ctr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ctr)
    progress = ctr.Progress("none", 2, str(tmp_path), str(tmp_path), str(tmp_path))
    assert progress.phase([], job_running=True) == "starting Flink"
    train = {"phase": "streaming + training", "epoch": 1, "epochs": 2}
    assert progress.phase([train, {"phase": "importing PyTorch"}], True) == \
        "streaming + training | workers importing PyTorch"  # not "importing" while rows stream
    assert progress.phase([train, train], True) == "streaming + training (epoch 1/2, 1/2)"
    assert progress.phase([train | {"phase": "saving"}] * 2, True) == "saving models"
    assert progress.phase([{"phase": "done"}] * 2, False) == "done"


@pytest.mark.flink
@pytest.mark.timeout(300)
def test_digits_cancelled_by_ctrl_c_leaves_no_process_and_no_file(tmp_path):
    ring_dir = tmp_path / "rings"
    ring_dir.mkdir(mode=0o700)
    work = tmp_path / "work"
    env = dict(os.environ, FLINKTF_IPC_DIR=str(ring_dir))
    p = subprocess.Popen([sys.executable, "-P", str(ROOT / "examples" / "digits.py"), "--workdir", str(work),
                          "--epochs", "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=tmp_path, env=env)
    procs: set[int] = set()
    try:
        deadline = time.monotonic() + 200
        phase = work / "model" / "0" / "phase"
        while not (phase.exists() and phase.read_text().startswith("training")):  # the worker is at work
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, "the worker did not start training"
            time.sleep(0.5)
        procs = _children(p.pid)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, out[-2000:] + err[-3000:]
    assert "Traceback" not in err and "cancelled; logs in" in err, err[-3000:]
    deadline = time.monotonic() + 30
    while any(_alive(c) for c in procs) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [c for c in procs if _alive(c)], "no process of the job is left"
    assert not os.listdir(ring_dir), list(ring_dir.rglob("*"))
    assert not (work / "flink-tmp").exists()
