"""What no live process owns in a ring directory, and removing it (``flinktf-ipc clean``).

The same rule as the JVM's sweep at every writer start (``io.flinktf.ipc.internal.StaleFiles``;
tests/test_deploy_cluster.py compares the two): files are grouped by stem (``<stem>.ring``,
``<stem>.<role>.hb``, ``<stem>.<role>.json``, and ``<file>.tmp-*`` of an interrupted heartbeat
write); a group is stale when no process it names is alive (the ring's writer and reader, each
heartbeat's writer, by pid and start time). A file whose owner cannot be read yet (a ring being
created) is left alone for :data:`GRACE` seconds, and so is a group naming no process at all (a
lone context file). Per-job directories (``job-<id>``) left empty are removed after the same grace,
or at once when the sweep emptied them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from . import heartbeat as hbm
from .errors import RingError
from .ring import ring_stat

__all__ = ["GRACE", "Group", "scan", "clean", "stem_of", "JOB_DIR_PREFIX"]

GRACE = 30.0
JOB_DIR_PREFIX = "job-"


def stem_of(name: str) -> str | None:
    """The stem a file name belongs to, or None for a file that is not ours."""
    tmp = name.find(".tmp-")
    if tmp > 0:
        name = name[:tmp]
    if name.endswith(".ring"):
        return name[: -len(".ring")]
    if name.endswith(".hb") or name.endswith(".json"):
        parts = name.rsplit(".", 2)
        return parts[0] if len(parts) == 3 and parts[0] else None
    return None


@dataclass
class Group:
    """The files of one ring stem in one directory, and what keeps them."""

    directory: str
    stem: str
    files: list[str] = field(default_factory=list)
    live_pids: list[int] = field(default_factory=list)
    dead_pids: list[int] = field(default_factory=list)
    young_unknown: bool = False

    @property
    def stale(self) -> bool:
        if self.live_pids or self.young_unknown:
            return False
        if not self.dead_pids:  # names no process: stale once every file is old
            return all(_older_than_grace(f) for f in self.files)
        return True


def _older_than_grace(path: str) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > GRACE
    except OSError:
        return False


def _owners(path: str) -> list[tuple[int, bool]] | None:
    """(pid, alive) of each process a file names; None when it cannot be read (yet)."""
    if path.endswith(".ring"):
        try:
            st = ring_stat(path)
        except (RingError, OSError, ValueError):
            return None
        out = [(st.writer_pid, st.writer_alive == 1)]
        if st.reader_pid:
            out.append((st.reader_pid, st.reader_alive == 1))
        return out
    if path.endswith(".hb"):
        try:
            hb = hbm.read_heartbeat(path)
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError):
            return None
        return [(hb.pid, hb.process_alive())]
    return []  # context and temp files name no process


def job_dirs(base: str) -> list[str]:
    """The per-job directories in ``base``."""
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    return [os.path.join(base, n) for n in names
            if n.startswith(JOB_DIR_PREFIX) and os.path.isdir(os.path.join(base, n))
            and not os.path.islink(os.path.join(base, n))]


def scan_dir(directory: str) -> list[Group]:
    """The file groups of one directory (not recursive)."""
    groups: dict[str, Group] = {}
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    for name in names:
        path = os.path.join(directory, name)
        stem = stem_of(name)
        if stem is None or not os.path.isfile(path) or os.path.islink(path):
            continue
        g = groups.setdefault(stem, Group(directory, stem))
        g.files.append(path)
        owners = _owners(path)
        if owners is None:
            g.young_unknown |= not _older_than_grace(path)
            continue
        for pid, alive in owners:
            (g.live_pids if alive else g.dead_pids).append(pid)
    return list(groups.values())


def scan(base: str) -> list[Group]:
    """Every group in ``base`` and in its per-job directories."""
    out = scan_dir(base)
    for d in job_dirs(base):
        out += scan_dir(d)
    return out


def clean(base: str, dry_run: bool = False) -> tuple[list[Group], list[str]]:
    """Removes the stale groups and the empty per-job directories older than the grace; returns
    (the stale groups, the directories removed). ``dry_run``: only says what it would remove."""
    stale = [g for g in scan(base) if g.stale]
    emptied = {g.directory for g in stale}
    if not dry_run:
        for g in stale:
            for f in g.files:
                try:
                    os.unlink(f)
                except FileNotFoundError:
                    pass
    removed_dirs = []
    for d in job_dirs(base):
        try:
            empty = not os.listdir(d)
        except OSError:
            continue
        if empty and (d in emptied or _older_than_grace(d)):
            if not dry_run:
                try:
                    os.rmdir(d)
                except OSError:
                    continue
            removed_dirs.append(d)
    return stale, removed_dirs
