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


Int64s = npt.NDArray[np.int64]


@dataclass
class Chunk:
    """The records of one data flowset (or v5 datagram), still as bytes: decoded in :func:`to_table`
    together with every other chunk of the batch that has the same template (one ``frombuffer``)."""

    layout: _Layout
    data: bytes
    count: int
    now_ms: int
    uptime: int
    exporter: str
    rate: int = 1

    def __len__(self) -> int:
        return self.count


@dataclass
class _Columns:
    first_ms: Int64s
    last_ms: Int64s
    src: Array  # uint32 (IPv4) or V16 (IPv6), as the layout's src6 says
    dst: Array
    sport: Int64s | None  # None: the template has no such field
    dport: Int64s | None
    protocol: Int64s
    packets: Int64s
    octets: Int64s


def _int64(values: Array) -> Int64s:
    """Unsigned values (a big-endian field, or a uint8 matrix of a field of odd length) as int64."""
    if values.ndim == 2:  # 3, 5, 6, 7 or more than 8 bytes: the low 8 bytes
        wide = np.zeros(len(values), np.uint64)
        for i in range(max(0, values.shape[1] - 8), values.shape[1]):
            wide = (wide << np.uint64(8)) | values[:, i].astype(np.uint64)
        values = wide
    if values.dtype.itemsize == 8:
        values = np.minimum(values, np.uint64(np.iinfo(np.int64).max))
    return values.astype(np.int64)


class _Layout:
    """A template compiled once into a big-endian structured dtype of the fields the collector reads."""

    src6 = False
    dst6 = False

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
        self.src, self.dst = where.get(_SRC4) or where.get(_SRC6), where.get(_DST4) or where.get(_DST6)
        # IPFIX: a record without a source address is an options record, whatever its template
        self.is_flow = not self.options if version == 9 else self.src is not None
        self.reads = self.src is not None and self.dst is not None and not self.options
        if not self.reads or self.src is None or self.dst is None:
            return
        self.src6, self.dst6 = self.src[1] == 16, self.dst[1] == 16
        fields: dict[str, tuple[int, int]] = {"src": self.src, "dst": self.dst}
        for ftype in (_PROTO, _SPORT, _DPORT, *_PACKETS[version], *_OCTETS[version]):
            if ftype in where:
                fields.setdefault(_ROLE[version].get(ftype, str(ftype)), where[ftype])
        self.first = self._pick(fields, "first", _FIRST_REL if version == 9 else None, _START_MS, _START_S)
        self.last = self._pick(fields, "last", _LAST_REL if version == 9 else None, _END_MS, _END_S)
        formats: list[object] = []
        for name, (_, flen) in fields.items():
            if name in ("src", "dst"):
                formats.append("V16" if flen == 16 else ">u4")
            else:
                formats.append(f">u{flen}" if flen in (1, 2, 4, 8) else (np.uint8, flen))
        self.dtype = np.dtype(
            {
                "names": list(fields),
                "formats": formats,
                "offsets": [o for o, _ in fields.values()],
                "itemsize": self.length,
            }
        )
        self.fields = fields

    def _pick(
        self, fields: dict[str, tuple[int, int]], name: str, relative: int | None, ms: int, s: int
    ) -> str | None:
        """Which time field a record's first/last time comes from: a v9 switched time (relative to
        the exporter's uptime), else an absolute IANA field in milliseconds, else in seconds."""
        for kind, ftype in (("rel", relative), ("ms", ms), ("s", s)):
            if ftype is not None and ftype in self.where:
                fields[f"{name}_{kind}"] = self.where[ftype]
                return kind
        return None

    def option_values(self, data: bytes, data_set: DataSet) -> list[dict[int, int]]:
        out = []
        for start in range(data_set.start, data_set.end - self.length + 1, self.length):
            offset, values = start + self.option_start, {}
            for ftype, flen in self.option_fields:
                values[ftype] = int.from_bytes(data[offset : offset + flen], "big")
                offset += flen
            out.append(values)
        return out

    def _time(
        self, rec: npt.NDArray[np.void], name: str, kind: str | None, now_ms: Int64s, uptime: Int64s
    ) -> Int64s | None:
        if kind is None:
            return None
        values = _int64(rec[f"{name}_{kind}"])
        if kind == "rel":
            return now_ms - (uptime - values) % _WRAP
        return values if kind == "ms" else values * 1000

    def columns(self, data: bytes, now_ms: Int64s, uptime: Int64s) -> _Columns:
        rec = np.frombuffer(data, self.dtype)
        n = len(rec)
        zeros = np.zeros(n, np.int64)
        has = rec.dtype.names or ()

        def column(name: str) -> Int64s | None:
            return _int64(rec[name]) if name in has else None

        first = self._time(rec, "first", self.first, now_ms, uptime)
        last = self._time(rec, "last", self.last, now_ms, uptime)
        first = now_ms if first is None else first
        if last is None:  # v9: the first time; IPFIX: the export time
            last = first if self.version == 9 else now_ms
        protocol = column("protocol")
        packets, octets = column("packets"), column("octets")
        return _Columns(
            first,
            last,
            rec["src"] if self.src6 else rec["src"].astype(np.uint32),
            rec["dst"] if self.dst6 else rec["dst"].astype(np.uint32),
            column("sport"),
            column("dport"),
            zeros if protocol is None else protocol,
            zeros if packets is None else packets,
            zeros if octets is None else octets,
        )


#: Field types by the name a layout gives their column (IPFIX: delta counters before total ones).
_ROLE: Final = {
    9: {_PROTO: "protocol", _SPORT: "sport", _DPORT: "dport", 2: "packets", 1: "octets"},
    10: {
        _PROTO: "protocol",
        _SPORT: "sport",
        _DPORT: "dport",
        2: "packets",
        86: "packets",
        1: "octets",
        85: "octets",
    },
}


