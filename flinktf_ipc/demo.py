"""A two-process demonstration of the ring alone (no Flink, no TensorFlow): a writer process
streams numbered records, this process reads them as zero-copy batches, checks their order and
prints the throughput of the last few seconds as it goes, then the average over the whole run.

Run with ``flinktf-ipc demo --example ring``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import math
import multiprocessing as mp
import os
import signal
import sys
import time
from typing import Any

import numpy as np

from .errors import PeerLost, RingClosed, RingError
from .ring import RingReader, RingWriter, default_ring_dir, ring_stat

RATE_WINDOW = 5.0  # seconds: the live rates are over the last few seconds, not since the start


class WindowRate:
    """Rates over the last ``window`` seconds from cumulative counters sampled now and then (a
    rate since the start keeps falling once the data stops, and hides a slow phase)."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self.samples: collections.deque[tuple[float, tuple[float, ...]]] = collections.deque()

    def add(self, now: float, *counts: float) -> tuple[float, ...]:
        """Records the counters at ``now``; returns each one's rate per second over the window
        (over the time since the first sample while that is shorter). A counter that went down
        (a restarted worker counts from 0 again) starts the window afresh: no negative rate."""
        if self.samples and any(c < b for c, b in zip(counts, self.samples[-1][1], strict=True)):
            self.samples.clear()
        self.samples.append((now, counts))
        # keep one sample at least `window` old, so the rate spans the whole window
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        t0, c0 = self.samples[0]
        dt = now - t0
        return tuple((c - b) / dt if dt > 0 else 0.0 for c, b in zip(counts, c0, strict=True))


def _writer(path: str, records: int, size: int) -> None:
    # A terminal's Ctrl-C reaches this process too: the reader side decides and ends it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    rows = np.arange(1024 * size // 8, dtype=np.uint64).reshape(1024, size // 8)
    try:
        with RingWriter.create(path, capacity=64 << 20) as w:
            for start in range(0, records, 1024):
                rows[:, 0] = np.arange(start, start + 1024, dtype=np.uint64)
                w.write_many(list(rows[: min(1024, records - start)]))
    except (RingClosed, PeerLost):  # the reader stopped (cancelled, failed): it reports, not this process
        raise SystemExit(1) from None


MAX_SIZE = 1 << 20


def main(argv: list[str] | None = None, prog: str = "flinktf-ipc demo --example ring") -> int:
    ap = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").split("\n\nRun ")[0],
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

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, on_term)  # SIGTERM cleans up as Ctrl-C does
    proc = mp.get_context("spawn").Process(target=_writer, args=(path, args.records, args.size))
    proc.start()
    try:
        return _read(path, proc, args)
    except KeyboardInterrupt:
        for sig in (signal.SIGINT, signal.SIGTERM):  # one is enough: clean up undisturbed
            signal.signal(sig, signal.SIG_IGN)
        print("\ncancelled", file=sys.stderr)
        return 130
    except RingError as e:  # the writer died, the ring is damaged: one line, not a trace
        print(f"\n{prog}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(10)
        for sig, handler in old.items():
            signal.signal(sig, handler)
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
    rates = WindowRate()
    with RingReader.open(path, timeout=30) as r:
        t0 = time.perf_counter()
        rates.add(t0, 0)
        for batch in r.iter_batches(4096, timeout=30):
            seqs = batch.as_array(np.uint64)[:, 0]  # zero-copy view of every record's sequence number
            if seqs[0] != expected_first or seqs[-1] != expected_first + len(seqs) - 1:
                raise SystemExit(f"records out of order at {expected_first}")
            expected_first += len(seqs)
            seen += len(batch)
            now = time.perf_counter()
            if now - last_print > 0.5:
                st = ring_stat(path)
                (rate,) = rates.add(now, seen)
                print(f"\r{seen:>12,} records  {rate / 1e6:6.2f} M records/s  {rate * args.size / 1e9:6.2f} GB/s "
                      f"(last {math.ceil(min(now - t0, RATE_WINDOW))} s)  ring fill {st.fill:5.1%}", end="", flush=True)
                last_print = now
    dt = time.perf_counter() - t0
    proc.join()
    print(f"\nread {seen:,} records of {args.size} B in order in {dt:.2f} s: average "
          f"{seen / dt / 1e6:.2f} M records/s, {seen * args.size / dt / 1e9:.2f} GB/s")
    return 0 if seen == args.records and proc.exitcode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
