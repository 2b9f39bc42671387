"""Server names from DNS answers seen in the same capture.

A flow without TLS SNI or HTTP Host still gets a server name when a DNS response in the same input
resolved its server address: the name the client asked for (the question, not a CNAME target it was
sent through) is the name the client meant to reach. DNS messages are decoded with dpkt; this module
never parses packets by hand. It knows nothing of NFStream: :mod:`derisk.ingest.pcap` feeds it the IP
datagrams of port-53 traffic.
"""

from __future__ import annotations

import bisect
import ctypes
import ipaddress
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dpkt

from derisk.safetext import bound

log = logging.getLogger(__name__)

#: Answers kept per address: enough for a CDN address that many names share, bounded whatever the
#: input (a DNS tunnel sends thousands of names, usually without addresses in the answers).
MAX_NAMES_PER_ADDRESS = 64

_A = 1
_AAAA = 28
_DECODE_ERRORS = (dpkt.dpkt.UnpackError, dpkt.dpkt.NeedData, ValueError, IndexError, struct.error, TypeError)


@dataclass(frozen=True)
class DnsMessage:
    """What matters of one DNS message: its question name and, for a response, its A/AAAA answers."""

    query: str
    response: bool
    answers: tuple[tuple[str, str], ...] = ()


def decode_datagram(ip_version: int, datagram: bytes) -> DnsMessage | None:
    """The DNS message carried in an IP datagram (UDP, or TCP with its length prefix), if any."""
    try:
        packet = dpkt.ip.IP(datagram) if ip_version == 4 else dpkt.ip6.IP6(datagram)
    except _DECODE_ERRORS:
        return None
    return decode_ip(packet)


def decode_ip(packet: Any) -> DnsMessage | None:
    """The DNS message in a dpkt IP or IP6 packet, if any.

    Truncated or malformed messages give ``None``; answers other than A/AAAA are left out. The
    answers are paired with the question name, not the CNAME target they were reached through.
    """
    try:
        transport = packet.data
        if isinstance(transport, dpkt.udp.UDP):
            message = dpkt.dns.DNS(transport.data)
        elif isinstance(transport, dpkt.tcp.TCP) and len(transport.data) > 2:
            message = dpkt.dns.DNS(transport.data[2:])  # DNS over TCP: 2-byte length prefix
        else:
            return None
    except _DECODE_ERRORS:
        return None
    if not message.qd:
        return None
    query = str(message.qd[0].name).rstrip(".")
    if not query:
        return None
    if message.qr != dpkt.dns.DNS_R:
        return DnsMessage(query, response=False)
    pairs: list[tuple[str, str]] = []
    for answer in message.an:
        try:
            if answer.type == _A and len(answer.rdata) == 4:
                pairs.append((query, str(ipaddress.IPv4Address(answer.rdata))))
            elif answer.type == _AAAA and len(answer.rdata) == 16:
                pairs.append((query, str(ipaddress.IPv6Address(answer.rdata))))
        except (AttributeError, ValueError):
            continue
    return DnsMessage(query, response=True, answers=tuple(pairs))


@dataclass
class AnswerMap:
    """Address -> names that DNS answers gave for it, with the time of each answer."""

    _by_address: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._by_address)

    def add(self, time_ms: int, name: str, address: str) -> None:
        entries = self._by_address.setdefault(address, [])
        item = (time_ms, bound(name) or "")
        if item in entries:
            return
        bisect.insort(entries, item)
        if len(entries) > MAX_NAMES_PER_ADDRESS:
            del entries[0]

    def items(self) -> Iterator[tuple[str, list[tuple[int, str]]]]:
        return iter(self._by_address.items())

    def name_for(self, address: str, time_ms: int) -> str | None:
        """The name last answered for ``address`` at or before ``time_ms``; failing that, the first after."""
        entries = self._by_address.get(address)
        if not entries:
            return None
        position = bisect.bisect_right(entries, (time_ms, "\U0010ffff"))
        return entries[position - 1][1] if position > 0 else entries[0][1]


#: Query names at least this long are kept from the DNS pass: nDPI keeps only the last 80 characters
#: of a name, and long names are exactly what DNS tunnels use.
LONG_QUERY = 64
#: At most this many long query names are kept; past it, flows keep nDPI's shortened name.
MAX_LONG_QUERIES = 200_000

FlowKey = tuple[str, int, str, int, int]


@dataclass
class LongQueries:
    """Full query names of DNS flows whose name is long: by 5-tuple (query sender first), with times."""

    _by_flow: dict[FlowKey, list[tuple[int, str]]] = field(default_factory=dict)
    count: int = 0
    dropped: int = 0

    def __len__(self) -> int:
        return self.count

    def add(self, key: FlowKey, time_ms: int, name: str) -> None:
        if len(name) < LONG_QUERY:
            return
        if self.count >= MAX_LONG_QUERIES:
            self.dropped += 1
            return
        self._by_flow.setdefault(key, []).append((time_ms, bound(name) or ""))
        self.count += 1

    def merge(self, other: LongQueries) -> None:
        for key, entries in other._by_flow.items():
            for time_ms, name in entries:
                self.add(key, time_ms, name)
        self.dropped += other.dropped

    def get(self, key: FlowKey, first_ms: int) -> str | None:
        """The first long name queried on ``key`` at or after ``first_ms`` (the flow's first packet)."""
        entries = self._by_flow.get(key)
        if not entries:
            return None
        later = [name for when, name in entries if when >= first_ms]
        return later[0] if later else entries[-1][1]


