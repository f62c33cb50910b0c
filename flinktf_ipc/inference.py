"""Stream inference, the worker side: input rows in batches from the input ring, one result row per
input row back into the Flink stream through the output ring (docs/ARCHITECTURE.md, "Inference").

In the entry function the job runs (``run_main(context)``)::

    def run_main(context):
        ctx = TFContext(context)                     # or the plain worker context
        for batch in ctx.input_batches():            # len(batch) rows; batch["x"] -> NumPy
            ctx.emit({"id": batch["id"], "score": model(batch["x"])})
        # or, the same loop:
        ctx.serve(lambda batch: {"id": batch["id"], "score": model(batch["x"])})

The rule: every input row gets exactly one output row, in order, and a batch is answered in full
before the next one is taken (``emit`` may be called several times per batch). Breaking it is a
``ValueError`` here at once (too many rows) or when the next batch is asked for (too few), so the
job fails with that message instead of waiting for results that never come.

Lone records are not held: a batch is whatever the input ring holds when it is asked for (the JVM
publishes a record within 1 ms, at once when the worker is idle), and :meth:`Session.emit`
publishes its batch at once.

The output stream is an ``arrow`` codec stream (docs/FORMAT.md) whose schema the JVM side chose
from ``output_row_type`` and put into the context file (``output_schema``); ``emit`` casts what
it is given to it (e.g. float64 scores to a FLOAT column) and raises ``TypeError`` naming the
column when a value cannot become that type.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from .arrow import ArrowRingReader, ArrowRingWriter, Ragged, column_to_numpy

DEFAULT_OUTPUT_CAPACITY = 16 << 20
_MAX_RECORDS = 64  # ring records (JVM batches) taken together into one input batch


class InputBatch:
    """Input rows handed to the worker together: ``len(batch)`` rows, ``batch["x"]`` a column as
    NumPy (a fixed-shape column as ``(n, *shape)``, a zero-copy view where Arrow allows it; a
    ragged column as :class:`flinktf_ipc.arrow.Ragged`), ``batch.to_arrow()`` the Arrow form.

    The arrays view the input ring: drop them (and the batch) once answered, so the space goes back.
    """

    __slots__ = ("_rb", "_ring")

    def __init__(self, rb: pa.RecordBatch, ring: str) -> None:
        self._rb = rb
        self._ring = ring

    def __len__(self) -> int:
        return int(self._rb.num_rows)

    def __getitem__(self, column: str) -> np.ndarray | Ragged:
        if column not in self._rb.schema.names:
            raise KeyError(f"{self._ring}: no input column {column!r}; the input has {self._rb.schema.names}")
        return column_to_numpy(self._rb.column(column), column, ring=self._ring)

    def __contains__(self, column: object) -> bool:
        return column in self._rb.schema.names

    @property
    def columns(self) -> list[str]:
        return list(self._rb.schema.names)

    def to_arrow(self) -> pa.RecordBatch:
        """The batch as a ``pyarrow.RecordBatch`` (zero-copy)."""
        return self._rb

    def to_dict(self) -> dict[str, np.ndarray | Ragged]:
        """Every column as NumPy."""
        return {c: self[c] for c in self.columns}

    def __repr__(self) -> str:
        return f"InputBatch({len(self)} rows, columns {self.columns})"


def output_schema_from_context(encoded: str) -> pa.Schema:
    """The schema the JVM put into the context file: base64 of an Arrow IPC Schema message."""
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(encoded)))


class Session:
    """One worker's inference loop over its input ring and output ring. Made once per context by
    :func:`session`; the worker context's ``input_batches``/``emit``/``serve`` delegate to it."""

    def __init__(self, input_ring: str | None, output_ring: str, output_schema: pa.Schema,
                 output_capacity: int = DEFAULT_OUTPUT_CAPACITY, open_timeout: float = 60.0, *,
                 matched: bool = True) -> None:
        self.input_ring = input_ring
        # matched=False: a TF cluster role's output rows (output_row_type), any number of them, not
        # answers to input rows; the stream ends when run_main returns (flinktf_ipc.worker closes it).
        self.matched = matched
        self.output_ring = output_ring
        self.schema = output_schema
        # The output ring first: the JVM side waits for it before it sends results on their way.
        self._out = ArrowRingWriter.create(output_ring, output_schema, capacity=output_capacity)
        self._in: ArrowRingReader | None = None
        self._open_timeout = open_timeout
        self.received = 0  # input rows handed out
        self.answered = 0  # output rows emitted
        self._batch_rows = 0  # rows of the batch being answered
        self._iterating = False
        self._closed = False

    # ---- input ----------------------------------------------------------------------------------

    def input_batches(self) -> Iterator[InputBatch]:
        """Batches of input rows until the end of the stream, each whatever the ring holds."""
        if self._iterating:
            raise RuntimeError("input_batches() is already being iterated")
        if self._closed:
            return
        if self.input_ring is None:
            raise ValueError("input_batches: this process reads no input from Flink (an unfed role, or batch mode)")
        self._iterating = True
        try:
            if self._in is None:
                self._in = ArrowRingReader(self.input_ring, timeout=self._open_timeout, max_records=_MAX_RECORDS)
            stream = self._in.stream
            while True:
                items = stream.read(None)
                if items is None:
                    break
                rbs = [rb for rb in items if rb.num_rows]
                del items
                if not rbs:
                    continue
                rb = rbs[0] if len(rbs) == 1 else pa.Table.from_batches(rbs).combine_chunks().to_batches()[0]
                del rbs
                self._batch_rows = rb.num_rows
                self.received += rb.num_rows
                batch = InputBatch(rb, self.input_ring)
                del rb
                yield batch
                del batch  # the ring space must not stay pinned while we wait for the next
                # Before waiting for more: the JVM waits for these answers before it sends more.
                self._check_answered("input_batches: before the next batch")
            self._check_answered("input_batches: at the end of the input")
            if self.matched:
                self.close()
        finally:
            self._iterating = False

    def _check_answered(self, where: str) -> None:
        if not self.matched:
            return
        missing = self.received - self.answered
        if missing:
            raise ValueError(f"{where}: the last batch of {self._batch_rows} input rows got "
                             f"{self._batch_rows - missing} output rows; emit() exactly one output row per "
                             f"input row (output ring {self.output_ring})")

    # ---- output ---------------------------------------------------------------------------------

    def emit(self, result: Mapping[str, Any] | pa.RecordBatch | pa.Table) -> None:
        """Writes result rows (the next ones of the current batch, in order) and publishes them.

        ``result``: a mapping of column name -> array-like with one row per input row (NumPy,
        TensorFlow tensors, lists), or a ``pyarrow.RecordBatch``/``Table``; columns are cast to the
        output row type. Raises ValueError for a wrong row count or column set, TypeError for a
        value that cannot become its column's type.
        """
        if self._closed:
            raise ValueError(f"{self.output_ring}: emit() after the end of the input")
        rb = self._to_batch(result)
        n = rb.num_rows
        if self.matched and self.answered + n > self.received:
            raise ValueError(f"emit: {n} output rows, but only {self.received - self.answered} input rows are "
                             f"unanswered (the batch has {self._batch_rows}); one output row per input row "
                             f"(output ring {self.output_ring})")
        if n == 0:
            return
        self._out.write_batch(rb)
        self.answered += n

    def serve(self, fn: Callable[[InputBatch], Any]) -> None:
        """Calls ``fn(batch)`` for every input batch and emits what it returns, until the end."""
        for batch in self.input_batches():
            out = fn(batch)
            del batch
            self.emit(out)
            del out

    def _to_batch(self, result: Any) -> pa.RecordBatch:
        if isinstance(result, pa.Table):
            result = result.combine_chunks()
            batches = result.to_batches()
            result = batches[0] if batches else pa.RecordBatch.from_pylist([], schema=result.schema)
        if isinstance(result, pa.RecordBatch):
            if result.schema.equals(self.schema):
                return result
            columns = {name: result.column(name) for name in result.schema.names}
        elif isinstance(result, Mapping):
            columns = dict(result)
        else:
            raise TypeError(f"emit() takes a mapping of column -> array or a pyarrow.RecordBatch, "
                            f"got {type(result).__name__}")
        names = self.schema.names
        missing = [c for c in names if c not in columns]
        extra = [c for c in columns if c not in names]
        if missing or extra:
            raise ValueError(f"emit: the output row type has columns {names}; "
                             f"missing {missing}, unknown {extra}")
        arrays = [_to_arrow(columns[f.name], f) for f in self.schema]
        lengths = {f.name: len(a) for f, a in zip(self.schema, arrays, strict=True)}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"emit: columns of different lengths {lengths}")
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def close(self) -> None:
        """Ends the output stream (after the end of the input: the JVM then sees every result)."""
        if self._closed:
            return
        self._closed = True
        self._out.close()
        if self._in is not None:
            self._in.close()

    def abort(self) -> None:
        """Ends the output stream as incomplete (the entry failed)."""
        if not self._closed:
            self._closed = True
            self._out.abort()


