"""The readable lines of a Zeek log for DuckDB: a last line cut short, the lines DuckDB rejects, gzip.

A log still being written (Zeek buffers its writes) or copied while written usually ends inside its
last line. :func:`last_line_end` finds that with one read of the file's last byte (and, only when the
file does not end with a line end, a backward scan to the last one); :func:`prefix_pipe` then hands
DuckDB the bytes up to that line end through a named pipe that a thread fills from the file, so
DuckDB stays the one reader and nothing is copied to disk.

The lines DuckDB's tolerant CSV options reject are kept in a rejects table; :class:`Rejected` holds
how many of them are not ``#``-lines (headers, ``#close``) and the first of them, for a caller that
reads on past bad lines instead of refusing the log.

gzip is decompressed by DuckDB, which does not check the CRC-32 in a member's trailer, so
:func:`check_gzip` (run by the caller beside the read, on another thread) does.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import select
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from derisk import scratch

_CHUNK: Final = 1 << 20
#: Characters that make DuckDB expand a path as a glob.
GLOB_CHARACTERS: Final = "*?[{"


class GlobPath(Exception):
    """No path without glob characters could be made for DuckDB."""


@dataclass
class Rejected:
    """What a tolerant read left out: distinct lines DuckDB rejected that are not ``#``-lines, and
    the first of them (its line number in the file and DuckDB's first message line)."""

    lines: int = 0
    first_line: int | None = None
    first_message: str = ""


def last_line_end(path: Path) -> int | None:
    """The offset just after the last line end of a plain file that does not end with one (0 when it
    has none); None when the file ends with a line end or is empty.

    One read of the last byte decides; the backward scan runs only for a file cut short."""
    with path.open("rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return None
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return None
        position = size
        while position > 0:
            start = max(0, position - _CHUNK)
            fh.seek(start)
            found = fh.read(position - start).rfind(b"\n")
            if found >= 0:
                return start + found + 1
            position = start
    return 0


def tail_from(path: Path, offset: int, size: int = 64) -> bytes:
    """Up to ``size`` bytes of the file from ``offset`` (the start of a last line cut short)."""
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(size)


def count_lines(path: Path, end: int) -> int:
    """Line ends in the first ``end`` bytes of a file (to number a cut line; the slow path only)."""
    return sum(data.count(b"\n") for data in _plain(path, end))


@contextlib.contextmanager
def readable_path(path: Path, end: int | None = None, *, gunzip: bool = False) -> Iterator[Path]:
    """Where DuckDB reads ``path``: with ``gunzip``, a named pipe holding the content of a gzip file
    cut short up to its last whole line (:func:`prefix_pipe`); when ``end`` is set, a named pipe
    holding its first ``end`` bytes; else the file, or a symbolic link to it in a private temporary folder when
    its path has ``*``, ``?``, ``[`` or ``{`` in it (DuckDB would expand it as a glob)."""
    if end is not None or gunzip:
        with prefix_pipe(path, end or 0, gunzip=gunzip) as pipe:
            yield pipe
        return
    location = str(path.absolute())
    if not any(char in location for char in GLOB_CHARACTERS):
        yield path
        return
    with scratch.directory("zeek") as folder:
        link = Path(folder) / "log"
        link.symlink_to(location)
        if any(char in str(link) for char in GLOB_CHARACTERS):
            raise GlobPath("the temporary folder's path contains a glob character")
        yield link


@contextlib.contextmanager
def prefix_pipe(path: Path, end: int, *, gunzip: bool = False) -> Iterator[Path]:
    """A named pipe in a private folder that a thread fills with the first ``end`` bytes of ``path``
    (with ``gunzip``: the content of a gzip file up to the last line end before it is cut short).

    DuckDB reads it like the file itself. On leaving, a writer still waiting for DuckDB to open the
    pipe (DuckDB failed first) or to read on (DuckDB stopped) is let go."""
    with scratch.directory("zeekpipe") as folder:
        pipe = folder / "log"
        if any(char in str(pipe) for char in GLOB_CHARACTERS):
            raise GlobPath("the temporary folder's path contains a glob character")
        os.mkfifo(pipe, 0o600)
        stop = threading.Event()
        thread = threading.Thread(
            target=_feed, args=(path, pipe, None if gunzip else end, stop), name="zeekpipe", daemon=True
        )
        thread.start()
        try:
            yield pipe
        finally:
            stop.set()
            while thread.is_alive():
                with contextlib.suppress(OSError):  # a reader for a moment: the writer's open returns
                    os.close(os.open(pipe, os.O_RDONLY | os.O_NONBLOCK))
                thread.join(0.05)


def _feed(path: Path, pipe: Path, end: int | None, stop: threading.Event) -> None:
    """Write the first ``end`` bytes of ``path`` to ``pipe`` (``end`` None: the gzip content's whole
    lines up to where it is cut short)."""
    try:
        out = os.open(pipe, os.O_WRONLY)  # waits for DuckDB (or prefix_pipe's exit) to open it
    except OSError:
        return
    try:
        os.set_blocking(out, False)
        for data in _plain(path, end) if end is not None else _gunzipped(path):
            if stop.is_set():
                break
            _write(out, memoryview(data), stop)
    except OSError:  # DuckDB closed the pipe (it stopped reading): nothing more to write
        return
    finally:
        os.close(out)


def _write(out: int, data: memoryview, stop: threading.Event) -> None:
    while data and not stop.is_set():
        if not select.select([], [out], [], 0.1)[1]:
            continue
        try:
            data = data[os.write(out, data) :]
        except BlockingIOError:
            continue


def _plain(path: Path, end: int) -> Iterator[bytes]:
    with path.open("rb") as source:
        left = end
        while left > 0:
            data = source.read(min(left, _CHUNK))
            if not data:
                return
            left -= len(data)
            yield data


def _gunzipped(path: Path) -> Iterator[bytes]:
    """The content of a gzip file (one member or several) in pieces ending at a line end, up to
    where it is cut short: the bytes after the last line end are held back unless the last member is
    whole. zlib, not :mod:`gzip`, so that the content decompressed just before the cut is kept (and
    zlib releases the GIL)."""
    rest, whole = b"", False
    inflate = zlib.decompressobj(wbits=31)
    with path.open("rb") as raw:
        while chunk := raw.read(_CHUNK):
            while chunk:
                try:
                    data = rest + inflate.decompress(chunk)
                except zlib.error:
                    return
                whole, chunk = inflate.eof, inflate.unused_data if inflate.eof else b""
                if whole:
                    inflate = zlib.decompressobj(wbits=31)
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                if cut:
                    yield data[:cut]
    if whole and rest:
        yield rest


def check_gzip(path: Path) -> str | None:
    """Decompress a gzip file to its end, checking every member's CRC-32 and length (which DuckDB
    does not); None when it is sound, else the problem (``truncated`` or ``corrupt: ...``).

    zlib releases the GIL, so this runs beside DuckDB's read on another thread.
    """
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(_CHUNK):
                pass
    except EOFError:
        return "truncated"
    except (OSError, zlib.error) as exc:
        return f"corrupt: {exc}"
    return None
