"""The Java ring writer's hardening (issue 12 items 9, 10), in its own JVM against the installed jar."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import compile_java

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
