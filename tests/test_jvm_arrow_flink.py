"""Embedded Flink -> arrow_sink -> pyarrow: a PyFlink job whose Rows come from SQL (datagen
sequence + expressions, no Python per record) is batched and Arrow-encoded in Java, written into
one ring per subtask, and decoded in Python. Slow (a local job starts in 10-20 s): one job."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from flinktf_ipc.arrow import ArrowRingReader, column_to_numpy

flink = pytest.importorskip("flinktf_ipc.flink")
flink_arrow = pytest.importorskip("flinktf_ipc.flink_arrow")
pytestmark = pytest.mark.flink

N = 20_000


def expected(i: int) -> dict[str, Any]:
    return {"id": i, "small": (i % 200) - 100, "half": i * 0.5, "b": i % 2 == 0,
            "s": f"ü-{i}-日本", "x": [[float(i), float(i + 1)], [float(i + 2), float(i + 3)]],
            "rag": [i] * (i % 3), "maybe": None if i % 7 == 0 else i}


SQL = """
SELECT id,
       CAST(MOD(id, 200) - 100 AS TINYINT) AS small,
       CAST(id AS DOUBLE) * 0.5 AS half,
       MOD(id, 2) = 0 AS b,
       CONCAT('ü-', CAST(id AS STRING), '-日本') AS s,
       ARRAY[CAST(id AS FLOAT), CAST(id + 1 AS FLOAT), CAST(id + 2 AS FLOAT), CAST(id + 3 AS FLOAT)] AS x,
       CASE MOD(id, 3) WHEN 0 THEN CAST(ARRAY[-1] AS ARRAY<BIGINT>) WHEN 1 THEN ARRAY[id]
            ELSE ARRAY[id, id] END AS rag,
       CASE WHEN MOD(id, 7) = 0 THEN CAST(NULL AS BIGINT) ELSE id END AS maybe
