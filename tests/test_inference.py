"""Stream inference (issue 10): the worker side (flinktf_ipc.inference) against real rings, and the
whole path in an embedded Flink job: rows -> input ring -> worker model -> output ring -> Flink."""

from __future__ import annotations

import base64
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from flinktf_ipc import inference as inf
from flinktf_ipc.arrow import ArrowRingReader, ArrowRingWriter

HERE = Path(__file__).resolve().parent
ENTRY = HERE / "inference_entry.py"


# ---- the worker side on its own -------------------------------------------------------------------

IN_SCHEMA = pa.schema([("id", pa.int64()), ("x", pa.float32())])
OUT_SCHEMA = pa.schema([("id", pa.int64()), ("y", pa.float32())])


class Ctx:
    """The attributes of a worker context that inference reads."""

    def __init__(self, ring: str, out: str, schema: pa.Schema = OUT_SCHEMA) -> None:
        self.rings = [ring]
        self.output_ring = out
        self.output_schema = base64.b64encode(schema.serialize().to_pybytes()).decode()
        self.output_capacity = 1 << 20


@pytest.fixture
def rings(tmp_path: Path) -> tuple[str, str]:
    d = tmp_path / "rings"
    d.mkdir(mode=0o700)
    return str(d / "in.ring"), str(d / "in.out.ring")


def feed(path: str, batches: list[int]) -> ArrowRingWriter:
    w = ArrowRingWriter.create(path, IN_SCHEMA, capacity=1 << 20)
    start = 0
    for n in batches:
        ids = np.arange(start, start + n, dtype=np.int64)
        w.write_batch(pa.record_batch([pa.array(ids), pa.array(ids.astype(np.float32))], schema=IN_SCHEMA))
        start += n
    return w


def run_worker(ctx: Ctx, fn: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def body() -> None:
        try:
            fn(ctx)
        except BaseException as e:  # noqa: BLE001 - the test inspects it
            errors.append(e)
            inf.session(ctx).abort()

    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t, errors


def read_all(out: str) -> pa.Table:
    with ArrowRingReader(out, timeout=30) as r:
        return pa.Table.from_batches([rb for rb in r], schema=r.schema)


@pytest.mark.timeout(60)
def test_serve_answers_every_row_in_order(rings: tuple[str, str]) -> None:
    src, out = rings
    w = feed(src, [1, 5, 300])
    t, errors = run_worker(Ctx(src, out), lambda c: inf.serve(c, lambda b: {"id": b["id"], "y": 2 * b["x"] + 1}))
    w.close()
    table = read_all(out)
    t.join(30)
    assert not errors
    assert table.schema.equals(OUT_SCHEMA)
    assert table.column("id").to_pylist() == list(range(306))
    np.testing.assert_array_equal(table.column("y").to_numpy(), 2 * np.arange(306, dtype=np.float32) + 1)


@pytest.mark.timeout(60)
def test_input_batch_offers_numpy_arrow_and_casts_a_dense_head(rings: tuple[str, str]) -> None:
    src, out = rings
    w = feed(src, [4])
    seen: list[Any] = []

    def main(c: Any) -> None:
        for b in inf.input_batches(c):
            seen.append((len(b), b.columns, b["x"].dtype, b.to_arrow().num_rows))
            inf.emit(c, {"id": b["id"], "y": (2.0 * b["x"] + 1).astype(np.float64).reshape(-1, 1)})  # (n, 1) float64

    t, errors = run_worker(Ctx(src, out), main)
    w.close()
    table = read_all(out)
    t.join(30)
    assert not errors
    assert seen == [(4, ["id", "x"], np.float32, 4)]
    assert table.column("y").type == pa.float32()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["too_many", "too_few", "wrong_type", "missing_column"])
