"""A standalone Flink cluster on this host, for tests and demos, from the apache-flink wheel.

The wheel ships Flink's own ``bin/`` scripts (``jobmanager.sh``, ``taskmanager.sh``, ``flink``) and a
``conf/``. This module runs those scripts unchanged with a conf dir of its own, and the logs and
pid files in one folder (``FLINK_CONF_DIR``, ``FLINK_LOG_DIR``, ``FLINK_PID_DIR``): nothing inside
site-packages is written. The folder (``home``) holds::

    conf/config.yaml   the settings below (small memory: fits 2 cores / 24 GiB with room to spare)
    log/               every JobManager/TaskManager log and .out, and the TF workers' logs beside them
    pid/               Flink's pid files
    cluster.json       the ports and ring dir this cluster was started with

``flinktf-ipc cluster start|stop|status`` is the command line; tests use :class:`LocalCluster`::

    c = LocalCluster("/tmp/my-cluster", rest_port=18081, rpc_port=16123)
    c.start(taskmanagers=2)
    c.submit("examples/ctr.py", ["--rows", "100000"])   # bin/flink run -py
    c.stop()
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["LocalCluster", "flink_home", "default_home"]

# TaskManager: 2 slots (one TF worker each) in a small JVM; the TF workers are processes of their
# own, outside this budget. JobManager: the smallest that runs a job graph comfortably.
DEFAULTS: dict[str, str] = {
    "jobmanager.memory.process.size": "768m",
    "taskmanager.memory.process.size": "1024m",
    "taskmanager.memory.managed.fraction": "0.1",
    "taskmanager.numberOfTaskSlots": "2",
    "parallelism.default": "2",
    # A killed TaskManager is noticed within seconds, not after the 50 s default.
    "heartbeat.interval": "2000",
    "heartbeat.timeout": "15000",
    "jobmanager.execution.failover-strategy": "region",
    "rest.bind-address": "localhost",
    "rest.address": "localhost",
    "jobmanager.bind-host": "localhost",
    "jobmanager.rpc.address": "localhost",
    "taskmanager.bind-host": "localhost",
    "taskmanager.host": "localhost",
    # Ephemeral ports for everything but the two the client needs: no clash with other clusters.
    "blob.server.port": "0",
    "taskmanager.rpc.port": "0",
    "taskmanager.data.port": "0",
    "metrics.internal.query-service.port": "0",
}


def flink_home() -> Path:
    """The apache-flink wheel's Flink distribution (``pyflink/``: ``bin/``, ``lib/``, ``conf/``)."""
    import pyflink

    home = Path(pyflink.__file__).resolve().parent
    if not (home / "bin" / "taskmanager.sh").is_file():
        raise FileNotFoundError(f"{home}/bin/taskmanager.sh missing: reinstall apache-flink==2.3.0")
    return home


