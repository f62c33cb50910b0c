"""One TensorFlow cluster inside the Flink job: roles, the cluster spec, ``TFContext``.

The seed-compatible API (the names users of flink-ai-extended know)::

    import tensorflow.compat.v1 as tf
    from flinktf_ipc.tf_cluster import train, TFContext

    def run_main(context):                      # runs in every role process
        tf_context = TFContext(context)
        cluster = tf_context.get_cluster()      # tf.train.ClusterSpec of every role
        job_name = tf_context.get_job_name()    # "worker", "ps", "chief" or a user role
        task_index = tf_context.get_task_index()
        ...

    if __name__ == "__main__":
        train(3, 1, run_main)                   # 3 workers, 1 ps; adds the operators to the job
        StreamExecutionEnvironment.get_execution_environment().execute("tf")

The modern API beside it, of which ``train`` is a thin layer::

    config = (TFClusterConfig.builder()
              .role("worker", 2).role("ps", 1)             # roles with counts
              .entry(run_main)                             # or "my_pkg.train:main"
              .input(rows)                                 # stream mode: rows feed the workers
              .properties({"epochs": "3"})
              .checkpoint_dir("/data/ckpt")
              .build())                                    # every check happens here
    config.add_to(env)                                     # the caller runs env.execute()

Each role runs as one Flink operator whose subtasks each start one Python process; a coordinator on
the JobManager (the AM) gathers the processes' addresses and hands every process the cluster spec
(``TF_CONFIG`` and ``TFContext``); any member failing restarts the whole cluster (attempt k+1, new
spec). The protocol is in docs/FORMAT.md, "TF cluster".
"""

from __future__ import annotations

import inspect
import os
import re
import site
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TFContext", "TFClusterConfig", "TFClusterConfigBuilder", "Role", "train", "entry_of"]

DEFAULT_NAME = "tf"
_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


# ---- the role process side ---------------------------------------------------------------------

