"""Ctrl-C that must not be lost on its way through a foreign engine.

DuckDB looks for a pending Ctrl-C while it runs a statement and then interrupts the statement; when
the statement finishes before the engine looks at its own interrupted flag, it succeeds and the
Ctrl-C is gone (the engine has consumed the Python error). An analysis would then go on to commit
what the user asked it to abandon. The command line therefore installs a handler that, besides
raising :class:`KeyboardInterrupt` as Python's own does, remembers the Ctrl-C; the pipeline calls
:func:`check` between its steps and the workspace before it commits, so an analysis interrupted
at any moment before its commit is rolled back and the command exits with code 130.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_SEEN = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _SEEN.set()
    raise KeyboardInterrupt


def install() -> None:
    """Remember every Ctrl-C from now on (only from the main thread, and only in place of Python's
    default handler: a Ctrl-C that a parent set to be ignored stays ignored)."""
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _on_sigint)


def check() -> None:
    """Raise :class:`KeyboardInterrupt` if Ctrl-C was pressed, even if something swallowed it."""
    if _SEEN.is_set():
        raise KeyboardInterrupt
