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
line (phase, rows/s and MB/s over the last seconds, ring fill, loss and AUC, restarts) and a
summary; each worker leaves model.keras, curves.png and TensorBoard logs in its checkpoint folder.
Ctrl-C (or SIGTERM) cancels the job: no worker, ring or Flink temp folder is left behind.
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


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def save_curves(history: list[dict], path: str, title: str, auc_label: str = "AUC (running, of the epoch)") -> None:
    """Loss and AUC against rows trained, one PNG (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.ticker import FuncFormatter

    points = [h for h in history if not h.get("epoch_start")]
    rows = [h["rows"] for h in points]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(rows, [h["loss"] for h in points], marker=".")
    ax1.set(xlabel="rows trained", ylabel="loss (running mean of the epoch)", title="loss")
    ax2.plot(rows, [h["auc"] for h in points], marker=".", color="tab:green")
    ax2.set(xlabel="rows trained", ylabel=auc_label, title="AUC")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / 1e6:g} M" if v >= 1e6 else f"{v / 1e3:g} K"))
        for h in history:
            if h.get("epoch_start") and h["rows"]:
                ax.axvline(h["rows"], color="grey", lw=0.8, ls="--")  # where an epoch starts
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(context) -> None:  # type: ignore[no-untyped-def]
    """Worker entry: trains on this worker's ring until the stream ends, then ``epochs - 1`` more
    passes over the rows it cached (the input is bounded: the first pass streams it, the others
    replay it from memory). Writes metrics.json (live), curves.png and TensorBoard logs beside
    the saved model."""
    ckpt_dir = context.checkpoint_dir or tempfile.mkdtemp(prefix="ctr-")
    os.makedirs(ckpt_dir, exist_ok=True)
    metrics_path = os.path.join(ckpt_dir, "metrics.json")
    epochs = int(context.properties.get("epochs", "1"))
    state = {"phase": "importing TensorFlow", "steps": 0, "rows": 0, "streamed": 0, "loss": None, "auc": None,
             "epoch": 0, "epochs": epochs, "attempt": context.attempt}
    _write_json(metrics_path, state)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_inter_op_parallelism_threads(1)
    batch = int(context.properties.get("batch_size", "1024"))
    model = build_model()
    ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    manager = tf.train.CheckpointManager(ckpt, os.path.join(ckpt_dir, "ckpt"), max_to_keep=2)
    if manager.latest_checkpoint:  # a restarted attempt resumes from its own last checkpoint
        ckpt.restore(manager.latest_checkpoint)
    rows_streamed = tf.Variable(0, dtype=tf.int64, trainable=False)
    rows_trained = tf.Variable(0, dtype=tf.int64, trainable=False)

    def counter(var):  # type: ignore[no-untyped-def]
        def count(x, y):  # type: ignore[no-untyped-def]
            var.assign_add(tf.shape(y, out_type=tf.int64)[0])
            return x, y
        return count

    train_model = context.properties.get("train", "1") != "0"
    # copy=True: cached batches must own their memory (a view would pin ring space for good).
    ds = context.dataset(features=FEATURES, label="click", batch_size=batch, copy=train_model and epochs > 1)
    ds = ds.map(counter(rows_streamed))
    if not train_model:  # feed only: how much of the time is the feed's
        state["phase"] = "streaming (no training)"
        _write_json(metrics_path, state)
        for b in ds:
            del b  # as a training step does: a checkpoint waits until the worker let go of it
        _write_json(metrics_path, state | {"phase": "done", "rows": int(rows_streamed.numpy()),
                                           "streamed": int(rows_streamed.numpy())})
        return
    if epochs > 1:
        ds = ds.cache()  # epoch 1 streams from the ring and fills the cache; epochs 2.. replay it
    ds = ds.map(counter(rows_trained))
    tb = tf.summary.create_file_writer(os.path.join(ckpt_dir, "tensorboard"))
    history: list[dict] = []

    class Report(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):  # type: ignore[no-untyped-def]
            state["epoch"] = epoch + 1
            state["phase"] = "streaming + training" if epoch == 0 else "training on the cached rows"
            history.append({"rows": int(rows_trained.numpy()), "loss": float("nan"), "auc": float("nan"),
                            "epoch_start": True})

        def on_train_batch_end(self, step, logs=None):  # type: ignore[no-untyped-def]
            state["steps"] += 1
            if state["steps"] % 20 == 0:
                self.write(logs)
            if state["steps"] % 500 == 0:
                manager.save()

        def write(self, logs):  # type: ignore[no-untyped-def]
            rows = int(rows_trained.numpy())
            state.update(rows=rows, streamed=int(rows_streamed.numpy()), loss=float(logs["loss"]),
                         auc=float(logs["auc"]))
            history.append({"rows": rows, "loss": state["loss"], "auc": state["auc"]})
            with tb.as_default():
                tf.summary.scalar("loss", state["loss"], step=rows)
                tf.summary.scalar("auc", state["auc"], step=rows)
            _write_json(metrics_path, state)
            context.progress({"rows": rows})

    report = Report()
    hist = model.fit(ds, epochs=epochs, verbose=0, callbacks=[report])
    state["phase"] = "saving"
    report.write({k: v[-1] for k, v in hist.history.items()})  # the last epoch's averages
    manager.save()
    model.save(os.path.join(ckpt_dir, "model.keras"))
    tb.flush()
    save_curves(history, os.path.join(ckpt_dir, "curves.png"),
                f"worker {context.index} (attempt {context.attempt}): {state['rows']:,} rows, {epochs} epoch(s)")
    outputs = {"model": os.path.join(ckpt_dir, "model.keras"), "curves": os.path.join(ckpt_dir, "curves.png"),
               "TensorBoard": f"tensorboard --logdir {os.path.join(ckpt_dir, 'tensorboard')}"}
    _write_json(metrics_path, state | {"phase": "done", "outputs": outputs})


# ---- the driver: builds and runs the Flink job -----------------------------------------------

SUPERVISOR_NOTE = "[flinktf-ipc supervisor] "  # WorkerSupervisor.NOTE_PREFIX: its verdicts in a worker log


class Progress:
    """What the driver knows about the job, from files only: the rings (ring_stat), the workers'
    metrics.json and their log files (supervisor verdicts, restarted attempts)."""

    def __init__(self, name: str, parallelism: int, ring_dir: str, ckpt_root: str, log_dir: str) -> None:
        from flinktf_ipc.demo import WindowRate

        self.name, self.parallelism = name, parallelism
        self.ring_dir, self.ckpt_root, self.log_dir = ring_dir, ckpt_root, log_dir
        self.t0 = time.monotonic()
        self.ring_bytes: dict[str, int] = {}  # last bytes_in per ring file (a finished ring's file is gone)
        self.rates = WindowRate()  # rows streamed and ring bytes, over the last few seconds
        self.fill = 0.0

    def rings(self) -> list[str]:
        return sorted(glob.glob(os.path.join(glob.escape(self.ring_dir), f"{self.name}-*.ring")))

    def workers(self) -> list[dict]:
        out = []
        for m in sorted(glob.glob(os.path.join(self.ckpt_root, "*", "metrics.json"))):
            try:
                with open(m) as f:
                    out.append(json.load(f) | {"dir": os.path.dirname(m)})
            except (OSError, ValueError):
                continue
        return out

    def incidents(self) -> tuple[int, list[str]]:
        """(restarted attempts, the supervisor's verdicts) from the worker log files."""
        logs = glob.glob(os.path.join(glob.escape(self.log_dir), f"flinktf-{self.name}-*.worker.err"))
        restarts = sum(".attempt" in os.path.basename(p) for p in logs)
        notes = []
        for p in sorted(logs):
            try:
                with open(p, errors="replace") as f:
                    notes += [line.split(SUPERVISOR_NOTE, 1)[1].strip() for line in f if SUPERVISOR_NOTE in line]
            except OSError:
                continue
        return restarts, notes

    def phase(self, workers: list[dict], job_running: bool) -> str:
        if not self.rings() and not workers:
            return "starting Flink" if job_running else "finishing"
        # workers not yet seen are starting; each worker's phase once, in order (they may differ)
        phases = [w.get("phase", "") for w in workers] + ["starting"] * (self.parallelism - len(workers))
        if all(p == "done" for p in phases):
            return "finishing" if job_running else "done"
        distinct = list(dict.fromkeys("workers " + p if p.startswith(("importing", "starting")) else p
                                      for p in phases))
        if len(distinct) > 1:
            return " | ".join(distinct)
        if distinct[0] == "saving":
            return "saving models"
        if distinct[0].startswith("workers "):
            return distinct[0]
        epochs = [f"{w.get('epoch', 0)}/{w.get('epochs', 1)}" for w in workers]
        return phases[0] + (f" (epoch {', '.join(epochs)})" if workers[0].get("epochs", 1) > 1 else "")

    def line(self, job_running: bool = True) -> str:
        from flinktf_ipc import ring_stat

        fills = []
        for p in self.rings():
            try:
                st = ring_stat(p)
            except Exception:  # noqa: BLE001 - not created yet or already removed
                continue
            self.ring_bytes[p] = st.bytes_in
            fills.append(st.fill)
        self.fill = max(fills, default=0.0)
        workers = self.workers()
        streamed = sum(w.get("streamed", 0) for w in workers)
        now = time.monotonic()
        rows_s, bytes_s = self.rates.add(now, streamed, sum(self.ring_bytes.values()))
        losses = [w["loss"] for w in workers if w.get("loss") is not None]
        aucs = [w["auc"] for w in workers if w.get("auc") is not None]
        restarts, _ = self.incidents()
        text = (f"{now - self.t0:6.1f}s  {self.phase(workers, job_running):<30}  streamed {streamed:>10,} rows  "
                f"{rows_s / 1e3:7.1f} K rows/s  {bytes_s / 1e6:6.2f} MB/s  fill {self.fill:5.1%}")
        if losses:
            text += f"  loss {sum(losses) / len(losses):.4f}  AUC {sum(aucs) / len(aucs):.4f}"
        if restarts:
            text += f"  RESTARTS {restarts}"
        return text


def _root_cause(e: BaseException) -> str:
    """The innermost message of a failed job (a Py4J error wraps Flink's wrappers of it)."""
    jex = getattr(e, "java_exception", None)
    if jex is None:
        return f"{type(e).__name__}: {e}"
    msg = None
    while jex is not None:
        m = jex.getMessage()
        if m:
            msg = f"{jex.getClass().getSimpleName()}: {m}"
        jex = jex.getCause()
    return msg or str(e).splitlines()[0]


def run(args: argparse.Namespace, workdir: str, entry: str | None = None,
        title: str = "click-through model") -> dict:
    """Runs the job; ``entry`` is the workers' function (default :func:`train` of this file)."""
    from pyflink.common import Configuration, Types
    from pyflink.table import StreamTableEnvironment

    from flinktf_ipc import flink, flink_arrow

    log_dir = os.path.join(workdir, "logs")
    flink_tmp = os.path.join(workdir, "flink-tmp")
    os.makedirs(flink_tmp, exist_ok=True)
    # The gateway JVM's own temp files (its RPC system's 24 MB jar, caches) go there too: a JVM
    # that does not exit cleanly leaves them behind, in this run's folder instead of /tmp.
    os.environ["JVM_ARGS"] = f"{os.environ.get('JVM_ARGS', '')} -Djava.io.tmpdir={flink_tmp}".strip()
    env = flink.configure(restart_attempts=2, log_dir=os.path.join(log_dir, "flink"))
    conf = Configuration()
    conf.set_string("io.tmp.dirs", flink_tmp)  # the mini-cluster's temp files go, with this run's folder
    env.configure(conf)
    env.set_parallelism(args.parallelism)
    env.enable_checkpointing(5000)
    t_env = StreamTableEnvironment.create(env)
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE impressions (user_id INT, item_id INT, hour_of_day INT, price DOUBLE) WITH (
          'connector' = 'datagen', 'number-of-rows' = '{args.rows}', 'rows-per-second' = '{args.rate}',
          'fields.user_id.min' = '1', 'fields.user_id.max' = '50000',
          'fields.item_id.min' = '0', 'fields.item_id.max' = '{ITEMS - 1}',
          'fields.hour_of_day.min' = '0', 'fields.hour_of_day.max' = '23',
          'fields.price.min' = '5', 'fields.price.max' = '200')""")
    stream = t_env.to_data_stream(t_env.sql_query(FEATURE_SQL))
    row_type = Types.ROW_NAMED(FEATURES + ["click"],
                               [Types.LONG(), Types.LONG(), Types.LONG(), Types.FLOAT(), Types.LONG()])
    ckpt_root = os.path.join(workdir, "checkpoints")
    name = f"ctr{os.getpid()}"  # two demos at once do not share rings
    flink_arrow.arrow_sink(
        stream, row_type, name=name, batch_rows=4096, linger_ms=200, capacity=64 << 20,
        worker_entry=entry or f"{os.path.abspath(__file__)}:train", checkpoint_dir=ckpt_root, worker_log_dir=log_dir,
        worker_properties={"batch_size": "1024", "train": "0" if args.no_train else "1", "epochs": str(args.epochs)})
    client = env.execute_async(f"flinktf-ipc demo: {title}")
    # a sink with workers keeps the job's rings in a directory of its own, named by the job id
    progress = Progress(name, args.parallelism, flink.job_dir(None, str(client.get_job_id())), ckpt_root, log_dir)
    outcome: dict[str, object] = {}

    def wait() -> None:
        try:
            client.get_job_execution_result().result()
            outcome["status"] = "FINISHED"
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            outcome["error"] = e

    job = threading.Thread(target=wait, name="flink-job", daemon=True)
    job.start()
    interactive = sys.stdout.isatty()
    try:
        while job.is_alive():
            job.join(0.5 if interactive else 5)
            print(("\r" if interactive else "") + progress.line(), end="" if interactive else "\n", flush=True)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: cancel the job, wait for its workers and rings to go
        for sig in (signal.SIGINT, signal.SIGTERM):  # one is enough (a terminal's Ctrl-C also comes forwarded)
            signal.signal(sig, signal.SIG_IGN)
        print(("\n" if interactive else "") + "cancelling the job ...", flush=True)
        try:
            client.cancel().result()
        except Exception:  # noqa: BLE001 - the JVM may be going down with the same Ctrl-C
            pass
        job.join(60)
        deadline = time.monotonic() + 30
        while progress.rings() and time.monotonic() < deadline:
            time.sleep(0.2)
        shutil.rmtree(flink_tmp, ignore_errors=True)
        raise
    shutil.rmtree(flink_tmp, ignore_errors=True)
    print(("\r" if interactive else "") + progress.line(job_running=False))
    restarts, notes = progress.incidents()
    result = {"seconds": time.monotonic() - progress.t0, "rows": args.rows, "workers": progress.workers(),
              "restarts": restarts, "notes": notes, "logs": log_dir}
    if "error" in outcome:
        error = outcome["error"]
        with open(os.path.join(log_dir, "job-error.txt"), "w") as f:
            f.write(str(error))
        result |= {"status": "FAILED", "cause": _root_cause(error)}  # type: ignore[arg-type]
    else:
        result["status"] = str(outcome["status"])
    return result


def check_options(args: argparse.Namespace) -> list[str]:
    """Every bad option, one line each, before anything starts."""
    problems = []
    max_parallelism = 16
    if args.parallelism < 1 or args.parallelism > max_parallelism:
        problems.append(f"--parallelism must be between 1 and {max_parallelism} (one TF process each), "
                        f"got {args.parallelism}")
    if args.rows < 1000 * max(args.parallelism, 1):
        problems.append(f"--rows must be at least 1000 per worker ({1000 * max(args.parallelism, 1):,} for "
                        f"--parallelism {args.parallelism}), got {args.rows:,}")
    if args.rate < 1:
        problems.append(f"--rate must be at least 1 row per second, got {args.rate}")
    if not 1 <= args.epochs <= 100:
        problems.append(f"--epochs must be between 1 and 100, got {args.epochs}")
    if args.workdir is not None:
        try:
            os.makedirs(args.workdir, exist_ok=True)
            tempfile.TemporaryFile(dir=args.workdir).close()
        except OSError as e:
            problems.append(f"--workdir {args.workdir} is not a writable directory ({e.strerror})")
    return problems


EPILOG = """examples:
  %(prog)s                                  4 M impressions, 2 workers, 2 epochs
  %(prog)s --rows 300000 --epochs 3         a quick run
  %(prog)s --no-train                       measure the feed alone

other demos: flinktf-ipc demo --example digits (a CNN on real data), --example torch (this job
feeding PyTorch), --example ring (the ring alone); flinktf-ipc demo --cluster submits it to the
local standalone cluster (flinktf-ipc cluster start).
Ctrl-C cancels the job and removes its rings and processes. Output: the --workdir folder
(checkpoints/<worker>/ model.keras, curves.png, tensorboard/; logs/ for the worker and Flink logs)."""


DESCRIPTION = ("The main job: Flink SQL features stream through shared-memory rings into one Keras\n"
               "click-through model per worker.")


def main(argv: list[str] | None = None, entry: str | None = None, script: str = "examples/ctr.py",
         description: str = DESCRIPTION, epilog: str = EPILOG, title: str = "click-through model") -> int:
    """The driver: options, the job, the summary. ``entry`` (the workers' function, default
    :func:`train`), ``script``, ``description``, ``epilog`` and ``title`` let another example
    (torch_train.py) run the same job with a worker of its own."""
    ap = argparse.ArgumentParser(prog=os.environ.get("FLINKTF_DEMO_PROG", f"python -P {script}"),
                                 description=description, epilog=epilog,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=4_000_000, help="impressions to generate (default 4,000,000)")
    ap.add_argument("--parallelism", type=int, default=2, help="Flink subtasks = rings = worker processes (default 2)")
    ap.add_argument("--rate", type=int, default=1_000_000, help="rows per second per subtask (default 1,000,000)")
    ap.add_argument("--epochs", type=int, default=2,
                    help="passes over the rows (default 2): the first streams them, the others replay a cache")
    ap.add_argument("--workdir", default=None, help="folder for models, curves and logs (default: a new temp folder)")
    ap.add_argument("--no-train", action="store_true", help="workers only read the stream (measures the feed)")
    args = ap.parse_args(argv)
    problems = check_options(args)
    if problems:
        for p in problems:
            print(f"{ap.prog}: {p}", file=sys.stderr)
        return 2
    stem = os.path.splitext(os.path.basename(script))[0]
    workdir = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix=f"flinktf-{stem}-")
    os.makedirs(workdir, exist_ok=True)
    print(f"flinktf-ipc demo: {args.rows:,} impressions, parallelism {args.parallelism}, {args.epochs} epoch(s)\n"
          f"  output in {workdir}\n  logs in   {os.path.join(workdir, 'logs')}", flush=True)

    def on_term(signum, frame):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        result = run(args, workdir, entry, title)
    except KeyboardInterrupt:
        print(f"cancelled; logs in {os.path.join(workdir, 'logs')}", file=sys.stderr)
        return 130
    trained = sum(w.get("rows", 0) for w in result["workers"])
    streamed = sum(w.get("streamed", 0) for w in result["workers"])
    print(f"\njob {result['status']} in {result['seconds']:.1f} s: {args.rows:,} impressions generated, "
          f"engineered and streamed; {streamed:,} rows reached the workers, "
          f"{trained:,} rows trained over {1 if args.no_train else args.epochs} epoch(s) "
          f"({streamed / result['seconds'] / 1e3:.1f} K rows/s streamed end to end, start-up included)")
    if result["restarts"] or result["notes"]:
        print(f"restarted worker attempts: {result['restarts']}")
        for n in result["notes"]:
            print(f"  supervisor: {n}")
    if result["status"] != "FINISHED":
        print(f"demo FAILED: {result.get('cause')}\n  full error: {os.path.join(result['logs'], 'job-error.txt')}"
              f"\n  logs: {result['logs']}")
        return 1
    if args.no_train:
        ok = streamed == args.rows
        print("demo " + ("succeeded (feed only, no training)" if ok else "FAILED: not every row arrived"))
        return 0 if ok else 1
    for w in result["workers"]:
        d = w["dir"]
        loss, auc = w.get("loss") or float("nan"), w.get("auc") or float("nan")
        print(f"worker {os.path.basename(d)}: {w.get('steps', 0):,} steps, final loss {loss:.4f}, AUC {auc:.4f}")
        for what, where in (w.get("outputs") or {}).items():
            print(f"  {what + ':':<12} {where}")
    ok = len(result["workers"]) == args.parallelism and all((w.get("auc") or 0) > 0.6 for w in result["workers"])
    print("demo " + ("succeeded" if ok else "FAILED: a worker's AUC is not above 0.6") + f"; logs in {result['logs']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
