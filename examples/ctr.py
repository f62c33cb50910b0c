"""The main job: click-through prediction, Flink features streamed into a Keras model.

One PyFlink job on the embedded mini-cluster:
- Flink's own ``datagen`` connector makes a stream of ad impressions (user, item, hour, price)
  with a hidden click model; Flink SQL does the feature engineering (hashing trick for users,
  bucketing of the hour, log-normalisation of the price) and draws the click label;
- ``arrow_sink`` batches the rows as Arrow record batches into one shared-memory ring per subtask
  and starts one TensorFlow worker per ring, watched through heartbeat files;
- each worker (``train`` below) trains a wide-and-deep model on its ``tf.data`` stream,
  checkpointing as it goes, and saves the model at the end of the stream.

Run ``make demo`` (or ``python -P examples/ctr.py --rows 2000000``). It prints a live progress
line (records/s, MB/s, ring fill, loss and AUC) and a summary.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import threading
import time

FEATURES = ["user_bucket", "item", "hour_bucket", "price"]
USER_BUCKETS, ITEMS, HOUR_BUCKETS = 1000, 200, 8

# Feature engineering in Flink SQL. The hidden click model (``logit``) is what the network must
# recover from the engineered features: a per-user-bucket taste, a per-item appeal, an evening
# boost and a price penalty.
FEATURE_SQL = f"""
SELECT user_bucket, item, hour_bucket, price,
       CAST(CASE WHEN RAND() < 1 / (1 + EXP(-logit)) THEN 1 ELSE 0 END AS BIGINT) AS click
FROM (
  SELECT CAST(MOD(ABS(HASH_CODE(CAST(user_id AS STRING))), {USER_BUCKETS}) AS BIGINT) AS user_bucket,
         CAST(item_id AS BIGINT) AS item,
         CAST(hour_of_day / 3 AS BIGINT) AS hour_bucket,
         CAST((LN(price) - 3.6) / 0.9 AS FLOAT) AS price,
         0.9 * (MOD(ABS(HASH_CODE(CAST(user_id AS STRING))), 7) - 3) / 3
           + 0.8 * (MOD(item_id * 7, 11) - 5) / 5
           + CASE WHEN hour_of_day BETWEEN 18 AND 22 THEN 1.0 ELSE -0.4 END
           - 0.8 * (LN(price) - 3.6) AS logit
  FROM impressions)
