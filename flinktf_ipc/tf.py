"""``ring_dataset``: rings into an ordinary ``tf.data.Dataset`` of whole batches.

The readers are opened, and each ring's codec header and preamble (the Arrow schema) read, when
the dataset is built, so ``element_spec`` comes from the data itself and no data record is lost.
The dataset then reads the rings once, in arrival order, until every one reaches end of stream.

- ``arrow`` streams: Arrow types map to tensors as docs/FORMAT.md says (int8..64, uint8..64,
  float16/32/64, bool, utf8/binary -> tf.string, fixed_size_list / fixed_shape_tensor -> fixed
  shape, list -> ``tf.RaggedTensor``). Batches are cut to ``batch_size`` rows whatever the
  writer's batch size. Nulls follow the policy of :mod:`flinktf_ipc.arrow` (error naming the
  column, or ``defaults``).

  One batch size end to end: a stream whose writer was given the TF batch size
  (``arrow_sink(batch_size=...)``) declares it in its codec header (``{"batch_size": n}``) and
  holds whole batches of it in every record (the writer cuts only at multiples of it). Without
  ``batch_size``, the dataset takes the declared one (256 when the stream declares none) and hands
  each record on whole: no rows are gathered across records, none copied. A ``batch_size`` that
  does not divide the declared one still works, by re-batching (rows copied between records),
  and says so with a warning. :func:`batch_stats` counts which path the records took.

  Zero copy into TensorFlow: a batch inside one ring record is a NumPy view of the ring, and
  TensorFlow wraps a 64-byte aligned NumPy array without copying it (holding a reference to it);
  it copies arrays that are not aligned (a batch starting mid-record) or that were concatenated
  from several records. The whole batches of a record reach TF as one view, cut there (a
  batch shares the view's buffer when it starts 64-byte aligned), so the Python work is once per
  record, not per batch; ragged columns go batch by batch. So a numeric tensor may alias the
  ring: it never changes, and it holds its ring space until it is freed, like any view (a
  tensor kept forever stalls the writer once the ring comes round to it). ``copy=True``
  copies every batch out of the ring instead.
- ``example`` streams: ``batch_size`` serialized ``tf.train.Example`` records are parsed at once
  in the graph with ``tf.io.parse_example``, with the feature spec from the codec header.
- ``bytes`` (and other codecs): ``decode_fn(records)`` turns a list of ``batch_size`` record
  memoryviews into NumPy arrays matching ``output_signature``.

Errors of the rings (PeerLost, RingCorrupt, RingTimeout when ``timeout`` is set) end the
iteration with a TensorFlow error carrying their message. A ring dataset is a stream: it can be
iterated once.
"""

from __future__ import annotations

import glob
import os
import queue
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import tensorflow as tf

from .arrow import _NO_DEFAULT, Ragged, column_kind, column_to_numpy
from .codecs import CodecStream, ExampleDecoder
from .errors import RingTimeout
from .ring import RingReader

_END: Any = object()  # Any: `next(it, _END)` keeps the iterator's item type
DEFAULT_BATCH_SIZE = 256  # when neither the caller nor the stream gives one
_PAGE = 4096
_IDLE_SLICE = 0.25  # seconds between lettings-go of freed arrays while the rings are idle


