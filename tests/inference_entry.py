"""Worker entries of tests/test_inference.py and bench/bench_inference.py (run in worker processes)."""

from __future__ import annotations

import os
import signal
from typing import Any

import numpy as np


def numpy_main(context: Any) -> None:
    """y = 2x + 1 with NumPy, through the issue's API: TFContext(context).serve(fn)."""
    from flinktf_ipc.tf_cluster import TFContext

    TFContext(context).serve(lambda b: {"id": b["id"], "y": 2 * b["x"] + 1})


def keras_model() -> Any:
    """A Keras model with y = 2x + 1 exactly: Dense(1), kernel 2, bias 1."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    inp = keras.Input(shape=(1,), dtype="float32")
    out = keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(2.0),
                             bias_initializer=keras.initializers.Constant(1.0))(inp)
    return keras.Model(inp, out)


def keras_main(context: Any) -> None:
    """y = 2x + 1 with a Keras model, called on each batch as a function (no predict loop)."""
    import tensorflow as tf

    model = keras_model()
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    for batch in context.input_batches():
        x = batch["x"].reshape(-1, 1)
        context.emit({"id": batch["id"], "y": fn(tf.constant(x))})


def failing_main(context: Any) -> None:
    """Like numpy_main, but attempt 0 sends itself `signal` (SIGKILL: dies; SIGSTOP: stalls, its
    heartbeat stops) after `kill_after` rows (mid-stream)."""
    kill_after = int(context.properties.get("kill_after", "0"))
    sig = getattr(signal, context.properties.get("signal", "SIGKILL"))
    seen = 0
    for batch in context.input_batches():
        seen += len(batch)
        if context.attempt == 0 and kill_after and seen >= kill_after:
            os.kill(os.getpid(), sig)
        context.emit({"id": batch["id"], "y": 2 * batch["x"] + 1})


def too_few_main(context: Any) -> None:
    for batch in context.input_batches():
        n = len(batch) - 1 if len(batch) > 1 else 0
        context.emit({"id": batch["id"][:n], "y": (2 * batch["x"] + 1)[:n]})


def too_many_main(context: Any) -> None:
    for batch in context.input_batches():
        context.emit({"id": np.concatenate([batch["id"], [-1]]), "y": np.concatenate([2 * batch["x"] + 1, [0]])})


def wrong_type_main(context: Any) -> None:
    context.serve(lambda b: {"id": b["id"], "y": np.array(["not a float"] * len(b))})
