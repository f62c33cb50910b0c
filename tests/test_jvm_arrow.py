"""The arrow codec from the JVM: Java's hand-written Arrow IPC encoder (io.flinktf.ipc.arrow) writes
record batches into a ring; pyarrow is the judge of every byte.

- Cross-language: src/test/java/io/flinktf/ipc/arrow/ArrowCrossLangWriter.java (compiled here
  against the installed jar) writes the rows of ArrowRows.java; ``expected_row`` computes the same
  rows in Python, and pyarrow's ``read_message`` / ``read_record_batch`` must decode exactly them.
- Embedded Flink: a PyFlink job (SQL datagen -> Rows, no Python per record) -> ``arrow_sink``.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from conftest import compile_java

from flinktf_ipc import RingReader
from flinktf_ipc.arrow import ArrowRingReader, batch_to_numpy, column_to_numpy
from flinktf_ipc.codecs import parse_codec_header

flink = pytest.importorskip("flinktf_ipc.flink")

REPO = Path(__file__).resolve().parent.parent
JAVA_SRC = REPO / "src/test/java/io/flinktf/ipc/arrow"

NAMES = ["i8", "i16", "i32", "i64", "f32", "f64", "b", "s", "bin", "x", "img", "rag", "boxed", "bools", "strs"]
EXPECTED_SCHEMA = pa.schema([
    pa.field("i8", pa.int8()), pa.field("i16", pa.int16()), pa.field("i32", pa.int32()),
    pa.field("i64", pa.int64()), pa.field("f32", pa.float32()), pa.field("f64", pa.float64()),
    pa.field("b", pa.bool_()), pa.field("s", pa.string()), pa.field("bin", pa.binary()),
    pa.field("x", pa.list_(pa.list_(pa.float32(), 3), 2), metadata={"flinktf.shape": "[2,3]"}),
    pa.field("img", pa.list_(pa.int8(), 4), metadata={"flinktf.shape": "[4]"}),
    pa.field("rag", pa.list_(pa.int64())), pa.field("boxed", pa.list_(pa.float32())),
    pa.field("bools", pa.list_(pa.bool_())), pa.field("strs", pa.list_(pa.string())),
])


def _signed(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def text(i: int) -> str:
    return f"zeile-{i}" + "-äöü-日本-🙂" * (i % 3)


def expected_row(i: int) -> dict[str, Any]:
    """Row i of ArrowRows.java, as pyarrow's to_pylist gives it."""
    v: list[Any] = [
        _signed(i * 7, 8), _signed(i * 1000, 16), _signed(i * 2654435761, 32),
        _signed(i * 0x9E3779B97F4A7C15, 64), i * 0.5 - 3, i / 3.0, i % 3 == 0, text(i),
        bytes((i + k) & 0xFF for k in range(i % 7)),
        [[float(i * 6 + r * 3 + c) for c in range(3)] for r in range(2)],
        [_signed(i, 8), _signed(-i, 8), 1, -1],
        [i * 10 + k for k in range(i % 4)],
        [None if (i + k) % 4 == 3 else (i + k) / 4 for k in range(i % 3)],
        [(i + k) % 2 == 0 for k in range(i % 3)],
        [None if (i + k) % 4 == 3 else f"ß{i + k}" for k in range(i % 3)],
    ]
    return {n: (None if (i + c) % 11 == 0 else v[c]) for c, n in enumerate(NAMES)}


def test_expected_row_has_non_ascii_and_nulls_in_every_column() -> None:
    rows = [expected_row(i) for i in range(40)]
    assert any("🙂" in r["s"] for r in rows if r["s"])
    for n in NAMES:
        assert any(r[n] is None for r in rows), n


