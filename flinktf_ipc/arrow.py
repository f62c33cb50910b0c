"""The ``arrow`` codec: Arrow IPC messages in a ring, one message per record (docs/FORMAT.md).

Writing: :class:`ArrowRingWriter` writes the codec header, the Schema message, then one
RecordBatch message per :meth:`~ArrowRingWriter.write_batch`, laid out so that every body buffer
is 64-byte aligned in the ring (pyarrow 16 pads to 8 only, so the writer re-lays the body and
patches the buffer offsets in the message's flatbuffer).

Reading: :class:`ArrowRingReader` (or :func:`read_arrow_batches`) wraps each record in
``pa.py_buffer`` and decodes it with ``pa.ipc``, without copying: the arrays point into the ring.
:func:`column_to_numpy` turns numeric and fixed-shape columns into NumPy views of the same
memory. Every array and view keeps the ring space of its record held (through the record's
memoryview, which pyarrow references), so held data never changes; the space goes back when
the last of them is gone.

Null policy: a null in a column converted to NumPy raises ``ValueError`` naming the ring and
the column, unless ``defaults`` gives that column a fill value. For fixed-shape columns a null
row becomes a row of the default; in list (ragged) columns a null row becomes an empty row and
null elements take the default.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa

from .codecs import CodecStream, Decoder, codec_header
from .errors import RingCorrupt
from .ring import RingReader, RingWriter, ring_stat

ALIGN = 64
_CONT = 0xFFFFFFFF
_MSG_RECORD_BATCH = 3  # MessageHeader union tag in Message.fbs
_NO_DEFAULT = object()


def _align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


def _field(fb: bytearray, table: int, index: int) -> int | None:
    """Absolute position of field ``index`` of the flatbuffer table at ``table``, None if absent."""
    vtable = table - struct.unpack_from("<i", fb, table)[0]
    vt_size = struct.unpack_from("<H", fb, vtable)[0]
    slot = 4 + 2 * index
    if slot + 2 > vt_size:
        return None
    off = struct.unpack_from("<H", fb, vtable + slot)[0]
    return table + off if off else None


def _deref(fb: bytearray, pos: int) -> int:
    return pos + struct.unpack_from("<I", fb, pos)[0]


@dataclass
class _Layout:
    prefix: bytes  # continuation, metadata length, patched flatbuffer, padding to 64
    body_start: int  # where the body starts in the serialized input
    copies: list[tuple[int, int, int]]  # (source offset in the input body, length, offset in the new body)
    body_len: int

    @property
    def size(self) -> int:
        return len(self.prefix) + self.body_len


def _relayout(serialized: memoryview) -> _Layout:
    """Plans a 64-aligned copy of a RecordBatch message pyarrow serialized with 8-byte padding."""
    cont, meta_len = struct.unpack_from("<Ii", serialized, 0)
    if cont != _CONT:
        raise ValueError("pyarrow produced a message without the continuation marker")
    fb = bytearray(serialized[8:8 + meta_len])
    root = struct.unpack_from("<I", fb, 0)[0]
    tag_pos = _field(fb, root, 1)
    if tag_pos is None or fb[tag_pos] != _MSG_RECORD_BATCH:
        raise ValueError("not a RecordBatch message")
    header = _deref(fb, _field(fb, root, 2) or 0)
    if _field(fb, header, 3) is not None:
        raise ValueError("compressed record batches are not supported")
    copies = []
    cursor = 0
    buffers = _field(fb, header, 2)
    if buffers is not None:
        vec = _deref(fb, buffers)
        for i in range(struct.unpack_from("<I", fb, vec)[0]):
            entry = vec + 4 + 16 * i
            off, length = struct.unpack_from("<qq", fb, entry)
            dst = _align(cursor)
            struct.pack_into("<qq", fb, entry, dst, length)
            copies.append((off, length, dst))
            cursor = dst + length
    body_len = _align(cursor)
    len_pos = _field(fb, root, 3)
    if len_pos is not None:
        struct.pack_into("<q", fb, len_pos, body_len)
    elif body_len:
        raise ValueError("RecordBatch message without bodyLength but with body buffers")
    padded = _align(8 + len(fb)) - 8
    prefix = struct.pack("<Ii", _CONT, padded) + bytes(fb) + bytes(padded - len(fb))
    return _Layout(prefix, 8 + meta_len, copies, body_len)


def _fill(out: np.ndarray, src: np.ndarray, lay: _Layout) -> None:
    p = len(lay.prefix)
    out[:p] = np.frombuffer(lay.prefix, np.uint8)
    pos = 0
    for off, length, dst in lay.copies:
        if dst > pos:
            out[p + pos:p + dst] = 0
        s = lay.body_start + off
        out[p + dst:p + dst + length] = src[s:s + length]
        pos = dst + length
    out[p + pos:] = 0


def encode_batch(batch: pa.RecordBatch) -> bytes:
    """One RecordBatch as an encapsulated IPC message with a 64-aligned body and buffers."""
    ser = batch.serialize()
    lay = _relayout(memoryview(ser))
    out = np.empty(lay.size, np.uint8)
    _fill(out, np.frombuffer(ser, np.uint8), lay)
    return out.tobytes()


class ArrowRingWriter:
    """Writes Arrow record batches into a ring as an ``arrow`` codec stream.

    The ring must have been created with ``align=64`` (:meth:`create` does). The codec header
    and the schema are written at construction; each :meth:`write_batch` writes one record,
    straight into space reserved in the ring.
    """

    def __init__(self, writer: RingWriter, schema: pa.Schema, params: dict[str, Any] | None = None,
                 timeout: float | None = None) -> None:
        align = ring_stat(writer.path).align
        if align != ALIGN:
            raise ValueError(f"{writer.path}: an arrow stream needs a ring created with align=64 (it has {align})")
        for f in schema:
            if pa.types.is_dictionary(f.type):
                raise ValueError(f"{writer.path}: column {f.name!r}: dictionary types are not supported")
        self.writer = writer
        self.schema = schema
        self.timeout = timeout
        writer.write_many([codec_header("arrow", params), schema.serialize()], timeout=timeout)

    @classmethod
    def create(cls, path: str, schema: pa.Schema, capacity: int = 64 << 20,
               params: dict[str, Any] | None = None, timeout: float | None = None) -> ArrowRingWriter:
        """Creates the ring (align 64) and starts the stream."""
        w = RingWriter.create(path, capacity=capacity, align=ALIGN)
        try:
            return cls(w, schema, params, timeout)
        except BaseException:
            w.close()
            raise

    @property
    def path(self) -> str:
        return self.writer.path

    def write_batch(self, batch: pa.RecordBatch | pa.Table, timeout: float | None = None) -> None:
        """Writes one record per record batch (a table's chunks each become one); blocks while full."""
        if isinstance(batch, pa.Table):
            if not batch.schema.equals(self.schema):
                raise ValueError(f"{self.path}: table schema {batch.schema} differs from the stream's {self.schema}")
            chunks = batch.to_batches() or [pa.RecordBatch.from_pylist([], schema=self.schema)]
            for rb in chunks:
                self.write_batch(rb, timeout)
            return
        if not batch.schema.equals(self.schema):
            raise ValueError(f"{self.path}: batch schema {batch.schema} differs from the stream's {self.schema}")
        ser = batch.serialize()
        lay = _relayout(memoryview(ser))
        mv = self.writer.reserve(lay.size, self.timeout if timeout is None else timeout)
        _fill(np.frombuffer(mv, np.uint8), np.frombuffer(ser, np.uint8), lay)
        del mv
        self.writer.publish()

    def write_encoded(self, message: Any, timeout: float | None = None) -> None:
        """Writes a message made by :func:`encode_batch` (one copy, nothing re-laid)."""
        self.writer.write(message, self.timeout if timeout is None else timeout)

    def flush(self, timeout: float | None = None) -> None:
        self.writer.flush(timeout)

    def close(self) -> None:
        """Ends the stream (the ring's end of stream)."""
        self.writer.close()

    def abort(self) -> None:
        """Ends the stream as incomplete: the reader gets PeerLost after what was written."""
        self.writer.abort()

    def __enter__(self) -> ArrowRingWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc is None:
            self.close()
        else:
            self.abort()


class ArrowDecoder(Decoder):
    """Decoder of the ``arrow`` codec: the schema record, then RecordBatch records (zero-copy)."""

    name = "arrow"

    def __init__(self, params: dict[str, Any], ring: str) -> None:
        super().__init__(params, ring)
        self.schema: pa.Schema | None = None
        self._full_validate = False

    def _message(self, record: memoryview) -> pa.ipc.Message | None:
        n = record.nbytes
        if n == 4 and bytes(record) == b"\0\0\0\0":
            return None  # pre-0.15 end-of-stream marker: ignored
        if n < 8:
            raise RingCorrupt(f"{self.ring}: record of {n} bytes is not an Arrow IPC message")
        cont, meta_len = struct.unpack_from("<Ii", record, 0)
        if cont != _CONT:
            raise RingCorrupt(f"{self.ring}: record is not an encapsulated Arrow IPC message "
                              f"(starts {bytes(record[:8]).hex()}, expected continuation ffffffff)")
        if meta_len == 0:
            return None  # end-of-stream marker: the ring's end of stream is what counts
        if meta_len < 0 or 8 + meta_len > n:
            raise RingCorrupt(f"{self.ring}: Arrow message metadata length {meta_len} exceeds the record ({n} bytes)")
        try:
            return pa.ipc.read_message(pa.py_buffer(record))
        except (pa.ArrowException, ValueError, OSError) as e:
            raise RingCorrupt(f"{self.ring}: malformed Arrow IPC message ({n} bytes): {e}") from None

    def start(self, next_record: Any) -> None:
        record = next_record()
        if record is None:
            raise RingCorrupt(f"{self.ring}: end of stream before the Arrow schema message")
        msg = self._message(record)
        if msg is None or msg.type != "schema":
            raise RingCorrupt(f"{self.ring}: the record after the codec header must be an Arrow Schema "
                              f"message, got {'end-of-stream marker' if msg is None else msg.type}")
        try:
            self.schema = pa.ipc.read_schema(msg)
        except (pa.ArrowException, ValueError) as e:
            raise RingCorrupt(f"{self.ring}: malformed Arrow schema: {e}") from None
        self._full_validate = any(_variable_length(f.type) for f in self.schema)

    def decode(self, records: Sequence[memoryview]) -> list[pa.RecordBatch]:
        out = []
        for record in records:
            msg = self._message(record)
            if msg is None:
                continue
            if msg.type != "record batch":
                raise RingCorrupt(f"{self.ring}: expected an Arrow RecordBatch message, got {msg.type}")
            try:
                rb = pa.ipc.read_record_batch(msg, self.schema)
                # Buffer sizes against lengths (cheap); offsets of variable-length columns too, so
                # that no later conversion reads outside the record.
                rb.validate(full=self._full_validate)
            except (pa.ArrowException, ValueError, OSError) as e:
                raise RingCorrupt(f"{self.ring}: malformed Arrow RecordBatch message: {e}") from None
            out.append(rb)
        return out


def _variable_length(t: pa.DataType) -> bool:
    if isinstance(t, pa.ExtensionType):
        t = t.storage_type
    if pa.types.is_fixed_size_list(t):
        return _variable_length(t.value_type)
    return not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))


