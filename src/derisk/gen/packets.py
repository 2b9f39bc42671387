"""Write conversations as a pcap or pcapng file with scapy, and count what was written.

Deterministic: the same conversations give a byte-identical file (timestamps come from the
conversations, sequence numbers, IP ids and payload bytes are derived from the conversation's
position, nothing reads the clock or an unseeded random source). The returned :class:`Ledger` is
computed from the packets as they are written: IP-layer bytes are the length of each packet's IP
datagram (the IPv4 total length, or 40 + the IPv6 payload length), which stays the wire figure when
``snaplen`` cuts what is stored in the file.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import dpkt
import scapy.layers.tls.extensions as _tls_extensions
import scapy.layers.tls.handshake as _tls_handshake
import scapy.layers.tls.record as _tls_record
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.http import HTTP, HTTPRequest, HTTPResponse
from scapy.packet import Packet

from derisk.gen.model import (
    PROTOCOL_NUMBERS,
    Conversation,
    Direction,
    Ledger,
    LedgerEntry,
)

CaptureFormat = Literal["pcap", "pcapng"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ETHER_HEADER = 14
_MSS = 1400
_TLS_RECORD = 16_000
_CLIENT_MAC = bytes.fromhex("02005e100001")
_SERVER_MAC = bytes.fromhex("02005e1000fe")
_TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}
_SEGMENT_GAP_US = 150
_HANDSHAKE_RTT_US = 12_000
# scapy's TLS layer is untyped: reach it through Any.
_EXT: Any = _tls_extensions
_HANDSHAKE: Any = _tls_handshake
_RECORD: Any = _tls_record
_FILL = hashlib.shake_256(b"derisk traffic generator filler").digest(1 << 16)


@dataclass
class _Written:
    time_us: int
    conversation: int
    order: int
    frame: bytes
    direction: Direction


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of a timezone-aware datetime, exactly."""
    if moment.tzinfo is None:
        raise ValueError("conversation start times must be timezone-aware (UTC)")
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _fill(size: int, offset: int) -> bytes:
    """``size`` deterministic filler bytes, starting ``offset`` bytes into the filler."""
    out = bytearray()
    start = offset % len(_FILL)
    while len(out) < size:
        chunk = _FILL[start : start + size - len(out)]
        out += chunk
        start = 0
    return bytes(out)


@lru_cache(maxsize=4096)
def _client_hello(sni: str, alpn: tuple[str, ...]) -> bytes:
    extensions: list[Packet] = [
        _EXT.TLS_Ext_ServerName(
            servernames=[_EXT.ServerName(servername=sni.encode("utf-8", "surrogateescape"))]
        ),
        _EXT.TLS_Ext_SupportedGroups(groups=[29, 23, 24]),
        _EXT.TLS_Ext_SupportedVersion_CH(versions=[0x0304, 0x0303]),
    ]
    if alpn:
        extensions.append(_EXT.TLS_Ext_ALPN(protocols=[_EXT.ProtocolName(protocol=p.encode()) for p in alpn]))
    random = hashlib.sha256(sni.encode("utf-8", "surrogateescape")).digest()
    hello = _HANDSHAKE.TLSClientHello(
        version=0x0303,
        gmt_unix_time=int.from_bytes(random[:4], "big"),
        random_bytes=random[4:],
        sid=b"",
        ciphers=[0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030],
        comp=[0],
        ext=extensions,
    )
    return bytes(_RECORD.TLS(type=22, version=0x0301, msg=[hello]))


@lru_cache(maxsize=1)
def _server_hello() -> bytes:
    hello = _HANDSHAKE.TLSServerHello(
        version=0x0303, gmt_unix_time=0, random_bytes=_FILL[:28], sid=b"", cipher=0xC02F, comp=0
    )
    return bytes(_RECORD.TLS(type=22, version=0x0303, msg=[hello]))


def _tls_application_data(size: int, offset: int) -> bytes:
    """``size`` bytes of application data wrapped in TLS records (headers on top)."""
    out = bytearray()
    done = 0
    while done < size:
        part = min(_TLS_RECORD, size - done)
        out += bytes(dpkt.ssl.TLSRecord(type=23, version=0x0303, data=_fill(part, offset + done)))
        done += part
    return bytes(out)


