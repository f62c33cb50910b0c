"""Codecs: how the records of a ring are decoded (docs/FORMAT.md, "Streams and codecs").

A codec stream starts with one codec header record, ``b"flinktf-codec:<name>\\n<json>"``; the
reader looks the name up in a registry and builds a decoder from the JSON parameters. Users
register their own codecs with :func:`register_codec`. A ring whose first record is not a codec
header is a raw stream: its reader must name the codec.

A decoder turns runs of records into decoded items. Decoders must not copy more than they need:
the records are zero-copy views of the ring, and whatever a decoded item references keeps its
ring space held (see ring.py).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .errors import RingCorrupt
from .ring import RingReader

CODEC_PREFIX = b"flinktf-codec:"
_NAME = re.compile(r"[a-z0-9_.-]+")
_MAX_HEADER = 1 << 20


class Decoder:
    """Base class of decoders. One decoder serves one ring (it may keep state, like a schema).

    :meth:`start` reads the stream's preamble after the codec header (the Arrow schema, say);
    :meth:`decode` turns a run of data records into a list of decoded items.
    """

    name = ""

    def __init__(self, params: dict[str, Any], ring: str, **options: Any) -> None:
        self.params = params
        self.ring = ring
        if options:
            raise TypeError(f"{ring}: codec {self.name!r} takes no options, got {sorted(options)}")

    def start(self, next_record: Callable[[], memoryview | None]) -> None:
        """Reads what the stream carries before its data records; nothing by default."""

    def decode(self, records: Sequence[memoryview]) -> list[Any]:
        raise NotImplementedError


DecoderFactory = Callable[..., Decoder]
_registry: dict[str, DecoderFactory] = {}
_registry_lock = threading.Lock()


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"codec name must match [a-z0-9_.-]+, got {name!r}")


def register_codec(name: str, factory: DecoderFactory, *, replace: bool = False) -> None:
    """Registers ``factory(params, ring, **options) -> Decoder`` under ``name``.

    ``replace=True`` allows overriding an existing registration (the built-ins included).
    """
    _check_name(name)
    with _registry_lock:
        if name in _registry and not replace:
            raise ValueError(f"codec {name!r} is already registered (pass replace=True to override)")
        _registry[name] = factory


def get_codec(name: str, ring: str = "") -> DecoderFactory:
    """The factory registered under ``name``; ValueError naming the ring if there is none."""
    with _registry_lock:
        factory = _registry.get(name)
        known = sorted(_registry)
    if factory is None:
        raise ValueError(f"{ring or '<ring>'}: unknown codec {name!r} (registered: {', '.join(known)})")
    return factory


def codec_names() -> list[str]:
    """Names of the registered codecs."""
    with _registry_lock:
        return sorted(_registry)


def codec_header(name: str, params: dict[str, Any] | None = None) -> bytes:
    """The codec header record: ``flinktf-codec:<name>\\n<json>``."""
    _check_name(name)
    body = json.dumps(params or {}, separators=(",", ":"), ensure_ascii=False)
    return CODEC_PREFIX + name.encode("ascii") + b"\n" + body.encode("utf-8")


def is_codec_header(record: Any) -> bool:
    """True if the record starts with ``flinktf-codec:`` (a codec stream)."""
    return bytes(memoryview(record)[:len(CODEC_PREFIX)]) == CODEC_PREFIX


def parse_codec_header(record: Any, ring: str = "") -> tuple[str, dict[str, Any]]:
    """(name, params) of a codec header record; RingCorrupt naming the ring if it is malformed."""
    where = ring or "<ring>"
    mv = memoryview(record)
    if mv.nbytes > _MAX_HEADER:
        raise RingCorrupt(f"{where}: codec header record of {mv.nbytes} bytes (at most {_MAX_HEADER})")
    raw = bytes(mv)
    if not raw.startswith(CODEC_PREFIX):
        raise RingCorrupt(f"{where}: first record is not a codec header (starts {raw[:24]!r})")
    nl = raw.find(b"\n", len(CODEC_PREFIX))
    if nl < 0:
        raise RingCorrupt(f"{where}: codec header has no newline after the name: {raw[:64]!r}")
    name = raw[len(CODEC_PREFIX):nl].decode("ascii", "replace")
    if not _NAME.fullmatch(name):
        raise RingCorrupt(f"{where}: codec name {name!r} in the header is not [a-z0-9_.-]+")
    try:
        params = json.loads(raw[nl + 1:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RingCorrupt(f"{where}: codec {name!r} header parameters are not UTF-8 JSON: {e}") from None
    if not isinstance(params, dict):
        raise RingCorrupt(f"{where}: codec {name!r} header parameters must be a JSON object, "
                          f"got {type(params).__name__}")
    return name, params


class CodecStream:
    """A ring reader with its decoder: reads the codec header (and the codec's preamble) at once.

    ``codec`` names the codec of a raw stream (one without a header), or, for a codec stream,
    the codec it must have. ``options`` go to the decoder factory (``decode_fn`` for ``bytes``,
    ``defaults`` for ``arrow``...). Data records are never lost: a raw stream's first record is
    decoded like the others.
    """

    def __init__(self, reader: RingReader, codec: str | None = None, timeout: float | None = 30.0,
                 max_records: int = 64, **options: Any) -> None:
        self.reader = reader
        self.ring = reader.path
        self.timeout = timeout
        self.max_records = max_records
        self._pending: list[memoryview] = []
        first = reader.read(timeout=timeout)
        if first is None:
            raise RingCorrupt(f"{self.ring}: end of stream before the codec header")
        if is_codec_header(first):
            name, params = parse_codec_header(first, self.ring)
            if codec is not None and codec != name:
                raise ValueError(f"{self.ring}: the stream's codec is {name!r}, the reader asked for {codec!r}")
        elif codec is None:
            raise ValueError(f"{self.ring}: raw stream (the first record is no codec header): "
                             "pass codec= to say how to decode it")
        else:
            name, params = codec, {}
            self._pending.append(first)
        del first
        self.name = name
        self.params = params
        self.decoder = get_codec(name, self.ring)(params, self.ring, **options)
        self.decoder.start(self._next_record)

    def _next_record(self) -> memoryview | None:
        if self._pending:
            return self._pending.pop(0)
        return self.reader.read(timeout=self.timeout)

    def read_records(self, timeout: float | None = None) -> Sequence[memoryview] | None:
        """The next run of raw data records (zero-copy), or None at end of stream."""
        if self._pending:
            out, self._pending = self._pending, []
            return out
        batch = self.reader.read_batch(self.max_records, timeout)
        return batch if len(batch) else None

    def read(self, timeout: float | None = None) -> list[Any] | None:
        """Decoded items of the next run of records (possibly an empty list), None at end of stream."""
        records = self.read_records(timeout)
        return None if records is None else self.decoder.decode(records)

    def __iter__(self) -> Iterator[Any]:
        while True:
            items = self.read(self.timeout)
            if items is None:
                return
            it = iter(items)
            del items  # holds ring space: never while waiting for the next run
            yield from it

    def close(self) -> None:
        self.reader.close()


class BytesDecoder(Decoder):
    """Records as they are: ``decode_fn(records)`` (a list of memoryviews) decodes a run of them.

    Without ``decode_fn`` a run decodes to the list of its records, as zero-copy memoryviews.
    """

    name = "bytes"

    def __init__(self, params: dict[str, Any], ring: str,
                 decode_fn: Callable[[Sequence[memoryview]], Any] | None = None) -> None:
        super().__init__(params, ring)
        self.decode_fn = decode_fn

    def decode(self, records: Sequence[memoryview]) -> list[Any]:
        if self.decode_fn is None:
            return list(records)
        return [self.decode_fn(list(records))]


class ExampleDecoder(Decoder):
    """Serialized ``tf.train.Example`` records; ``params["features"]`` is the feature spec.

    Decoding copies each record into ``bytes`` (TensorFlow strings own their bytes); the parsing
    itself happens in the TF graph on whole batches (:func:`flinktf_ipc.tf.ring_dataset`).
    """

    name = "example"
    DTYPES = ("float32", "int64", "string")

    def __init__(self, params: dict[str, Any], ring: str) -> None:
        super().__init__(params, ring)
        feats = params.get("features")
        if not isinstance(feats, dict) or not feats:
            raise RingCorrupt(f"{ring}: example codec parameters need a non-empty 'features' object")
        for fname, spec in feats.items():
            if not isinstance(spec, dict) or spec.get("dtype") not in self.DTYPES:
                raise RingCorrupt(f"{ring}: example feature {fname!r}: dtype must be one of "
                                  f"{self.DTYPES}, got {spec!r}")
            shape = spec.get("shape")
            if shape is not None and (not isinstance(shape, list)
                                      or not all(isinstance(d, int) and d >= 0 for d in shape)):
                raise RingCorrupt(f"{ring}: example feature {fname!r}: shape must be a list of "
                                  f"sizes >= 0 (omit it for a ragged feature), got {shape!r}")
        self.features: dict[str, dict[str, Any]] = feats

    def decode(self, records: Sequence[memoryview]) -> list[Any]:
        return [bytes(r) for r in records]


def _arrow_factory(params: dict[str, Any], ring: str, **options: Any) -> Decoder:
    from .arrow import ArrowDecoder  # pyarrow is imported only by those who use it

    return ArrowDecoder(params, ring, **options)


_registry.update(bytes=BytesDecoder, example=ExampleDecoder, arrow=_arrow_factory)


__all__ = ["CODEC_PREFIX", "BytesDecoder", "CodecStream", "Decoder", "ExampleDecoder", "codec_header",
           "codec_names", "get_codec", "is_codec_header", "parse_codec_header", "register_codec"]
