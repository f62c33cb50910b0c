"""Worker entry for the failover tests (tests/test_failover.py), run by ``flinktf_ipc.worker``.

Reads the ring of 8-byte little-endian record ids and appends them to
``<out>/ids-<index>-<attempt>.bin``, flushed per batch *before* the batch is released: an id the
ring counts as consumed is in the file, so the file is a lower bound of what the job delivered.
Also writes ``<out>/pid-<index>-<attempt>`` so the test knows whom to kill. Property
``delay_attempt0``: seconds to sleep per batch in attempt 0 (keeps the stream going long enough to
be interrupted).
"""

from __future__ import annotations

import json
import os
import time

import numpy as np


def main(context) -> None:  # type: ignore[no-untyped-def]
    out = context.properties["out"]
    tag = f"{context.index}-{context.attempt}"
    delay = float(context.properties.get("delay_attempt0", "0")) if context.attempt == 0 else 0.0
    with open(os.path.join(out, f"context-{tag}.json"), "w") as f:
        json.dump({"attempt": context.attempt, "index": context.index, "checkpoint_dir": context.checkpoint_dir,
                   "rings": context.rings}, f)
    with open(os.path.join(out, f"pid-{tag}.tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.replace(os.path.join(out, f"pid-{tag}.tmp"), os.path.join(out, f"pid-{tag}"))
    n = 0
    with context.reader(timeout=60) as r, open(os.path.join(out, f"ids-{tag}.bin"), "ab") as f:
        while True:
            batch = r.read_batch(256, timeout=60)
            if not len(batch):
                break
            ids = batch.as_array(np.uint64)[:, 0]
            f.write(ids.tobytes())
            f.flush()
            n += len(ids)
            del ids, batch  # only now is the space (and the records) given back to the writer
            context.progress({"records": n})
            if delay:
                time.sleep(delay)


def fails(context) -> None:  # type: ignore[no-untyped-def]
    """Reads a little, then fails the way user code does: the task must show this traceback."""
    with context.reader(timeout=60) as r:
        r.read_batch(16, timeout=60)
    raise ValueError(f"feature column 'x' has NaN in attempt {context.attempt}")
