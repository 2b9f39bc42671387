"""Compressed captures: recognise gzip, zstd, xz, bzip2 and lz4 by their first bytes and read them streamed.

Nothing is decompressed to disk: :func:`open_capture` returns a file object that decompresses as it
is read (Python's gzip, bz2 and lzma modules, and the ``zstandard`` package), so memory stays bounded
by the decompressors' windows whatever the capture's size. The decompressors release the GIL while
they work, so a reader thread decompressing beside the meter costs little of the main thread's time.

A whole capture read by the feed (``stream=True``) goes through a faster command-line decompressor
where one is installed: gzip through ISA-L's ``igzip`` (Debian package ``isal``), about five times
less CPU than zlib here (0.07-0.10 against 0.42-0.54 CPU s for 117 MB; docs/benchmarks.md), bzip2
through ``lbzip2`` (Debian package ``lbzip2``) and xz through ``xz`` (Debian ``xz-utils``), read from
their standard output: each decompresses in its own process, on the core the meter leaves. A stream
that ends early raises :class:`EOFError` and a corrupt one :class:`OSError`, as Python's modules do.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import shutil
import subprocess
import tempfile
import threading
import zlib
from collections.abc import Callable
from io import BufferedIOBase
from pathlib import Path
from typing import IO, Final, cast

from derisk.ingest import wiretap

#: Compression formats by their magic bytes.
MAGICS: Final[dict[bytes, str]] = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bzip2",
    b"\x04\x22\x4d\x18": "lz4",  # an LZ4 frame (lz4 -c; Wireshark 4.2+ writes lz4-compressed captures)
}


def decompress_errors() -> tuple[type[BaseException], ...]:
    """What a truncated or corrupt stream raises, from any of the decompressors."""
    import zstandard

    # the lz4 package raises RuntimeError for a corrupt frame (EOFError for a cut one)
    return (OSError, EOFError, lzma.LZMAError, ValueError, zlib.error, zstandard.ZstdError, RuntimeError)


def compression(head: bytes) -> str | None:
    """The compression format whose magic ``head`` starts with, or None for an uncompressed file."""
    for magic, name in MAGICS.items():
        if head.startswith(magic):
            return name
    return None


#: Command-line decompressors by format, used for whole streams when installed: (program, arguments).
#: lbzip2 on one thread (Debian ``lbzip2``): 10-25 % less CPU than libbz2 for bzip2 -9 captures, and
#: in its own process beside the meter (on two threads it cost more CPU and no less time here). xz
#: (liblzma, the decoder Python's lzma module wraps) in its own process instead of a thread of ours.
TOOLS: dict[str, tuple[str, ...]] = {
    "gzip": ("igzip", "-d", "-c"),
    "bzip2": ("lbzip2", "-n1", "-d", "-c"),
    "xz": ("xz", "-d", "-c", "-T1"),
}
#: What igzip, lbzip2 and xz say about a stream that ends early.
#: editcap (:mod:`.wiretap`) says a capture is cut short on its standard error and still exits 0.
_ENDS_EARLY: Final = (
    "does not contain a complete",
    "unexpected end of file",
    "Unexpected end of input",
    "appears to have been cut short",
)


class ToolReader(BufferedIOBase):
    """The standard output of a decompressor reading ``path``; its exit status checked at the end.

    A stream that ends early is finished by ``finish`` (Python's own decompressor of the format)
    from the byte the tool had given: how much a tool writes out before it reports the early end
    depends on its threads' timing, Python's module gives every whole block before the cut, so
    the flows kept and the offset of the cut are the same run after run and with or without the tool.
    """

    def __init__(
        self,
        command: list[str],
        path: Path,
        finish: Callable[[], BufferedIOBase] | None = None,
        tail: tuple[str, ...] = (),
        feed: BufferedIOBase | None = None,
    ) -> None:
        self._finish = finish
        self._rest: BufferedIOBase | None = None
        self._given = 0
        self._errors: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        self._name = str(path.absolute())  # never taken for an option
        self._program = command[0]
        self._feed = feed
        self._feeder: threading.Thread | None = None
        self._fed_error: BaseException | None = None
        try:
            self._proc = subprocess.Popen(
                [*command, self._name if feed is None else "-", *tail],
                stdin=subprocess.DEVNULL if feed is None else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
            )
        except BaseException:
            self._errors.close()
            if feed is not None:
                feed.close()
            raise
        if feed is not None:  # the tool reads the decompressed file on its standard input
            self._feeder = threading.Thread(target=self._pour, name="derisk-tool-feed", daemon=True)
            self._feeder.start()
        assert self._proc.stdout is not None
        self._out = cast(io.BufferedReader, self._proc.stdout)

    def _pour(self) -> None:
        """Copy ``feed`` into the tool's standard input; a cut or corrupt stream, or a tool that
        stopped reading, ends the copy (the tool then reports what it met)."""
        assert self._feed is not None and self._proc.stdin is not None
        ends: tuple[type[BaseException], ...] = (ValueError, *decompress_errors())
        try:
            while piece := self._feed.read1(1 << 16):
                self._proc.stdin.write(piece)
        except BrokenPipeError:
            pass  # the tool stopped reading: it says why
        except ends as exc:  # the compressed stream is cut or corrupt: said once the tool has ended
            self._fed_error = exc
        finally:
            with contextlib.suppress(OSError, ValueError):
                self._proc.stdin.close()

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        if self._rest is not None:
            return self._rest.read(-1 if size is None else size)
        data = self._out.read(-1 if size is None else size)
        self._given += len(data)
        if size is None or size < 0 or len(data) < size:
            self._ended()
            if self._rest is not None:
                data += self._rest.read(-1 if size is None or size < 0 else size - len(data))
        return data

    def read1(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes, waiting for as many as the pipe will give (a pipe gives 64 KiB at a time).

        After an early end, the rest comes from Python's module by ``read1`` as well: its ``read``
        drops what it had decompressed of a request when the stream ends inside it, so the bytes
        before the cut would depend on the sizes asked (the flows kept on the tool's timing)."""
        if self._rest is not None:
            return self._rest.read1(size)
        data = self._out.read(size) if size > 0 else self._out.read1(size)
        self._given += len(data)
        if not data:
            self._ended()
            if self._rest is not None:
                return self._rest.read1(size)
        return data

    def _ended(self) -> None:
        code = self._proc.wait()
        self._errors.seek(0)
        said = self._errors.read(4096).decode("utf-8", "replace")
        if self._feeder is not None:
            self._feeder.join()
        if code == 0 and not any(sign in said for sign in _ENDS_EARLY):
            if self._fed_error is None:
                return
            if isinstance(self._fed_error, EOFError):  # cut at a record's end: the tool saw whole records
                raise EOFError(" ".join(str(self._fed_error).split()) or "the stream ends early")
            raise OSError(" ".join(str(self._fed_error).split()))
        for named in (
            f'"{self._name}": ',
            f"{self._name}: ",
            f'"{self._name}"',
            self._name,
        ):  # lbzip2 and editcap quote it
            said = said.replace(named, "")
        said = said.replace(self._program, Path(self._program).name)  # xz names itself by its path
        text = " ".join(said.split()) or f"exit status {code}"
        if not any(sign in text for sign in _ENDS_EARLY):
            raise OSError(text)
        if self._finish is None:
            raise EOFError(text)
        rest = self._finish()
        try:
            left = self._given
            while left:  # what the tool gave already; an early end before it is the same early end
                skipped = rest.read1(min(left, 1 << 20))
                if not skipped:
                    raise EOFError(text)
                left -= len(skipped)
        except BaseException:
            rest.close()
            raise
        self._rest = rest

    def close(self) -> None:
        if not self.closed:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._out.close()
            self._errors.close()
            if self._feeder is not None:
                self._feeder.join()
            if self._feed is not None:
                self._feed.close()
            if self._rest is not None:
                self._rest.close()
        super().close()


def ends_early(kind: str | None) -> str:
    """How a capture stream that ends early is named in the cut warning: a format editcap converts
    gives the offset in editcap's pcapng of it, a compressed one in the decompressed stream."""
    if kind is not None and wiretap.converts(kind):
        return f"the {wiretap.base(kind)} file ends inside a record; the byte is of editcap's pcapng of it"
    return f"the {kind or 'file'} stream ends early"


def tool(kind: str) -> list[str] | None:
    """The installed command-line decompressor for ``kind``, as a command, or None."""
    found = TOOLS.get(kind)
    if found is None:
        return None
    program = shutil.which(found[0])
    return [program, *found[1:]] if program else None


def open_capture(path: Path, kind: str | None, *, stream: bool = False) -> BufferedIOBase:
    """``path`` opened for reading, decompressed on the fly when ``kind`` names a compression.

    ``stream``: the whole file will be read; a command-line decompressor (:data:`TOOLS`) reads it
    when one is installed.
    """
    if kind is None:
        return path.open("rb")
    if wiretap.converts(kind):  # another tool's capture format, converted to pcapng as it is read
        wrapped = wiretap.parts(kind)[2]
        feed = None if wrapped is None else open_capture(path, wrapped, stream=True)
        return ToolReader(wiretap.command(kind), path, tail=("-",), feed=feed)
    command = tool(kind) if stream else None
    if command is not None:
        return ToolReader(command, path, lambda: open_capture(path, kind))
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "bzip2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
    if kind == "lz4":
        import lz4.frame

        return cast(BufferedIOBase, lz4.frame.open(path, "rb"))
    if kind == "zstd":
        import zstandard

        raw = path.open("rb")
        try:
            reader = cast(
                BufferedIOBase,
                zstandard.ZstdDecompressor().stream_reader(raw, closefd=True, read_across_frames=True),
            )
        except BaseException:
            raw.close()
            raise
        return reader
    raise ValueError(f"unknown compression {kind!r}")