def _dims(t: pa.DataType) -> tuple[list[int], pa.DataType]:
    """The fixed shape of nested fixed_size_lists and their leaf type."""
    dims: list[int] = []
    while pa.types.is_fixed_size_list(t):
        dims.append(t.list_size)
        t = t.value_type
    return dims, t


def _numpy(value: Any) -> Any:
    if isinstance(value, (pa.Array, pa.ChunkedArray, np.ndarray, list, tuple)):
        return value
    if hasattr(value, "numpy"):  # tf.Tensor, torch.Tensor
        return value.numpy()
    return np.asarray(value)


def _to_arrow(value: Any, field: pa.Field) -> pa.Array:
    """One output column as an Arrow array of the field's type; TypeError naming the column."""
    t = field.type
    value = _numpy(value)
    try:
        if isinstance(value, pa.ChunkedArray):
            value = value.combine_chunks()
        if isinstance(value, pa.Array):
            return value if value.type.equals(t) else value.cast(t, safe=True)
        dims, leaf = _dims(t)
        if dims:
            arr = np.asarray(value)
            if arr.ndim < 1 or tuple(arr.shape[1:]) != tuple(dims):
                raise ValueError(f"an array of shape (n, {', '.join(map(str, dims))}) is needed, got {arr.shape}")
            flat: pa.Array = pa.array(np.ascontiguousarray(arr).reshape(-1)).cast(leaf, safe=True)
            for d in reversed(dims):
                flat = pa.FixedSizeListArray.from_arrays(flat, d)
            return flat
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            if isinstance(value, np.ndarray) and value.ndim >= 2:
                value = list(value)
            return pa.array([None if v is None else np.asarray(v).reshape(-1) for v in value], type=t)
        if isinstance(value, np.ndarray):
            if value.ndim > 1 and all(d == 1 for d in value.shape[1:]):
                value = value.reshape(value.shape[0])  # (n, 1) from a Dense(1) head is one value per row
            if value.ndim != 1:
                raise ValueError(f"one value per row is needed, got an array of shape {value.shape}")
            return pa.array(value).cast(t, safe=True)
        return pa.array(value, type=t)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError, TypeError) as e:
        raise TypeError(f"emit: column {field.name!r} must be {t}: {e}") from None


