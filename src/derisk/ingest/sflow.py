"""sFlow version 5 datagrams: sampled packets into estimated flow records.

Switches export sFlow rather than NetFlow: every N-th packet's first bytes (a *flow sample* with its
sampling rate), not flows. Each flow sample here becomes one record of the collector's
:data:`~derisk.ingest.netflow_pairs.RECORD_SCHEMA`, counting ``sampling_rate`` packets of the sampled
packet's IP length; :func:`to_table` sums the samples of one connection direction (exporter, 5-tuple)
into one record, which the pairer then joins with the other direction as for NetFlow. Volumes and
times are estimates: a connection is seen only if one of its packets was sampled, and its first and
last time are those of the datagrams that carried its samples (sFlow datagrams carry the agent's
uptime, not a clock; the time a datagram was received, or recorded in a capture, stands for it).

Layout (sflow.org, "sFlow Version 5", July 2004): a datagram header (version 5, agent address, sub
agent, sequence, uptime, sample count), then samples tagged (enterprise << 12 | format), each with
its length: flow samples (format 1, and expanded format 3) hold flow records, of which the sampled
packet header (1: the packet's first bytes with their link protocol), sampled IPv4 (3) and sampled
IPv6 (4) give the 5-tuple; counter samples and other enterprises' records are skipped by length.
The sampled header is decoded with dpkt (Ethernet with VLAN tags, or bare IPv4/IPv6).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

from derisk.ingest.netflow_frames import Malformed
from derisk.ingest.netflow_pairs import RECORD_SCHEMA

#: A datagram starts with version 5 as a 32-bit number (a NetFlow v5 datagram with a 16-bit 5).
MAGIC: Final = b"\x00\x00\x00\x05"
_PORTED: Final = (6, 17, 132)
#: Sampled-header protocols (sFlow's header_protocol): Ethernet, and IP without a link header.
_ETHERNET, _IPV4, _IPV6 = 1, 11, 12
#: Samples kept per datagram and records per sample (a datagram is at most 64 KiB anyway).
_MAX_ITEMS: Final = 4_096


@dataclass(frozen=True)
class Sample:
    """One sampled packet: its 5-tuple, IP length, the exporter's sampling rate and when it was seen."""

    time_us: int
    src: str
    sport: int | None
    dst: str
    dport: int | None
    protocol: int
    length: int
    rate: int
    exporter: str


class _Reader:
    def __init__(self, data: bytes, start: int = 0, end: int | None = None) -> None:
        self.data, self.at, self.end = data, start, len(data) if end is None else end

    def u32(self) -> int:
        if self.at + 4 > self.end:
            raise Malformed("sFlow datagram shorter than its fields say")
        value: int = struct.unpack_from("!I", self.data, self.at)[0]
        self.at += 4
        return value

    def opaque(self) -> tuple[int, int]:
        """(start, end) of a length-prefixed item; the reader moves past it and its padding."""
        length = self.u32()
        start, end = self.at, self.at + length
        if end > self.end:
            raise Malformed("sFlow item longer than its datagram")
        self.at = end + (-length % 4)
        return start, end

    def address(self) -> str:
        kind = self.u32()
        size = 4 if kind == 1 else 16 if kind == 2 else 0
        if self.at + size > self.end:
            raise Malformed("sFlow address cut short")
        raw = self.data[self.at : self.at + size]
        self.at += size
        return str(ipaddress.ip_address(raw)) if size else "unknown"


def samples(data: bytes, received_us: int, exporter: str) -> tuple[list[Sample], str]:
    """The sampled packets of one sFlow v5 datagram, and the agent's address; :class:`Malformed` if the
    datagram is not one."""
    head = _Reader(data)
    if head.u32() != 5:
        raise Malformed("not an sFlow version 5 datagram")
    agent = head.address()
    head.u32(), head.u32(), head.u32()  # sub-agent, sequence number, uptime
    count = head.u32()
    if count > _MAX_ITEMS:
        raise Malformed(f"{count:,} samples in one datagram")
    name = f"{exporter} sflow agent {agent}"
    out: list[Sample] = []
    for _ in range(count):
        tag = head.u32()
        start, end = head.opaque()
        if tag >> 12 == 0 and tag & 0xFFF in (1, 3):
            found = _flow_sample(
                _Reader(data, start, end), expanded=tag & 0xFFF == 3, time_us=received_us, name=name
            )
            if found is not None:
                out.append(found)
    return out, agent


def _flow_sample(sample: _Reader, *, expanded: bool, time_us: int, name: str) -> Sample | None:
    sample.u32()  # sequence number
    if expanded:
        sample.u32(), sample.u32()  # source id type, index
    else:
        sample.u32()  # source id
    rate = max(sample.u32(), 1)
    sample.u32(), sample.u32()  # sample pool, drops
    for _ in range(4 if expanded else 2):  # input and output interfaces
        sample.u32()
    records = sample.u32()
    if records > _MAX_ITEMS:
        raise Malformed(f"{records:,} records in one flow sample")
    from_header: Sample | None = None
    for _ in range(records):
        tag = sample.u32()
        start, end = sample.opaque()
        if tag >> 12:
            continue  # another enterprise's record
        kind = tag & 0xFFF
        if kind in (3, 4):  # sampled IPv4 / IPv6: the 5-tuple as the agent decoded it
            return _sampled_ip(sample.data, start, end, six=kind == 4, rate=rate, time_us=time_us, name=name)
        if kind == 1 and from_header is None:
            from_header = _sampled_header(sample.data, start, end, rate=rate, time_us=time_us, name=name)
    return from_header


