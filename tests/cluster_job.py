"""A job for the standalone-cluster tests (tests/test_deploy_cluster.py), submitted with
``flink run -py``: a sequence of ids through a RingSink into workers running
tests/failover_entry.py, which append every id they consume to ``<out>/ids-<index>-<attempt>.bin``
(so a test can check that none was lost) and write their pid and context."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds per batch in attempt 0")
    ap.add_argument("--checkpoint-ms", type=int, default=1000)
    ap.add_argument("--restart-attempts", type=int, default=3)
    args = ap.parse_args(argv)

    from pyflink.common import WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource

    from flinktf_ipc import flink

    env = flink.configure(restart_attempts=args.restart_attempts, restart_delay_ms=2000)
    env.set_parallelism(args.parallelism)
    env.enable_checkpointing(args.checkpoint_ms)
    os.makedirs(args.out, exist_ok=True)
    entry = os.path.join(os.path.dirname(os.path.abspath(__file__)), "failover_entry.py") + ":main"
    sink = (flink.RingSink.builder().name(args.name).capacity(1 << 16).align(8).encoder("long")
            .flush_timeout(120).worker_entry(entry)
            .worker_properties({"out": args.out, "delay_attempt0": str(args.delay)})
            .heartbeat_interval(0.5).heartbeat_timeout(5).worker_shutdown_grace(2).build())
    stream = env.from_source(NumberSequenceSource(0, args.rows - 1), WatermarkStrategy.no_watermarks(), "ids")
    stream.sink_to(sink)
    client = env.execute_async(f"flinktf-ipc cluster test {args.name}")
    job_id = str(client.get_job_id())
    with open(os.path.join(args.out, "job_id"), "w") as f:
        f.write(job_id)
    print(f"job {job_id} submitted", flush=True)
    client.get_job_execution_result().result()
    print(f"job {job_id} finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
