"""The ring's own figures (issue 13 items 1, 2, 6, 7), each beside its baseline in the same run.

    python -P bench/ring_bench.py [--rounds 5] [--only read,sleeps,latency,clatency,idle,pair]
                                  [--bench-ring PATH] [--rt]

Every figure is the median of --rounds runs with the min-max range; the variants of one figure
run interleaved (A B A B ...), so machine noise hits them alike. Prints Markdown (the ring
sections of docs/BENCHMARKS.md are made from it).

- read: a Python loop of RingReader.read() against `for rec in reader` and against
  read_batch(1) per record (what read() was), the C writer feeding 64-byte records.
- sleeps: how often a writer sleeps on its futex when the reader is slower than it (C reader
  spending ~1 µs per record, bench/c/bench_wakeups.c): voluntary context switches of the writer
  per million records, C writer (its thread) and Java writer (WriterBench; the JVM's other
  threads are in its count too). Build bench_wakeups against another fti_ring.c to compare
  library versions (the hysteresis is the reader's).
- latency: a Java write to a sleeping Python read() returning, one record every ~1 ms, and the
  reader thread's CPU share meanwhile (its spin before each sleep).
- clatency: the same from a C writer process to a C reader (bench_wakeups --latency), a record
  every 1 ms and every 30 µs (where the adaptive spin catches records without sleeping).
- idle: the CPU share of a reader thread blocked in read() for --idle-seconds with no record.
- pair: the C ring beside a bare two-process ring (busy spin, no checks, length + payload,
  publish every 16 records), both readers copying each record out, 8 MiB ring.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import flinktf_ipc
from flinktf_ipc import RingReader, default_ring_dir

ROOT = Path(__file__).resolve().parents[1]


def fmt_range(values: list[float], scale: float = 1.0, unit: str = "", digits: int = 3) -> str:
    v = [x / scale for x in values]
    return (f"{statistics.median(v):.{digits}g}{unit} ({min(v):.{digits}g}–{max(v):.{digits}g})")


def build_bench_ring() -> str:
    build = ROOT / "build" / "bench"
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build), "-DFTI_BUILD_TESTS=ON", "-DFTI_BUILD_JAVA=OFF",
                    f"-DFTI_PY_EXECUTABLE={sys.executable}"], check=True, capture_output=True)
    for target in ("bench_ring", "bench_wakeups"):
        subprocess.run(["cmake", "--build", str(build), "--target", target], check=True, capture_output=True)
    return str(build / "bench_ring")


def _jar() -> str | None:
    jar = Path(flinktf_ipc.__file__).resolve().parent / "jars" / "flinktf-ipc.jar"
    return str(jar) if jar.is_file() else None


def _path(tag: str) -> str:
    return os.path.join(default_ring_dir(), f"bench-{tag}-{os.getpid()}-{time.monotonic_ns()}")


# ---- 1: per-record reads ----------------------------------------------------------------


def read_loop(bench: str, mode: str, n: int = 3_000_000, size: int = 64) -> float:
    path = _path("read")
    writer = subprocess.Popen([bench, "--write", path, str(size), str(n), str(64 << 20)])
    got = 0
    with RingReader.open(path, timeout=30) as r:
        first = r.read(timeout=30)
        assert first is not None
        del first
        got = 1
        t0 = time.perf_counter()
        if mode == "read()":
            read = r.read
            while (rec := read()) is not None:
                got += 1
        elif mode == "for rec in reader":
            for rec in r:  # noqa: B007 - the last view is dropped below
                got += 1
        else:  # read_batch(1) per record: what read() was before it served from a held batch
            while len(b := r.read_batch(1)):
                rec = b[0]
                got += 1
        dt = time.perf_counter() - t0
        del rec
    writer.wait(timeout=60)
    assert got == n, (got, n)
    return (n - 1) / dt


# ---- 2: writer sleeps with a slow reader -------------------------------------------------


def c_writer_sleeps(wakeups: str, n: int = 1_000_000) -> float:
    """bench_wakeups: writer thread and slow reader thread; the writer thread's own switches."""
    out = subprocess.run([wakeups, str(n)], check=True, capture_output=True, text=True).stdout
    return float(json.loads(out)["writer_sleeps_per_million"])


