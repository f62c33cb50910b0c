"""A ring peer run as a separate process by the tests: `python ring_peer.py ROLE PATH ...`.

Records written by `stress-write` are u64 words: [seq, seq*K+1, seq*K+2, ...], so a reader can
verify sequence and every byte of every record with vectorized NumPy.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from flinktf_ipc import RingReader, RingWriter

K = 0x9E3779B97F4A7C15
GROUP = 4096


def stress_sizes(n: int, seed: int = 7) -> np.ndarray:
    """Record sizes in bytes: multiples of 8 from 8 to 4096, mostly small."""
    rng = np.random.default_rng(seed)
    words = np.where(rng.random(n) < 0.9, rng.integers(1, 16, n), rng.integers(1, 512, n))
    return (words * 8).astype(np.uint32)


def expected_words(seqs: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenated u64 words of records `seqs` with `counts` words each."""
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    within = np.arange(total, dtype=np.uint64) - starts.astype(np.uint64)
    with np.errstate(over="ignore"):
        base = np.repeat(seqs.astype(np.uint64) * np.uint64(K), counts)
        out = base + within
    out[starts == np.arange(total)] = np.repeat(seqs.astype(np.uint64), counts)[starts == np.arange(total)]
    return out


def stress_write(path: str, n: int, capacity: int) -> None:
    sizes = stress_sizes(n)
    with RingWriter.create(path, capacity=capacity) as w:
        for start in range(0, n, GROUP):
            seqs = np.arange(start, min(start + GROUP, n), dtype=np.uint64)
            counts = sizes[start:start + len(seqs)] // 8
            words = expected_words(seqs, counts)
            view = memoryview(words).cast("B")
            ends = np.cumsum(counts) * 8
            begins = ends - counts * 8
            w.write_many([view[b:e] for b, e in zip(begins.tolist(), ends.tolist(), strict=True)], timeout=60)


def stress_read(path: str, n: int) -> None:
    sizes = stress_sizes(n)
    seen = 0
    with RingReader.open(path, timeout=30) as r:
        for batch in r.iter_batches(GROUP, timeout=60):
            m = len(batch)
            if not np.array_equal(batch.lengths, sizes[seen:seen + m]):
                raise SystemExit(f"record sizes differ in batch starting at {seen}")
            got = np.concatenate([np.frombuffer(rec, np.uint64) for rec in batch])
            want = expected_words(np.arange(seen, seen + m, dtype=np.uint64), batch.lengths // 8)
            if not np.array_equal(got, want):
                bad = int(np.argmax(got != want))
                raise SystemExit(f"payload mismatch near record {seen}, word {bad}")
            seen += m
    if seen != n:
        raise SystemExit(f"read {seen} records, expected {n}")
    print(f"verified {seen} records")


def write_then_hang(path: str, n: int) -> None:
    """Writes n records, says so, then waits to be killed."""
    w = RingWriter.create(path, capacity=1 << 16)
    for i in range(n):
        w.write(i.to_bytes(8, "little"))
    print("written", flush=True)
    time.sleep(600)


def read_then_hang(path: str) -> None:
    """Opens as reader, reads nothing, waits to be killed."""
    reader = RingReader.open(path, timeout=30)
    print("attached", flush=True)
    time.sleep(600)
    reader.close()


def write_then_drop(path: str, n: int, how: str) -> None:
    """Writes n records, then leaves without close(): `del` (the writer is collected) or an
    exception that ends the process."""
    w = RingWriter.create(path, capacity=1 << 16)
    for i in range(n):
        w.write(i.to_bytes(8, "little"))
    print("written", flush=True)
    input()  # the test attached its reader
    if how == "raise":
        raise RuntimeError("the producer failed")
    del w


def read_take_hang(path: str) -> None:
    """Opens as reader, takes one batch and keeps it (never released), waits to be killed."""
    reader = RingReader.open(path, timeout=30)
    batch = reader.read_batch(1000, timeout=30)
    print(f"took {len(batch)}", flush=True)
    time.sleep(600)


def write_pattern(path: str, n: int, size: int) -> None:
    """Writes n records of `size` bytes, record i filled with i & 0xFF. A write that finds the
    ring full for 1 s prints "full at I" once, then waits as long as it takes."""
    from flinktf_ipc import RingTimeout

    with RingWriter.create(path, capacity=1 << 16) as w:
        told = False
        for i in range(n):
            rec = bytes([i & 0xFF]) * size
            try:
                w.write(rec, timeout=None if told else 1.0)
            except RingTimeout:
                print(f"full at {i}", flush=True)
                told = True
                w.write(rec)


if __name__ == "__main__":
    role, path, *rest = sys.argv[1:]
    if role == "stress-write":
        stress_write(path, int(rest[0]), int(rest[1]))
    elif role == "stress-read":
        stress_read(path, int(rest[0]))
    elif role == "write-hang":
        write_then_hang(path, int(rest[0]))
    elif role == "write-pattern":
        write_pattern(path, int(rest[0]), int(rest[1]))
    elif role == "write-drop":
        write_then_drop(path, int(rest[0]), rest[1])
    elif role == "read-take-hang":
        read_take_hang(path)
    elif role == "read-hang":
        read_then_hang(path)
    else:
        raise SystemExit(f"unknown role {role}")
