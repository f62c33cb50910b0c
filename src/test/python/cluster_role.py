"""A stand-in TF task for the JVM cluster tests (ClusterMiniTest): the protocol of
CLUSTER-PROTOCOL.md without TensorFlow.

Started by the role operator through a wrapper (python -P -m flinktf_ipc.worker is ignored):
reads FLINKTF_WORKER_CONTEXT, writes its heartbeat, reserves a port and writes the address
file, waits for the spec file, appends one JSON line to properties["log"], then
- a fed task reads its ring (arrow codec, pyarrow) to the end and logs the ids it got (each batch
  also to properties["log"] + ".ids" before it is released); one named by properties["die_after"]
  ("role:index:attempt:N") SIGKILLs itself once it has read N ids;
- a task named by properties["die"] ("role:index:attempt") kills itself with SIGKILL, one named
  by properties["sigstop"] stops itself with SIGSTOP;
- a task named by properties["crash_at_start"] ("role:index") exits 1 before its address file,
  in every attempt;
- ps tasks (the roles of properties["blocking_roles"], default "ps") wait until the AM stops
  them; every other task exits 0.
With an output row type (the context key "output_ring"), a fed task writes one row
(task "role:index", id) per id it read into its output ring (the arrow codec stream, as
flinktf_ipc's emit does), in batches as it reads them, and ends the stream before it exits;
an unfed task that exits writes one row (task, -1).
"""

import json
import os
import signal
import socket
import sys
import threading
import time

ctx = json.load(open(os.environ["FLINKTF_WORKER_CONTEXT"]))
cluster = ctx["cluster"]
props = ctx["properties"]
me = f"{ctx['role']}:{ctx['index']}:{ctx['attempt']}"


def _start_time() -> int:
    with open(f"/proc/{os.getpid()}/stat") as f:
        stat = f.read()
    return int(stat[stat.rindex(")") + 2:].split()[19])


START = _start_time()


def beat(seq: int, state: str) -> None:
    path = ctx["heartbeat"]
    tmp = f"{path}.tmp-{os.getpid()}-0"
    with open(tmp, "w") as f:
        f.write(f"version=1\nrole={ctx['role']}\npid={os.getpid()}\nstart_time={START}\n"
                f"wall_ns={time.time_ns()}\nmono_ns={time.monotonic_ns()}\nseq={seq}\nstate={state}\nmessage=\n")
    os.replace(tmp, path)


def beater() -> None:
    seq = 0
    while True:
        seq += 1
        beat(seq, "running")
        time.sleep(ctx["heartbeat_interval"])


threading.Thread(target=beater, daemon=True).start()

time.sleep(float(props.get("startup_delay", "0")))  # as an import of TensorFlow
if props.get("crash_at_start") == f"{ctx['role']}:{ctx['index']}":
    with open(props["log"] + ".crashes", "a") as f:
        f.write(me + "\n")
    print(f"ImportError: no module named 'missing' ({me})", file=sys.stderr)
    sys.exit(1)  # as an entry that cannot be imported: every attempt, before the address file
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
tmp = cluster["address_file"] + ".tmp"
fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
with os.fdopen(fd, "w") as f:
    json.dump({"host": "127.0.0.1", "port": port, "pid": os.getpid()}, f)
os.replace(tmp, cluster["address_file"])

while not os.path.exists(cluster["spec_file"]):
    time.sleep(0.02)
with open(cluster["spec_file"]) as f:
    spec = json.load(f)
sock.close()

out = None
if ctx.get("output_ring"):
    import base64

    import pyarrow as pa

    from flinktf_ipc.arrow import ArrowRingWriter

    out_schema = pa.ipc.read_schema(pa.py_buffer(base64.b64decode(ctx["output_schema"])))
    out = ArrowRingWriter.create(ctx["output_ring"], out_schema, capacity=int(ctx["output_capacity"]))
    task_name = f"{ctx['role']}:{ctx['index']}"


def emit(got: list) -> None:
    if out is not None and got:
        out.write_batch(pa.RecordBatch.from_pydict({"task": [task_name] * len(got), "id": got}, schema=out_schema))


ids = None
if ctx["rings"]:
    from flinktf_ipc.arrow import ArrowRingReader

    ids = []
    reader = ArrowRingReader(ctx["rings"][0], timeout=60)
    die_after = props.get("die_after", "")  # "role:index:attempt:N": SIGKILL once N ids were read
    while (batch := reader.read_batch(60)) is not None:
        got = batch.column("id").to_pylist()
        ids.extend(got)
        emit(got)
        with open(props["log"] + ".ids", "a") as f:  # consumed for good once released: say so first
            f.write(json.dumps({"task": me, "ids": got}) + "\n")
        # Let go before waiting for the next: a held batch pins its ring space, and a checkpoint
        # waits until the reader released everything before the barrier.
        del batch
        if die_after.rpartition(":")[0] == me and len(ids) >= int(die_after.rpartition(":")[2]):
            os.kill(os.getpid(), signal.SIGKILL)

line = {"role": ctx["role"], "index": ctx["index"], "attempt": ctx["attempt"], "port": port,
        "pid": os.getpid(), "spec": spec, "cluster": cluster, "rings": ctx["rings"], "ids": ids}
with open(props["log"], "a") as f:
    f.write(json.dumps(line) + "\n")

if props.get("sigstop") == me:
    os.kill(os.getpid(), signal.SIGSTOP)  # hung: only its heartbeat's age tells
if props.get("die") == me:
    os.kill(os.getpid(), signal.SIGKILL)
if ctx["role"] in props.get("blocking_roles", "ps").split(","):
    while True:  # as server.join(): only the AM's stop ends it
        time.sleep(1)
if out is not None:
    if ids is None:
        emit([-1])
    out.close()  # end of stream: the operator drains it before the task ends
sys.exit(0)
