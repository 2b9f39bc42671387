"""What the traffic generator writes, and its own record of what it wrote.

A :class:`Conversation` describes one flow as a test or the demo wants it: who talks to whom, when,
over which transport, which application data (TLS ClientHello with SNI, HTTP request, DNS lookup)
and how many payload bytes go each way. :func:`derisk.gen.packets.write_capture` turns conversations
into packets and returns a :class:`Ledger` computed from those packets alone (IP total lengths,
packet counts, first and last packet time), never from anything derisk reads back. Golden tests
compare derisk's output with this ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Transport = Literal["tcp", "udp", "icmp"]
Direction = Literal["c2s", "s2c"]
DnsType = Literal["A", "AAAA"]

#: IP protocol numbers as NFStream and the flow table report them (ICMP differs for IPv6).
PROTOCOL_NUMBERS: dict[tuple[Transport, int], int] = {
    ("tcp", 4): 6,
    ("tcp", 6): 6,
    ("udp", 4): 17,
    ("udp", 6): 17,
    ("icmp", 4): 1,
    ("icmp", 6): 58,
}


@dataclass(frozen=True)
class Exchange:
    """Application payload sent one way; TCP splits it into segments, UDP and ICMP send one datagram."""

    direction: Direction
    size: int
    #: Seconds between the previous packet of the conversation and the first packet of this one.
    gap: float = 0.005


@dataclass(frozen=True)
class TlsHello:
    """A TLS ClientHello the client sends first; nDPI reads ``sni`` as the requested server name."""

    sni: str
    alpn: tuple[str, ...] = ("h2", "http/1.1")


@dataclass(frozen=True)
class HttpRequest:
    """A plain HTTP/1.1 request the client sends first; the server answers ``200 OK``."""

    host: str
    user_agent: str | None = None
    path: str = "/"
    method: str = "GET"
    response_body: int = 512


@dataclass(frozen=True)
class DnsLookup:
    """One DNS query and its response; ``answers`` are the A or AAAA records returned."""

    name: str
    qtype: DnsType = "A"
    answers: tuple[str, ...] = ()
    ttl: int = 300


@dataclass(frozen=True)
class Conversation:
    """One flow: a 5-tuple, a start time and what is said in it.

    ``start`` must be timezone-aware. For TCP the generator adds a three-way handshake before and a
    FIN exchange after ``exchanges``; the TLS ClientHello or HTTP request (if any) is the first
    client payload and the server's answer to it the first server payload. A DNS lookup is a query
    and a response; further ``exchanges`` follow as plain datagrams. ICMP exchanges are echo
    requests (client to server) and echo replies (server to client).
    """

    transport: Transport
    client_ip: str
    server_ip: str
    start: datetime
    client_port: int = 0
    server_port: int = 0
    exchanges: tuple[Exchange, ...] = ()
    tls: TlsHello | None = None
    http: HttpRequest | None = None
    dns: DnsLookup | None = None
    label: str = ""

    def expected_server_name(self) -> tuple[str | None, str | None]:
        """The server name and its source that a reader should report from this flow itself."""
        if self.tls is not None:
            return self.tls.sni, "sni"
        if self.http is not None:
            return self.http.host, "http-host"
        return None, None


@dataclass
class LedgerEntry:
    """What the generator wrote for one conversation, counted from its own packets."""

    index: int
    label: str
    protocol: int
    client_ip: str
    client_port: int
    server_ip: str
    server_port: int
    bytes_c2s: int = 0
    bytes_s2c: int = 0
    packets_c2s: int = 0
    packets_s2c: int = 0
    #: Microseconds since the epoch, UTC.
    first_us: int = 0
    last_us: int = 0
    server_name: str | None = None
    server_name_source: str | None = None
    user_agent: str | None = None
    dns_query: str | None = None
    dns_answers: tuple[str, ...] = ()

    def key(self) -> tuple[str, int, str, int, int]:
        """The 5-tuple, client first: how a flow reader's ``src``/``dst`` should come out."""
        return (self.client_ip, self.client_port, self.server_ip, self.server_port, self.protocol)


@dataclass
class Ledger:
    """The generator's independent record of a capture it wrote."""

    entries: list[LedgerEntry] = field(default_factory=list)
    packets: int = 0
    #: Sum over all packets of the length written to the file (may be less than on the wire).
    captured_bytes: int = 0

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def by_key(self) -> dict[tuple[str, int, str, int, int], LedgerEntry]:
        return {entry.key(): entry for entry in self.entries}

    def dns_answers(self) -> dict[str, list[tuple[int, str]]]:
        """Answered address -> [(time of the answer in µs, queried name)], in time order."""
        mapping: dict[str, list[tuple[int, str]]] = {}
        for entry in sorted(self.entries, key=lambda e: e.last_us):
            if entry.dns_query is None:
                continue
            for address in entry.dns_answers:
                mapping.setdefault(address, []).append((entry.last_us, entry.dns_query))
        return mapping
