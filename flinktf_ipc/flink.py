"""PyFlink side of flinktf-ipc: the connector jar, job defaults, and the ring sink.

Typical use::

    from pyflink.common import WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource
    from flinktf_ipc import flink

    env = flink.configure(restart_attempts=0)        # creates the environment
    stream = env.from_source(NumberSequenceSource(0, 999), WatermarkStrategy.no_watermarks(), "seq")
    stream.sink_to(flink.RingSink.builder().name("features").encoder("long").build())
    env.execute("features")
    # a TF worker reads flink.ring_paths(None, "features", env.get_parallelism())

With ``.worker_entry("my_pkg.train:main")`` the sink starts, watches and stops one TF worker
process per subtask itself (``python -P -m flinktf_ipc.worker``); a dead or hung worker fails the
task, and Flink's restart strategy starts a fresh attempt (fresh ring, fresh worker).

The sink itself is Java (``io.flinktf.ipc.RingSink``): records go from the Flink task straight into
the shared-memory ring, with no Python on the per-record path.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

# This module needs apache-flink (the package's "flink" extra).
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors.base import Sink

__all__ = ["jar_path", "configure", "default_log_dir", "job_dir", "ring_paths", "RingSink", "RingSinkBuilder"]

_JAR_NAME = "flinktf-ipc.jar"


def jar_path() -> str:
    """Absolute path of the connector jar installed inside this package.

    Raises FileNotFoundError with a hint when the package was built without the jar
    (``FTI_BUILD_JAVA=OFF``, or no JDK at build time).
    """
    p = Path(__file__).resolve().parent / "jars" / _JAR_NAME
    if not p.is_file():
        raise FileNotFoundError(
            f"{p}: the flinktf-ipc connector jar is not installed; rebuild the package with a JDK 17 "
            "and apache-flink present (pip install --no-build-isolation . with FTI_BUILD_JAVA=ON)")
    return str(p)


def default_log_dir() -> str:
    """A per-user Flink log directory under the system temp dir (never inside site-packages)."""
    d = Path(tempfile.gettempdir()) / f"flinktf-ipc-flink-logs-{os.getuid()}"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    return str(d)


def configure(env: StreamExecutionEnvironment | None = None, *,
              restart_attempts: int | None = None,
              restart_delay_ms: int = 1000,
              log_dir: str | None = None) -> StreamExecutionEnvironment:
    """Registers the connector jar with ``env`` and applies the job defaults users need.

    - ``FLINK_LOG_DIR`` is set (to ``log_dir`` or :func:`default_log_dir`) if unset, so PyFlink does
      not write logs into site-packages. The gateway JVM reads it when it starts: pass ``env=None``
      and let this function create the environment, or call it before creating one.
    - ``python.executable`` is the current interpreter (PyFlink would take ``python`` from PATH).
    - ``restart_attempts``: if given, a fixed-delay restart strategy with that many attempts
      (0: no restart). With checkpointing on, Flink's default retries forever.
    - The jar is added with ``env.add_jars`` (to the job and to the client's class loader, so
      :class:`RingSink` can be built through the gateway).

    Returns the environment.
    """
    if log_dir is not None:
        os.environ["FLINK_LOG_DIR"] = log_dir
    else:
        os.environ.setdefault("FLINK_LOG_DIR", default_log_dir())
    from pyflink.common import Configuration

    jar = jar_path()
    if env is None:
        env = StreamExecutionEnvironment.get_execution_environment()
    env.add_jars(Path(jar).as_uri())
    env.set_python_executable(sys.executable)
    if restart_attempts is not None:
        if restart_attempts < 0:
            raise ValueError(f"restart_attempts must be >= 0, got {restart_attempts}")
        conf = Configuration()
        if restart_attempts == 0:
            conf.set_string("restart-strategy.type", "none")
        else:
            conf.set_string("restart-strategy.type", "fixed-delay")
            conf.set_string("restart-strategy.fixed-delay.attempts", str(restart_attempts))
            conf.set_string("restart-strategy.fixed-delay.delay", f"{int(restart_delay_ms)} ms")
        env.configure(conf)
    return env


def _default_ring_dir() -> str:
    from .ring import default_ring_dir
    return default_ring_dir()


JOB_DIR_PREFIX = "job-"


def job_dir(base_dir: str | os.PathLike[str] | None, job_id: str) -> str:
    """``<base_dir>/job-<job_id>``: where a sink with a per-job directory (every sink with a worker
    entry, or one built with ``per_job_dir(True)``) writes the job's rings, heartbeats and context
    files. ``base_dir`` None: the default ring directory."""
    job_id = str(job_id)
    if not job_id or len(job_id) > 64 or not all(c.isalnum() or c in "_-" for c in job_id):
        raise ValueError(f"job id must be 1-64 characters of [A-Za-z0-9_-], got {job_id!r}")
    base = Path(base_dir) if base_dir is not None else Path(_default_ring_dir())
    return str(base / f"{JOB_DIR_PREFIX}{job_id}")


def ring_paths(base_dir: str | os.PathLike[str] | None, name: str, parallelism: int,
               attempt: int = 0, job_id: str | None = None) -> list[str]:
    """The ring files a :class:`RingSink` named ``name`` writes, one per subtask:
    ``<base_dir>/<name>-<i>.ring`` for i in 0..parallelism-1 in the first attempt, and
    ``<base_dir>/<name>-<i>.attempt<k>.ring`` in attempt k > 0 (a restarted task gets a fresh ring).
    ``base_dir`` None: the default ring directory, as the sink uses. With ``job_id`` (a sink with
    a per-job directory: ``env.execute_async(...).get_job_id()``) the files are in
    ``<base_dir>/job-<job_id>/``. The heartbeat files of ring ``<stem>.ring`` are
    ``<stem>.writer.hb`` and ``<stem>.worker.hb``."""
    if parallelism < 1:
        raise ValueError(f"parallelism must be >= 1, got {parallelism}")
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    base = Path(base_dir) if base_dir is not None else Path(_default_ring_dir())
    if job_id is not None:
        base = Path(job_dir(base, str(job_id)))
    suffix = "" if attempt == 0 else f".attempt{attempt}"
    return [str(base / f"{name}-{i}{suffix}.ring") for i in range(parallelism)]


def _java_call(what: str, call: Any) -> Any:
    """Runs a Java builder call; an IllegalArgument/IllegalState from Java becomes a ValueError."""
    from py4j.protocol import Py4JJavaError
    try:
        return call()
    except Py4JJavaError as e:
        jex = e.java_exception
        cls = jex.getClass().getName()
        if cls in ("java.lang.IllegalArgumentException", "java.lang.IllegalStateException",
                   "java.lang.NullPointerException"):
            raise ValueError(str(jex.getMessage())) from None
        raise


def _ms(seconds: float, what: str) -> int:
    ms = int(round(seconds * 1000))
    if ms <= 0:
        raise ValueError(f"RingSink: {what} must be positive, got {seconds} s")
    return ms


class RingSinkBuilder:
    """Builds a :class:`RingSink`; each setter is checked by the Java builder at once, and a bad
    argument raises ValueError with the Java message."""

    def __init__(self) -> None:
        from pyflink.java_gateway import get_gateway
        self._j = get_gateway().jvm.io.flinktf.ipc.RingSink.builder()

    def base_dir(self, path: str | os.PathLike[str]) -> RingSinkBuilder:
        """Directory of the ring files (default ``/dev/shm/flinktf-<uid>``); absolute."""
        _java_call("base_dir", lambda: self._j.setBaseDir(os.fspath(path)))
        return self

    def name(self, name: str) -> RingSinkBuilder:
        """Job-level ring name (required): subtask i writes ``<base_dir>/<name>-<i>.ring``."""
        _java_call("name", lambda: self._j.setName(name))
        return self

    def capacity(self, nbytes: int) -> RingSinkBuilder:
        """Data bytes per ring, a power of two from 4 KiB to 1 GiB (default 64 MiB)."""
        _java_call("capacity", lambda: self._j.setCapacity(int(nbytes)))
        return self

    def align(self, align: int) -> RingSinkBuilder:
        """Frame and payload alignment, 8 or 64 (default 64)."""
        _java_call("align", lambda: self._j.setAlign(int(align)))
        return self

    def encoder(self, encoder: Any) -> RingSinkBuilder:
        """"bytes" (byte[] as is), "long" (8-byte little-endian), "utf8", or a Java
        ``io.flinktf.ipc.RecordEncoder`` object made through the gateway."""
        if isinstance(encoder, str):
            _java_call("encoder", lambda: self._j.setEncoderName(encoder))
        else:
            _java_call("encoder", lambda: self._j.setEncoder(encoder))
        return self

    def write_timeout(self, seconds: float) -> RingSinkBuilder:
        """Longest a write waits for ring space before the task fails (default 600 s)."""
        ms = _ms(seconds, "write_timeout")
        _java_call("write_timeout", lambda: self._j.setWriteTimeoutMillis(ms))
        return self

    def flush_timeout(self, seconds: float) -> RingSinkBuilder:
        """Longest a checkpoint waits for the reader to drain the ring (default: half the job's
        checkpoint timeout, at most 300 s). Keep it below the checkpoint timeout: its
        error names the ring, the worker and the bytes not consumed; Flink's "Checkpoint
        expired" names nothing."""
        ms = _ms(seconds, "flush_timeout")
        _java_call("flush_timeout", lambda: self._j.setFlushTimeoutMillis(ms))
        return self

    def batch_records(self, n: int) -> RingSinkBuilder:
        """Records published together by one release store (default 64)."""
        _java_call("batch_records", lambda: self._j.setBatchRecords(int(n)))
        return self

    def worker_entry(self, entry: str | os.PathLike[str]) -> RingSinkBuilder:
        """Starts one TF worker per subtask running ``entry``: ``"pkg.mod:main"`` or a file
        ``"path/to/train.py:main"`` (made absolute here; function defaults to ``main``), called as
        ``main(context)`` by ``python -P -m flinktf_ipc.worker``.

        Checked here: the module must be importable (or the file exist) in this interpreter, else
        ValueError with the fix. A module found outside site-packages (a project directory) has its
        directory passed to the workers (property ``flinktf.python_path``, see
        :mod:`flinktf_ipc.entry`); the workers check the entry again before the first record, and a
        worker that cannot find it fails the job at once, without restarts.
        Sinks with workers write a per-job directory (see :meth:`per_job_dir`)."""
        from . import entry as entrym

        resolved, python_path = entrym.resolve(os.fspath(entry))
        _java_call("worker_entry", lambda: self._j.setWorkerEntry(resolved))
        if python_path:
            value = os.pathsep.join(python_path)
            _java_call("worker_entry", lambda: self._j.setWorkerProperty(entrym.PYTHON_PATH_PROPERTY, value))
        return self

    def per_job_dir(self, enabled: bool = True) -> RingSinkBuilder:
        """Whether the rings, heartbeats and context files go to ``<base_dir>/job-<job id>/``
        (default: yes for a sink with a worker entry, no without one). Readers that are not workers
        find per-job rings with ``ring_paths(..., job_id=env.execute_async(...).get_job_id())``;
        without a per-job directory two jobs that use the same ring name at once collide."""
        _java_call("per_job_dir", lambda: self._j.setPerJobDirectory(bool(enabled)))
        return self

    def worker_python(self, python: str | os.PathLike[str]) -> RingSinkBuilder:
        """Interpreter of the workers (default: the job's ``python.executable``, which
        :func:`configure` sets to this interpreter; else ``python3``)."""
        _java_call("worker_python", lambda: self._j.setWorkerPython(os.fspath(python)))
        return self

    def heartbeat_interval(self, seconds: float) -> RingSinkBuilder:
        """How often both sides write their heartbeat files (default 1 s)."""
        ms = _ms(seconds, "heartbeat_interval")
        _java_call("heartbeat_interval", lambda: self._j.setHeartbeatIntervalMillis(ms))
        return self

    def heartbeat_timeout(self, seconds: float) -> RingSinkBuilder:
        """A worker (or writer) whose heartbeat is older than this counts as hung (default 10 s)."""
        ms = _ms(seconds, "heartbeat_timeout")
        _java_call("heartbeat_timeout", lambda: self._j.setHeartbeatTimeoutMillis(ms))
        return self

    def worker_shutdown_grace(self, seconds: float) -> RingSinkBuilder:
        """Time between SIGTERM and SIGKILL when a worker is stopped (default 5 s)."""
        ms = _ms(seconds, "worker_shutdown_grace")
        _java_call("worker_shutdown_grace", lambda: self._j.setWorkerShutdownGraceMillis(ms))
        return self

    def worker_exit_grace(self, seconds: float) -> RingSinkBuilder:
        """How long a worker that said finished (its entry returned) may take to exit before it
        is killed (default 60 s; TF teardown is slow on a loaded machine). A worker killed after
        reading the whole stream does not fail the task; the kill is logged and noted in its
        stderr file."""
        ms = _ms(seconds, "worker_exit_grace")
        _java_call("worker_exit_grace", lambda: self._j.setWorkerExitGraceMillis(ms))
        return self

    def worker_properties(self, properties: dict[str, Any]) -> RingSinkBuilder:
        """String properties handed to every worker (``context.properties``)."""
        for k, v in properties.items():
            _java_call("worker_properties", lambda k=str(k), v=str(v): self._j.setWorkerProperty(k, v))
        return self

    def checkpoint_dir(self, path: str | os.PathLike[str]) -> RingSinkBuilder:
        """Base of the workers' checkpoint directories: subtask i's worker gets ``<path>/<i>``
        (``context.checkpoint_dir``, the same in every attempt, for ``tf.train.CheckpointManager``)."""
        p = os.path.abspath(os.fspath(path))
        _java_call("checkpoint_dir", lambda: self._j.setCheckpointDir(p))
        return self

    def worker_log_dir(self, path: str | os.PathLike[str]) -> RingSinkBuilder:
        """Where the workers' stdout/stderr files go (default: beside the TaskManager log)."""
        p = os.path.abspath(os.fspath(path))
        _java_call("worker_log_dir", lambda: self._j.setWorkerLogDir(p))
        return self

    def build(self) -> RingSink:
        return RingSink(_java_call("build", lambda: self._j.build()))


class RingSink(Sink):
    """The Java ``io.flinktf.ipc.RingSink`` as a PyFlink ``Sink``, for ``DataStream.sink_to``.

    Build it with :meth:`builder` (``flinktf_ipc.flink.configure`` must have registered the jar
    first). The stream's element type must match the encoder: e.g. ``Long`` for "long" (a
    ``NumberSequenceSource``), ``byte[]`` (``Types.PRIMITIVE_ARRAY(Types.BYTE())``) for "bytes".
    """

    def __init__(self, j_sink: Any) -> None:
        super().__init__(j_sink)

    @staticmethod
    def builder() -> RingSinkBuilder:
        return RingSinkBuilder()

    def ring_path(self, subtask: int, attempt: int = 0, job_id: str | None = None) -> str:
        """The ring file attempt ``attempt`` of subtask ``subtask`` writes; a sink with a per-job
        directory needs the ``job_id`` (``env.execute_async(...).get_job_id()``), ValueError without."""
        j = self.get_java_function()
        if job_id is not None:
            return str(j.ringPath(int(subtask), int(attempt), str(job_id)).toString())
        return str(_java_call("ring_path", lambda: j.ringPath(int(subtask), int(attempt))).toString())
