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
import glob
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

PIXELS = ", ".join(f"CAST(p{i} AS FLOAT) / 16" for i in range(64))


def train(context) -> None:  # type: ignore[no-untyped-def]
    """Worker entry: gathers the stream, trains, evaluates on the held-out fifth."""
    out = context.checkpoint_dir or tempfile.mkdtemp(prefix="digits-")
    os.makedirs(out, exist_ok=True)

    def phase(text: str) -> None:  # read by the driver, which prints each phase once
        with open(os.path.join(out, "phase.tmp"), "w") as f:
            f.write(text)
        os.replace(os.path.join(out, "phase.tmp"), os.path.join(out, "phase"))

    phase("importing TensorFlow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    phase("streaming the images from Flink")
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
    phase(f"training {int(context.properties.get('epochs', '30'))} epochs on {int((~t).sum())} images")
    model.fit(x[~t], y[~t], epochs=int(context.properties.get("epochs", "30")), batch_size=64, verbose=0)
    _, accuracy = model.evaluate(x[t], y[t], verbose=0)
    phase("saving the model")
    model.save(os.path.join(out, "model.keras"))
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"train_rows": int((~t).sum()), "test_rows": int(t.sum()), "accuracy": float(accuracy),
                   "model": os.path.join(out, "model.keras")}, f)


def run(workdir: str, epochs: int, seed: int) -> dict:
    from pyflink.common import Configuration, Types
    from pyflink.table import StreamTableEnvironment
    from sklearn.datasets import load_digits

    from flinktf_ipc import flink, flink_arrow

    digits = load_digits()
    csv = os.path.join(workdir, "digits.csv")
    with open(csv, "w") as f:
        for i, (row, label) in enumerate(zip(digits.data.astype(int), digits.target, strict=True)):
            f.write(",".join(map(str, [i, label, *row])) + "\n")
    log_dir = os.path.join(workdir, "logs")
    flink_tmp = os.path.join(workdir, "flink-tmp")
    os.makedirs(flink_tmp, exist_ok=True)
    # The gateway JVM's own temp files (its RPC system's 24 MB jar, caches) go there too: a JVM
    # that does not exit cleanly leaves them behind, in this run's folder instead of /tmp.
    os.environ["JVM_ARGS"] = f"{os.environ.get('JVM_ARGS', '')} -Djava.io.tmpdir={flink_tmp}".strip()
    env = flink.configure(restart_attempts=0, log_dir=os.path.join(log_dir, "flink"))
    conf = Configuration()
    conf.set_string("io.tmp.dirs", flink_tmp)  # the mini-cluster's temp files go, with this run's folder
    env.configure(conf)
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
                           worker_log_dir=log_dir, worker_properties={"epochs": str(epochs), "seed": str(seed)})
    print("phase: starting Flink", flush=True)
    client = env.execute_async("flinktf-ipc example: digits")
    done = threading.Event()
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            client.get_job_execution_result().result()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    last = ""
    try:
        while not done.wait(1.0):
            try:
                with open(os.path.join(ckpt, "0", "phase")) as f:
                    now = f.read()
            except OSError:
                continue
            if now != last:
                print(f"phase: {now}", flush=True)
                last = now
    except KeyboardInterrupt:
        for sig in (signal.SIGINT, signal.SIGTERM):  # one is enough (a terminal's Ctrl-C also comes forwarded)
            signal.signal(sig, signal.SIG_IGN)
        try:
            client.cancel().result()
        except Exception:  # noqa: BLE001 - the JVM may be going down with the same Ctrl-C
            pass
        done.wait(60)
        # the job's rings go once its worker has exited (the sink removes them)
        rings = os.path.join(glob.escape(flink.job_dir(None, str(client.get_job_id()))), "*.ring")
        deadline = time.monotonic() + 30
        while glob.glob(rings) and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(flink_tmp, ignore_errors=True)
        raise
    shutil.rmtree(flink_tmp, ignore_errors=True)
    if errors:
        with open(os.path.join(log_dir, "job-error.txt"), "w") as f:
            f.write(str(errors[0]))
        raise RuntimeError(f"the job failed; full error in {os.path.join(log_dir, 'job-error.txt')}, logs in {log_dir}")
    with open(os.path.join(ckpt, "0", "metrics.json")) as f:
        return json.load(f)


def _raise_interrupt(signum, frame):  # type: ignore[no-untyped-def]
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=os.environ.get("FLINKTF_DEMO_PROG", "python -P examples/digits.py"),
                                 description=__doc__.split("\n\nRun ")[0].replace("``", ""),  # plain words
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="example:\n  %(prog)s --epochs 10")
    ap.add_argument("--epochs", type=int, default=30, help="training passes over the streamed images (default 30)")
    ap.add_argument("--seed", type=int, default=1, help="random seed of the model (default 1)")
    ap.add_argument("--workdir", default=None, help="folder for the model and logs (default: a new temp folder)")
    args = ap.parse_args(argv)
    if not 1 <= args.epochs <= 1000:
        print(f"{ap.prog}: --epochs must be between 1 and 1000, got {args.epochs}", file=sys.stderr)
        return 2
    workdir = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix="flinktf-digits-")
    os.makedirs(workdir, exist_ok=True)
    print(f"digits: output in {workdir}, logs in {os.path.join(workdir, 'logs')}", flush=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        m = run(workdir, args.epochs, args.seed)
    except KeyboardInterrupt:
        print(f"cancelled; logs in {os.path.join(workdir, 'logs')}", file=sys.stderr)
        return 130
    except RuntimeError as e:
        print(f"digits FAILED: {e}", file=sys.stderr)
        return 1
    print(f"digits: trained on {m['train_rows']} images streamed from Flink, "
          f"accuracy {m['accuracy']:.1%} on {m['test_rows']} held-out images; model at {m['model']}")
    return 0 if m["accuracy"] > 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
