"""flinktf-ipc: inspect rings, check the machine, run the demo and benchmarks."""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import heartbeat as hbm
from .errors import RingError
from .ring import RingReader, RingWriter, default_ring_dir, ring_dir_path, ring_stat


# ---- stat ----------------------------------------------------------------------------------


def _human(n: float) -> str:
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}P"


_ALIVE = {1: "alive", 0: "GONE", -1: "-"}


def _heartbeats(ring: str) -> str:
    base = ring[: -len(".ring")] if ring.endswith(".ring") else ring
    parts = []
    for path in sorted(glob.glob(glob.escape(base) + ".*.hb")):
        role = path[len(base) + 1: -len(".hb")]
        verdict, hb = hbm.check(path)
        text = f"{role} {verdict.value}"
        if hb is not None:
            text += f" (beat {hb.age():.1f} s ago" + (f", {hb.message}" if hb.message else "") + ")"
        parts.append(text)
    return ", ".join(parts) or "no heartbeats"


def _context_line(path: str) -> str:
    """A worker context file (docs/FORMAT.md) in one line: whose it is, entry, attempt."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            ctx = json.load(f)
        return (f"{os.path.basename(path)}: context of {ctx.get('role', 'worker')} {ctx.get('index', '?')} "
                f"(attempt {ctx.get('attempt', 0)}, entry {ctx.get('entry', '?')})")
    except (OSError, ValueError, AttributeError) as e:
        return f"{os.path.basename(path)}: unreadable worker context file ({e})"


def _is_ring_companion(path: str) -> bool:
    """Heartbeat, context and temporary files that live beside rings (docs/FORMAT.md)."""
    name = os.path.basename(path)
    return name.endswith((".hb", ".json")) or ".tmp-" in name or name.endswith(".tmp")


def stat_rings(directory: str, previous: dict[str, tuple[float, object]] | None = None) -> list[str]:
    """One block of lines per ring under ``directory``; rates against ``previous`` samples.

    Units: "records" are ring records (for an arrow stream, one Arrow record batch each: rows
    are counted by the reader, not here); B/s are bytes per second (K/M/G: powers of 1000)."""
    lines = []
    entries = sorted(p for p in glob.glob(os.path.join(glob.escape(directory), "*")) if os.path.isfile(p))
    contexts = [p for p in entries if p.endswith(".json")]
    for path in (p for p in entries if not _is_ring_companion(p)):
        try:
            st = ring_stat(path)
        except (RingError, OSError) as e:
            lines.append(f"{os.path.basename(path)}: not a readable ring ({e})")
            continue
        now = time.monotonic()
        rate = ""
        if previous is not None:
            if path in previous:
                t0, st0 = previous[path]
                dt = max(now - t0, 1e-9)
                rate = (f"  {_human((st.records_in - st0.records_in) / dt)} records/s"  # type: ignore[attr-defined]
                        f"  {_human((st.bytes_in - st0.bytes_in) / dt)}B/s")  # type: ignore[attr-defined]
            previous[path] = (now, st)
        lines.append(
            f"{os.path.basename(path)}  v{st.version[0]}.{st.version[1]}  {_human(st.capacity)}B  "
            f"fill {st.fill:6.1%}{rate}\n"
            f"  writer pid {st.writer_pid} {_ALIVE[st.writer_alive]}{' closed' if st.writer_closed else ''}"
            f"  reader pid {st.reader_pid or '-'} {_ALIVE[st.reader_alive]}"
            f"{' closed' if st.reader_closed else ''}  heartbeats: {_heartbeats(path)}\n"
            f"  in {_human(st.records_in)} records {_human(st.bytes_in)}B  out {_human(st.records_out)} records "
            f"{_human(st.bytes_out)}B  writer blocked (ring full) {st.full_wait_ns / 1e9:.2f} s ({st.full_waits}x)"
            f"  reader waited (ring empty) {st.empty_wait_ns / 1e9:.2f} s ({st.empty_waits}x)")
    lines += [_context_line(p) for p in contexts]
    return lines or [f"no rings in {directory}"]


def stat_by_job(directory: str, previous: dict[str, tuple[float, object]] | None = None) -> list[str]:
    """:func:`stat_rings` of ``directory`` (rings of sinks without a per-job directory), then one
    titled block per job directory (``job-<job id>``: every sink with workers)."""
    from .cleanup import job_dirs

    jobs = job_dirs(directory)
    lines = []
    own = stat_rings(directory, previous)
    if not (jobs and own == [f"no rings in {directory}"]):
        lines += own
    for d in jobs:
        job = os.path.basename(d)[len("job-"):]
        body = stat_rings(d, previous)
        lines.append(f"job {job}  ({d})")
        lines += ["  " + ln.replace("\n", "\n  ") for ln in body]
    return lines


def cmd_stat(args: argparse.Namespace) -> int:
    if not args.interval > 0 or args.interval > 3600:
        print(f"flinktf-ipc stat: --interval must be more than 0 and at most 3600 seconds, got {args.interval}",
              file=sys.stderr)
        return 2
    directory = args.dir or ring_dir_path()  # a read-only look: never creates the directory
    if not os.path.isdir(directory):
        print(f"flinktf-ipc stat: {directory}: no such directory (no ring was made there yet)", file=sys.stderr)
        return 1
    previous: dict[str, tuple[float, object]] = {}
    while True:
        out = "\n".join(stat_by_job(directory, previous))
        if not args.watch:
            print(out)
            return 0
        print("\033[2J\033[H" + time.strftime("%H:%M:%S ") + directory + "\n" + out, flush=True)
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0


# ---- clean ---------------------------------------------------------------------------------


def cmd_clean(args: argparse.Namespace) -> int:
    """Removes what no live process owns: rings, heartbeats and context files whose writer and
    reader are gone (a killed TaskManager, a crashed job), and empty per-job directories."""
    from .cleanup import clean

    directory = args.dir or ring_dir_path()  # a read-only look: never creates the directory
    if not os.path.isdir(directory):
        print(f"flinktf-ipc clean: {directory}: no such directory (no ring was made there yet)", file=sys.stderr)
        return 1
    stale, dirs = clean(directory, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for g in stale:
        names = " ".join(os.path.relpath(f, directory) for f in g.files)
        pids = ", ".join(str(p) for p in sorted(set(g.dead_pids))) or "none"
        print(f"{verb} {names}  (processes gone: {pids})")
    for d in dirs:
        print(f"{verb} empty job directory {os.path.relpath(d, directory)}")
    n = sum(len(g.files) for g in stale)
    print(f"{directory}: {verb} {n} file(s) and {len(dirs)} job directory(ies); files of live processes are kept")
    return 0


# ---- cluster ---------------------------------------------------------------------------------


def cmd_cluster(args: argparse.Namespace) -> int:
    """``flinktf-ipc cluster start|stop|status``: a localhost standalone Flink cluster (local_cluster.py)."""
    from .local_cluster import LocalCluster

    if args.action == "start":
        problems = _cluster_problems(args)
        for p in problems:
            print(f"flinktf-ipc cluster start: {p}", file=sys.stderr)
        if problems:
            return 2
        c = LocalCluster(args.home, rest_port=args.rest_port, rpc_port=args.rpc_port, slots=args.slots,
                         ring_dir=args.ring_dir)
        print(f"starting 1 JobManager + {args.taskmanagers} TaskManager(s) ({args.slots} slots each) "
              f"from {c.flink}; conf, logs and pids in {c.home}", flush=True)
        t0 = time.monotonic()
        try:
            c.start(taskmanagers=args.taskmanagers)
        except (RuntimeError, TimeoutError, OSError) as e:  # already running, a port taken, no Flink
            print(f"flinktf-ipc cluster start: {e}", file=sys.stderr)
            return 1
        print(f"cluster up in {time.monotonic() - t0:.0f} s: web UI and REST at {c.rest_url}\n"
              f"submit a job: {' '.join(c.flink_command()[1:])} run -m localhost:{c.rest_port} "
              f"-pyexec {sys.executable} -py examples/ctr.py  (with FLINK_CONF_DIR={c.conf_dir})")
        return 0
    c = LocalCluster.load(args.home)
    if args.action == "stop":
        if not c.pids():
            print(f"no cluster runs from {c.home}")
            return 0
        killed = c.stop()
        print(f"cluster in {c.home} stopped" + (f" (killed {killed} after the grace)" if killed else ""))
        return 0
    st = c.status()
    ov = st["overview"]
    print(f"home {st['home']}  (logs {st['logs']})\n"
          f"JobManager pids {st['jobmanager'] or '-'}  TaskManager pids {st['taskmanagers'] or '-'}")
    if ov is None:
        print(f"REST {st['rest']}: not answering")
        return 1 if st["jobmanager"] else 3
    print(f"REST {st['rest']}: {ov['taskmanagers']} TaskManager(s), {ov['slots-available']}/{ov['slots-total']} "
          f"slots free, jobs running {ov['jobs-running']}, finished {ov['jobs-finished']}, "
          f"failed {ov['jobs-failed']}, cancelled {ov['jobs-cancelled']}")
    for j in st["jobs"]:
        print(f"  {j['jid']}  {j['state']:10} {j['name']}")
    return 0


def _cluster_problems(args: argparse.Namespace) -> list[str]:
    """Every bad option of ``cluster start``, one line each, before anything starts."""
    problems = []
    if not 0 <= args.taskmanagers <= 16:
        problems.append(f"--taskmanagers must be between 0 and 16, got {args.taskmanagers}")
    if not 1 <= args.slots <= 64:
        problems.append(f"--slots must be between 1 and 64, got {args.slots}")
    for opt, port in (("--rest-port", args.rest_port), ("--rpc-port", args.rpc_port)):
        if not 1 <= port <= 65535:
            problems.append(f"{opt} must be a port number from 1 to 65535, got {port}")
    if args.rest_port == args.rpc_port:
        problems.append(f"--rest-port and --rpc-port must differ, both are {args.rest_port}")
    return problems


CLUSTER_EXAMPLES = """examples:
  flinktf-ipc cluster start                 1 JobManager + 2 TaskManagers (about 30 s)
  flinktf-ipc demo --cluster                submit the main job to it (from a checkout)
  flinktf-ipc cluster status                TaskManagers, free slots, jobs
  flinktf-ipc cluster stop"""


def _add_cluster_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from .local_cluster import default_home

    p = sub.add_parser("cluster", help="a localhost standalone Flink cluster from the apache-flink package: "
                       "start, stop, status",
                       description="A standalone Flink cluster on this machine (1 JobManager, N TaskManagers), "
                                   "started with the apache-flink package's own scripts, to try jobs the way a "
                                   "real cluster runs them (docs/DEPLOY.md).",
                       epilog=CLUSTER_EXAMPLES, formatter_class=_Formatter)
    p.add_argument("action", choices=["start", "stop", "status"],
                   help="start it (returns once every TaskManager registered), stop it, or show its state")
    p.add_argument("--taskmanagers", type=int, default=2, help="TaskManagers to start (default 2)")
    p.add_argument("--slots", type=int, default=2, help="task slots per TaskManager (default 2)")
    p.add_argument("--rest-port", type=int, default=8081, help="JobManager REST/web port (default 8081)")
    p.add_argument("--rpc-port", type=int, default=6123, help="JobManager RPC port (default 6123)")
    p.add_argument("--ring-dir", default=None, help="FLINKTF_IPC_DIR of the cluster's processes")
    p.add_argument("--home", default=None, help=f"conf, logs and pids (default {default_home()})")


# ---- doctor --------------------------------------------------------------------------------


def _check_java() -> tuple[bool, str]:
    java = shutil.which("java")
    if not java:
        return False, "no `java` on PATH: install Java 17 (apt-get install openjdk-17-jdk-headless)"
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    first = out.splitlines()[0] if out else "?"
    try:
        major = int(first.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        return False, f"cannot read the Java version from {first!r}"
    if major < 11:
        return False, f"{first}: Flink 2.3 needs Java 11 or newer (17 recommended)"
    return True, first


def _check_import(module: str, want: str, extra: str) -> tuple[bool, str]:
    try:
        mod = __import__(module)
    except Exception as e:  # noqa: BLE001 - any import failure is reported as such
        return False, f"cannot import {module} ({type(e).__name__}: {e}): pip install 'flinktf-ipc[{extra}]'"
    version = getattr(mod, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version(want.split("==")[0])
    ok = version == want.split("==")[1]
    return ok, f"{module} {version}" + ("" if ok else f": this release is tested with {want}")


def _check_jar() -> tuple[bool, str]:
    jar = Path(__file__).resolve().parent / "jars" / "flinktf-ipc.jar"
    if jar.is_file():
        return True, str(jar)
    return False, f"{jar} missing: reinstall with a JDK present (make install)"


def _check_shm() -> tuple[bool, str]:
    try:
        directory = default_ring_dir()
    except (RingError, OSError) as e:
        return False, f"{e}: fix the directory's owner and mode (chmod 700) or set FLINKTF_IPC_DIR"
    free = shutil.disk_usage(directory).free
    if free < 256 << 20:
        return False, f"{directory}: only {_human(free)}B free; rings need their capacity in /dev/shm"
    path = os.path.join(directory, f"doctor-{os.getpid()}")
    try:
        with RingWriter.create(path, capacity=1 << 16) as w, RingReader.open(path, timeout=1) as r:
            w.write(b"ping")
            if bytes(r.read(timeout=1) or b"") != b"ping":
                return False, "a ring round trip returned the wrong bytes"
    except (RingError, OSError) as e:
        return False, f"cannot create and map a ring in {directory}: {e}"
    finally:
        if os.path.exists(path):
            os.unlink(path)
    return True, f"{directory}: writable, {_human(free)}B free, ring round trip ok"


def cmd_doctor(args: argparse.Namespace) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter is not a finding
    checks = [
        ("java", _check_java),
        ("flink", lambda: _check_import("pyflink", "apache-flink==2.3.0", "flink")),
        ("tensorflow", lambda: _check_import("tensorflow", "tensorflow-cpu==2.20.0", "tf")),
        ("connector jar", _check_jar),
        ("/dev/shm", _check_shm),
    ]
    failed = 0
    for name, fn in checks:
        ok, detail = fn()
        failed += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:14} {detail}")
    print("all checks passed" if not failed else f"{failed} check(s) failed")
    return 1 if failed else 0


# ---- demo ----------------------------------------------------------------------------------


def _checkout_script(path: str, command: str) -> Path | None:
    script = Path(path)
    if not script.is_file():
        print(f"flinktf-ipc {command}: {script} not found: run it from a flinktf-ipc source checkout",
              file=sys.stderr)
        return None
    return script


def cmd_bench(argv: list[str]) -> int:
    """Runs bench/run.py of a source checkout: every path beside its baselines, one table."""
    script = _checkout_script("bench/run.py", "bench")
    # -P: the checkout's flinktf_ipc source must not shadow the installed package
    return 2 if script is None else subprocess.call([sys.executable, "-P", str(script), *argv])


def cmd_demo_cluster(script: Path, rest: list[str], home: str | None) -> int:
    """``demo --cluster``: submits ``script`` with ``bin/flink run -py`` to the local cluster
    (``flinktf-ipc cluster start``)."""
    from .local_cluster import LocalCluster

    c = LocalCluster.load(home)
    if c.overview() is None:
        print(f"flinktf-ipc demo --cluster: no cluster answers at {c.rest_url} (home {c.home}): "
              "run `flinktf-ipc cluster start` first", file=sys.stderr)
        return 2
    cmd = c.submit_command(script, rest)
    print("$ " + " ".join(cmd), flush=True)
    return c.submit(script, rest).wait()


DEMO_SCRIPTS = {"ctr": "examples/ctr.py", "digits": "examples/digits.py", "torch": "examples/torch_train.py"}


def cmd_demo(argv: list[str]) -> int:
    """``demo --example ctr|digits|torch`` runs examples/<name>.py of a source checkout (the current
    directory); ``demo --example ring`` the two-process ring demonstration, anywhere; ``--cluster``
    submits the example to the local standalone cluster with ``flink run -py``."""
    ap = argparse.ArgumentParser(prog="flinktf-ipc demo", add_help=False)
    ap.add_argument("--example", default="ctr", choices=list(DEMO_SCRIPTS) + ["ring"])
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument("--cluster-home", default=None)
    args, rest = ap.parse_known_args(argv)
    if args.cluster and args.example != "ring":
        script = _checkout_script(DEMO_SCRIPTS[args.example], "demo")
        return 2 if script is None else cmd_demo_cluster(script.resolve(), rest, args.cluster_home)
    prog = "flinktf-ipc demo" + ("" if args.example == "ctr" else f" --example {args.example}")
    if args.example == "ring":
        from .demo import main as ring_demo

        return ring_demo(rest, prog=prog)
    script = _checkout_script(DEMO_SCRIPTS[args.example], "demo")
    if script is None:
        return 2
    env = dict(os.environ, FLINKTF_DEMO_PROG=prog)
    proc = subprocess.Popen([sys.executable, "-P", str(script), *rest], env=env)
    return _wait_forwarding_signals(proc)


def _wait_forwarding_signals(proc: subprocess.Popen[bytes]) -> int:
    """Waits for the example; SIGINT and SIGTERM sent to this wrapper go to it, which cancels its
    job and cleans up (a Ctrl-C in a terminal reaches both: the example ignores the second)."""
    import signal

    def forward(signum: int, frame: object) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return proc.wait()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


# ---- main ----------------------------------------------------------------------------------

class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Wraps descriptions to the terminal (as argparse's default does) but keeps each epilog
    line as written (the examples are laid out in columns)."""

    def add_text(self, text: str | None) -> None:
        if text and text is not argparse.SUPPRESS and "\n" not in text:
            import textwrap

            text = textwrap.fill(text, width=self._width - self._current_indent)
        super().add_text(text)