"""


# ---- the TensorFlow worker (runs in the processes the Flink job starts) ----------------------


def build_model():  # type: ignore[no-untyped-def]
    import tensorflow as tf

    inputs = {"user_bucket": tf.keras.Input((), dtype="int64", name="user_bucket"),
              "item": tf.keras.Input((), dtype="int64", name="item"),
              "hour_bucket": tf.keras.Input((), dtype="int64", name="hour_bucket"),
              "price": tf.keras.Input((), dtype="float32", name="price")}
    # wide: one weight per item and per hour bucket (a linear model on one-hot features)
    wide = tf.keras.layers.Add()([
        tf.keras.layers.Flatten()(tf.keras.layers.Embedding(ITEMS, 1)(inputs["item"])),
        tf.keras.layers.Flatten()(tf.keras.layers.Embedding(HOUR_BUCKETS, 1)(inputs["hour_bucket"]))])
    # deep: embeddings of every categorical feature plus the price, through an MLP
    deep = tf.keras.layers.Concatenate()([
        tf.keras.layers.Embedding(USER_BUCKETS, 8)(inputs["user_bucket"]),
        tf.keras.layers.Embedding(ITEMS, 8)(inputs["item"]),
        tf.keras.layers.Embedding(HOUR_BUCKETS, 4)(inputs["hour_bucket"]),
        tf.keras.layers.Reshape((1,))(inputs["price"])])
    deep = tf.keras.layers.Dense(32, activation="relu")(deep)
    deep = tf.keras.layers.Dense(1)(deep)
    out = tf.keras.layers.Activation("sigmoid")(tf.keras.layers.Add()([wide, deep]))
    model = tf.keras.Model(inputs, out)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="binary_crossentropy",
                  metrics=[tf.keras.metrics.AUC(name="auc")])
    return model


def train(context) -> None:  # type: ignore[no-untyped-def]
    """Worker entry: trains on this worker's ring until the stream ends."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    batch = int(context.properties.get("batch_size", "1024"))
    ckpt_dir = context.checkpoint_dir or tempfile.mkdtemp(prefix="ctr-")
    os.makedirs(ckpt_dir, exist_ok=True)
    model = build_model()
    ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(ckpt_dir, "ckpt"), max_to_keep=2)
    if manager.latest_checkpoint:  # a restarted attempt resumes from its own last checkpoint
        ckpt.restore(manager.latest_checkpoint)
    metrics_path = os.path.join(ckpt_dir, "metrics.json")
    rows_seen = tf.Variable(0, dtype=tf.int64, trainable=False)

    def count(x, y):  # type: ignore[no-untyped-def]
        rows_seen.assign_add(tf.shape(y, out_type=tf.int64)[0])
        return x, y

    ds = context.dataset(features=FEATURES, label="click", batch_size=batch).map(count)
    if context.properties.get("train", "1") == "0":  # feed only: how much of the time is the feed's
        for batch in ds:
            del batch  # as a training step does: a checkpoint waits until the worker let go of it
        with open(metrics_path, "w") as f:
            json.dump({"steps": 0, "rows": int(rows_seen.numpy()), "loss": float("nan"), "auc": float("nan"),
                       "attempt": context.attempt}, f)
        return

    class Report(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, step, logs=None):  # type: ignore[no-untyped-def]
            if step % 20 == 0:
                self.write(step, logs)
            if step and step % 500 == 0:
                manager.save()

        def write(self, step, logs):  # type: ignore[no-untyped-def]
            tmp = metrics_path + ".tmp"
            with open(tmp, "w") as f:
                rows = int(rows_seen.numpy())
                json.dump({"steps": step + 1, "rows": rows, "loss": float(logs["loss"]),
                           "auc": float(logs["auc"]), "attempt": context.attempt}, f)
            os.replace(tmp, metrics_path)
            context.progress({"rows": rows})

    report = Report()
    history = model.fit(ds, epochs=1, verbose=0, callbacks=[report])
    manager.save()
    model.save(os.path.join(ckpt_dir, "model.keras"))
    # the stream's averages over the whole pass (Keras computes them before each update)
    report.write(int(model.optimizer.iterations.numpy()) - 1, {k: v[-1] for k, v in history.history.items()})


# ---- the driver: builds and runs the Flink job -----------------------------------------------


_ring_bytes: dict[str, int] = {}  # last bytes_in seen per ring (a finished ring's file is gone)


def _progress_line(paths: list[str], ckpt_root: str, t0: float) -> str:
    from flinktf_ipc import ring_stat

    fill = []
    for p in paths:
        try:
            st = ring_stat(p)
        except Exception:  # noqa: BLE001 - not created yet or already removed
            continue
        _ring_bytes[p] = st.bytes_in
        fill.append(st.fill)
    nbytes = sum(_ring_bytes.values())
    rows, loss, auc = 0, [], []
    for m in glob.glob(os.path.join(ckpt_root, "*", "metrics.json")):
        try:
            with open(m) as f:
                d = json.load(f)
        except (OSError, ValueError):
            continue
        rows += d["rows"]
        loss.append(d["loss"])
        auc.append(d["auc"])
    dt = max(time.monotonic() - t0, 1e-9)
    mean = (lambda xs: sum(xs) / len(xs)) if loss else (lambda xs: float("nan"))
    return (f"{dt:6.1f}s  trained {rows:>10,} rows  {rows / dt / 1e3:7.1f} K rows/s  "
            f"ring {nbytes / dt / 1e6:6.2f} MB/s  fill {max(fill, default=0):5.1%}  "
            f"loss {mean(loss):.4f}  AUC {mean(auc):.4f}")


