"""Codec registry, codec header record, CodecStream and the bytes/example decoders."""

from __future__ import annotations

import pytest

from flinktf_ipc import RingCorrupt, RingReader, RingWriter
from flinktf_ipc.codecs import (BytesDecoder, CodecStream, Decoder, codec_header, codec_names, get_codec,
                                parse_codec_header, register_codec)


def test_header_round_trip_with_non_ascii_params():
    rec = codec_header("arrow", {"note": "données ✓", "n": 3})
    assert rec.startswith(b"flinktf-codec:arrow\n{")
    assert parse_codec_header(rec) == ("arrow", {"note": "données ✓", "n": 3})
    assert codec_header("bytes") == b"flinktf-codec:bytes\n{}"


@pytest.mark.parametrize("name", ["Arrow", "", "a b", "x/y", "é"])
def test_header_rejects_bad_names(name):
    with pytest.raises(ValueError, match="codec name"):
        codec_header(name)


@pytest.mark.parametrize("record, problem", [
    (b"flinktf-codec:arrow{}", "no newline"),
    (b"flinktf-codec:Arrow\n{}", "is not"),
    (b"flinktf-codec:arrow\n{not json", "not UTF-8 JSON"),
    (b"flinktf-codec:arrow\n\xff\xfe", "not UTF-8 JSON"),
    (b"flinktf-codec:arrow\n[1, 2]", "must be a JSON object"),
    (b"something else", "not a codec header"),
])
def test_malformed_headers_are_ring_corrupt_naming_the_ring(record, problem):
    with pytest.raises(RingCorrupt, match=problem) as e:
        parse_codec_header(record, "/dev/shm/some-ring")
    assert "/dev/shm/some-ring" in str(e.value)


def _ring(path, *records, align=8):
    with RingWriter.create(path, capacity=1 << 16, align=align) as w:
        w.write_many(list(records))
    return RingReader.open(path, timeout=5)


@pytest.mark.timeout(30)
def test_unknown_codec_names_ring_and_codec(ring_path):
    r = _ring(ring_path, codec_header("nope"), b"data")
    with pytest.raises(ValueError, match="unknown codec 'nope'") as e:
        CodecStream(r)
    assert ring_path in str(e.value)
    r.close()


@pytest.mark.timeout(30)
def test_malformed_header_in_a_ring(ring_path):
    r = _ring(ring_path, b"flinktf-codec:arrow\n{oops", b"data")
    with pytest.raises(RingCorrupt, match=ring_path):
        CodecStream(r)
    r.close()


@pytest.mark.timeout(30)
def test_raw_stream_needs_a_codec(ring_path):
    r = _ring(ring_path, b"plain record")
    with pytest.raises(ValueError, match="raw stream"):
        CodecStream(r)
    r.close()


@pytest.mark.timeout(30)
def test_raw_stream_keeps_its_first_record(ring_path):
    r = _ring(ring_path, b"first", b"second", b"third")
    s = CodecStream(r, codec="bytes")
    assert [bytes(x) for x in s] == [b"first", b"second", b"third"]
    s.close()


@pytest.mark.timeout(30)
def test_codec_mismatch_is_reported(ring_path):
    r = _ring(ring_path, codec_header("bytes"), b"x")
    with pytest.raises(ValueError, match="codec is 'bytes'.*asked for 'arrow'"):
        CodecStream(r, codec="arrow")
    r.close()


@pytest.mark.timeout(30)
def test_empty_stream_before_header(ring_path):
    r = _ring(ring_path)
    with pytest.raises(RingCorrupt, match="before the codec header"):
        CodecStream(r)
    r.close()


@pytest.mark.timeout(30)
def test_bytes_codec_with_decode_fn_sees_runs_of_records(ring_path):
    r = _ring(ring_path, codec_header("bytes"), *[str(i).encode() for i in range(10)])
    s = CodecStream(r, decode_fn=lambda recs: [int(bytes(x)) for x in recs])
    got = []
    while (items := s.read(timeout=5)) is not None:
        for run in items:
            got += run
    assert got == list(range(10))
    s.close()


class _Upper(Decoder):
    name = "upper"

    def __init__(self, params, ring, suffix=b""):
        super().__init__(params, ring)
        self.suffix = suffix + params.get("tail", "").encode()

    def decode(self, records):
        return [bytes(r).upper() + self.suffix for r in records]


@pytest.mark.timeout(30)
def test_user_codec_is_registered_and_used(ring_path):
    register_codec("test.upper", _Upper, replace=True)
    assert "test.upper" in codec_names() and get_codec("test.upper") is _Upper
    with pytest.raises(ValueError, match="already registered"):
        register_codec("test.upper", _Upper)
    r = _ring(ring_path, codec_header("test.upper", {"tail": "!"}), b"ab", b"cd")
    s = CodecStream(r, suffix=b"?")
    assert list(s) == [b"AB?!", b"CD?!"]
    s.close()


def test_builtins_registered():
    assert {"arrow", "bytes", "example"} <= set(codec_names())
    assert get_codec("bytes") is BytesDecoder


@pytest.mark.parametrize("params, problem", [
    ({}, "non-empty 'features'"),
    ({"features": {"x": {"dtype": "float64"}}}, "dtype must be one of"),
    ({"features": {"x": {"dtype": "int64", "shape": [-1]}}}, "shape must be"),
])
def test_example_params_are_checked(params, problem):
    with pytest.raises(RingCorrupt, match=problem):
        get_codec("example")(params, "ring-x")