class ArrowRingReader:
    """Reads an ``arrow`` stream: the schema at construction, then zero-copy record batches."""

    def __init__(self, reader: RingReader | str, timeout: float | None = 30.0, max_records: int = 16) -> None:
        if not isinstance(reader, RingReader):
            reader = RingReader.open(reader, timeout=timeout)
        self.stream = CodecStream(reader, codec="arrow", timeout=timeout, max_records=max_records)
        decoder = self.stream.decoder
        assert isinstance(decoder, ArrowDecoder) and decoder.schema is not None
        self.schema: pa.Schema = decoder.schema
        self.path = reader.path
        self._items: list[pa.RecordBatch] = []

    def read_batch(self, timeout: float | None = None) -> pa.RecordBatch | None:
        """The next record batch, or None at end of stream."""
        while not self._items:
            items = self.stream.read(timeout)
            if items is None:
                return None
            self._items = items
        return self._items.pop(0)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        # Each iterator drops its reference after the yield: one kept while the next read waits
        # would pin the batch's ring space and stall the writer's flush (a Flink checkpoint).
        while (rb := self.read_batch(self.stream.timeout)) is not None:
            yield rb
            del rb

    def iter_batches(self, copy: bool = False) -> Iterator[pa.RecordBatch]:
        """``pyarrow.RecordBatch`` after batch until the end of the stream.

        ``copy=False`` (default): zero-copy views of the ring; each holds its ring space until it
        is dropped, and a checkpoint waits for that. Drop a batch before you ask for far more, or
        pass ``copy=True`` to get batches that own their memory (to keep them)."""
        for rb in self:
            if copy:
                out = pa.ipc.read_record_batch(rb.serialize(), rb.schema)  # one copy, into a buffer it owns
                del rb
                yield out
            else:
                yield rb
                del rb

    def iter_pandas(self, **to_pandas: Any) -> Iterator[Any]:
        """``pandas.DataFrame`` per record batch (``RecordBatch.to_pandas(**to_pandas)``; pandas
        copies what it cannot share, e.g. list columns; numeric columns without nulls can be
        zero-copy with ``zero_copy_only``-compatible types). The ring space is released as soon
        as the frame is built, unless pandas kept a view into it."""
        import pandas  # noqa: F401 - a clear ImportError here, not inside pyarrow

        for rb in self:
            frame = rb.to_pandas(**to_pandas)
            del rb
            yield frame
            del frame

    def iter_polars(self, rechunk: bool = False) -> Iterator[Any]:
        """``polars.DataFrame`` per record batch (``polars.from_arrow``, zero-copy where the
        Arrow layout allows: the frame may view ring memory and then holds its space until it
        is dropped)."""
        try:
            import polars as pl
        except ImportError as e:
            raise ImportError("iter_polars needs polars: pip install 'flinktf-ipc[frames]'") from e
        for rb in self:
            frame = pl.from_arrow(rb, rechunk=rechunk)
            del rb
            yield frame
            del frame

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> ArrowRingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_arrow_batches(reader: RingReader | str, timeout: float | None = 30.0) -> Iterator[pa.RecordBatch]:
    """Record batches of an ``arrow`` stream until its end (zero-copy)."""
    with ArrowRingReader(reader, timeout) as r:
        yield from r


