"""Tensors into TensorFlow: ring_dataset beside the ways users feed TF today, in one run.

Rows shaped like MNIST (784 float32 + int64 label, 3144 bytes). Each figure is the median of
--repeat runs; the payload counted is the tensor bytes that reach the consuming loop.
  ring            writer process (ArrowRingWriter, 1024-row records) -> ring -> ring_dataset
                  (batch_size rows, tensors alias the ring where aligned) -> `for x, y in ds`
  ring copy=True  the same, every batch copied out of the ring (tensors hold no ring space)
  mp.Queue gen    writer process puts one (x, y) per record on a multiprocessing.Queue ->
                  from_generator per record -> .batch(batch_size)   (what users write today)
  memory          the same tensors already in memory: from_tensor_slices((x, y)).batch(batch_size)
  ring, batch 100 the ring with a TF batch size that does not divide the writer's 1024-row
                  records (re-batched: rows gathered and copied across records) beside the
                  same batch size declared by the writer (1000-row records: whole batches,
                  what arrow_sink(batch_size=100) does)
Keras: one epoch of a 784-128-10 MLP fed from the ring vs from memory (same model, same batches),
interleaved: a small (first) epoch of 60 K rows, the ring's writer running alongside and done
before the epoch starts, and a steady-state epoch of 600 K rows, with the time to the end of the
first step and from the last step to fit's return (the fixed costs).

Run: .venv/bin/python -P bench/bench_dataset.py [--rows 200000] [--repeat 5] [--batch 256] [--only keras]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import numpy as np

# Run as `python -P` (the checkout must not shadow the installed package): this directory is not
# on sys.path, so append it for the sibling _common (it holds no flinktf_ipc).
sys.path.append(str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

D = 784
ROW_BYTES = D * 4 + 8
WRITER_ROWS = 1024


def _rows(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.random((n, D), dtype=np.float32), rng.integers(0, 10, n, dtype=np.int64)


def _ring_writer(path: str, rows: int, capacity: int = 64 << 20, record_rows: int = WRITER_ROWS,
                batch_size: int | None = None) -> None:
    """Writes ``rows`` rows in records of ``record_rows``; ``batch_size`` is declared in the codec
    header (what ``arrow_sink(batch_size=...)`` does: the records then hold whole batches)."""
    import pyarrow as pa

    from flinktf_ipc.arrow import ArrowRingWriter, encode_batch

    schema = pa.schema([("x", pa.list_(pa.float32(), D)), ("y", pa.int64())])
    x, y = _rows(record_rows * 4)
    msgs = []  # encoded once: the loop measures the ring and the reader, not Arrow encoding
    for i in range(4):
        sl = slice(i * record_rows, (i + 1) * record_rows)
        msgs.append(encode_batch(pa.record_batch(
            [pa.FixedSizeListArray.from_arrays(pa.array(x[sl].ravel()), D), pa.array(y[sl])], schema=schema)))
    params = None if batch_size is None else {"batch_size": batch_size}
    with ArrowRingWriter.create(path, schema, capacity=capacity, params=params, timeout=120) as w:
        for i in range(rows // record_rows):
            w.write_encoded(msgs[i % 4])
        if rows % record_rows:
            w.write_batch(pa.RecordBatch.from_arrays(
                [pa.FixedSizeListArray.from_arrays(pa.array(x[:rows % record_rows].ravel()), D),
                 pa.array(y[:rows % record_rows])], schema=schema))


def _queue_writer(q: mp.Queue, rows: int) -> None:
    x, y = _rows(4096)
    for i in range(rows):
        q.put((x[i % 4096], int(y[i % 4096])))
    q.put(None)


def _start(target, *args) -> mp.Process:  # noqa: ANN001
    p = mp.get_context("spawn").Process(target=target, args=args, daemon=True)
    p.start()
    return p


def _consume(ds) -> tuple[int, float]:  # noqa: ANN001
    """Iterates the dataset; returns (rows, seconds) from the first batch on (startup excluded)."""
    it = iter(ds)
    x, y = next(it)
    rows = int(y.shape[0])
    del x, y  # a batch kept holds its ring space: the writer would stall once the ring came round
    t0 = time.perf_counter()
    for _x, y in it:
        rows += int(y.shape[0])
    return rows, time.perf_counter() - t0


def ring_path() -> str:
    from flinktf_ipc import default_ring_dir

    return os.path.join(default_ring_dir(), f"bench-dataset-{uuid.uuid4().hex[:8]}")


def run_ring(rows: int, batch: int | None, copy: bool = False, record_rows: int = WRITER_ROWS,
             declare: int | None = None) -> float:
    from flinktf_ipc.tf import ring_dataset

    path = ring_path()
    p = _start(_ring_writer, path, rows, 64 << 20, record_rows, declare)
    ds = ring_dataset(path, features="x", label="y", batch_size=batch, copy=copy)
    n, dt = _consume(ds)
    p.join(30)
    assert n == rows, (n, rows)
    return (n - (batch or declare or 0)) * ROW_BYTES / dt


def run_queue(rows: int, batch: int) -> float:
    import tensorflow as tf

    q = mp.get_context("spawn").Queue(maxsize=4096)
    p = _start(_queue_writer, q, rows)

    def gen():
        while (item := q.get()) is not None:
            yield item

    ds = tf.data.Dataset.from_generator(gen, output_signature=(
        tf.TensorSpec((D,), tf.float32), tf.TensorSpec((), tf.int64))).batch(batch)
    n, dt = _consume(ds)
    p.join(30)
    assert n == rows
    return (n - batch) * ROW_BYTES / dt


def run_memory(x: np.ndarray, y: np.ndarray, batch: int) -> float:
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
    n, dt = _consume(ds)
    return (n - batch) * ROW_BYTES / dt


class _StepTimes:
    """A Keras callback: when fit started, when its first and last steps ended."""

    def __new__(cls):  # noqa: ANN204 - a tf.keras.callbacks.Callback made after TF is imported
        import tensorflow as tf

        class Times(tf.keras.callbacks.Callback):
            def on_train_begin(self, logs=None):  # noqa: ANN001
                self.begin = time.perf_counter()
                self.first = self.last = None

            def on_train_batch_end(self, batch, logs=None):  # noqa: ANN001
                self.last = time.perf_counter()
                if self.first is None:
                    self.first = self.last

        return Times()


def keras_rounds(rows: int, batch: int, repeat: int, filled: bool) -> dict[str, list[tuple[float, float, float]]]:
    """One epoch of ``rows`` rows per fit, fed from the ring and from memory, interleaved (the
    order alternates each round), same model and batches. Per run: (seconds of the fit call, its
    first step's share: fit start to the end of step 1, its last: the end of the last step to
    fit's return). ``ring``: the writer process runs alongside (a 64 MiB ring, as a job's);
    ``ring, writer done``: the rows wait in a ring big enough to hold them all (``filled``)."""
    import tensorflow as tf

    from flinktf_ipc.tf import ring_dataset

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((D,)), tf.keras.layers.Dense(128, activation="relu"),
                                 tf.keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _rows(rows)
    mem = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
    model.fit(mem.take(20), epochs=1, verbose=0)  # builds and traces the train step
    times = _StepTimes()
    out: dict[str, list[tuple[float, float, float]]] = {"ring": [], "memory": []}
    if filled:
        out["ring, writer done"] = []
    cap = 1 << (rows * ROW_BYTES * 2).bit_length()

    def fit(ds) -> tuple[float, float, float]:  # noqa: ANN001
        t0 = time.perf_counter()
        model.fit(ds.prefetch(tf.data.AUTOTUNE), epochs=1, verbose=0, callbacks=[times])
        t1 = time.perf_counter()
        return t1 - t0, times.first - t0, t1 - times.last

    def ring() -> tuple[float, float, float]:
        path = ring_path()
        p = _start(_ring_writer, path, rows)
        r = fit(ring_dataset(path, features="x", label="y", batch_size=batch))
        p.join(30)
        return r

    def ring_filled() -> tuple[float, float, float]:
        path = ring_path()
        p = _start(_ring_writer, path, rows, cap)
        ds = ring_dataset(path, features="x", label="y", batch_size=batch)
        p.join(120)
        return fit(ds)

    runs = [("ring", ring), ("memory", lambda: fit(mem))] + ([("ring, writer done", ring_filled)] if filled else [])
    for i in range(repeat):
        for name, run in runs if i % 2 == 0 else runs[::-1]:
            out[name].append(run())
    return out


def _spread(v: list[float]) -> str:
    return f"{statistics.median(v):.3f} ({min(v):.3f}–{max(v):.3f})"


def _rate(bytes_per_s: float) -> str:
    """Rows/s from payload bytes/s, three significant digits, in K below a million."""
    r = bytes_per_s / ROW_BYTES
    return f"{r / 1e6:.3g} M" if r >= 1e6 else f"{r / 1e3:.3g} K"


def keras_table(rows: int, batch: int, res: dict[str, list[tuple[float, float, float]]]) -> list[str]:
    mem = [t for t, _, _ in res["memory"]]
    lines = [f"| Keras epoch, {rows} rows, 784-128-10 MLP | seconds, median (min–max) | vs memory (median of "
             "per-round ratios, min–max) | first step, ms | after the last step, ms |",
             "|---|---:|---:|---:|---:|"]
    for name, v in res.items():
        secs = [t for t, _, _ in v]
        ratios = [a / b for a, b in zip(secs, mem, strict=True)]
        label = "memory (from_tensor_slices)" if name == "memory" else name
        lines.append(f"| {label} | {_spread(secs)} | {statistics.median(ratios):.2f}x "
                     f"({min(ratios):.2f}–{max(ratios):.2f}) | {statistics.median([f for _, f, _ in v]) * 1e3:.0f} | "
                     f"{statistics.median([e for _, _, e in v]) * 1e3:.0f} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000, help="rows per ring and memory run")
    ap.add_argument("--queue-rows", type=int, default=20_000, help="rows per mp.Queue run (it is slow)")
    ap.add_argument("--keras-rows", type=int, default=60_000, help="rows of the small (first) Keras epoch")
    ap.add_argument("--keras-steady-rows", type=int, default=600_000,
                    help="rows of the steady-state Keras epoch (0: skip it)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--odd-batch", type=int, default=100,
                    help="a batch size that does not divide the 1024-row records: re-batched vs declared")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", choices=["all", "tensors", "keras"], default="all")
    a = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    print(f"# Tensors into TensorFlow ({machine()}, TF {tf.__version__})")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"# rows of 784 float32 + int64 ({ROW_BYTES} B); batch_size {a.batch}; median of {a.repeat} "
          f"interleaved runs; ring writer records of {WRITER_ROWS} rows")
    if a.only in ("all", "tensors"):
        x, y = _rows(a.rows)
        odd = a.odd_batch
        whole = odd * max(1, WRITER_ROWS // odd)
        res: dict[str, list[float]] = {"ring": [], "ring copy=True": [], "mp.Queue gen": [], "memory": [],
                                       f"ring, batch {odd}, {WRITER_ROWS}-row records (re-batched)": [],
                                       f"ring, batch {odd} declared, {whole}-row records": []}
        for _ in range(a.repeat):
            res["ring"].append(run_ring(a.rows, a.batch))
            res["ring copy=True"].append(run_ring(a.rows, a.batch, copy=True))
            res["mp.Queue gen"].append(run_queue(a.queue_rows, a.batch))
            res["memory"].append(run_memory(x, y, a.batch))
            res[f"ring, batch {odd}, {WRITER_ROWS}-row records (re-batched)"].append(run_ring(a.rows, odd))
            res[f"ring, batch {odd} declared, {whole}-row records"].append(
                run_ring(a.rows, None, record_rows=whole, declare=odd))
        del x, y
        med = {k: statistics.median(v) for k, v in res.items()}
        print("| path | rows/s, median (min–max) | GB/s into TF | vs mp.Queue gen | vs memory |")
        print("|---|---:|---:|---:|---:|")
        for k, v in res.items():
            m = med[k]
            print(f"| {k} | {_rate(m)} ({_rate(min(v))}–{_rate(max(v))})"
                  f" | {m / 1e9:.2f} | {m / med['mp.Queue gen']:.0f}x | {m / med['memory']:.2f}x |")
        print()
    if a.only in ("all", "keras"):
        for line in keras_table(a.keras_rows, a.batch, keras_rounds(a.keras_rows, a.batch, a.repeat, True)):
            print(line)
        print()
        if a.keras_steady_rows:
            res_k = keras_rounds(a.keras_steady_rows, a.batch, a.repeat, False)
            for line in keras_table(a.keras_steady_rows, a.batch, res_k):
                print(line)


if __name__ == "__main__":
    main()
