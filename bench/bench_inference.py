"""Stream inference beside PyFlink's own Python paths, same records, same Keras model (y = 2x + 1).

Paths, each one embedded Flink job per run, parallelism 1:
- ``inference``: flinktf_ipc.inference (async I/O, rings, one TF worker process);
- ``pandas_udf``: a PyFlink vectorized (pandas) scalar UDF calling the model per Arrow batch;
- ``map``: a PyFlink ``DataStream.map`` calling the model per record;
- ``source`` (throughput only): the same rows straight from the probe to the sink, no model: the
  ceiling the job itself (datagen, SQL conversion, probe, sink) allows on this machine.

Rows come from SQL ``datagen`` (id, x = id), spaced evenly at ``--rate`` by a Java throttle for
the latency runs; a Java probe stamps ``System.nanoTime()`` into each row right after that and
a Java sink notes its arrival (``io.flinktf.ipc.inference.bench.LatencyProbe``): both ends share
one clock.

- throughput: N rows as fast as the source goes; steady state: rows per second arriving from 1 s
  after the first arrival (start-up, TF import and the model's first trace left out);
- latency: rows at ``--rate`` events/s (10 K, evenly spaced) for 15 s: p50 and p99 of arrival -
  stamp over the rows stamped 5 s after the first arrival (warm-up left out; a path that does not
  keep up with the rate keeps a growing queue, and that shows).

Runs are interleaved (path after path, ``--repeat`` rounds); the table shows the median with the
min-max. Prints the machine, the command, and one JSON line at the end.

usage: python -P bench/bench_inference.py [--repeat 5] [--rows 2000000] [--udf-rows 400000]
       [--map-rows 5000] [--rate 10000] [--latency-seconds 15] [--paths inference,pandas_udf,map,source]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import tempfile
import uuid
from typing import Any

import numpy as np

sys.path.append(os.path.dirname(os.path.abspath(__file__)))

ENTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_inference.py")


# ---- the model, the same in every path --------------------------------------------------------------


def keras_model() -> Any:
    """Dense(1) with kernel 2 and bias 1: y = 2x + 1."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    inp = keras.Input(shape=(1,), dtype="float32")
    out = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(2.0),
                             bias_initializer=keras.initializers.Constant(1.0))(inp)
    return keras.Model(inp, out)


def compiled(model: Any) -> Any:
    import tensorflow as tf

    return tf.function(lambda x: model(x, training=False), reduce_retracing=True)


def worker_main(context: Any) -> None:
    """The inference worker: the model on each batch; id and the stamp pass through."""
    import tensorflow as tf

    fn = compiled(keras_model())
    for batch in context.input_batches():
        y = fn(tf.constant(batch["x"].reshape(-1, 1)))
        context.emit({"id": batch["id"], "y": y, "t_in": batch["t_in"]})


# ---- the job ----------------------------------------------------------------------------------------


def _env(workdir: str) -> tuple[Any, Any]:
    from pyflink.table import StreamTableEnvironment

    from flinktf_ipc import flink

    env = flink.configure(restart_attempts=0, log_dir=os.path.join(workdir, "logs"))
    env.set_parallelism(1)
    t_env = StreamTableEnvironment.create(env)
    # The pandas UDF's default bundle waits up to 1 s; keep Flink's defaults otherwise.
    return env, t_env


def _stamped(t_env: Any, n: int, rate: int | None) -> tuple[Any, Any]:
    """Rows (id BIGINT, x FLOAT, t_in BIGINT) from datagen, stamped in Java after the source."""
    from pyflink.common import Types
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway

    table = f"src_{uuid.uuid4().hex[:8]}"
    # datagen unpaced (its default is 10 000 rows/s, and it paces in bursts of a second's rows);
    # the Java Throttle spaces rows evenly at `rate` instead.
    opts = ", 'rows-per-second' = '1000000000'"
    t_env.execute_sql(f"CREATE TEMPORARY TABLE {table} (id BIGINT) WITH ('connector' = 'datagen', "
                      f"'fields.id.kind' = 'sequence', 'fields.id.start' = '0', 'fields.id.end' = '{n - 1}'{opts})")
    rows = t_env.to_data_stream(t_env.sql_query(
        f"SELECT id, CAST(id AS FLOAT) AS x, CAST(0 AS BIGINT) AS t_in FROM {table}"))
    row_type = Types.ROW_NAMED(["id", "x", "t_in"], [Types.LONG(), Types.FLOAT(), Types.LONG()])
    jvm = get_gateway().jvm
    probe = jvm.io.flinktf.ipc.inference.bench.LatencyProbe
    j = rows._j_data_stream
    if rate:
        j = j.map(probe.Throttle(float(rate))).returns(row_type.get_java_type_info())
    j = j.map(probe.Stamp(2)).returns(row_type.get_java_type_info())
    return DataStream(j), row_type


