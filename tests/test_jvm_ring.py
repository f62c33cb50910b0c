"""Cross-language: the Java ring writer (in its own JVM) -> the Python RingReader (C library).

The Java side is src/test/java/io/flinktf/ipc/CrossLangWriter.java, compiled here against the
installed connector jar; record i is generated identically on both sides.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import compile_java

from flinktf_ipc import RingReader

flink = pytest.importorskip("flinktf_ipc.flink")

REPO = Path(__file__).resolve().parent.parent
WRITER_SRC = REPO / "src/test/java/io/flinktf/ipc/CrossLangWriter.java"
SPECIAL = [0, 1, 7, 8, 9, 15, 16, 17, 55, 56, 57, 63, 64, 65, 127, 128, 129]


def expected_size(i: int, max_record: int) -> int:
    if i < len(SPECIAL):
        return min(SPECIAL[i], max_record)
    if i % 97 == 0:
        return max_record
    if i % 89 == 0:
        return max_record - 1
    return ((i * 2654435761) & 0xFFFFFFFF) % (max_record + 1)


def check_record(i: int, rec: memoryview, max_record: int) -> None:
    n = expected_size(i, max_record)
    assert len(rec) == n, f"record {i}: length {len(rec)} != {n}"
    b = bytes(rec)
    assert b[:8] == i.to_bytes(8, "little")[: min(8, n)], f"record {i}: sequence bytes differ"
    if n > 8:
        assert b[8:] == bytes([i & 0xFF]) * (n - 8), f"record {i}: payload differs"


@pytest.fixture(scope="session")
def java_classes(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Class path with the installed jar and the compiled CrossLangWriter."""
    return compile_java(tmp_path_factory.mktemp("java"), [WRITER_SRC])


def start_writer(cp: str, path: Path, capacity: int, align: int, start: int, count: int,
                 linger_ms: int = 0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["java", "-cp", cp, "io.flinktf.ipc.CrossLangWriter", str(path), str(capacity), str(align),
         str(start), str(count), str(linger_ms)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("align", [8, 64])
@pytest.mark.parametrize("start", [0, 4096 * 5 - 128, (1 << 32) - 192], ids=["zero", "before-wrap", "before-2^32"])
def test_java_writes_many_sizes_across_the_wrap_python_reads_them_exactly(
        java_classes: str, tmp_path: Path, align: int, start: int) -> None:
    capacity = 4096 if start != 0 else 65536
    if start % capacity == 0 and start:
        pytest.skip("start must sit before a wrap")
    count = 5000
    path = tmp_path / "x.ring"
    proc = start_writer(java_classes, path, capacity, align, start, count, linger_ms=300)
    try:
        with RingReader.open(path, timeout=30) as r:
            max_record = capacity // 4
            i = 0
            while True:
                batch = r.read_batch(256, timeout=30)
                if not len(batch):
                    break
                for rec in batch:
                    check_record(i, rec, max_record)
                    i += 1
                # Drop every view before blocking again: a held view keeps its batch's space.
                del batch, rec
            assert i == count
            assert r.eof
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        proc.kill()


@pytest.mark.timeout(60)
def test_java_close_wakes_a_sleeping_reader_with_end_of_stream(java_classes: str, tmp_path: Path) -> None:
    path = tmp_path / "eos.ring"
    proc = start_writer(java_classes, path, 4096, 8, 0, 3, linger_ms=1500)
    try:
        with RingReader.open(path, timeout=30) as r:
            for i in range(3):
                rec = r.read(timeout=30)
                assert rec is not None
                check_record(i, rec, 1024)
                del rec
            # The writer lingers 1.5 s before closing: this read sleeps and the close must wake it.
            assert r.read(timeout=30) is None
        proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        proc.kill()


READER = textwrap.dedent("""
    import sys, time
    from flinktf_ipc import RingReader
    r = RingReader.open(sys.argv[1], timeout=30)
    n = 0
    while n < 100:
        batch = r.read_batch(16, timeout=30)
        n += len(batch)
        del batch   # give the space back before blocking again
    print("read", flush=True)
    if sys.argv[2] == "close":
        r.close()
    time.sleep(60)   # killed by the test (or the ring stays full)
""")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["kill", "close"])
def test_reader_killed_or_closed_fails_the_java_writer(java_classes: str, tmp_path: Path, how: str) -> None:
    path = tmp_path / "gone.ring"
    proc = start_writer(java_classes, path, 4096, 8, 0, -1)
    # The child imports flinktf_ipc from where this process did (an installed or a --target build).
    import flinktf_ipc
    pkg_root = str(Path(flinktf_ipc.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]))
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path), how],
                              stdout=subprocess.PIPE, text=True, env=env, cwd=str(path.parent))
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline().strip() == "read"
        if how == "kill":
            reader.send_signal(signal.SIGKILL)
            reader.wait(timeout=30)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 3, err
        if how == "kill":
            assert f"reader process {reader.pid} is gone" in err, err
            assert "PeerLostException" in err
        else:
            assert "reader closed" in err and "RingClosedException" in err, err
        assert str(path) in err
    finally:
        reader.kill()
        proc.kill()
        reader.wait()