class TFContext:
    """What a role process of a TF cluster knows about itself: wraps the ``context`` handed to
    ``run_main`` (``TFContext(context)``, as in the seed)."""

    def __init__(self, context: Any) -> None:
        if isinstance(context, TFContext):
            context = context.context
        self.context: Any
        # A stream-inference worker (tf_cluster.inference) has no cluster spec but an output ring.
        if getattr(context, "_cluster_spec", None) is None and getattr(context, "output_ring", None) is None:
            raise ValueError("TFContext(context): this process is not a role of a TF cluster (its worker context "
                             "has no cluster spec; the cluster is made with tf_cluster.train or TFClusterConfig)")
        self.context = context
        self._spec: Any = getattr(context, "_cluster_spec", None)
        self._info: Any = getattr(context, "_cluster_info", None)

    def _spec_or_error(self, what: str) -> Any:
        if self._spec is None:
            raise ValueError(f"TFContext.{what}: this is a stream-inference worker, not a role of a TF cluster: "
                             "it has no cluster spec")
        return self._spec

    def get_cluster(self) -> Any:
        """The ``tf.train.ClusterSpec`` of every role."""
        import tensorflow as tf

        return tf.train.ClusterSpec(self.get_tf_config()["cluster"])

    def get_job_name(self) -> str:
        """This process's role: "worker", "ps", "chief" or a user role."""
        return str(self._spec.task_type) if self._spec is not None else str(self.context.role)

    def get_task_index(self) -> int:
        """This process's index within its role."""
        return int(self._spec.task_index) if self._spec is not None else int(self.context.index)

    def get_tf_config(self) -> dict[str, Any]:
        """The ``TF_CONFIG`` dict (``{"cluster": {...}, "task": {"type", "index"}}``), also set in
        ``os.environ["TF_CONFIG"]`` before ``run_main`` runs."""
        return dict(self._spec_or_error("get_tf_config").tf_config())

    @property
    def is_chief(self) -> bool:
        """True on the chief: the ``chief`` role's task 0 if there is one, else worker 0 (an
        inference worker: index 0)."""
        if self._info is None:
            return self.get_task_index() == 0
        return (self.get_job_name(), self.get_task_index()) == self._info.chief_task

    @property
    def checkpoint_dir(self) -> str | None:
        """This task's checkpoint directory, ``<checkpoint_dir>/<role>-<index>``: the same path in
        every attempt (None when the cluster has no checkpoint dir)."""
        return self.context.checkpoint_dir  # type: ignore[no-any-return]

    @property
    def chief_checkpoint_dir(self) -> str | None:
        """The chief's checkpoint directory (every worker restores from it after a restart)."""
        if self.checkpoint_dir is None or self._info is None:
            return None
        role, index = self._info.chief_task
        return os.path.join(os.path.dirname(os.path.normpath(self.checkpoint_dir)), f"{role}-{index}")

    @property
    def attempt(self) -> int:
        """0 in the first run of the cluster, k after the k-th restart."""
        return int(self.context.attempt)

    @property
    def epoch(self) -> int:
        """The AM's round that made this spec."""
        return int(self._spec_or_error("epoch").epoch)

    @property
    def properties(self) -> dict[str, str]:
        """The properties given to ``train`` / the config, as strings."""
        return dict(self.context.properties)

    @property
    def cluster_name(self) -> str:
        self._spec_or_error("cluster_name")
        return str(self._info.name)

    @property
    def roles(self) -> dict[str, int]:
        """Every role and its count."""
        self._spec_or_error("roles")
        return dict(self._info.roles)

    @property
    def is_fed(self) -> bool:
        """True when Flink feeds this role (stream mode): :meth:`dataset` reads that feed."""
        return bool(self.context.rings)

    def dataset(self, **kwargs: Any) -> Any:
        """A ``tf.data.Dataset`` of this process's share of the input stream (see
        :func:`flinktf_ipc.tf.ring_dataset` for the arguments). Only fed roles have one."""
        if not self.is_fed:
            raise ValueError(f"{self.get_job_name()}:{self.get_task_index()} is not fed by Flink (batch mode, "
                             "or a role not among the config's fed roles): it has no dataset")
        return self.context.dataset(**kwargs)

    def input_batches(self) -> Any:
        """Stream inference: batches of input rows (:mod:`flinktf_ipc.inference`)."""
        from . import inference as _inference

        return _inference.input_batches(self.context)

    def emit(self, result: Any) -> None:
        """Writes rows into the output stream: a mapping of column -> array (one value per row) or a
        ``pyarrow.RecordBatch``, cast to the output row type (TypeError naming a column that cannot be).

        In a TF cluster role (``output_row_type``): any number of rows, from any role; they end when
        ``run_main`` returns. In stream inference: one output row per input row of the current batch,
        in order."""
        from . import inference as _inference

        _inference.emit(self.context, result)

    def serve(self, fn: Callable[[Any], Any]) -> None:
        """Stream inference: ``emit(fn(batch))`` for every input batch until the end of the input."""
        from . import inference as _inference

        _inference.serve(self.context, fn)

    def progress(self, counts: Mapping[str, int]) -> None:
        """Reports progress counters in this process's heartbeat (``flinktf-ipc stat``)."""
        self.context.progress(counts)

    def __repr__(self) -> str:
        if self._spec is None:
            return f"TFContext(inference {self.get_job_name()}:{self.get_task_index()}, attempt {self.attempt})"
        return (f"TFContext({self.cluster_name} {self.get_job_name()}:{self.get_task_index()}, "
                f"attempt {self.attempt}, epoch {self.epoch}, chief={self.is_chief})")


# ---- the job side -------------------------------------------------------------------------------

def _under(path: str, roots: Sequence[str]) -> bool:
    path = os.path.realpath(path)
    return any(r and os.path.commonpath([path, os.path.realpath(r)]) == os.path.realpath(r) for r in roots)


