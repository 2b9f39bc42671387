"""The ``derisk`` console script: a thin shim so that Ctrl-C while the CLI loads is still one line.

After an interrupt the process ends with :func:`os._exit` once the output is flushed: by then the
workspace's transaction was rolled back and closed, but a reader thread may still be inside the
database or Arrow engine, and finalising the interpreter under it aborts the process ("terminate
called after throwing an instance of ..."), turning a clean exit 130 into a crash.
"""

from __future__ import annotations

import contextlib
import os
import sys

from derisk.errors import EXIT_INTERRUPTED


def main() -> int:
    try:
        from derisk.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("derisk: error: interrupted; nothing was changed\n")
        return EXIT_INTERRUPTED
    code = run()
    if code == EXIT_INTERRUPTED:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)
    return code
