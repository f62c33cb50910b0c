"""Rows the role processes of a TF cluster emit (``train(..., output_row_type=...)``, issue 9
item 1) come back into the Flink stream through each task's output ring, on the embedded
mini-cluster."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flinktf_ipc.tf_cluster import TFClusterConfig, train

TESTS = Path(__file__).resolve().parent
ENTRY = TESTS / "cluster_output_entry.py"

pytestmark = pytest.mark.flink


@pytest.fixture(scope="module")
def flink_env(tmp_path_factory: pytest.TempPathFactory) -> Any:
    flink = pytest.importorskip("flinktf_ipc.flink")
    log_dir = tmp_path_factory.mktemp("flink-logs")

    def make() -> Any:
        env = flink.configure(restart_attempts=0, restart_delay_ms=500, log_dir=str(log_dir))
        env.set_parallelism(1)
        return env

    return make


@pytest.fixture
def ring_dir() -> Iterator[Path]:
    d = Path(f"/dev/shm/fti-out-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _row_type() -> Any:
    from pyflink.common import Types
    return Types.ROW_NAMED(["task", "step", "loss"], [Types.STRING(), Types.LONG(), Types.DOUBLE()])


def _no_files_left(ring_dir: Path) -> None:
    left = sorted(os.listdir(ring_dir)) if ring_dir.exists() else []
    assert not left, f"files left in {ring_dir}: {left}"


@pytest.mark.timeout(420)
def test_batch_mode_workers_emit_metrics_rows_and_every_row_arrives(flink_env: Any, ring_dir: Path) -> None:
    import cluster_output_entry as entry

    env = flink_env()
    # heartbeat_timeout: two processes loading TensorFlow at once on a loaded machine (see test_tf_cluster)
    rows = train(2, 0, entry.metrics, stream_env=env, output_row_type=_row_type(), heartbeat_timeout=60,
                 base_dir=ring_dir)
    assert rows is not None
    with rows.execute_and_collect("cluster output rows") as results:
        got = list(results)
    by_task: dict[str, list[tuple[int, float]]] = {}
    for r in got:
        task, step, loss = r[0], r[1], r[2]
        assert isinstance(task, str) and isinstance(step, int) and isinstance(loss, float), r
        by_task.setdefault(task, []).append((step, loss))
    expected_steps = list(range(entry.STEPS)) + [100, 101]
    assert sorted(by_task) == ["worker:0", "worker:1"]
    for task, rs in by_task.items():
        assert [s for s, _ in rs] == expected_steps, (task, rs)  # in the order each process emitted
        losses = dict(rs)
        for step in range(entry.STEPS):
            assert losses[step] == pytest.approx(1.0 / (step + 1), rel=1e-6)  # float32 -> DOUBLE
        assert losses[100] == 0.5 and losses[101] == 0.25
    _no_files_left(ring_dir)


@pytest.mark.timeout(420)
def test_the_config_builder_returns_the_output_stream_too(flink_env: Any, ring_dir: Path) -> None:
    env = flink_env()
    rows = (TFClusterConfig.builder().name("b").role("worker", 1).entry(f"{ENTRY}:metrics")
            .output(_row_type()).heartbeat(timeout=60).base_dir(ring_dir).build().add_to(env))
    with rows.execute_and_collect("cluster output rows, builder") as results:
        got = [(r[0], r[1]) for r in results]
    assert got == [("worker:0", s) for s in [0, 1, 2, 3, 4, 100, 101]]
    _no_files_left(ring_dir)


@pytest.mark.timeout(420)
def test_an_emit_of_the_wrong_type_fails_the_job_with_the_column_named(flink_env: Any, ring_dir: Path) -> None:
    import cluster_output_entry as entry

    env = flink_env()
    rows = train(2, 0, entry.wrong_type, stream_env=env, output_row_type=_row_type(), heartbeat_timeout=60,
                 base_dir=ring_dir)
    with pytest.raises(Exception) as e:
        with rows.execute_and_collect("cluster output, wrong type") as results:
            list(results)
    text = str(e.value)
    assert "emit: column 'step' must be int64" in text, text[-3000:]  # the process's stderr, in the Java chain


@pytest.mark.timeout(420)
def test_an_output_ring_that_is_not_an_arrow_stream_fails_the_task_naming_the_ring(
        flink_env: Any, ring_dir: Path) -> None:
    import cluster_output_entry as entry

    env = flink_env()
    rows = train(1, 0, entry.garbage, stream_env=env, output_row_type=_row_type(), heartbeat_timeout=60,
                 base_dir=ring_dir)
    with pytest.raises(Exception) as e:
        with rows.execute_and_collect("cluster output, garbage") as results:
            list(results)
    text = str(e.value)
    assert "output ring" in text and str(ring_dir) in text and ".out.ring" in text, text[-3000:]
    assert "not the arrow codec header" in text, text[-3000:]