def _ring_paths(paths_or_dir: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(paths_or_dir, (str, os.PathLike)):
        p = os.fspath(paths_or_dir)
        if os.path.isdir(p):
            found = sorted(os.path.join(p, f) for f in os.listdir(p)
                           if not f.startswith(".") and os.path.isfile(os.path.join(p, f)))
        elif glob.has_magic(p):
            found = sorted(glob.glob(p))
        else:
            found = [p]
        if not found:
            raise ValueError(f"{p}: no ring files found")
        return found
    found = [os.fspath(x) for x in paths_or_dir]
    if not found:
        raise ValueError("ring_dataset needs at least one ring path")
    return found


class _Merge:
    """Items of several streams in arrival order: one thread per ring feeds a bounded queue.

    A ring error is put in the queue and re-raised by the consumer; :meth:`close` stops the
    threads (they wait in slices of at most 250 ms, so they notice at once).
    """

    def __init__(self, streams: Sequence[CodecStream], timeout: float | None, depth: int) -> None:
        self.q: queue.Queue[Any] = queue.Queue(maxsize=depth * len(streams))
        self.stop = threading.Event()
        self.timeout = timeout
        self.threads = [threading.Thread(target=self._run, args=(s,), daemon=True,
                                         name=f"ring-reader-{i}") for i, s in enumerate(streams)]
        self.live = len(streams)
        for t in self.threads:
            t.start()

    def _put(self, item: Any) -> None:
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.25)
                return
            except queue.Full:
                continue

    def _run(self, stream: CodecStream) -> None:
        try:
            waited = 0.0
            while not self.stop.is_set():
                try:
                    items = stream.read(0.25)
                except RingTimeout:
                    waited += 0.25
                    if self.timeout is not None and waited >= self.timeout:
                        raise RingTimeout(f"{stream.ring}: no record for {self.timeout} s") from None
                    continue
                waited = 0.0
                if items is None:
                    break
                if items:
                    self._put(items)
                items = None  # holds ring space: never while waiting for the next run
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._put(e)
        finally:
            self._put(_END)

    def __iter__(self) -> Iterator[Any]:
        while self.live:
            x = _idle_read(lambda t: self.q.get(timeout=t) if t else self.q.get_nowait(), None, queue.Empty)
            if x is _END:
                self.live -= 1
            elif isinstance(x, BaseException):
                raise x
            else:
                it = iter(x)
                del x  # holds ring space: never while waiting for the next run
                yield from it

    def close(self) -> None:
        self.stop.set()
        while True:
            try:
                self.q.get_nowait()
            except queue.Empty:
                break
        for t in self.threads:
            t.join(timeout=5)


def _release_freed_arrays() -> None:
    """Lets go of the NumPy arrays whose tensors TensorFlow has freed since it last held the GIL.

    TF frees a tensor wrapping a NumPy array (a view of the ring) from any thread, so it only
    queues the array's decref and runs the queue when it next holds the GIL (an EagerTensor's
    dealloc, the end of a ``py_func`` call). A generator blocked inside ``py_func`` waiting for
    the ring would keep those arrays, and their ring space, for as long as the stream is idle:
    a writer's flush (Flink's checkpoint) waits for that space. A short-lived EagerTensor runs
    the queue.
    """
    tf.constant(0)


def _idle_read(read: Callable[[float], Any], timeout: float | None, empty: type[BaseException]) -> Any:
    """``read(0)``; while that finds nothing, freed arrays are let go and ``read`` waits in slices."""
    try:
        return read(0)
    except empty:
        pass
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        _release_freed_arrays()
        left = _IDLE_SLICE if deadline is None else min(_IDLE_SLICE, deadline - time.monotonic())
        try:
            return read(max(left, 0.0))
        except empty:
            if deadline is not None and time.monotonic() >= deadline:
                raise


def _single(stream: CodecStream, timeout: float | None) -> Iterator[Any]:
    while True:
        items = _idle_read(stream.read, timeout, RingTimeout)
        if items is None:
            return
        it = iter(items)
        del items  # holds ring space: never while waiting for the next run
        yield from it


# ---- arrow ---------------------------------------------------------------------------------------


def _tf_dtype(name: str) -> tf.DType:
    return tf.string if name == "string" else tf.as_dtype(np.dtype(name))


def _feature_names(features: str | Sequence[str] | None, label: str | None, names: Sequence[str]) -> list[str]:
    """The feature columns: one name, a list of names, or None for every column but the label."""
    if features is None:
        return [n for n in names if n != label]
    return [features] if isinstance(features, str) else list(features)


def _concat(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], Ragged):
        values = np.concatenate([p.values for p in parts])
        splits = [parts[0].row_splits]
        base = parts[0].row_splits[-1]
        for p in parts[1:]:
            splits.append(p.row_splits[1:] + base)
            base += p.row_splits[-1]
        return Ragged(values, np.concatenate(splits))
    return np.concatenate(parts)


