"""NetFlow v5, v9 and IPFIX datagrams into columns of records, with templates and sampling per exporter.

Decoding is vectorised: a v5 datagram is an array of fixed 48-byte records, and a v9/IPFIX template
gives every field a fixed offset and length, so each template is compiled once into a big-endian
NumPy structured dtype (:class:`_Layout`) and each data flowset is read with one
``np.frombuffer`` into columns (:class:`Chunk`); :func:`to_table` turns the chunks of a batch into
one Arrow table. Only options records (sampling announcements, a few per minute) are read field by
field.

Exporters are attacker-reachable: every datagram's framing is checked first
(:mod:`.netflow_frames`), anything still wrong counts the datagram as malformed instead of stopping
the collector, and variable-length fields are refused (counted). Templates are kept per exporter
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
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from derisk.ingest.netflow_frames import (
    DataSet,
    Malformed,
    Template,
    check_ipfix,
    check_v9,
    ipfix_sets,
    v9_sets,
)
from derisk.ingest.netflow_pairs import RECORD_SCHEMA

__all__ = ["Chunk", "Decoder", "ExporterKey", "Malformed", "Stats", "to_table"]

#: (exporter address, version, source id / observation domain)
ExporterKey = tuple[str, int, int]
Array = npt.NDArray[np.generic]

#: Datagrams waiting for a template, per exporter.
_QUEUE: Final = 64
_MAX_RATE: Final = 1 << 24
#: Exporters and templates kept (a sender can forge source addresses and template ids).
_MAX_EXPORTERS: Final = 10_000
_MAX_TEMPLATES: Final = 1_024
_WRAP: Final = 1 << 32
_NO_PORTS: Final = (1, 58)  # ICMP, ICMPv6

#: Field types read from flow records (v9 and IPFIX share the numbers for these), by role.
_SRC4, _DST4, _SRC6, _DST6 = 8, 12, 27, 28
_PROTO, _SPORT, _DPORT = 4, 7, 11
_FIRST_REL, _LAST_REL = 22, 21  # v9's switched times (milliseconds of the exporter's uptime)
_START_MS, _START_S, _END_MS, _END_S = 152, 150, 153, 151
_PACKETS: Final = {9: (2,), 10: (2, 86)}  # IPFIX: packetDeltaCount, else packetTotalCount
_OCTETS: Final = {9: (1,), 10: (1, 85)}
_V5: Final = np.dtype(
    {
        "names": ["src", "dst", "packets", "octets", "first", "last", "sport", "dport", "proto"],
        "formats": [">u4", ">u4", ">u4", ">u4", ">u4", ">u4", ">u2", ">u2", "u1"],
        "offsets": [0, 4, 16, 20, 24, 28, 32, 34, 38],
        "itemsize": 48,
    }
)


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


@dataclass
class Chunk:
    """Records of one data flowset (or v5 datagram) as columns.

    Addresses are ``uint32`` (IPv4) or 16-byte ``V16`` (IPv6) arrays, as ``src6``/``dst6`` say;
    a port is ``None`` where the template has none, and null where the protocol has none.
    """

    first_ms: Array
    last_ms: Array
    src: Array
    src6: bool
    dst: Array
    dst6: bool
    sport: Array | None
    dport: Array | None
    protocol: Array
    packets: Array
    octets: Array
    exporter: str

    def __len__(self) -> int:
        return len(self.protocol)


def _uint(rows: Array, offset: int, length: int) -> npt.NDArray[np.int64]:
    """Unsigned big-endian integers of ``length`` bytes at ``offset`` of each row (uint8 matrix)."""
    if length in (1, 2, 4, 8):
        raw = np.ascontiguousarray(rows[:, offset : offset + length]).view(f">u{length}")[:, 0]
        if length == 8:
            raw = np.minimum(raw, np.uint64(np.iinfo(np.int64).max))
        return raw.astype(np.int64)
    value = np.zeros(len(rows), np.uint64)
    for i in range(max(0, length - 8), length):  # the low 8 bytes of a wider field
        value = (value << np.uint64(8)) | rows[:, offset + i].astype(np.uint64)
    return np.minimum(value, np.uint64(np.iinfo(np.int64).max)).astype(np.int64)


class _Layout:
    """A template compiled once: where each field the collector reads sits in a record."""

    def __init__(self, template: Template, version: int) -> None:
        self.length = template.record_length
        self.options = template.options
        self.version = version
        where: dict[int, tuple[int, int]] = {}
        offset = 0
        for ftype, flen in template.fields:
            where[ftype] = (offset, flen)  # a repeated field: the last one counts
            offset += flen
        self.where = where
        self.option_fields = template.fields[template.scopes if version == 9 else 0 :]
        self.option_start = sum(flen for _, flen in template.fields[: template.scopes]) if version == 9 else 0
        self.src = where.get(_SRC4) or where.get(_SRC6)
        self.dst = where.get(_DST4) or where.get(_DST6)
        # IPFIX: a record without a source address is an options record, whatever its template
        self.is_flow = not self.options if version == 9 else self.src is not None

    def rows(self, data: bytes, data_set: DataSet) -> Array:
        count = (data_set.end - data_set.start) // self.length
        buf = np.frombuffer(data, np.uint8, count * self.length, data_set.start)
        return buf.reshape(count, self.length)

    def option_values(self, data: bytes, data_set: DataSet) -> list[dict[int, int]]:
        out = []
        for start in range(data_set.start, data_set.end - self.length + 1, self.length):
            offset, values = start + self.option_start, {}
            for ftype, flen in self.option_fields:
                values[ftype] = int.from_bytes(data[offset : offset + flen], "big")
                offset += flen
            out.append(values)
        return out

    def _column(self, rows: Array, types: tuple[int, ...]) -> npt.NDArray[np.int64] | None:
        for ftype in types:
            found = self.where.get(ftype)
            if found is not None:
                return _uint(rows, *found)
        return None

    def _address(self, rows: Array, where: tuple[int, int]) -> Array:
        offset, flen = where
        block = np.ascontiguousarray(rows[:, offset : offset + flen])
        return block.view(">u4")[:, 0].astype(np.uint32) if flen == 4 else block.view("V16")[:, 0]

    def chunk(self, rows: Array, now_ms: int, uptime: int, exporter: str) -> Chunk | None:
        if self.src is None or self.dst is None or not len(rows):
            return None
        n = len(rows)
        proto = self._column(rows, (_PROTO,))
        protocol = np.zeros(n, np.int64) if proto is None else proto
        if self.version == 9:
            first = self._time(rows, _FIRST_REL, ((_START_MS, 1), (_START_S, 1000)), now_ms, uptime)
            last = self._time(rows, _LAST_REL, ((_END_MS, 1), (_END_S, 1000)), now_ms, uptime)
            first = np.full(n, now_ms, np.int64) if first is None else first
            last = first if last is None else last
        else:
            start = self._time(rows, None, ((_START_MS, 1), (_START_S, 1000)), now_ms, uptime)
            end = self._time(rows, None, ((_END_MS, 1), (_END_S, 1000)), now_ms, uptime)
            first = np.full(n, now_ms, np.int64) if start is None else start
            last = np.full(n, now_ms, np.int64) if end is None else end
        packets = self._column(rows, _PACKETS[self.version])
        octets = self._column(rows, _OCTETS[self.version])
        sport, dport = self._column(rows, (_SPORT,)), self._column(rows, (_DPORT,))
        return Chunk(
            first,
            last,
            self._address(rows, self.src),
            self.src[1] == 16,
            self._address(rows, self.dst),
            self.dst[1] == 16,
            sport,
            dport,
            protocol,
            np.zeros(n, np.int64) if packets is None else packets,
            np.zeros(n, np.int64) if octets is None else octets,
            exporter,
        )

    def _time(
        self,
        rows: Array,
        relative: int | None,
        absolute: tuple[tuple[int, int], ...],
        now_ms: int,
        uptime: int,
    ) -> npt.NDArray[np.int64] | None:
        """A v9 switched time relative to the exporter's uptime (across its 32-bit wrap), or an
        absolute IANA field (milliseconds or seconds)."""
        if relative is not None and relative in self.where:
            since = (uptime - _uint(rows, *self.where[relative])) % _WRAP
            return now_ms - since
        for ftype, scale in absolute:
            if ftype in self.where:
                return _uint(rows, *self.where[ftype]) * scale
        return None


#: Compiled layouts, shared by exporters that send the same template (bounded).
_LAYOUTS: dict[tuple[int, Template], _Layout] = {}


def _layout(template: Template, version: int) -> _Layout:
    key = (version, template)
    found = _LAYOUTS.get(key)
    if found is None:
        if len(_LAYOUTS) >= 4_096:
            _LAYOUTS.clear()
        found = _LAYOUTS[key] = _Layout(template, version)
    return found


def _rate_from_options(d: dict[int, int]) -> int | None:
    for ftype in (34, 50):  # samplingInterval, samplerRandomInterval (v9: the same numbers)
        value = d.get(ftype)
        if value is not None and value > 0:
            return min(value, _MAX_RATE)
    interval, space = d.get(305), d.get(306, 0)  # samplingPacketInterval, samplingPacketSpace
    if interval is not None and interval > 0:
        return min((interval + space) // interval, _MAX_RATE)
    return None


@dataclass
class _Exporter:
    templates: dict[int, _Layout] = field(default_factory=dict)
    waiting: deque[bytes] = field(default_factory=lambda: deque(maxlen=_QUEUE))
    rate: int = 1


class Decoder:
    """Decodes the datagrams of any number of exporters; keeps their templates and sampling rates."""

    def __init__(self) -> None:
        self.stats = Stats()
        self._exporters: dict[ExporterKey, _Exporter] = {}

    def _exporter(self, key: ExporterKey) -> _Exporter:
        found = self._exporters.get(key)
        if found is None:
            if len(self._exporters) >= _MAX_EXPORTERS:
                raise Malformed("too many exporters")
            found = self._exporters[key] = _Exporter()
        return found

    def decode(self, data: bytes, address: str) -> list[Chunk]:
        """The records of one datagram (sampling applied); problems are counted, never raised."""
        self.stats.datagrams += 1
        try:
            return self._decode(data, address)
        except Malformed as exc:
            self.stats.malformed += 1
            self.stats.problem(f"{address}: {exc}")
        except (struct.error, ValueError, IndexError) as exc:  # defence in depth on hostile input
            self.stats.malformed += 1
            self.stats.problem(f"{address}: unreadable ({type(exc).__name__})")
        return []

    def _decode(self, data: bytes, address: str) -> list[Chunk]:
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
        chunks = self._templated(data, key, exporter)
        if chunks is None:
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
                    chunks.extend(found)
        return chunks

    def _v5(self, data: bytes, address: str) -> list[Chunk]:
        if len(data) < 24 or (len(data) - 24) != 48 * struct.unpack_from("!H", data, 2)[0]:
            raise Malformed("v5 length does not match its record count")
        uptime, secs, nsecs = struct.unpack_from("!III", data, 4)
        engine_type, engine_id, sampling = struct.unpack_from("!BBH", data, 20)
        key = (address, 5, engine_type << 8 | engine_id)
        rate = sampling & 0x3FFF
        self._sampled(key, self._exporter(key), rate if rate > 1 else 1)
        rec = np.frombuffer(data, _V5, offset=24)
        now_ms = secs * 1000 + nsecs // 1_000_000
        proto = rec["proto"].astype(np.int64)
        chunk = Chunk(
            now_ms - ((uptime - rec["first"].astype(np.int64)) % _WRAP),
            now_ms - ((uptime - rec["last"].astype(np.int64)) % _WRAP),
            rec["src"].astype(np.uint32),
            False,
            rec["dst"].astype(np.uint32),
            False,
            rec["sport"].astype(np.int64),
            rec["dport"].astype(np.int64),
            proto,
            rec["packets"].astype(np.int64),
            rec["octets"].astype(np.int64),
            _name(key),
        )
        return self._count(5, [chunk], self._exporters[key].rate)

    def _templated(self, data: bytes, key: ExporterKey, exporter: _Exporter) -> list[Chunk] | None:
        """Chunks of a v9/IPFIX datagram, or None when a template is still missing."""
        version = key[1]
        if len(exporter.templates) > _MAX_TEMPLATES:
            exporter.templates.clear()
            raise Malformed(
                f"more than {_MAX_TEMPLATES} templates from one exporter; its templates were dropped"
            )
        data_sets: list[DataSet] = []
        for item in v9_sets(data) if version == 9 else ipfix_sets(data):
            if isinstance(item, Template):
                exporter.templates[item.template_id] = _layout(item, version)
            elif isinstance(item, DataSet):
                data_sets.append(item)
            else:
                exporter.templates.pop(item, None)  # an IPFIX template withdrawal
        if any(s.template_id not in exporter.templates for s in data_sets):
            return None
        if version == 9:
            uptime, secs = struct.unpack_from("!II", data, 4)
            now_ms = secs * 1000
        else:
            uptime, now_ms = 0, struct.unpack_from("!I", data, 4)[0] * 1000
        name = _name(key)
        chunks: list[Chunk] = []
        for data_set in data_sets:
            layout = exporter.templates[data_set.template_id]
            if layout.is_flow:
                found = layout.chunk(layout.rows(data, data_set), now_ms, uptime, name)
                if found is not None:
                    chunks.append(found)
            else:
                for values in layout.option_values(data, data_set):
                    self._option(key, exporter, values)
        return self._count(version, chunks, exporter.rate)

    def _option(self, key: ExporterKey, exporter: _Exporter, values: dict[int, int]) -> None:
        self.stats.options_records += 1
        rate = _rate_from_options(values)
        if rate is not None:
            self._sampled(key, exporter, rate)

    def _sampled(self, key: ExporterKey, exporter: _Exporter, rate: int) -> None:
        exporter.rate = rate
        if rate > 1:
            self.stats.sampling[_name(key)] = rate

    def _count(self, version: int, chunks: list[Chunk], rate: int) -> list[Chunk]:
        n = sum(len(c) for c in chunks)
        if rate > 1:
            for chunk in chunks:
                chunk.packets = chunk.packets * rate
                chunk.octets = chunk.octets * rate
        self.stats.records += n
        self.stats.by_version[version] = self.stats.by_version.get(version, 0) + n
        return [c for c in chunks if len(c)]

    def finish(self) -> None:
        """Count what still waits for a template as lost."""
        lost = sum(len(e.waiting) for e in self._exporters.values())
        self.stats.lost_without_template = lost
        self.stats.waiting_for_template = 0


def _name(key: ExporterKey) -> str:
    return f"{key[0]} v{key[1]} id {key[2]}"


def _dotted(values: npt.NDArray[np.uint32]) -> pa.Array:
    """IPv4 addresses (uint32) as dotted-quad text, column-wise."""
    parts = [pa.array((values >> shift) & 0xFF).cast(pa.string()) for shift in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


def _addresses(chunks: list[Chunk], which: str) -> pa.Array:
    v6 = [getattr(c, which + "6") for c in chunks]
    values = [getattr(c, which) for c in chunks]
    if not any(v6):
        return _dotted(np.concatenate(values))
    sizes = [len(c) for c in chunks]
    v4 = np.concatenate(
        [np.zeros(n, np.uint32) if six else v for v, six, n in zip(values, v6, sizes, strict=True)]
    )
    text = _dotted(v4).to_numpy(zero_copy_only=False).astype(object)
    at = 0
    for v, six, n in zip(values, v6, sizes, strict=True):
        if six:
            names = {u: str(ipaddress.IPv6Address(bytes(u))) for u in set(v.tolist())}
            text[at : at + n] = [names[u] for u in v.tolist()]
        at += n
    return pa.array(text, pa.string())


def _ports(chunks: list[Chunk], which: str, protocol: Array) -> pa.Array:
    values = np.concatenate(
        [np.zeros(len(c), np.int64) if getattr(c, which) is None else getattr(c, which) for c in chunks]
    )
    absent = np.concatenate([np.full(len(c), getattr(c, which) is None) for c in chunks])
    return pa.array(values.astype(np.int32), pa.int32(), mask=absent | np.isin(protocol, _NO_PORTS))


def to_table(chunks: list[Chunk]) -> pa.Table:
    """The records of ``chunks`` as one :data:`RECORD_SCHEMA` table (directions not yet paired)."""
    if not chunks:
        return RECORD_SCHEMA.empty_table()
    protocol = np.concatenate([c.protocol for c in chunks])
    names = sorted({c.exporter for c in chunks})
    index = {name: i for i, name in enumerate(names)}
    exporter = np.concatenate([np.full(len(c), index[c.exporter], np.int32) for c in chunks])
    zeros = pa.array(np.zeros(len(protocol), np.int64))
    columns = [
        pa.array(np.concatenate([c.first_ms for c in chunks]) * 1000),
        pa.array(np.concatenate([c.last_ms for c in chunks]) * 1000),
        _addresses(chunks, "src"),
        _ports(chunks, "sport", protocol),
        _addresses(chunks, "dst"),
        _ports(chunks, "dport", protocol),
        pa.array(protocol.astype(np.int16)),
        pa.array(np.concatenate([c.packets for c in chunks])),
        pa.array(np.concatenate([c.octets for c in chunks])),
        zeros,
        zeros,
        pc.take(pa.array(names, pa.string()), pa.array(exporter)),
    ]
    return pa.Table.from_arrays(columns, schema=RECORD_SCHEMA)
