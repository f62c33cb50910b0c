"""Role entries for tests/test_tf_cluster_output.py: role processes that emit output rows
(``output_row_type``), run by ``flinktf_ipc.worker`` in every role process."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from flinktf_ipc.tf_cluster import TFContext

STEPS = 5


def metrics(context) -> None:  # type: ignore[no-untyped-def]
    """Per-step metrics, one emit per step (a mapping), then two more rows as a RecordBatch."""
    ctx = TFContext(context)
    task = f"{ctx.get_job_name()}:{ctx.get_task_index()}"
    for step in range(STEPS):
        ctx.emit({"task": [task], "step": np.array([step]), "loss": np.array([1.0 / (step + 1)], np.float32)})
    ctx.emit(pa.RecordBatch.from_pydict({"task": [task, task], "step": [100, 101], "loss": [0.5, 0.25]}))


def wrong_type(context) -> None:  # type: ignore[no-untyped-def]
    """Worker 1 emits a step that is not a number: its emit raises TypeError, the job fails."""
    ctx = TFContext(context)
    ctx.emit({"task": ["ok"], "step": [0], "loss": [0.0]})
    if ctx.get_task_index() == 1:
        ctx.emit({"task": ["bad"], "step": ["not a number"], "loss": [0.0]})


def garbage(context) -> None:  # type: ignore[no-untyped-def]
    """Writes the output ring by hand, with a record that is not the arrow stream's header."""
    from flinktf_ipc.ring import RingWriter

    w = RingWriter.create(context.output_ring, capacity=1 << 16, align=64)
    w.write(b"this is not an arrow stream")
    w.close()
    time.sleep(600)  # the JVM fails the task on the first record and stops this process
