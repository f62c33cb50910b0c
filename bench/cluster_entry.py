"""Role entries for bench/bench_cluster.py (run in the role processes)."""

from __future__ import annotations

import json
import os
import time


def _write(path: str, data: object) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


def started(context) -> None:  # type: ignore[no-untyped-def]
    """Records when run_main began, and when the address and spec files were written; returns."""
    from flinktf_ipc.tf_cluster import TFContext

    now = time.time()
    ctx = TFContext(context)
    c = context.cluster
    _write(os.path.join(ctx.properties["out"], f"start-{ctx.get_job_name()}-{ctx.get_task_index()}.json"),
           {"run_main": now, "address": os.stat(c["address_file"]).st_mtime, "spec": os.stat(c["spec_file"]).st_mtime})


def train(context) -> None:  # type: ignore[no-untyped-def]
    """Two MWMS workers fit one model slowly (a sleep per step) until the stream ends; records when
    run_main began and when the first step of each attempt ended."""
    import tensorflow as tf

    from flinktf_ipc.tf_cluster import TFContext

    entered = time.time()
    ctx = TFContext(context)
    out, tag = ctx.properties["out"], f"{ctx.get_task_index()}-{ctx.attempt}"
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(8), tf.keras.layers.Dense(1)])
        model.compile("adam", "mse")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    ds = ctx.dataset(features="x", label="y", batch_size=32).with_options(options)
    delay = float(ctx.properties.get("step_delay", "0.05"))
    first: list[float] = []

    class Slow(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):  # type: ignore[no-untyped-def]
            if not first:
                first.append(time.time())
                _write(os.path.join(out, f"step-{tag}.json"), {"run_main": entered, "first_step": first[0],
                                                              "pid": os.getpid()})
            time.sleep(delay)

    model.fit(ds, epochs=1, verbose=0, callbacks=[Slow()])
