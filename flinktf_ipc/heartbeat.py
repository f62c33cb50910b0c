"""Heartbeat files: each side of a ring says, once a second, that it is alive and how far it got.

A heartbeat file is a small UTF-8 ``key=value`` file (format in docs/FORMAT.md), replaced
atomically (written to a temporary file, then renamed), so a reader never sees a half-written
one. Liveness combines the file's age with the process itself: a recorded pid whose start time
no longer matches means the process is gone, which is seen at once; a live process whose
heartbeat stopped (stopped with SIGSTOP, deadlocked) is seen when the file grows older than the
timeout.

Files are created mode 0600 and opened with ``O_NOFOLLOW`` (a symlink is refused), read
non-blocking (a FIFO in their place cannot hang a reader) and bounded in size. :func:`check`
always returns a verdict: a file that exists but is not a valid heartbeat (garbage, a directory,
a FIFO, numbers out of range, a time in the future) is ``UNREADABLE`` until its mtime is older
than the timeout, then ``STALE``.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import _binding

FORMAT_VERSION = 1
DEFAULT_INTERVAL = 1.0
DEFAULT_TIMEOUT = 10.0
MAX_FILE_BYTES = 64 << 10  # a heartbeat is a few hundred bytes; more is not a heartbeat
# A heartbeat written "in the future" of this process's monotonic clock by more than this is garbage
# (a file from another boot, or forged): it would otherwise never turn stale.
_FUTURE_SLACK_NS = 1_000_000_000


class State(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


def _escape(value: str) -> str:
    # The escapes java.util.Properties understands, so the JVM reads these files with load().
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            out.append({"n": "\n", "r": "\r", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Heartbeat:
    """One heartbeat as read from its file."""

    role: str
    pid: int
    start_time: int  # process start, clock ticks since boot (0: unknown)
    wall_ns: int  # CLOCK_REALTIME when written
    mono_ns: int  # CLOCK_MONOTONIC when written: ages are computed from this
    seq: int
    state: State
    message: str = ""
    progress: dict[str, int] = field(default_factory=dict)

    def age(self) -> float:
        """Seconds since the heartbeat was written (monotonic clock, shared by all processes)."""
        return max(0.0, (time.monotonic_ns() - self.mono_ns) / 1e9)

    def process_alive(self) -> bool:
        """True while the writing process exists with the recorded start time."""
        now = _binding.process_start_time(self.pid)
        return now != 0 and (self.start_time == 0 or now == self.start_time)


def encode(hb: Heartbeat) -> str:
    lines = [
        f"version={FORMAT_VERSION}",
        f"role={_escape(hb.role)}",
        f"pid={hb.pid}",
        f"start_time={hb.start_time}",
        f"wall_ns={hb.wall_ns}",
        f"mono_ns={hb.mono_ns}",
        f"seq={hb.seq}",
        f"state={hb.state.value}",
        f"message={_escape(hb.message)}",
    ]
    lines += [f"progress.{k}={int(v)}" for k, v in sorted(hb.progress.items())]
    return "\n".join(lines) + "\n"


def _read_text(path: str | os.PathLike[str]) -> str:
    """The file's text: O_NOFOLLOW, non-blocking (a FIFO never blocks), regular files only, bounded."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{os.fspath(path)}: not a regular file (mode {stat.filemode(st.st_mode)})")
        data = os.read(fd, MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{os.fspath(path)}: larger than {MAX_FILE_BYTES} bytes, not a heartbeat")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{os.fspath(path)}: not UTF-8 ({e})") from None


