"""make bench: every stage beside its baseline, each pair measured in this one run.

Prints the figures and writes them into the marked regions of docs/BENCHMARKS.md (the prose
around them is written by hand and kept), and the plot docs/bench-throughput.png. Sections: the
ring table below, the ring's own figures (bench/ring_bench.py), the Java writer and Flink jobs,
tensors into TensorFlow (bench/bench_dataset.py), the main job (examples/ctr.py).
Ring table paths (payload moved from one process to another, records of a fixed size):
  C ring       C writer -> C reader (bench/c/bench_ring), batches of 64 published at once
  Py ring      C writer -> Python RingReader.read_batch(4096): zero-copy batches
  memcpy       one process copying the same records (the bound for any copy)
  mp.Queue     multiprocessing.Queue put/get per record
  mp.Pipe      multiprocessing Pipe send_bytes/recv_bytes per record
  os.pipe      length-prefixed records streamed through a pipe, split into bytes per record
  TCP          the same over a loopback socket
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from flinktf_ipc import RingReader, default_ring_dir

# Run as `python -P` (the checkout must not shadow the installed package): this directory is not
# on sys.path, so append it for the sibling _common (it holds no flinktf_ipc).
sys.path.append(str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402
from ring_bench import build_bench_ring  # noqa: E402

SIZES = [64, 1024, 65536, 1 << 20]
ROOT = Path(__file__).resolve().parents[1]


# ---- the ring ---------------------------------------------------------------------------


def c_ring(bench: str, size: int) -> dict[str, float]:
    out = subprocess.run([bench, str(size), str(2_000_000_000 if size >= 1024 else 1_000_000_000)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def py_ring(bench: str, size: int) -> tuple[float, float]:
    n = max(2000, min(20_000_000, (1 << 31) // size))
    path = f"/dev/shm/fti-bench-py-{os.getpid()}"
    writer = subprocess.Popen([bench, "--write", path, str(size), str(n)])
    got = touched = 0
    with RingReader.open(path, timeout=10) as r:
        first = r.read_batch(4096, timeout=10)
        got += len(first)
        t0 = time.perf_counter()
        del first
        while True:
            batch = r.read_batch(4096)
            if not len(batch):
                break
            got += len(batch)
            touched += int(batch.as_array()[:, 0].sum())  # the first byte of every record
    dt = time.perf_counter() - t0
    writer.wait()
    if got != n:
        raise SystemExit(f"python reader got {got} of {n}")
    return (got - 1) / dt, (got - 1) * size / dt / 1e9


# ---- the JVM side -----------------------------------------------------------------------


def _jar() -> str | None:
    import flinktf_ipc

    jar = Path(flinktf_ipc.__file__).resolve().parent / "jars" / "flinktf-ipc.jar"
    return str(jar) if jar.is_file() else None


def _java_writer(jar: str, path: str, n: int, size: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(["java", "-cp", jar, "io.flinktf.ipc.bench.WriterBench", path, str(64 << 20), str(n),
                             str(size), "8", *extra], stdout=subprocess.PIPE, text=True)


def java_ring(jar: str, size: int) -> tuple[float, float]:
    """Java RingWriter -> Python read_batch reader; the Java side times first write to last release."""
    n = max(2000, min(20_000_000, (1 << 31) // size))
    path = os.path.join(default_ring_dir(), f"bench-java-{os.getpid()}")
    writer = _java_writer(jar, path, n, size)
    touched = 0
    with RingReader.open(path, timeout=30) as r:
        for batch in r.iter_batches(4096, timeout=60):
            touched += int(batch.as_array()[:, 0].sum())
            del batch
    out = json.loads(writer.communicate(timeout=60)[0])
    return out["records_per_s"], out["gb_per_s"]


def java_wakeup_latency(jar: str, n: int = 2000) -> tuple[float, float]:
    """A record every ~1 ms, so the reader sleeps on its futex in between: p50, p99 in µs."""
    path = os.path.join(default_ring_dir(), f"bench-latency-{os.getpid()}")
    writer = _java_writer(jar, path, n, 16, "--latency")
    lat = []
    with RingReader.open(path, timeout=30) as r:
        for rec in r:
            lat.append(time.monotonic_ns() - int.from_bytes(rec[8:16], "little"))
            del rec  # consumed: the writer's final flush waits for this
    writer.communicate(timeout=60)
    us = np.array(lat[10:]) / 1e3  # the first few include the JIT warming up
    return float(np.percentile(us, 50)), float(np.percentile(us, 99))


def tensors_table(repeat: int) -> str:
    """bench/bench_dataset.py: ring -> ring_dataset -> tensors beside from_generator and memory."""
    out = subprocess.run([sys.executable, "-P", str(ROOT / "bench" / "bench_dataset.py"), "--repeat", str(repeat)],
                         check=True, capture_output=True, text=True, cwd="/tmp").stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith("# "))


def ring_figures(bench: str, rounds: int) -> str:
    """bench/ring_bench.py: per-record reads, writer sleeps, wake-up latency, C ring vs a bare ring."""
    out = subprocess.run([sys.executable, "-P", str(ROOT / "bench" / "ring_bench.py"), "--rounds", str(rounds),
                          "--bench-ring", bench], check=True, capture_output=True, text=True, cwd="/tmp").stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith("# "))


def main_job(rows: int) -> dict[str, float]:
    """examples/ctr.py with and without training: the feed's share of the job's time."""
    seconds = {}
    for mode, extra in (("train", ["--epochs", "1"]), ("feed", ["--no-train"])):  # one pass: the feed's share
        p = subprocess.run([sys.executable, "-P", str(ROOT / "examples" / "ctr.py"), "--rows", str(rows), *extra],
                           capture_output=True, text=True, cwd="/tmp")
        if p.returncode:
            raise SystemExit(f"examples/ctr.py {' '.join(extra)} failed:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
        out = p.stdout
        seconds[mode] = float(out.split("job FINISHED in ")[1].split(" s")[0])
    return seconds


def parse_markdown_rows(text: str, header_start: str) -> dict[str, list[str]]:
    """The rows of the Markdown table whose header starts with header_start: name -> cells."""
    out: dict[str, list[str]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(header_start):
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                cells = [c.strip() for c in row.strip().strip("|").split("|")]
                out[cells[0]] = cells[1:]
            break
    return out


def _number(cell: str) -> float:
    """'1.48 M' -> 1.48e6, '94 K' -> 94e3, '0.420' -> 0.42."""
    value, _, unit = cell.replace(",", "").partition(" ")
    return float(value) * {"M": 1e6, "K": 1e3}.get(unit.strip()[:1], 1.0)


def plot(rows: list, cols: list[str], path: Path, jvm: list | None = None, flink: dict | None = None,
         tensors: str = "") -> None:
    """docs/bench-throughput.png: one panel per section make bench measures (ring, JVM writer,
    Flink jobs, TF dataset), the machine and the date in the title. A section that was not
    measured (no connector jar, --skip-jvm) says so in its panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    (ring_ax, jvm_ax), (flink_ax, tf_ax) = axes

    sizes = [size for size, _ in rows]
    for c in cols:
        ring_ax.plot(sizes, [res[c][1] for _, res in rows], marker="o", label=c)
    ring_ax.set_xscale("log", base=2)
    ring_ax.set_yscale("log")
    ring_ax.set_xticks(sizes, [human_size(s) for s in sizes])
    ring_ax.set_xlabel("record size")
    ring_ax.set_ylabel("payload GB/s (log)")
    ring_ax.set_title("Ring: one process to another, vs baselines")
    ring_ax.grid(True, which="both", alpha=0.3)
    ring_ax.legend(fontsize=7)

    def not_measured(ax, title: str) -> None:
        ax.set_title(title)
        ax.text(0.5, 0.5, "not measured in this run", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()

    def bars(ax, labels: list[str], values: list[float], ylabel: str, title: str) -> None:
        ax.bar(range(len(values)), values, color=[f"C{i}" for i in range(len(values))])
        ax.set_xticks(range(len(values)), labels, fontsize=8, rotation=15)
        ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        for i, v in enumerate(values):
            ax.annotate(f"{v / 1e6:.3g} M" if v >= 1e6 else f"{v / 1e3:.3g} K", (i, v), ha="center",
                        va="bottom", fontsize=8)

    if jvm:
        js = [size for size, _, _ in jvm]
        jvm_ax.plot(js, [j for _, j, _ in jvm], marker="o", label="Java writer → Py reader")
        jvm_ax.plot(js, [c for _, _, c in jvm], marker="o", label="C writer → Py reader")
        jvm_ax.set_xscale("log", base=2)
        jvm_ax.set_yscale("log")
        jvm_ax.set_xticks(js, [human_size(s) for s in js])
        jvm_ax.set_xlabel("record size")
        jvm_ax.set_ylabel("records/s (log)")
        jvm_ax.set_title("JVM: the Java ring writer beside the C writer")
        jvm_ax.grid(True, which="both", alpha=0.3)
        jvm_ax.legend(fontsize=7)
    else:
        not_measured(jvm_ax, "JVM: the Java ring writer")

    if flink:
        bars(flink_ax, ["RingSink → RingReader", "PyFlink Python map"],
             [flink["ring_records_per_s"], flink["python_map_records_per_s"]], "records/s (log)",
             "Flink job, parallelism 1, 8-byte records")
    else:
        not_measured(flink_ax, "Flink jobs")

    tf_rows = parse_markdown_rows(tensors, "| path |")
    if tf_rows:
        bars(tf_ax, list(tf_rows), [_number(cells[0]) for cells in tf_rows.values()], "rows/s into TF (log)",
             "TensorFlow: MNIST-shaped rows into a tf.data loop")
    else:
        not_measured(tf_ax, "TensorFlow dataset")

    # Figures mean little without the machine and the day they were measured on.
    fig.suptitle(f"flinktf-ipc `make bench`: {machine()}; measured {datetime.date.today().isoformat()}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def flink_jobs() -> dict[str, float]:
    out = subprocess.run([sys.executable, "-P", str(ROOT / "bench" / "flink_jobs.py")], check=True,
                         capture_output=True, text=True, cwd="/tmp").stdout
    return json.loads(out.strip().splitlines()[-1])


# ---- baselines (sender in a forked process, receiver here) -------------------------------


def _count(size: int) -> int:
    return max(2000, min(300_000, (256 << 20) // size))


def _time_receiver(sender, recv_all, n: int, size: int) -> tuple[float, float]:
    ctx = mp.get_context("fork")
    p = ctx.Process(target=sender)
    p.start()
    t0 = time.perf_counter()
    got = recv_all()
    dt = time.perf_counter() - t0
    p.join()
    assert got == n, (got, n)
    return n / dt, n * size / dt / 1e9


def mp_queue(size: int) -> tuple[float, float]:
    n, rec = _count(size), b"q" * size
    q = mp.get_context("fork").Queue(maxsize=1024)

    def send():
        for _ in range(n):
            q.put(rec)

    def recv():
        return sum(1 for _ in range(n) if q.get() is not None)

    return _time_receiver(send, recv, n, size)


def mp_pipe(size: int) -> tuple[float, float]:
    n, rec = _count(size), b"p" * size
    a, b = mp.get_context("fork").Pipe(duplex=False)

    def send():
        for _ in range(n):
            b.send_bytes(rec)

    def recv():
        return sum(1 for _ in range(n) if a.recv_bytes() is not None)

    return _time_receiver(send, recv, n, size)


def _stream_sender(write, n: int, size: int):
    frame = struct.pack("<I", size) + b"s" * size
    per_chunk = max(1, (1 << 20) // len(frame))

    def send():
        left = n
        while left:
            k = min(per_chunk, left)
            write(frame * k)
            left -= k

    return send


def _stream_receiver(read, n: int):
    """Splits a length-prefixed stream into one bytes object per record, as a user would."""

    def recv():
        buf, got, pos = bytearray(), 0, 0
        while got < n:
            chunk = read(1 << 20)
            if not chunk:
                break
            buf += chunk
            while len(buf) - pos >= 4:
                (length,) = struct.unpack_from("<I", buf, pos)
                if len(buf) - pos - 4 < length:
                    break
                _record = bytes(buf[pos + 4:pos + 4 + length])
                pos += 4 + length
                got += 1
            del buf[:pos]
            pos = 0
        return got

    return recv


def os_pipe(size: int) -> tuple[float, float]:
    n = _count(size)
    r, w = os.pipe()

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(w, view):]

    result = _time_receiver(_stream_sender(write, n, size), _stream_receiver(lambda k: os.read(r, k), n), n, size)
    os.close(r)
    os.close(w)
    return result


def tcp(size: int) -> tuple[float, float]:
    n = _count(size)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def send():
        with socket.create_connection(("127.0.0.1", port)) as s:
            _stream_sender(s.sendall, n, size)()

    ctx = mp.get_context("fork")
    p = ctx.Process(target=send)
    p.start()
    conn, _ = server.accept()
    t0 = time.perf_counter()
    got = _stream_receiver(conn.recv, n)()
    dt = time.perf_counter() - t0
    p.join()
    conn.close()
    server.close()
    assert got == n
    return n / dt, n * size / dt / 1e9


# ---- the table --------------------------------------------------------------------------


def median_of(fn, repeat: int) -> tuple[float, float]:
    runs = [fn() for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def human_size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1024 else f"{n} B"


def main() -> None:
    ap = argparse.ArgumentParser(prog="flinktf-ipc bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench-ring", help="path of the bench_ring binary (default: build it)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure of the ring table (median; default 3)")
    ap.add_argument("--sizes", type=int, nargs="*", default=SIZES,
                    help="record sizes in bytes of the ring table (default: 64 1024 65536 1048576)")
    ap.add_argument("--write-doc", default=str(ROOT / "docs" / "BENCHMARKS.md"),
                    help="the doc whose marked regions get this run's figures (default: docs/BENCHMARKS.md)")
    ap.add_argument("--skip-jvm", action="store_true", help="leave out the Java writer and Flink jobs")
    ap.add_argument("--main-job-rows", type=int, default=4_000_000, help="rows of the main job run (default 4,000,000)")
    args = ap.parse_args()
    if args.repeat < 1 or any(n < 8 for n in args.sizes) or args.main_job_rows < 1:
        ap.error("--repeat and --main-job-rows must be >= 1, --sizes >= 8 bytes each")
    check_regions(args.write_doc)
    load_at_start = f"{os.getloadavg()[0]:.1f}"
    if not args.bench_ring:
        args.bench_ring = build_bench_ring()

    cols = ["C ring", "Py ring", "memcpy", "mp.Queue", "mp.Pipe", "os.pipe", "TCP"]
    rows = []
    for size in args.sizes:
        c_runs = [c_ring(args.bench_ring, size) for _ in range(args.repeat)]
        res = {
            "C ring": (statistics.median(r["ring_records_per_s"] for r in c_runs),
                       statistics.median(r["ring_gb_per_s"] for r in c_runs)),
            "memcpy": (statistics.median(r["memcpy_records_per_s"] for r in c_runs),
                       statistics.median(r["memcpy_gb_per_s"] for r in c_runs)),
            "Py ring": median_of(lambda: py_ring(args.bench_ring, size), args.repeat),
            "mp.Queue": median_of(lambda: mp_queue(size), args.repeat),
            "mp.Pipe": median_of(lambda: mp_pipe(size), args.repeat),
            "os.pipe": median_of(lambda: os_pipe(size), args.repeat),
            "TCP": median_of(lambda: tcp(size), args.repeat),
        }
        rows.append((size, res))
        cells = [f"{c} {res[c][0] / 1e6:.2f} M/s {res[c][1]:.2f} GB/s" for c in cols]
        print(f"{human_size(size):>8}: " + "  ".join(cells), flush=True)

    def fmt(rec_s: float, gb_s: float) -> str:
        rate = f"{rec_s / 1e6:.3g} M/s" if rec_s >= 1e6 else f"{rec_s / 1e3:.3g} K/s"
        return f"{rate} · {gb_s:.3g} GB/s"

    lines = ["| record | " + " | ".join(cols) + " | Py ring ÷ best baseline |",
             "|---" * (len(cols) + 2) + "|"]
    for size, res in rows:
        best = max(res[c][0] for c in ("mp.Queue", "mp.Pipe", "os.pipe", "TCP"))
        lines.append(f"| {human_size(size)} | " + " | ".join(fmt(*res[c]) for c in cols)
                     + f" | {res['Py ring'][0] / best:.0f}× |")
    table = "\n".join(lines)
    print("\n" + table)

    jvm = "The connector jar is not installed: the JVM figures were not measured."
    jar = _jar()
    jvm_points: list[tuple[int, float, float]] = []
    fj: dict[str, float] | None = None
    if jar and not args.skip_jvm:
        jrows = ["| record | Java writer → Py reader | C writer → Py reader (same run) | Java ÷ C |",
                 "|---|---|---|---|"]
        for size, res in rows:
            if size > 65536:
                continue
            j = median_of(lambda: java_ring(jar, size), args.repeat)
            c = res["Py ring"]
            jrows.append(f"| {human_size(size)} | {fmt(*j)} | {fmt(*c)} | {j[0] / c[0]:.2f} |")
            jvm_points.append((size, j[0], c[0]))
            print(jrows[-1], flush=True)
        p50, p99 = java_wakeup_latency(jar)
        fj = flink_jobs()
        ratio = fj["ring_records_per_s"] / fj["python_map_records_per_s"]
        jvm = "\n".join(jrows) + f"""

Wake-up latency of a sleeping Python reader (Java writes one 16-byte record every ~1 ms, the
reader sleeps on its futex in between; publication to `read` returning): **p50 {p50:.0f} µs,
p99 {p99:.0f} µs**.

Embedded Flink (PyFlink mini-cluster, parallelism 1, 8-byte records, steady state):

| path | records/s |
|---|---|
| Java source → `RingSink` → Python `RingReader` | {fj['ring_records_per_s'] / 1e6:.1f} M/s |
| Java source → PyFlink Python `map` (what users do today) | {fj['python_map_records_per_s'] / 1e3:.0f} K/s |
| ratio | {ratio:.0f}× |
"""
        print(jvm)

    ring_more = ring_figures(args.bench_ring, max(5, args.repeat))
    print(ring_more)
    tensors = tensors_table(max(5, args.repeat))
    print(tensors)
    job = main_job(args.main_job_rows) if jar and not args.skip_jvm else None
    job_text = "Not measured (no connector jar)." if job is None else (
        f"`examples/ctr.py --rows {args.main_job_rows:,}` (parallelism 2; datagen, SQL features, `arrow_sink`, "
        f"two Keras workers), whole job including the mini-cluster's start-up: **{job['train']:.1f} s with "
        f"training, {job['feed']:.1f} s when the workers only read the stream** (`--no-train`). The feed and "
        f"start-up are {job['feed'] / job['train']:.0%} of the training job's time; training is the rest.")
    png = Path(args.write_doc).with_name("bench-throughput.png")
    plot(rows, cols, png, jvm_points, fj, tensors)

    cmd = "make bench  (" + " ".join([Path(sys.executable).name, "bench/run.py", *sys.argv[1:]]) + ")"
    recorded = (f"Recorded by `make bench` on {datetime.date.today().isoformat()}; every figure of a region it "
                f"writes was measured in that run, median of {args.repeat} (the ring's own figures and the "
                f"tensors: {max(5, args.repeat)}). Machine: {machine()}; numpy {np.__version__}; load average "
                f"at the start {load_at_start}. Command: `{cmd}`.")
    doc = splice(Path(args.write_doc).read_text(), {
        "recorded": recorded, "ring": table, "ring-more": ring_more, "jvm": jvm, "tensors": tensors,
        "job": job_text})
    Path(args.write_doc).write_text(doc)
    print(f"\nwrote {args.write_doc}")


# The doc is written by hand; `make bench` rewrites only its marked regions:
#   <!-- make bench: NAME -->
#   ...what the last run measured...
#   <!-- /make bench: NAME -->
REGION = re.compile(r"(<!-- make bench: (?P<name>[\w-]+) -->\n).*?(\n<!-- /make bench: (?P=name) -->)", re.S)
REGIONS = ("recorded", "ring", "ring-more", "jvm", "tensors", "job")


def check_regions(path: str) -> None:
    """Before anything is measured: the doc has every region this run writes."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SystemExit(f"bench: cannot read {path}: {e.strerror}") from None
    found = {m["name"] for m in REGION.finditer(text)}
    missing = [n for n in REGIONS if n not in found]
    if missing:
        raise SystemExit(f"bench: {path} has no region {', '.join(missing)} "
                         "(<!-- make bench: NAME --> ... <!-- /make bench: NAME -->)")


def splice(doc: str, parts: dict[str, str]) -> str:
    """``doc`` with each marked region's content replaced by ``parts[name]``; the rest unchanged."""
    return REGION.sub(lambda m: m.group(1) + parts[m["name"]].strip("\n") + m.group(3)
                      if m["name"] in parts else m.group(0), doc)


if __name__ == "__main__":
    main()
