"""pytest-benchmark suites: the ring, the Java writer, the codecs and the dataset, each piece alone.

Run with ``make bench`` (after the side-by-side table) or ``.venv/bin/pytest bench --benchmark-only``.
They time one piece in one process; the cross-process figures beside their baselines come from
bench/run.py.
"""

import os
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import flinktf_ipc
from flinktf_ipc import RingReader, RingWriter, default_ring_dir
from flinktf_ipc.arrow import ArrowRingReader, ArrowRingWriter, batch_to_numpy


@pytest.fixture
def path():
    p = f"/dev/shm/fti-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield p
    if os.path.exists(p):
        os.unlink(p)


@pytest.mark.parametrize("size", [64, 4096])
def test_ring_write_many_then_read_batch(benchmark, path, size):
    """1024 records written with one publication, then read as one zero-copy batch."""
    records = [b"x" * size] * 1024
    with RingWriter.create(path, capacity=16 << 20) as w, RingReader.open(path) as r:
        def round_trip():
            w.write_many(records)
            got = 0
            while got < 1024:  # a batch stops at the wrap
                got += len(r.read_batch(1024 - got, timeout=1))

        benchmark(round_trip)


def test_arrow_write_and_decode_mnist_batch(benchmark, path):
    """One 256-row MNIST-shaped Arrow batch: 64-aligned write into the ring, zero-copy NumPy out."""
    rows = 256
    x = pa.FixedSizeListArray.from_arrays(pa.array(np.random.rand(rows * 784).astype(np.float32)), 784)
    rb = pa.record_batch([x, pa.array(np.arange(rows))], names=["x", "y"])
    with ArrowRingWriter.create(path, rb.schema, capacity=64 << 20) as w:
        r = ArrowRingReader(path)
        w.write_batch(rb)
        r.read_batch(timeout=5)  # the stream's first batch: the schema is read with it

        def round_trip():
            w.write_batch(rb)
            cols = batch_to_numpy(r.read_batch(timeout=5))
            assert cols["x"].shape == (rows, 784)

        benchmark(round_trip)
        r.close()


def test_java_writer_64_byte_records(benchmark):
    """The Java RingWriter (bench/WriterBench) writing 2 M 64-byte records to a Python reader."""
    jar = Path(flinktf_ipc.__file__).resolve().parent / "jars" / "flinktf-ipc.jar"
    if not jar.is_file():
        pytest.skip("no connector jar")

    def run():
        p = os.path.join(default_ring_dir(), f"bench-suite-{uuid.uuid4().hex[:8]}")
        writer = subprocess.Popen(["java", "-cp", str(jar), "io.flinktf.ipc.bench.WriterBench", p, str(64 << 20),
                                   "2000000", "64", "8"], stdout=subprocess.PIPE)
        with RingReader.open(p, timeout=30) as r:
            for batch in r.iter_batches(4096, timeout=60):
                del batch
        writer.communicate(timeout=120)

    benchmark.pedantic(run, rounds=3)