def entry_of(fn: Callable[..., Any] | str) -> str:
    """The entry string a role process loads: ``"module:function"`` for a function of an installed
    module, ``"/abs/path/file.py:function"`` for one defined in a script or a module beside it.

    The processes start with ``python -P`` (no script directory or cwd on ``sys.path``), so only
    modules found through site-packages or ``PYTHONPATH`` are imported by name. A lambda, a nested
    function, or a function of an interactive ``__main__`` cannot be found there: ValueError.
    """
    if isinstance(fn, str):
        target, sep, name = fn.partition(":")
        if not target or (sep and not name.isidentifier()):
            raise ValueError(f"entry {fn!r}: expected 'package.module:function' or '/path/file.py:function'")
        if target.endswith(".py"):
            return os.path.abspath(target) + (sep + name if sep else "")
        return fn
    if not callable(fn) or not inspect.isfunction(fn):
        raise ValueError(f"run_main must be a module-level function, got {fn!r}")
    qual = fn.__qualname__
    if "<lambda>" in qual or "<locals>" in qual or "." in qual:
        raise ValueError(f"run_main {qual!r} is a lambda, a nested function or a method: each role process imports "
                         "run_main by name, so define it with def at the top level of a module")
    module = sys.modules.get(fn.__module__)
    file = getattr(module, "__file__", None)
    if module is None or getattr(module, fn.__name__, None) is not fn:
        raise ValueError(f"run_main {qual!r} is not reachable as {fn.__module__}.{fn.__name__}")
    if fn.__module__ == "__main__" or not file:
        if not file or not file.endswith(".py"):
            raise ValueError(f"run_main {qual!r} is defined in an interactive session ({fn.__module__} has no .py "
                             "file): role processes cannot import it; put it in a .py file")
        return f"{os.path.abspath(file)}:{fn.__name__}"
    roots = list(site.getsitepackages()) + [site.getusersitepackages()]
    roots += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if _under(file, roots):
        return f"{fn.__module__}:{fn.__name__}"
    if "." in fn.__module__:
        raise ValueError(f"run_main {fn.__module__}.{fn.__name__} is in a package that is neither installed nor on "
                         "PYTHONPATH: role processes (python -P) cannot import it; install the package or add its "
                         "root to PYTHONPATH")
    return f"{os.path.abspath(file)}:{fn.__name__}"


def _properties(props: Mapping[str, Any] | None) -> dict[str, str]:
    if props is None:
        return {}
    if not isinstance(props, Mapping):
        raise ValueError(f"properties must be a dict of str to str, got {type(props).__name__}")
    out: dict[str, str] = {}
    for k, v in props.items():
        if not isinstance(k, str) or not k:
            raise ValueError(f"property name {k!r}: names are non-empty strings")
        if isinstance(v, bool):
            out[k] = "true" if v else "false"
        elif isinstance(v, (str, int, float)):
            out[k] = str(v)
        else:
            raise ValueError(f"property {k!r}: value {v!r} ({type(v).__name__}) is not a string or number "
                             "(properties reach the processes as strings)")
    return out