def _dns_message(conversation: Conversation, index: int, response: bool) -> bytes:
    lookup = conversation.dns
    assert lookup is not None
    question = DNSQR(qname=lookup.name, qtype=lookup.qtype)
    if not response:
        return bytes(DNS(id=index & 0xFFFF, rd=1, qd=[question]))
    answers = [DNSRR(rrname=lookup.name, type=lookup.qtype, ttl=lookup.ttl, rdata=a) for a in lookup.answers]
    return bytes(
        DNS(id=index & 0xFFFF, qr=1, rd=1, ra=1, rcode=0 if answers else 3, qd=[question], an=answers)
    )


class _Builder:
    """Builds the frames of one conversation with its own sequence numbers and IP ids.

    Ethernet, IP and transport headers (with their checksums) are built with dpkt, which is some
    thirty times faster than scapy at it; application payloads come from scapy's layers above.
    """

    def __init__(self, conversation: Conversation, index: int) -> None:
        self.c = conversation
        self.index = index
        client, server = (
            ipaddress.ip_address(conversation.client_ip),
            ipaddress.ip_address(conversation.server_ip),
        )
        if client.version != server.version:
            raise ValueError(f"conversation {index}: client and server must both be IPv4 or both IPv6")
        self.v6 = client.version == 6
        self.addresses = {"c2s": (client.packed, server.packed), "s2c": (server.packed, client.packed)}
        seed = hashlib.sha256(f"{index}".encode()).digest()
        self.seq = {"c2s": int.from_bytes(seed[:4], "big"), "s2c": int.from_bytes(seed[4:8], "big")}
        self.ip_id = int.from_bytes(seed[8:10], "big")

    def _frame(self, direction: Direction, protocol: int, transport: Any) -> bytes:
        src, dst = self.addresses[direction]
        macs = (_CLIENT_MAC, _SERVER_MAC) if direction == "c2s" else (_SERVER_MAC, _CLIENT_MAC)
        if self.v6:
            ip: Any = dpkt.ip6.IP6(
                src=src, dst=dst, nxt=protocol, hlim=64, data=transport, plen=len(transport)
            )
            ether_type = dpkt.ethernet.ETH_TYPE_IP6
        else:
            self.ip_id = (self.ip_id + 1) & 0xFFFF
            ip = dpkt.ip.IP(src=src, dst=dst, p=protocol, ttl=64, id=self.ip_id, df=1, data=transport)
            ether_type = dpkt.ethernet.ETH_TYPE_IP
        return bytes(dpkt.ethernet.Ethernet(src=macs[0], dst=macs[1], type=ether_type, data=ip))

    def _ports(self, direction: Direction) -> tuple[int, int]:
        if direction == "c2s":
            return self.c.client_port, self.c.server_port
        return self.c.server_port, self.c.client_port

    def tcp(self, direction: Direction, flags: str, payload: bytes = b"") -> bytes:
        other: Direction = "s2c" if direction == "c2s" else "c2s"
        sport, dport = self._ports(direction)
        bits = sum(_TCP_FLAGS[f] for f in flags)
        ack = self.seq[other] if "A" in flags else 0
        segment = dpkt.tcp.TCP(
            sport=sport, dport=dport, seq=self.seq[direction], ack=ack, flags=bits, win=64240, data=payload
        )
        step = len(payload) + (1 if ("S" in flags or "F" in flags) else 0)
        self.seq[direction] = (self.seq[direction] + step) & 0xFFFFFFFF
        return self._frame(direction, 6, segment)

    def udp(self, direction: Direction, payload: bytes) -> bytes:
        sport, dport = self._ports(direction)
        datagram = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
        datagram.ulen = len(datagram)
        return self._frame(direction, 17, datagram)

    def icmp(self, direction: Direction, payload: bytes, sequence: int) -> bytes:
        ident = self.index & 0xFFFF
        if self.v6:
            echo6 = dpkt.icmp6.ICMP6.Echo(id=ident, seq=sequence, data=payload)
            kind = 128 if direction == "c2s" else 129
            return self._frame(direction, 58, dpkt.icmp6.ICMP6(type=kind, code=0, data=echo6))
        echo = dpkt.icmp.ICMP.Echo(id=ident, seq=sequence, data=payload)
        kind = 8 if direction == "c2s" else 0
        return self._frame(direction, 1, dpkt.icmp.ICMP(type=kind, code=0, data=echo))


