"""ring_dataset: rings written by other processes into tf.data, for every codec."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

tf = pytest.importorskip("tensorflow")

from flinktf_ipc import RingWriter  # noqa: E402
from flinktf_ipc.arrow import ArrowRingWriter, batch_to_numpy  # noqa: E402
from flinktf_ipc.codecs import codec_header  # noqa: E402
from flinktf_ipc.tf import ring_dataset  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import arrow_peer  # noqa: E402


@pytest.fixture
def ring_dir(tmp_path):
    d = Path("/dev/shm") / f"fti-pytest-dir-{os.getpid()}-{tmp_path.name}"
    d.mkdir(mode=0o700)
    yield d
    for f in d.iterdir():
        f.unlink()
    d.rmdir()


@pytest.mark.timeout(120)
def test_every_type_through_the_dataset(ring_path, peers):
    w = peers("types", ring_path, 300, 64)
    names = [f.name for f in arrow_peer.TYPES_SCHEMA]
    ds = ring_dataset(ring_path, features=names, batch_size=100)
    spec = ds.element_spec
    assert set(spec) == set(names)
    expect_dtypes = {"i8": tf.int8, "i16": tf.int16, "i32": tf.int32, "i64": tf.int64, "f32": tf.float32,
                     "f64": tf.float64, "b": tf.bool, "s": tf.string, "bin": tf.string, "v3": tf.float32,
                     "m22": tf.int64, "t23": tf.float32, "ri": tf.int32, "rs": tf.string}
    assert {n: spec[n].dtype for n in names} == expect_dtypes
    assert spec["v3"].shape.as_list() == [None, 3] and spec["m22"].shape.as_list() == [None, 2, 2]
    assert spec["t23"].shape.as_list() == [None, 2, 3] and spec["i64"].shape.as_list() == [None]
    assert isinstance(spec["ri"], tf.RaggedTensorSpec) and spec["ri"].shape.as_list() == [None, None]
    got = list(ds)
    assert [int(b["i64"].shape[0]) for b in got] == [100, 100, 100]
    exp = arrow_peer.types_batch(0, 300)
    for n in names:
        col = tf.concat([b[n] for b in got], axis=0)
        if isinstance(col, tf.RaggedTensor):
            want = [[x.encode() if isinstance(x, str) else x for x in row] for row in exp.column(n).to_pylist()]
            assert col.to_list() == want, n
        elif col.dtype == tf.string:
            want = [x.encode() if isinstance(x, str) else x for x in exp.column(n).to_pylist()]
            assert col.numpy().tolist() == want, n
        else:
            np.testing.assert_array_equal(col.numpy(), batch_to_numpy(exp, [n])[n], err_msg=n)
    assert "日本語テキスト".encode() in tf.concat([b["s"] for b in got], 0).numpy().tolist()
    assert w.wait(timeout=30) == 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("per, batch, drop", [(70, 128, False), (300, 64, False), (64, 64, True), (50, 33, True),
                                              (256, 64, False), (130, 32, True)])
def test_rebatching_is_independent_of_the_writer(ring_path, peers, per, batch, drop):
    n = 1000
    peers("seq", ring_path, n, per, 1 << 18)
    ds = ring_dataset(ring_path, features="x", label="y", batch_size=batch, drop_remainder=drop)
    assert ds.element_spec[0].shape.as_list() == [batch if drop else None, 4]
    sizes, ys, xs = [], [], []
    for x, y in ds:  # ends at the end of the stream
        sizes.append(int(y.shape[0]))
        ys.append(y.numpy())
        xs.append(x.numpy())
    full = n // batch
    assert sizes == [batch] * full + ([] if drop or n % batch == 0 else [n % batch])
    np.testing.assert_array_equal(np.concatenate(ys), np.arange(full * batch if drop else n))
    np.testing.assert_array_equal(np.concatenate(xs).ravel(),
                                  (np.arange(len(np.concatenate(ys)) * 4) % 1_000_003).astype(np.float32))


def test_whole_batches_inside_a_record_come_out_as_one_run():
    """The generator runs once per record: a record's whole batches are one (k, rows) slice."""
    from flinktf_ipc.tf import _ArrowPlan, _rebatch_arrow

    schema = pa.schema([("x", pa.list_(pa.float32(), 2)), ("y", pa.int64())])

    def rb(start, n):
        x = pa.array(np.arange(2 * start, 2 * (start + n), dtype=np.float32))
        return pa.record_batch([pa.FixedSizeListArray.from_arrays(x, 2), pa.array(np.arange(start, start + n))],
                               schema=schema)

    plan = _ArrowPlan(schema, "x", "y", None, "mem")
    sizes = [40, 40, 10, 75, 25]  # batch 20: runs, a batch of two records, a run after a remainder
    starts = np.cumsum([0, *sizes[:-1]])
    for drop in (False, True):
        records = [rb(s, n) for s, n in zip(starts, sizes, strict=True)]
        out = list(_rebatch_arrow(iter(records), plan, 20, drop, "mem", runs=True))
        want = [(2, 40), (2, 40), (1, 20), (3, 60), (1, 20)] + ([] if drop else [(1, 10)])
        assert [(k, len(c[1])) for k, c in out] == want
        ys = np.concatenate([c[1] for _, c in out])
        np.testing.assert_array_equal(ys, np.arange(len(ys)))
        np.testing.assert_array_equal(np.concatenate([c[0] for _, c in out]).ravel(), np.arange(2 * len(ys)))
        assert [k for k, _ in _rebatch_arrow(iter([rb(0, 60)]), plan, 20, drop, "mem")] == [1, 1, 1]


