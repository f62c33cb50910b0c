"""flinktf-ipc: a shared-memory ring that feeds TensorFlow from Apache Flink without copies."""

from ._binding import RingStat
from .errors import PeerLost, RecordTooLarge, RingClosed, RingCorrupt, RingError, RingTimeout
from .ring import Batch, RingReader, RingWriter, default_ring_dir, layout_fields, ring_stat

__version__ = "0.1.0"

__all__ = [
    "Batch",
    "PeerLost",
    "RecordTooLarge",
    "RingClosed",
    "RingCorrupt",
    "RingError",
    "RingReader",
    "RingStat",
    "RingTimeout",
    "RingWriter",
    "default_ring_dir",
    "layout_fields",
    "ring_stat",
]