# ---- columns to NumPy --------------------------------------------------------------------------


class Ragged(NamedTuple):
    """A list column: the flat values (n_values, *inner shape) and row_splits (n_rows + 1, int64)."""

    values: np.ndarray
    row_splits: np.ndarray


@dataclass(frozen=True)
class ColumnKind:
    """How a column maps to a tensor: dtype (a NumPy dtype name, or "string"), the per-row shape
    (None for the ragged dimension) and whether it is ragged."""

    dtype: str
    shape: tuple[int | None, ...]
    ragged: bool = False


def column_kind(field: pa.Field) -> ColumnKind:
    """The tensor mapping of an Arrow field (docs/FORMAT.md); ValueError for unsupported types."""
    t = field.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _dense_kind(field.name, t.value_type)
        return ColumnKind(inner.dtype, (None, *inner.shape), True)
    return _dense_kind(field.name, t)


def _dense_kind(name: str, t: pa.DataType) -> ColumnKind:
    if isinstance(t, pa.FixedShapeTensorType):
        if t.permutation and list(t.permutation) != list(range(len(t.shape))):
            raise ValueError(f"column {name!r}: fixed_shape_tensor with a permutation is not supported")
        inner = _dense_kind(name, t.value_type)
        return ColumnKind(inner.dtype, (*t.shape, *inner.shape))
    if pa.types.is_fixed_size_list(t):
        inner = _dense_kind(name, t.value_type)
        return ColumnKind(inner.dtype, (t.list_size, *inner.shape))
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
        return ColumnKind(np.dtype(t.to_pandas_dtype()).name, ())
    if (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t)):
        return ColumnKind("string", ())
    raise ValueError(f"column {name!r}: Arrow type {t} has no tensor mapping "
                     "(integers, floats, bool, utf8, binary, fixed_size_list, list)")