def _positive(value: Any, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {value!r}")
    return value


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{what} must be a positive number of seconds, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Role:
    name: str
    count: int
    fed: bool = False


@dataclass(frozen=True)
class TFClusterConfig:
    """A checked cluster description (made by :meth:`builder` ... ``build()``); :meth:`add_to` adds
    it to a job."""

    name: str
    roles: tuple[Role, ...]
    entry: str
    properties: dict[str, str] = field(default_factory=dict)
    input: Any = None  # a PyFlink DataStream of Rows
    row_type: Any = None  # its RowTypeInfo
    output_type: Any = None  # RowTypeInfo of the rows the processes emit (issue 10)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    batch_rows: int | None = None  # None: 1024, or the largest multiple of batch_size up to it
    batch_size: int | None = None  # the workers' TF batch size: Arrow batches are cut at multiples of it
    batch_bytes: int | None = None
    linger_ms: int = 100
    checkpoint_dir: str | None = None
    base_dir: str | None = None
    ring_capacity: int | None = None
    python: str | None = None
    heartbeat_interval: float | None = None
    heartbeat_timeout: float | None = None
    shutdown_grace: float | None = None
    log_dir: str | None = None

    @staticmethod
    def builder() -> TFClusterConfigBuilder:
        return TFClusterConfigBuilder()

    @property
    def chief(self) -> str:
        """The chief task: "chief:0" when there is a chief role, else "worker:0"."""
        names = [r.name for r in self.roles]
        return "chief:0" if "chief" in names else "worker:0"

    def role(self, name: str) -> Role:
        for r in self.roles:
            if r.name == name:
                return r
        raise KeyError(name)

    def add_to(self, env: Any = None) -> Any:
        """Adds the cluster's operators to the job of ``env`` (a PyFlink
        ``StreamExecutionEnvironment``; None: the input stream's, or a new configured one). Returns
        the ``DataStream`` of output rows when ``output_type`` is set, else None. The caller runs
        ``env.execute()``."""
        from . import flink

        if os.environ.get("FLINKTF_WORKER_CONTEXT"):
            raise RuntimeError("a TF cluster is being added from inside a role process: guard the job code with "
                               "`if __name__ == \"__main__\":` (role processes import run_main's file)")
        if env is None and self.input is not None:
            env = self.input.get_execution_environment()
        env = flink.configure(env)
        return _to_java(self, env)


class TFClusterConfigBuilder:
    """Builds a :class:`TFClusterConfig`; ``build()`` checks everything and raises ValueError."""

    def __init__(self) -> None:
        self._name = DEFAULT_NAME
        self._roles: dict[str, int] = {}
        self._fed: set[str] | None = None
        self._chief = False
        self._entry: Callable[..., Any] | str | None = None
        self._props: dict[str, Any] = {}
        self._input: Any = None
        self._row_type: Any = None
        self._output_type: Any = None
        self._opts: dict[str, Any] = {}
        self._errors: list[str] = []

    def name(self, name: str) -> TFClusterConfigBuilder:
        """The cluster's name (default "tf"): its files are ``<name>-<role>-<index>.*``."""
        self._name = name
        return self

    def role(self, name: str, count: int) -> TFClusterConfigBuilder:
        """A role of ``count`` processes ("worker", "ps", "evaluator", ...)."""
        if name in self._roles:
            self._errors.append(f"role {name!r} given twice")
        self._roles[name] = count
        return self

    def workers(self, count: int) -> TFClusterConfigBuilder:
        return self.role("worker", count)

    def ps(self, count: int) -> TFClusterConfigBuilder:
        return self.role("ps", count)

    def chief(self, enabled: bool = True) -> TFClusterConfigBuilder:
        """A separate ``chief`` role of one process (else worker 0 is the chief)."""
        self._chief = bool(enabled)
        return self

    def entry(self, run_main: Callable[..., Any] | str) -> TFClusterConfigBuilder:
        """What every role process runs: a module-level function or "module:function"."""
        self._entry = run_main
        return self

    def properties(self, props: Mapping[str, Any]) -> TFClusterConfigBuilder:
        """Strings (numbers and bools are turned into strings) every process reads as
        ``tf_context.properties``."""
        if not isinstance(props, Mapping):
            self._errors.append(f"properties must be a dict, got {type(props).__name__}")
        else:
            self._props.update(props)
        return self

    def property(self, key: str, value: Any) -> TFClusterConfigBuilder:
        return self.properties({key: value})

    def input(self, stream: Any, row_type: Any = None, *, roles: Sequence[str] = ("worker",),
              shapes: Mapping[str, Sequence[int]] | None = None, batch_size: int | None = None,
              batch_rows: int | None = None, batch_bytes: int | None = None,
              linger_ms: int = 100) -> TFClusterConfigBuilder:
        """Stream mode: ``stream`` (a DataStream of Rows; ``row_type`` defaults to the stream's own
        type, which must be a row type) is spread over the subtasks of ``roles`` as Arrow batches
        (``shapes``, ``batch_size``, ``batch_rows``, ``batch_bytes``, ``linger_ms`` as for
        :func:`flinktf_ipc.flink_arrow.arrow_sink`: with ``batch_size``, the processes'
        ``dataset()`` gets whole batches of it without re-batching)."""
        self._input, self._row_type = stream, row_type
        self._fed = set(roles)
        self._opts.update(shapes=shapes, batch_size=batch_size, batch_rows=batch_rows, batch_bytes=batch_bytes,
                          linger_ms=linger_ms)
        return self

    def output(self, row_type: Any) -> TFClusterConfigBuilder:
        """The row type of what the processes emit; ``add_to`` then returns that DataStream."""
        self._output_type = row_type
        return self

    def checkpoint_dir(self, path: str | os.PathLike[str]) -> TFClusterConfigBuilder:
        """Base of the tasks' checkpoint dirs: ``<path>/<role>-<index>``, the same in every attempt."""
        self._opts["checkpoint_dir"] = os.path.abspath(os.fspath(path))
        return self

    def base_dir(self, path: str | os.PathLike[str]) -> TFClusterConfigBuilder:
        """Directory of the rings and protocol files (default ``$FLINKTF_IPC_DIR`` or
        ``/dev/shm/flinktf-<uid>``)."""
        self._opts["base_dir"] = os.path.abspath(os.fspath(path))
        return self

    def ring_capacity(self, nbytes: int) -> TFClusterConfigBuilder:
        self._opts["ring_capacity"] = nbytes
        return self

    def python(self, executable: str | os.PathLike[str]) -> TFClusterConfigBuilder:
        """The interpreter of the role processes (default: the job's ``python.executable``)."""
        self._opts["python"] = os.fspath(executable)
        return self

    def heartbeat(self, interval: float | None = None, timeout: float | None = None) -> TFClusterConfigBuilder:
        """Heartbeat interval and the age after which a process counts as hung (defaults 1 s, 10 s)."""
        if interval is not None:
            self._opts["heartbeat_interval"] = interval
        if timeout is not None:
            self._opts["heartbeat_timeout"] = timeout
        return self

    def shutdown_grace(self, seconds: float) -> TFClusterConfigBuilder:
        """Time between SIGTERM and SIGKILL when a process is stopped (ps roles at the end)."""
        self._opts["shutdown_grace"] = seconds
        return self

    def log_dir(self, path: str | os.PathLike[str]) -> TFClusterConfigBuilder:
        """Where the processes' stdout/stderr files go."""
        self._opts["log_dir"] = os.path.abspath(os.fspath(path))
        return self

    def build(self) -> TFClusterConfig:
        errors = list(self._errors)
        if not isinstance(self._name, str) or not _CLUSTER_NAME.match(self._name):
            errors.append(f"cluster name {self._name!r}: letters, digits, '_' and '-', at most 64")
        roles: list[Role] = []
        names = dict(self._roles)
        if self._chief:
            if "chief" in names and names["chief"] != 1:
                errors.append(f"the chief role has one process, got {names['chief']}")
            names["chief"] = 1
        if "worker" not in names:
            errors.append("a cluster needs the role 'worker' with at least one process")
        fed = self._fed if self._fed is not None else set()
        for name, count in names.items():
            if not isinstance(name, str) or not _ROLE_NAME.match(name):
                errors.append(f"role name {name!r}: lower-case letters, digits and '_', starting with a letter")
                continue
            try:
                _positive(count, f"role {name!r}: the number of processes")
            except ValueError as e:
                errors.append(str(e))
                continue
            roles.append(Role(name, count, name in fed))
        unknown_fed = sorted(fed - set(names))
        if unknown_fed:
            errors.append(f"input roles {unknown_fed} are not roles of the cluster ({sorted(names)})")
        entry = None
        if self._entry is None:
            errors.append("no entry: call .entry(run_main)")
        else:
            try:
                entry = entry_of(self._entry)
            except ValueError as e:
                errors.append(str(e))
        try:
            props = _properties(self._props)
        except ValueError as e:
            errors.append(str(e))
            props = {}
        row_type = self._row_type
        shapes: dict[str, tuple[int, ...]] = {}
        if self._input is not None:
            row_type = _input_row_type(self._input, row_type, errors)
            for col, shape in (self._opts.get("shapes") or {}).items():
                try:
                    shapes[str(col)] = tuple(_positive(d, f"shape of {col!r}") for d in shape)
                except (ValueError, TypeError) as e:
                    errors.append(str(e))
            try:
                if self._opts["batch_size"] is not None:
                    _positive(self._opts["batch_size"], "batch_size")
                if self._opts["batch_rows"] is not None:
                    _positive(self._opts["batch_rows"], "batch_rows")
                    if self._opts["batch_size"] is not None and self._opts["batch_rows"] % self._opts["batch_size"]:
                        raise ValueError(f"batch_rows must be a multiple of batch_size, got {self._opts['batch_rows']} "
                                         f"rows for batch size {self._opts['batch_size']}")
                _positive(self._opts["linger_ms"], "linger_ms", 0)
                if self._opts["batch_bytes"] is not None:
                    _positive(self._opts["batch_bytes"], "batch_bytes", 64)
            except ValueError as e:
                errors.append(str(e))
        if self._output_type is not None:
            from pyflink.common.typeinfo import RowTypeInfo
            if not isinstance(self._output_type, RowTypeInfo):
                errors.append(f"output type must be a Types.ROW_NAMED(...) row type, got {self._output_type!r}")
        opts = {k: v for k, v in self._opts.items() if k not in ("shapes", "batch_size", "batch_rows", "batch_bytes",
                                                         "linger_ms")}
        try:
            for key in ("heartbeat_interval", "heartbeat_timeout", "shutdown_grace"):
                if key in opts:
                    opts[key] = _seconds(opts[key], key)
            if "ring_capacity" in opts:
                _positive(opts["ring_capacity"], "ring_capacity", 4096)
        except ValueError as e:
            errors.append(str(e))
        if errors:
            raise ValueError("TF cluster config: " + "; ".join(errors))
        assert entry is not None
        return TFClusterConfig(
            name=self._name, roles=tuple(roles), entry=entry, properties=props, input=self._input,
            row_type=row_type, output_type=self._output_type, shapes=shapes,
            batch_rows=self._opts.get("batch_rows"), batch_size=self._opts.get("batch_size"),
            batch_bytes=self._opts.get("batch_bytes"),
            linger_ms=self._opts.get("linger_ms", 100), **opts)


def _input_row_type(stream: Any, row_type: Any, errors: list[str]) -> Any:
    from pyflink.common.typeinfo import RowTypeInfo
    from pyflink.datastream import DataStream

    if not isinstance(stream, DataStream):
        errors.append(f"input must be a PyFlink DataStream of Rows, got {type(stream).__name__}")
        return None
    if row_type is None:
        from pyflink.common.typeinfo import ExternalTypeInfo
        try:
            row_type = stream.get_type()
        except Exception as e:  # noqa: BLE001 - a Java type PyFlink cannot name
            errors.append(f"the type of input_ds is not known to PyFlink ({type(e).__name__}: {e}): pass row_type")
            return None
        if isinstance(row_type, ExternalTypeInfo):  # Table API's to_data_stream: Rows of a known row type
            row_type = row_type._type_info
    if not isinstance(row_type, RowTypeInfo):
        errors.append(f"input_ds has no row type (its type is {row_type}): give the operator that makes it "
                      "output_type=Types.ROW_NAMED([...], [...]) so the columns have names and types")
        return None
    return row_type


# ---- Py4J: the Java side (io.flinktf.ipc.cluster) -----------------------------------------------

def _to_java(config: TFClusterConfig, env: Any) -> Any:
    """Builds the Java config and calls ``TFCluster.addTo``; returns the output DataStream or None."""
    from pyflink.datastream import DataStream
    from pyflink.java_gateway import get_gateway

    from . import flink

    gateway = get_gateway()
    jvm = gateway.jvm
    j_cluster = jvm.io.flinktf.ipc.cluster
    b = flink._java_call("TFClusterConfig", lambda: j_cluster.TFClusterConfig.builder())

    def call(setter: str, *args: Any) -> None:
        flink._java_call(f"TFClusterConfig.{setter}", lambda: getattr(b, setter)(*args))

    call("setName", config.name)
    for r in config.roles:
        call("addRole", r.name, r.count, r.fed)
    call("setEntry", config.entry)
    for k, v in config.properties.items():
        call("setProperty", k, v)
    for key, setter in (("python", "setPythonExecutable"), ("checkpoint_dir", "setCheckpointDir"),
                        ("base_dir", "setBaseDir"), ("log_dir", "setWorkerLogDir")):
        if getattr(config, key) is not None:
            call(setter, getattr(config, key))
    if config.ring_capacity is not None:
        call("setRingCapacity", int(config.ring_capacity))
    for key, setter in (("heartbeat_interval", "setHeartbeatIntervalMillis"),
                        ("heartbeat_timeout", "setHeartbeatTimeoutMillis"),
                        ("shutdown_grace", "setShutdownGraceMillis")):
        seconds = getattr(config, key)
        if seconds is not None:
            call(setter, int(round(seconds * 1000)))
    if config.input is not None:
        j_arrow = jvm.io.flinktf.ipc.arrow
        batch_bytes = config.batch_bytes if config.batch_bytes is not None else 4 << 20
        if config.ring_capacity is not None and config.batch_bytes is None:
            batch_bytes = max(64, min(batch_bytes, config.ring_capacity // 8))
        options = flink._java_call("arrow options", lambda: j_arrow.ArrowBatchOptions.defaults()
                                   .setBatchBytes(int(batch_bytes)).setLingerMillis(int(config.linger_ms)))
        if config.batch_size is not None:
            flink._java_call("arrow options", lambda: options.setBatchSize(int(config.batch_size)))
        if config.batch_rows is not None:
            flink._java_call("arrow options", lambda: options.setBatchRows(int(config.batch_rows)))
        call("setArrowOptions", options)
        j_shapes = jvm.java.util.HashMap()
        for column, shape in config.shapes.items():
            j_dims = gateway.new_array(jvm.int, len(shape))
            for i, d in enumerate(shape):
                j_dims[i] = d
            j_shapes.put(column, j_dims)
        call("setShapes", j_shapes)
    if config.output_type is not None:
        call("setOutputRowType", config.output_type.get_java_type_info())
    j_config = flink._java_call("TFClusterConfig", lambda: b.build())
    if config.input is not None:
        j_out = flink._java_call("TFCluster.addTo", lambda: j_cluster.TFCluster.addTo(
            config.input._j_data_stream, config.row_type.get_java_type_info(), j_config))
    else:
        j_out = flink._java_call("TFCluster.addTo", lambda: j_cluster.TFCluster.addTo(
            env._j_stream_execution_environment, j_config))
    return None if j_out is None or config.output_type is None else DataStream(j_out)


# ---- the seed-compatible entry point ------------------------------------------------------------

_TRAIN_OPTIONS = ("name", "checkpoint_dir", "base_dir", "ring_capacity", "python", "log_dir", "shutdown_grace")


def train(num_workers: int, num_ps: int, run_main: Callable[..., Any], properties: Mapping[str, Any] | None = None,
          stream_env: Any = None, input_ds: Any = None, output_row_type: Any = None, **options: Any) -> Any:
    """Adds a TF cluster of ``num_workers`` workers and ``num_ps`` parameter servers, each process
    running ``run_main(context)``, to the job of ``stream_env`` (created and configured if None).

    ``input_ds`` (a DataStream of Rows with a row type) feeds the workers (stream mode); None is
    batch mode: no role reads Flink data. ``output_row_type``: the row type of rows the workers emit,
    returned as a DataStream (else None). ``properties`` reach every process as strings. Bad
    arguments raise ValueError here, before the job starts. The caller runs ``stream_env.execute()``.

    Beyond the seed's arguments, keyword ``options`` set what :class:`TFClusterConfigBuilder` sets:
    ``name``, ``checkpoint_dir`` (``tf_context.checkpoint_dir``, for resuming after a restart),
    ``base_dir``, ``ring_capacity``, ``python``, ``log_dir``, ``shutdown_grace``,
    ``heartbeat_interval`` and ``heartbeat_timeout``.
    """
    _positive(num_workers, "num_workers")
    if isinstance(num_ps, bool) or not isinstance(num_ps, int) or num_ps < 0:
        raise ValueError(f"num_ps must be an int >= 0, got {num_ps!r}")
    unknown = sorted(set(options) - set(_TRAIN_OPTIONS) - {"heartbeat_interval", "heartbeat_timeout"})
    if unknown:
        raise ValueError(f"train: unknown option(s) {unknown}; known: "
                         f"{', '.join(_TRAIN_OPTIONS + ('heartbeat_interval', 'heartbeat_timeout'))}")
    builder = TFClusterConfig.builder().role("worker", num_workers).entry(run_main)
    if num_ps:
        builder.role("ps", num_ps)
    if properties is not None:
        builder.properties(_properties(properties))
    if input_ds is not None:
        builder.input(input_ds)
    if output_row_type is not None:
        builder.output(output_row_type)
    for key in _TRAIN_OPTIONS:
        if key in options:
            getattr(builder, key)(options[key])
    builder.heartbeat(options.get("heartbeat_interval"), options.get("heartbeat_timeout"))
    return builder.build().add_to(stream_env)


# ---- inference (issue 10) -----------------------------------------------------------------------
# `inference` lives in flinktf_ipc/inference.py (helper "inference"); it is re-exported here so that
# `from flinktf_ipc.tf_cluster import train, inference, TFContext` works, loaded on first use.

def __getattr__(name: str) -> Any:
    if name == "inference":
        from .inference import inference

        return inference
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
