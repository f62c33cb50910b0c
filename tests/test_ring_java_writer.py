"""The Java ring writer in its own JVM against the installed jar: its hardening (issue 12 items 9, 10)
and how its close ends a stream for the C reader (only finish() completes it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import compile_java

from flinktf_ipc import PeerLost, RingReader

pytest.importorskip("flinktf_ipc.flink")

REPO = Path(__file__).resolve().parent.parent
WRITER_SRC = REPO / "src/test/java/io/flinktf/ipc/CrossLangWriter.java"


@pytest.fixture(scope="module")
def java_cp(tmp_path_factory: pytest.TempPathFactory) -> str:
    return compile_java(tmp_path_factory.mktemp("java"), [WRITER_SRC])


@pytest.mark.timeout(120)
def test_java_writer_on_a_full_tmpfs_is_a_clear_error_with_nothing_left(java_cp: str, tmp_path: Path) -> None:
    if shutil.which("unshare") is None or shutil.which("java") is None:
        pytest.skip("needs unshare and java")
    mnt = tmp_path / "small"
    mnt.mkdir(mode=0o700)
    ring = mnt / "rings" / "big.ring"
    # was: the writer filled the tmpfs page by page and died of SIGBUS (InternalError)
    script = (f"mount -t tmpfs -o size=1m,mode=0700 tmpfs {mnt} || exit 77; "
              f"java -cp {java_cp} io.flinktf.ipc.CrossLangWriter {ring} {4 << 20} 8 0 100000; "
              f"echo exit=$?; ls -A {mnt}/rings")
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                       capture_output=True, text=True, timeout=110)
    if p.returncode == 77 or "Operation not permitted" in p.stderr:
        pytest.skip("cannot mount a tmpfs here")
    assert "exit=0" not in p.stdout, p.stdout
    assert "ENOSPC" in p.stderr, p.stderr
    assert "big.ring" not in p.stdout.split("exit=")[-1]  # nothing left behind
    assert "InternalError" not in p.stderr and "SIGBUS" not in p.stderr


def start_writer(cp: str, path: Path, count: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["java", "-cp", cp, "io.flinktf.ipc.CrossLangWriter", str(path), "4096", "8", "0",
                             str(count), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_all(path: Path) -> tuple[list[bytes], BaseException | None]:
    """Every record the C reader hands out, and the exception that ended the stream (None: end of stream)."""
    records: list[bytes] = []
    with RingReader.open(path, timeout=60) as r:
        try:
            while (rec := r.read(timeout=60)) is not None:
                records.append(bytes(rec))
                del rec
        except PeerLost as e:
            return records, e
    return records, None


@pytest.mark.timeout(120)
def test_java_writer_left_by_an_exception_aborts_the_stream_for_the_python_reader(
        java_cp: str, tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("needs java")
    path = tmp_path / "crash.ring"
    # was: try-with-resources closed the crashed producer's ring as a complete stream
    proc = start_writer(java_cp, path, 5, "300", "fail")
    try:
        records, error = read_all(path)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    # records 0..4 of CrossLangWriter: 0, 1, 7, 8, 9 bytes, each starting with its number
    assert [len(r) for r in records] == [0, 1, 7, 8, 9], records
    assert [r[:1] for r in records[1:]] == [bytes([i]) for i in range(1, 5)], records
    assert isinstance(error, PeerLost) and "aborted" in str(error), error
    assert proc.returncode == 1 and "producer failed after 5 records" in err, err


@pytest.mark.timeout(120)
def test_java_writer_that_finished_is_end_of_stream_for_the_python_reader(java_cp: str, tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("needs java")
    path = tmp_path / "done.ring"
    proc = start_writer(java_cp, path, 5, "300")
    try:
        records, error = read_all(path)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert [len(r) for r in records] == [0, 1, 7, 8, 9] and error is None, (records, error)
    assert proc.returncode == 0, err