def _null_error(ring: str, name: str, n: int) -> ValueError:
    return ValueError(f"{ring or '<ring>'}: column {name!r} has {n} null value(s) in a batch; "
                      f"pass defaults={{{name!r}: value}} to fill them")


def _scalar_to_numpy(arr: pa.Array, name: str, default: Any, ring: str) -> np.ndarray:
    if arr.null_count:
        if default is _NO_DEFAULT:
            raise _null_error(ring, name, arr.null_count)
        arr = arr.fill_null(pa.scalar(default, arr.type))
    t = arr.type
    if pa.types.is_boolean(t):
        return arr.to_numpy(zero_copy_only=False)  # Arrow bools are bits: one copy
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return arr.to_numpy(zero_copy_only=True)
    # strings: bytes objects, as tf.string wants them
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        arr = arr.cast(pa.large_binary() if pa.types.is_large_string(t) else pa.binary())
    return arr.to_numpy(zero_copy_only=False)


def _fsl_values(arr: pa.FixedSizeListArray) -> pa.Array:
    """The child values of every row, null rows included (flatten() would skip those)."""
    size = arr.type.list_size
    return arr.values.slice(arr.offset * size, len(arr) * size)


def _fixed_to_numpy(arr: pa.Array, name: str, default: Any, ring: str) -> np.ndarray:
    """A (possibly nested) fixed-size list column as (n, *shape), a view when there are no nulls."""
    shape = _dense_kind(name, arr.type).shape
    storage = arr.storage if isinstance(arr, pa.ExtensionArray) else arr
    row_nulls = storage.null_count
    if row_nulls and default is _NO_DEFAULT:
        raise _null_error(ring, name, row_nulls)
    flat = _fsl_values(storage)
    while pa.types.is_fixed_size_list(flat.type):
        if flat.null_count:
            raise ValueError(f"{ring or '<ring>'}: column {name!r}: nulls inside a nested fixed-size list "
                             "are not supported")
        flat = _fsl_values(flat)
    dims = [len(storage)] + [int(d) for d in shape if d is not None]
    values = _scalar_to_numpy(flat, name, default, ring).reshape(dims)
    if row_nulls:
        values = values.copy()
        values[storage.is_null().to_numpy(zero_copy_only=False)] = default
    return values