def read_heartbeat(path: str | os.PathLike[str]) -> Heartbeat:
    """Reads a heartbeat file; FileNotFoundError if absent, ValueError if it is not a valid
    heartbeat (garbage, a directory or FIFO, a symlink, numbers out of range), OSError if it
    cannot be read."""
    try:
        text = _read_text(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ValueError(f"{os.fspath(path)}: a symlink, not a heartbeat file") from None
        if e.errno in (errno.EISDIR, errno.ENXIO):
            raise ValueError(f"{os.fspath(path)}: not a regular file ({e.strerror})") from None
        raise
    kv: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            if not sep:
                raise ValueError(f"{path}: malformed heartbeat line {line!r}")
            kv[key] = _unescape(value)
    try:
        version = int(kv["version"])
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: heartbeat format {version}, this library reads {FORMAT_VERSION}")
        hb = Heartbeat(
            role=kv["role"], pid=int(kv["pid"]), start_time=int(kv["start_time"]),
            wall_ns=int(kv["wall_ns"]), mono_ns=int(kv["mono_ns"]), seq=int(kv["seq"]),
            state=State(kv["state"]), message=kv.get("message", ""),
            progress={k[len("progress."):]: int(v) for k, v in kv.items() if k.startswith("progress.")},
        )
    except KeyError as e:
        raise ValueError(f"{path}: heartbeat lacks {e.args[0]}") from None
    # The ranges the writers produce (pid_t, 64-bit clocks): anything else is garbage.
    if not 0 < hb.pid < 1 << 31:
        raise ValueError(f"{path}: pid {hb.pid} out of range")
    for name in ("start_time", "wall_ns", "mono_ns", "seq"):
        if not 0 <= getattr(hb, name) < 1 << 63:
            raise ValueError(f"{path}: {name} {getattr(hb, name)} out of range")
    if hb.mono_ns > time.monotonic_ns() + _FUTURE_SLACK_NS:
        raise ValueError(f"{path}: mono_ns {hb.mono_ns} is in the future of this host's monotonic clock")
    return hb


class Liveness(enum.StrEnum):
    ALIVE = "alive"
    FINISHED = "finished"  # said so itself
    FAILED = "failed"  # said so itself
    EXITED = "exited"  # the process is gone without saying it finished
    STALE = "stale"  # the heartbeat is older than the timeout (or unreadable for longer)
    MISSING = "missing"  # no heartbeat file (yet)
    UNREADABLE = "unreadable"  # a file that is not a valid heartbeat, changed less than the timeout ago


def _file_age(path: str | os.PathLike[str]) -> float | None:
    """Seconds since the path (not a symlink's target) was modified; None if it is gone."""
    try:
        return max(0.0, time.time() - os.lstat(path).st_mtime)
    except FileNotFoundError:
        return None
    except OSError:
        return float("inf")  # cannot even be looked at: as old as it gets


def check(path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT) -> tuple[Liveness, Heartbeat | None]:
    """Classifies the side that writes ``path``; returns the verdict and the heartbeat read.

    Never raises for what is at ``path`` (the reason is lost; :func:`read_heartbeat` gives it):
    a file that is not a valid heartbeat is ``UNREADABLE``, and ``STALE`` once it is older than
    ``timeout`` by its mtime."""
    try:
        hb = read_heartbeat(path)
        if hb.state in (State.FINISHED, State.FAILED):
            return (Liveness.FINISHED if hb.state is State.FINISHED else Liveness.FAILED), hb
        alive = hb.process_alive()
    except FileNotFoundError:
        return Liveness.MISSING, None
    except (OSError, ValueError, OverflowError, UnicodeError):
        age = _file_age(path)
        if age is None:
            return Liveness.MISSING, None
        return (Liveness.STALE if age > timeout else Liveness.UNREADABLE), None
    if not alive:
        return Liveness.EXITED, hb
    if hb.age() > timeout:
        return Liveness.STALE, hb
    return Liveness.ALIVE, hb


class HeartbeatWriter:
    """Writes this process's heartbeat file every ``interval`` seconds from a daemon thread.

    Use as a context manager; on a clean exit it records ``finished``, on an exception ``failed``
    with the exception's text.

    The background thread survives failed writes (a full disk, a removed directory): it reports
    the first failure and each change of error on stderr, counts them in :attr:`failures`, leaves
    no temporary file, and keeps trying every interval. Files are 0600; a symlink at ``path`` is
    replaced, never followed.
    """

    def __init__(self, path: str | os.PathLike[str], role: str, interval: float = DEFAULT_INTERVAL) -> None:
        if interval <= 0:
            raise ValueError("interval must be > 0")
        self.path = os.fspath(path)
        self.role = role
        self.interval = interval
        self._pid = os.getpid()
        self._start = _binding.process_start_time(self._pid)
        self._seq = 0
        self._state = State.STARTING
        self._message = ""
        self._progress: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0  # background writes that failed
        self.last_error: OSError | None = None
        self.beat()

    def beat(self) -> None:
        """Writes the heartbeat now (atomically)."""
        with self._lock:
            self._seq += 1
            hb = Heartbeat(self.role, self._pid, self._start, time.time_ns(), time.monotonic_ns(), self._seq,
                           self._state, self._message, dict(self._progress))
            tmp = f"{self.path}.tmp-{self._pid}-{threading.get_ident()}"
            data = encode(hb).encode("utf-8")
            try:
                try:
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                except FileExistsError:  # left by a write of ours that was cut short
                    os.unlink(tmp)
                    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)  # rename replaces a symlink itself, never its target
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise

    def set_state(self, state: State, message: str = "") -> None:
        """Records a new state and writes it at once."""
        with self._lock:
            self._state, self._message = state, message
        self.beat()

    def progress(self, counts: Mapping[str, int]) -> None:
        """Updates the progress counters (written with the next beat)."""
        with self._lock:
            self._progress.update({k: int(v) for k, v in counts.items()})

    def start(self, state: State = State.RUNNING) -> HeartbeatWriter:
        """Starts beating every interval in the background, in ``state`` (``running``)."""
        self.set_state(state)
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.role}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except OSError as e:
                self.failures += 1
                last = self.last_error
                if last is None or (last.errno, last.filename) != (e.errno, e.filename):
                    print(f"flinktf_ipc.heartbeat: cannot write {self.path} ({e}); retrying every "
                          f"{self.interval} s", file=sys.stderr, flush=True)
                self.last_error = e
            else:
                if self.last_error is not None:
                    print(f"flinktf_ipc.heartbeat: {self.path} written again after {self.failures} failed "
                          "write(s)", file=sys.stderr, flush=True)
                    self.last_error = None

    def stop(self, state: State = State.FINISHED, message: str = "") -> None:
        """Stops the background beats and records the final state (a failure to write it is
        reported on stderr, not raised: the process is ending anyway)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.set_state(state, message)
        except OSError as e:
            print(f"flinktf_ipc.heartbeat: cannot write the final state {state.value} to {self.path} ({e})",
                  file=sys.stderr, flush=True)

    def __enter__(self) -> HeartbeatWriter:
        return self.start()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.stop(State.FINISHED)
        else:
            self.stop(State.FAILED, f"{type(exc).__name__}: {exc}")
