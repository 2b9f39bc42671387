"""Link types: which ones NFStream 6.6 meters as they are, and the conversion of the others to Ethernet.

NFStream's engine decodes Ethernet (with 802.1Q tags and MPLS), raw IP, Linux cooked capture v1,
BSD null/loopback, PPP in HDLC framing and Cisco HDLC (tested one by one in ``tests/test_linktypes.py``). It silently ignores every
packet of Linux cooked v2 (the default of ``tcpdump -i any`` since libpcap 1.10), NFLOG, PPI, PPP,
OpenBSD loopback and raw IP under link type 14, and Ethernet frames with an 802.1ad (QinQ) outer
tag, a VN-Tag or an 802.1BR E-Tag. For those, :func:`converter` gives a function that rewrites one frame into an
Ethernet frame with zero MAC addresses and the frame's own EtherType, in front of the same network
layer: derisk counts bytes at the IP layer, so the flows are those of the Ethernet twin. IEEE 802.11
(bare, under radiotap or PPI) and Apple's PKTAP are read the same way (:mod:`derisk.ingest.wrapped`):
unprotected data frames give their IP packets; encrypted and management frames give none. A PPP
link whose frames are in Cisco HDLC framing (as some routers write it) is read as Cisco HDLC.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from derisk.ingest import wrapped

#: Link types (libpcap LINKTYPE numbers) NFStream's engine reads as they are.
NATIVE: Final = frozenset({1, 0, 12, 50, 101, 104, 113, 228, 229})

#: Names of link types for messages.
NAMES: Final[dict[int, str]] = {
    0: "BSD loopback (NULL)",
    1: "Ethernet",
    9: "PPP",
    12: "raw IP",
    14: "raw IP (OpenBSD)",
    50: "PPP in HDLC framing",
    101: "raw IP",
    104: "Cisco HDLC",
    105: "IEEE 802.11",
    108: "OpenBSD loopback",
    113: "Linux cooked capture v1 (SLL)",
    149: "USER2 (Apple PKTAP)",
    127: "IEEE 802.11 radiotap",
    192: "PPI",
    197: "Endace ERF",
    228: "raw IPv4",
    229: "raw IPv6",
    239: "NFLOG",
    258: "Apple PKTAP",
    276: "Linux cooked capture v2 (SLL2)",
}

_IPV4, _IPV6, _MPLS = 0x0800, 0x86DD, 0x8847
_ZERO_MACS = b"\x00" * 12
#: Ethernet tags NFStream does not skip, by EtherType, with their length: 802.1ad and older QinQ outer
#: tags (4 bytes), VN-Tag (6 bytes), 802.1BR E-Tag (8 bytes).
OUTER_TAGS: Final = {b"\x88\xa8": 4, b"\x91\x00": 4, b"\x92\x00": 4, b"\x89\x26": 6, b"\x89\x3f": 8}
_PPP_PROTOCOLS: Final = {0x0021: _IPV4, 0x0057: _IPV6, 0x0281: _MPLS, 0x0283: _MPLS}
_AF_INET6: Final = {10, 24, 28, 30}  # Linux, NetBSD/OpenBSD, FreeBSD, macOS

Frame = Callable[[bytes], bytes | None]


def name(linktype: int) -> str:
    """A link type as people know it, with its number."""
    known = NAMES.get(linktype)
    return f"{known} ({linktype})" if known else f"link type {linktype}"


def _ethernet(ethertype: int, payload: bytes) -> bytes:
    return _ZERO_MACS + struct.pack(">H", ethertype) + payload


def _ip_version(payload: bytes) -> int | None:
    if not payload:
        return None
    version = payload[0] >> 4
    return _IPV4 if version == 4 else _IPV6 if version == 6 else None


def fix_ethernet(frame: bytes) -> bytes:
    """An Ethernet frame without the outer tags NFStream does not skip (QinQ outer tag, VN-Tag, E-Tag)."""
    while (skip := OUTER_TAGS.get(frame[12:14])) is not None:
        frame = frame[:12] + frame[12 + skip :]
    return frame


def _sll2(frame: bytes) -> bytes | None:  # the EtherType is copied as it is: no unpacking
    return _ZERO_MACS + frame[:2] + frame[20:] if len(frame) >= 20 else None


def _sll(frame: bytes) -> bytes | None:
    return _ZERO_MACS + frame[14:16] + frame[16:] if len(frame) >= 16 else None


def _null(frame: bytes) -> bytes | None:
    """BSD null: the address family in the byte order of the machine that wrote it."""
    if len(frame) < 4:
        return None
    family = struct.unpack_from("<I", frame, 0)[0]
    if family > 0xFFFF:
        family = struct.unpack_from(">I", frame, 0)[0]
    if family == 2:
        return _ethernet(_IPV4, frame[4:])
    return _ethernet(_IPV6, frame[4:]) if family in _AF_INET6 else None


def _loop(frame: bytes) -> bytes | None:
    if len(frame) < 4:
        return None
    family = struct.unpack_from(">I", frame, 0)[0]
    if family == 2:
        return _ethernet(_IPV4, frame[4:])
    return _ethernet(_IPV6, frame[4:]) if family in _AF_INET6 else None


def _raw(frame: bytes) -> bytes | None:
    ethertype = _ip_version(frame)
    return _ethernet(ethertype, frame) if ethertype is not None else None


def _ppp(frame: bytes) -> bytes | None:
    if frame[:1] in (b"\x0f", b"\x8f") and frame[1:2] == b"\x00":  # Cisco HDLC framing under link type PPP
        return _chdlc(frame)
    if frame[:2] == b"\xff\x03":  # address and control fields
        frame = frame[2:]
    if not frame:
        return None
    if frame[0] & 1:  # protocol field compressed to one byte
        protocol, payload = frame[0], frame[1:]
    elif len(frame) >= 2:
        protocol, payload = struct.unpack_from(">H", frame, 0)[0], frame[2:]
    else:
        return None
    ethertype = _PPP_PROTOCOLS.get(protocol)
    return _ethernet(ethertype, payload) if ethertype is not None else None


def _chdlc(frame: bytes) -> bytes | None:
    return _ZERO_MACS + frame[2:] if len(frame) >= 4 else None


def _nflog(frame: bytes) -> bytes | None:
    """NFLOG: a 4-byte header, then type-length-value attributes; type 9 carries the packet."""
    if len(frame) < 4:
        return None
    ethertype = _IPV4 if frame[0] == 2 else _IPV6 if frame[0] == 10 else None
    offset, end = 4, len(frame)
    while offset + 4 <= end:
        length, kind = struct.unpack_from("<HH", frame, offset)
        if length < 4:
            return None
        if kind & 0x7FFF == 9:
            payload = frame[offset + 4 : offset + length]
            ethertype = ethertype or _ip_version(payload)
            return _ethernet(ethertype, payload) if ethertype is not None else None
        offset += (length + 3) & ~3
    return None


def _ppi(frame: bytes) -> bytes | None:
    """PPI: a header naming the link type of the frame it wraps."""
    if len(frame) < 8:
        return None
    length, inner = struct.unpack_from("<HI", frame, 2)
    if length < 8:
        return None
    body = frame[length:]
    if inner == 1:
        return fix_ethernet(body) if len(body) >= 14 else None
    convert = converter(inner)
    return convert(body) if convert is not None else None


#: ERF record types (wiretap/erf_record.h, and Endace's ERF specification) by how their payload starts:
#: Ethernet after two bytes of offset and padding; Packet over SONET in HDLC framing, some after a
#: four-byte multichannel header; IPv4 or IPv6 at once. Other types (ATM, InfiniBand, metadata,
#: padding) carry no IP packet derisk meters.
_ERF_ETHERNET: Final = frozenset({2, 11, 16, 20})
_ERF_POS: Final = frozenset({1, 10, 15, 19})
_ERF_MC_HDLC: Final = frozenset({5, 17})
_ERF_IP: Final = frozenset({22, 23})


def _erf(frame: bytes) -> bytes | None:
    """Endace ERF (link type 197): a 16-byte record header, extension headers while the type's top
    bit (then each extension's) says another follows, then the record type's payload."""
    if len(frame) < 16:
        return None
    kind = frame[8]
    offset, more = 16, bool(kind & 0x80)
    while more:
        if len(frame) < offset + 8:
            return None
        more = bool(frame[offset] & 0x80)
        offset += 8
    kind &= 0x7F
    body = frame[offset:]
    if kind in _ERF_ETHERNET:
        return fix_ethernet(body[2:]) if len(body) >= 16 else None
    if kind in _ERF_IP:
        return _raw(body)
    if kind in _ERF_MC_HDLC:
        body = body[4:]
    if kind in _ERF_POS or kind in _ERF_MC_HDLC:
        return _ppp(body) if len(body) >= 4 else None
    return None


def _carried(found: tuple[int, bytes] | None) -> bytes | None:
    return _ethernet(*found) if found is not None else None


def _pktap(frame: bytes) -> bytes | None:
    found = wrapped.pktap(frame)
    if found is None or found[0] in (149, 258):
        return None
    convert = to_ethernet(found[0])
    return convert(found[1]) if convert is not None else None


_CONVERTERS: Final[dict[int, Frame]] = {
    9: _ppp,
    14: _raw,
    105: lambda frame: _carried(wrapped.ieee80211(frame)),
    127: lambda frame: _carried(wrapped.radiotap(frame)),
    149: _pktap,
    258: _pktap,
    108: _loop,
    192: _ppi,
    197: _erf,
    239: _nflog,
    276: _sll2,
}


def converter(linktype: int) -> Frame | None:
    """The function that turns one frame of ``linktype`` into an Ethernet frame, or None if there is none.

    Frames it cannot use (not IP, too short) come back as None and are left out.
    """
    if linktype == 1:
        return fix_ethernet
    if linktype in NATIVE:
        return None
    return _CONVERTERS.get(linktype)


_NATIVE_TO_ETHERNET: Final[dict[int, Frame]] = {
    0: _null,
    1: fix_ethernet,
    12: _raw,
    50: _ppp,
    104: _chdlc,
    101: _raw,
    113: _sll,
    228: _raw,
    229: _raw,
}


def to_ethernet(linktype: int) -> Frame | None:
    """Like :func:`converter`, for every supported link type: used when one pcapng file mixes link types."""
    return _NATIVE_TO_ETHERNET.get(linktype) or _CONVERTERS.get(linktype)


def supported(linktype: int) -> bool:
    """Whether derisk can meter captures of this link type (as they are or converted)."""
    return linktype in NATIVE or linktype in _CONVERTERS


def unusable(_frame: bytes) -> None:
    """A converter for frames of a second link type that the output's link type cannot carry."""
    return None