@pytest.fixture(scope="session")
def java_cp(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Class path: the compiled test writer, the installed connector jar and flink-dist."""
    return compile_java(tmp_path_factory.mktemp("java-arrow"),
                        [JAVA_SRC / "ArrowRows.java", JAVA_SRC / "ArrowCrossLangWriter.java"], with_flink_dist=True)


def run_writer(cp: str, path: Path, capacity: int, sizes: list[int], *mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["java", "-cp", cp, "io.flinktf.ipc.arrow.ArrowCrossLangWriter", str(path),
                             str(capacity), ",".join(map(str, sizes)), *mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def check_layout(rec: memoryview, msg: pa.ipc.Message) -> None:
    """The encapsulated layout of FORMAT.md, and every body buffer 64-aligned in memory."""
    cont, meta_len = struct.unpack_from("<Ii", rec, 0)
    assert cont == 0xFFFFFFFF
    body = msg.body.size if msg.body is not None else 0
    assert len(rec) == 8 + meta_len + body, (len(rec), meta_len, body)
    if msg.type == "record batch":
        assert (8 + meta_len) % 64 == 0, "the body starts at a multiple of 64 from the record start"
        assert body % 64 == 0
    else:
        assert (8 + meta_len) % 8 == 0 and body == 0


def check_aligned(rb: pa.RecordBatch) -> None:
    for i, col in enumerate(rb.columns):
        for b in col.buffers():
            if b is not None and b.size:
                assert b.address % 64 == 0, f"column {rb.schema.names[i]}: buffer at {b.address:#x}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sizes,capacity", [
    ([0, 1, 7, 64, 0, 1000, 3], 4 << 20),
    ([1, 250, 3, 249, 17, 250, 250, 2, 250, 250, 250, 250, 250, 1], 256 << 10),  # wraps the ring many times
], ids=["edges", "wrap"])
def test_java_batches_decode_in_pyarrow_to_exactly_the_rows(java_cp: str, tmp_path: Path,
                                                            sizes: list[int], capacity: int) -> None:
    path = tmp_path / "a.ring"
    proc = run_writer(java_cp, path, capacity, sizes)
    try:
        with RingReader.open(path, timeout=60) as r:
            rec = r.read(timeout=60)
            assert rec is not None
            assert parse_codec_header(rec) == ("arrow", {})
            rec = r.read(timeout=60)
            assert rec is not None
            msg = pa.ipc.read_message(pa.py_buffer(rec))
            assert msg.type == "schema"
            check_layout(rec, msg)
            schema = pa.ipc.read_schema(msg)
            assert schema.equals(EXPECTED_SCHEMA, check_metadata=True), schema
            i = 0
            for n in sizes:
                rec = r.read(timeout=60)
                assert rec is not None, "end of stream too early"
                msg = pa.ipc.read_message(pa.py_buffer(rec))
                assert msg.type == "record batch"
                check_layout(rec, msg)
                rb = pa.ipc.read_record_batch(msg, schema)
                rb.validate(full=True)
                assert rb.num_rows == n
                check_aligned(rb)
                got = rb.to_pylist()
                for k in range(n):
                    assert got[k] == expected_row(i + k), f"row {i + k}"
                i += n
                del rb, msg, rec, got
            assert r.read(timeout=60) is None, "end of stream after the last batch"
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
        proc.wait(timeout=30)


# ArrowCrossLangWriter.DIRECT: the columns with a fixed size per row
DIRECT = ["i8", "i16", "i32", "i64", "f32", "f64", "x", "img"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sizes,capacity", [
    ([1, 7, 64, 1000, 3, 999], 4 << 20),
    ([1, 250, 3, 249, 17, 250, 250, 2, 250, 250, 250, 250, 250, 1], 256 << 10),  # wraps the ring many times
], ids=["edges", "wrap"])
def test_java_batches_encoded_in_the_ring_decode_in_pyarrow_to_exactly_the_rows(
        java_cp: str, tmp_path: Path, sizes: list[int], capacity: int) -> None:
    """ArrowRingBatcher (rows written straight into the reserved ring frame, short batches moved
    down, bitmaps added when there are nulls): pyarrow reads exactly the rows."""
    path = tmp_path / "d.ring"
    proc = run_writer(java_cp, path, capacity, sizes, "direct")
    try:
        with RingReader.open(path, timeout=60) as r:
            rec = r.read(timeout=60)
            assert rec is not None and parse_codec_header(rec) == ("arrow", {})
            rec = r.read(timeout=60)
            assert rec is not None
            schema = pa.ipc.read_schema(pa.ipc.read_message(pa.py_buffer(rec)))
            want_schema = pa.schema([EXPECTED_SCHEMA.field(n) for n in DIRECT])
            assert schema.equals(want_schema, check_metadata=True), schema
            i = 0
            for n in sizes:
                rec = r.read(timeout=60)
                assert rec is not None, "end of stream too early"
                msg = pa.ipc.read_message(pa.py_buffer(rec))
                assert msg.type == "record batch"
                check_layout(rec, msg)
                rb = pa.ipc.read_record_batch(msg, schema)
                rb.validate(full=True)
                assert rb.num_rows == n
                check_aligned(rb)
                got = rb.to_pylist()
                for k in range(n):
                    want = expected_row(i + k)
                    assert got[k] == {c: want[c] for c in DIRECT}, f"row {i + k}"
                i += n
                del rb, msg, rec, got
            assert r.read(timeout=60) is None, "end of stream after the last batch"
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
        proc.wait(timeout=30)


@pytest.mark.timeout(120)
def test_python_reader_null_policy_and_shapes_on_java_batches(java_cp: str, tmp_path: Path) -> None:
    """flinktf_ipc.arrow's reader on the Java stream: fixed shapes become (n, 2, 3) views without a
    copy, nulls raise naming the column unless a default is given."""
    path = tmp_path / "p.ring"
    proc = run_writer(java_cp, path, 4 << 20, [0, 11, 10])
    try:
        with ArrowRingReader(str(path), timeout=60) as r:
            assert r.schema.equals(EXPECTED_SCHEMA, check_metadata=True)
            batches = list(r)
        assert [b.num_rows for b in batches] == [0, 11, 10]
        # rows 11..20: column c is null where (i + c) % 11 == 0, so every column has one null
        last = batches[2]
        with pytest.raises(ValueError, match="column 'x'"):
            column_to_numpy(last.column("x"), "x")
        x = column_to_numpy(last.column("x"), "x", default=-1.0)
        assert isinstance(x, np.ndarray) and x.shape == (10, 2, 3) and x.dtype == np.float32
        for k in range(10):
            want = expected_row(11 + k)["x"]
            assert (x[k] == -1).all() if want is None else x[k].tolist() == want
        # a batch without nulls in x: a zero-copy view of the ring memory
        rows = [expected_row(i) for i in range(0, 11)]
        first = batches[1]
        no_null = [k for k in range(11) if rows[k]["x"] is not None]
        sub = first.slice(no_null[0], 1)
        view = column_to_numpy(sub.column("x"), "x")
        assert isinstance(view, np.ndarray) and not view.flags.owndata
        assert view.__array_interface__["data"][0] % 64 == 0 or no_null[0] != 0
        cols = batch_to_numpy(last, ["i64", "img"], defaults={"i64": 0, "img": 0})
        assert cols["img"].shape == (10, 4) and cols["img"].dtype == np.int8
        want_i64 = [expected_row(11 + k)["i64"] or 0 for k in range(10)]
        assert cols["i64"].tolist() == want_i64
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        proc.kill()
        proc.wait(timeout=30)