FROM src
"""


def read_all(path: str, out: list[pa.RecordBatch], errors: list[BaseException]) -> None:
    try:
        with ArrowRingReader(path, timeout=120) as r:
            while (rb := r.read_batch(timeout=120)) is not None:
                out.append(pa.RecordBatch.from_pylist(rb.to_pylist(), schema=rb.schema))  # copy out of the ring
                # Let the ring space go before blocking again: a checkpoint waits until the reader
                # has released everything (RingSink's flush), so a held batch would stall it.
                del rb
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


COLUMNS = ["id", "small", "half", "b", "s", "x", "rag", "maybe"]
# every column of a fixed size per row: the sink encodes each row straight into the ring
FIXED = ["id", "small", "half", "x", "maybe"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("columns", [COLUMNS, FIXED], ids=["all-types", "fixed-size-in-ring"])
def test_sql_rows_through_arrow_sink_decode_exactly_once_per_ring(tmp_path: Path, columns: list[str]) -> None:
    from pyflink.common import Types
    from pyflink.table import StreamTableEnvironment

    env = flink.configure(restart_attempts=0, log_dir=str(tmp_path / "logs"))
    env.set_parallelism(2)
    env.enable_checkpointing(300)  # checkpoints cut batches too (prepareSnapshotPreBarrier)
    t_env = StreamTableEnvironment.create(env)
    t_env.execute_sql(f"""CREATE TEMPORARY TABLE src (id BIGINT) WITH ('connector' = 'datagen',
        'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{N - 1}',
        'rows-per-second' = '10000')""")
    rows = t_env.to_data_stream(t_env.sql_query(f"SELECT {', '.join(columns)} FROM ({SQL})"))
    all_types = [Types.LONG(), Types.BYTE(), Types.DOUBLE(), Types.BOOLEAN(), Types.STRING(),
                 Types.PRIMITIVE_ARRAY(Types.FLOAT()), Types.BASIC_ARRAY(Types.LONG()), Types.LONG()]
    types = dict(zip(COLUMNS, all_types, strict=True))
    row_type = Types.ROW_NAMED(columns, [types[c] for c in columns])
    sink = flink_arrow.arrow_sink(rows, row_type, name="rows", shapes={"x": (2, 2)}, batch_rows=500,
                                  linger_ms=50, base_dir=tmp_path, capacity=1 << 20, flush_timeout=60)
    paths = sink.ring_paths(2)
    assert paths == flink.ring_paths(tmp_path, "rows", 2)

    got: list[list[pa.RecordBatch]] = [[], []]
    errors: list[BaseException] = []
    readers = [threading.Thread(target=read_all, args=(p, got[i], errors), daemon=True) for i, p in enumerate(paths)]
    for t in readers:
        t.start()
    env.execute("flinktf-ipc arrow e2e")
    for t in readers:
        t.join(timeout=120)
        assert not t.is_alive(), "a reader did not see end of stream"
    assert not errors, errors

    seen: dict[int, int] = {}
    for ring in got:
        assert ring, "every subtask wrote batches"
        assert all(rb.num_rows <= 500 for rb in ring)
        table = pa.Table.from_batches(ring)
        assert table.schema.field("x").type == pa.list_(pa.list_(pa.float32(), 2), 2)
        assert table.schema.field("x").metadata == {b"flinktf.shape": b"[2,2]"}
        x = column_to_numpy(table.column("x"), "x")
        assert x.shape == (table.num_rows, 2, 2)
        for k, row in enumerate(table.to_pylist()):
            i = row["id"]
            want = {c: v for c, v in expected(i).items() if c in columns}
            if i % 3 == 0 and "rag" in columns:
                want["rag"] = [-1]
            assert row == want, f"row {i}"
            assert x[k].tolist() == want["x"]
            seen[i] = seen.get(i, 0) + 1
    assert len(seen) == N and set(seen.values()) == {1}, "every row exactly once"


@pytest.mark.timeout(120)
def test_arrow_sink_reports_bad_declarations_as_value_errors(tmp_path: Path) -> None:
    from pyflink.common import Types

    env = flink.configure(restart_attempts=0, log_dir=str(tmp_path / "logs"))
    stream = env.from_collection([1], type_info=Types.LONG())  # never executed: only the wiring is checked
    ok = Types.ROW_NAMED(["x", "y"], [Types.PRIMITIVE_ARRAY(Types.FLOAT()), Types.LONG()])
    with pytest.raises(ValueError, match="column 'ts'.*no Arrow mapping"):
        flink_arrow.arrow_sink(stream, Types.ROW_NAMED(["ts"], [Types.SQL_TIMESTAMP()]), name="e")
    with pytest.raises(ValueError, match="unknown column"):
        flink_arrow.arrow_sink(stream, ok, name="e", shapes={"z": (2,)})
    with pytest.raises(ValueError, match="column 'y'.*takes no shape"):
        flink_arrow.arrow_sink(stream, ok, name="e", shapes={"y": (2,)})
    with pytest.raises(ValueError, match="batchRows"):
        flink_arrow.arrow_sink(stream, ok, name="e", batch_rows=0)
    with pytest.raises(ValueError, match="unknown sink option"):
        flink_arrow.arrow_sink(stream, ok, name="e", encoder="long")
    with pytest.raises(ValueError, match="ROW_NAMED"):
        flink_arrow.arrow_sink(stream, Types.LONG(), name="e")  # type: ignore[arg-type]
    sink = flink_arrow.arrow_sink(stream, ok, name="fine", shapes={"x": (784,)}, base_dir=tmp_path)
    assert sink.ring_paths(2) == [str(tmp_path / "fine-0.ring"), str(tmp_path / "fine-1.ring")]


@pytest.mark.timeout(180)
def test_a_value_type_other_than_declared_fails_the_job_naming_column_and_types(tmp_path: Path) -> None:
    """Issue 12 item 12: a FLOAT column declared Types.LONG() was truncated silently (datagen's
    floats arrived as Long.MAX_VALUE); now the job fails with the column, declared and actual type."""
    from py4j.protocol import Py4JJavaError
    from pyflink.common import Types
    from pyflink.table import StreamTableEnvironment

    env = flink.configure(restart_attempts=0, log_dir=str(tmp_path / "logs"))
    env.set_parallelism(1)
    t_env = StreamTableEnvironment.create(env)
    t_env.execute_sql("""CREATE TEMPORARY TABLE src (id BIGINT, price FLOAT) WITH ('connector' = 'datagen',
        'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '99')""")
    rows = t_env.to_data_stream(t_env.sql_query("SELECT id, price FROM src"))
    wrong = Types.ROW_NAMED(["id", "price"], [Types.LONG(), Types.LONG()])
    sink = flink_arrow.arrow_sink(rows, wrong, name="typed", base_dir=tmp_path, capacity=1 << 20)
    got: list[pa.RecordBatch] = []
    errors: list[BaseException] = []
    reader = threading.Thread(target=read_all, args=(sink.ring_path(0), got, errors), daemon=True)
    reader.start()
    with pytest.raises(Py4JJavaError) as info:
        env.execute("flinktf-ipc arrow wrong type")
    text = str(info.value)
    assert "column 'price': declared BIGINT" in text and "java.lang.Float" in text, text[-3000:]
    reader.join(timeout=60)
    assert not any(rb.num_rows for rb in got), "no truncated value reached the reader"
