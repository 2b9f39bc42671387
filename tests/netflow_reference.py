"""The collector's first decoder, kept as the reference its vectorised successor is compared with.

It parses with the ``netflow`` package (PyPI, pure Python) record by record; the collector's
decoder (``derisk.ingest.netflow_decode``) must give the same records and counts on every datagram
this one reads (tests/test_netflow_decode.py). What follows is its original description.

NetFlow v5, v9 and IPFIX datagrams into records, with templates and sampling per exporter.

Parsing is the ``netflow`` package's (PyPI, bitkeks/python-netflow-v9-softflowd). Exporters are
attacker-reachable, so every datagram's framing is checked here first (lengths of sets and
templates, field lengths the parser can loop or print on), and anything the parser still raises
counts the datagram as malformed instead of stopping the collector. Templates are kept per exporter
address and source id (v9) or observation domain (IPFIX); data that arrives before its template
waits in a small queue per exporter and is decoded when the template comes, or counted as lost.

Sampling (:class:`Decoder` applies it to packets and bytes): the v5 header's sampling interval, and
v9/IPFIX options records with SAMPLING_INTERVAL / samplingInterval (34),
FLOW_SAMPLER_RANDOM_INTERVAL / samplerRandomInterval (50), or samplingPacketInterval (305) with
samplingPacketSpace (306). Records decoded before an exporter announced its rate are counted at 1.
"""

from __future__ import annotations

import ipaddress
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa

from derisk.ingest.netflow_pairs import RECORD_SCHEMA

#: (exporter address, version, source id / observation domain)
ExporterKey = tuple[str, int, int]

_V4_FIELDS: Final = frozenset({8, 12, 15, 18, 47, 130})
_V6_FIELDS: Final = frozenset({27, 28, 62, 63, 131})
#: Datagrams waiting for a template, per exporter.
_QUEUE: Final = 64
_MAX_RATE: Final = 1 << 24
#: Exporters and templates kept (a sender can forge source addresses and template ids).
_MAX_EXPORTERS: Final = 10_000
_MAX_TEMPLATES: Final = 1_024


class Malformed(Exception):
    """A datagram that is not a well-formed NetFlow v5/v9 or IPFIX message."""


@dataclass
class Record:
    first_ms: int
    last_ms: int
    src_ip: str
    src_port: int | None
    dst_ip: str
    dst_port: int | None
    protocol: int
    packets: int
    octets: int
    exporter: str


@dataclass
class Stats:
    """What the collector met, reported at the end (and in the workspace's input notes)."""

    datagrams: int = 0
    records: int = 0
    by_version: dict[int, int] = field(default_factory=dict)
    malformed: int = 0
    unknown_version: int = 0
    waiting_for_template: int = 0
    lost_without_template: int = 0
    options_records: int = 0
    sampling: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(text)


def _need(data: bytes, offset: int, n: int) -> None:
    if offset + n > len(data):
        raise Malformed("shorter than its headers say")


def _check_fields(data: bytes, offset: int, count: int, ipfix: bool) -> int:
    """Check ``count`` field specifiers from ``offset``; return the offset after them."""
    for _ in range(count):
        _need(data, offset, 4)
        ftype, flen = struct.unpack_from("!HH", data, offset)
        offset += 4
        if ipfix and ftype & 0x8000:
            raise Malformed("enterprise-specific field (not read by derisk)")
        if flen == 0 or flen == 0xFFFF:
            raise Malformed("field of length 0 or of variable length (not read by derisk)")
        if (ftype in _V4_FIELDS and flen != 4) or (ftype in _V6_FIELDS and flen != 16):
            raise Malformed(f"address field {ftype} of {flen} bytes")
    return offset


