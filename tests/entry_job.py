"""A small job for the entry tests (tests/test_deploy_cluster.py), run in a process of its own (its
own PyFlink gateway and log dir): a sequence of longs into a RingSink whose worker runs ``--entry``.
``--unchecked`` hands the entry to the Java builder directly, as a client that has the module but
whose TaskManagers lack it would. Exit 0 when the job finished; else the error text, exit 1."""

from __future__ import annotations

import argparse
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entry", required=True)
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--ring-dir", required=True)
    ap.add_argument("--log-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--restart-attempts", type=int, default=0)
    ap.add_argument("--unchecked", action="store_true")
    args = ap.parse_args()

    from py4j.protocol import Py4JJavaError
    from pyflink.common import WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource

    from flinktf_ipc import flink

    env = flink.configure(restart_attempts=args.restart_attempts, restart_delay_ms=200,
                          log_dir=f"{args.log_dir}/flink")
    env.set_parallelism(1)
    b = (flink.RingSink.builder().base_dir(args.ring_dir).name("entry").capacity(1 << 16).align(8).encoder("long")
         .worker_python(sys.executable).worker_log_dir(args.log_dir).worker_properties({"out": args.out}))
    if args.unchecked:
        b._j.setWorkerEntry(args.entry)
    else:
        b.worker_entry(args.entry)
    env.from_source(NumberSequenceSource(0, args.rows - 1), WatermarkStrategy.no_watermarks(), "seq").sink_to(b.build())
    try:
        env.execute("flinktf-ipc entry test")
    except Py4JJavaError as e:
        print(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
