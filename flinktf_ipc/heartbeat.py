"""Heartbeat files: each side of a ring says, once a second, that it is alive and how far it got.

A heartbeat file is a small UTF-8 ``key=value`` file (format in docs/FORMAT.md), replaced
atomically (written to a temporary file, then renamed), so a reader never sees a half-written
one. Liveness combines the file's age with the process itself: a recorded pid whose start time
no longer matches means the process is gone, which is seen at once; a live process whose
heartbeat stopped (stopped with SIGSTOP, deadlocked) is seen when the file grows older than the
timeout.
"""

from __future__ import annotations

import enum
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import _binding

FORMAT_VERSION = 1
DEFAULT_INTERVAL = 1.0
DEFAULT_TIMEOUT = 10.0


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


def read_heartbeat(path: str | os.PathLike[str]) -> Heartbeat:
    """Reads a heartbeat file; FileNotFoundError if absent, ValueError if malformed."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
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
        return Heartbeat(
            role=kv["role"], pid=int(kv["pid"]), start_time=int(kv["start_time"]),
            wall_ns=int(kv["wall_ns"]), mono_ns=int(kv["mono_ns"]), seq=int(kv["seq"]),
            state=State(kv["state"]), message=kv.get("message", ""),
            progress={k[len("progress."):]: int(v) for k, v in kv.items() if k.startswith("progress.")},
        )
    except KeyError as e:
        raise ValueError(f"{path}: heartbeat lacks {e.args[0]}") from None


class Liveness(enum.StrEnum):
    ALIVE = "alive"
    FINISHED = "finished"  # said so itself
    FAILED = "failed"  # said so itself
    EXITED = "exited"  # the process is gone without saying it finished
    STALE = "stale"  # the process exists but its heartbeat is older than the timeout
    MISSING = "missing"  # no heartbeat file (yet)


def check(path: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT) -> tuple[Liveness, Heartbeat | None]:
    """Classifies the side that writes ``path``; returns the verdict and the heartbeat read."""
    try:
        hb = read_heartbeat(path)
    except FileNotFoundError:
        return Liveness.MISSING, None
    if hb.state is State.FINISHED:
        return Liveness.FINISHED, hb
    if hb.state is State.FAILED:
        return Liveness.FAILED, hb
    if not hb.process_alive():
        return Liveness.EXITED, hb
    if hb.age() > timeout:
        return Liveness.STALE, hb
    return Liveness.ALIVE, hb


class HeartbeatWriter:
    """Writes this process's heartbeat file every ``interval`` seconds from a daemon thread.

    Use as a context manager; on a clean exit it records ``finished``, on an exception ``failed``
    with the exception's text.
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
        self.beat()

    def beat(self) -> None:
        """Writes the heartbeat now (atomically)."""
        with self._lock:
            self._seq += 1
            hb = Heartbeat(self.role, self._pid, self._start, time.time_ns(), time.monotonic_ns(), self._seq,
                           self._state, self._message, dict(self._progress))
            tmp = f"{self.path}.tmp-{self._pid}-{threading.get_ident()}"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(encode(hb))
            os.replace(tmp, self.path)

    def set_state(self, state: State, message: str = "") -> None:
        """Records a new state and writes it at once."""
        with self._lock:
            self._state, self._message = state, message
        self.beat()

    def progress(self, counts: Mapping[str, int]) -> None:
        """Updates the progress counters (written with the next beat)."""
        with self._lock:
            self._progress.update({k: int(v) for k, v in counts.items()})

    def start(self) -> HeartbeatWriter:
        """Starts beating every interval in the background, state ``running``."""
        self.set_state(State.RUNNING)
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{self.role}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.beat()

    def stop(self, state: State = State.FINISHED, message: str = "") -> None:
        """Stops the background beats and records the final state."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.set_state(state, message)

    def __enter__(self) -> HeartbeatWriter:
        return self.start()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.stop(State.FINISHED)
        else:
            self.stop(State.FAILED, f"{type(exc).__name__}: {exc}")
