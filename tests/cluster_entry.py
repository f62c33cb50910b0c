"""Role entries for tests/test_tf_cluster.py, run by ``flinktf_ipc.worker`` in every role process.

Each writes what it saw into ``<out>/`` (property ``out``); file names carry role, index and attempt.
"""

from __future__ import annotations

import json
import os
import time

from flinktf_ipc.tf_cluster import TFContext


def _out(ctx: TFContext, what: str) -> str:
    return os.path.join(ctx.properties["out"], f"{what}-{ctx.get_job_name()}-{ctx.get_task_index()}-{ctx.attempt}.json")


def _write(path: str, data: object) -> None:
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.replace(path + ".tmp", path)


def report(context) -> None:  # type: ignore[no-untyped-def]
    """What TFContext says, then a real TF server on the task's own port (it must be free now)."""
    import tensorflow as tf

    ctx = TFContext(context)
    me = ctx.get_cluster().task_address(ctx.get_job_name(), ctx.get_task_index())
    port = int(me.rsplit(":", 1)[1])
    server = tf.distribute.Server(ctx.get_cluster(), job_name=ctx.get_job_name(), task_index=ctx.get_task_index(),
                                  start=True)
    _write(_out(ctx, "report"), {
        "job": ctx.get_job_name(), "index": ctx.get_task_index(), "attempt": ctx.attempt, "epoch": ctx.epoch,
        "cluster": ctx.get_cluster().as_dict(), "tf_config": ctx.get_tf_config(),
        "env_tf_config": json.loads(os.environ["TF_CONFIG"]), "is_chief": ctx.is_chief,
        "checkpoint_dir": ctx.checkpoint_dir, "chief_checkpoint_dir": ctx.chief_checkpoint_dir,
        "properties": ctx.properties, "port": port, "target": server.target, "pid": os.getpid(),
        "legacy_keras": os.environ.get("TF_USE_LEGACY_KERAS")})


def hold_port(context) -> None:  # type: ignore[no-untyped-def]
    """Attempt 0 of worker 0: another process takes this task's port before TF binds it (the race
    the protocol cannot close); TF then fails to start its server. Otherwise ``report``."""
    import subprocess
    import sys

    ctx = TFContext(context)
    if ctx.attempt == 0 and ctx.get_task_index() == 0:
        me = ctx.get_cluster().task_address(ctx.get_job_name(), ctx.get_task_index())
        port = int(me.rsplit(":", 1)[1])
        holder = subprocess.Popen([sys.executable, "-c", (
            "import socket, sys, time\n"
            f"s = socket.socket(socket.AF_INET6); s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)\n"
            f"s.bind(('::', {port})); s.listen(); print('bound', flush=True); time.sleep(120)")],
            stdout=subprocess.PIPE, text=True)
        _write(_out(ctx, "holder"), {"pid": holder.pid, "port": port})
        assert holder.stdout is not None and holder.stdout.readline().strip() == "bound"
        try:
            import tensorflow as tf
            tf.distribute.Server(ctx.get_cluster(), job_name=ctx.get_job_name(), task_index=ctx.get_task_index())
        finally:
            holder.kill()
    report(context)


def sleepy(context) -> None:  # type: ignore[no-untyped-def]
    TFContext(context)
    time.sleep(float(context.properties.get("sleep", "1")))



def _example(name: str):  # type: ignore[no-untyped-def]
    """An example module of examples/, loaded by path (examples/ is not a package)."""
    import importlib.util
    import sys

    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", f"{name}.py")
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def seed(context) -> None:  # type: ignore[no-untyped-def]
    """The seed example's run_main (examples/seed_ps.py), after writing what this role was told."""
    ctx = TFContext(context)
    _write(_out(ctx, "spec"), {"job": ctx.get_job_name(), "index": ctx.get_task_index(), "epoch": ctx.epoch,
                               "tf_config": ctx.get_tf_config(), "env_tf_config": json.loads(os.environ["TF_CONFIG"]),
                               "is_chief": ctx.is_chief, "pid": os.getpid()})
    _example("seed_ps").run_main(context)
