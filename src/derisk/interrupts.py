"""Ctrl-C that must not be lost on its way to the commit.

A Ctrl-C travels through several layers before it can stop an analysis: DuckDB notices it inside
a statement and raises its own error instead of :class:`KeyboardInterrupt`, Arrow calls back into
Python from DuckDB's threads, and the read-ahead thread has to be told to stop. So that no layer can
lose it, the command line installs a handler that, besides raising :class:`KeyboardInterrupt` as
Python's own does, remembers the Ctrl-C; the pipeline calls :func:`check` between its steps and the
workspace before it commits, so an analysis interrupted at any moment before its commit is rolled
back and the command exits with code 130.
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
