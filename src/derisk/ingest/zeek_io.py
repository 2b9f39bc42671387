"""Opening Zeek log files, plain or gzip, with every failure turned into an :class:`InputError`."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path

import pyarrow as pa

from derisk.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
#: Longest line accepted; a Zeek log line is a few hundred bytes, companions with hostile text more.
MAX_LINE_BYTES = 1 << 26


class LineTooLong(ValueError):
    """A line runs past :data:`MAX_LINE_BYTES` without ending."""


def sniff(path: Path, display: str, size: int = 4096) -> bytes:
    """The first ``size`` bytes of the file's content (decompressed when it is gzip)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
        if head == GZIP_MAGIC:
            with gzip.open(path, "rb") as gz:
                return gz.read(size)
        with path.open("rb") as fh:
            return fh.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        raise read_error(exc, display) from exc


def read_error(exc: BaseException, display: str) -> InputError:
    """Describe an I/O or decompression failure in one line."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "runcated" in text or "ended before" in text:
        return InputError("gzip data is truncated", source=display)
    if isinstance(exc, (gzip.BadGzipFile, zlib.error)) or "inflate" in text or "gzip" in text.lower():
        return InputError(f"gzip data is corrupt ({text})", source=display)
    if isinstance(exc, PermissionError):
        return InputError("permission denied", source=display)
    if isinstance(exc, FileNotFoundError):
        return InputError("no such file", source=display)
    if isinstance(exc, IsADirectoryError):
        return InputError("is a directory", source=display)
    return InputError(f"cannot read ({text})", source=display)


def open_binary(path: Path, display: str) -> tuple[pa.NativeFile, pa.NativeFile]:
    """Open for Arrow: the file on disk, and the stream of its content (decompressed when gzip)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
        raw = pa.OSFile(str(path), "r")
    except OSError as exc:
        raise read_error(exc, display) from exc
    if head == GZIP_MAGIC:
        return raw, pa.CompressedInputStream(raw, "gzip")
    return raw, raw


def open_text_lines(path: Path, display: str) -> Generator[tuple[int, str], None, None]:
    """Numbered lines (from 1) of the file's content; undecodable bytes kept as surrogates."""
    try:
        with path.open("rb") as fh:
            head = fh.read(2)
        with gzip.open(path, "rb") if head == GZIP_MAGIC else path.open("rb") as lines:
            for number, raw in enumerate(lines, start=1):
                yield number, raw.decode("utf-8", "surrogateescape")
    except (OSError, EOFError, zlib.error) as exc:
        raise read_error(exc, display) from exc


def segments(path: Path, display: str, size: int) -> Generator[tuple[pa.Buffer, int], None, None]:
    """The file's content in pieces of about ``size`` bytes that end at a line end.

    Each piece comes with the offset reached in the file on disk (compressed bytes for gzip), for
    progress reporting. Only a few pieces are ever in memory, whatever the file's size. A plain file
    is read piece by piece from where the previous piece ended; gzip content is carried over.
    """
    raw, stream = open_binary(path, display)
    try:
        if stream is raw:
            yield from _plain_segments(raw, size)
        else:
            yield from _stream_segments(raw, stream, size)
    finally:
        stream.close()
        raw.close()


def _last_line_end(data: pa.Buffer) -> int:
    """Index just after the last ``\n`` in ``data``, or 0 when there is none."""
    view = memoryview(data)
    window = 1 << 16
    while True:
        start = max(0, len(view) - window)
        found = bytes(view[start:]).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        if start == 0:
            return 0
        window *= 4


def _plain_segments(raw: pa.NativeFile, size: int) -> Iterator[tuple[pa.Buffer, int]]:
    position, want = 0, size
    while True:
        raw.seek(position)
        data = raw.read_buffer(want)
        if data.size < want:  # the end of the file
            if data.size:
                yield data, position + data.size
            return
        cut = _last_line_end(data)
        if cut == 0:
            if want > MAX_LINE_BYTES:
                raise LineTooLong(f"a line is longer than {MAX_LINE_BYTES} bytes")
            want *= 2
            continue
        position += cut
        want = size
        yield data.slice(0, cut), position


def _stream_segments(raw: pa.NativeFile, stream: pa.NativeFile, size: int) -> Iterator[tuple[pa.Buffer, int]]:
    rest = b""
    while True:
        data = stream.read(size)
        if not data:
            if rest:
                yield pa.py_buffer(rest), int(raw.tell())
            return
        if rest:
            data = rest + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest = data
            if len(rest) > MAX_LINE_BYTES:
                raise LineTooLong(f"a line is longer than {MAX_LINE_BYTES} bytes")
            continue
        rest = data[cut:]
        yield pa.py_buffer(memoryview(data)[:cut]), int(raw.tell())


def is_utf8(text: str) -> bool:
    """Whether a line read with ``surrogateescape`` was valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def bytes_per_line(path: Path, sample: int = 1 << 20) -> float:
    """Bytes on disk per line, estimated from the first ``sample`` bytes of content (for progress)."""
    try:
        with path.open("rb") as raw:
            gz = raw.read(2) == GZIP_MAGIC
            raw.seek(0)
            if gz:
                with gzip.open(raw, "rb") as stream:
                    lines = stream.read(sample).count(b"\n")
                used = raw.tell()
            else:
                data = raw.read(sample)
                lines, used = data.count(b"\n"), len(data)
    except (OSError, EOFError, zlib.error):
        return float(sample)
    return used / max(lines, 1)
