"""Cross-language: the C writer (Python RingWriter) -> the Java RingReader (in its own JVM).

The Java side is src/test/java/io/flinktf/ipc/CrossLangReader.java, compiled here against the
installed connector jar; it checks record i exactly as CrossLangWriter defines it.
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
from test_jvm_ring import expected_size

from flinktf_ipc import RingWriter

pytest.importorskip("flinktf_ipc.flink")

REPO = Path(__file__).resolve().parent.parent
SOURCES = [REPO / "src/test/java/io/flinktf/ipc/CrossLangReader.java",
           REPO / "src/test/java/io/flinktf/ipc/CrossLangWriter.java"]


def record(i: int, max_record: int) -> bytes:
    n = expected_size(i, max_record)
    return i.to_bytes(8, "little")[: min(8, n)] + bytes([i & 0xFF]) * max(0, n - 8)


@pytest.fixture(scope="module")
def reader_classes(tmp_path_factory: pytest.TempPathFactory) -> str:
    return compile_java(tmp_path_factory.mktemp("java-reader"), SOURCES)


def start_reader(cp: str, path: Path, max_batch: int = 256) -> subprocess.Popen[str]:
    return subprocess.Popen(["java", "-cp", cp, "io.flinktf.ipc.CrossLangReader", str(path), str(max_batch)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("align", [8, 64])
@pytest.mark.parametrize("capacity", [4096, 1 << 16])
def test_c_writer_java_reader_every_record_exact(reader_classes: str, tmp_path: Path, align: int,
                                                 capacity: int) -> None:
    path = tmp_path / "c2j.ring"
    count = 5000
    proc = start_reader(reader_classes, path, max_batch=7)
    try:
        with RingWriter.create(str(path), capacity=capacity, align=align) as w:
            for start in range(0, count, 50):  # one publication per group: batches of many frames
                w.write_many([record(i, w.max_record) for i in range(start, min(count, start + 50))], timeout=60)
        out, err = proc.communicate(timeout=90)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    assert out.split("\n")[-2] == f"OK {count}", out + err
    assert not path.exists(), "the second side to leave removes the ring"


@pytest.mark.timeout(120)
def test_killed_c_writer_is_peer_lost_in_the_java_reader(reader_classes: str, tmp_path: Path) -> None:
    path = tmp_path / "killed.ring"
    writer = subprocess.Popen([sys.executable, "-P", "-c", textwrap.dedent(f"""
        import sys, time
        from flinktf_ipc import RingWriter
        w = RingWriter.create({str(path)!r}, capacity=4096)
        w.write(b"")  # record 0 as CrossLangWriter defines it: empty
        print("ready", flush=True)
        time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    reader = None
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        reader = start_reader(reader_classes, path)
        assert reader.stdout is not None and reader.stdout.readline().strip() == "opened"
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(30)
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 3, out + err
        assert f"ERROR PeerLostException: ring {path}: the writer process {writer.pid} is gone" in out, out
    finally:
        writer.kill()
        if reader is not None:
            reader.kill()
    assert not path.exists(), "a reader whose writer died removes the ring"
