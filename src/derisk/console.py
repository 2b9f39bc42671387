"""The ``derisk`` console script: a thin shim so that Ctrl-C while the CLI loads is still one line."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from derisk.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("derisk: error: interrupted; nothing was changed\n")
        return 130
    return run()
