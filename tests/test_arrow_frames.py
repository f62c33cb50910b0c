"""ArrowRingReader beyond TensorFlow (issue 14 item 5): the same ring read as pyarrow record
batches, pandas frames and polars frames, with a writer in another thread."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pytest

from flinktf_ipc.arrow import ArrowRingReader, ArrowRingWriter

SCHEMA = pa.schema([("id", pa.int64()), ("x", pa.float32()), ("name", pa.string())])
N, ROWS = 20, 500


def _batch(k: int) -> pa.RecordBatch:
    ids = np.arange(k * ROWS, (k + 1) * ROWS, dtype=np.int64)
    return pa.RecordBatch.from_arrays([pa.array(ids), pa.array(ids.astype(np.float32) / 2),
                                       pa.array([f"n{i}" for i in ids])], schema=SCHEMA)


def _write(path: str) -> threading.Thread:
    def run() -> None:
        with ArrowRingWriter.create(path, SCHEMA, capacity=1 << 20, timeout=60) as w:
            for k in range(N):
                w.write_batch(_batch(k), timeout=60)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.timeout(60)
def test_iter_batches_zero_copy_and_copied(ring_path):
    t = _write(ring_path)
    kept = []
    with ArrowRingReader(ring_path, timeout=30) as r:
        for k, rb in enumerate(r.iter_batches(copy=True)):
            assert rb.equals(_batch(k))
            kept.append(rb)  # copies own their memory: keeping them does not stall the writer
    t.join(30)
    assert len(kept) == N and kept[0].column("id")[0].as_py() == 0  # still valid after the ring is gone


@pytest.mark.timeout(60)
def test_iter_pandas(ring_path):
    t = _write(ring_path)
    with ArrowRingReader(ring_path, timeout=30) as r:
        frames = list(r.iter_pandas())
    t.join(30)
    assert len(frames) == N
    df = frames[3]
    assert list(df.columns) == ["id", "x", "name"] and len(df) == ROWS
    assert df["id"].iloc[0] == 3 * ROWS and df["x"].iloc[1] == (3 * ROWS + 1) / 2
    assert df["name"].iloc[2] == f"n{3 * ROWS + 2}"


@pytest.mark.timeout(60)
def test_iter_polars(ring_path):
    pl = pytest.importorskip("polars")
    t = _write(ring_path)
    total = 0
    with ArrowRingReader(ring_path, timeout=30) as r:
        for k, df in enumerate(r.iter_polars()):
            assert isinstance(df, pl.DataFrame) and df.columns == ["id", "x", "name"]
            assert df["id"].to_list() == list(range(k * ROWS, (k + 1) * ROWS))
            total += df.height
            del df  # a zero-copy frame holds its ring space until dropped
    t.join(30)
    assert total == N * ROWS


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["batches", "pandas", "polars"])
def test_iterators_let_go_of_a_batch_while_they_wait_for_the_next(ring_path, kind):
    """A Flink checkpoint (the writer's flush) waits until the reader let go of every record: an
    iterator that kept the last batch while it waits for the next would stall it."""
    pytest.importorskip(kind) if kind != "batches" else None
    flushed: list[object] = []

    def run() -> None:
        with ArrowRingWriter.create(ring_path, SCHEMA, capacity=1 << 20, timeout=60) as w:
            w.write_batch(_batch(0), timeout=60)
            try:
                w.flush(timeout=10)
                flushed.append(True)
            except Exception as e:  # noqa: BLE001 - the assertion below shows it
                flushed.append(e)
            w.write_batch(_batch(1), timeout=60)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    with ArrowRingReader(ring_path, timeout=30) as r:
        it = {"batches": r.iter_batches, "pandas": r.iter_pandas, "polars": r.iter_polars}[kind]()
        first = next(it)
        del first  # the consumer dropped it: only the iterator could still hold it
        second = next(it)  # batch 1 comes after the flush returned (or timed out)
        assert flushed == [True], flushed
        del second
        assert list(it) == []
    t.join(30)
