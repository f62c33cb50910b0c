"""The arrow codec: Python writer -> ring -> zero-copy reader, across processes."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from flinktf_ipc import RingCorrupt, RingReader, RingTimeout, RingWriter, ring_stat
from flinktf_ipc.arrow import (ArrowRingReader, ArrowRingWriter, Ragged, batch_to_numpy, column_kind,
                               column_to_numpy, encode_batch)

sys.path.insert(0, str(Path(__file__).parent))
import arrow_peer  # noqa: E402


def _buffers_aligned(rb: pa.RecordBatch) -> None:
    def walk(arr):
        if isinstance(arr, pa.ExtensionArray):
            arr = arr.storage
        for b in arr.buffers():
            if b is not None and b.size:
                assert b.address % 64 == 0, (arr.type, b.address % 64)

    for col in rb.columns:
        walk(col)


def test_encoded_message_is_64_aligned_and_readable():
    rb = arrow_peer.types_batch(3, 17)
    msg = encode_batch(rb)
    cont, meta = struct.unpack_from("<Ii", msg)
    assert cont == 0xFFFFFFFF and (8 + meta) % 64 == 0 and len(msg) % 64 == 0
    m = pa.ipc.read_message(pa.py_buffer(msg))
    assert m.body.size % 64 == 0
    back = pa.ipc.read_record_batch(m, rb.schema)
    assert back.equals(rb)
    base = pa.py_buffer(msg).address
    # every buffer's offset from the start of the message is a multiple of 64
    for col in back.columns:
        arr = col.storage if isinstance(col, pa.ExtensionArray) else col
        for b in arr.buffers():
            if b is not None and b.size:
                assert (b.address - base) % 64 == 0


@pytest.mark.timeout(60)
def test_every_type_round_trips_across_processes(ring_path, peers):
    w = peers("types", ring_path, 300, 64)
    got = []
    with ArrowRingReader(ring_path, timeout=30) as r:
        assert r.schema.equals(arrow_peer.TYPES_SCHEMA)
        for rb in r:
            _buffers_aligned(rb)
            got.append(rb)
    assert w.wait(timeout=30) == 0, w.stderr.read()
    assert sum(1 for rb in got if rb.num_rows == 0) == 6  # the empty batches arrive too
    table = pa.Table.from_batches(got, arrow_peer.TYPES_SCHEMA)
    assert table.equals(pa.Table.from_batches([arrow_peer.types_batch(0, 300)]))
    assert "日本語テキスト" in table.column("s").to_pylist()


@pytest.mark.timeout(60)
def test_numpy_views_point_into_the_ring(ring_path, peers):
    peers("types", ring_path, 100, 50)
    with ArrowRingReader(ring_path, timeout=30) as r:
        rb = next(rb for rb in r if rb.num_rows)
        cols = batch_to_numpy(rb, ring=ring_path)
        exp = batch_to_numpy(arrow_peer.types_batch(0, 50))
        for name in ["i8", "i16", "i32", "i64", "f32", "f64", "v3", "m22", "t23"]:
            a = cols[name]
            assert not a.flags.owndata and not a.flags.writeable
            arr = rb.column(name)
            while isinstance(arr, pa.ExtensionArray) or arr.type.num_fields:  # down to the values
                arr = arr.storage if isinstance(arr, pa.ExtensionArray) else arr.flatten()
            assert a.ctypes.data == arr.buffers()[1].address and a.ctypes.data % 64 == 0, name
            np.testing.assert_array_equal(a, exp[name])
        assert cols["v3"].shape == (50, 3) and cols["m22"].shape == (50, 2, 2) and cols["t23"].shape == (50, 2, 3)
        assert cols["s"].dtype == object and cols["s"][3] == "日本語テキスト".encode()
        assert cols["s"].tolist() == [t.encode() for t in arrow_peer.types_batch(0, 50).column("s").to_pylist()]
        assert isinstance(cols["ri"], Ragged)
        np.testing.assert_array_equal(cols["ri"].row_splits[:5], [0, 0, 1, 3, 6])
        assert sum(b.num_rows for b in r) == 50


def test_column_kinds_follow_the_mapping():
    kinds = {f.name: column_kind(f) for f in arrow_peer.TYPES_SCHEMA}
    assert kinds["i8"].dtype == "int8" and kinds["f64"].dtype == "float64" and kinds["b"].dtype == "bool"
    assert kinds["s"].dtype == kinds["bin"].dtype == "string"
    assert kinds["v3"].shape == (3,) and kinds["m22"].shape == (2, 2) and kinds["t23"].shape == (2, 3)
    assert kinds["ri"].ragged and kinds["ri"].shape == (None,) and kinds["rs"].dtype == "string"
    with pytest.raises(ValueError, match="column 'd'.*no tensor mapping"):
        column_kind(pa.field("d", pa.date32()))


def test_null_policy_error_names_the_column():
    arr = pa.array([1.0, None, 3.0], pa.float32())
    with pytest.raises(ValueError, match=r"ring-a: column 'x' has 1 null.*defaults=\{'x'"):
        column_to_numpy(arr, "x", ring="ring-a")


@pytest.mark.parametrize("arr, default, expected", [
    (pa.array([1.0, None, 3.0], pa.float32()), 0.5, [1.0, 0.5, 3.0]),
    (pa.array([1, None], pa.int64()), -1, [1, -1]),
    (pa.array([True, None], pa.bool_()), False, [True, False]),
    (pa.array(["é", None], pa.string()), "?", [b"\xc3\xa9", b"?"]),
    (pa.array([[1, 2], None], pa.list_(pa.int32(), 2)), 9, [[1, 2], [9, 9]]),
    (pa.array([[1.0, None], [2.0, 3.0]], pa.list_(pa.float64(), 2)), 0.0, [[1.0, 0.0], [2.0, 3.0]]),
])
def test_null_policy_defaults_fill(arr, default, expected):
    with pytest.raises(ValueError, match="null"):
        column_to_numpy(arr, "c")
    assert column_to_numpy(arr, "c", default).tolist() == expected


def test_null_policy_lists():
    arr = pa.array([[1, None], None, [3]], pa.list_(pa.int32()))
    with pytest.raises(ValueError, match="column 'r' has 1 null"):
        column_to_numpy(arr, "r")
    out = column_to_numpy(arr, "r", 0)
    assert out.values.tolist() == [1, 0, 3] and out.row_splits.tolist() == [0, 2, 2, 3]


@pytest.mark.timeout(30)
def test_writer_needs_an_aligned_ring(ring_path):
    with RingWriter.create(ring_path, capacity=1 << 16, align=8) as w:
        with pytest.raises(ValueError, match="align=64"):
            ArrowRingWriter(w, arrow_peer.SEQ_SCHEMA)


@pytest.mark.timeout(30)
def test_writer_refuses_another_schema(ring_path):
    with ArrowRingWriter.create(ring_path, arrow_peer.SEQ_SCHEMA, capacity=1 << 16) as w:
        with pytest.raises(ValueError, match="differs"):
            w.write_batch(pa.record_batch([pa.array([1])], names=["z"]))
        w.write_batch(pa.Table.from_batches([arrow_peer.seq_batch(0, 5), arrow_peer.seq_batch(5, 5)]))
    with ArrowRingReader(ring_path, timeout=5) as r:
        assert [rb.num_rows for rb in r] == [5, 5]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("records, problem", [
    (["HEADER", "00ff"], "not an Arrow IPC message"),
    (["HEADER", "SCHEMA", "11223344556677889900"], "not an encapsulated Arrow IPC message"),
    (["HEADER", "SCHEMA", "ffffffff00010000" + "00" * 16], "metadata length 256 exceeds"),
    (["HEADER", "SCHEMA", "ffffffff10000000" + "ab" * 16], "malformed Arrow IPC message"),
    (["HEADER", "SCHEMA", "SCHEMA"], "expected an Arrow RecordBatch message, got schema"),
    (["HEADER"], "end of stream before the Arrow schema"),
    (["HEADER", "ffffffff00000000"], "must be an Arrow Schema message"),
])
def test_malformed_arrow_messages_are_ring_corrupt(ring_path, peers, records, problem):
    w = peers("raw", ring_path, *records)
    with pytest.raises(RingCorrupt, match=problem) as e:
        with ArrowRingReader(ring_path, timeout=30) as r:
            list(r)
    assert ring_path in str(e.value)
    w.wait(timeout=30)


@pytest.mark.timeout(60)
def test_lying_buffer_lengths_are_caught(ring_path):
    msg = bytearray(encode_batch(arrow_peer.seq_batch(0, 8)))
    # Make the batch claim more rows than its buffers hold: RecordBatch.length lives in the
    # flatbuffer; find the int64 8 that is the row count and raise it.
    at = msg.find(struct.pack("<q", 8), 8)
    struct.pack_into("<q", msg, at, 10_000)
    with RingWriter.create(ring_path, capacity=1 << 16, align=64) as w:
        ArrowRingWriter(w, arrow_peer.SEQ_SCHEMA).write_encoded(bytes(msg))
    with pytest.raises(RingCorrupt, match="malformed Arrow RecordBatch"):
        with ArrowRingReader(ring_path, timeout=5) as r:
            list(r)


@pytest.mark.timeout(120)
def test_held_arrays_never_change_while_the_writer_keeps_writing(ring_path, peers):
    cap = 1 << 16  # each batch of 64 rows is 2 KiB of columns: the ring wraps many times
    w = peers("seq", ring_path, 64 * 400, 64, cap)
    r = ArrowRingReader(ring_path, timeout=30)
    first = r.read_batch()
    held = batch_to_numpy(first)  # views of the ring
    copies = {k: v.copy() for k, v in held.items()}
    del first
    # Read on and drop everything else: the writer refills the ring up to the held batch
    # (the space before it cannot come back), and then it waits.
    rows = 64
    while True:
        try:
            rb = r.read_batch(timeout=1.0)
        except RingTimeout:
            break
        assert rb is not None
        rows += rb.num_rows
    st = ring_stat(ring_path)
    assert st.write_pos - st.read_pos > cap - 4096, "the writer should have filled the ring"
    assert rows < 64 * 400
    for k in held:
        np.testing.assert_array_equal(held[k], copies[k])
    del held  # the space comes back, the writer goes on
    for rb in r:
        d = batch_to_numpy(rb)
        np.testing.assert_array_equal(d["y"], np.arange(rows, rows + rb.num_rows))
        rows += rb.num_rows
    assert rows == 64 * 400
    r.close()
    assert w.wait(timeout=30) == 0, w.stderr.read()


@pytest.mark.timeout(120)
def test_held_arrays_across_wraps_keep_their_values(ring_path, peers):
    """Hold every 7th batch for a while (the ring wraps under the others), check them at the end."""
    cap = 1 << 18
    n, per = 64 * 600, 64
    w = peers("seq", ring_path, n, per, cap)
    held = []
    rows = 0

    def unchanged(start, d):
        np.testing.assert_array_equal(d["y"], np.arange(start, start + per))
        np.testing.assert_array_equal(d["x"], batch_to_numpy(arrow_peer.seq_batch(start, per))["x"])

    with ArrowRingReader(ring_path, timeout=30) as r:
        for i, rb in enumerate(r):
            d = batch_to_numpy(rb)
            np.testing.assert_array_equal(d["y"], np.arange(rows, rows + rb.num_rows))
            rows += rb.num_rows
            if i % 7 == 0:
                held.append((rows - rb.num_rows, d))
            if len(held) > 8:  # keep a bounded window held so the writer can go on
                unchanged(*held.pop(0))
        for start, d in held:  # the last ones held through the end of the stream
            unchanged(start, d)
    assert rows == n
    assert w.wait(timeout=30) == 0


@pytest.mark.timeout(60)
def test_reader_does_not_hold_space_after_the_arrays_go(ring_path, peers):
    w = peers("seq", ring_path, 64 * 50, 64, 1 << 16)
    with ArrowRingReader(ring_path, timeout=30) as r:
        total = sum(rb.num_rows for rb in r)
    assert total == 64 * 50
    assert w.wait(timeout=30) == 0


@pytest.mark.timeout(60)
def test_read_arrow_batches_from_an_open_reader(ring_path, peers):
    peers("seq", ring_path, 100, 30, 1 << 16)
    from flinktf_ipc.arrow import read_arrow_batches

    r = RingReader.open(ring_path, timeout=30)
    assert [rb.num_rows for rb in read_arrow_batches(r)] == [30, 30, 30, 10]
