"""Where derisk's private in-memory DuckDB databases spill what does not fit their memory limit.

DuckDB spills an in-memory database into ``.tmp`` in the *current directory* by default: a run
started in a user's project folder would leave gigabytes there (and a killed run would leave them
for good). derisk's private databases spill into one private folder per process under the
system's temporary directory instead (mode 0700, removed when the process ends; a killed process
leaves it to the system's clean-up of its temporary directory). A workspace's database file spills
beside itself, as DuckDB does for a file.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading

_lock = threading.Lock()
_folder: str | None = None


def spill_directory() -> str:
    """The process's private spill folder (made on first use)."""
    global _folder
    with _lock:
        if _folder is None:
            _folder = tempfile.mkdtemp(prefix="derisk-spill-")
            atexit.register(shutil.rmtree, _folder, True)
        return _folder