def column_to_numpy(arr: pa.Array | pa.ChunkedArray, name: str = "", default: Any = _NO_DEFAULT,
                    ring: str = "") -> np.ndarray | Ragged:
    """One column as NumPy: a view of the ring memory for numeric and fixed-shape columns without
    nulls; a copy for bool, strings (bytes objects) and filled nulls; :class:`Ragged` for lists."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    t = arr.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        if arr.null_count:
            if default is _NO_DEFAULT:
                raise _null_error(ring, name, arr.null_count)
            arr = arr.fill_null(pa.scalar([], t))
        offsets = arr.offsets.to_numpy(zero_copy_only=True)
        splits = (offsets - offsets[0]).astype(np.int64)
        values = arr.flatten()
        if pa.types.is_fixed_size_list(values.type) or isinstance(values, pa.ExtensionArray):
            out = _fixed_to_numpy(values, name, default, ring)
        else:
            out = _scalar_to_numpy(values, name, default, ring)
        return Ragged(out, splits)
    if pa.types.is_fixed_size_list(t) or isinstance(arr, pa.ExtensionArray):
        return _fixed_to_numpy(arr, name, default, ring)
    return _scalar_to_numpy(arr, name, default, ring)


def batch_to_numpy(batch: pa.RecordBatch | pa.Table, columns: Sequence[str] | None = None,
                   defaults: Mapping[str, Any] | None = None, ring: str = "") -> dict[str, np.ndarray | Ragged]:
    """Columns of a batch as NumPy (see :func:`column_to_numpy`), applying the null policy."""
    defaults = defaults or {}
    names = list(columns) if columns is not None else batch.schema.names
    return {n: column_to_numpy(batch.column(n), n, defaults.get(n, _NO_DEFAULT), ring) for n in names}


__all__ = ["ALIGN", "ArrowDecoder", "ArrowRingReader", "ArrowRingWriter", "ColumnKind", "Ragged",
           "batch_to_numpy", "column_kind", "column_to_numpy", "encode_batch", "read_arrow_batches"]