def _tensor_address(t) -> int:
    import ctypes

    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return ctypes.c_void_p.from_address(get(tf.experimental.dlpack.to_dlpack(t), b"dltensor")).value


@pytest.mark.timeout(60)
@pytest.mark.parametrize("copy", [False, True])
def test_aligned_batches_alias_the_ring_unless_copy(ring_path, copy):
    """A batch inside one record is the ring's memory in TF (no copy), also when TF cuts it from
    a run of batches; a batch gathered from two records is a copy; copy=True copies every one."""
    schema = pa.schema([("x", pa.list_(pa.float32(), 4)), ("y", pa.int64())])
    per = 64 * 5 + 16  # 5 batches, then 16 rows that go with the next record's first 48
    with ArrowRingWriter.create(ring_path, schema, capacity=1 << 20) as w:
        for _ in range(3):
            w.write_batch(pa.record_batch([pa.FixedSizeListArray.from_arrays(
                pa.array(np.arange(per * 4, dtype=np.float32)), 4), pa.array(np.arange(per))], schema=schema))
    ds = ring_dataset(ring_path, features="x", label="y", batch_size=64, copy=copy)
    maps = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        if os.path.basename(ring_path) in line:
            lo, hi = line.split()[0].split("-")
            maps.append((int(lo, 16), int(hi, 16)))
    assert maps
    got = "".join("R" if all(any(lo <= _tensor_address(t) < hi for lo, hi in maps) for t in (x, y)) else "-"
                  for x, y in ds)
    assert got == ("-" * 16 if copy else "RRRRR-RRRR-RRRR-")


@pytest.mark.timeout(120)
def test_two_rings_interleave_without_loss(ring_dir, peers):
    n = 3000
    w1 = peers("seq", ring_dir / "subtask-0", n, 40, 1 << 16, 1)
    w2 = peers("seq", ring_dir / "subtask-1", n, 25, 1 << 16, 2)
    while len(os.listdir(ring_dir)) < 2:  # a directory is listed when the dataset is built
        assert w1.poll() is None and w2.poll() is None
    ds = ring_dataset(ring_dir, features=["x"], label="y", batch_size=64)
    ys = np.concatenate([y.numpy() for _, y in ds])
    assert len(ys) == 2 * n
    one, two = ys[ys < 2 * 10**9] - 10**9, ys[ys >= 2 * 10**9] - 2 * 10**9
    np.testing.assert_array_equal(one, np.arange(n))  # each ring in order, none lost
    np.testing.assert_array_equal(two, np.arange(n))
    assert w1.wait(timeout=30) == 0 and w2.wait(timeout=30) == 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("copy", [False, True])