def test_a_wrong_answer_is_a_clear_error_at_once(rings: tuple[str, str], kind: str) -> None:
    src, out = rings
    w = feed(src, [3, 3])

    def main(c: Any) -> None:
        for b in inf.input_batches(c):
            if kind == "too_many":
                inf.emit(c, {"id": np.arange(len(b) + 1), "y": np.zeros(len(b) + 1)})
            elif kind == "too_few":
                inf.emit(c, {"id": b["id"][:-1], "y": b["x"][:-1]})
            elif kind == "wrong_type":
                inf.emit(c, {"id": b["id"], "y": np.array(["a"] * len(b))})
            else:
                inf.emit(c, {"id": b["id"]})

    t, errors = run_worker(Ctx(src, out), main)
    t.join(30)
    w.close()
    assert len(errors) == 1
    e = errors[0]
    expect = {"too_many": (ValueError, "output rows, but only"),
              "too_few": (ValueError, "input rows got"),
              "wrong_type": (TypeError, "column 'y' must be float"),
              "missing_column": (ValueError, "missing ['y']")}[kind]
    assert isinstance(e, expect[0]), repr(e)
    assert expect[1] in str(e), str(e)


@pytest.mark.timeout(60)
def test_fixed_shape_and_ragged_outputs(rings: tuple[str, str]) -> None:
    src, out = rings
    schema = pa.schema([("v", pa.list_(pa.list_(pa.float32(), 3), 2)), ("r", pa.list_(pa.int32()))])
    w = feed(src, [2])

    def main(c: Any) -> None:
        for b in inf.input_batches(c):
            n = len(b)
            inf.emit(c, {"v": np.ones((n, 2, 3)), "r": [np.arange(i) for i in range(n)]})

    t, errors = run_worker(Ctx(src, out, schema), main)
    w.close()
    table = read_all(out)
    t.join(30)
    assert not errors
    assert table.column("v").to_pylist() == [[[1.0] * 3] * 2] * 2
    assert table.column("r").to_pylist() == [[], [0]]


# ---- the whole path in Flink ------------------------------------------------------------------------

# 1 M rows each (job start included: NumPy 17-21 s here, Keras 18 s at load average ~5 and 119 s
# at 14, 55 s of it the two workers' TensorFlow import; docs/BENCHMARKS.md has rates).
N = {"numpy": 1_000_000, "keras": 1_000_000}


def flink_job(tmp_path: Path, n: int, parallelism: int = 2, checkpoint_ms: int | None = None,
              restart_attempts: int = 0) -> tuple[Any, Any, Any, Any]:
    """An environment and a stream of Rows (id BIGINT, x FLOAT) made by SQL: no Python per record."""
    from pyflink.common import Types
    from pyflink.table import StreamTableEnvironment

    from flinktf_ipc import flink

    env = flink.configure(restart_attempts=restart_attempts, restart_delay_ms=200, log_dir=str(tmp_path / "logs"))
    env.set_parallelism(parallelism)
    if checkpoint_ms:
        env.enable_checkpointing(checkpoint_ms)
    t_env = StreamTableEnvironment.create(env)
    conf = t_env.get_config()
    conf.set("table.exec.mini-batch.enabled", "true")  # the check below emits a few updates, not one per row
    conf.set("table.exec.mini-batch.allow-latency", "500 ms")
    conf.set("table.exec.mini-batch.size", "100000")
    table = f"src_{uuid.uuid4().hex[:8]}"
    t_env.execute_sql(f"CREATE TEMPORARY TABLE {table} (id BIGINT) WITH ('connector' = 'datagen', "
                      f"'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{n - 1}', "
                      "'rows-per-second' = '1000000000')")  # datagen's default is 10 000 rows/s
    rows = t_env.to_data_stream(t_env.sql_query(f"SELECT id, CAST(id AS FLOAT) AS x FROM {table}"))
    in_type = Types.ROW_NAMED(["id", "x"], [Types.LONG(), Types.FLOAT()])
    out_type = Types.ROW_NAMED(["id", "y"], [Types.LONG(), Types.FLOAT()])
    return t_env, rows, in_type, out_type