def _frames(conversation: Conversation, index: int) -> list[tuple[int, Direction, bytes]]:
    """(time in µs, direction, Ethernet frame) for every packet of one conversation."""
    b = _Builder(conversation, index)
    now = to_us(conversation.start)
    out: list[tuple[int, Direction, bytes]] = []
    first = True

    def emit(gap_us: int, direction: Direction, frame: bytes) -> None:
        nonlocal now, first
        now += 0 if first else gap_us
        first = False
        out.append((now, direction, frame))

    def gap(seconds: float) -> int:
        return max(1, round(seconds * 1_000_000))

    if conversation.transport == "tcp":
        emit(0, "c2s", b.tcp("c2s", "S"))
        emit(_HANDSHAKE_RTT_US, "s2c", b.tcp("s2c", "SA"))
        emit(_SEGMENT_GAP_US, "c2s", b.tcp("c2s", "A"))
        payloads: list[tuple[float, Direction, bytes]] = []
        if conversation.tls is not None:
            hello = _client_hello(conversation.tls.sni, conversation.tls.alpn)
            payloads += [(0.001, "c2s", hello), (0.012, "s2c", _server_hello())]
        elif conversation.http is not None:
            payloads += _http_payloads(conversation)
        tls = conversation.tls is not None
        for i, exchange in enumerate(conversation.exchanges):
            data = (
                _tls_application_data(exchange.size, index * 7919 + i)
                if tls
                else _fill(exchange.size, index * 7919 + i)
            )
            payloads.append((exchange.gap, exchange.direction, data))
        for seconds, direction, data in payloads:
            other: Direction = "s2c" if direction == "c2s" else "c2s"
            for n, start in enumerate(range(0, len(data), _MSS)):
                chunk = data[start : start + _MSS]
                emit(gap(seconds) if n == 0 else _SEGMENT_GAP_US, direction, b.tcp(direction, "PA", chunk))
            emit(_SEGMENT_GAP_US, other, b.tcp(other, "A"))
        emit(gap(0.002), "c2s", b.tcp("c2s", "FA"))
        emit(_HANDSHAKE_RTT_US, "s2c", b.tcp("s2c", "FA"))
        emit(_SEGMENT_GAP_US, "c2s", b.tcp("c2s", "A"))
    elif conversation.transport == "udp":
        if conversation.dns is not None:
            emit(0, "c2s", b.udp("c2s", _dns_message(conversation, index, response=False)))
            emit(gap(0.004), "s2c", b.udp("s2c", _dns_message(conversation, index, response=True)))
        for i, exchange in enumerate(conversation.exchanges):
            data = _fill(exchange.size, index * 7919 + i)
            emit(gap(exchange.gap), exchange.direction, b.udp(exchange.direction, data))
    else:
        for i, exchange in enumerate(conversation.exchanges):
            data = _fill(exchange.size, index * 7919 + i)
            emit(gap(exchange.gap), exchange.direction, b.icmp(exchange.direction, data, i // 2 + 1))
    if not out:
        raise ValueError(f"conversation {index} ({conversation.label or 'unlabelled'}) has no packets")
    return out


def _http_payloads(conversation: Conversation) -> list[tuple[float, Direction, bytes]]:
    http = conversation.http
    assert http is not None
    fields: dict[str, Any] = {
        "Method": http.method.encode(),
        "Path": http.path.encode(),
        "Http_Version": b"HTTP/1.1",
        "Host": http.host.encode("utf-8", "surrogateescape"),
        "Accept": b"*/*",
    }
    if http.user_agent is not None:
        fields["User_Agent"] = http.user_agent.encode("utf-8", "surrogateescape")
    request = bytes(HTTP() / HTTPRequest(**fields))
    body = _fill(http.response_body, conversation.client_port)
    response = bytes(
        HTTP()
        / HTTPResponse(
            Http_Version=b"HTTP/1.1",
            Status_Code=b"200",
            Reason_Phrase=b"OK",
            Content_Type=b"application/octet-stream",
            Content_Length=str(len(body)).encode(),
            # scapy would stamp the current time here: the conversation's own start keeps it deterministic
            Date=format_datetime(conversation.start.astimezone(UTC), usegmt=True).encode(),
        )
    )
    return [(0.001, "c2s", request), (0.015, "s2c", response + body)]


def _entry(conversation: Conversation, index: int) -> LedgerEntry:
    version = ipaddress.ip_address(conversation.client_ip).version
    name, source = conversation.expected_server_name()
    dns = conversation.dns
    return LedgerEntry(
        index=index,
        label=conversation.label,
        protocol=PROTOCOL_NUMBERS[(conversation.transport, version)],
        client_ip=str(ipaddress.ip_address(conversation.client_ip)),
        client_port=conversation.client_port if conversation.transport != "icmp" else 0,
        server_ip=str(ipaddress.ip_address(conversation.server_ip)),
        server_port=conversation.server_port if conversation.transport != "icmp" else 0,
        server_name=name,
        server_name_source=source,
        user_agent=conversation.http.user_agent if conversation.http is not None else None,
        dns_query=dns.name if dns is not None else None,
        dns_answers=tuple(str(ipaddress.ip_address(a)) for a in dns.answers) if dns is not None else (),
    )


def write_capture(
    conversations: Iterable[Conversation],
    path: Path,
    *,
    fmt: CaptureFormat = "pcap",
    snaplen: int | None = None,
) -> Ledger:
    """Write ``conversations`` to ``path`` as Ethernet frames and return the ledger of what was written.

    With ``snaplen`` every frame is stored cut to that many bytes while its original length is kept
    in the record header, as ``tcpdump -s`` does; the ledger still counts wire bytes.
    """
    from scapy.utils import PcapNgWriter, PcapWriter  # heavy import, only when writing

    if fmt not in ("pcap", "pcapng"):
        raise ValueError(f"unknown capture format {fmt!r} (pcap or pcapng)")
    if snaplen is not None and snaplen < _ETHER_HEADER:
        raise ValueError(f"snaplen {snaplen} is shorter than an Ethernet header")
    ledger = Ledger()
    written: list[_Written] = []
    for index, conversation in enumerate(conversations):
        entry = _entry(conversation, index)
        for order, (time_us, direction, frame) in enumerate(_frames(conversation, index)):
            written.append(_Written(time_us, index, order, frame, direction))
            ip_bytes = len(frame) - _ETHER_HEADER
            if direction == "c2s":
                entry.bytes_c2s += ip_bytes
                entry.packets_c2s += 1
            else:
                entry.bytes_s2c += ip_bytes
                entry.packets_s2c += 1
            entry.first_us = time_us if order == 0 else min(entry.first_us, time_us)
            entry.last_us = max(entry.last_us, time_us)
        ledger.entries.append(entry)
    written.sort(key=lambda w: (w.time_us, w.conversation, w.order))

    writer: Any
    if fmt == "pcap":
        writer = PcapWriter(str(path), linktype=1, snaplen=snaplen or 262_144, sync=False)
    else:
        writer = PcapNgWriter(str(path))
        writer.linktype = 1
    try:
        writer.write_header(None)
        for w in written:
            stored = w.frame if snaplen is None else w.frame[:snaplen]
            sec, usec = divmod(w.time_us, 1_000_000)
            if fmt == "pcap":
                writer.write_packet(stored, sec=sec, usec=usec, caplen=len(stored), wirelen=len(w.frame))
            else:
                timestamp = Decimal(w.time_us) / Decimal(1_000_000)
                writer.write_packet(stored, sec=timestamp, caplen=len(stored), wirelen=len(w.frame))
            ledger.packets += 1
            ledger.captured_bytes += len(stored)
    finally:
        writer.close()
    return ledger