def default_home() -> str:
    """``$FLINKTF_CLUSTER_HOME``, else ``<tmp>/flinktf-ipc-cluster-<uid>``."""
    return os.environ.get("FLINKTF_CLUSTER_HOME") or os.path.join(
        tempfile.gettempdir(), f"flinktf-ipc-cluster-{os.getuid()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class LocalCluster:
    """One JobManager and N TaskManagers on localhost, started with the wheel's own scripts.

    ``ring_dir`` becomes ``FLINKTF_IPC_DIR`` of the cluster's processes (and so of the TF workers
    they start). ``conf`` adds or overrides Flink settings (``key: value``, flat keys).
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, *, rest_port: int = 8081,
                 rpc_port: int = 6123, slots: int = 2, ring_dir: str | None = None,
                 conf: Mapping[str, str] | None = None) -> None:
        self.home = Path(home or default_home()).absolute()
        self.rest_port = rest_port
        self.rpc_port = rpc_port
        self.slots = slots
        self.ring_dir = ring_dir
        self.extra_conf = dict(conf or {})
        self.flink = flink_home()

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None) -> LocalCluster:
        """The cluster a previous ``start`` left in ``home`` (ports and ring dir from cluster.json)."""
        h = Path(home or default_home()).absolute()
        try:
            saved = json.loads((h / "cluster.json").read_text())
        except (OSError, ValueError):
            return cls(h)
        return cls(h, rest_port=saved["rest_port"], rpc_port=saved["rpc_port"], slots=saved["slots"],
                   ring_dir=saved.get("ring_dir"), conf=saved.get("conf"))

    # ---- folders and environment ----------------------------------------------------------

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    @property
    def pid_dir(self) -> Path:
        return self.home / "pid"

    @property
    def rest_url(self) -> str:
        return f"http://localhost:{self.rest_port}"

    def settings(self) -> dict[str, str]:
        s = dict(DEFAULTS)
        s.update({"rest.port": str(self.rest_port), "jobmanager.rpc.port": str(self.rpc_port),
                  "taskmanager.numberOfTaskSlots": str(self.slots),
                  # the TF workers' interpreter: this one (the TaskManager hosts share it here)
                  "python.executable": sys.executable, "python.client.executable": sys.executable})
        s.update(self.extra_conf)
        return s

    def write_conf(self) -> None:
        """conf/config.yaml (the wheel's JVM options plus :meth:`settings`) and the log4j files."""
        for d in (self.conf_dir, self.log_dir, self.pid_dir):
            d.mkdir(parents=True, exist_ok=True)
        src = self.flink / "conf"
        java_opts = ""
        for line in (src / "config.yaml").read_text().splitlines():
            if line.strip().startswith("all:"):  # env.java.opts.all: the wheel's --add-opens list
                java_opts = line.split(":", 1)[1].strip()
        lines = [f"env.java.opts.all: {java_opts}"] if java_opts else []
        lines += [f"{k}: {v}" for k, v in self.settings().items()]
        (self.conf_dir / "config.yaml").write_text("\n".join(lines) + "\n")
        for name in ("log4j.properties", "log4j-cli.properties", "log4j-console.properties",
                     "logback.xml", "logback-console.xml"):
            if (src / name).is_file():
                shutil.copy(src / name, self.conf_dir / name)
        (self.conf_dir / "masters").write_text(f"localhost:{self.rest_port}\n")
        (self.conf_dir / "workers").write_text("localhost\n")

    def env(self) -> dict[str, str]:
        """The environment of the scripts: our conf/log/pid dirs, this venv first on PATH."""
        e = dict(os.environ)
        e.update({"FLINK_CONF_DIR": str(self.conf_dir), "FLINK_LOG_DIR": str(self.log_dir),
                  "FLINK_PID_DIR": str(self.pid_dir), "FLINK_IDENT_STRING": "flinktf",
                  "PATH": os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")})
        if self.ring_dir:
            e["FLINKTF_IPC_DIR"] = self.ring_dir
        return e

    def _script(self, name: str, *args: str, timeout: float = 120) -> str:
        r = subprocess.run(["bash", str(self.flink / "bin" / name), *args], env=self.env(), cwd=self.home,
                           capture_output=True, text=True, timeout=timeout)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0:
            raise RuntimeError(f"{name} {' '.join(args)} failed ({r.returncode}): {out}")
        return out

    # ---- processes --------------------------------------------------------------------------

    def _pids(self, daemon: str) -> list[int]:
        f = self.pid_dir / f"flink-flinktf-{daemon}.pid"
        try:
            return [int(x) for x in f.read_text().split()]
        except (OSError, ValueError):
            return []

    def jobmanager_pids(self) -> list[int]:
        return [p for p in self._pids("standalonesession") if _pid_alive(p)]

    def taskmanager_pids(self) -> list[int]:
        """Live TaskManager processes, oldest first."""
        return [p for p in self._pids("taskexecutor") if _pid_alive(p)]

    def pids(self) -> list[int]:
        return self.jobmanager_pids() + self.taskmanager_pids()

    def rest(self, path: str, timeout: float = 5) -> Any:
        with urllib.request.urlopen(self.rest_url + path, timeout=timeout) as r:
            return json.loads(r.read())

    def overview(self) -> dict[str, Any] | None:
        """The JobManager's ``/overview`` (TaskManagers, slots, jobs), or None when it does not answer."""
        try:
            return self.rest("/overview")  # type: ignore[no-any-return]
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def start(self, taskmanagers: int = 2, timeout: float = 180) -> None:
        """Writes the conf, starts the JobManager and ``taskmanagers`` TaskManagers, and returns once
        every TaskManager has registered (about 30 s on 2 cores)."""
        if taskmanagers < 0:
            raise ValueError(f"taskmanagers must be >= 0, got {taskmanagers}")
        if self.pids():
            raise RuntimeError(f"a cluster already runs from {self.home} (pids {self.pids()}): "
                               "flinktf-ipc cluster stop first")
        self.write_conf()
        if self.ring_dir:
            os.makedirs(self.ring_dir, mode=0o700, exist_ok=True)
        (self.home / "cluster.json").write_text(json.dumps(
            {"rest_port": self.rest_port, "rpc_port": self.rpc_port, "slots": self.slots,
             "ring_dir": self.ring_dir, "conf": self.extra_conf}))
        self._script("jobmanager.sh", "start")
        for _ in range(taskmanagers):
            self._script("taskmanager.sh", "start")
        self.wait_for_taskmanagers(taskmanagers, timeout)

    def add_taskmanager(self, timeout: float = 180) -> int:
        """Starts one more TaskManager (a replacement); returns its pid once it registered (a killed
        one may still be listed until the JobManager's heartbeat timeout: the new id is awaited)."""
        before = set(self.taskmanager_pids())
        known = {tm.get("id") for tm in self._registered()}
        self._script("taskmanager.sh", "start")
        new = [p for p in self.taskmanager_pids() if p not in before]
        deadline = time.monotonic() + timeout
        while not any(tm.get("id") not in known for tm in self._registered()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the new TaskManager did not register within {timeout:.0f} s; logs in "
                                   f"{self.log_dir}")
            time.sleep(0.5)
        return new[0] if new else -1

    def _registered(self) -> list[dict[str, Any]]:
        try:
            return list(self.rest("/taskmanagers")["taskmanagers"])
        except (OSError, ValueError, KeyError, urllib.error.URLError):
            return []

    def wait_for_taskmanagers(self, n: int, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if not self.jobmanager_pids():
                raise RuntimeError(f"the JobManager exited; see {self.log_dir}: {self._log_tail()}")
            if len(self._registered()) >= n and self.overview() is not None:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} TaskManager(s) did not register within {timeout:.0f} s "
                                   f"({len(self._registered())} did); logs in {self.log_dir}")
            time.sleep(0.5)

    def _log_tail(self, lines: int = 20) -> str:
        logs = sorted(self.log_dir.glob("*.log"), key=lambda p: p.stat().st_mtime)
        if not logs:
            return "(no log)"
        return "\n".join(logs[-1].read_text(errors="replace").splitlines()[-lines:])

    def kill_taskmanager(self, pid: int) -> None:
        """SIGKILL (no cleanup at all, as a crashed host would): for failover tests."""
        os.kill(pid, signal.SIGKILL)

    def stop(self, timeout: float = 60) -> list[int]:
        """Stops every TaskManager and the JobManager (SIGTERM through the scripts, SIGKILL after
        ``timeout``) and the TF workers they left; returns the pids that had to be killed."""
        pids = self.pids()
        for script, arg in (("taskmanager.sh", "stop-all"), ("jobmanager.sh", "stop-all")):
            try:
                self._script(script, arg, timeout=timeout)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        killed = []
        deadline = time.monotonic() + timeout
        for pid in pids:
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        for f in self.pid_dir.glob("*.pid"):
            f.unlink(missing_ok=True)
        return killed

    def status(self) -> dict[str, Any]:
        """Pids, the REST overview and the jobs; what ``flinktf-ipc cluster status`` prints."""
        ov = self.overview()
        jobs: list[dict[str, Any]] = []
        if ov is not None:
            try:
                jobs = list(self.rest("/jobs/overview")["jobs"])
            except (OSError, ValueError, KeyError, urllib.error.URLError):
                pass
        return {"home": str(self.home), "rest": self.rest_url, "jobmanager": self.jobmanager_pids(),
                "taskmanagers": self.taskmanager_pids(), "overview": ov, "jobs": jobs,
                "ring_dir": self.ring_dir, "logs": str(self.log_dir)}

    # ---- jobs -------------------------------------------------------------------------------

    def flink_command(self) -> list[str]:
        return ["bash", str(self.flink / "bin" / "flink")]

    def submit_command(self, script: str | os.PathLike[str], args: Sequence[str] = (), *,
                       detached: bool = False) -> list[str]:
        """``bin/flink run -py SCRIPT`` against this cluster, with this interpreter as the job's
        client and worker Python (``-pyclientexec``/``-pyexec``)."""
        cmd = self.flink_command() + ["run", "-m", f"localhost:{self.rest_port}"]
        if detached:
            cmd.append("-d")
        cmd += ["-pyclientexec", sys.executable, "-pyexec", sys.executable,
                "-py", os.path.abspath(script), *args]
        return cmd

    def submit(self, script: str | os.PathLike[str], args: Sequence[str] = (), *, detached: bool = False,
               **popen: Any) -> subprocess.Popen[str]:
        """Starts ``flink run -py`` (in the cluster's folder: its relative paths land there);
        returns the client process."""
        popen.setdefault("cwd", self.home)
        popen.setdefault("env", self.env())
        popen.setdefault("text", True)
        return subprocess.Popen(self.submit_command(script, args, detached=detached), **popen)

    def jobs(self) -> list[dict[str, Any]]:
        try:
            return list(self.rest("/jobs/overview")["jobs"])
        except (OSError, ValueError, KeyError, urllib.error.URLError):
            return []
