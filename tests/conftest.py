import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

PEER = str(Path(__file__).with_name("ring_peer.py"))
ARROW_PEER = str(Path(__file__).with_name("arrow_peer.py"))


def compile_java(out_dir: Path, sources: list[Path], with_flink_dist: bool = False) -> str:
    """Compiles test-side Java sources against the installed connector jar; returns the class path
    (skips the test when there is no javac)."""
    import shutil

    from flinktf_ipc import flink

    javac = shutil.which("javac")
    if javac is None:
        pytest.skip("javac not installed")
    cp = [flink.jar_path()]
    if with_flink_dist:
        import glob

        import pyflink

        dist = glob.glob(os.path.join(os.path.dirname(pyflink.__file__), "lib", "flink-dist-*.jar"))
        assert len(dist) == 1, dist
        cp.append(dist[0])
    classpath = os.pathsep.join(cp)
    subprocess.run([javac, "--release", "11", "-cp", classpath, "-d", str(out_dir), *map(str, sources)],
                   check=True, timeout=120)
    return os.pathsep.join([str(out_dir), classpath])


@pytest.fixture
def ring_path():
    """A fresh ring path in /dev/shm, removed afterwards if something left it."""
    path = f"/dev/shm/fti-pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield path
    if os.path.exists(path):
        os.unlink(path)


def _peers(script: str, **popen: object):
    """Yields `start(*args)`, which runs `script ARGS...` as a separate process; kills leftovers at the end."""
    procs: list[subprocess.Popen] = []

    def start(*args: object) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, script, *map(str, args)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, **popen)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


@pytest.fixture
def peer():
    """Starts `ring_peer.py ROLE ARGS...` as a separate process; kills leftovers at the end."""
    yield from _peers(PEER)


@pytest.fixture
def peers():
    """Starts `arrow_peer.py ROLE PATH ARGS...` (stdin a pipe, for the roles that wait on it)."""
    yield from _peers(ARROW_PEER, stdin=subprocess.PIPE)
