"""The worker side of the TF cluster protocol (docs/FORMAT.md "TF cluster").

A role process of a cluster (its context file has the key ``cluster``) does, before the user's
``run_main(context)``::

    import tensorflow            # slow; done before the port is picked, so the port is held briefly
    reserve a port               # a bound socket, kept open while the AM gathers the others
    write the address file       # {"host", "port", "pid"}: temp file + rename, mode 0600
    wait for the spec file       # the JVM operator writes it when the AM sent the spec
    close the reserved socket    # right before TF binds the port
    os.environ["TF_CONFIG"] = {"cluster": ..., "task": ...}

The wait is bounded by the writer side: a JVM that is gone (its heartbeat exited or stale, or this
process re-parented) ends the process with exit status 3, as the heartbeat watchdog does.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import random
import socket
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from . import heartbeat as hbm
from .errors import PeerLost

__all__ = ["ClusterInfo", "ClusterSpec", "reserve_port", "write_json_file", "read_spec", "join",
           "tf_config", "legacy_keras_default"]

HOST_ENV = "FLINKTF_CLUSTER_HOST"
PORTS_ENV = "FLINKTF_CLUSTER_PORTS"  # "lo-hi": the ports a process may reserve (tests, firewalls)
_SPEC_POLL = 0.02
_LOW_PORT = 10000  # below this: well-known and registered services
_TRIES = 64


@dataclass(frozen=True)
class ClusterInfo:
    """The context file's ``cluster`` key."""

    name: str
    roles: dict[str, int]
    chief: str  # "role:index"
    address_file: str
    spec_file: str

    @classmethod
    def from_json(cls, data: Any, base_dir: str | None) -> ClusterInfo:
        if not isinstance(data, dict):
            raise ValueError(f"worker context: 'cluster' must be an object, got {data!r}")
        missing = {"name", "roles", "chief", "address_file", "spec_file"} - set(data)
        if missing:
            raise ValueError(f"worker context: 'cluster' lacks {sorted(missing)}")
        roles = data["roles"]
        if not isinstance(roles, dict) or not roles or not all(
                isinstance(k, str) and isinstance(v, int) and v >= 1 for k, v in roles.items()):
            raise ValueError(f"worker context: cluster roles must map names to counts >= 1, got {roles!r}")
        chief_role, _, chief_index = str(data["chief"]).partition(":")
        if chief_role not in roles or not chief_index.isdigit() or int(chief_index) >= roles[chief_role]:
            raise ValueError(f"worker context: cluster chief {data['chief']!r} is not a task of {roles}")

        def resolve(p: str) -> str:
            return p if os.path.isabs(p) or base_dir is None else os.path.join(base_dir, p)

        return cls(str(data["name"]), dict(roles), str(data["chief"]),
                   resolve(str(data["address_file"])), resolve(str(data["spec_file"])))

    @property
    def chief_task(self) -> tuple[str, int]:
        role, _, index = self.chief.partition(":")
        return role, int(index)


@dataclass(frozen=True)
class ClusterSpec:
    """The spec file: the round (epoch), every role's addresses, and this process's task."""

    epoch: int
    cluster: dict[str, list[str]]
    task_type: str
    task_index: int

    def tf_config(self) -> dict[str, Any]:
        return {"cluster": {k: list(v) for k, v in self.cluster.items()},
                "task": {"type": self.task_type, "index": self.task_index}}


def _ports_outside_ephemeral() -> list[tuple[int, int]]:
    """Port ranges the kernel does not hand out for outgoing connections (so a gRPC client's
    ephemeral port cannot collide with a reserved server port)."""
    explicit = os.environ.get(PORTS_ENV)
    if explicit:
        first, _, last = explicit.partition("-")
        return [(int(first), int(last or first))]
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return []
    ranges = [(a, b) for a, b in ((_LOW_PORT, lo - 1), (hi + 1, 65535)) if b - a >= 100]
    return ranges


