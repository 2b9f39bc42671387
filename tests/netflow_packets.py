"""Build NetFlow v5, v9 and IPFIX export datagrams for tests, per RFC 3954 (v9) and RFC 7011 (IPFIX).

A test-fixture generator: the datagrams are what a router sends, byte for byte, so both nfdump's
nfcapd and derisk's collector parse them as they would a router's. Sampling is announced as
routers do: the v5 header's sampling interval, a v9 options record with SAMPLING_INTERVAL (34), an
IPFIX options record with samplingPacketInterval (305) and samplingPacketSpace (306).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass


@dataclass(frozen=True)
class Rec:
    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    packets: int
    octets: int
    first_ms: int  # milliseconds after the exporter's boot (v5, v9) / epoch milliseconds (IPFIX)
    last_ms: int


# v9 field types (RFC 3954 section 8) used by the template.
_V9_FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 4), (1, 4), (22, 4), (21, 4)]
# IPFIX information elements (IANA): the same, with flowStartMilliseconds (152) / flowEndMilliseconds (153).
_IPFIX_FIELDS = [(8, 4), (12, 4), (7, 2), (11, 2), (4, 1), (2, 8), (1, 8), (152, 8), (153, 8)]


def _ip4(text: str) -> bytes:
    return ipaddress.IPv4Address(text).packed


def v5(recs: list[Rec], *, unix_secs: int, uptime_ms: int, sampling: int = 0, seq: int = 0) -> bytes:
    """A v5 datagram; ``sampling`` is the header's 16-bit field (mode in the top 2 bits, interval below)."""
    head = struct.pack("!HHIIIIBBH", 5, len(recs), uptime_ms, unix_secs, 0, seq, 0, 0, sampling)
    body = b"".join(
        _ip4(r.src)
        + _ip4(r.dst)
        + bytes(4)
        + struct.pack(
            "!HHIIIIHHBBBBHHBBH",
            0,
            0,
            r.packets,
            r.octets,
            r.first_ms,
            r.last_ms,
            r.sport,
            r.dport,
            0,
            0,
            r.proto,
            0,
            0,
            0,
            0,
            0,
            0,
        )
        for r in recs
    )
    return head + body


def _v9_record(r: Rec) -> bytes:
    return (
        _ip4(r.src)
        + _ip4(r.dst)
        + struct.pack("!HHBIIII", r.sport, r.dport, r.proto, r.packets, r.octets, r.first_ms, r.last_ms)
    )


def _pad(body: bytes) -> bytes:
    return body + bytes(-len(body) % 4)


def v9(
    recs: list[Rec],
    *,
    unix_secs: int,
    uptime_ms: int,
    source_id: int = 1,
    template: bool = True,
    sampling: int | None = None,
    template_id: int = 256,
    seq: int = 0,
) -> bytes:
    """A v9 datagram: optionally its template (and a sampling options template and record), then data."""
    sets = b""
    count = 0
    if template:
        fields = b"".join(struct.pack("!HH", t, n) for t, n in _V9_FIELDS)
        body = struct.pack("!HH", template_id, len(_V9_FIELDS)) + fields
        sets += struct.pack("!HH", 0, 4 + len(body)) + body
        count += 1
    if sampling is not None:
        # options template 300: scope System (1) of 4 bytes; option SAMPLING_INTERVAL (34) of 4 bytes
        body = struct.pack("!HHH", 300, 4, 4) + struct.pack("!HH", 1, 4) + struct.pack("!HH", 34, 4)
        body = _pad(body)
        sets += struct.pack("!HH", 1, 4 + len(body)) + body
        data = _pad(struct.pack("!II", 0, sampling))
        sets += struct.pack("!HH", 300, 4 + len(data)) + data
        count += 2
    if recs:
        data = _pad(b"".join(_v9_record(r) for r in recs))
        sets += struct.pack("!HH", template_id, 4 + len(data)) + data
        count += len(recs)
    return struct.pack("!HHIIII", 9, count, uptime_ms, unix_secs, seq, source_id) + sets


