"""An Arrow ring writer run as a separate process by the codec/arrow/dataset tests.

`python arrow_peer.py ROLE PATH ARGS...`; imports pyarrow but not TensorFlow, so it starts fast.
Prints "ready" once the stream's header and schema are written (for roles that wait).
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import pyarrow as pa

from flinktf_ipc import RingWriter
from flinktf_ipc.arrow import ArrowRingWriter
from flinktf_ipc.codecs import codec_header

TENSOR = pa.fixed_shape_tensor(pa.float32(), [2, 3])
TYPES_SCHEMA = pa.schema([
    ("i8", pa.int8()), ("i16", pa.int16()), ("i32", pa.int32()), ("i64", pa.int64()),
    ("f32", pa.float32()), ("f64", pa.float64()), ("b", pa.bool_()),
    ("s", pa.string()), ("bin", pa.binary()),
    ("v3", pa.list_(pa.float32(), 3)), ("m22", pa.list_(pa.list_(pa.int64(), 2), 2)), ("t23", TENSOR),
    ("ri", pa.list_(pa.int32())), ("rs", pa.list_(pa.string())),
])
TEXTS = ["", "a", "naïve", "日本語テキスト", "emoji 🚀✨", "Ωmega\u0000nul"]


def types_batch(start: int, n: int) -> pa.RecordBatch:
    """Rows start..start+n of the all-types stream: every value derived from the row number."""
    i = np.arange(start, start + n)
    cols = [
        pa.array((i % 256 - 128).astype(np.int8)), pa.array((i * 7 % 65536 - 32768).astype(np.int16)),
        pa.array((i * 100003 - 2**31 // 2).astype(np.int32)), pa.array(i.astype(np.int64) * (2**40) + 1),
        pa.array(i.astype(np.float32) / 4), pa.array(i.astype(np.float64) / 3), pa.array(i % 3 == 0),
        pa.array([TEXTS[k % len(TEXTS)] * (1 + (k // 6) % 2) for k in i.tolist()], pa.string()),
        pa.array([bytes([k % 256]) * (k % 4) for k in i.tolist()], pa.binary()),
        pa.FixedSizeListArray.from_arrays(pa.array(np.arange(3 * start, 3 * (start + n), dtype=np.float32)), 3),
        pa.FixedSizeListArray.from_arrays(pa.FixedSizeListArray.from_arrays(
            pa.array(np.arange(4 * start, 4 * (start + n), dtype=np.int64)), 2), 2),
        pa.ExtensionArray.from_storage(TENSOR, pa.FixedSizeListArray.from_arrays(
            pa.array(np.arange(6 * start, 6 * (start + n), dtype=np.float32)), 6)),
        pa.array([list(range(k % 4)) for k in i.tolist()], pa.list_(pa.int32())),
        pa.array([[TEXTS[(k + j) % len(TEXTS)] for j in range(k % 3)] for k in i.tolist()], pa.list_(pa.string())),
    ]
    return pa.record_batch(cols, schema=TYPES_SCHEMA)


SEQ_SCHEMA = pa.schema([("x", pa.list_(pa.float32(), 4)), ("y", pa.int64())])


def seq_batch(start: int, n: int, tag: int = 0) -> pa.RecordBatch:
    """Rows with y = tag * 10**9 + row number and x = [4y, 4y+1, 4y+2, 4y+3] (as float32 of row)."""
    seq = np.arange(start, start + n, dtype=np.int64) + tag * 10**9
    x = (np.arange(start * 4, (start + n) * 4) % 1_000_003).astype(np.float32)
    return pa.record_batch([pa.FixedSizeListArray.from_arrays(pa.array(x), 4), pa.array(seq)], schema=SEQ_SCHEMA)


LINEAR_W = np.array([0.5, -1.0, 2.0, 0.25, -0.75, 1.5, 0.0, -2.0], np.float32)
LINEAR_B = 0.3
LINEAR_SCHEMA = pa.schema([("x", pa.list_(pa.float32(), 8)), ("y", pa.float32())])


def main() -> None:
    role, path, *args = sys.argv[1:]
    if role == "types":
        n, per = int(args[0]), int(args[1])
        with ArrowRingWriter.create(path, TYPES_SCHEMA, capacity=1 << 22, timeout=60) as w:
            w.write_batch(types_batch(0, 0))
            for s in range(0, n, per):
                w.write_batch(types_batch(s, min(per, n - s)))
                w.write_batch(types_batch(0, 0))  # empty batches are allowed anywhere
    elif role == "seq":
        n, per, cap = int(args[0]), int(args[1]), int(args[2])
        tag = int(args[3]) if len(args) > 3 else 0
        with ArrowRingWriter.create(path, SEQ_SCHEMA, capacity=cap, timeout=60) as w:
            for s in range(0, n, per):
                w.write_batch(seq_batch(s, min(per, n - s), tag))
    elif role == "linear":
        n, per, seed = int(args[0]), int(args[1]), int(args[2])
        rng = np.random.default_rng(seed)
        with ArrowRingWriter.create(path, LINEAR_SCHEMA, capacity=1 << 22, timeout=60) as w:
            for s in range(0, n, per):
                k = min(per, n - s)
                x = rng.standard_normal((k, 8), dtype=np.float32)
                y = x @ LINEAR_W + LINEAR_B
                w.write_batch(pa.record_batch([pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 8),
                                               pa.array(y.astype(np.float32))], schema=LINEAR_SCHEMA))
    elif role == "die":  # a writer killed mid-stream: header, schema, one batch, then SIGKILL
        w = ArrowRingWriter.create(path, SEQ_SCHEMA, capacity=1 << 20)
        w.write_batch(seq_batch(0, 10))
        print("ready", flush=True)
        sys.stdin.readline()
        os.kill(os.getpid(), signal.SIGKILL)
    elif role == "raw":  # records given as hex arguments, written as they are (align 64)
        with RingWriter.create(path, capacity=1 << 20, align=64) as w:
            for a in args:
                w.write(codec_header("arrow") if a == "HEADER" else
                        SEQ_SCHEMA.serialize() if a == "SCHEMA" else bytes.fromhex(a))
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main()
