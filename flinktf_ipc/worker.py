"""The TensorFlow worker process: ``python -m flinktf_ipc.worker`` runs the user's entry function.

The JVM side starts it with ``FLINKTF_WORKER_CONTEXT`` naming a JSON context file (format in
docs/FORMAT.md). The worker writes its own heartbeat file, watches the writer's, and calls
``main(context)`` of the user's module::

    def main(context):
        ds = context.dataset(features=["x"], label="y", batch_size=256)
        ...

Exit status: 0 when the entry returned, 1 when it raised (traceback on stderr), 3 when the
writer side was lost (its process gone or its heartbeat stale): the worker never waits forever;
4 when the entry cannot be found (one line on stderr: the JVM fails the job without restarts).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import entry as entrym
from . import heartbeat as hbm
from .errors import PeerLost
from .ring import RingReader

CONTEXT_ENV = "FLINKTF_WORKER_CONTEXT"
CONTEXT_VERSION = 1
EXIT_FAILED = 1
EXIT_PEER_LOST = 3


@dataclass
class WorkerContext:
    """What the job tells its worker: rings, identity, heartbeat files, properties."""

    entry: str
    rings: list[str]
    role: str = "worker"
    index: int = 0
    attempt: int = 0
    heartbeat: str | None = None
    peer_heartbeat: str | None = None
    heartbeat_interval: float = hbm.DEFAULT_INTERVAL
    heartbeat_timeout: float = hbm.DEFAULT_TIMEOUT
    checkpoint_dir: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    cluster: dict[str, Any] | None = None  # a TF cluster's role process (flinktf_ipc._cluster_worker)
    output_ring: str | None = None  # inference: where results go (flinktf_ipc.inference)
    output_schema: str | None = None  # inference: base64 Arrow IPC Schema message of the results
    output_capacity: int | None = None
    _heartbeat: hbm.HeartbeatWriter | None = field(default=None, repr=False)
    _cluster_info: Any = field(default=None, repr=False)
    _cluster_spec: Any = field(default=None, repr=False)
    _inference_session: Any = field(default=None, repr=False)

    @classmethod
    def load(cls, path: str) -> WorkerContext:
        with open(path, encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
        version = data.pop("version", None)
        if version != CONTEXT_VERSION:
            raise ValueError(f"{path}: worker context version {version}, this library reads {CONTEXT_VERSION}")
        known = {k for k in cls.__dataclass_fields__ if not k.startswith("_")}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown worker context keys {sorted(unknown)}")
        return cls(**data)

    def dataset(self, **kwargs: Any) -> Any:
        """A ``tf.data.Dataset`` over this worker's rings (see :func:`flinktf_ipc.tf.ring_dataset`)."""
        from .tf import ring_dataset

        return ring_dataset(self.rings, **kwargs)

    def reader(self, timeout: float | None = 60.0) -> RingReader:
        """The raw reader of this worker's (single) ring."""
        if len(self.rings) != 1:
            raise ValueError(f"reader() needs exactly one ring, this worker has {len(self.rings)}")
        return RingReader.open(self.rings[0], timeout=timeout)

    def input_batches(self) -> Iterator[Any]:
        """Inference: batches of input rows (see :mod:`flinktf_ipc.inference`)."""
        from . import inference

        return inference.input_batches(self)

    def emit(self, result: Any) -> None:
        """Inference: one output row per input row of the current batch, in order."""
        from . import inference

        inference.emit(self, result)

    def serve(self, fn: Callable[[Any], Any]) -> None:
        """Inference: ``emit(fn(batch))`` for every input batch until the end of the input."""
        from . import inference

        inference.serve(self, fn)

    def progress(self, counts: Mapping[str, int]) -> None:
        """Reports progress counters in this worker's heartbeat."""
        if self._heartbeat is not None:
            self._heartbeat.progress(counts)


def load_entry(entry: str) -> Callable[[WorkerContext], Any]:
    """``package.module:function`` or ``/path/to/file.py:function`` (function defaults to main)."""
    target, _, name = entry.partition(":")
    name = name or "main"
    if target.endswith(".py"):
        spec = importlib.util.spec_from_file_location("flinktf_user_entry", target)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {target}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise entrym.EntryNotFound(f"worker entry '{entry}': module {target} has no function {name}")
    return fn  # type: ignore[no-any-return]


def _load(ctx: WorkerContext) -> Callable[[WorkerContext], Any]:
    """The entry function; a TF cluster's role process first joins its cluster (gets the spec)."""
    if ctx.cluster is None:
        return load_entry(ctx.entry)
    from . import _cluster_worker

    return _cluster_worker.join(ctx, lambda: load_entry(ctx.entry))  # type: ignore[no-any-return]