def ipfix(
    recs: list[Rec],
    *,
    export_secs: int,
    domain: int = 1,
    template: bool = True,
    sampling: int | None = None,
    template_id: int = 256,
    seq: int = 0,
) -> bytes:
    """An IPFIX message: optionally its template (and a sampling options template and record), then data."""
    sets = b""
    if template:
        fields = b"".join(struct.pack("!HH", t, n) for t, n in _IPFIX_FIELDS)
        body = struct.pack("!HH", template_id, len(_IPFIX_FIELDS)) + fields
        sets += struct.pack("!HH", 2, 4 + len(body)) + body
    if sampling is not None:
        # options template 300: scope observationDomainId (149); samplingPacketInterval (305) and
        # samplingPacketSpace (306) of RFC 5477: 1 packet sampled, then ``sampling - 1`` skipped
        body = struct.pack("!HHH", 300, 3, 1) + struct.pack("!HHHHHH", 149, 4, 305, 4, 306, 4)
        sets += struct.pack("!HH", 3, 4 + len(body)) + body
        data = struct.pack("!III", domain, 1, sampling - 1)
        sets += struct.pack("!HH", 300, 4 + len(data)) + data
    if recs:
        data = b"".join(
            _ip4(r.src)
            + _ip4(r.dst)
            + struct.pack("!HHBQQQQ", r.sport, r.dport, r.proto, r.packets, r.octets, r.first_ms, r.last_ms)
            for r in recs
        )
        sets += struct.pack("!HH", template_id, 4 + len(data)) + data
    return struct.pack("!HHIII", 10, 16 + len(sets), export_secs, seq, domain) + sets


#: RFC 5103's enterprise number for reverse information elements.
REVERSE_PEN = 29305
#: A vendor's own element (nProbe's enterprise number and one of its element ids), as exporters add them.
VENDOR_PEN = 35632


@dataclass(frozen=True)
class Biflow:
    rec: Rec
    rev_packets: int
    rev_octets: int
    vendor: int = 0  # a 2-byte vendor-specific value the collector must skip


def _varlen(value: bytes) -> bytes:
    """A variable-length element's value with its length: one byte, or 255 and two bytes (RFC 7011, 7)."""
    return (bytes([len(value)]) if len(value) < 255 else b"\xff" + struct.pack("!H", len(value))) + value


def ipfix_biflow(
    flows: list[Biflow],
    *,
    export_secs: int,
    domain: int = 1,
    template_id: int = 300,
    names: list[bytes] | None = None,
) -> bytes:
    """An IPFIX message with a biflow template (RFC 5103): the standard fields, a vendor-specific
    element, then reverse packetDeltaCount and octetDeltaCount (enterprise bit and number), and data.
    With ``names``, each record also carries a variable-length applicationDescription (94) after
    the vendor element, the record's entry of ``names``."""
    specs = b"".join(struct.pack("!HH", t, n) for t, n in _IPFIX_FIELDS)
    specs += struct.pack("!HHI", 0x8000 | 81, 2, VENDOR_PEN)
    extra = 3
    if names is not None:
        specs += struct.pack("!HH", 94, 0xFFFF)
        extra += 1
    specs += struct.pack("!HHI", 0x8000 | 2, 8, REVERSE_PEN) + struct.pack("!HHI", 0x8000 | 1, 8, REVERSE_PEN)
    body = struct.pack("!HH", template_id, len(_IPFIX_FIELDS) + extra) + specs
    sets = struct.pack("!HH", 2, 4 + len(body)) + body
    data = b"".join(
        _ip4(f.rec.src)
        + _ip4(f.rec.dst)
        + struct.pack(
            "!HHBQQQQ",
            f.rec.sport,
            f.rec.dport,
            f.rec.proto,
            f.rec.packets,
            f.rec.octets,
            f.rec.first_ms,
            f.rec.last_ms,
        )
        + struct.pack("!H", f.vendor)
        + (b"" if names is None else _varlen(names[i]))
        + struct.pack("!QQ", f.rev_packets, f.rev_octets)
        for i, f in enumerate(flows)
    )
    sets += struct.pack("!HH", template_id, 4 + len(data)) + data
    return struct.pack("!HHIII", 10, 16 + len(sets), export_secs, 0, domain) + sets
