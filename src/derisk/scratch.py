"""derisk's private scratch folders and files under the system's temporary directory, and their clean-up.

Every temporary folder or file derisk makes there is named ``derisk-<purpose>-<pid>.<ns>-<random>``:
the process that made it and its PID namespace. The process removes what it made when the work is
done, when the interpreter exits, and on Ctrl-C before its fast exit (:func:`remove_own`, called by
the command line). A process that cannot clean up (``kill -9``, the default action of SIGTERM, the
out-of-memory killer, a power cut) leaves its scratch behind; the next derisk process that makes
scratch removes it (:func:`sweep_stale`): every entry named for a process of the same PID namespace
that no longer runs. An entry of a process that runs, of another namespace (a container sharing the
temporary directory, where a live PID may not be visible) or of another user is never touched.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

PREFIX: Final = "derisk-"
#: ``derisk-<purpose>-<pid>.<namespace>-<random>`` (the purpose: letters and digits).
_NAMED: Final = re.compile(r"derisk-[a-z0-9]+-([0-9]+)\.([0-9]+)-")

_lock = threading.Lock()
_own: dict[str, int] = {}  # path -> the process that made it (a forked child must not remove them)
_swept: set[str] = set()  # temporary directories this process has swept
_exit_hook = False


def namespace() -> int:
    """The inode of this process's PID namespace (0 where the system does not say)."""
    try:
        return Path("/proc/self/ns/pid").stat().st_ino
    except OSError:
        return 0


def _prefix(purpose: str) -> str:
    if not re.fullmatch(r"[a-z0-9]+", purpose):
        raise ValueError(f"a scratch purpose is letters and digits: {purpose!r}")
    return f"{PREFIX}{purpose}-{os.getpid()}.{namespace()}-"


def _claim(path: str) -> str:
    global _exit_hook
    with _lock:
        _own[path] = os.getpid()
        if not _exit_hook:
            atexit.register(remove_own)
            _exit_hook = True
    return path


def make_dir(purpose: str) -> str:
    """A new private folder (mode 0700) under the temporary directory, removed at exit at the latest."""
    _sweep_once()
    return _claim(tempfile.mkdtemp(prefix=_prefix(purpose)))


def make_file(purpose: str, suffix: str = "") -> tuple[int, str]:
    """A new private file (descriptor, path) under the temporary directory, removed at exit at the latest."""
    _sweep_once()
    handle, name = tempfile.mkstemp(prefix=_prefix(purpose), suffix=suffix)
    return handle, _claim(name)


def remove(path: str | Path) -> None:
    """Remove a folder or file made here (nothing if it is already gone)."""
    where = str(path)
    with _lock:
        _own.pop(where, None)
    _remove(Path(where))


@contextlib.contextmanager
def directory(purpose: str) -> Iterator[Path]:
    """:func:`make_dir` for the length of a ``with`` block."""
    path = make_dir(purpose)
    try:
        yield Path(path)
    finally:
        remove(path)


def remove_own() -> None:
    """Remove everything this process made and still holds (at exit, and before a fast exit)."""
    me = os.getpid()
    with _lock:
        held = [path for path, pid in _own.items() if pid == me]
        for path in held:
            del _own[path]
    for path in held:
        _remove(Path(path))


def sweep_stale(root: Path | None = None) -> list[Path]:
    """Remove the scratch of processes of this PID namespace that no longer run; what was removed."""
    where = Path(tempfile.gettempdir() if root is None else root)
    ours, space = os.getpid(), namespace()
    removed = []
    try:
        entries = list(os.scandir(where))
    except OSError:
        return []
    for entry in entries:
        found = _NAMED.match(entry.name)
        if found is None or int(found.group(2)) != space:
            continue
        pid = int(found.group(1))
        if pid == ours or _runs(pid):
            continue
        path = Path(entry.path)
        _remove(path)
        if not os.path.lexists(path):
            removed.append(path)
    return removed


def _runs(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (or no right to ask): it runs
        return True
    return True


def _sweep_once() -> None:
    root = tempfile.gettempdir()
    with _lock:
        if root in _swept:
            return
        _swept.add(root)
    sweep_stale(Path(root))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