def session(context: Any) -> Session:
    """The inference session of a worker context (made at the first call, from its context file
    keys ``rings``, ``output_ring``, ``output_schema``, ``output_capacity``)."""
    ctx = context
    while not hasattr(ctx, "rings") and hasattr(ctx, "context"):  # a TFContext wraps the worker context
        ctx = ctx.context
    s = getattr(ctx, "_inference_session", None)
    if s is None:
        output_ring = getattr(ctx, "output_ring", None)
        schema = getattr(ctx, "output_schema", None)
        cluster = getattr(ctx, "cluster", None) is not None
        if not output_ring or not schema:
            if cluster:
                raise ValueError("this TF cluster has no output row type: emit() needs train(..., output_row_type="
                                 "Types.ROW_NAMED(...)) or TFClusterConfig.builder().output(...)")
            raise ValueError("this worker has no output ring: input_batches/emit/serve need a job built with "
                             "flinktf_ipc.tf_cluster.inference(...)")
        if cluster:  # a role's output rows: any number, from any role, fed or not
            s = Session(ctx.rings[0] if len(ctx.rings) == 1 else None, output_ring,
                        output_schema_from_context(schema),
                        int(getattr(ctx, "output_capacity", None) or DEFAULT_OUTPUT_CAPACITY), matched=False)
            ctx._inference_session = s
            return s
        if len(ctx.rings) != 1:
            raise ValueError(f"inference needs exactly one input ring, this worker has {len(ctx.rings)}")
        s = Session(ctx.rings[0], output_ring, output_schema_from_context(schema),
                    int(getattr(ctx, "output_capacity", None) or DEFAULT_OUTPUT_CAPACITY))
        ctx._inference_session = s
    return s


def input_batches(context: Any) -> Iterator[InputBatch]:
    """:meth:`Session.input_batches` of the context's session."""
    return session(context).input_batches()


def emit(context: Any, result: Mapping[str, Any] | pa.RecordBatch | pa.Table) -> None:
    """:meth:`Session.emit` of the context's session."""
    session(context).emit(result)


def serve(context: Any, fn: Callable[[InputBatch], Any]) -> None:
    """:meth:`Session.serve` of the context's session."""
    session(context).serve(fn)





# ---- the job side: the PyFlink API ----------------------------------------------------------------