class _ArrowPlan:
    """Which columns, how each maps to tensors, and how the flat components become the element."""

    def __init__(self, schema: Any, features: str | Sequence[str] | None, label: str | None,
                 defaults: Mapping[str, Any] | None, ring: str) -> None:
        names = schema.names
        feats = _feature_names(features, label, names)
        if not feats:
            raise ValueError(f"{ring}: no feature columns")
        for n in [*feats, *([label] if label else [])]:
            if n not in names:
                raise ValueError(f"{ring}: column {n!r} is not in the stream's schema ({', '.join(names)})")
        for n in defaults or {}:
            if n not in names:
                raise ValueError(f"{ring}: defaults names column {n!r}, which is not in the schema")
        self.feats, self.single, self.label = feats, len(feats) == 1, label
        self.columns = feats + ([label] if label else [])
        self.defaults = dict(defaults or {})
        self.kinds = {n: column_kind(schema.field(n)) for n in self.columns}

    def signature(self, batch_dim: int | None) -> tuple[tf.TensorSpec, ...]:
        sig = []
        for n in self.columns:
            k = self.kinds[n]
            dt = _tf_dtype(k.dtype)
            if k.ragged:
                sig.append(tf.TensorSpec((None, *k.shape[1:]), dt, name=f"{n}_values"))
                sig.append(tf.TensorSpec((None if batch_dim is None else batch_dim + 1,), tf.int64,
                                         name=f"{n}_row_splits"))
            else:
                sig.append(tf.TensorSpec((batch_dim, *k.shape), dt, name=n))
        return tuple(sig)

    def assemble(self, *flat: tf.Tensor) -> Any:
        it = iter(flat)
        out = {}
        for n in self.columns:
            if self.kinds[n].ragged:
                values = next(it)
                out[n] = tf.RaggedTensor.from_row_splits(values, next(it), validate=False)
            else:
                out[n] = next(it)
        x = out[self.feats[0]] if self.single else {n: out[n] for n in self.feats}
        return (x, out[self.label]) if self.label else x

    def components(self, pieces: list[Any], ring: str) -> tuple[np.ndarray, ...]:
        flat = []
        for n in self.columns:
            d = self.defaults.get(n, _NO_DEFAULT)
            parts = [column_to_numpy(p.column(n), n, d, ring) for p in pieces]
            col = _concat(parts)
            if isinstance(col, Ragged):
                flat += [col.values, col.row_splits]
            else:
                flat.append(col)
        return tuple(flat)


