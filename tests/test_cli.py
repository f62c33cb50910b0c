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
        assert "in 10 records 1KB" in text and "out 4 records 400B" in text
        assert "worker alive (beat" in text
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


def test_stat_lists_context_files_as_contexts_not_as_broken_rings(tmp_path):
    import json
    d = tmp_path / "rings"
    d.mkdir(mode=0o700)
    (d / "job-0.worker.json").write_text(json.dumps({"version": 1, "entry": "pkg.train:main", "rings": [],
                                                     "role": "worker", "index": 0, "attempt": 2}))
    HeartbeatWriter(d / "job-0.writer.hb", "writer").beat()
    out = run("stat", str(d))
    assert out.returncode == 0, out.stderr
    assert "not a readable ring" not in out.stdout, out.stdout
    assert "job-0.worker.json: context of worker 0 (attempt 2, entry pkg.train:main)" in out.stdout, out.stdout


def test_stat_says_records_and_seconds(tmp_path):
    d = tmp_path / "rings"
    d.mkdir(mode=0o700)
    path = str(d / "u-0.ring")
    with RingWriter.create(path, capacity=1 << 16) as w:
        w.write(b"x" * 10)
        text = run("stat", str(d)).stdout
    assert " rec " not in text and "in 1 records" in text, text
    assert "writer blocked (ring full) 0.00 s" in text, text


@pytest.mark.parametrize("interval", ["0", "-1", "nan"])
def test_stat_interval_is_checked(tmp_path, interval):
    out = run("stat", str(tmp_path), "--watch", "--interval", interval)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "--interval must be" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("cmd", ["stat", "clean"])
def test_looking_at_a_ring_directory_never_creates_it(tmp_path, cmd):
    missing = tmp_path / "rings"
    out = run(cmd, env={**os.environ, "FLINKTF_IPC_DIR": str(missing)})
    assert out.returncode == 1 and "no such directory" in out.stderr, out.stdout + out.stderr
    assert not missing.exists()


def test_help_texts_are_plain_and_give_examples():
    main = run("--help").stdout
    stat = run("stat", "--help").stdout
    for text in (main, stat):
        assert "examples:" in text and "``" not in text, text
    assert "flinktf-ipc stat --watch" in stat and "units:" in stat


@pytest.mark.timeout(120)
def test_demo_help_names_the_command_and_the_examples(tmp_path):
    root = Path(__file__).resolve().parents[1]
    p = subprocess.run([CLI, "demo", "--help"], capture_output=True, text=True, timeout=120, cwd=root)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("usage: flinktf-ipc demo") and "--example digits" in p.stdout, p.stdout
    assert "--epochs" in p.stdout and "ctr.py" not in p.stdout.splitlines()[0]
    ring = subprocess.run([CLI, "demo", "--example", "ring", "--help"], capture_output=True, text=True, timeout=60)
    assert ring.stdout.startswith("usage: flinktf-ipc demo --example ring") and "--size" in ring.stdout


@pytest.mark.parametrize("args, says", [(["--size", "7"], "--size must be a multiple of 8"),
                                        (["--records", "0"], "--records must be at least 1")])
def test_ring_demo_checks_its_options(args, says):
    p = run("demo", "--example", "ring", *args)
    assert p.returncode == 2 and says in p.stderr and "Traceback" not in p.stderr, p.stdout + p.stderr


@pytest.mark.timeout(120)
def test_ring_demo_runs_and_leaves_no_ring(tmp_path):
    d = tmp_path / "rings"
    d.mkdir(mode=0o700)
    p = run("demo", "--example", "ring", "--records", "20000", "--size", "64",
            env=dict(os.environ, FLINKTF_IPC_DIR=str(d)))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "read 20,000 records of 64 B in order" in p.stdout
    assert " s: average " in p.stdout, p.stdout  # the summary gives the average, the live line the last seconds
    assert not os.listdir(d)


