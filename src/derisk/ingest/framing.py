"""The record framing of a pcap or pcapng file, checked in Python (the fallback when libpcap is not at hand).

:func:`inspect_capture` counts a capture's packet records (a progress total) and checks that every
record and block has a possible length, reading the file in 4 MiB chunks.
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from derisk.errors import InputError

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\xa1\xb2\xc3\xd4": ">",
    b"\x4d\x3c\xb2\xa1": "<",  # nanosecond resolution
    b"\xa1\xb2\x3c\x4d": ">",
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_PACKET_BLOCKS = {2, 3, 6}
_MAX_RECORD = 1 << 20  # no link layer carries a frame of a mebibyte; a larger record means corruption


def _fail(path: Path, what: str) -> InputError:
    return InputError(what, source=str(path))


def os_error(path: Path, exc: OSError) -> InputError:
    """An OSError met while reading ``path`` as a one-line input error."""
    if isinstance(exc, FileNotFoundError):
        return _fail(path, "no such file")
    if isinstance(exc, PermissionError):
        return _fail(path, "cannot read: permission denied")
    if isinstance(exc, IsADirectoryError):
        return _fail(path, "is a directory, not a capture file")
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    return _fail(path, f"cannot read: {reason}")


def capture_format(path: Path) -> str:
    """``"pcap"`` or ``"pcapng"`` from an uncompressed file's first bytes; :class:`InputError` otherwise."""
    try:
        if path.is_dir():
            raise _fail(path, "is a directory, not a capture file")
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise os_error(path, exc) from None
    if not head:
        raise _fail(path, "empty file (0 bytes), not a capture")
    if head in _PCAP_MAGIC:
        return "pcap"
    if head == _PCAPNG_SHB:
        return "pcapng"
    raise _fail(path, f"not a pcap or pcapng capture (starts with bytes {head.hex()})")


@dataclass(frozen=True)
class CaptureInfo:
    """What the file check learned: the format and how many packet records the file holds."""

    fmt: str
    packets: int


def inspect_capture(path: Path) -> CaptureInfo:
    """Check that ``path`` is a complete pcap or pcapng file and count its packet records.

    Raises :class:`InputError` naming the file for a missing, unreadable, empty, non-capture or
    truncated file. Reads the record framing only (no packet contents), in 4 MiB chunks.
    """
    fmt = capture_format(path)
    try:
        with path.open("rb", buffering=0) as fh:
            window = _Window(fh, path.stat().st_size)
            if fmt == "pcap":
                head, _ = window.view(0, 4)
                return CaptureInfo(fmt, _walk_pcap(path, window, _PCAP_MAGIC[head[:4]]))
            return CaptureInfo(fmt, _walk_pcapng(path, window))
    except OSError as exc:
        raise os_error(path, exc) from None


class _Window:
    """Reads a file in large chunks so the framing walk touches each byte once with bounded memory."""

    CHUNK = 4 << 20  # larger than any record or block the walk accepts

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh, self.size = fh, size
        self.start, self.buf = 0, b""

    def view(self, offset: int, length: int) -> tuple[bytes, int]:
        """A buffer holding bytes [offset, offset + length) of the file, and where offset is in it."""
        if offset < self.start or offset + length > self.start + len(self.buf):
            self.fh.seek(offset)
            self.buf = self.fh.read(max(self.CHUNK, length))
            self.start = offset
        return self.buf, offset - self.start


def _walk_pcap(path: Path, data: _Window, endian: str) -> int:
    size = data.size
    if size < 24:
        raise _fail(path, f"truncated pcap: the file header needs 24 bytes, the file has {size}")
    captured_at = struct.Struct(endian + "I").unpack_from  # incl_len, 8 bytes into a record header
    offset, packets = 24, 0
    buf, base = data.view(offset, 16)
    base = offset - base  # file offset of buf[0]
    end = base + len(buf)
    while offset < size:
        if size - offset < 16:
            raise _fail(path, f"truncated pcap: record {packets + 1} header cut off at byte {offset}")
        if offset + 16 > end:  # the hot loop keeps the window inline: a method call per record is slow
            buf, at = data.view(offset, 16)
            base, end = offset - at, offset - at + len(buf)
        (captured,) = captured_at(buf, offset - base + 8)
        if captured > _MAX_RECORD:
            raise _fail(path, f"corrupt pcap: record {packets + 1} claims {captured} bytes")
        offset += 16 + captured
        if offset > size:
            raise _fail(path, f"truncated pcap: record {packets + 1} cut off ({offset - size} bytes missing)")
        packets += 1
    return packets


def _walk_pcapng(path: Path, data: _Window) -> int:
    size = data.size
    offset, packets, blocks, endian = 0, 0, 0, "<"
    while offset < size:
        if size - offset < 12:
            raise _fail(path, f"truncated pcapng: block {blocks + 1} cut off at byte {offset}")
        buf, at = data.view(offset, 12)
        if buf[at : at + 4] == _PCAPNG_SHB:
            magic = buf[at + 8 : at + 12]
            if magic == b"\x4d\x3c\x2b\x1a":
                endian = "<"
            elif magic == b"\x1a\x2b\x3c\x4d":
                endian = ">"
            else:
                raise _fail(path, f"corrupt pcapng: section header at byte {offset} has no byte-order magic")
        kind, length = struct.unpack_from(endian + "II", buf, at)
        if length < 12 or length % 4 or length > _MAX_RECORD + 64:
            raise _fail(path, f"corrupt pcapng: block {blocks + 1} at byte {offset} has length {length}")
        if offset + length > size:
            missing = offset + length - size
            raise _fail(path, f"truncated pcapng: block {blocks + 1} cut off ({missing} bytes missing)")
        buf, at = data.view(offset + length - 4, 4)
        (trailer,) = struct.unpack_from(endian + "I", buf, at)
        if trailer != length:
            raise _fail(path, f"corrupt pcapng: block {blocks + 1} at byte {offset} has mismatched lengths")
        if kind in _PCAPNG_PACKET_BLOCKS:
            packets += 1
        blocks += 1
        offset += length
    return packets


def timestamp_resolution(options: bytes, endian: str) -> tuple[int, int]:
    """(numerator, denominator) that turn a pcapng interface's timestamp units into microseconds, from
    the options of its interface description block (``if_tsresol``, code 9; microseconds without it)."""
    offset = 0
    while offset + 4 <= len(options):
        code, length = struct.unpack_from(endian + "HH", options, offset)
        if code == 0:
            break
        if code == 9 and length >= 1:
            value = options[offset + 4]
            if value & 0x80:
                return 1_000_000, 1 << (value & 0x7F)
            return 1_000_000, 10**value
        offset += 4 + ((length + 3) & ~3)
    return 1, 1
