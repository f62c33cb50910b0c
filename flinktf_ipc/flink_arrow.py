"""PyFlink: a stream of Rows into rings as Arrow record batches (the ``arrow`` codec, docs/FORMAT.md).

The batching and the Arrow encoding run in Java (``io.flinktf.ipc.arrow.ArrowRings``), inside the
ring sink's writer: no Python on the per-record path, and rows of fixed-size columns (numbers,
arrays with a shape) are encoded straight into the ring. The user declares the row type the stream already
has, plus the shapes of fixed-shape array columns::

    from pyflink.common import Types
    from flinktf_ipc import flink, flink_arrow

    env = flink.configure(restart_attempts=0)
    row_type = Types.ROW_NAMED(["x", "y"], [Types.PRIMITIVE_ARRAY(Types.FLOAT()), Types.LONG()])
    sink = flink_arrow.arrow_sink(rows, row_type, name="mnist", shapes={"x": (28, 28)})
    env.execute("features")
    # each TF worker reads sink.ring_paths(parallelism) with flinktf_ipc.arrow.ArrowRingReader

Type mapping (Flink -> Arrow): TINYINT/SMALLINT/INT/BIGINT -> int8/16/32/64, FLOAT/DOUBLE ->
float32/64, BOOLEAN -> bool, STRING -> utf8, BYTES (``PRIMITIVE_ARRAY(BYTE())``) -> binary, arrays
(``PRIMITIVE_ARRAY`` or ``BASIC_ARRAY``) with a shape -> nested fixed_size_list (field metadata
``flinktf.shape``), without one -> list (ragged). Nulls are Arrow nulls; the reader applies the null
policy (flinktf_ipc.arrow).

The declared type must be the type the values have: a value of another Java type (a Float in a
column declared ``Types.LONG()``, a Long in one declared ``Types.INT()``) fails the job with the
column, the declared and the actual type; nothing is narrowed, rounded or truncated. CAST in the
query to get the type you declare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyflink.common.typeinfo import RowTypeInfo
from pyflink.datastream import DataStream
from pyflink.datastream.data_stream import DataStreamSink

from . import flink

__all__ = ["ArrowSink", "arrow_sink"]

# RingSinkBuilder setters a caller may pass through; the codec fixes the encoder and the alignment.
_SINK_OPTIONS = ("base_dir", "capacity", "write_timeout", "flush_timeout", "batch_records",
                 "worker_entry", "worker_python", "heartbeat_interval", "heartbeat_timeout",
                 "worker_shutdown_grace", "worker_exit_grace", "worker_properties", "checkpoint_dir",
                 "worker_log_dir", "per_job_dir")
_DEFAULT_BATCH_BYTES = 4 << 20


class ArrowSink:
    """What :func:`arrow_sink` made: the PyFlink ``DataStreamSink`` and where the rings are."""

    def __init__(self, data_stream_sink: DataStreamSink, ring_sink: flink.RingSink) -> None:
        self.data_stream_sink = data_stream_sink
        self._ring_sink = ring_sink

    def ring_path(self, subtask: int, job_id: str | None = None) -> str:
        """The ring file subtask ``subtask`` writes (``job_id``: for a per-job directory)."""
        return self._ring_sink.ring_path(subtask, job_id=job_id)

    def ring_paths(self, parallelism: int, job_id: str | None = None) -> list[str]:
        """The ring files of subtasks 0..parallelism-1 (``job_id``: for a per-job directory, which
        every sink with a worker entry has: ``env.execute_async(...).get_job_id()``)."""
        if parallelism < 1:
            raise ValueError(f"parallelism must be >= 1, got {parallelism}")
        return [self.ring_path(i, job_id) for i in range(parallelism)]


def arrow_sink(stream: DataStream, row_type: RowTypeInfo, *, name: str,
               shapes: Mapping[str, Sequence[int]] | None = None,
               batch_size: int | None = None, batch_rows: int | None = None,
               batch_bytes: int | None = None, linger_ms: int = 100, **sink_options: Any) -> ArrowSink:
    """Sinks ``stream`` (its elements are Rows of ``row_type``) into one ring per subtask,
    ``<base_dir>/<name>-<i>.ring``, as an ``arrow`` codec stream.

    - ``shapes``: fixed shapes of array columns, e.g. ``{"x": (28, 28)}``; other arrays are ragged.
    - A batch is cut at ``batch_rows`` rows (default 1024), at ``batch_bytes`` bytes of column
      buffers (default 4 MiB, at most an eighth of ``capacity``), when its first row is
      ``linger_ms`` old, before every checkpoint barrier, and at end of input.
    - ``batch_size``: the TF batch size of the reader. Batches are then cut only at multiples of
      it (``batch_rows`` must be one; default: the largest multiple up to 1024), so each ring
      record holds whole TF batches, and the stream declares it: ``ring_dataset`` (and
      ``context.dataset``) without ``batch_size`` use it and hand the batches on without
      re-batching them.
    - ``sink_options``: ``base_dir``, ``capacity``, ``write_timeout``, ``flush_timeout``,
      ``batch_records``, and the worker options (``worker_entry``, ``worker_python``,
      ``heartbeat_interval``, ``heartbeat_timeout``, ``worker_shutdown_grace``,
      ``worker_exit_grace``, ``worker_properties``, ``checkpoint_dir``, ``worker_log_dir``: the sink then starts and
      watches one TensorFlow worker per ring) as for :class:`flinktf_ipc.flink.RingSinkBuilder`.

    :func:`flinktf_ipc.flink.configure` must have registered the jar. A type without an Arrow
    mapping, a bad shape or a bad option raises ValueError with the Java message.
    """
    if not isinstance(row_type, RowTypeInfo):
        raise ValueError(f"arrow_sink: row_type must be a Types.ROW_NAMED(...) row type, got {row_type!r}")
    unknown = sorted(set(sink_options) - set(_SINK_OPTIONS))
    if unknown:
        raise ValueError(f"arrow_sink: unknown sink option(s) {unknown}; known: {', '.join(_SINK_OPTIONS)} "
                         "(the arrow codec sets the encoder and align=64 itself)")
    builder = flink.RingSink.builder().name(name)
    for key in _SINK_OPTIONS:
        if key in sink_options:
            getattr(builder, key)(sink_options[key])
    if batch_bytes is None:
        batch_bytes = _DEFAULT_BATCH_BYTES
        if "capacity" in sink_options:
            batch_bytes = max(64, min(batch_bytes, int(sink_options["capacity"]) // 8))

    from pyflink.java_gateway import get_gateway
    gateway = get_gateway()
    jvm = gateway.jvm
    j_shapes = jvm.java.util.HashMap()
    for column, shape in (shapes or {}).items():
        dims = [int(d) for d in shape]
        j_dims = gateway.new_array(jvm.int, len(dims))
        for i, d in enumerate(dims):
            j_dims[i] = d
        j_shapes.put(str(column), j_dims)
    j_arrow = jvm.io.flinktf.ipc.arrow
    options = flink._java_call("arrow_sink", lambda: j_arrow.ArrowBatchOptions.defaults()
                               .setBatchBytes(int(batch_bytes)).setLingerMillis(int(linger_ms)))
    if batch_size is not None:
        flink._java_call("arrow_sink", lambda: options.setBatchSize(int(batch_size)))
    if batch_rows is not None:
        flink._java_call("arrow_sink", lambda: options.setBatchRows(int(batch_rows)))
    j_sink = flink._java_call("arrow_sink", lambda: j_arrow.ArrowRings.sinkTo(
        stream._j_data_stream, row_type.get_java_type_info(), j_shapes, builder._j, options))
    return ArrowSink(DataStreamSink(j_sink), builder.build())

