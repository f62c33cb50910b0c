"""The main job (examples/ctr.py) on a localhost standalone cluster beside the same job on the
embedded mini-cluster: rows/s, job time and the peak memory of every process, interleaved runs.

    .venv/bin/python -P bench/bench_standalone.py --runs 5 --rows 1000000

Mini-cluster: ``python -P examples/ctr.py`` (the job runs inside PyFlink's gateway JVM).
Standalone: the same script through ``bin/flink run -py`` against 1 JobManager + 2 TaskManagers
started once (flinktf_ipc.local_cluster) and left idle between runs. Memory is the peak RSS of
each process while the run lasts, summed per role (the cluster's JobManager and TaskManagers
include their idle share); rows/s and job time are the ones ctr.py prints (start-up included).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CTR = ROOT / "examples" / "ctr.py"
RESULT = re.compile(r"job (\w+) in ([\d.]+) s: .*?\(([\d.]+) K rows/s end to end")

ROLES = [("StandaloneSessionClusterEntrypoint", "JobManager"), ("TaskManagerRunner", "TaskManager"),
         ("flinktf_ipc.worker", "TF worker"), ("PythonGatewayServer", "PyFlink gateway JVM (runs the job)"),
         ("CliFrontend", "flink run client JVM"), ("ctr.py", "client Python")]


def role_of(pid: int) -> str | None:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if cmd.startswith(("bash ", "/bin/bash ", "/usr/bin/bash ")):
        return None  # the `flink` launcher script: not a process of the job
    for key, role in ROLES:
        if key in cmd:
            return role
    return None


def rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children(pid: int) -> list[int]:
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            out += [int(x) for x in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
    except OSError:
        pass
    return out


def tree(roots: list[int]) -> list[int]:
    seen, todo = [], list(roots)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.append(p)
            todo += children(p)
    return seen


class Sampler:
    """Peak RSS per process of the trees under ``roots()``, every 0.5 s, summed per role at the end."""

    def __init__(self, roots) -> None:  # type: ignore[no-untyped-def]
        self.roots = roots
        self.peak: dict[int, tuple[str, int]] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for pid in tree(self.roots()):
                role = role_of(pid)
                if role:
                    self.peak[pid] = (role, max(rss(pid), self.peak.get(pid, (role, 0))[1]))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def by_role(self) -> dict[str, tuple[int, int]]:
        """role -> (processes, summed peak RSS bytes)."""
        out: dict[str, tuple[int, int]] = {}
        for role, b in self.peak.values():
            n, total = out.get(role, (0, 0))
            out[role] = (n + 1, total + b)
        return out


def parse(text: str) -> tuple[float, float]:
    m = RESULT.search(text)
    if not m or m.group(1) != "FINISHED":
        raise RuntimeError("the job did not finish:\n" + text[-3000:])
    return float(m.group(2)), float(m.group(3)) * 1e3


def run_mini(rows: int, work: str) -> tuple[float, float, dict[str, tuple[int, int]]]:
    p = subprocess.Popen([sys.executable, "-P", str(CTR), "--rows", str(rows), "--workdir", work], cwd=work,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with Sampler(lambda: [p.pid]) as s:
        out, _ = p.communicate(timeout=1800)
    return (*parse(out), s.by_role())


def run_cluster(c, rows: int, work: str) -> tuple[float, float, dict[str, tuple[int, int]]]:  # type: ignore[no-untyped-def]
    p = c.submit(CTR, ["--rows", str(rows), "--workdir", work], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with Sampler(lambda: [p.pid, *c.pids()]) as s:
        out, _ = p.communicate(timeout=1800)
    return (*parse(out), s.by_role())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    from flinktf_ipc.local_cluster import LocalCluster

    base = tempfile.mkdtemp(prefix="flinktf-bench-cluster-")
    ring_dir = f"/dev/shm/flinktf-bench-cluster-{os.getpid()}"
    os.makedirs(ring_dir, mode=0o700, exist_ok=True)
    os.environ["FLINKTF_IPC_DIR"] = ring_dir
    c = LocalCluster(os.path.join(base, "cluster"), rest_port=free_port(), rpc_port=free_port(), ring_dir=ring_dir)
    print(f"machine: {machine()}\ncommand: {' '.join([sys.executable, '-P', *sys.argv])}", flush=True)
    t0 = time.monotonic()
    c.start(taskmanagers=2)
    print(f"standalone cluster (1 JM + 2 TM x 2 slots) up in {time.monotonic() - t0:.0f} s", flush=True)
    results: dict[str, list[tuple[float, float, dict[str, tuple[int, int]]]]] = {"mini-cluster": [], "standalone": []}
    try:
        for i in range(args.runs):
            for kind in ("mini-cluster", "standalone"):
                work = tempfile.mkdtemp(dir=base)
                r = run_mini(args.rows, work) if kind == "mini-cluster" else run_cluster(c, args.rows, work)
                results[kind].append(r)
                print(f"run {i + 1} {kind:12}: {r[0]:6.1f} s  {r[1] / 1e3:6.1f} K rows/s", flush=True)
    finally:
        c.stop()
        shutil.rmtree(ring_dir, ignore_errors=True)
    print(f"\n{args.rows:,} rows, parallelism 2, training on; median (min-max) of {args.runs} interleaved runs")
    print("| | job time s | rows/s (end to end) | peak RSS per role |")
    print("|---|---|---|---|")
    for kind, rs in results.items():
        secs = [r[0] for r in rs]
        rate = [r[1] for r in rs]
        roles: dict[str, list[tuple[int, int]]] = {}
        for r in rs:
            for role, v in r[2].items():
                roles.setdefault(role, []).append(v)
        mem = "; ".join(f"{role} x{statistics.median([v[0] for v in vs]):.0f}: "
                        f"{statistics.median([v[1] for v in vs]) / 2**20:.0f} MiB"
                        for role, vs in sorted(roles.items()))
        print(f"| {kind} | {statistics.median(secs):.1f} ({min(secs):.1f}-{max(secs):.1f}) | "
              f"{statistics.median(rate) / 1e3:.1f} K ({min(rate) / 1e3:.1f}-{max(rate) / 1e3:.1f} K) | {mem} |")
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
