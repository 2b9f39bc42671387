"""Compressed captures: recognise gzip, zstd, xz and bzip2 by their first bytes and read them streamed.

Nothing is decompressed to disk: :func:`open_capture` returns a file object that decompresses as it
is read (Python's gzip, bz2 and lzma modules, and the ``zstandard`` package), so memory stays bounded
by the decompressors' windows whatever the capture's size. The decompressors release the GIL while
they work, so a reader thread decompressing beside the meter costs little of the main thread's time.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from io import BufferedIOBase
from pathlib import Path
from typing import Final, cast

#: Compression formats by their magic bytes.
MAGICS: Final[dict[bytes, str]] = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bzip2",
}


def decompress_errors() -> tuple[type[BaseException], ...]:
    """What a truncated or corrupt stream raises, from any of the decompressors."""
    import zstandard

    return (OSError, EOFError, lzma.LZMAError, ValueError, zlib.error, zstandard.ZstdError)


def compression(head: bytes) -> str | None:
    """The compression format whose magic ``head`` starts with, or None for an uncompressed file."""
    for magic, name in MAGICS.items():
        if head.startswith(magic):
            return name
    return None


def open_capture(path: Path, kind: str | None) -> BufferedIOBase:
    """``path`` opened for reading, decompressed on the fly when ``kind`` names a compression."""
    if kind is None:
        return path.open("rb")
    if kind == "gzip":
        return gzip.open(path, "rb")
    if kind == "bzip2":
        return bz2.open(path, "rb")
    if kind == "xz":
        return lzma.open(path, "rb")
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