def run(rows: int, parallelism: int, rate: int, workdir: str, train_model: bool = True) -> dict:
    from pyflink.common import Types
    from pyflink.table import StreamTableEnvironment

    from flinktf_ipc import flink, flink_arrow

    env = flink.configure(restart_attempts=2)
    env.set_parallelism(parallelism)
    env.enable_checkpointing(5000)
    t_env = StreamTableEnvironment.create(env)
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE impressions (user_id INT, item_id INT, hour_of_day INT, price DOUBLE) WITH (
          'connector' = 'datagen', 'number-of-rows' = '{rows}', 'rows-per-second' = '{rate}',
          'fields.user_id.min' = '1', 'fields.user_id.max' = '50000',
          'fields.item_id.min' = '0', 'fields.item_id.max' = '{ITEMS - 1}',
          'fields.hour_of_day.min' = '0', 'fields.hour_of_day.max' = '23',
          'fields.price.min' = '5', 'fields.price.max' = '200')""")
    stream = t_env.to_data_stream(t_env.sql_query(FEATURE_SQL))
    row_type = Types.ROW_NAMED(FEATURES + ["click"],
                               [Types.LONG(), Types.LONG(), Types.LONG(), Types.FLOAT(), Types.LONG()])
    ckpt_root = os.path.join(workdir, "checkpoints")
    sink = flink_arrow.arrow_sink(
        stream, row_type, name="ctr", batch_rows=4096, linger_ms=200, capacity=64 << 20,
        worker_entry=f"{os.path.abspath(__file__)}:train", checkpoint_dir=ckpt_root,
        worker_properties={"batch_size": "1024", "train": "1" if train_model else "0"}, flush_timeout=120)
    paths = sink.ring_paths(parallelism)
    t0 = time.monotonic()
    outcome: dict[str, object] = {}

    def execute() -> None:
        try:
            env.execute("flinktf-ipc demo: click-through model")
            outcome["status"] = "FINISHED"
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            outcome["error"] = e

    job = threading.Thread(target=execute, name="flink-job", daemon=True)
    job.start()
    interactive = sys.stdout.isatty()
    while job.is_alive():
        job.join(0.5 if interactive else 5)
        print(("\r" if interactive else "") + _progress_line(paths, ckpt_root, t0),
              end="" if interactive else "\n", flush=True)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]  # the job failed: its cause
    status = str(outcome["status"])
    seconds = time.monotonic() - t0
    print(("\r" if interactive else "") + _progress_line(paths, ckpt_root, t0))
    workers = []
    for m in sorted(glob.glob(os.path.join(ckpt_root, "*", "metrics.json"))):
        with open(m) as f:
            workers.append(json.load(f) | {"model": os.path.join(os.path.dirname(m), "model.keras")})
    return {"status": status, "seconds": seconds, "rows": rows, "workers": workers}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4_000_000, help="impressions to generate (default 4 M)")
    ap.add_argument("--parallelism", type=int, default=2, help="Flink subtasks = rings = TF workers")
    ap.add_argument("--rate", type=int, default=1_000_000, help="datagen rows per second per subtask")
    ap.add_argument("--workdir", default=None, help="where checkpoints and the model go")
    ap.add_argument("--no-train", action="store_true", help="workers only read the stream (measures the feed)")
    args = ap.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="flinktf-ctr-")
    print(f"flinktf-ipc demo: {args.rows:,} impressions, parallelism {args.parallelism}, output in {workdir}")
    result = run(args.rows, args.parallelism, args.rate, workdir, train_model=not args.no_train)
    trained = sum(w["rows"] for w in result["workers"])
    verb = "reached the workers" if args.no_train else "trained"
    print(f"\njob {result['status']} in {result['seconds']:.1f} s: {args.rows:,} impressions generated, "
          f"engineered and streamed; {trained:,} rows {verb} ({trained / result['seconds'] / 1e3:.1f} K rows/s "
          f"end to end, start-up included)")
    if args.no_train:
        ok = result["status"] == "FINISHED" and trained == args.rows
        print("demo " + ("succeeded (feed only, no training)" if ok else "FAILED: " + json.dumps(result)))
        return 0 if ok else 1
    for i, w in enumerate(result["workers"]):
        print(f"worker {i}: {w['steps']:,} steps, final loss {w['loss']:.4f}, AUC {w['auc']:.4f}, "
              f"model saved to {w['model']}")
    ok = (result["status"] == "FINISHED" and len(result["workers"]) == args.parallelism
          and all(w["auc"] > 0.6 for w in result["workers"]))
    print("demo " + ("succeeded" if ok else "FAILED: " + json.dumps(result)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
