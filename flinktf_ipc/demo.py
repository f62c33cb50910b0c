"""A two-process demonstration of the ring alone (no Flink, no TensorFlow): a writer process
streams numbered records, this process reads them as zero-copy batches, checks their order and
prints the throughput as it goes.

Run with ``flinktf-ipc demo --example ring``.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import sys
import time
from typing import Any

import numpy as np

from .ring import RingReader, RingWriter, default_ring_dir, ring_stat


def _writer(path: str, records: int, size: int) -> None:
    rows = np.arange(1024 * size // 8, dtype=np.uint64).reshape(1024, size // 8)
    with RingWriter.create(path, capacity=64 << 20) as w:
        for start in range(0, records, 1024):
            rows[:, 0] = np.arange(start, start + 1024, dtype=np.uint64)
            w.write_many(list(rows[: min(1024, records - start)]))


MAX_SIZE = 1 << 20


def main(argv: list[str] | None = None, prog: str = "flinktf-ipc demo --example ring") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__,
                                 epilog=f"example:\n  {prog} --records 1000000 --size 64",
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=5_000_000, help="records to stream (default 5,000,000)")
    ap.add_argument("--size", type=int, default=256,
                    help=f"record size in bytes, a multiple of 8 from 8 to {MAX_SIZE} (default 256)")
    args = ap.parse_args(argv)
    problems = []
    if args.records < 1:
        problems.append(f"--records must be at least 1, got {args.records}")
    if args.size < 8 or args.size > MAX_SIZE or args.size % 8:
        problems.append(f"--size must be a multiple of 8 from 8 to {MAX_SIZE}, got {args.size}")
    if problems:
        for p in problems:
            print(f"{prog}: {p}", file=sys.stderr)
        return 2
    path = os.path.join(default_ring_dir(), f"demo-{os.getpid()}.ring")
    proc = mp.get_context("spawn").Process(target=_writer, args=(path, args.records, args.size))
    proc.start()
    try:
        return _read(path, proc, args)
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        return 130
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(10)
        # Normally the side that leaves last has removed it (a big ring's unmap and unlink may
        # still be running on the reader's cleanup thread): remove only what is left.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _read(path: str, proc: Any, args: argparse.Namespace) -> int:
    seen, expected_first, last_print = 0, 0, 0.0
    deadline = time.monotonic() + 60
    while not os.path.exists(path):  # the writer process starts (an interpreter, numpy) and creates it
        if not proc.is_alive():
            print(f"the writer process exited with status {proc.exitcode} before creating {path}", file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            print(f"the writer process did not create {path} within 60 s", file=sys.stderr)
            return 1
        time.sleep(0.05)
    with RingReader.open(path, timeout=30) as r:
        t0 = time.perf_counter()
        for batch in r.iter_batches(4096, timeout=30):
            seqs = batch.as_array(np.uint64)[:, 0]  # zero-copy view of every record's sequence number
            if seqs[0] != expected_first or seqs[-1] != expected_first + len(seqs) - 1:
                raise SystemExit(f"records out of order at {expected_first}")
            expected_first += len(seqs)
            seen += len(batch)
            now = time.perf_counter()
            if now - last_print > 0.5:
                st = ring_stat(path)
                rate = seen / (now - t0)
                print(f"\r{seen:>12,} records  {rate / 1e6:6.2f} M records/s  "
                      f"{rate * args.size / 1e9:6.2f} GB/s  ring fill {st.fill:5.1%}", end="", flush=True)
                last_print = now
    dt = time.perf_counter() - t0
    proc.join()
    print(f"\nread {seen:,} records of {args.size} B in order in {dt:.2f} s: "
          f"{seen / dt / 1e6:.2f} M records/s, {seen * args.size / dt / 1e9:.2f} GB/s")
    return 0 if seen == args.records and proc.exitcode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
