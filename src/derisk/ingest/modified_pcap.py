"""Modified pcap: captures written by Alexey Kuznetsov's patched libpcap (magic ``0xa1b2cd34``).

Some Linux distributions of 1999-2000 shipped a libpcap whose record headers carry more than the 16
classic bytes (time, captured and original length): the interface index (u32), the packet's
protocol (u16), its packet type (u8) and padding. Tools still write the format (capinfos calls it
"SuSE 6.3 tcpdump - pcap"). Two layouts share the magic; Wireshark's wiretap (``libpcap.c``) names
them after the patches' dates:

* ``ss991029``: 24-byte record headers (the 16 classic bytes, ifindex, protocol, packet type, one
  byte of padding);
* ``ss990915``: 28-byte record headers (the same, then two bytes of CPU numbers and three of padding).

Nothing in the file header says which. As wiretap does, :func:`layout` reads the first records both
ways and keeps the layout under which they make sense (lengths within the snapshot length, captured
no longer than original, a microsecond fraction under one second, the extra fields in their ranges,
times within a day of the first). libpcap, so NFStream's meter, reads neither reliably; the feed
(:mod:`derisk.ingest.feed`) reads the capture through :class:`Standard`, which rewrites the file
header and every record header to the classic little-endian 16 bytes as the capture is read,
chunk by chunk (compressed files too: it reads the decompressed stream).

Two variants keep the classic magic (microsecond, either byte order): Nokia IPSO's tcpdump, whose
record headers carry 4 more bytes (20 in all; capinfos: "Nokia tcpdump - pcap"), and wiretap's
``ss990417`` of Red Hat 6.1, with 24-byte headers ("RedHat 6.1 tcpdump - pcap"). libpcap reads them
as a classic pcap, runs into the extra bytes and refuses the file as corrupt. So only when the
first records do not make sense as classic ones (a record longer than the snapshot length, a
microsecond fraction of a second or more, captured longer than original, times days apart) are
the two layouts tried, with the checks that do not depend on the extra fields; exactly one that
reads the first records cleanly is taken and converted as above; otherwise the file is left to
libpcap, which refuses it as corrupt (exit 3). A classic capture whose first records are sound is
never guessed at.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from io import BufferedIOBase
from pathlib import Path
from typing import TYPE_CHECKING, Final

from derisk.errors import InputError
from derisk.ingest.decompress import open_capture

if TYPE_CHECKING:
    from derisk.ingest.feed import FeedReport
    from derisk.ingest.probe import Probe

#: The modified magic in each byte order: the struct byte order of the file's fields.
MAGICS: Final = {b"\x34\xcd\xb2\xa1": "<", b"\xa1\xb2\xcd\x34": ">"}
#: Record header sizes of the two layouts, in the order wiretap tries them (ties go to the first).
LAYOUTS: Final = (24, 28)
#: The classic microsecond magic in each byte order, whose variants (:data:`CLASSIC_LAYOUTS`) are
#: tried only when the first records fail as classic ones.
CLASSIC_MAGICS: Final = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">"}
#: Record header sizes of the classic magic's variants: Nokia IPSO (20), Red Hat 6.1's ss990417 (24).
CLASSIC_LAYOUTS: Final = (20, 24)
#: How many first records decide the layout (wiretap reads three).
TRIED: Final = 3
#: Larger than any record (as in the feed); a record that claims more is corruption, not a frame.
MAX_RECORD: Final = 1 << 20
#: The first records' times lie within this many seconds of each other in a sane capture.
SPREAD_S: Final = 86400
#: The protocol field's values (wiretap's list): EtherTypes, Linux's ETH_P_ LOOP, ECHO, PUP, 0 to 0x17.
_LINUX_PROTOCOLS: Final = frozenset({0x0060, 0x0200, 0x0400, *range(0x18)})

#: The byte order of every magic whose records :class:`Standard` converts.
_ENDIAN: Final = {**MAGICS, **CLASSIC_MAGICS}
_CHUNK: Final = 1 << 20
_CLASSIC_HEADER: Final = struct.Struct("<IHHiIII")
_CLASSIC_RECORD: Final = struct.Struct("<IIII")


def _fail(path: Path, what: str) -> InputError:
    return InputError(what, source=str(path))


def _problems(head: bytes, endian: str, size: int, *, linux_fields: bool = True) -> tuple[int, int]:
    """(problems, -records read) of the first :data:`TRIED` records of ``head`` read with ``size``-byte
    record headers: lower is better. A record that runs past the end of ``head`` ends the reading
    without a problem (a capture cut there, or one that goes on beyond the probe's bytes). Lengths and
    times are checked; with ``linux_fields`` also the modified layouts' ifindex, protocol and packet
    type (without it the bytes after the classic 16 are unknown, as in the classic-magic variants)."""
    snaplen = struct.unpack_from(endian + "I", head, 16)[0]
    classic, extra = struct.Struct(endian + "IIII"), struct.Struct(endian + "IHB")
    offset, bad, records, first = 24, 0, 0, None
    while records < TRIED and offset + size <= len(head):
        sec, usec, captured, wire = classic.unpack_from(head, offset)
        first = sec if first is None else first
        bad += (usec >= 1_000_000) + (captured > wire) + (wire > 128 << 20) + (abs(sec - first) > SPREAD_S)
        bad += 0 < snaplen < captured
        if linux_fields:
            ifindex, protocol, kind = extra.unpack_from(head, offset + 16)
            bad += (ifindex > 10_000) + (kind > 4)
            bad += protocol < 0x0600 and protocol not in _LINUX_PROTOCOLS
        if captured > MAX_RECORD:
            return bad + 1, -records
        offset += size + captured
        if offset > len(head):
            break
        records += 1
    return bad, -records


def _classic_variant(head: bytes) -> int:
    """The record header size of a Nokia or ss990417 capture whose first bytes are ``head``; 0 for a
    classic capture (its first records sound) or when no one variant reads them cleanly."""
    endian = CLASSIC_MAGICS[head[:4]]
    if _problems(head, endian, 16, linux_fields=False)[0] == 0:
        return 0
    scores = {size: _problems(head, endian, size, linux_fields=False) for size in CLASSIC_LAYOUTS}
    clean = [size for size, (bad, read) in scores.items() if bad == 0 and read < 0]
    return clean[0] if len(clean) == 1 else 0


def layout(path: Path, head: bytes) -> int:
    """The record header size of a capture whose first bytes are ``head`` and whose records are not
    classic: 24 or 28 for a modified pcap, 20 or 24 for a classic-magic variant; 0 for anything else.
    Raises :class:`InputError` when a modified pcap's first records make sense under neither."""
    if head[:4] in CLASSIC_MAGICS and len(head) >= 24:
        return _classic_variant(head)
    endian = MAGICS.get(head[:4])
    if endian is None:
        return 0
    if len(head) < 24:
        return LAYOUTS[0]  # the probe says the file header is cut
    scores = {size: _problems(head, endian, size) for size in LAYOUTS}
    best = min(LAYOUTS, key=lambda size: scores[size])
    if scores[best][0]:
        found = " and ".join(f"{scores[size][0]} with {size}-byte" for size in LAYOUTS)
        raise _fail(
            path,
            "corrupt modified pcap (magic a1b2cd34): its first records make sense with neither record "
            f"layout ({found} record headers: lengths, times or header fields out of range)",
        )
    return best


def standard_head(head: bytes, size: int) -> bytes:
    """``head`` as a classic little-endian pcap: the file header and the whole records it holds
    (unchanged when ``size`` is 0)."""
    if not size:
        return head
    endian = _ENDIAN[head[:4]]
    if len(head) < 24:
        return b"\xd4\xc3\xb2\xa1" + head[4:]
    converter = _Converter(endian, size, Path("-"))
    return converter.header(head) + b"".join(converter.records(memoryview(head), 24, len(head))[0])


class _Converter:
    """Rewrites a modified pcap's file and record headers to the classic form."""

    def __init__(self, endian: str, size: int, path: Path) -> None:
        self.endian, self.size, self.path = endian, size, path
        self.records_done = 0

    def header(self, raw: bytes) -> bytes:
        major, minor, zone, sigfigs, snaplen, linktype = struct.unpack_from(self.endian + "HHiIII", raw, 4)
        return _CLASSIC_HEADER.pack(0xA1B2C3D4, major, minor, zone, sigfigs, snaplen, linktype)

    def records(
        self, buf: memoryview, pos: int, end: int, base: int = 0
    ) -> tuple[list[bytes | memoryview], int]:
        """The whole records of ``buf[pos:end]`` as classic records, and where the first one not whole
        starts. ``base`` is the file offset of ``buf[0]``, for messages."""
        size, out = self.size, []
        unpack = struct.Struct(self.endian + "IIII").unpack_from
        pack = _CLASSIC_RECORD.pack
        verbatim = self.endian == "<"  # the first 16 bytes are the classic header already
        while pos + size <= end:
            sec, usec, captured, wire = unpack(buf, pos)
            if captured > MAX_RECORD:
                raise _fail(self.path, f"corrupt modified pcap: record {self.records_done + 1} at byte "
                            f"{base + pos} claims {captured} bytes")  # fmt: skip
            stop = pos + size + captured
            if stop > end:
                break
            out.append(buf[pos : pos + 16] if verbatim else pack(sec, usec, captured, wire))
            out.append(buf[pos + size : stop])
            self.records_done += 1
            pos = stop
        return out, pos


class Standard(BufferedIOBase):
    """A modified pcap (or a classic-magic variant) stream read as a classic little-endian microsecond pcap, converted as it is read.

    Holds at most one chunk of input and its conversion. A last record cut short becomes one byte
    (the reader sees a record cut where it starts); a source that ends early (a cut compressed stream,
    :class:`EOFError`) raises once what came before has been read.
    """

    def __init__(self, source: BufferedIOBase, size: int, path: Path) -> None:
        self._source, self._size, self._path = source, size, path
        self._converter: _Converter | None = None
        self._raw = b""  # input not converted yet (a record not whole), starting at file offset _base
        self._base = 0
        self._out = b""
        self._at = 0
        self._ended = False
        self._error: EOFError | None = None

    def readable(self) -> bool:
        return True

    def read1(self, size: int = -1, /) -> bytes:
        while self._at >= len(self._out) and not self._ended:
            self._fill()
        if self._at >= len(self._out):
            error, self._error = self._error, None
            if error is not None:
                raise error
            return b""
        stop = len(self._out) if size < 0 else min(len(self._out), self._at + size)
        piece = self._out[self._at : stop]
        self._at = stop
        return piece

    def read(self, size: int | None = -1, /) -> bytes:
        parts: list[bytes] = []
        want = -1 if size is None else size
        got = 0
        while want < 0 or got < want:
            piece = self.read1(-1 if want < 0 else want - got)
            if not piece:
                break
            parts.append(piece)
            got += len(piece)
        return b"".join(parts)

    def _fill(self) -> None:
        try:
            piece = self._source.read1(_CHUNK)
        except EOFError as exc:  # the converted records before the cut are read first
            self._error, piece = exc, b""
        raw = self._raw + piece if self._raw else piece
        out: list[bytes | memoryview] = []
        pos = 0
        if self._converter is None and (len(raw) >= 24 or not piece):
            endian = _ENDIAN.get(raw[:4])
            if endian is None or len(raw) < 24:
                raise _fail(self._path, "truncated pcap: the file header needs 24 bytes")
            self._converter = _Converter(endian, self._size, self._path)
            out.append(self._converter.header(raw))
            pos = 24
        if self._converter is not None:
            made, pos = self._converter.records(memoryview(raw), pos, len(raw), self._base)
            out.extend(made)
        self._base += pos
        self._raw = raw[pos:]
        if not piece:
            self._ended = True
            if self._raw:  # a record cut short: one byte says so to the reader
                out.append(b"\0")
        self._out, self._at = b"".join(out), 0

    def close(self) -> None:
        self._source.close()
        super().close()


@contextmanager
def opened(path: Path, found: Probe, report: FeedReport) -> Iterator[BufferedIOBase]:
    """The capture the feed reads: decompressed, and a modified pcap as a classic one. A cut found in a
    modified pcap is moved to its byte offset in the file (each record header is longer there)."""
    with open_capture(path, found.compression, stream=True) as source:
        if not found.modified:
            yield source
            return
        yield Standard(source, found.modified, path)
    if report.cut_at is not None:
        report.cut_at += (found.modified - 16) * report.records