def check_results(t_env: Any, out: Any) -> dict[str, int]:
    """Runs the job; the results are checked by SQL in the same job (pulling a million rows through
    Py4J one by one would take minutes) and the final check row is collected with execute_and_collect."""
    view = f"results_{uuid.uuid4().hex[:8]}"
    t_env.create_temporary_view(view, t_env.from_data_stream(out))
    query = t_env.sql_query(f"SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids, MIN(id) AS lo, MAX(id) AS hi, "
                            f"SUM(CASE WHEN y = CAST(2 * id + 1 AS FLOAT) THEN 0 ELSE 1 END) AS wrong FROM {view}")
    last: dict[str, int] = {}
    with query.execute().collect() as results:
        for row in results:
            if row.get_row_kind().name in ("INSERT", "UPDATE_AFTER"):
                last = {k: int(row[i]) for i, k in enumerate(("n", "ids", "lo", "hi", "wrong"))}
    return last


def assert_every_input_once_and_correct(got: dict[str, int], n: int) -> None:
    assert got == {"n": n, "ids": n, "lo": 0, "hi": n - 1, "wrong": 0}


def no_rings_left() -> list[str]:
    d = os.environ.get("FLINKTF_IPC_DIR") or f"/dev/shm/flinktf-{os.getuid()}"
    return sorted(f for f in os.listdir(d) if f.startswith("itest")) if os.path.isdir(d) else []