CLEAN_EXAMPLES = """examples:
  flinktf-ipc clean --dry-run            list what would go
  flinktf-ipc clean                      remove it (rings of live jobs stay)"""

MAIN_EXAMPLES = """examples:
  flinktf-ipc doctor                     is this machine ready?
  flinktf-ipc demo                       the main job: Flink features -> rings -> Keras workers
  flinktf-ipc demo --example digits      a small CNN on real images
  flinktf-ipc clean                      remove rings a killed job left behind
  flinktf-ipc stat --watch               watch the rings of running jobs"""

STAT_EXAMPLES = """examples:
  flinktf-ipc stat                       the rings in the default folder
  flinktf-ipc stat /dev/shm/flinktf-0    another folder
  flinktf-ipc stat --watch --interval 2  refresh every 2 s with rates

units: records are ring records (for the arrow codec, one Arrow record batch each); B = bytes,
K/M/G = 1000^1/2/3."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flinktf-ipc", description=__doc__, epilog=MAIN_EXAMPLES,
                                     formatter_class=_Formatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("stat", help="show every ring in a folder: its writer and reader, heartbeats, fill, rates",
                       description="Shows every ring in DIR: who writes and reads it (alive or gone), their "
                                   "heartbeats, how full it is, records and bytes in and out, time spent waiting. "
                                   "Worker context files (*.json) are listed by whose they are.",
                       epilog=STAT_EXAMPLES, formatter_class=_Formatter)
    p.add_argument("dir", nargs="?", help="ring folder (default: $FLINKTF_IPC_DIR, else /dev/shm/flinktf-<uid>)")
    p.add_argument("--watch", action="store_true", help="refresh until Ctrl-C, with rates per second")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes with --watch (default 1)")
    p = sub.add_parser("clean", help="remove rings, heartbeats and context files that no live process owns",
                       description="Removes what no live process owns in DIR and its per-job folders (job-<id>): "
                                   "rings whose writer and reader are gone, their heartbeat and context files, "
                                   "and empty job folders. Files of running jobs are kept.",
                       epilog=CLEAN_EXAMPLES, formatter_class=_Formatter)
    p.add_argument("dir", nargs="?", help="ring folder (default: $FLINKTF_IPC_DIR, else /dev/shm/flinktf-<uid>)")
    p.add_argument("--dry-run", action="store_true", help="only list what would be removed")
    _add_cluster_parser(sub)
    sub.add_parser("doctor", help="check Java, Flink, TensorFlow, the connector jar and /dev/shm",
                   description="Checks what the jobs need on this machine: Java, Flink, TensorFlow, the "
                               "connector jar, and a ring round trip in the ring folder; names the fix for "
                               "each failure. Exit status 0 when every check passed.")
    sub.add_parser("demo", help="run the main job (--example ctr, the default), or --example digits, torch "
                   "or ring; other options go to the example (flinktf-ipc demo --help lists them)", add_help=False)
    sub.add_parser("bench", help="the benchmark table (bench/run.py; its options pass through)", add_help=False)
    if not (sys.argv[1:] if argv is None else argv):  # a newcomer typing the bare command: the help
        parser.print_help()
        return 2
    args, rest = parser.parse_known_args(argv)
    if args.command == "demo":
        return cmd_demo(rest)
    if args.command == "bench":
        return cmd_bench(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return {"stat": cmd_stat, "doctor": cmd_doctor, "clean": cmd_clean, "cluster": cmd_cluster}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