def _record(stream: Any, prefix: str) -> None:
    from pyflink.datastream.connectors.base import Sink
    from pyflink.java_gateway import get_gateway

    jvm = get_gateway().jvm
    stream.sink_to(Sink(jvm.io.flinktf.ipc.inference.bench.LatencyProbe.Record(2, prefix)))


def _pairs(prefix: str) -> np.ndarray:
    parts = [np.fromfile(f, dtype="<i8").reshape(-1, 2) for f in glob.glob(prefix + "-*.lat")]
    return np.concatenate(parts) if parts else np.empty((0, 2), np.int64)


def run(path: str, n: int, rate: int | None, workdir: str) -> np.ndarray:
    """One job; returns the (stamp, arrival) pairs of every row."""
    from pyflink.common import Row, Types

    env, t_env = _env(workdir)
    if rate:
        # Flink's own latency knob, the same for every path: a network buffer is sent when full or
        # after this long (default 100 ms; the async operator starts a new chain, so the rows
        # cross one buffer on their way in).
        env.set_buffer_timeout(1)
    stamped, in_type = _stamped(t_env, n, rate)
    out_type = Types.ROW_NAMED(["id", "y", "t_in"], [Types.LONG(), Types.FLOAT(), Types.LONG()])
    if path == "inference":
        from flinktf_ipc.inference import inference

        out = inference(1, f"{ENTRY}:worker_main", input_ds=stamped, output_row_type=out_type,
                        input_row_type=in_type, name=f"bench-{uuid.uuid4().hex[:6]}", heartbeat_timeout=60,
                        worker_log_dir=os.path.join(workdir, "workers"))
    elif path == "source":
        out = stamped
    elif path == "map":
        from pyflink.datastream import MapFunction

        class Predict(MapFunction):  # type: ignore[misc]
            def open(self, runtime_context: Any) -> None:
                self.fn = compiled(keras_model())

            def map(self, row: Any) -> Any:
                import tensorflow as tf

                y = float(self.fn(tf.constant([[row[1]]], dtype=tf.float32))[0, 0])
                return Row(row[0], y, row[2])

        out = stamped.map(Predict(), output_type=out_type)
    else:
        import pandas as pd
        from pyflink.table import DataTypes
        from pyflink.table.udf import ScalarFunction, udf

        class PredictBatch(ScalarFunction):  # type: ignore[misc]
            def open(self, function_context: Any) -> None:
                self.fn = compiled(keras_model())

            def eval(self, x: Any) -> Any:
                import tensorflow as tf

                y = self.fn(tf.constant(x.to_numpy(np.float32).reshape(-1, 1))).numpy().reshape(-1)
                return pd.Series(y)

        predict = udf(PredictBatch(), result_type=DataTypes.FLOAT(), func_type="pandas")
        view = f"stamped_{uuid.uuid4().hex[:8]}"
        t_env.create_temporary_view(view, t_env.from_data_stream(stamped))
        t_env.create_temporary_function("predict_batch", predict)
        table = t_env.sql_query(f"SELECT id, predict_batch(x) AS y, t_in FROM {view}")
        out = t_env.to_data_stream(table)
    prefix = os.path.join(workdir, f"{path}-{uuid.uuid4().hex[:8]}")
    _record(out, prefix)
    env.execute(f"bench inference: {path}")
    pairs = _pairs(prefix)
    if len(pairs) != n:
        raise RuntimeError(f"{path}: {len(pairs)} results for {n} rows")
    return pairs


