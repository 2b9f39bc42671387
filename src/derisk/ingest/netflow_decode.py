"""NetFlow v5, v9 and IPFIX datagrams into columns of records, with templates and sampling per exporter.

Decoding is vectorised: a v5 datagram is an array of fixed 48-byte records, and a v9/IPFIX template
gives every field a fixed offset and length, so each template is compiled once into a big-endian
NumPy structured dtype (:mod:`.netflow_layout`); the records of each data flowset are kept as
bytes (:class:`Chunk`), and :func:`to_table` reads all chunks of a batch that share a template with
one ``np.frombuffer`` into one Arrow table. Only options records (sampling announcements, a few per
minute) are read field by field, and no third-party NetFlow parser is used.

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

import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Final

from derisk.ingest import sflow
from derisk.ingest.netflow_frames import (
    DataSet,
    Malformed,
    Template,
    check_ipfix,
    check_v9,
    ipfix_sets,
    v9_sets,
)
from derisk.ingest.netflow_layout import V5_LAYOUT, Chunk, Layout, layout_of, to_table

__all__ = ["Chunk", "Decoder", "ExporterKey", "Malformed", "Stats", "to_table"]

#: (exporter address, version, source id / observation domain)
ExporterKey = tuple[str, int, int]

#: Datagrams waiting for a template, per exporter.
_QUEUE: Final = 64
_MAX_RATE: Final = 1 << 24
#: Exporters and templates kept (a sender can forge source addresses and template ids).
_MAX_EXPORTERS: Final = 10_000
_MAX_TEMPLATES: Final = 1_024


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
    #: sFlow v5 flow samples read (each a sampled packet, :mod:`.sflow`).
    sflow_samples: int = 0
    sampling: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(text)


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
    templates: dict[int, Layout] = field(default_factory=dict)
    waiting: deque[bytes] = field(default_factory=lambda: deque(maxlen=_QUEUE))
    rate: int = 1


class Decoder:
    """Decodes the datagrams of any number of exporters; keeps their templates and sampling rates."""

    def __init__(self) -> None:
        self.stats = Stats()
        self._exporters: dict[ExporterKey, _Exporter] = {}
        #: sFlow samples decoded and not yet taken (:meth:`take_samples`).
        self.samples: list[sflow.Sample] = []

    def take_samples(self) -> list[sflow.Sample]:
        taken, self.samples = self.samples, []
        return taken

    def _exporter(self, key: ExporterKey) -> _Exporter:
        found = self._exporters.get(key)
        if found is None:
            if len(self._exporters) >= _MAX_EXPORTERS:
                raise Malformed("too many exporters")
            found = self._exporters[key] = _Exporter()
        return found

    def decode(self, data: bytes, address: str, received_us: int | None = None) -> list[Chunk]:
        """The records of one datagram (sampling applied); problems are counted, never raised.

        An sFlow datagram's samples go to :attr:`samples` instead (``received_us``: when it arrived,
        its samples' time; now when not given)."""
        self.stats.datagrams += 1
        try:
            if data[:4] == sflow.MAGIC:
                when = time.time_ns() // 1000 if received_us is None else received_us
                found, _ = sflow.samples(data, when, address)
                self.samples.extend(found)
                self.stats.sflow_samples += len(found)
                self.stats.records += len(found)
                return []
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
        chunk = Chunk(V5_LAYOUT, data[24:], (len(data) - 24) // 48, now_ms, uptime, _name(key))
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
                exporter.templates[item.template_id] = layout_of(item, version)
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
                if layout.reads:
                    records, count = layout.records(data, data_set)
                    if count:
                        chunks.append(Chunk(layout, records, count, now_ms, uptime, name))
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