def _bind(port: int) -> socket.socket | None:
    """A socket holding ``port`` on every interface (IPv6 dual stack when there is one, as gRPC
    binds), or None when something holds it."""
    for family, addr in ((socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")):
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError:
            continue
        try:
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind((addr, port))
            s.listen(1)
            return s
        except OSError as e:
            s.close()
            if e.errno == errno.EADDRINUSE:
                return None  # held (a dual-stack bind sees v4 and v6 holders)
            # no IPv6 on this host: IPv4 alone
    return None


def reserve_port(candidates: Iterable[int] | None = None) -> socket.socket:
    """Binds a free port and returns the open socket (the caller closes it right before TF binds).

    Ports outside ``ip_local_port_range`` are tried first (``FLINKTF_CLUSTER_PORTS=lo-hi`` narrows
    them); then the kernel picks one. Raises OSError when no port can be bound.
    """
    if candidates is None:
        ranges = _ports_outside_ephemeral()
        rng = random.Random()
        pool = [rng.randint(a, b) for a, b in ranges for _ in range(_TRIES // max(1, len(ranges)))]
        explicit = bool(os.environ.get(PORTS_ENV))
        if explicit and ranges and ranges[0][1] - ranges[0][0] < _TRIES:
            pool = list(range(ranges[0][0], ranges[0][1] + 1))
    else:
        pool, explicit = list(candidates), True
    for port in pool:
        s = _bind(port)
        if s is not None:
            return s
    if explicit:
        raise OSError(f"no free port among {pool[:8]}{'...' if len(pool) > 8 else ''} "
                      f"({PORTS_ENV}={os.environ.get(PORTS_ENV, '')!r})")
    s = _bind(0)
    if s is None:
        raise OSError("cannot bind any TCP port")
    return s


def advertised_host() -> str:
    """The host other roles reach this process at: ``FLINKTF_CLUSTER_HOST``, else this host's
    address as its name resolves, else 127.0.0.1."""
    host = os.environ.get(HOST_ENV)
    if host:
        return host
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def write_json_file(path: str, data: Any) -> None:
    """Writes ``path`` atomically (temp file + rename), mode 0600, never through a symlink."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    os.replace(tmp, path)


def read_spec(path: str) -> ClusterSpec | None:
    """The spec file, or None while it is absent; ValueError when it is malformed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, encoding="utf-8") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: spec file is not JSON: {e}") from None
    try:
        cluster = {str(k): [str(a) for a in v] for k, v in data["cluster"].items()}
        return ClusterSpec(int(data["epoch"]), cluster, str(data["task"]["type"]), int(data["task"]["index"]))
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(f"{path}: malformed spec file ({type(e).__name__}: {e}): {data!r}") from None


def _writer_lost(peer_heartbeat: str | None, timeout: float, parent: int) -> str | None:
    """Why the JVM side is gone, or None while it lives (the rule of worker._watch_writer)."""
    if os.getppid() != parent:
        return f"the parent process {parent} (the TaskManager) is gone"
    if peer_heartbeat:
        verdict, peer = hbm.check(peer_heartbeat, timeout)
        if verdict in (hbm.Liveness.EXITED, hbm.Liveness.STALE):
            age = f"{peer.age():.1f} s" if peer else "?"
            return (f"the writer side ({peer_heartbeat}) is {verdict.value}: "
                    f"pid {peer.pid if peer else '?'}, heartbeat age {age}")
    return None


def wait_for_spec(info: ClusterInfo, role: str, index: int, *, peer_heartbeat: str | None,
                  heartbeat_timeout: float, timeout: float | None = None,
                  parent: int | None = None) -> ClusterSpec:
    """Polls the spec file until it is there; raises PeerLost when the JVM side goes away first,
    TimeoutError after ``timeout`` seconds (None: only the JVM side bounds the wait)."""
    parent = os.getppid() if parent is None else parent
    deadline = None if timeout is None else time.monotonic() + timeout
    checked = 0.0
    while True:
        spec = read_spec(info.spec_file)
        if spec is not None:
            if (spec.task_type, spec.task_index) != (role, index):
                raise ValueError(f"{info.spec_file}: spec is for task {spec.task_type}:{spec.task_index}, "
                                 f"this process is {role}:{index}")
            missing = {r: n for r, n in info.roles.items() if len(spec.cluster.get(r, [])) != n}
            if missing:
                raise ValueError(f"{info.spec_file}: spec {spec.cluster} does not have the roles {info.roles}")
            return spec
        now = time.monotonic()
        if now - checked >= 0.25:
            checked = now
            lost = _writer_lost(peer_heartbeat, heartbeat_timeout, parent)
            if lost:
                raise PeerLost(f"waiting for the cluster spec of {info.name}: {lost}")
        if deadline is not None and now > deadline:
            raise TimeoutError(f"no cluster spec in {info.spec_file} after {timeout} s")
        time.sleep(_SPEC_POLL)


def legacy_keras_default() -> None:
    """Keras 3's ``model.fit`` fails under MultiWorkerMirroredStrategy (keras-team/keras#20585);
    tf-keras (Keras 2) works. When the ``tf_keras`` package is installed and the user did not
    choose, ``tf.keras`` is made tf-keras; this must happen before TensorFlow is imported."""
    if "TF_USE_LEGACY_KERAS" not in os.environ and "tensorflow" not in sys.modules \
            and importlib.util.find_spec("tf_keras") is not None:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"


def tf_config(spec: ClusterSpec) -> str:
    return json.dumps(spec.tf_config())


def join(ctx: Any, load: Callable[[], Any]) -> Any:
    """Runs the protocol up to the moment ``run_main`` may start, for the worker context ``ctx``
    (a :class:`flinktf_ipc.worker.WorkerContext` with a ``cluster`` key): loads the entry
    (``load``), imports TensorFlow, reserves a port, writes the address file, waits for the spec,
    releases the port and sets ``TF_CONFIG``. Returns the entry function; the spec and the cluster
    key are kept on ``ctx`` for :class:`flinktf_ipc.tf_cluster.TFContext`."""
    parent = os.getppid()
    context_file = os.environ.get("FLINKTF_WORKER_CONTEXT")
    info = ClusterInfo.from_json(ctx.cluster, os.path.dirname(context_file) if context_file else None)
    legacy_keras_default()
    fn = load()
    import tensorflow  # noqa: F401 - the slow import happens before the port is held

    sock = reserve_port()
    try:
        port = sock.getsockname()[1]
        write_json_file(info.address_file, {"host": advertised_host(), "port": port, "pid": os.getpid()})
        spec = wait_for_spec(info, ctx.role, ctx.index, peer_heartbeat=ctx.peer_heartbeat,
                             heartbeat_timeout=ctx.heartbeat_timeout, parent=parent)
    finally:
        sock.close()  # TF binds this port next: nothing may hold it
    os.environ["TF_CONFIG"] = tf_config(spec)
    ctx._cluster_info, ctx._cluster_spec = info, spec
    return fn
