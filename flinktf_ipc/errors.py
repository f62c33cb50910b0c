"""The exception hierarchy of flinktf-ipc. Every ring failure is a :class:`RingError`."""


class RingError(Exception):
    """Base class of every error raised by a ring."""


class RingTimeout(RingError, TimeoutError):
    """A wait (for space, a record, a reader, a file) ran out of time."""


class RingClosed(RingError):
    """The other side closed the ring: the reader left, so writing is pointless."""


class PeerLost(RingError):
    """The other side's process is gone (killed or crashed) without closing the ring."""


class RingCorrupt(RingError):
    """The shared memory does not hold a valid ring: bad header, frame, position or version."""


class RecordTooLarge(RingError, ValueError):
    """A record is larger than the ring's maximum record size; nothing was written."""