class _V5Layout(_Layout):
    """NetFlow v5's fixed 48-byte record."""

    def __init__(self) -> None:
        self.length = 48
        self.reads = True

    def columns(self, data: bytes, now_ms: Int64s, uptime: Int64s) -> _Columns:
        rec = np.frombuffer(data, _V5)
        return _Columns(
            now_ms - (uptime - rec["first"].astype(np.int64)) % _WRAP,
            now_ms - (uptime - rec["last"].astype(np.int64)) % _WRAP,
            rec["src"].astype(np.uint32),
            rec["dst"].astype(np.uint32),
            rec["sport"].astype(np.int64),
            rec["dport"].astype(np.int64),
            rec["proto"].astype(np.int64),
            rec["packets"].astype(np.int64),
            rec["octets"].astype(np.int64),
        )


_V5_LAYOUT: Final = _V5Layout()


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
        now_ms = secs * 1000 + nsecs // 1_000_000
        chunk = Chunk(_V5_LAYOUT, data[24:], (len(data) - 24) // 48, now_ms, uptime, _name(key))
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
                count = (data_set.end - data_set.start) // layout.length
                if layout.reads and count:
                    end = data_set.start + count * layout.length
                    chunks.append(Chunk(layout, data[data_set.start : end], count, now_ms, uptime, name))
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
        for chunk in chunks:
            chunk.rate = rate
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


class _Addresses:
    """One address column of a batch being assembled: IPv4 as uint32, IPv6 as 16 bytes."""

    def __init__(self, n: int) -> None:
        self.v4 = np.zeros(n, np.uint32)
        self.v6: Array | None = None
        self.is6 = np.zeros(n, bool)

    def put(self, at: Int64s, values: Array, six: bool) -> None:
        if six:
            if self.v6 is None:
                self.v6 = np.zeros(len(self.v4), "V16")
            self.v6[at] = values
            self.is6[at] = True
        else:
            self.v4[at] = values

    def text(self) -> pa.Array:
        unique, inverse = np.unique(self.v4, return_inverse=True)  # each address written once
        dotted = pc.take(_dotted(unique), pa.array(inverse.reshape(-1)))
        if self.v6 is None:
            return dotted
        rows = np.flatnonzero(self.is6)
        unique, inverse = np.unique(self.v6[rows], return_inverse=True)
        names = np.array([str(ipaddress.IPv6Address(bytes(u))) for u in unique], dtype=object)
        out = dotted.to_numpy(zero_copy_only=False).astype(object)
        out[rows] = names[inverse.reshape(-1)]
        return pa.array(out, pa.string())


def to_table(chunks: list[Chunk]) -> pa.Table:
    """The records of ``chunks`` as one :data:`RECORD_SCHEMA` table (directions not yet paired), in
    the chunks' order; the chunks of each template are decoded together."""
    chunks = [c for c in chunks if c.count]
    if not chunks:
        return RECORD_SCHEMA.empty_table()
    counts = np.array([c.count for c in chunks], np.int64)
    starts = np.cumsum(counts) - counts
    n = int(counts.sum())
    first, last, protocol, packets, octets = (np.zeros(n, np.int64) for _ in range(5))
    ports = {"sport": np.zeros(n, np.int64), "dport": np.zeros(n, np.int64)}
    absent = {"sport": np.zeros(n, bool), "dport": np.zeros(n, bool)}
    src, dst = _Addresses(n), _Addresses(n)
    names = sorted({c.exporter for c in chunks})
    number = {name: i for i, name in enumerate(names)}
    exporter = np.repeat(np.array([number[c.exporter] for c in chunks], np.int32), counts)
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(chunks):
        groups.setdefault(id(c.layout), []).append(i)
    for members in groups.values():
        layout = chunks[members[0]].layout
        sel = np.array(members)
        sizes = counts[sel]
        at = np.repeat(starts[sel] - (np.cumsum(sizes) - sizes), sizes) + np.arange(int(sizes.sum()))
        now_ms = np.repeat(np.array([chunks[i].now_ms for i in members], np.int64), sizes)
        uptime = np.repeat(np.array([chunks[i].uptime for i in members], np.int64), sizes)
        rate = np.repeat(np.array([chunks[i].rate for i in members], np.int64), sizes)
        cols = layout.columns(b"".join(chunks[i].data for i in members), now_ms, uptime)
        first[at], last[at], protocol[at] = cols.first_ms, cols.last_ms, cols.protocol
        packets[at], octets[at] = cols.packets * rate, cols.octets * rate
        src.put(at, cols.src, layout.src6)
        dst.put(at, cols.dst, layout.dst6)
        for name, values in (("sport", cols.sport), ("dport", cols.dport)):
            if values is None:
                absent[name][at] = True
            else:
                ports[name][at] = values
    portless = np.isin(protocol, _NO_PORTS)
    columns = [
        pa.array(first * 1000),
        pa.array(last * 1000),
        src.text(),
        pa.array(ports["sport"].astype(np.int32), pa.int32(), mask=absent["sport"] | portless),
        dst.text(),
        pa.array(ports["dport"].astype(np.int32), pa.int32(), mask=absent["dport"] | portless),
        pa.array(protocol.astype(np.int16)),
        pa.array(packets),
        pa.array(octets),
        pa.array(np.zeros(n, np.int64)),
        pa.array(np.zeros(n, np.int64)),
        pc.take(pa.array(names, pa.string()), pa.array(exporter)),
    ]
    return pa.Table.from_arrays(columns, schema=RECORD_SCHEMA)