def test_importing_the_source_tree_says_why_it_fails():
    """Python started in the checkout finds the source tree first, which has no compiled
    extension: the error says so and how to get the installed package instead."""
    root = Path(__file__).resolve().parent.parent
    p = subprocess.run([sys.executable, "-c", "import flinktf_ipc"], cwd=root, capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0
    assert "shadows the installed package" in p.stderr and "-P" in p.stderr, p.stderr


def test_the_bare_command_prints_the_help_not_an_error_about_cmd():
    p = run()
    assert p.returncode == 2
    assert "stat" in p.stdout and "examples:" in p.stdout and "cmd" not in p.stdout + p.stderr, p.stdout + p.stderr


def test_every_subcommand_explains_itself():
    for cmd in ("stat", "clean", "cluster", "doctor"):
        p = run(cmd, "--help")
        assert p.returncode == 0, p.stderr
        body = p.stdout.split("\n\n", 1)[1]  # below the usage: a description in plain words
        assert not body.startswith(("positional", "options")), (cmd, p.stdout)
        assert "``" not in p.stdout, p.stdout
        assert max(map(len, p.stdout.splitlines())) <= 110, (cmd, p.stdout)  # wrapped, no run-on line
    assert "start it" in run("cluster", "--help").stdout and "examples:" in run("clean", "--help").stdout


@pytest.mark.parametrize("args, says", [
    (["--slots", "0"], "--slots must be between 1 and 64, got 0"),
    (["--taskmanagers", "-1"], "--taskmanagers must be between 0 and 16"),
    (["--rest-port", "70000"], "--rest-port must be a port number"),
    (["--rest-port", "7000", "--rpc-port", "7000"], "--rest-port and --rpc-port must differ"),
])
def test_cluster_start_checks_its_options_before_anything_starts(tmp_path, args, says):
    p = run("cluster", "start", "--home", str(tmp_path / "home"), *args)
    assert p.returncode == 2, p.stdout + p.stderr
    assert says in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert not (tmp_path / "home").exists(), "nothing was started or written"


def test_demo_help_names_every_example_and_the_cluster_option(tmp_path):
    root = Path(__file__).resolve().parents[1]
    p = subprocess.run([CLI, "demo", "--help"], capture_output=True, text=True, timeout=120, cwd=root)
    for word in ("--example digits", "--example torch", "--example ring", "--cluster"):
        assert word in p.stdout, (word, p.stdout)
    torch_help = subprocess.run([CLI, "demo", "--example", "torch", "--help"], capture_output=True, text=True,
                                timeout=120, cwd=root)
    assert torch_help.returncode == 0 and "PyTorch" in torch_help.stdout, torch_help.stdout + torch_help.stderr
    assert torch_help.stdout.startswith("usage: flinktf-ipc demo --example torch"), torch_help.stdout
    for example in ("ctr", "digits", "torch", "ring"):  # plain words: no reStructuredText markup
        text = subprocess.run([CLI, "demo", "--example", example, "--help"], capture_output=True, text=True,
                              timeout=120, cwd=root).stdout
        assert "usage:" in text and "``" not in text, text


def test_window_rate_is_over_the_last_seconds_not_since_the_start():
    from flinktf_ipc.demo import WindowRate

    w = WindowRate(window=5.0)
    for t in range(11):  # 100 per second for 10 s
        (rate,) = w.add(float(t), 100.0 * t)
    assert rate == pytest.approx(100.0)
    for t in range(11, 17):  # then nothing: the average since the start would still say ~60
        (rate,) = w.add(float(t), 1000.0)
    assert rate == 0.0
    a, b = WindowRate(5.0).add(0.0, 1, 2)
    assert (a, b) == (0.0, 0.0)  # one sample: no rate yet
    w = WindowRate(5.0)
    w.add(0.0, 900_000)
    assert w.add(5.0, 0) == (0.0,)  # a restarted worker's counter begins at 0 again: no negative rate
    assert w.add(6.0, 50_000) == (50_000.0,)


def _ring_demo(d: Path) -> subprocess.Popen:
    # a session of its own, as a terminal's foreground job: its Ctrl-C reaches every process of it
    return subprocess.Popen([CLI, "demo", "--example", "ring", "--records", "4000000000", "--size", "64"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env=dict(os.environ, FLINKTF_IPC_DIR=str(d)))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_ring_demo_cancelled_says_so_and_leaves_nothing(tmp_path, how):
    import signal
    import time

    d = tmp_path / "rings"
    d.mkdir(mode=0o700)
    p = _ring_demo(d)
    try:
        deadline = time.monotonic() + 120
        while not list(d.glob("demo-*.ring")):  # the writer process is up and writing
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.2)
        time.sleep(1)
        if how == "Ctrl-C":
            os.killpg(p.pid, signal.SIGINT)  # what a terminal does: every process of the group
        else:
            p.send_signal(signal.SIGTERM)  # the demo alone (a service manager, `kill`)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 130, out[-500:] + err
    assert "cancelled" in err and "Traceback" not in err, err
    assert not os.listdir(d), os.listdir(d)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the writer process (and multiprocessing's helper) go too
        try:
            os.killpg(p.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("a process of the demo is left")
