"""The examples, run as a newcomer runs them: the main job (Flink features -> rings -> Keras
workers started by the job) and the digits example on real data."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.flink
ROOT = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str, tmp_path: Path) -> str:
    p = subprocess.run([sys.executable, "-P", str(ROOT / "examples" / f"{name}.py"), "--workdir", str(tmp_path),
                        *args], capture_output=True, text=True, timeout=400, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    return p.stdout


@pytest.mark.timeout(420)
def test_click_through_job_trains_one_model_per_worker(tmp_path):
    out = run_example("ctr", "--rows", "300000", "--parallelism", "2", tmp_path=tmp_path)
    assert "job FINISHED" in out and "300,000 rows trained" in out and "demo succeeded" in out
    for i in range(2):
        assert (tmp_path / "checkpoints" / str(i) / "model.keras").is_file()
        assert list((tmp_path / "checkpoints" / str(i)).glob("ckpt/ckpt-*.index")), "checkpointed as it went"


@pytest.mark.timeout(420)
def test_digits_from_flink_reach_a_stated_accuracy(tmp_path):
    out = run_example("digits", "--epochs", "30", tmp_path=tmp_path)
    accuracy = float(out.split("accuracy ")[1].split("%")[0])
    assert accuracy > 90.0, out
