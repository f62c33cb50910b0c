"""The exception hierarchy of flinktf-ipc. Every ring failure is a :class:`RingError`.

Bad arguments (a negative capacity, a name with a NUL byte, an empty name) are ``ValueError``.
"""


class RingError(Exception):
    """Base class of every error raised by a ring."""


class RingTimeout(RingError, TimeoutError):
    """A wait (for space, a record, a reader, a file) ran out of time.

    From ``RingWriter.write_many``: ``written`` is how many of its records were published
    before the wait ran out (retry with the rest, or records are duplicated).
    """

    written: int = 0


class RingClosed(RingError):
    """The other side closed the ring: the reader left, so writing is pointless."""


class PeerLost(RingError):
    """The other side's process is gone (killed or crashed) without closing the ring, or the
    writer aborted the stream (it is incomplete)."""


class RingCorrupt(RingError):
    """The shared memory does not hold a valid ring: bad header, frame, position or version."""


class RecordTooLarge(RingError, ValueError):
    """A record is larger than the ring's maximum record size; nothing was written."""


class RingOSError(RingError, OSError):
    """The operating system refused: no space for the ring, no memory, a file that is not safe
    to use (owner, mode, symlink: ``errno`` EACCES or ELOOP). ``errno`` and ``filename`` as for
    OSError."""


class RingFileExists(RingOSError, FileExistsError):
    """The ring file to create exists already."""


class RingFileNotFound(RingOSError, FileNotFoundError):
    """No ring file at that path."""


class RingPermissionError(RingOSError, PermissionError):
    """The ring file or its directory may not be used: another owner, or writable by others."""