def check_v9(data: bytes) -> None:
    _need(data, 0, 20)
    offset = 20
    while offset < len(data):
        _need(data, offset, 4)
        set_id, length = struct.unpack_from("!HH", data, offset)
        if length < 4:
            raise Malformed("flowset shorter than its header")
        _need(data, offset, length)
        end, inner = offset + length, offset + 4
        if set_id == 0:
            while end - inner >= 4:
                template_id, count = struct.unpack_from("!HH", data, inner)
                if template_id < 256 or count == 0:
                    raise Malformed("template with a reserved id or no fields")
                inner = _check_fields(data, inner + 4, count, ipfix=False)
                if inner > end:
                    raise Malformed("template longer than its flowset")
        elif set_id == 1:
            while end - inner >= 6:
                template_id, scope_len, option_len = struct.unpack_from("!HHH", data, inner)
                if template_id < 256 or scope_len % 4 or option_len % 4 or scope_len + option_len == 0:
                    raise Malformed("options template with bad lengths")
                inner = _check_fields(data, inner + 6, (scope_len + option_len) // 4, ipfix=False)
                if inner > end:
                    raise Malformed("options template longer than its flowset")
                break  # the parser reads one options template per flowset
        elif set_id < 256:
            raise Malformed(f"reserved flowset id {set_id}")
        offset = end


def check_ipfix(data: bytes) -> None:
    _need(data, 0, 16)
    if struct.unpack_from("!H", data, 2)[0] != len(data):
        raise Malformed("message length does not match the datagram")
    offset = 16
    while offset < len(data):
        _need(data, offset, 4)
        set_id, length = struct.unpack_from("!HH", data, offset)
        if length < 4:
            raise Malformed("set shorter than its header")
        if set_id in (0, 1) or 4 <= set_id < 256:
            raise Malformed(f"reserved set id {set_id}")
        _need(data, offset, length)
        end, inner = offset + length, offset + 4
        if set_id in (2, 3):
            while end - inner > 4 and any(data[inner:end]):
                head = 6 if set_id == 3 else 4
                _need(data, inner, head)
                template_id, count = struct.unpack_from("!HH", data, inner)
                if template_id < 256:
                    raise Malformed("template with a reserved id")
                if count == 0:
                    inner += head  # a template withdrawal
                    continue
                inner = _check_fields(data, inner + head, count, ipfix=True)
                if inner > end:
                    raise Malformed("template longer than its set")
        offset = end


def _address(value: Any) -> str:
    if isinstance(value, str):  # the package gives v9 addresses as text already (compressed form)
        return value
    return str(ipaddress.ip_address(value))


def _since(uptime: int, switched: int) -> int:
    """Milliseconds from a switched time to the export, across the 32-bit uptime's wrap (49.7 days)."""
    return (uptime - switched) % (1 << 32)


def _v5_records(packet: Any, exporter: str) -> list[Record]:
    head = packet.header
    now_ms = head.timestamp * 1000 + head.timestamp_nano // 1_000_000
    out = []
    for flow in packet.flows:
        d = flow.data
        proto = d["PROTO"]
        ports = proto not in (1, 58)
        out.append(
            Record(
                now_ms - _since(head.uptime, d["FIRST_SWITCHED"]),
                now_ms - _since(head.uptime, d["LAST_SWITCHED"]),
                _address(d["IPV4_SRC_ADDR"]),
                d["SRC_PORT"] if ports else None,
                _address(d["IPV4_DST_ADDR"]),
                d["DST_PORT"] if ports else None,
                proto,
                d["IN_PACKETS"],
                d["IN_OCTETS"],
                exporter,
            )
        )
    return out


def _v9_time(
    d: dict[str, Any], relative: str, absolute: tuple[tuple[str, int], ...], now_ms: int, uptime: int
) -> int | None:
    """A v9 time: switched time relative to the exporter's uptime, or an absolute IANA field."""
    value = d.get(relative)
    if isinstance(value, int):
        return now_ms - _since(uptime, value)
    for name, scale in absolute:
        value = d.get(name)
        if isinstance(value, int):
            return value * scale
    return None


def _v9_record(d: dict[str, Any], now_ms: int, uptime: int, exporter: str) -> Record | None:
    src = d.get("IPV4_SRC_ADDR") or d.get("IPV6_SRC_ADDR")
    dst = d.get("IPV4_DST_ADDR") or d.get("IPV6_DST_ADDR")
    if src is None or dst is None:
        return None
    proto = int(d.get("PROTOCOL", 0))
    ports = proto not in (1, 58)
    first = _v9_time(d, "FIRST_SWITCHED", _V9_START, now_ms, uptime)
    last = _v9_time(d, "LAST_SWITCHED", _V9_END, now_ms, uptime)
    first = now_ms if first is None else first
    return Record(
        first,
        first if last is None else last,
        _address(src),
        d.get("L4_SRC_PORT") if ports else None,
        _address(dst),
        d.get("L4_DST_PORT") if ports else None,
        proto,
        int(d.get("IN_PKTS", 0)),
        int(d.get("IN_BYTES", 0)),
        exporter,
    )


#: Absolute times in v9 (exporters such as nfdump's nfreplay and Cisco's NSEL send IANA's fields).
_V9_START: Final = (("NF_F_FLOW_CREATE_TIME_MSEC", 1), ("flowStartSeconds", 1000))
_V9_END: Final = (("flowEndMilliseconds", 1), ("flowEndSeconds", 1000))
#: IANA elements the package's v9 table lacks (it folds unknown types into one "unknown" key).
_V9_EXTRA_FIELDS: Final = {150: "flowStartSeconds", 151: "flowEndSeconds", 153: "flowEndMilliseconds"}


def _extend_v9_table() -> None:
    from netflow.v9 import V9_FIELD_TYPES

    for ftype, name in _V9_EXTRA_FIELDS.items():
        V9_FIELD_TYPES.setdefault(ftype, name)


_IPFIX_START: Final = (
    ("flowStartMilliseconds", 1),
    ("flowStartSeconds", 1000),
)
_IPFIX_END: Final = (
    ("flowEndMilliseconds", 1),
    ("flowEndSeconds", 1000),
)


def _ipfix_time(d: dict[str, Any], names: tuple[tuple[str, int], ...], export_ms: int) -> int:
    for name, scale in names:
        value = d.get(name)
        if isinstance(value, int):
            return value * scale
    return export_ms


def _ipfix_record(d: dict[str, Any], export_ms: int, exporter: str) -> Record | None:
    src = d.get("sourceIPv4Address", d.get("sourceIPv6Address"))
    dst = d.get("destinationIPv4Address", d.get("destinationIPv6Address"))
    if src is None or dst is None:
        return None
    proto = int(d.get("protocolIdentifier", 0))
    ports = proto not in (1, 58)
    return Record(
        _ipfix_time(d, _IPFIX_START, export_ms),
        _ipfix_time(d, _IPFIX_END, export_ms),
        _address(src),
        d.get("sourceTransportPort") if ports else None,
        _address(dst),
        d.get("destinationTransportPort") if ports else None,
        proto,
        int(d.get("packetDeltaCount", d.get("packetTotalCount", 0))),
        int(d.get("octetDeltaCount", d.get("octetTotalCount", 0))),
        exporter,
    )


def _rate_from_options(d: dict[str, Any]) -> int | None:
    for name in (
        "SAMPLING_INTERVAL",
        "samplingInterval",
        "FLOW_SAMPLER_RANDOM_INTERVAL",
        "samplerRandomInterval",
    ):
        value = d.get(name)
        if isinstance(value, int) and value > 0:
            return min(value, _MAX_RATE)
    interval, space = d.get("samplingPacketInterval"), d.get("samplingPacketSpace", 0)
    if isinstance(interval, int) and interval > 0 and isinstance(space, int):
        return min((interval + space) // interval, _MAX_RATE)
    return None


@dataclass
class _Exporter:
    templates: dict[int, Any] = field(default_factory=dict)
    waiting: deque[bytes] = field(default_factory=lambda: deque(maxlen=_QUEUE))
    rate: int = 1


class Decoder:
    """Decodes the datagrams of any number of exporters; keeps their templates and sampling rates."""

    def __init__(self) -> None:
        _extend_v9_table()
        self.stats = Stats()
        self._exporters: dict[ExporterKey, _Exporter] = {}

    def _exporter(self, key: ExporterKey) -> _Exporter:
        found = self._exporters.get(key)
        if found is None:
            if len(self._exporters) >= _MAX_EXPORTERS:
                raise Malformed("too many exporters")
            found = self._exporters[key] = _Exporter()
        return found

    def decode(self, data: bytes, address: str) -> list[Record]:
        """The records of one datagram (sampling applied); problems are counted, never raised."""
        self.stats.datagrams += 1
        try:
            return self._decode(data, address)
        except Malformed as exc:
            self.stats.malformed += 1
            self.stats.problem(f"{address}: {exc}")
        except Exception as exc:  # the parser's own errors on hostile input (struct, index, value...)
            self.stats.malformed += 1
            self.stats.problem(f"{address}: unreadable ({type(exc).__name__})")
        return []

    def _decode(self, data: bytes, address: str) -> list[Record]:
        if len(data) < 4:
            raise Malformed("shorter than a NetFlow header")
        version = struct.unpack_from("!H", data)[0]
        if version == 5:
            return self._v5(data, address)
        if version == 9:
            check_v9(data)
            key = (address, 9, struct.unpack_from("!I", data, 16)[0])
        elif version == 10:
            check_ipfix(data)
            key = (address, 10, struct.unpack_from("!I", data, 12)[0])
        else:
            self.stats.unknown_version += 1
            self.stats.problem(f"{address}: version {version} (derisk reads NetFlow v5, v9 and IPFIX)")
            return []
        exporter = self._exporter(key)
        records = self._templated(data, key, exporter)
        if records is None:
            exporter.waiting.append(data)
            self.stats.waiting_for_template += 1
            return []
        if exporter.waiting:  # a template came: decode what waited for it
            retry, exporter.waiting = list(exporter.waiting), deque(maxlen=_QUEUE)
            for waiting in retry:
                found = self._templated(waiting, key, exporter)
                if found is None:
                    exporter.waiting.append(waiting)
                else:
                    self.stats.waiting_for_template -= 1
                    records.extend(found)
        return records

    def _v5(self, data: bytes, address: str) -> list[Record]:
        from netflow.v5 import V5ExportPacket

        if len(data) < 24 or (len(data) - 24) != 48 * struct.unpack_from("!H", data, 2)[0]:
            raise Malformed("v5 length does not match its record count")
        packet = V5ExportPacket(data)
        key = (address, 5, packet.header.engine_type << 8 | packet.header.engine_id)
        rate = packet.header.sampling_interval & 0x3FFF
        self._sampled(key, self._exporter(key), rate if rate > 1 else 1)
        records = _v5_records(packet, _name(key))
        return self._count(5, records, self._exporters[key].rate)

    def _templated(self, data: bytes, key: ExporterKey, exporter: _Exporter) -> list[Record] | None:
        """Records of a v9/IPFIX datagram, or None when a template is still missing."""
        from netflow.ipfix import IPFIXExportPacket, IPFIXTemplateNotRecognized
        from netflow.v9 import V9ExportPacket, V9TemplateNotRecognized

        name = _name(key)
        records: list[Record] = []
        if len(exporter.templates) > _MAX_TEMPLATES:
            exporter.templates.clear()
            raise Malformed(
                f"more than {_MAX_TEMPLATES} templates from one exporter; its templates were dropped"
            )
        if key[1] == 9:
            try:
                packet = V9ExportPacket(data, exporter.templates)
            except V9TemplateNotRecognized:
                return None
            head = packet.header
            for option in packet.options:
                self._option(key, exporter, option.data)
            for flow in packet.flows:
                found = _v9_record(flow.data, head.timestamp * 1000, head.uptime, name)
                if found is not None:
                    records.append(found)
        else:
            try:
                ipfix = IPFIXExportPacket(data, exporter.templates)
            except IPFIXTemplateNotRecognized:
                return None
            export_ms = ipfix.header.export_uptime * 1000
            for flow in ipfix.flows:
                d = flow.data
                if "sourceIPv4Address" in d or "sourceIPv6Address" in d:
                    found = _ipfix_record(d, export_ms, name)
                    if found is not None:
                        records.append(found)
                else:
                    self._option(key, exporter, d)
        return self._count(key[1], records, exporter.rate)

    def _option(self, key: ExporterKey, exporter: _Exporter, data: dict[str, Any]) -> None:
        self.stats.options_records += 1
        rate = _rate_from_options(data)
        if rate is not None:
            self._sampled(key, exporter, rate)

    def _sampled(self, key: ExporterKey, exporter: _Exporter, rate: int) -> None:
        exporter.rate = rate
        if rate > 1:
            self.stats.sampling[_name(key)] = rate

    def _count(self, version: int, records: list[Record], rate: int) -> list[Record]:
        if rate > 1:
            for record in records:
                record.packets *= rate
                record.octets *= rate
        self.stats.records += len(records)
        self.stats.by_version[version] = self.stats.by_version.get(version, 0) + len(records)
        return records

    def finish(self) -> None:
        """Count what still waits for a template as lost."""
        lost = sum(len(e.waiting) for e in self._exporters.values())
        self.stats.lost_without_template = lost
        self.stats.waiting_for_template = 0


def _name(key: ExporterKey) -> str:
    return f"{key[0]} v{key[1]} id {key[2]}"


def table(records: list[Record]) -> pa.Table:
    """The collector's table of ``records`` (as it was built before the decoder was vectorised)."""
    columns: dict[str, list[object]] = {name: [] for name in RECORD_SCHEMA.names}
    for r in records:
        columns["first_us"].append(r.first_ms * 1000)
        columns["last_us"].append(r.last_ms * 1000)
        columns["src_ip"].append(r.src_ip)
        columns["src_port"].append(r.src_port)
        columns["dst_ip"].append(r.dst_ip)
        columns["dst_port"].append(r.dst_port)
        columns["protocol"].append(r.protocol)
        columns["packets"].append(r.packets)
        columns["bytes"].append(r.octets)
        columns["rev_packets"].append(0)
        columns["rev_bytes"].append(0)
        columns["source_ref"].append(r.exporter)
    return pa.table(columns, schema=RECORD_SCHEMA)
