"""Tensors into TensorFlow: ring_dataset beside the ways users feed TF today, in one run.

Rows shaped like MNIST (784 float32 + int64 label, 3144 bytes). Each figure is the median of
--repeat runs; the payload counted is the tensor bytes that reach the consuming loop.
  ring            writer process (ArrowRingWriter, 1024-row records) -> ring -> ring_dataset
                  (batch_size rows, tensors alias the ring where aligned) -> `for x, y in ds`
  ring copy=True  the same, every batch copied out of the ring (tensors hold no ring space)
  mp.Queue gen    writer process puts one (x, y) per record on a multiprocessing.Queue ->
                  from_generator per record -> .batch(batch_size)   (what users write today)
  memory          the same tensors already in memory: from_tensor_slices((x, y)).batch(batch_size)
Keras: one epoch of a 784-128-10 MLP fed from the ring vs from memory (same rows, same batches),
with the writer process running alongside and with the writer done before the epoch starts.

Run: .venv/bin/python bench/bench_dataset.py [--rows 200000] [--repeat 3] [--batch 256]
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


def _ring_writer(path: str, rows: int, capacity: int = 64 << 20) -> None:
    import pyarrow as pa

    from flinktf_ipc.arrow import ArrowRingWriter, encode_batch

    schema = pa.schema([("x", pa.list_(pa.float32(), D)), ("y", pa.int64())])
    x, y = _rows(WRITER_ROWS * 4)
    msgs = []  # encoded once: the loop measures the ring and the reader, not Arrow encoding
    for i in range(4):
        sl = slice(i * WRITER_ROWS, (i + 1) * WRITER_ROWS)
        msgs.append(encode_batch(pa.record_batch(
            [pa.FixedSizeListArray.from_arrays(pa.array(x[sl].ravel()), D), pa.array(y[sl])], schema=schema)))
    with ArrowRingWriter.create(path, schema, capacity=capacity, timeout=120) as w:
        for i in range(rows // WRITER_ROWS):
            w.write_encoded(msgs[i % 4])
        if rows % WRITER_ROWS:
            w.write_batch(pa.RecordBatch.from_arrays(
                [pa.FixedSizeListArray.from_arrays(pa.array(x[:rows % WRITER_ROWS].ravel()), D),
                 pa.array(y[:rows % WRITER_ROWS])], schema=schema))


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


def run_ring(rows: int, batch: int, copy: bool = False) -> float:
    from flinktf_ipc.tf import ring_dataset

    path = ring_path()
    p = _start(_ring_writer, path, rows)
    ds = ring_dataset(path, features="x", label="y", batch_size=batch, copy=copy)
    n, dt = _consume(ds)
    p.join(30)
    assert n == rows, (n, rows)
    return (n - batch) * ROW_BYTES / dt


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


def keras_epochs(rows: int, batch: int, repeat: int) -> tuple[float, float, float]:
    """Median seconds of one epoch fed from the ring (writer running alongside; writer done, the
    rows waiting in the ring) and from memory, same rows and model."""
    import tensorflow as tf

    from flinktf_ipc.tf import ring_dataset

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((D,)), tf.keras.layers.Dense(128, activation="relu"),
                                 tf.keras.layers.Dense(10)])
    model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _rows(rows)
    mem = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
    model.fit(mem, epochs=1, verbose=0)  # builds and traces the train step
    ring_t, filled_t, mem_t = [], [], []
    cap = 1 << (rows * ROW_BYTES * 2).bit_length()
    for _ in range(repeat):
        path = ring_path()
        p = _start(_ring_writer, path, rows)
        ds = ring_dataset(path, features="x", label="y", batch_size=batch)
        t0 = time.perf_counter()
        model.fit(ds.prefetch(tf.data.AUTOTUNE), epochs=1, verbose=0)
        ring_t.append(time.perf_counter() - t0)
        p.join(30)
        path = ring_path()
        p = _start(_ring_writer, path, rows, cap)
        ds = ring_dataset(path, features="x", label="y", batch_size=batch)
        p.join(60)
        t0 = time.perf_counter()
        model.fit(ds.prefetch(tf.data.AUTOTUNE), epochs=1, verbose=0)
        filled_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.fit(mem.prefetch(tf.data.AUTOTUNE), epochs=1, verbose=0)
        mem_t.append(time.perf_counter() - t0)
    return statistics.median(ring_t), statistics.median(filled_t), statistics.median(mem_t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000, help="rows per ring and memory run")
    ap.add_argument("--queue-rows", type=int, default=20_000, help="rows per mp.Queue run (it is slow)")
    ap.add_argument("--keras-rows", type=int, default=60_000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    x, y = _rows(a.rows)
    res: dict[str, list[float]] = {"ring": [], "ring copy=True": [], "mp.Queue gen": [], "memory": []}
    for _ in range(a.repeat):
        res["ring"].append(run_ring(a.rows, a.batch))
        res["ring copy=True"].append(run_ring(a.rows, a.batch, copy=True))
        res["mp.Queue gen"].append(run_queue(a.queue_rows, a.batch))
        res["memory"].append(run_memory(x, y, a.batch))
    med = {k: statistics.median(v) for k, v in res.items()}
    ring_s, filled_s, mem_s = keras_epochs(a.keras_rows, a.batch, a.repeat)

    print(f"# Tensors into TensorFlow ({machine()}, TF {tf.__version__})")
    print(f"# command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"# rows of 784 float32 + int64 ({ROW_BYTES} B); batch_size {a.batch}; "
          f"median of {a.repeat}; ring writer records of {WRITER_ROWS} rows")
    print("| path | rows/s | GB/s into TF | vs mp.Queue gen | vs memory |")
    print("|---|---:|---:|---:|---:|")
    for k, v in med.items():
        print(f"| {k} | {v / ROW_BYTES / 1e6:.2f} M | {v / 1e9:.2f} | {v / med['mp.Queue gen']:.0f}x | "
              f"{v / med['memory']:.2f}x |")
    print()
    print(f"| Keras epoch, {a.keras_rows} rows, 784-128-10 MLP | seconds | vs memory |")
    print("|---|---:|---:|")
    print(f"| ring, writer process running alongside | {ring_s:.3f} | {ring_s / mem_s:.2f}x |")
    print(f"| ring, writer done (rows waiting in the ring) | {filled_s:.3f} | {filled_s / mem_s:.2f}x |")
    print(f"| memory (from_tensor_slices) | {mem_s:.3f} | 1.00x |")


if __name__ == "__main__":
    main()