def _sampled_ip(
    data: bytes, start: int, end: int, *, six: bool, rate: int, time_us: int, name: str
) -> Sample:
    size = 16 if six else 4
    if end - start < 8 + 2 * size + 16:
        raise Malformed("sampled IP record cut short")
    length, protocol = struct.unpack_from("!II", data, start)
    at = start + 8
    src = str(ipaddress.ip_address(data[at : at + size]))
    dst = str(ipaddress.ip_address(data[at + size : at + 2 * size]))
    sport, dport = struct.unpack_from("!II", data, at + 2 * size)
    ported = protocol in _PORTED
    return Sample(
        time_us,
        src,
        sport if ported else None,
        dst,
        dport if ported else None,
        protocol & 0xFF,
        length,
        rate,
        name,
    )


def _sampled_header(
    data: bytes, start: int, end: int, *, rate: int, time_us: int, name: str
) -> Sample | None:
    import dpkt

    record = _Reader(data, start, end)
    protocol = record.u32()
    record.u32(), record.u32()  # the frame's length on the wire, bytes stripped from it
    begin, stop = record.opaque()
    header = data[begin:stop]
    try:
        if protocol == _ETHERNET:
            packet = dpkt.ethernet.Ethernet(header).data
        elif protocol == _IPV4:
            packet = dpkt.ip.IP(header)
        elif protocol == _IPV6:
            packet = dpkt.ip6.IP6(header)
        else:
            return None
    except (dpkt.UnpackError, struct.error, ValueError):
        return None  # a header too short for its own layers: the sample is left out
    if isinstance(packet, dpkt.ip.IP):
        length, proto, src, dst = packet.len, packet.p, packet.src, packet.dst
    elif isinstance(packet, dpkt.ip6.IP6):
        length, proto, src, dst = packet.plen + 40, packet.nxt, packet.src, packet.dst
    else:
        return None  # not IP (ARP, an unknown tag)
    inner = packet.data
    sport = dport = None
    if proto in _PORTED and isinstance(inner, (dpkt.tcp.TCP, dpkt.udp.UDP)):
        sport, dport = inner.sport, inner.dport
    elif proto in _PORTED and isinstance(inner, bytes) and len(inner) >= 4:
        sport, dport = struct.unpack_from("!HH", inner)
    return Sample(
        time_us,
        str(ipaddress.ip_address(src)),
        sport,
        str(ipaddress.ip_address(dst)),
        dport,
        proto,
        length,
        rate,
        name,
    )


def to_table(found: list[Sample]) -> pa.Table:
    """One record per exporter and connection direction: packets and IP bytes summed, each sample
    counting ``rate`` packets of its length; first and last time of the samples."""
    if not found:
        return RECORD_SCHEMA.empty_table()
    table = pa.table(
        {
            "first_us": pa.array([s.time_us for s in found], pa.int64()),
            "src_ip": pa.array([s.src for s in found], pa.string()),
            "src_port": pa.array([s.sport for s in found], pa.int32()),
            "dst_ip": pa.array([s.dst for s in found], pa.string()),
            "dst_port": pa.array([s.dport for s in found], pa.int32()),
            "protocol": pa.array([s.protocol for s in found], pa.int16()),
            "packets": pa.array([s.rate for s in found], pa.int64()),
            "bytes": pa.array([s.rate * s.length for s in found], pa.int64()),
            "source_ref": pa.array([s.exporter for s in found], pa.string()),
        }
    )
    keys = ["source_ref", "src_ip", "src_port", "dst_ip", "dst_port", "protocol"]
    grouped = table.group_by(keys, use_threads=False).aggregate(
        [("first_us", "min"), ("first_us", "max"), ("packets", "sum"), ("bytes", "sum")]
    )
    zeros = pa.array([0] * grouped.num_rows, pa.int64())
    columns = {
        "first_us": grouped.column("first_us_min"),
        "last_us": grouped.column("first_us_max"),
        "src_ip": grouped.column("src_ip"),
        "src_port": grouped.column("src_port"),
        "dst_ip": grouped.column("dst_ip"),
        "dst_port": grouped.column("dst_port"),
        "protocol": grouped.column("protocol"),
        "packets": grouped.column("packets_sum"),
        "bytes": grouped.column("bytes_sum"),
        "rev_packets": zeros,
        "rev_bytes": zeros,
        "source_ref": grouped.column("source_ref"),
    }
    out = pa.Table.from_pydict(columns).cast(RECORD_SCHEMA)
    return out.sort_by([("first_us", "ascending")]) if out.num_rows > 1 else out