def inference(num_workers: int, run_main: Callable[[Any], Any] | str, properties: Mapping[str, Any] | None = None,
              stream_env: Any = None, input_ds: Any = None, output_row_type: Any = None, *,
              input_row_type: Any = None, name: str = "inference", input_shapes: Mapping[str, Any] | None = None,
              output_shapes: Mapping[str, Any] | None = None, batch_rows: int = 1024,
              batch_bytes: int = 1 << 20, linger_us: int = 1000, in_flight: int = 8192,
              input_capacity: int = 16 << 20, output_capacity: int = 16 << 20,
              result_timeout: float | None = None, heartbeat_interval: float = 1.0,
              heartbeat_timeout: float = 10.0, worker_python: str | None = None,
              worker_log_dir: str | None = None, base_dir: str | None = None) -> Any:
    """Scores every row of ``input_ds`` with ``run_main``'s model in ``num_workers`` TF worker
    processes and returns a PyFlink ``DataStream`` of ``output_row_type`` rows: one per input row,
    in input order per worker (the input is rebalanced over the workers).

    ``input_row_type`` declares the input's row type when the stream does not carry a
    ``Types.ROW_NAMED`` type itself (e.g. a stream from ``StreamTableEnvironment.to_data_stream``).
    ``run_main(context)`` is a module-level function; it loops over ``context.input_batches()``
    and ``emit``s, or calls ``context.serve(fn)`` (``TFContext(context)`` works too). The rest:
    ``properties`` reach the workers; ``input_shapes``/``output_shapes`` give array columns a
    fixed shape (NumPy ``(n, *shape)`` on the worker); a batch holds at most ``batch_rows`` rows
    and waits at most ``linger_us`` (rounded up to whole milliseconds: a Flink processing-time
    timer) for more while the worker is busy (none while it is idle); ``in_flight`` rows per
    worker may wait for their result (sent in batches, kept in checkpoints and sent again after a
    restore). ``result_timeout`` (seconds, default none) fails the job when rows wait and the
    worker answered nothing for that long.
    """
    from pyflink.common.typeinfo import RowTypeInfo
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway

    from . import flink

    if not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"inference: num_workers must be an int >= 1, got {num_workers!r}")
    if input_ds is None:
        raise ValueError("inference: input_ds (a DataStream of Rows) is required")
    if not isinstance(output_row_type, RowTypeInfo):
        raise ValueError(f"inference: output_row_type must be Types.ROW_NAMED(...), got {output_row_type!r}")
    from .tf_cluster import entry_of  # one rule for how a worker finds run_main

    entry = entry_of(run_main)
    del stream_env  # the job is input_ds's (seed-compatible argument); flink.configure() registered the jar
    gateway = get_gateway()
    jvm = gateway.jvm
    b = jvm.io.flinktf.ipc.inference.InferenceConfig.builder()
    call = flink._java_call

    def shape(d: Any) -> Any:
        dims = [int(x) for x in d]
        arr = gateway.new_array(jvm.int, len(dims))
        for i, x in enumerate(dims):
            arr[i] = x
        return arr

    call("inference", lambda: b.setName(name).setWorkers(num_workers).setEntry(entry)
         .setOutputType(output_row_type.get_java_type_info())
         .setBatch(int(batch_rows), int(batch_bytes)).setLingerMicros(int(linger_us)).setInFlight(int(in_flight))
         .setCapacities(int(input_capacity), int(output_capacity))
         .setResultTimeoutMillis(0 if result_timeout is None else max(1, int(result_timeout * 1000)))
         .setHeartbeatIntervalMillis(int(heartbeat_interval * 1000))
         .setHeartbeatTimeoutMillis(int(heartbeat_timeout * 1000)))
    if input_row_type is not None:
        if not isinstance(input_row_type, RowTypeInfo):
            raise ValueError(f"inference: input_row_type must be Types.ROW_NAMED(...), got {input_row_type!r}")
        call("inference", lambda: b.setInputType(input_row_type.get_java_type_info()))
    for k, v in (properties or {}).items():
        b.setProperty(str(k), str(v))
    for col, d in (input_shapes or {}).items():
        b.setInputShape(str(col), shape(d))
    for col, d in (output_shapes or {}).items():
        b.setOutputShape(str(col), shape(d))
    if worker_python is not None:
        b.setPython(str(worker_python))
    if worker_log_dir is not None:
        import os
        b.setLogDir(os.path.abspath(worker_log_dir))
    if base_dir is not None:
        import os
        b.setBaseDir(os.path.abspath(base_dir))
    j_out = call("inference", lambda: jvm.io.flinktf.ipc.inference.Inference.addTo(input_ds._j_data_stream, b))
    return DataStream(j_out)

__all__ = ["InputBatch", "Session", "emit", "inference", "input_batches", "output_schema_from_context",
           "serve", "session"]