def test_held_tensors_never_change(ring_path, peers, copy):
    """Tensors of whole ring records alias the ring (TF wraps 64-aligned NumPy arrays without a
    copy) and hold its space while they live: hold a sliding window of them while the ring wraps
    many times, and check each one when it is dropped."""
    n, per = 64 * 600, 64
    peers("seq", ring_path, n, per, 1 << 18)  # ~128 batches fit: the ring wraps ~5 times
    ds = ring_dataset(ring_path, features="x", label="y", batch_size=per, copy=copy)
    held = []
    rows = checked = 0

    def check(start, x, y):
        np.testing.assert_array_equal(y.numpy(), np.arange(start, start + per))
        np.testing.assert_array_equal(x.numpy(), batch_to_numpy(arrow_peer.seq_batch(start, per))["x"])

    for i, (x, y) in enumerate(ds):
        if i % 7 == 0:
            held.append((rows, x, y))
        if len(held) > 8 and not copy or len(held) > 200:
            check(*held.pop(0))
            checked += 1
        rows += int(y.shape[0])
    assert rows == n
    for h in held:
        check(*h)
        checked += 1
    assert checked == len(range(0, 600, 7))


@pytest.mark.timeout(60)
def test_killed_writer_is_an_error_not_a_hang(ring_path, peers):
    w = peers("die", ring_path)
    assert w.stdout.readline().strip() == "ready"
    ds = ring_dataset(ring_path, features="x", label="y", batch_size=4)
    it = iter(ds)
    next(it)
    w.stdin.write("go\n")
    w.stdin.flush()
    w.wait(timeout=10)
    with pytest.raises(tf.errors.OpError, match="PeerLost|peer|gone"):
        for _ in it:
            pass


@pytest.mark.timeout(60)
def test_corrupt_record_is_an_error(ring_path, peers):
    peers("raw", ring_path, "HEADER", "SCHEMA", "11223344556677889900")
    ds = ring_dataset(ring_path, features="x", label="y")
    with pytest.raises(tf.errors.OpError, match="RingCorrupt.*not an encapsulated Arrow"):
        list(ds)


@pytest.mark.timeout(60)
def test_a_killed_writer_among_two_rings_is_an_error(ring_dir, peers):
    w = peers("die", ring_dir / "a")
    peers("seq", ring_dir / "b", 100, 10, 1 << 16)
    assert w.stdout.readline().strip() == "ready"
    ds = ring_dataset(sorted(str(p) for p in ring_dir.iterdir()), features="x", label="y", batch_size=8)
    w.stdin.write("go\n")
    w.stdin.flush()
    with pytest.raises(tf.errors.OpError, match="PeerLost|peer|gone"):
        list(ds)


@pytest.mark.timeout(60)
def test_nulls_error_names_the_column_or_take_defaults(ring_path):
    schema = pa.schema([("x", pa.float32()), ("y", pa.int64())])
    batch = pa.record_batch([pa.array([1.0, None, 3.0], pa.float32()), pa.array([1, 2, 3])], schema=schema)
    for defaults in (None, {"x": -1.0}):
        with ArrowRingWriter.create(ring_path, schema, capacity=1 << 16) as w:
            w.write_batch(batch)
        ds = ring_dataset(ring_path, features="x", label="y", defaults=defaults)
        if defaults is None:
            with pytest.raises(tf.errors.OpError, match="column 'x' has 1 null"):
                list(ds)
        else:
            (x, y), = list(ds)
            assert x.numpy().tolist() == [1.0, -1.0, 3.0]


@pytest.mark.timeout(60)
def test_unknown_column_is_named(ring_path, peers):
    peers("seq", ring_path, 10, 10, 1 << 16)
    with pytest.raises(ValueError, match="column 'nope' is not in the stream's schema"):
        ring_dataset(ring_path, features="nope")


@pytest.mark.timeout(60)
def test_a_ring_dataset_is_iterated_once(ring_path, peers):
    peers("seq", ring_path, 10, 10, 1 << 16)
    ds = ring_dataset(ring_path, features="x", batch_size=4)
    assert sum(int(x.shape[0]) for x in ds) == 10
    with pytest.raises(tf.errors.OpError, match="iterated only once"):
        list(ds)


