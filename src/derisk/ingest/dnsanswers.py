"""Server names from DNS answers seen in the same capture.

A flow without TLS SNI or HTTP Host still gets a server name when a DNS response in the same input
resolved its server address: the name the client asked for (the question, not a CNAME target it was
sent through) is the name the client meant to reach. DNS messages are decoded with dpkt; this module
never parses packets by hand. It knows nothing of NFStream: :mod:`derisk.ingest.pcap` feeds it the IP
datagrams of port-53 traffic.
"""

from __future__ import annotations

import bisect
import ipaddress
import logging
import struct
from dataclasses import dataclass, field

import dpkt  # type: ignore[import-untyped]

from derisk.safetext import bound

log = logging.getLogger(__name__)

#: Answers kept per address: enough for a CDN address that many names share, bounded whatever the
#: input (a DNS tunnel sends thousands of names, usually without addresses in the answers).
MAX_NAMES_PER_ADDRESS = 64

_A = 1
_AAAA = 28


@dataclass(frozen=True)
class DnsMessage:
    """What matters of one DNS message: its question name and, for a response, its A/AAAA answers."""

    query: str
    response: bool
    answers: tuple[tuple[str, str], ...] = ()


def decode_datagram(ip_version: int, datagram: bytes) -> DnsMessage | None:
    """The DNS message carried in an IP datagram (UDP, or TCP with its length prefix), if any.

    Truncated or malformed messages give ``None``; answers other than A/AAAA are left out. The
    answers are paired with the question name, not the CNAME target they were reached through.
    """
    try:
        packet = dpkt.ip.IP(datagram) if ip_version == 4 else dpkt.ip6.IP6(datagram)
        transport = packet.data
        if isinstance(transport, dpkt.udp.UDP):
            message = dpkt.dns.DNS(transport.data)
        elif isinstance(transport, dpkt.tcp.TCP) and len(transport.data) > 2:
            message = dpkt.dns.DNS(transport.data[2:])  # DNS over TCP: 2-byte length prefix
        else:
            return None
    except (dpkt.dpkt.UnpackError, dpkt.dpkt.NeedData, ValueError, IndexError, struct.error):
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

FlowKey = tuple[str, int, str, int, int, int]


@dataclass
class LongQueries:
    """Full query names of DNS flows whose name is long, keyed by flow 5-tuple and first-packet time."""

    _by_flow: dict[FlowKey, str] = field(default_factory=dict)
    dropped: int = 0

    def __len__(self) -> int:
        return len(self._by_flow)

    def add(self, key: FlowKey, name: str) -> None:
        if len(name) < LONG_QUERY:
            return
        if len(self._by_flow) >= MAX_LONG_QUERIES:
            self.dropped += 1
            return
        self._by_flow[key] = bound(name) or ""

    def get(self, key: FlowKey) -> str | None:
        return self._by_flow.get(key)
