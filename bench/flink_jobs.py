"""Embedded-Flink throughput: a Java source -> RingSink -> Python reader, beside the same records
going through PyFlink's own Python ``map`` (the path users take today). Prints one JSON line.

Both figures are steady state: from the first record the Python side sees to the last one, so the
mini-cluster's start-up (10-20 s) is left out of both.

usage: python bench/flink_jobs.py [--ring-records N] [--map-records M]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time

import numpy as np

from flinktf_ipc import RingReader
from flinktf_ipc import flink


def _sequence(env, n: int):  # type: ignore[no-untyped-def]
    from pyflink.common import WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource

    return env.from_source(NumberSequenceSource(0, n - 1), WatermarkStrategy.no_watermarks(), "seq")


def ring_job(n: int, workdir: str) -> float:
    env = flink.configure(restart_attempts=0)
    env.set_parallelism(1)
    sink = flink.RingSink.builder().base_dir(workdir).name("bench").capacity(64 << 20).align(8).encoder("long").build()
    _sequence(env, n).sink_to(sink)
    path = flink.ring_paths(workdir, "bench", 1)[0]
    result: dict[str, float] = {}

    def read() -> None:
        got, total = 0, 0
        with RingReader.open(path, timeout=120) as r:
            t0 = None
            while True:
                batch = r.read_batch(8192, timeout=120)
                if not len(batch):
                    break
                if t0 is None:
                    t0 = time.perf_counter()
                total += int(batch.as_array(np.uint64)[:, 0].sum())  # every record's value
                got += len(batch)
                del batch
        result["rate"] = got / (time.perf_counter() - t0) if t0 else 0.0
        result["ok"] = float(got == n and total == n * (n - 1) // 2)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    env.execute("bench ring")
    t.join(timeout=300)
    if result.get("ok") != 1.0:
        raise SystemExit(f"ring job lost or damaged records: {result}")
    return result["rate"]


def python_map_job(n: int, workdir: str) -> float:
    from pyflink.common import Types
    from pyflink.datastream.connectors.base import Sink
    from pyflink.datastream.functions import MapFunction
    from pyflink.java_gateway import get_gateway

    stamp = os.path.join(workdir, "map-times")

    class TimedIdentity(MapFunction):  # runs in PyFlink's Python worker process
        def open(self, runtime_context):  # type: ignore[no-untyped-def]
            self.first, self.count = None, 0

        def map(self, value):  # type: ignore[no-untyped-def]
            if self.first is None:
                self.first = time.perf_counter()
            self.count += 1
            self.last = time.perf_counter()
            return value

        def close(self):  # type: ignore[no-untyped-def]
            with open(stamp, "w") as f:
                f.write(f"{self.count} {self.first} {self.last}")

    env = flink.configure(restart_attempts=0)
    env.set_parallelism(1)
    discard = Sink(get_gateway().jvm.org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink())
    _sequence(env, n).map(TimedIdentity(), output_type=Types.LONG()).sink_to(discard)
    env.execute("bench python map")
    count, first, last = open(stamp).read().split()
    if int(count) != n:
        raise SystemExit(f"python map saw {count} of {n} records")
    return int(count) / (float(last) - float(first))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ring-records", type=int, default=20_000_000)
    ap.add_argument("--map-records", type=int, default=300_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="flinktf-bench-") as d:
        ring = ring_job(args.ring_records, d)
        pymap = python_map_job(args.map_records, d)
    print(json.dumps({"ring_records_per_s": ring, "python_map_records_per_s": pymap}))


if __name__ == "__main__":
    main()
