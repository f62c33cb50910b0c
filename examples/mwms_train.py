"""One Keras model trained with ``model.fit`` by two Flink-fed workers (MultiWorkerMirroredStrategy).

Flink makes the rows (``id``, a 4-float feature vector ``x``, a target ``y`` that is a linear
function of ``x``) and spreads them over the two workers of a TF cluster, each through its own ring;
the workers train **one** model: every step averages the gradients of both (all-reduce), so both
hold the same weights all along. The chief (worker 0) keeps a TF checkpoint every few steps and
saves the model at the end; after a failure the whole cluster restarts, every worker restores the
chief's checkpoint, and Flink replays the input from its last checkpoint (at-least-once).

Keras 3's ``model.fit`` fails under this strategy (keras-team/keras#20585); the role processes run
tf-keras (Keras 2) as ``tf.keras``: the package ``tf-keras`` is installed and the worker sets
``TF_USE_LEGACY_KERAS=1`` before TensorFlow is imported (unless you set it yourself).

Run ``python -P examples/mwms_train.py [--rows N] [--workdir DIR]``.
Properties the role processes read (all optional): ``out`` (a directory for a JSON report per
worker and the ids it trained on), ``step_delay`` (seconds of sleep per step in attempt 0: to watch
it, or to kill a worker mid-training), ``checkpoint_steps`` (default 20).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

FEATURES = 4
COEF = (2.0, -1.0, 0.5, 3.0)  # y = x . COEF + 1


def run_main(context) -> None:  # type: ignore[no-untyped-def]
    """Every worker: the same model under MultiWorkerMirroredStrategy, fit on its share of the stream."""
    import numpy as np
    import tensorflow as tf

    from flinktf_ipc.tf_cluster import TFContext

    ctx = TFContext(context)
    props = ctx.properties
    out = props.get("out")
    delay = float(props.get("step_delay", "0")) if ctx.attempt == 0 else 0.0
    every = int(props.get("checkpoint_steps", "20"))
    tag = f"{ctx.get_task_index()}-{ctx.attempt}"

    strategy = tf.distribute.MultiWorkerMirroredStrategy()  # reads TF_CONFIG, which the job set
    with strategy.scope():
        model = tf.keras.Sequential([tf.keras.Input((FEATURES,)), tf.keras.layers.Dense(8, activation="relu"),
                                     tf.keras.layers.Dense(1)])
        model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
        ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    # Every worker restores the chief's checkpoint (same host or a shared filesystem); each writes
    # its own (MWMS wants every worker to save), but only the chief's is kept.
    chief_dir = ctx.chief_checkpoint_dir or tempfile.mkdtemp(prefix="mwms-chief-")
    own_dir = chief_dir if ctx.is_chief else os.path.join(ctx.checkpoint_dir or tempfile.mkdtemp(), "scratch")
    latest = tf.train.latest_checkpoint(chief_dir)
    if latest:
        ckpt.restore(latest)
    manager = tf.train.CheckpointManager(ckpt, own_dir, max_to_keep=2)
    restored_step = int(model.optimizer.iterations.numpy())

    ids_file = open(os.path.join(out, f"ids-{tag}.bin"), "ab") if out else None  # noqa: SIM115

    def keep_ids(ids: np.ndarray) -> np.ndarray:
        if ids_file is not None:
            ids_file.write(ids.astype("<i8").tobytes())
            ids_file.flush()
        return ids

    def split(features, y):  # type: ignore[no-untyped-def]
        ids = tf.numpy_function(keep_ids, [features["id"]], tf.int64)  # the ids this worker trained on
        with tf.control_dependencies([ids]):
            return tf.identity(features["x"]), y

    ds = ctx.dataset(features=["x", "id"], label="y", batch_size=64).map(split)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF  # Flink shards
    ds = ds.with_options(options)

    class Progress(tf.keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):  # type: ignore[no-untyped-def]
            step = int(model.optimizer.iterations.numpy())
            ctx.progress({"step": step})
            if step % every == 0:
                manager.save(checkpoint_number=step)  # every worker, the same steps (MWMS)
            if delay:
                time.sleep(delay)

    if out:
        with open(os.path.join(out, f"start-{tag}.json"), "w") as f:
            json.dump({"restored_step": restored_step, "restored_from": latest, "pid": os.getpid(), "epoch": ctx.epoch,
                       "tf_config": ctx.get_tf_config()}, f)
    try:
        loss = model.fit(ds, epochs=1, verbose=0, callbacks=[Progress()]).history["loss"][-1]
    except ValueError as e:  # tf-keras: no step at all (a restart after Flink had delivered everything)
        if "Empty logs" not in str(e):
            raise
        loss = float("nan")
    if ids_file is not None:
        ids_file.close()
    steps = int(model.optimizer.iterations.numpy())
    manager.save(checkpoint_number=steps)
    # The model: the chief's copy is the one; the others save too (MWMS) into scratch space.
    model_dir = os.path.join(chief_dir, "model") if ctx.is_chief else tempfile.mkdtemp(prefix="mwms-model-")
    model.save(model_dir)
    if not ctx.is_chief:
        shutil.rmtree(model_dir, ignore_errors=True)
        shutil.rmtree(own_dir, ignore_errors=True)
    weights = np.concatenate([w.numpy().ravel() for w in model.weights]).astype(float)
    report = {"worker": ctx.get_task_index(), "attempt": ctx.attempt, "steps": steps, "restored_step": restored_step,
              "loss": float(loss), "weights": weights.tolist(),
              "model": model_dir if ctx.is_chief else None}
    print(json.dumps({k: v for k, v in report.items() if k != "weights"}), flush=True)
    if out:
        with open(os.path.join(out, f"done-{tag}.json"), "w") as f:
            json.dump(report, f)


def build(env, rows: int, *, checkpoint_dir: str, properties: dict[str, object], **options: object) -> None:  # type: ignore[no-untyped-def]
    """The job: a sequence of ids -> features in Flink SQL -> a TF cluster of two fed workers.
    ``options``: more :class:`TFClusterConfigBuilder` settings, e.g. ``base_dir``, ``ring_capacity``,
    ``heartbeat=dict(timeout=...)``."""
    from pyflink.common import Types, WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource
    from pyflink.table import StreamTableEnvironment

    from flinktf_ipc.tf_cluster import TFClusterConfig

    t_env = StreamTableEnvironment.create(env)
    seq = env.from_source(NumberSequenceSource(0, rows - 1), WatermarkStrategy.no_watermarks(), "ids")
    t_env.create_temporary_view("seq", t_env.from_data_stream(seq))
    x = [f"CAST(MOD(f0 * {p}, 101) AS FLOAT) / 101" for p in (7, 13, 29, 31)]
    y = " + ".join(f"{c} * {xi}" for c, xi in zip(COEF, x, strict=True)) + " + 1"
    table = t_env.sql_query(f"SELECT f0 AS id, ARRAY[{', '.join(x)}] AS x, CAST({y} AS FLOAT) AS y FROM seq")
    row_type = Types.ROW_NAMED(["id", "x", "y"], [Types.LONG(), Types.PRIMITIVE_ARRAY(Types.FLOAT()), Types.FLOAT()])
    builder = (TFClusterConfig.builder().name("mwms").role("worker", 2)
               .entry(run_main)
               .input(t_env.to_data_stream(table), row_type, shapes={"x": (FEATURES,)}, batch_rows=256)
               .properties(properties)
               .checkpoint_dir(checkpoint_dir))
    for key, value in options.items():
        if isinstance(value, dict):
            getattr(builder, key)(**value)
        else:
            getattr(builder, key)(value)
    builder.build().add_to(env)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)
    from flinktf_ipc import flink

    workdir = args.workdir or tempfile.mkdtemp(prefix="flinktf-mwms-")
    out = os.path.join(workdir, "out")
    os.makedirs(out, exist_ok=True)
    env = flink.configure(restart_attempts=2)
    env.enable_checkpointing(1000)
    build(env, args.rows, checkpoint_dir=os.path.join(workdir, "ckpt"), properties={"out": out})
    env.execute("flinktf-ipc example: one model, two Flink-fed workers (MultiWorkerMirroredStrategy)")
    done = [json.load(open(os.path.join(out, f))) for f in sorted(os.listdir(out)) if f.startswith("done-")]
    same = len({tuple(d["weights"]) for d in done}) == 1
    print(f"mwms: {len(done)} workers, {done[0]['steps']} steps, loss {done[0]['loss']:.4f}, "
          f"identical weights: {same}, model at {[d['model'] for d in done if d['model']][0]}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
