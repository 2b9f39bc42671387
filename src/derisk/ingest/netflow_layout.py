"""Compiled templates and the columns of a batch of NetFlow/IPFIX records (NumPy, then Arrow).

A v9/IPFIX template gives every field a fixed offset and length, so it is compiled once
(:func:`layout_of`) into a big-endian NumPy structured dtype of the fields the collector reads; v5's
fixed 48-byte record is one such layout. The decoder (:mod:`.netflow_decode`) keeps the records of
each data flowset as bytes (:class:`Chunk`), and :func:`to_table` reads all chunks of a batch that
share a template with one ``np.frombuffer`` into one :data:`RECORD_SCHEMA` table, in arrival order.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from derisk.ingest.netflow_frames import REVERSE_PEN, VARIABLE, DataSet, Template, compact, field_key
from derisk.ingest.netflow_pairs import RECORD_SCHEMA

Array = npt.NDArray[np.generic]

_WRAP: Final = 1 << 32
_NO_PORTS: Final = (1, 58)  # ICMP, ICMPv6

#: Field types read from flow records (v9 and IPFIX share the numbers for these), by role.
_SRC4, _DST4, _SRC6, _DST6 = 8, 12, 27, 28
_PROTO, _SPORT, _DPORT = 4, 7, 11
_FIRST_REL, _LAST_REL = 22, 21  # v9's switched times (milliseconds of the exporter's uptime)
_START_MS, _START_S, _END_MS, _END_S = 152, 150, 153, 151
_PACKETS: Final = {9: (2,), 10: (2, 86)}  # IPFIX: packetDeltaCount, else packetTotalCount
_OCTETS: Final = {9: (1,), 10: (1, 85)}
#: RFC 5103's reverse counters of an IPFIX biflow record (the responder's direction).
_REV_PACKETS: Final = (field_key(2, REVERSE_PEN), field_key(86, REVERSE_PEN))
_REV_OCTETS: Final = (field_key(1, REVERSE_PEN), field_key(85, REVERSE_PEN))
_REVERSE: Final = {9: (), 10: (*_REV_PACKETS, *_REV_OCTETS)}
_V5: Final = np.dtype(
    {
        "names": ["src", "dst", "packets", "octets", "first", "last", "sport", "dport", "proto"],
        "formats": [">u4", ">u4", ">u4", ">u4", ">u4", ">u4", ">u2", ">u2", "u1"],
        "offsets": [0, 4, 16, 20, 24, 28, 32, 34, 38],
        "itemsize": 48,
    }
)


Int64s = npt.NDArray[np.int64]


@dataclass
class Chunk:
    """The records of one data flowset (or v5 datagram), still as bytes: decoded in :func:`to_table`
    together with every other chunk of the batch that has the same template (one ``frombuffer``)."""

    layout: Layout
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
    rev_packets: Int64s
    rev_octets: Int64s


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


class Layout:
    """A template compiled once into a big-endian structured dtype of the fields the collector reads."""

    src6 = False
    dst6 = False

    def __init__(self, template: Template, version: int) -> None:
        self.length = template.record_length
        self.options = template.options
        self.version = version
        # IPFIX variable-length elements are cut out of each record before decoding
        # (netflow_frames.compact): offsets here are those of the fixed fields, in order
        self.template = template
        self.variable = template.variable
        fixed = tuple((ftype, flen) for ftype, flen in template.fields if flen != VARIABLE)
        scopes = sum(1 for _, flen in template.fields[: template.scopes] if flen != VARIABLE)
        where: dict[int, tuple[int, int]] = {}
        offset = 0
        for ftype, flen in fixed:
            where[ftype] = (offset, flen)  # a repeated field: the last one counts
            offset += flen
        self.where = where
        self.option_fields = fixed[scopes if version == 9 else 0 :]
        self.option_start = sum(flen for _, flen in fixed[:scopes]) if version == 9 else 0
        self.src, self.dst = where.get(_SRC4) or where.get(_SRC6), where.get(_DST4) or where.get(_DST6)
        # IPFIX: a record without a source address is an options record, whatever its template
        self.is_flow = not self.options if version == 9 else self.src is not None
        self.reads = self.src is not None and self.dst is not None and not self.options
        if not self.reads or self.src is None or self.dst is None:
            return
        self.src6, self.dst6 = self.src[1] == 16, self.dst[1] == 16
        fields: dict[str, tuple[int, int]] = {"src": self.src, "dst": self.dst}
        for ftype in (_PROTO, _SPORT, _DPORT, *_PACKETS[version], *_OCTETS[version], *_REVERSE[version]):
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

    def records(self, data: bytes, data_set: DataSet) -> tuple[bytes, int]:
        """A data set's records as fixed-length bytes (variable-length elements cut out), and their count."""
        if self.variable:
            return compact(self.template, data, data_set.start, data_set.end)
        count = (data_set.end - data_set.start) // self.length if self.length else 0
        return data[data_set.start : data_set.start + count * self.length], count

    def option_values(self, data: bytes, data_set: DataSet) -> list[dict[int, int]]:
        out: list[dict[int, int]] = []
        if not self.length:
            return out
        data, count = self.records(data, data_set)
        for start in range(0, count * self.length, self.length):
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
        rev_packets, rev_octets = column("rev_packets"), column("rev_octets")
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
            zeros if rev_packets is None else rev_packets,
            zeros if rev_octets is None else rev_octets,
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
        _REV_PACKETS[0]: "rev_packets",
        _REV_PACKETS[1]: "rev_packets",
        _REV_OCTETS[0]: "rev_octets",
        _REV_OCTETS[1]: "rev_octets",
    },
}


class V5Layout(Layout):
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
            np.zeros(len(rec), np.int64),
            np.zeros(len(rec), np.int64),
        )


V5_LAYOUT: Final = V5Layout()


#: Compiled layouts, shared by exporters that send the same template (bounded).
_LAYOUTS: dict[tuple[int, Template], Layout] = {}


def layout_of(template: Template, version: int) -> Layout:
    key = (version, template)
    found = _LAYOUTS.get(key)
    if found is None:
        if len(_LAYOUTS) >= 4_096:
            _LAYOUTS.clear()
        found = _LAYOUTS[key] = Layout(template, version)
    return found


def _dotted(values: npt.NDArray[np.uint32]) -> pa.Array:
    """IPv4 addresses (uint32) as dotted-quad text, column-wise."""
    parts = [pa.array((values >> shift) & 0xFF).cast(pa.string()) for shift in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*parts, ".")


class Addresses:
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
    first, last, protocol, packets, octets, rev_packets, rev_octets = (
        np.zeros(n, np.int64) for _ in range(7)
    )
    ports = {"sport": np.zeros(n, np.int64), "dport": np.zeros(n, np.int64)}
    absent = {"sport": np.zeros(n, bool), "dport": np.zeros(n, bool)}
    src, dst = Addresses(n), Addresses(n)
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
        rev_packets[at], rev_octets[at] = cols.rev_packets * rate, cols.rev_octets * rate
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
        pa.array(rev_packets),
        pa.array(rev_octets),
        pc.take(pa.array(names, pa.string()), pa.array(exporter)),
    ]
    return pa.Table.from_arrays(columns, schema=RECORD_SCHEMA)