@pytest.mark.timeout(60)
def test_example_codec_parses_whole_batches(ring_path):
    def example(i: int) -> bytes:
        f = tf.train.Feature
        return tf.train.Example(features=tf.train.Features(feature={
            "x": f(float_list=tf.train.FloatList(value=[i, i + 0.5])),
            "tags": f(bytes_list=tf.train.BytesList(value=["é".encode()] * (i % 3))),
            "y": f(int64_list=tf.train.Int64List(value=[i])),
        })).SerializeToString()

    params = {"features": {"x": {"dtype": "float32", "shape": [2]}, "tags": {"dtype": "string"},
                           "y": {"dtype": "int64", "shape": []}}}
    with RingWriter.create(ring_path, capacity=1 << 18) as w:
        w.write_many([codec_header("example", params)] + [example(i) for i in range(50)])
    ds = ring_dataset(ring_path, features=["x", "tags"], label="y", batch_size=16)
    x_spec, y_spec = ds.element_spec
    assert x_spec["x"].shape.as_list() == [None, 2] and y_spec.dtype == tf.int64
    assert isinstance(x_spec["tags"], tf.RaggedTensorSpec)
    got = list(ds)
    assert [int(y.shape[0]) for _, y in got] == [16, 16, 16, 2]
    ys = np.concatenate([y.numpy() for _, y in got])
    np.testing.assert_array_equal(ys, np.arange(50))
    assert got[0][0]["tags"][2].numpy().tolist() == ["é".encode()] * 2
    np.testing.assert_array_equal(got[1][0]["x"].numpy()[0], [16, 16.5])


@pytest.mark.timeout(60)
def test_bytes_codec_with_decode_fn(ring_path):
    with RingWriter.create(ring_path, capacity=1 << 16) as w:
        w.write_many([codec_header("bytes")] + [np.full(3, i, np.int32).tobytes() for i in range(10)])

    def decode(records):
        return np.stack([np.frombuffer(r, np.int32) for r in records])

    ds = ring_dataset(ring_path, batch_size=4, decode_fn=decode,
                      output_signature=tf.TensorSpec((None, 3), tf.int32))
    out = [b.numpy() for b in ds]
    assert [len(b) for b in out] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(out)[:, 0], np.arange(10))


