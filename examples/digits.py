"""Real data: scikit-learn's handwritten digits, read by Flink, learned by TensorFlow.

The 1,797 8x8 images that ship with scikit-learn are written to a CSV file; a PyFlink job reads it
with Flink's filesystem connector, scales the pixels and shapes them into an 8x8 array column in
SQL, and sends the rows through ``arrow_sink`` to a TensorFlow worker. The worker trains a small
convolutional network on four fifths of the rows and reports its accuracy on the fifth it held
out (every row whose id is a multiple of 5).

Run ``python -P examples/digits.py`` (or ``flinktf-ipc demo --example digits`` from a checkout).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

PIXELS = ", ".join(f"CAST(p{i} AS FLOAT) / 16" for i in range(64))


def train(context) -> None:  # type: ignore[no-untyped-def]
    """Worker entry: gathers the stream, trains, evaluates on the held-out fifth."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    xs, ys, test = [], [], []
    for features, label in context.dataset(features=["pixels", "is_test"], label="label", batch_size=256, copy=True):
        xs.append(features["pixels"].numpy())
        test.append(features["is_test"].numpy())
        ys.append(label.numpy())
    x, y, t = np.concatenate(xs)[..., None], np.concatenate(ys), np.concatenate(test)
    tf.keras.utils.set_random_seed(int(context.properties.get("seed", "1")))
    model = tf.keras.Sequential([
        tf.keras.Input((8, 8, 1)),
        tf.keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
        tf.keras.layers.MaxPooling2D(),
        tf.keras.layers.Conv2D(64, 3, activation="relu", padding="same"),
        tf.keras.layers.Flatten(),
        tf.keras.layers.Dense(64, activation="relu"),
        tf.keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[~t], y[~t], epochs=int(context.properties.get("epochs", "30")), batch_size=64, verbose=0)
    _, accuracy = model.evaluate(x[t], y[t], verbose=0)
    out = context.checkpoint_dir or tempfile.mkdtemp(prefix="digits-")
    os.makedirs(out, exist_ok=True)
    model.save(os.path.join(out, "model.keras"))
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"train_rows": int((~t).sum()), "test_rows": int(t.sum()), "accuracy": float(accuracy),
                   "model": os.path.join(out, "model.keras")}, f)


def run(workdir: str, epochs: int) -> dict:
    from pyflink.common import Types
    from pyflink.table import StreamTableEnvironment
    from sklearn.datasets import load_digits

    from flinktf_ipc import flink, flink_arrow

    digits = load_digits()
    csv = os.path.join(workdir, "digits.csv")
    with open(csv, "w") as f:
        for i, (row, label) in enumerate(zip(digits.data.astype(int), digits.target, strict=True)):
            f.write(",".join(map(str, [i, label, *row])) + "\n")
    env = flink.configure(restart_attempts=0)
    env.set_parallelism(1)
    t_env = StreamTableEnvironment.create(env)
    columns = ", ".join(f"p{i} INT" for i in range(64))
    t_env.execute_sql(f"""CREATE TEMPORARY TABLE digits (id BIGINT, label BIGINT, {columns})
        WITH ('connector' = 'filesystem', 'path' = '{csv}', 'format' = 'csv')""")
    rows = t_env.to_data_stream(t_env.sql_query(
        f"SELECT ARRAY[{PIXELS}] AS pixels, MOD(id, 5) = 0 AS is_test, label FROM digits"))
    row_type = Types.ROW_NAMED(["pixels", "is_test", "label"],
                               [Types.PRIMITIVE_ARRAY(Types.FLOAT()), Types.BOOLEAN(), Types.LONG()])
    ckpt = os.path.join(workdir, "model")
    flink_arrow.arrow_sink(rows, row_type, name="digits", shapes={"pixels": (8, 8)}, capacity=16 << 20,
                           worker_entry=f"{os.path.abspath(__file__)}:train", checkpoint_dir=ckpt,
                           worker_properties={"epochs": str(epochs)})
    env.execute("flinktf-ipc example: digits")
    with open(os.path.join(ckpt, "0", "metrics.json")) as f:
        return json.load(f)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix="flinktf-digits-")
    m = run(workdir, args.epochs)
    print(f"digits: trained on {m['train_rows']} images streamed from Flink, "
          f"accuracy {m['accuracy']:.1%} on {m['test_rows']} held-out images; model at {m['model']}")
    return 0 if m["accuracy"] > 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
