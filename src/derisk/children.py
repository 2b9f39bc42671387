"""No process left behind: every process derisk forks ends when the process that forked it ends.

NFStream meters a capture in processes it forks with :mod:`multiprocessing`. Killed with SIGKILL, an
out-of-memory kill or a crash, a parent cannot clean up after itself, and its meters would go on,
re-parented to init, holding their memory. :func:`install` registers a fork hook
(:func:`os.register_at_fork`) that runs in every child right after the fork, before anything else:

* it asks the kernel to send the child SIGKILL when its parent ends, however it ends
  (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, Linux); the kernel ties the signal to the thread that
  forked, and derisk forks meters from the thread that iterates them, which outlives them;
* it then checks that the parent is still the process that forked it; if the parent died between
  the fork and the prctl call, the child exits at once;
* it ignores SIGINT: a terminal's Ctrl-C reaches the whole process group, and the parent decides
  (it rolls the run back and stops its meters; a meter would only print a KeyboardInterrupt traceback).

SIGTERM and Ctrl-C end derisk itself (the latter after rolling the run back), and its children then
receive their SIGKILL from the kernel. The children of a child (none today) are covered the same way.
On systems without ``prctl`` :func:`install` does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1
_lock = threading.Lock()
_installed = False
_forking: dict[int, int] = {}  # thread id -> pid of the process forking in that thread


def _before_fork() -> None:
    _forking[threading.get_ident()] = os.getpid()


def _after_fork_in_parent() -> None:
    _forking.pop(threading.get_ident(), None)


def _after_fork_in_child() -> None:
    parent = _forking.get(threading.get_ident())
    _forking.clear()
    # Ctrl-C in a terminal reaches the whole process group: the parent decides what it means (roll
    # back, stop the meters); a child that raised KeyboardInterrupt would print a traceback.
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not permitted here: nothing more the child can do
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # the parent is already gone: so is the reason for this child


def install() -> None:
    """Make every process forked from now on end with the process that forked it (idempotent)."""
    global _installed
    if not sys.platform.startswith("linux"):
        return
    with _lock:
        if _installed:
            return
        os.register_at_fork(
            before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
        )
        _installed = True


def death_signal() -> int:
    """The parent-death signal of the calling process (0 for none); for tests and diagnostics."""
    if not sys.platform.startswith("linux"):
        return 0
    value = ctypes.c_int(0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
    return value.value