def _run_view(c: np.ndarray, k: int) -> np.ndarray:
    """k batches of rows as a (k, rows // k, ...) view."""
    return c.reshape(k, c.shape[0] // k, *c.shape[1:])


def _prefault(comps: Sequence[np.ndarray]) -> None:
    """Reads a byte of every page of views of the ring.

    The reader's first touch of a ring page is a page fault; taken here, in the input pipeline's
    thread, rather than in the training step that reads the batch.
    """
    for c in comps:
        if c.dtype != object and c.nbytes >= _PAGE and c.flags.c_contiguous:
            c.reshape(-1).view(np.uint8)[::_PAGE].max()


def _aligned_copy(c: np.ndarray) -> np.ndarray:
    """A copy in 64-byte aligned memory, which TensorFlow wraps without copying it again."""
    if c.dtype == object:
        return c.copy()
    raw = np.empty(c.nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start:start + c.nbytes].view(c.dtype).reshape(c.shape)
    np.copyto(out, c)
    return out


def _copied(rb: Any) -> Any:
    """A record batch with its own memory (an IPC round trip: one copy)."""
    return pa.ipc.read_record_batch(rb.serialize(), rb.schema)


_STATS = {"records": 0, "whole_records": 0, "gathered_batches": 0, "held_rows": 0}


def batch_stats() -> dict[str, int]:
    """How the Arrow records read by ring datasets of this process became batches (counts so far).

    ``records``: non-empty Arrow record batches read; ``whole_records``: those handed to
    TensorFlow whole, as whole batches, without cutting or copying (all of them when the stream
    was cut for the dataset's batch size); ``gathered_batches``: batches put together from
    several records (a copy); ``held_rows``: rows copied out of the ring to wait for the next
    record. Meant for checking a job's batch settings: records that are not whole mean
    re-batching.
    """
    return dict(_STATS)


def _rebatch_arrow(items: Iterator[Any], plan: _ArrowPlan, batch_size: int, drop_remainder: bool,
                   ring: str, runs: bool = False) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
    """``(k, components)``: k batches of ``batch_size`` rows (the last may be short), in order.

    Without ``runs`` k is always 1. With ``runs``, the whole batches that lie inside one record
    come out as one slice of it (k >= 1, components of k * batch_size rows, still views of the
    ring), so the Python work is once per record rather than once per batch; a batch gathered
    from several records comes out alone (k = 1).
    """
    pending: deque[Any] = deque()
    count = 0
    while (rb := next(items, _END)) is not _END:
        n = rb.num_rows
        if not n:
            continue
        _STATS["records"] += 1
        if not pending and n % batch_size == 0:  # the common case: the record is k whole batches
            _STATS["whole_records"] += 1
            if runs:
                yield n // batch_size, plan.components([rb], ring)
            else:
                for start in range(0, n, batch_size):
                    yield 1, plan.components([rb.slice(start, batch_size)], ring)
            del rb
            continue
        pending.append(rb)
        del rb
        count += n
        while count >= batch_size:
            if runs and pending[0].num_rows >= batch_size:
                rows = pending[0].num_rows
                k = rows // batch_size
                if k * batch_size == rows:
                    piece = pending.popleft()
                else:
                    piece = pending[0].slice(0, k * batch_size)
                    pending[0] = pending[0].slice(k * batch_size)
                count -= k * batch_size
                yield k, plan.components([piece], ring)
                del piece
                continue
            pieces, need = [], batch_size
            while need:
                rows = pending[0].num_rows
                if rows <= need:
                    pieces.append(pending.popleft())
                    need -= rows
                else:
                    pieces.append(pending[0].slice(0, need))
                    pending[0] = pending[0].slice(need)
                    need = 0
            count -= batch_size
            if len(pieces) > 1:
                _STATS["gathered_batches"] += 1
            yield 1, plan.components(pieces, ring)
            del pieces
        # Rows short of a batch wait for the next record batch: copy them out of the ring, so no
        # ring space is held while the stream is idle. A writer's flush (Flink's checkpoint)
        # waits for the reader to give back everything, so held rows would stall it. Only the
        # last piece can still be in the ring (what this record left); the others were copied
        # when their own record came.
        if pending:
            _STATS["held_rows"] += pending[-1].num_rows
            pending[-1] = _copied(pending[-1])
    if count and not drop_remainder:
        yield 1, plan.components(list(pending), ring)


# ---- example -------------------------------------------------------------------------------------


def _example_spec(decoder: ExampleDecoder, defaults: Mapping[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    for name, f in decoder.features.items():
        dt = _tf_dtype(f["dtype"])
        if f.get("shape") is None:
            spec[name] = tf.io.RaggedFeature(dt, row_splits_dtype=tf.int64)
        elif defaults and name in defaults:
            spec[name] = tf.io.FixedLenFeature(f["shape"], dt, default_value=defaults[name])
        else:
            spec[name] = tf.io.FixedLenFeature(f["shape"], dt)
    return spec


def _rebatch_records(items: Iterator[Any], batch_size: int, drop_remainder: bool) -> Iterator[list[Any]]:
    buf: list[Any] = []
    # Records are copied out of the ring as they are gathered: rows short of a batch must hold no
    # ring space while the stream is idle (a writer's flush waits for everything to be released).
    while (r := next(items, _END)) is not _END:
        buf.append(bytes(r) if isinstance(r, memoryview) else r)
        del r
        if len(buf) == batch_size:
            yield buf
            buf = []
    if buf and not drop_remainder:
        yield buf


# ---- the dataset ---------------------------------------------------------------------------------


def _declared_batch_size(stream: CodecStream) -> int | None:
    declared = stream.params.get("batch_size")
    if declared is None:
        return None
    if isinstance(declared, bool) or not isinstance(declared, int) or declared < 1:
        raise ValueError(f"{stream.ring}: codec header batch_size must be a positive integer, got {declared!r}")
    return declared


def _batch_size(streams: Sequence[CodecStream], batch_size: int | None, ring: str) -> int:
    """The dataset's batch size: the caller's, else the one the streams declare, else 256.

    A caller's batch size that does not divide the declared one is honoured (never coerced) and
    re-batched, with a warning that says what it costs."""
    declared = set(map(_declared_batch_size, streams))
    if len(declared) > 1:
        sizes = ", ".join(f"{s.ring}: {_declared_batch_size(s)}" for s in streams)
        if batch_size is None:
            raise ValueError(f"rings declare different batch sizes ({sizes}): pass batch_size=")
        warnings.warn(f"rings declare different batch sizes ({sizes}): batch_size={batch_size} re-batches "
                      "some of them (rows copied between records)", stacklevel=3)
        return batch_size
    (stream_size,) = declared
    if batch_size is None:
        return stream_size or DEFAULT_BATCH_SIZE
    if stream_size is not None and stream_size % batch_size:
        warnings.warn(f"{ring}: the stream's records hold whole batches of {stream_size} rows (the writer's "
                      f"batch_size); batch_size={batch_size} does not divide it, so records are re-batched "
                      "(rows copied between records). Leave batch_size out to take the stream's.", stacklevel=3)
    return batch_size


def ring_dataset(paths_or_dir: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                 features: str | Sequence[str] | None = None, label: str | None = None,
                 batch_size: int | None = None, codec: str | None = None, *, drop_remainder: bool = False,
                 defaults: Mapping[str, Any] | None = None,
                 decode_fn: Callable[[list[memoryview]], Any] | None = None,
                 output_signature: Any = None, open_timeout: float | None = 30.0,
                 timeout: float | None = None, queue_depth: int = 4, copy: bool = False) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` of whole batches read from one or several rings.

    ``paths_or_dir``: a ring path, a directory of rings (one per Flink subtask), a glob, or a
    list of paths. ``features``: a column name (the features are one tensor), a list of names
    (a dict of tensors; one name gives one tensor), or None (every column but the label).
    ``label``: a column name; elements are then ``(features, label)``. ``batch_size`` rows per
    element whatever the writer's batches; the last may be smaller unless ``drop_remainder``.
    None: the batch size the stream declares (``arrow_sink(batch_size=...)``: its records are
    whole batches, handed on without re-batching), else 256. A ``batch_size`` that does not divide
    the declared one re-batches, with a warning.
    ``codec`` names the codec of raw streams (or checks the header's). ``defaults`` fills nulls
    per column (arrow) or missing features (example). ``decode_fn`` and ``output_signature``
    serve the ``bytes`` codec and codecs without a schema. ``open_timeout`` bounds the wait for
    the rings and their headers; ``timeout`` (None: no limit) the wait for later records.
    ``copy=True`` copies arrow batches out of the ring, so tensors kept long hold no ring space.
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    paths = _ring_paths(paths_or_dir)
    streams: list[CodecStream] = []
    try:
        for p in paths:
            r = RingReader.open(p, timeout=open_timeout)
            try:
                streams.append(CodecStream(r, codec, timeout=open_timeout))
            except BaseException:
                r.close()
                raise
    except BaseException:
        for s in streams:
            s.close()
        raise
    first = streams[0]
    names = {s.name for s in streams}
    if len(names) > 1:
        raise ValueError(f"rings carry different codecs: {', '.join(sorted(names))}")
    state = {"used": False}
    ring = first.ring if len(streams) == 1 else f"{first.ring} (+{len(streams) - 1} rings)"
    try:
        batch_size = _batch_size(streams, batch_size, ring)
    except BaseException:
        for s in streams:
            s.close()
        raise

    def items() -> Iterator[Any]:
        if state["used"]:
            raise ValueError(f"{ring}: a ring dataset is a stream and can be iterated only once")
        state["used"] = True
        if len(streams) == 1:
            try:
                yield from _single(first, timeout)
            finally:
                first.close()
            return
        merge = _Merge(streams, timeout, queue_depth)
        try:
            yield from merge
        finally:
            merge.close()
            for s in streams:
                s.close()

    batch_dim = batch_size if drop_remainder else None
    schema = getattr(first.decoder, "schema", None)
    if schema is not None:
        for s in streams[1:]:
            other = getattr(s.decoder, "schema", None)
            if other is None or not other.equals(schema):
                raise ValueError(f"{s.ring}: schema {other} differs from {first.ring}'s {schema}")
        plan = _ArrowPlan(schema, features, label, defaults, ring)

        if any(plan.kinds[n].ragged for n in plan.columns):
            def gen_arrow() -> Iterator[tuple[np.ndarray, ...]]:
                batches = _rebatch_arrow(items(), plan, batch_size, drop_remainder, ring)
                while (kc := next(batches, _END)) is not _END:
                    out = tuple(np.array(c) for c in kc[1]) if copy else kc[1]
                    del kc
                    yield out
                    del out  # TF has it now; our reference must not pin the ring while we wait

            ds = tf.data.Dataset.from_generator(gen_arrow, output_signature=plan.signature(batch_dim))
            return ds.map(plan.assemble)

        # Dense columns: the generator yields runs of k batches as (k, rows, ...) views (one call
        # per record, not per batch) and TF splits them in C++. from_tensor_slices hands out
        # sub-slices that share the run's buffer when they are 64-byte aligned (a copy otherwise),
        # so a batch aliases the ring exactly where it did when it was yielded alone.
        def gen_runs() -> Iterator[tuple[np.ndarray, ...]]:
            batches = _rebatch_arrow(items(), plan, batch_size, drop_remainder, ring, runs=True)
            while (kc := next(batches, _END)) is not _END:
                k, comps = kc
                del kc
                if not copy:
                    _prefault(comps)  # a loop here would keep its last view (and ring space) held
                out = tuple(_run_view(_aligned_copy(c) if copy else c, k) for c in comps)
                del comps
                yield out
                del out  # TF has it now; our reference must not pin the ring while we wait

        sig = tuple(tf.TensorSpec((None, *s.shape), s.dtype, name=s.name) for s in plan.signature(batch_dim))
        ds = tf.data.Dataset.from_generator(gen_runs, output_signature=sig)
        return ds.flat_map(lambda *run: tf.data.Dataset.from_tensor_slices(plan.assemble(*run)))

    if isinstance(first.decoder, ExampleDecoder):
        spec = _example_spec(first.decoder, defaults)
        wanted = _feature_names(features, label, list(spec))
        for n in [*wanted, *([label] if label else [])]:
            if n not in spec:
                raise ValueError(f"{ring}: feature {n!r} is not in the example feature spec ({', '.join(spec)})")
        single = len(wanted) == 1

        def gen_example() -> Iterator[np.ndarray]:
            for recs in _rebatch_records(items(), batch_size, drop_remainder):
                yield np.array(recs, dtype=object)

        def parse(serialized: tf.Tensor) -> Any:
            parsed = tf.io.parse_example(serialized, spec)
            x = parsed[wanted[0]] if single else {n: parsed[n] for n in wanted}
            return (x, parsed[label]) if label else x

        ds = tf.data.Dataset.from_generator(gen_example, output_signature=tf.TensorSpec((batch_dim,), tf.string))
        return ds.map(parse)

    if decode_fn is None or output_signature is None:
        raise ValueError(f"{ring}: codec {first.name!r} carries no schema: pass decode_fn= and output_signature=")
    fn = decode_fn

    def gen_bytes() -> Iterator[Any]:
        for recs in _rebatch_records(items(), batch_size, drop_remainder):
            yield fn(recs)

    return tf.data.Dataset.from_generator(gen_bytes, output_signature=output_signature)


__all__ = ["DEFAULT_BATCH_SIZE", "batch_stats", "ring_dataset"]
