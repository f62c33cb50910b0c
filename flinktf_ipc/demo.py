"""A two-process demonstration of the ring: a writer process streams records, this process
reads them as zero-copy batches and prints the throughput as it goes.

Run with ``flinktf-ipc demo`` (or ``make demo``).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import time

import numpy as np

from .ring import RingReader, RingWriter, ring_stat


def _writer(path: str, records: int, size: int) -> None:
    rows = np.arange(1024 * size // 8, dtype=np.uint64).reshape(1024, size // 8)
    with RingWriter.create(path, capacity=64 << 20) as w:
        for start in range(0, records, 1024):
            rows[:, 0] = np.arange(start, start + 1024, dtype=np.uint64)
            w.write_many(list(rows[: min(1024, records - start)]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="flinktf-ipc demo", description=__doc__)
    ap.add_argument("--records", type=int, default=5_000_000)
    ap.add_argument("--size", type=int, default=256, help="record size in bytes (multiple of 8)")
    args = ap.parse_args(argv)
    path = f"/dev/shm/flinktf-demo-{os.getpid()}"
    proc = mp.get_context("spawn").Process(target=_writer, args=(path, args.records, args.size))
    proc.start()
    seen, expected_first, last_print = 0, 0, 0.0
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