def workers_writing_to(log_dir: Path) -> list[int]:
    """Pids of live processes whose stdout is a file in log_dir (the job's worker processes)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/fd/1").startswith(str(log_dir)):
                pids.append(int(pid))
        except OSError:
            pass
    return pids


@pytest.mark.flink
@pytest.mark.timeout(300)
@pytest.mark.parametrize("model", ["numpy", "keras"])
def test_parallelism_2_every_input_one_correct_output(tmp_path: Path, model: str) -> None:
    import inference_entry

    n = N[model]
    t_env, rows, in_type, out_type = flink_job(tmp_path, n)
    fn = inference_entry.numpy_main if model == "numpy" else inference_entry.keras_main
    # A TF process may take over 10 s to exit after its entry returned on a loaded machine: the
    # heartbeat timeout must not take that for a hang.
    from flinktf_ipc.tf_cluster import inference  # the seed-style front door

    out = inference(2, fn, input_ds=rows, output_row_type=out_type, input_row_type=in_type,
                        name=f"itest-{model}", worker_log_dir=str(tmp_path / "workers"), heartbeat_timeout=60)
    t0 = time.monotonic()
    got = check_results(t_env, out)
    print(f"{model}: {n} rows in {time.monotonic() - t0:.1f} s (job start included)")
    assert_every_input_once_and_correct(got, n)
    assert no_rings_left() == []


@pytest.mark.flink
@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGSTOP"])
def test_a_worker_killed_mid_stream_every_input_still_gets_its_output(tmp_path: Path, sig: str) -> None:
    # SIGKILL: the worker's exit is seen at once; SIGSTOP: a stalled worker, seen only through its
    # heartbeat going stale (the JVM then kills it), never waited on for ever.
    import inference_entry

    n = 300_000
    t_env, rows, in_type, out_type = flink_job(tmp_path, n, checkpoint_ms=500, restart_attempts=2)
    out = inf.inference(2, inference_entry.failing_main, properties={"kill_after": n // 4, "signal": sig},
                        input_ds=rows, output_row_type=out_type, input_row_type=in_type, name=f"itest-{sig}",
                        worker_log_dir=str(tmp_path / "workers"), heartbeat_timeout=10)
    # In-flight batches are in the inference operator's checkpoints and re-sent after the restore; the
    # check's state rolls back with them: every input counted exactly once.
    assert_every_input_once_and_correct(check_results(t_env, out), n)
    assert no_rings_left() == []
    deadline = time.monotonic() + 60  # the stopped worker was killed, not left behind
    while (left := workers_writing_to(tmp_path / "workers")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert left == [], f"worker processes left: {left}"
    logs = sorted(p.name for p in (tmp_path / "workers").glob("*.err"))
    assert any("attempt1" in name for name in logs), logs  # the failure was seen and the task restarted
    # The restarted workers ran cleanly. (A worker of the failed attempt whose task was cancelled
    # under it may print the PeerLost it saw before the JVM stopped it: that one is not checked.)
    restarted = {p.name: p.read_text() for p in (tmp_path / "workers").glob("*attempt1*.err")}
    assert not any("Traceback" in text for text in restarted.values()), restarted


@pytest.mark.flink
@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind,message", [
    ("too_few", "input rows got"),
    ("too_many", "output rows, but only"),
    ("wrong_type", "column 'y' must be float"),
])
def test_a_worker_with_a_wrong_answer_fails_the_job_with_a_clear_error(tmp_path: Path, kind: str,
                                                                         message: str) -> None:
    from py4j.protocol import Py4JJavaError

    t_env, rows, in_type, out_type = flink_job(tmp_path, 20_000)
    out = inf.inference(2, f"{ENTRY}:{kind}_main", input_ds=rows, output_row_type=out_type,
                        input_row_type=in_type, name=f"itest-{kind.replace('_', '-')}",
                        worker_log_dir=str(tmp_path / "workers"))
    with pytest.raises(Py4JJavaError) as info:
        check_results(t_env, out)
    text = str(info.value)
    assert message in text, text[-3000:]
    assert "inference 'itest-" in text, text[-3000:]
    assert no_rings_left() == []


@pytest.mark.flink
@pytest.mark.timeout(300)
def test_results_keep_their_timestamps_and_no_watermark_overtakes_them(tmp_path: Path) -> None:
    """Event time through inference: rows keep their timestamps, and a watermark leaves only after
    the rows before it (else the event-time window after inference drops them as late)."""
    import inference_entry
    from pyflink.common import Row, Types
    from pyflink.table import Schema, StreamTableEnvironment

    from flinktf_ipc import flink

    n = 20_000  # ts = id ms: 1000 rows per second of event time, strictly ascending
    env = flink.configure(restart_attempts=0, log_dir=str(tmp_path / "logs"))
    env.set_parallelism(1)
    t_env = StreamTableEnvironment.create(env)
    src = f"src_{uuid.uuid4().hex[:8]}"
    t_env.execute_sql(f"CREATE TEMPORARY TABLE {src} (id BIGINT, ts AS TO_TIMESTAMP_LTZ(id, 3), "
                      "WATERMARK FOR ts AS ts) WITH ('connector' = 'datagen', 'fields.id.kind' = 'sequence', "
                      f"'fields.id.start' = '0', 'fields.id.end' = '{n - 1}', 'rows-per-second' = '20000')")
    in_type = Types.ROW_NAMED(["id", "x"], [Types.LONG(), Types.FLOAT()])
    # The rowtime column makes to_data_stream set each record's timestamp and pass the watermarks;
    # a Python map (which keeps both) drops the column.
    rows = t_env.to_data_stream(t_env.sql_query(f"SELECT id, CAST(id AS FLOAT) AS x, ts FROM {src}")) \
        .map(lambda r: Row(r[0], r[1]), output_type=in_type)
    out_type = Types.ROW_NAMED(["id", "y"], [Types.LONG(), Types.FLOAT()])
    out = inf.inference(1, inference_entry.numpy_main, input_ds=rows, output_row_type=out_type,
                        input_row_type=in_type, name="itest-event-time", worker_log_dir=str(tmp_path / "workers"))
    view = f"scored_{uuid.uuid4().hex[:8]}"
    t_env.create_temporary_view(view, t_env.from_data_stream(out, Schema.new_builder()
                                                              .column_by_metadata("rowtime", "TIMESTAMP_LTZ(3)")
                                                              .watermark("rowtime", "SOURCE_WATERMARK()").build()))
    query = t_env.sql_query(f"SELECT window_start, COUNT(*) AS c, MIN(id) AS lo, MAX(id) AS hi FROM TABLE("
                            f"TUMBLE(TABLE {view}, DESCRIPTOR(rowtime), INTERVAL '1' SECOND)) "
                            "GROUP BY window_start, window_end")
    with query.execute().collect() as results:
        windows = sorted((int(r[2]), int(r[3]), int(r[1])) for r in results)
    assert windows == [(k, k + 999, 1000) for k in range(0, n, 1000)]
    assert no_rings_left() == []
