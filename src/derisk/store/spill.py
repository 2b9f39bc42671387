"""Where derisk's private in-memory DuckDB databases spill what does not fit their memory limit.

DuckDB spills an in-memory database into ``.tmp`` in the *current directory* by default: a run
started in a user's project folder would leave gigabytes there (and a killed run would leave them
for good). derisk's private databases spill into one private folder per process under the
system's temporary directory instead (mode 0700, removed when the process ends; what a killed
process leaves, the next derisk process removes: :mod:`derisk.scratch`). A workspace's database file spills
beside itself, as DuckDB does for a file.
"""

from __future__ import annotations

import threading
from pathlib import Path

from derisk import scratch

_lock = threading.Lock()
_folder: str | None = None


def spill_directory() -> str:
    """The process's private spill folder (made on first use, and again if it was removed: Ctrl-C
    removes the process's scratch before the command line's fast exit, and a program that calls
    the command line in-process goes on)."""
    global _folder
    with _lock:
        if _folder is None or not Path(_folder).is_dir():
            _folder = scratch.make_dir("spill")
        return _folder
