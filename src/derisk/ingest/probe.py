"""What a capture's first bytes say: compressed or not, pcap or pcapng, link type, tags ahead.

:func:`probe` reads at most 64 KiB (decompressed) from the start of a file, so that a capture derisk
cannot use is refused before any process or thread starts, and the reader knows which way to read it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from derisk.errors import InputError
from derisk.ingest import linktypes, modified_pcap, wiretap
from derisk.ingest.decompress import compression, decompress_errors, open_capture

#: pcap magic numbers: (byte order, factor that turns the fraction of a second into nanoseconds).
PCAP_MAGICS: Final = {
    b"\xd4\xc3\xb2\xa1": ("<", 1_000),  # microseconds
    b"\xa1\xb2\xc3\xd4": (">", 1_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),  # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
#: The type of a pcapng section header block, its first four bytes.
PCAPNG_SHB: Final = b"\x0a\x0d\x0d\x0a"


@dataclass(frozen=True)
class Probe:
    """What the first bytes of a capture say: compression, format, link type of its first interface."""

    compression: str | None
    fmt: str
    linktype: int
    #: An Ethernet frame among the first records carries MPLS (the DNS pass's filter depends on it).
    mpls: bool = False
    #: The first records need rewriting before libpcap can filter them: an Ethernet outer tag NFStream
    #: does not skip (QinQ, VN-Tag), or a pcapng with several interfaces (libpcap refuses interfaces
    #: that differ from the first in link type or snapshot length, as ``dumpcap -i A -i B`` writes them).
    rewrite: bool = False
    #: A modified pcap or a classic-magic variant (:mod:`.modified_pcap`): its record header size
    #: (20, 24 or 28); 0 for a classic pcap.
    modified: int = 0


def _fail(path: Path, what: str) -> InputError:
    return InputError(what, source=str(path))


def _said(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]


def _head(path: Path, kind: str | None, n: int = 65536) -> bytes:
    with open_capture(path, kind) as fh:
        out = b""
        while len(out) < n:
            try:
                piece = fh.read1(n - len(out))
            except EOFError:  # a stream cut inside its first bytes: what came before is its head
                if not out:
                    raise
                break
            if not piece:
                break
            out += piece
        return out


def _converted(path: Path, kind: str) -> tuple[str, bytes]:
    """The way editcap converts ``kind`` and the first bytes of the pcapng it writes."""
    try:
        try:
            return kind, _head(path, kind)
        except OSError as exc:
            if wiretap.base(kind) not in wiretap.RETYPED or wiretap.UNWRITABLE not in str(exc):
                raise
        name, _, wrapped = kind.partition(wiretap.WRAPPED)
        kind = name + wiretap.AS_ETHERNET + (wiretap.WRAPPED + wrapped if wrapped else "")
        return kind, _head(path, kind)
    except decompress_errors() as exc:
        raise _fail(path, f"{wiretap.describe(kind)} file editcap cannot convert: {_said(exc)}") from None


def probe(path: Path) -> Probe:
    """Recognise a capture (compressed or not) and the link type of its first interface.

    Raises :class:`InputError` for a compressed file that is not a capture, a corrupt compressed
    stream, or a link type derisk cannot meter.
    """
    with path.open("rb") as fh:
        raw = fh.read(8)
    kind = compression(raw)
    try:
        head = _head(path, kind)
    except decompress_errors() as exc:
        raise _fail(path, f"corrupt {kind} stream: {_said(exc)}") from None
    if head[:4] not in PCAP_MAGICS and head[:4] != PCAPNG_SHB and head[:4] not in modified_pcap.MAGICS:
        # another tool's format (ERF, NetMon, snoop, ...): wiretap reads it plain or gzipped itself,
        # and is given it decompressed on its standard input inside the other compressions
        plain = kind in (None, "gzip")
        foreign = wiretap.identify(path) if plain else wiretap.identify(path, head)
        if foreign is not None:
            kind, head = _converted(path, foreign if plain else f"{foreign}{wiretap.WRAPPED}{kind}")
    if kind is not None and wiretap.converts(kind):
        what = f"{wiretap.describe(kind)} file, converted by editcap,"
    else:
        what = f"{kind}-compressed file" if kind else "file"
    modified = modified_pcap.layout(path, head)  # read as a classic pcap, its records rewritten
    head = modified_pcap.standard_head(head, modified)
    if head[:4] in PCAP_MAGICS:
        if len(head) < 24:
            raise _fail(path, f"truncated pcap: the file header needs 24 bytes, the {what} has {len(head)}")
        endian = PCAP_MAGICS[head[:4]][0]
        linktype = struct.unpack_from(endian + "I", head, 20)[0] & 0x0FFFFFFF
        fmt = "pcap"
    elif head[:4] == PCAPNG_SHB:
        fmt, linktype = "pcapng", _first_interface(path, head)
    else:
        inner = " decompressed" if kind else ""
        raise _fail(
            path,
            f"{what} is not a pcap or pcapng capture ({inner.strip() or 'starts with'} bytes {head[:4].hex()})",
        )
    if not linktypes.supported(linktype):
        raise _fail(path, f"unsupported link type: {linktypes.name(linktype)}; derisk meters IP traffic "
                    "captured on Ethernet, Linux cooked, raw IP, loopback, PPP, NFLOG, PPI, PKTAP or 802.11 links")  # fmt: skip
    if fmt == "pcapng":
        mpls, outer = _tags_ahead(_pcapng_frames(head)) if linktype == 1 else (False, False)
        return Probe(kind, fmt, linktype, mpls=mpls, rewrite=len(_interfaces(head)) > 1 or outer)
    mpls, outer = _tags_ahead(_pcap_frames(head)) if linktype == 1 else (False, False)
    return Probe(kind, fmt, linktype, mpls=mpls, rewrite=outer or modified > 0, modified=modified)


def _pcap_frames(head: bytes) -> Iterator[bytes]:
    """The first bytes of the frames of the records in a pcap's first bytes."""
    endian = PCAP_MAGICS[head[:4]][0]
    offset = 24
    while offset + 16 <= len(head):
        captured = struct.unpack_from(endian + "I", head, offset + 8)[0]
        yield head[offset + 16 : offset + 16 + min(captured, 64)]
        offset += 16 + captured


