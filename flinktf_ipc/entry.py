"""Worker entries that resolve everywhere: checked when the job is built and again in the worker.

An entry is ``package.module:function`` or ``/abs/path/file.py:function`` (function defaults to
``main``). The worker runs ``PYTHON -P -m flinktf_ipc.worker`` on a TaskManager host, in the
TaskManager's working directory: ``-P`` (and that directory) mean the client's current directory
and script directory are *not* on its ``sys.path``. So:

- a module entry must be importable by the worker's interpreter: installed into its environment
  (``pip install -e .`` of the project), or found in a directory that the client passes along.
  :func:`resolve` does the latter: when the module is found in a directory outside the
  interpreter's site-packages (the project checkout), that directory goes to the worker as the
  property ``flinktf.python_path`` and is appended to the worker's ``sys.path`` (after
  site-packages: an installed package still wins). The directory must exist on every TaskManager
  host (it does on one host; on several, install the project or share the path).
- a file entry must be an absolute path present on every TaskManager host (``flink run -pyfs``
  files land in a temporary directory of the client only).

A worker that cannot find its entry exits at once with :data:`EXIT_BAD_ENTRY` and one line on
stderr naming the entry, the interpreter and the fix; the JVM fails the job at once, without
trying its restarts (the same entry would fail again).
"""

from __future__ import annotations

import importlib.util
import os
import site
import sys
import sysconfig
from collections.abc import Sequence

__all__ = ["EXIT_BAD_ENTRY", "PYTHON_PATH_PROPERTY", "EntryNotFound", "resolve", "check", "split"]

EXIT_BAD_ENTRY = 4
PYTHON_PATH_PROPERTY = "flinktf.python_path"


class EntryNotFound(ImportError):
    """The worker entry's module, file or function does not exist for this interpreter."""


def split(entry: str) -> tuple[str, str]:
    """``(target, function)`` of an entry; the function defaults to ``main``."""
    target, _, fn = entry.partition(":")
    return target, fn or "main"


def _is_file_entry(target: str) -> bool:
    return target.endswith(".py")


def _installed_dirs() -> list[str]:
    """Directories every run of this interpreter has on sys.path: stdlib and site-packages."""
    dirs = {sysconfig.get_path(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    dirs.update(site.getsitepackages())
    user = site.getusersitepackages()
    if isinstance(user, str):
        dirs.add(user)
    return [os.path.realpath(d) for d in dirs if d]


def _search_root(module: str) -> str | None:
    """The sys.path directory that ``module`` (a dotted name) is found in, or None."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    origin = spec.origin if spec.origin not in (None, "built-in", "frozen") else None
    if origin is None:
        locations = list(spec.submodule_search_locations or [])
        if not locations:
            return None
        origin = os.path.join(locations[0], "__init__.py")
    path = os.path.realpath(origin)
    # Walk up one directory per dotted part (a package's __init__.py: one more).
    levels = module.count(".") + (2 if os.path.basename(path) == "__init__.py" else 1)
    root = path
    for _ in range(levels):
        root = os.path.dirname(root)
    return root


def _fix(entry: str) -> str:
    target, _ = split(entry)
    if _is_file_entry(target):
        return ("give an absolute path that exists on every TaskManager host (a shared or installed "
                "path; `flink run -pyfs` files exist only on the client), or install the module and "
                "use 'package.module:function'")
    return (f"install the project into that interpreter's environment (pip install -e <project>), "
            f"or put '{target.split('.')[0]}' beside the job's script or on PYTHONPATH (its directory is "
            f"then passed to the workers), or set the worker property {PYTHON_PATH_PROPERTY}")


def _line(entry: str, why: str, python: str | None = None) -> str:
    return (f"worker entry '{entry}' cannot be loaded by {python or sys.executable}: {why}; "
            f"fix: {_fix(entry)}")


def check(entry: str, python_path: Sequence[str] = ()) -> None:
    """Raises :class:`EntryNotFound` (one line: entry, interpreter, fix) unless ``entry``'s file or
    module exists for this interpreter with ``python_path`` appended to ``sys.path``. Finding a
    module imports its parent packages, not the module itself (the function is checked when the
    worker loads it)."""
    target, fn = split(entry)
    if not target or not fn.isidentifier():
        raise EntryNotFound(_line(entry, "an entry is 'package.module:function' or '/path/file.py:function'"))
    if _is_file_entry(target):
        if not os.path.isabs(target):
            raise EntryNotFound(_line(entry, "a file entry must be an absolute path"))
        if not os.path.isfile(target):
            raise EntryNotFound(_line(entry, f"no such file {target}"))
        return
    for d in python_path:
        if d not in sys.path:
            sys.path.append(d)
    try:
        spec = importlib.util.find_spec(target)
    except Exception as e:  # noqa: BLE001 - a parent package that is missing or fails to import
        raise EntryNotFound(_line(entry, f"{type(e).__name__}: {e}")) from None
    if spec is None:
        raise EntryNotFound(_line(entry, f"no module named '{target}'"))


def resolve(entry: str) -> tuple[str, list[str]]:
    """Client side, when the job is built: checks ``entry`` in this interpreter and returns it
    (a file made absolute) with the directories the worker needs on its ``sys.path`` (empty when
    the module is installed, or for a file). Raises ValueError with one line naming the fix."""
    target, sep, fn = entry.partition(":")
    if _is_file_entry(target):
        entry = os.path.abspath(target) + (sep + fn if sep else "")
    try:
        check(entry)
    except EntryNotFound as e:
        raise ValueError(str(e)) from None
    if _is_file_entry(target):
        return entry, []
    root = _search_root(target)
    if root is None:
        return entry, []
    installed = _installed_dirs()
    if any(root == d or root.startswith(d + os.sep) for d in installed):
        return entry, []
    return entry, [root]