def throughput(pairs: np.ndarray, warm_s: float = 1.0) -> float:
    """Steady state: rows that arrived from ``warm_s`` after the first arrival (the worker's start,
    TF import and first trace are behind it; the source's back-pressured backlog is ahead of it)."""
    out = np.sort(pairs[:, 1])
    start = out[0] + int(warm_s * 1e9)
    if out[-1] <= start:
        start = out[0]
    n = int((out > start).sum())
    return n / ((out[-1] - start) / 1e9)


def latency_ms(pairs: np.ndarray, settle_s: float = 5.0) -> tuple[float, float]:
    """p50 and p99 of arrival - stamp over rows stamped ``settle_s`` after the first arrival: the
    warm-up (rows queued while a worker started, the JIT, the model's first traces) is left out;
    a path that cannot keep up with the rate keeps a growing queue, and that shows."""
    first_out = pairs[:, 1].min()
    last_in = pairs[:, 0].max()
    settle = min(int(settle_s * 1e9), max(0, (last_in - first_out) // 2))
    sel = pairs[pairs[:, 0] >= first_out + settle]
    if len(sel) == 0:
        sel = pairs
    lat = (sel[:, 1] - sel[:, 0]) / 1e6
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rows", type=int, default=2_000_000, help="throughput rows (inference, source)")
    ap.add_argument("--udf-rows", type=int, default=400_000, help="throughput rows for the pandas UDF")
    ap.add_argument("--map-rows", type=int, default=5_000, help="throughput rows for the per-record map")
    ap.add_argument("--rate", type=int, default=10_000, help="events/s of the latency runs")
    ap.add_argument("--latency-seconds", type=float, default=15.0, help="length of a latency run at --rate")
    ap.add_argument("--paths", default="inference,pandas_udf,map,source")
    ap.add_argument("--no-latency", action="store_true", help="throughput runs only")
    args = ap.parse_args()
    paths = args.paths.split(",")
    print(f"machine: {platform.machine()} {os.cpu_count()} cores, {platform.platform()}, load {os.getloadavg()}")
    print(f"command: {' '.join(sys.argv)}")
    tput: dict[str, list[float]] = {p: [] for p in paths}
    p50: dict[str, list[float]] = {p: [] for p in paths}
    p99: dict[str, list[float]] = {p: [] for p in paths}
    lat_rows = int(args.rate * args.latency_seconds)
    with tempfile.TemporaryDirectory(prefix="bench-inference-") as workdir:
        for r in range(args.repeat):
            for p in paths:
                n = {"map": args.map_rows, "pandas_udf": args.udf_rows}.get(p, args.rows)
                tput[p].append(throughput(run(p, n, None, workdir)))
                if p == "source" or args.no_latency:
                    a = b = float("nan")
                else:
                    a, b = latency_ms(run(p, min(lat_rows, args.map_rows) if p == "map" else lat_rows, args.rate,
                                          workdir))
                p50[p].append(a)
                p99[p].append(b)
                print(f"round {r + 1}: {p:10s} {tput[p][-1]:>12,.0f} rows/s   p50 {a:8.2f} ms   p99 {b:8.2f} ms",
                      flush=True)

    def med(v: list[float]) -> str:
        if not v or np.isnan(v).all():
            return "-"
        return f"{np.median(v):,.2f} ({min(v):,.2f}-{max(v):,.2f})"

    print(f"\n| path | throughput rows/s | p50 ms at {args.rate} ev/s | p99 ms at {args.rate} ev/s |")
    print("|---|---|---|---|")
    for p in paths:
        print(f"| {p} | {med(tput[p])} | {med(p50[p])} | {med(p99[p])} |")
    if "inference" in tput and "pandas_udf" in tput:
        ratio = [a / b for a, b in zip(tput["inference"], tput["pandas_udf"], strict=True)]
        print(f"\ninference / pandas_udf throughput, round by round: {med(ratio)}")
    if "inference" in tput and "source" in tput:
        ratio = [a / b for a, b in zip(tput["inference"], tput["source"], strict=True)]
        print(f"inference / source (no model) throughput, round by round: {med(ratio)}")
    print(json.dumps({"throughput": {p: float(np.median(v)) for p, v in tput.items()},
                      "p50_ms": {p: float(np.median(v)) for p, v in p50.items()},
                      "p99_ms": {p: float(np.median(v)) for p, v in p99.items()}}))


if __name__ == "__main__":
    main()
