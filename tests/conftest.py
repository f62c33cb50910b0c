import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

PEER = str(Path(__file__).with_name("ring_peer.py"))


@pytest.fixture
def ring_path():
    """A fresh ring path in /dev/shm, removed afterwards if something left it."""
    path = f"/dev/shm/fti-pytest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield path
    if os.path.exists(path):
        os.unlink(path)


@pytest.fixture
def peer():
    """Starts `ring_peer.py ROLE ARGS...` as a separate process; kills leftovers at the end."""
    procs = []

    def start(*args: object) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, PEER, *map(str, args)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
