"""Damaged rings: every damage to the header or the frames is a clean RingCorrupt (or a valid
read that stays inside the ring), never a crash or a hang."""

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flinktf_ipc as fti
from flinktf_ipc import PeerLost, RingCorrupt, RingReader, RingTimeout, RingWriter

CAP = 4096
HEADER = 4096
FIELDS = fti.layout_fields()


def test_format_md_mirrors_the_c_layout():
    """docs/FORMAT.md's field table says what the C header defines."""
    text = (Path(__file__).parents[1] / "docs" / "FORMAT.md").read_text()
    rows = {}
    for names, offsets, sizes in re.findall(r"^\| ([a-z_, ]+) \| ([\d, ]+) \| (\d+)(?: each)? \|", text, re.MULTILINE):
        for name, off in zip(names.split(", "), offsets.split(", "), strict=True):
            rows[name] = (int(off), int(sizes))
    assert rows == FIELDS


damage = st.lists(
    st.tuples(
        st.one_of(st.integers(0, 511), st.integers(HEADER, HEADER + CAP - 1)),  # where
        st.binary(min_size=1, max_size=8),  # what
    ),
    min_size=1, max_size=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(damage=damage, sizes=st.lists(st.integers(0, 900), min_size=1, max_size=12), close=st.booleans())
def test_damage_is_refused_cleanly(ring_path, damage, sizes, close):
    w = RingWriter.create(ring_path, capacity=CAP)
    try:
        # Write through a first reader so positions move past the wrap, then leave records unread.
        with RingReader.open(ring_path) as r0:
            for s in sizes:
                w.write(b"\xab" * s, timeout=1)
                r0.read(timeout=1)
            w.write_many([b"\xcd" * s for s in sizes[:3]], timeout=1)
        with open(ring_path, "r+b") as f:
            if close:  # as a writer that ended the stream (closing here would remove the file)
                f.seek(FIELDS["writer_closed"][0])
                f.write(b"\1\0\0\0")
            for where, what in damage:
                f.seek(where)
                f.write(what[: HEADER + CAP - where])
            # a new reader may attach (the slot and the closed flag belong to the old one)
            for name in ("reader_pid", "reader_closed"):
                f.seek(FIELDS[name][0])
                f.write(b"\0\0\0\0")
        try:
            r = RingReader.open(ring_path, timeout=0)
        except (RingCorrupt, RingTimeout, PeerLost):  # damage to writer_pid: a gone writer
            return
        with r:
            for _ in range(50):
                try:
                    batch = r.read_batch(16, timeout=0)
                except (RingCorrupt, RingTimeout, PeerLost):  # damage to writer_pid: a gone writer
                    return
                if not len(batch):
                    return
                for rec in batch:
                    assert len(rec) <= CAP // 4
                    bytes(rec)  # every byte handed out is readable
    finally:
        w.close()
