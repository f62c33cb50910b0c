"""TF cluster start and failover, on the embedded Flink mini-cluster (docs/BENCHMARKS.md "TF cluster").

- start: ``env.execute`` called (job submit) -> every role process inside ``run_main`` (2 workers +
  1 ps, batch mode), and the AM's part of it: the last address file written -> the spec file there.
- failover: SIGKILL of one of two Flink-fed MultiWorkerMirroredStrategy workers -> both workers of
  the next attempt back in ``run_main``, and -> their first training step done. One job, killed
  again after each recovery.
- baseline beside them, measured in the same run: ``python -c "import tensorflow"`` (a process's
  TF import; the failover target is < 15 s + that), interleaved with the start runs.

Run: ``python -P bench/bench_cluster.py [--runs 5]`` (about 10 minutes here).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine  # noqa: E402

ENTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cluster_entry.py")


def wait_for(cond, timeout: float, what: str):  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.02)


def tf_import() -> float:
    t = time.monotonic()
    subprocess.run([sys.executable, "-P", "-c", "import tensorflow"], check=True, capture_output=True)
    return time.monotonic() - t


def start_run(work: Path, log_dir: str) -> tuple[float, float]:
    from flinktf_ipc import flink
    from flinktf_ipc.tf_cluster import TFClusterConfig

    out = work / "start"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = flink.configure(restart_attempts=0, log_dir=log_dir)
    (TFClusterConfig.builder().name("bstart").role("worker", 2).role("ps", 1).entry(f"{ENTRY}:started")
     .properties({"out": str(out)}).base_dir(work / "rings").heartbeat(timeout=60).build().add_to(env))
    t0 = time.time()
    env.execute("bench: cluster start")
    starts = [json.loads(p.read_text()) for p in out.glob("start-*.json")]
    assert len(starts) == 3, starts
    all_in = max(s["run_main"] for s in starts) - t0
    spec = max(s["spec"] for s in starts) - max(s["address"] for s in starts)
    return all_in, spec


def failover_runs(work: Path, log_dir: str, runs: int) -> list[tuple[float, float]]:
    from pyflink.common import Configuration, Types, WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource
    from pyflink.table import StreamTableEnvironment

    from flinktf_ipc import flink
    from flinktf_ipc.tf_cluster import TFClusterConfig

    out = work / "failover"
    out.mkdir(parents=True)
    # a kill costs two restart attempts today (the task's failure and the AM's failJob are counted apart)
    env = flink.configure(restart_attempts=2 * runs + 2, restart_delay_ms=100, log_dir=log_dir)
    env.set_parallelism(1)
    env.enable_checkpointing(500)
    conf = Configuration()
    conf.set_string("execution.checkpointing.storage", "filesystem")
    conf.set_string("execution.checkpointing.dir", (work / "flink-ckpt").as_uri())
    env.configure(conf)
    t_env = StreamTableEnvironment.create(env)
    seq = env.from_source(NumberSequenceSource(0, 10_000_000), WatermarkStrategy.no_watermarks(), "ids")
    t_env.create_temporary_view("seq", t_env.from_data_stream(seq))
    table = t_env.sql_query("SELECT ARRAY[CAST(MOD(f0, 7) AS FLOAT), 1.0, 2.0, 3.0] AS x, "
                            "CAST(MOD(f0, 7) AS FLOAT) AS y FROM seq")
    row_type = Types.ROW_NAMED(["x", "y"], [Types.PRIMITIVE_ARRAY(Types.FLOAT()), Types.FLOAT()])
    (TFClusterConfig.builder().name("bfail").role("worker", 2).entry(f"{ENTRY}:train")
     .input(t_env.to_data_stream(table), row_type, shapes={"x": (4,)})
     .properties({"out": str(out)}).base_dir(work / "rings").ring_capacity(1 << 16)
     .heartbeat(timeout=60).shutdown_grace(1).build().add_to(env))
    client = env.execute_async("bench: cluster failover")
    results = []
    try:
        def both(a: int) -> list[dict[str, float]] | None:
            files = [out / f"step-{i}-{a}.json" for i in range(2)]
            return [json.loads(f.read_text()) for f in files] if all(f.exists() for f in files) else None

        for attempt in range(runs):
            steps = wait_for(lambda a=attempt: both(a), 600, f"attempt {attempt} training")
            time.sleep(2)  # training, then the kill
            killed = time.time()
            os.kill(int(steps[1]["pid"]), signal.SIGKILL)
            back = wait_for(lambda a=attempt + 1: both(a), 600, f"attempt {attempt + 1} training")
            results.append((max(b["run_main"] for b in back) - killed, max(b["first_step"] for b in back) - killed))
            print(f"  failover {attempt + 1}: run_main {results[-1][0]:.1f} s, first step {results[-1][1]:.1f} s",
                  flush=True)
    finally:
        client.cancel()
    return results


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.1f} s  ({min(xs):.1f}-{max(xs):.1f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--failover-only", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-", dir="/dev/shm"))
    log_dir = str(work / "logs")
    os.makedirs(log_dir)
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    starts, specs, imports = [], [], []
    for i in range(0 if args.failover_only else args.runs):
        imports.append(tf_import())
        all_in, spec = start_run(work, log_dir)
        starts.append(all_in)
        specs.append(spec)
        print(f"  start {i + 1}: all roles in run_main {all_in:.1f} s, spec {spec * 1000:.0f} ms after the last "
              f"address; TF import {imports[-1]:.1f} s", flush=True)
    fails = failover_runs(work, log_dir, args.runs)
    if args.failover_only:
        imports = [tf_import() for _ in range(args.runs)]
    print(f"\nTF cluster (median of {args.runs}, min-max), {machine()}")
    if starts:
        print(f"  start: job submit -> all 3 roles in run_main   {fmt(starts)}")
        print(f"  start: last address file -> spec file         {fmt(specs)}")
    print(f"  failover: SIGKILL -> both workers in run_main  {fmt([f[0] for f in fails])}")
    print(f"  failover: SIGKILL -> first training step      {fmt([f[1] for f in fails])}")
    print(f"  baseline: python -c 'import tensorflow'       {fmt(imports)}")
    print("  baseline: the seed's system: a fixed 10 s sleep, heartbeat timeouts of 5 minutes")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