def _watch_writer(ctx: WorkerContext, hb: hbm.HeartbeatWriter, stop: threading.Event) -> None:
    """Ends the process when the writer side is lost, so the worker never waits forever.

    Lost: its process is gone, its heartbeat is stale, or no valid heartbeat (missing,
    unreadable, garbage) was seen for longer than the timeout. The watchdog never dies silently:
    an unexpected error is reported on stderr and counts as a missed heartbeat."""
    assert ctx.peer_heartbeat is not None
    last_ok = time.monotonic()
    reported: str | None = None
    while not stop.wait(ctx.heartbeat_interval):
        try:
            verdict, peer = hbm.check(ctx.peer_heartbeat, ctx.heartbeat_timeout)
        except Exception as e:  # noqa: BLE001 - check() returns verdicts; this is a bug, not a reason to stop watching
            verdict, peer = hbm.Liveness.UNREADABLE, None
            if reported != repr(e):
                reported = repr(e)
                print(f"flinktf_ipc.worker: the writer watchdog could not check {ctx.peer_heartbeat}: {e!r}",
                      file=sys.stderr, flush=True)
        now = time.monotonic()
        if verdict in (hbm.Liveness.ALIVE, hbm.Liveness.FINISHED, hbm.Liveness.FAILED):
            last_ok = now
            continue
        unseen = now - last_ok
        if verdict in (hbm.Liveness.MISSING, hbm.Liveness.UNREADABLE) and unseen <= ctx.heartbeat_timeout:
            continue
        if peer is not None:
            what = f"{verdict.value}: pid {peer.pid}, heartbeat age {peer.age():.1f} s"
        else:
            what = f"{verdict.value}: no valid heartbeat for {unseen:.1f} s (timeout {ctx.heartbeat_timeout} s)"
        msg = f"{PeerLost.__name__}: the writer side ({ctx.peer_heartbeat}) is {what}"
        print(msg, file=sys.stderr, flush=True)
        try:
            hb.stop(hbm.State.FAILED, msg)
        finally:
            os._exit(EXIT_PEER_LOST)


def _watchdog(ctx: WorkerContext, hb: hbm.HeartbeatWriter, stop: threading.Event) -> None:
    """Runs :func:`_watch_writer`; if it ever ends by an error, the process ends too (a worker
    whose watchdog died could wait forever for a writer that is gone)."""
    try:
        _watch_writer(ctx, hb, stop)
    except BaseException:  # noqa: BLE001 - reported, then the process exits
        traceback.print_exc()
        print("flinktf_ipc.worker: the writer watchdog failed; exiting", file=sys.stderr, flush=True)
        os._exit(EXIT_FAILED)


def run(ctx: WorkerContext) -> int:
    """Runs the entry under heartbeats; returns the exit status."""
    hb = hbm.HeartbeatWriter(ctx.heartbeat, ctx.role, ctx.heartbeat_interval) if ctx.heartbeat else None
    ctx._heartbeat = hb
    stop = threading.Event()
    if hb is not None:
        # "starting" while the entry and TensorFlow load: loading a big native library holds the
        # GIL, so this thread may miss beats; the JVM allows a starting worker its startup grace.
        hb.start(hbm.State.STARTING)
        if ctx.peer_heartbeat:
            threading.Thread(target=_watchdog, args=(ctx, hb, stop), name="writer-watch", daemon=True).start()
    try:
        entry = _load(ctx)
        if hb is not None:
            hb.set_state(hbm.State.RUNNING)
        entry(ctx)
        if ctx.cluster is not None and ctx.output_ring:
            from . import inference

            inference.session(ctx).close()  # a cluster role's output rows end here (the ring made if none came)
    except BaseException as e:  # noqa: BLE001 - every failure is reported, then the process exits
        traceback.print_exc()
        if ctx._inference_session is not None:
            ctx._inference_session.abort()  # the results are incomplete: never a clean end of stream
        stop.set()
        if hb is not None:
            hb.stop(hbm.State.FAILED, f"{type(e).__name__}: {e}")
        if isinstance(e, entrym.EntryNotFound):
            return entrym.EXIT_BAD_ENTRY
        return EXIT_PEER_LOST if isinstance(e, PeerLost) else EXIT_FAILED
    stop.set()
    if hb is not None:
        hb.stop(hbm.State.FINISHED)
    return 0


def main() -> int:
    path = os.environ.get(CONTEXT_ENV)
    if not path:
        print(f"flinktf_ipc.worker: {CONTEXT_ENV} is not set (the JVM side sets it)", file=sys.stderr)
        return 2
    ctx = WorkerContext.load(path)
    if not check_entry(ctx):
        return entrym.EXIT_BAD_ENTRY
    return run(ctx)


def check_entry(ctx: WorkerContext) -> bool:
    """Before anything else (no heartbeat, no TensorFlow): the entry must resolve here, with the
    directories the client passed (``flinktf.python_path``) after site-packages. Else one line on
    stderr and False: exit status 4 makes the JVM fail the job at once."""
    extra = [d for d in ctx.properties.get(entrym.PYTHON_PATH_PROPERTY, "").split(os.pathsep) if d]
    try:
        entrym.check(ctx.entry, extra)
    except entrym.EntryNotFound as e:
        print(f"flinktf_ipc.worker: {e}", file=sys.stderr, flush=True)
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
