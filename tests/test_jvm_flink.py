"""Embedded Flink end to end: a real PyFlink mini-cluster job (Java source -> RingSink) feeding
Python readers through the rings. Slow (a local job takes 10-20 s to start): kept to two jobs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from flinktf_ipc import RingReader

flink = pytest.importorskip("flinktf_ipc.flink")
pytestmark = pytest.mark.flink

N = 1_000_000


@pytest.fixture(scope="module")
def env_factory(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Makes configured environments; the log dir is set before the gateway JVM starts."""
    log_dir = str(tmp_path_factory.mktemp("flink-logs"))
    jar = flink.jar_path()  # fail early and clearly if the package has no jar

    def make(parallelism: int):  # type: ignore[no-untyped-def]
        env = flink.configure(restart_attempts=0, log_dir=log_dir)
        env.set_parallelism(parallelism)
        return env

    assert jar
    return make


def sequence_stream(env, n: int):  # type: ignore[no-untyped-def]
    from pyflink.common import WatermarkStrategy
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource
    # A Java source of Longs: no Python on the per-record path; the sink's "long" encoder writes
    # each as 8 little-endian bytes.
    return env.from_source(NumberSequenceSource(0, n - 1), WatermarkStrategy.no_watermarks(), "seq")


def read_ring(path: str, out: list[np.ndarray], errors: list[BaseException]) -> None:
    try:
        with RingReader.open(path, timeout=120) as r:
            while True:
                batch = r.read_batch(8192, timeout=120)
                if not len(batch):
                    break
                out.append(batch.as_array(np.uint64)[:, 0].copy())
                del batch  # give the space back before blocking again
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


@pytest.mark.timeout(180)
def test_parallel_job_sinks_a_million_records_exactly_once_in_order_per_ring(
        env_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = env_factory(2)
    env.enable_checkpointing(500)  # checkpoints exercise flush(false): drain to the reader
    sink = (flink.RingSink.builder().base_dir(tmp_path).name("seq").capacity(1 << 20).align(8)
            .encoder("long").flush_timeout(60).build())
    sequence_stream(env, N).sink_to(sink)
    paths = flink.ring_paths(tmp_path, "seq", 2)
    assert [sink.ring_path(i) for i in range(2)] == paths

    got: list[list[np.ndarray]] = [[], []]
    errors: list[BaseException] = []
    readers = [threading.Thread(target=read_ring, args=(p, got[i], errors), daemon=True)
               for i, p in enumerate(paths)]
    for t in readers:
        t.start()
    env.execute("flinktf-ipc e2e")  # returns when the sources ended and the sinks closed the rings
    for t in readers:
        t.join(timeout=120)
        assert not t.is_alive(), "a reader did not see end of stream"
    assert not errors, errors

    seen = np.zeros(N, dtype=np.int32)
    for ring in got:
        values = np.concatenate(ring) if ring else np.empty(0, np.uint64)
        assert len(values) > 0, "each subtask wrote its ring"
        assert np.all(np.diff(values.astype(np.int64)) > 0), "in order within a ring"
        np.add.at(seen, values.astype(np.int64), 1)
    assert np.all(seen == 1), f"{int((seen == 0).sum())} missing, {int((seen > 1).sum())} duplicated"
    for p in paths:
        assert not os.path.exists(p), "both sides detached: the ring file is gone"


SLOW_READER = textwrap.dedent("""
    import sys, time
    from flinktf_ipc import RingReader
    r = RingReader.open(sys.argv[1], timeout=120)
    n = 0
    while n < 1000:
        batch = r.read_batch(64, timeout=120)
        n += len(batch)
        del batch
    print("read", flush=True)
    time.sleep(300)   # stop reading: the ring fills; the test kills us
""")


@pytest.mark.timeout(180)
def test_killed_reader_fails_the_job_with_an_ioexception_and_no_hang(
        env_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from py4j.protocol import Py4JJavaError

    env = env_factory(1)
    sink = (flink.RingSink.builder().base_dir(tmp_path).name("victim").capacity(64 * 1024).align(8)
            .encoder("long").build())
    sequence_stream(env, 10**12).sink_to(sink)  # would run for hours
    path = flink.ring_paths(tmp_path, "victim", 1)[0]

    import flinktf_ipc
    pkg_root = str(Path(flinktf_ipc.__file__).resolve().parent.parent)
    child_env = dict(os.environ, PYTHONPATH=os.pathsep.join([pkg_root, os.environ.get("PYTHONPATH", "")]))
    reader = subprocess.Popen([sys.executable, "-c", SLOW_READER, path], stdout=subprocess.PIPE,
                              text=True, env=child_env, cwd=str(tmp_path))
    failure: list[BaseException] = []

    def kill_when_reading() -> None:
        assert reader.stdout is not None
        if reader.stdout.readline().strip() == "read":
            reader.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_when_reading, daemon=True)
    killer.start()
    try:
        with pytest.raises(Py4JJavaError) as info:
            env.execute("flinktf-ipc reader killed")
        failure.append(info.value)
    finally:
        reader.kill()
        reader.wait(timeout=30)
    text = str(failure[0])
    assert "RingSink 'victim' subtask 0" in text, text[-3000:]
    assert f"reader process {reader.pid} is gone" in text, text[-3000:]
    assert "victim-0.ring" in text


@pytest.mark.timeout(120)
def test_builder_reports_bad_arguments_as_value_errors(env_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env_factory(1)  # registers the jar with the gateway's class loader
    with pytest.raises(ValueError, match="power of two"):
        flink.RingSink.builder().capacity(3000)
    with pytest.raises(ValueError, match="align must be 8 or 64"):
        flink.RingSink.builder().align(16)
    with pytest.raises(ValueError, match="ring name"):
        flink.RingSink.builder().name("../escape")
    with pytest.raises(ValueError, match="absolute"):
        flink.RingSink.builder().base_dir("relative")
    with pytest.raises(ValueError, match="unknown encoder 'json'"):
        flink.RingSink.builder().encoder("json")
    with pytest.raises(ValueError, match="write_timeout must be positive"):
        flink.RingSink.builder().write_timeout(0)
    with pytest.raises(ValueError, match="setName"):
        flink.RingSink.builder().encoder("bytes").build()
    with pytest.raises(ValueError, match="parallelism"):
        flink.ring_paths(tmp_path, "x", 0)
    sink = flink.RingSink.builder().base_dir(tmp_path).name("ok").encoder("bytes").build()
    assert sink.ring_path(1) == str(tmp_path / "ok-1.ring")
