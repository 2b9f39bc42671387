"""Writing results: JSON documents and reports to files or standard output, atomically."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from derisk.errors import InputError

if TYPE_CHECKING:  # rich is imported when something is shown, so that --help and --version stay quick
    from rich.console import Console

#: Terminal output goes to stderr when a JSON document goes to stdout, so the two never mix.
#: Tables need room: when output is not a terminal (a file, a pipe, CI) use 140 columns unless
#: $COLUMNS says otherwise, instead of rich's 80.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
_consoles: dict[bool, Console] = {}


def _console(stderr: bool) -> Console:
    """The process's console for standard output or standard error, made on first use."""
    found = _consoles.get(stderr)
    if found is None:
        from rich.console import Console

        found = _consoles[stderr] = (
            Console(stderr=True, highlight=False, width=_WIDTH)
            if stderr
            else Console(highlight=False, soft_wrap=False, width=_WIDTH)
        )
    return found


def __getattr__(name: str) -> Console:
    """``console`` and ``err_console``, the two consoles, made when first asked for."""
    if name == "console":
        return _console(False)
    if name == "err_console":
        return _console(True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=True, default=_default) + "\n"


def write_atomic(dest: Path, text: str | bytes) -> None:
    """Write a whole file or nothing: a temporary file beside it, then a rename."""
    folder = dest.parent if str(dest.parent) else Path()
    if not folder.is_dir():
        raise InputError("output folder does not exist", source=str(dest))
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8") if isinstance(text, str) else text)
        Path(tmp).replace(dest)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise InputError(f"cannot write ({exc.strerror})", source=str(dest)) from None


def emit_json(doc: Any, dest: str | None) -> None:
    """``dest`` is a path, ``-`` for standard output, or None for no JSON."""
    if dest is None:
        return
    text = dumps(doc)
    if dest == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(Path(dest), text)


def status_console(json_dest: str | None) -> Console:
    """Where human-readable output goes: stderr when stdout carries JSON."""
    return _console(json_dest == "-")


def write_pages(html: str, html_dest: Path | None, pdf_dest: Path | None) -> list[Path]:
    """Write an HTML report and/or its PDF; returns the files written."""
    written = []
    if html_dest is not None:
        write_atomic(html_dest, html)
        written.append(html_dest)
    if pdf_dest is not None:
        from derisk.web.pdf import html_to_pdf

        write_atomic(pdf_dest, html_to_pdf(html))
        written.append(pdf_dest)
    return written