def _pcapng_frames(head: bytes) -> Iterator[bytes]:
    """The first bytes of the frames of the enhanced and simple packet blocks in a pcapng's first
    bytes (the probe asks only when its interfaces are all Ethernet)."""
    offset, endian = 0, "<"
    while offset + 12 <= len(head):
        if head[offset : offset + 4] == PCAPNG_SHB:
            endian = "<" if head[offset + 8 : offset + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        kind, length = struct.unpack_from(endian + "II", head, offset)
        if length < 12 or length % 4:
            return
        if kind == 6:
            yield head[offset + 28 : offset + 28 + 64]
        elif kind == 3:
            yield head[offset + 12 : offset + 12 + 64]
        offset += length


def _tags_ahead(frames: Iterator[bytes]) -> tuple[bool, bool]:
    """Whether Ethernet frames among the first records carry MPLS (after any VLAN tags), and outer
    tags that NFStream does not skip."""
    mpls, outer = False, False
    for frame in frames:
        outer = outer or frame[12:14] in linktypes.OUTER_TAGS
        at = 12
        while frame[at : at + 2] in (b"\x81\x00", b"\x88\xa8"):
            at += 4
        mpls = mpls or frame[at : at + 2] == b"\x88\x47"
    return mpls, outer


def _interfaces(head: bytes) -> list[tuple[int, int]]:
    """The distinct (link type, snapshot length) pairs of the interfaces a pcapng describes in its
    first bytes, in order."""
    offset, endian = 0, "<"
    found: list[tuple[int, int]] = []
    while offset + 12 <= len(head):
        if head[offset : offset + 4] == PCAPNG_SHB:
            endian = "<" if head[offset + 8 : offset + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        kind, length = struct.unpack_from(endian + "II", head, offset)
        if kind == 1 and offset + 16 <= len(head):
            linktype = int(struct.unpack_from(endian + "H", head, offset + 8)[0])
            snaplen = int(struct.unpack_from(endian + "I", head, offset + 12)[0])
            if (linktype, snaplen) not in found:
                found.append((linktype, snaplen))
        if length < 12 or length % 4:
            break
        offset += length
    return found


def _first_interface(path: Path, head: bytes) -> int:
    found = _interfaces(head)
    return found[0][0] if found else 1  # no interface in the first 64 KiB: libpcap will say what is wrong