def java_writer_sleeps(wakeups: str, jar: str, n: int = 2_000_000) -> float:
    """WriterBench against bench_wakeups --read; the JVM's voluntary switches (all its threads)."""
    path = _path("sleeps")
    writer = subprocess.Popen(["java", "-cp", jar, "io.flinktf.ipc.bench.WriterBench", path, str(1 << 20), str(n),
                               "64", "8"], stdout=subprocess.DEVNULL)
    subprocess.run([wakeups, "--read", path], check=True)
    _, _, usage = os.wait4(writer.pid, 0)
    return usage.ru_nvcsw / (n / 1e6)


# ---- 6: wake-up latency -------------------------------------------------------------------


def wakeup_latency(jar: str, n: int = 1500) -> tuple[float, float, float]:
    """p50, p99 (µs) and the reader's CPU share while it waits between records (one every ~1 ms)."""
    path = _path("latency")
    writer = subprocess.Popen(["java", "-cp", jar, "io.flinktf.ipc.bench.WriterBench", path, str(1 << 20), str(n),
                               "16", "8", "--latency"], stdout=subprocess.DEVNULL)
    lat = []
    with RingReader.open(path, timeout=30) as r:
        while (rec := r.read(timeout=30)) is not None:
            lat.append(time.monotonic_ns() - int.from_bytes(rec[8:16], "little"))
            del rec
            if len(lat) == 50:  # the first ones include the JIT warming up
                cpu0, wall0 = _thread_cpu_s(), time.monotonic()
        cpu = (_thread_cpu_s() - cpu0) / (time.monotonic() - wall0)
    writer.wait(timeout=60)
    us = np.array(lat[50:]) / 1e3
    return float(np.percentile(us, 50)), float(np.percentile(us, 99)), cpu


def _thread_cpu_s() -> float:
    return time.clock_gettime(time.CLOCK_THREAD_CPUTIME_ID)


def idle_reader_cpu(seconds: float = 10.0) -> float:
    """CPU share of a reader blocked in read() on a ring that gets no record (its writer idles)."""
    path = _path("idle")
    from flinktf_ipc import RingTimeout, RingWriter

    with RingWriter.create(path, capacity=1 << 20) as w, RingReader.open(path) as r:
        w.write(b"x" * 16)
        assert r.read() is not None  # a record came and went: the reader waits on a live stream
        cpu0, wall0 = _thread_cpu_s(), time.monotonic()
        try:
            r.read(timeout=seconds)
        except RingTimeout:
            pass
        return (_thread_cpu_s() - cpu0) / (time.monotonic() - wall0)


# ---- 7: the C ring beside a bare ring ------------------------------------------------------


RT: list[str] = []  # --rt: the C benches under SCHED_FIFO (see main)