@pytest.mark.timeout(240)
def test_keras_learns_a_known_linear_function(ring_path, peers):
    """Rows generated from known weights; one pass over 40 000 rows must recover them."""
    tf.keras.utils.set_random_seed(1)
    peers("linear", ring_path, 40_000, 500, 7)
    ds = ring_dataset(ring_path, features="x", label="y", batch_size=64)
    model = tf.keras.Sequential([tf.keras.Input((8,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.02), loss="mse")
    hist = model.fit(ds.prefetch(tf.data.AUTOTUNE), epochs=1, verbose=0)
    w, b = model.layers[-1].get_weights()
    # stated accuracy: every weight and the bias within 0.02 of the truth, final loss < 1e-3
    np.testing.assert_allclose(w[:, 0], arrow_peer.LINEAR_W, atol=0.02)
    assert abs(float(b[0]) - arrow_peer.LINEAR_B) < 0.02
    x = np.random.default_rng(1).standard_normal((1000, 8)).astype(np.float32)
    mse = float(np.mean((model.predict(x, verbose=0)[:, 0] - (x @ arrow_peer.LINEAR_W + arrow_peer.LINEAR_B)) ** 2))
    assert mse < 1e-3, (mse, hist.history)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("in_graph", [False, True])
def test_idle_dataset_holds_no_ring_space_so_a_flush_completes(ring_path, in_graph):
    """A checkpoint (the writer's flush) while the dataset waits for the rest of a batch.

    ``in_graph``: the batches are used up inside TF (like a Keras train step), so TF, not Python,
    frees the tensors that alias the ring."""
    import threading

    import pyarrow as pa

    from flinktf_ipc.arrow import ArrowRingWriter
    from flinktf_ipc.tf import ring_dataset

    schema = pa.schema([("x", pa.float32()), ("y", pa.int64())])
    w = ArrowRingWriter.create(ring_path, schema, capacity=1 << 20)
    got = []
    flushed = threading.Event()

    def consume():
        ds = ring_dataset(ring_path, features="x", label="y", batch_size=100)
        if in_graph:
            ds = ds.map(lambda x, y: (tf.reduce_sum(x), y + 0))
        for x, y in ds:
            got.append(y.numpy().copy())
            del x, y  # like a training step: the tensors are dropped before the next batch

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    w.write_batch(pa.record_batch([pa.array(np.arange(150, dtype=np.float32)), pa.array(np.arange(150))],
                                  schema=schema))
    w.flush(timeout=30)  # 100 rows went to TF, 50 wait for more: they must not pin the ring
    flushed.set()
    w.write_batch(pa.record_batch([pa.array(np.arange(50, dtype=np.float32)), pa.array(np.arange(150, 200))],
                                  schema=schema))
    w.close()
    t.join(timeout=60)
    assert not t.is_alive()
    assert np.concatenate(got).tolist() == list(range(200))


def _write_seq(path, sizes, params=None):
    """Records of ``sizes`` rows (x = 4 floats, y = row number) in one Arrow ring; returns the row count."""
    schema = pa.schema([("x", pa.list_(pa.float32(), 4)), ("y", pa.int64())])
    start = 0
    with ArrowRingWriter.create(str(path), schema, capacity=1 << 20, params=params) as w:
        for n in sizes:
            x = pa.array(np.arange(4 * start, 4 * (start + n), dtype=np.float32))
            w.write_batch(pa.record_batch([pa.FixedSizeListArray.from_arrays(x, 4),
                                           pa.array(np.arange(start, start + n))], schema=schema))
            start += n
    return start


def _read_seq(ds):
    sizes, ys = [], []
    for _, y in ds:
        sizes.append(int(y.shape[0]))
        ys.append(y.numpy())
    return sizes, np.concatenate(ys)


def _stats_delta(before):
    from flinktf_ipc.tf import batch_stats

    return {k: v - before[k] for k, v in batch_stats().items()}


@pytest.mark.timeout(60)
def test_the_declared_batch_size_is_taken_and_whole_records_pass_without_rebatching(ring_path):
    """Item 4 of issue 13: a stream cut for batch size 50 ({"batch_size": 50} in its codec header):
    ring_dataset without batch_size yields batches of 50 and every record goes to TF whole."""
    import warnings

    from flinktf_ipc.tf import batch_stats

    n = _write_seq(ring_path, [200, 100, 250, 50], {"batch_size": 50})
    before = batch_stats()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the declared size (and a divisor of it) warn of nothing
        sizes, ys = _read_seq(ring_dataset(ring_path, features="x", label="y"))
    assert sizes == [50] * (n // 50)
    np.testing.assert_array_equal(ys, np.arange(n))
    assert _stats_delta(before) == {"records": 4, "whole_records": 4, "gathered_batches": 0, "held_rows": 0}


@pytest.mark.timeout(60)
def test_a_divisor_of_the_declared_batch_size_needs_no_rebatching_either(ring_path):
    import warnings

    from flinktf_ipc.tf import batch_stats

    n = _write_seq(ring_path, [200, 100], {"batch_size": 50})
    before = batch_stats()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sizes, _ = _read_seq(ring_dataset(ring_path, features="x", label="y", batch_size=25))
    assert sizes == [25] * (n // 25)
    assert _stats_delta(before)["whole_records"] == 2


@pytest.mark.timeout(60)
def test_another_batch_size_is_honoured_by_rebatching_with_a_warning(ring_path):
    """No silent coercion: batch_size=30 on a stream cut for 50 gives batches of 30 (re-batched,
    rows copied between records) and a warning naming both sizes."""
    from flinktf_ipc.tf import batch_stats

    n = _write_seq(ring_path, [200, 100, 250, 100], {"batch_size": 50})
    before = batch_stats()
    with pytest.warns(UserWarning, match=r"whole batches of 50 rows .* batch_size=30 does not divide it"):
        ds = ring_dataset(ring_path, features="x", label="y", batch_size=30)
    sizes, ys = _read_seq(ds)
    assert n % 30 and sizes == [30] * (n // 30) + [n % 30]
    np.testing.assert_array_equal(ys, np.arange(n))
    delta = _stats_delta(before)
    assert delta["whole_records"] == 0 and delta["gathered_batches"] > 0 and delta["held_rows"] > 0


@pytest.mark.timeout(60)
def test_a_stream_without_a_declared_batch_size_defaults_to_256(ring_path):
    n = _write_seq(ring_path, [300, 300])
    sizes, ys = _read_seq(ring_dataset(ring_path, features="x", label="y"))
    assert sizes == [256, 256, 88]
    np.testing.assert_array_equal(ys, np.arange(n))


@pytest.mark.timeout(60)
def test_rings_declaring_different_batch_sizes_need_an_explicit_one(ring_dir):
    _write_seq(ring_dir / "a.ring", [64], {"batch_size": 32})
    _write_seq(ring_dir / "b.ring", [64], {"batch_size": 64})
    with pytest.raises(ValueError, match=r"rings declare different batch sizes .*a\.ring: 32.*b\.ring: 64"):
        ring_dataset(ring_dir, features="x", label="y")
    _write_seq(ring_dir / "c.ring", [64], {"batch_size": "64"})
    with pytest.raises(ValueError, match=r"c\.ring: codec header batch_size must be a positive integer, got '64'"):
        ring_dataset([ring_dir / "c.ring"], features="x", label="y")


BATCH_ENTRY = '''
import json, os
from flinktf_ipc.tf import batch_stats

def main(context):
    sizes, ids = [], []
    for x, y in context.dataset(features="x", label="id"):  # no batch_size: the stream's
        assert tuple(x.shape[1:]) == (4,)
        sizes.append(int(y.shape[0]))
        ids.extend(y.numpy().tolist())
    with open(os.path.join(context.properties["out"], f"worker-{context.index}.json"), "w") as f:
        json.dump({"sizes": sizes, "ids": ids, "stats": batch_stats()}, f)
'''


@pytest.mark.flink
@pytest.mark.timeout(300)
def test_flink_job_worker_dataset_gets_the_jobs_batch_size_without_rebatching(tmp_path):
    """Item 4 of issue 13, across real processes: a Flink job's arrow_sink(batch_size=32) cuts
    Arrow batches at multiples of 32 (batch_rows unset: 1024) and declares it; the worker the sink
    starts reads context.dataset() without a batch size and gets batches of exactly 32 rows, every
    record handed to TF whole (no rows gathered across records, none copied)."""
    import json

    flink = pytest.importorskip("flinktf_ipc.flink")
    flink_arrow = pytest.importorskip("flinktf_ipc.flink_arrow")
    from pyflink.common import Types
    from pyflink.table import StreamTableEnvironment

    n = 32 * 200  # 6 records of 1024 rows, one of 256
    (tmp_path / "entry.py").write_text(BATCH_ENTRY)
    rings, out = tmp_path / "rings", tmp_path / "out"
    rings.mkdir(mode=0o700)
    out.mkdir()
    env = flink.configure(restart_attempts=0, log_dir=str(tmp_path / "flink-logs"))
    env.set_parallelism(1)
    t_env = StreamTableEnvironment.create(env)
    t_env.execute_sql(f"""CREATE TEMPORARY TABLE src (id BIGINT) WITH ('connector' = 'datagen',
        'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{n - 1}')""")
    rows = t_env.to_data_stream(t_env.sql_query(
        "SELECT id, ARRAY[CAST(id AS FLOAT), CAST(id AS FLOAT), CAST(id AS FLOAT), CAST(id AS FLOAT)] AS x FROM src"))
    row_type = Types.ROW_NAMED(["id", "x"], [Types.LONG(), Types.PRIMITIVE_ARRAY(Types.FLOAT())])
    with pytest.raises(ValueError, match="batchRows must be a multiple of batchSize, got 1000 rows for batch size 32"):
        flink_arrow.arrow_sink(rows, row_type, name="bad", batch_size=32, batch_rows=1000, base_dir=rings)
    # linger an hour: only the row limit and the end of input cut (a loaded machine must not add cuts)
    flink_arrow.arrow_sink(rows, row_type, name="tfb", shapes={"x": (4,)}, batch_size=32, linger_ms=3_600_000,
                           base_dir=rings, capacity=1 << 20, worker_entry=f"{tmp_path / 'entry.py'}:main",
                           worker_python=sys.executable, worker_log_dir=tmp_path / "logs",
                           worker_properties={"out": str(out)})
    env.execute("flinktf-ipc one batch size")

    got = json.loads((out / "worker-0.json").read_text())
    assert got["sizes"] == [32] * (n // 32)
    assert got["ids"] == list(range(n))
    assert got["stats"] == {"records": 7, "whole_records": 7, "gathered_batches": 0, "held_rows": 0}