def note(message: DnsMessage, packet: Any, time_ms: int, answers: AnswerMap, queries: LongQueries) -> None:
    """Record one decoded DNS message: its answers, and the query name of a long query."""
    for name, address in message.answers:
        answers.add(time_ms, name, address)
    if not message.response and len(message.query) >= LONG_QUERY:
        transport = packet.data
        protocol = 17 if isinstance(transport, dpkt.udp.UDP) else 6
        key = (_address(packet.src), transport.sport, _address(packet.dst), transport.dport, protocol)
        queries.add(key, time_ms, message.query)


def _address(packed: bytes) -> str:
    return str(ipaddress.ip_address(packed))


# ---- one libpcap pass over the file: framing check and DNS messages at C speed -------------------


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _PacketHeader(ctypes.Structure):
    _fields_ = [("ts", _Timeval), ("caplen", ctypes.c_uint32), ("len", ctypes.c_uint32)]


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


_HANDLER = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.POINTER(_PacketHeader), ctypes.POINTER(ctypes.c_ubyte)
)

#: Link types whose frames dpkt decodes down to IP, by libpcap DLT number.
_LINK_DECODERS: dict[int, Any] = {
    1: dpkt.ethernet.Ethernet,  # Ethernet (with VLAN tags)
    113: dpkt.sll.SLL,  # Linux cooked capture
    276: dpkt.sll2.SLL2,  # Linux cooked capture v2
    0: dpkt.loopback.Loopback,  # BSD loopback
    108: dpkt.loopback.Loopback,  # OpenBSD loopback
}
_RAW_IP = {12, 14, 101}


def _ip_of(linktype: int, frame: bytes) -> Any:
    if linktype in _RAW_IP:
        try:
            return dpkt.ip.IP(frame)
        except _DECODE_ERRORS:
            return dpkt.ip6.IP6(frame)
    layer = _LINK_DECODERS[linktype](frame)
    while layer is not None and not isinstance(layer, dpkt.ip.IP | dpkt.ip6.IP6):
        layer = getattr(layer, "data", None)
        if isinstance(layer, bytes):
            return None
    return layer


@dataclass
class ScanResult:
    """What one libpcap pass found: DNS answers, long query names, and libpcap's error, if any."""

    answers: AnswerMap
    queries: LongQueries
    dns_packets: int = 0
    error: str | None = None


def _bind(library: str) -> Any:
    lib = ctypes.CDLL(library)
    lib.pcap_open_offline.restype = ctypes.c_void_p
    lib.pcap_open_offline.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p, ctypes.c_int,
                                 ctypes.c_uint32]  # fmt: skip
    lib.pcap_setfilter.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram)]
    lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
    lib.pcap_loop.argtypes = [ctypes.c_void_p, ctypes.c_int, _HANDLER, ctypes.c_void_p]
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_geterr.argtypes = [ctypes.c_void_p]
    lib.pcap_datalink.argtypes = [ctypes.c_void_p]
    lib.pcap_close.argtypes = [ctypes.c_void_p]
    return lib


def scan_capture(library: str, path: Path, bpf: str = "port 53") -> ScanResult:
    """Read every record of ``path`` with libpcap (from ``library``), decoding only ``bpf`` matches.

    libpcap reads and filters in C, so the pass costs little more than reading the file; it also
    reports a truncated or corrupt file, which NFStream's meter silently stops at.
    """
    lib = _bind(library)
    result = ScanResult(AnswerMap(), LongQueries())
    errors = ctypes.create_string_buffer(512)
    handle = lib.pcap_open_offline(os.fsencode(path), errors)
    if not handle:
        result.error = errors.value.decode("utf-8", "replace")
        return result
    try:
        linktype = lib.pcap_datalink(handle)
        decodable = linktype in _LINK_DECODERS or linktype in _RAW_IP
        program = _BpfProgram()
        if decodable and lib.pcap_compile(handle, ctypes.byref(program), bpf.encode(), 1, 0xFFFFFFFF) == 0:
            lib.pcap_setfilter(handle, ctypes.byref(program))
            lib.pcap_freecode(ctypes.byref(program))
        else:  # still read every record (the framing check), but decode none
            log.info("%s: link type %d: DNS answers are not read from it", path, linktype)
            decodable = False

        def handle_packet(_user: Any, header: Any, data: Any) -> None:
            if not decodable:
                return
            head = header.contents
            result.dns_packets += 1
            try:
                packet = _ip_of(linktype, ctypes.string_at(data, head.caplen))
            except (*_DECODE_ERRORS, KeyError):
                return
            message = decode_ip(packet) if packet is not None else None
            if message is not None:
                time_ms = head.ts.tv_sec * 1000 + head.ts.tv_usec // 1000
                note(message, packet, time_ms, result.answers, result.queries)

        status = lib.pcap_loop(handle, -1, _HANDLER(handle_packet), None)
        if status == -1:
            result.error = lib.pcap_geterr(handle).decode("utf-8", "replace")
    finally:
        lib.pcap_close(handle)
    return result