def pair(bench: str, size: int, n: int, cap: int = 8 << 20) -> dict[str, float]:
    out = subprocess.run([*RT, bench, "--pair", str(size), str(n), str(cap), "16"], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    return json.loads(out)


def c_latency(wakeups: str, gap_us: float, n: int) -> dict[str, float]:
    """bench_wakeups --latency: C writer process -> C reader, a record every gap_us."""
    out = subprocess.run([*RT, wakeups, "--latency", str(gap_us), str(n)], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--only", default="read,sleeps,latency,clatency,idle,pair")
    ap.add_argument("--rt", action="store_true",
                    help="run the C benches under SCHED_FIFO (chrt -f 10; each side pinned to its own core) so "
                         "that other jobs on a shared machine do not preempt them; needs the privilege")
    ap.add_argument("--idle-seconds", type=float, default=10.0)
    ap.add_argument("--bench-ring")
    args = ap.parse_args()
    bench = args.bench_ring or build_bench_ring()
    if args.rt:
        RT[:] = ["chrt", "-f", "10"]
    only = set(args.only.split(","))
    jar = _jar()
    print(f"# flinktf_ipc from {Path(flinktf_ipc.__file__).parent}; load {os.getloadavg()[0]:.1f}", flush=True)

    if "read" in only:
        modes = ["read()", "for rec in reader", "read_batch(1) per record"]
        runs: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(args.rounds):
            for m in modes:
                runs[m].append(read_loop(bench, m))
        print("\n| 64 B records, C writer → Python | records/s, median (min–max) |\n|---|---|")
        for m in modes:
            print(f"| `{m}` | {fmt_range(runs[m], 1e6, ' M')} |")
        print(f"\nread() ÷ for-loop: {statistics.median(runs['read()']) / statistics.median(runs[modes[1]]):.2f}")

    if "sleeps" in only:
        wakeups = str(Path(bench).with_name("bench_wakeups"))
        sl: dict[str, list[float]] = {"C writer": [], "Java writer": []}
        for _ in range(args.rounds):
            sl["C writer"].append(c_writer_sleeps(wakeups))
            if jar:
                sl["Java writer"].append(java_writer_sleeps(wakeups, jar))
        print("\n| writer, 64 B records, 1 MiB ring, reader ~1 µs per record | writer sleeps per M records |"
              "\n|---|---|")
        for c, v in sl.items():
            if v:
                print(f"| {c} | {fmt_range(v, 1, '', 3)} |")

    if "latency" in only and jar:
        p50s, p99s, cpus = [], [], []
        for _ in range(args.rounds):
            a, b, c = wakeup_latency(jar)
            p50s.append(a)
            p99s.append(b)
            cpus.append(c)
        print(f"\nwake-up latency Java write → Python read(): p50 {fmt_range(p50s, 1, ' µs')}, "
              f"p99 {fmt_range(p99s, 1, ' µs')}; reader CPU between records {fmt_range(cpus, 0.01, '%', 2)}")

    if "clatency" in only:
        wakeups = str(Path(bench).with_name("bench_wakeups"))
        print("\n| C writer → C reader, a record every | p50 µs | p99 µs | reader CPU |\n|---|---|---|---|")
        for gap, n in ((1000, 2000), (30, 20000)):
            lat = [c_latency(wakeups, gap, n) for _ in range(args.rounds)]
            print(f"| {gap} µs | {fmt_range([x['p50_us'] for x in lat])} | {fmt_range([x['p99_us'] for x in lat])} | "
                  f"{fmt_range([x['reader_cpu'] for x in lat], 0.01, '%', 2)} |")

    if "idle" in only:
        idle = [idle_reader_cpu(args.idle_seconds) for _ in range(args.rounds)]
        print(f"\nreader blocked in read() for {args.idle_seconds:g} s with no record: CPU "
              f"{fmt_range(idle, 0.01, '%', 2)}")

    if "pair" in only:
        print("\n| record | C ring (copy out) | bare ring (copy out) | ring ÷ bare | ring ÷ best bare |"
              "\n|---|---|---|---|---|")
        for size, n in ((64, 20_000_000), (1024, 4_000_000)):
            ring, bare = [], []
            for _ in range(args.rounds):
                r = pair(bench, size, n)
                ring.append(r["ring_records_per_s"])
                bare.append(r["bare_records_per_s"])
            ratio = [a / b for a, b in zip(ring, bare, strict=True)]
            print(f"| {size} B | {fmt_range(ring, 1e6, ' M/s')} | {fmt_range(bare, 1e6, ' M/s')} | "
                  f"{fmt_range(ratio, 1, '×', 2)} | {statistics.median(ring) / max(bare):.2f}× |")


if __name__ == "__main__":
    main()
