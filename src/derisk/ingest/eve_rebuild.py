"""Connections rebuilt from alert and protocol events, for EVE logs without ``flow`` events.

Many sites log only alerts, or alerts with ``http``/``dns``/``tls``/``fileinfo`` events, and turn
Suricata's ``flow`` type off. Every such event names its flow (``flow_id``) and carries the
5-tuple, so one connection per ``flow_id`` is rebuilt from its events, column-wise:

* **who is the client**: Suricata writes protocol events (``http``, ``tls``, ``dns``, ``quic``,
  ``ssh``, ``smtp``, ...) in the flow's direction, client first; an alert of Suricata 7+ names the
  flow's client (``flow.src_ip``) and the packet's direction (``direction``: ``to_server`` or
  ``to_client``). Older alerts, ``fileinfo`` and ``anomaly`` events are written in the direction of
  the packet (or file), so for them the side with a well-known port (below 1024) against an
  ephemeral one is taken as the server. The most reliable event of the flow decides, the first in
  the log among equals.
* **times**: the earliest of the events' times and of an alert's ``flow.start``, the latest event
  time; events of Suricata's pseudo-packets (flow timeout, shutdown: no ``pcap_cnt``) can carry a
  stale time (the capture's first, in a real log) and date the connection only when no other event
  of it does;
* **bytes and packets**: the largest ``flow`` counters an event carries (alerts carry
  ``pkts_toserver``, ``bytes_toclient``, ...): lower bounds, counted up to that event; 0 when no event
  of the flow carries counters.

A flow's events may be anywhere in the log (there is no ``flow`` event to end it), so the per-flow
summaries are kept until the whole input is read: one row per flow, compacted as the input grows.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.flows import TS
from derisk.ingest.eve_convert import column, micros

#: Events that tell nothing about a connection (or are flows already).
_NOT_EVENTS: Final = ("flow", "netflow", "stats")
#: Events written in the packet's (or file's) direction, not the flow's.
_PACKET_DIRECTION: Final = ("alert", "anomaly", "fileinfo", "drop", "pkthdr", "frame")
#: Rank of an event's orientation (lower is more reliable), in the high bits of the sort key.
_FLOW_ORIENTED, _DIRECTION_GIVEN, _PORT_GUESS = 0, 1, 2
_RANK_SHIFT: Final = 44
_SERVICE_PORTS: Final = 1024
_COUNTERS: Final = ("pkts_toserver", "pkts_toclient", "bytes_toserver", "bytes_toclient")

#: One row per event (per flow once compacted).
SUMMARY_SCHEMA: Final = pa.schema(
    [
        pa.field("flow_id", pa.int64()),
        pa.field("key", pa.int64()),
        pa.field("src_ip", pa.string()),
        pa.field("src_port", pa.int64()),
        pa.field("dest_ip", pa.string()),
        pa.field("dest_port", pa.int64()),
        pa.field("proto", pa.string()),
        pa.field("app_proto", pa.string()),
        pa.field("first", pa.int64()),
        pa.field("last", pa.int64()),
        pa.field("first_any", pa.int64()),
        pa.field("last_any", pa.int64()),
        *(pa.field(name, pa.int64()) for name in _COUNTERS),
        pa.field("events", pa.int64()),
    ]
)


def _struct_field(table: pa.Table, parent: str, child: str) -> pa.Array:
    return pc.struct_field(column(table, parent), child)


def event_rows(table: pa.Table, kinds: pa.Array) -> pa.Table:
    """The events of a parsed piece that stand for a connection, as :data:`SUMMARY_SCHEMA` rows
    (``key``: the orientation's rank in the high bits, the row's place in the piece below)."""
    keep = pc.and_(
        pc.and_(pc.is_valid(column(table, "flow_id")), pc.is_valid(kinds)),
        pc.and_(pc.is_valid(column(table, "src_ip")), pc.is_valid(column(table, "dest_ip"))),
    )
    keep = pc.and_(keep, pc.invert(pc.is_in(kinds, value_set=pa.array(_NOT_EVENTS))))
    keep = pc.fill_null(keep, False)
    if not pc.any(keep).as_py():
        return SUMMARY_SCHEMA.empty_table()
    part = table.filter(keep)
    kinds = kinds.filter(keep)
    src, dst = column(part, "src_ip"), column(part, "dest_ip")
    sport, dport = column(part, "src_port"), column(part, "dest_port")
    alert = pc.equal(kinds, "alert")
    flow_client = _struct_field(part, "flow", "src_ip")
    direction = column(part, "direction")
    # The flow's client named (Suricata 7+ alerts): swap when it is the event's destination.
    named = pc.fill_null(pc.and_(alert, pc.is_valid(flow_client)), False)
    named_swap = pc.fill_null(pc.and_(named, pc.equal(flow_client, dst)), False)
    # The packet's direction given.
    directed = pc.fill_null(
        pc.and_(pc.invert(named), pc.is_in(direction, pa.array(["to_server", "to_client"]))), False
    )
    directed_swap = pc.fill_null(pc.and_(directed, pc.equal(direction, "to_client")), False)
    # Packet-direction events without either: a service port against an ephemeral one.
    packetwise = pc.fill_null(pc.is_in(kinds, value_set=pa.array(_PACKET_DIRECTION)), False)
    guessed = pc.and_(packetwise, pc.invert(pc.or_(named, directed)))
    reversed_ports = pc.fill_null(
        pc.and_(pc.less(sport, _SERVICE_PORTS), pc.greater_equal(dport, _SERVICE_PORTS)), False
    )
    guessed_swap = pc.and_(guessed, reversed_ports)
    swap = pc.or_(pc.or_(named_swap, directed_swap), guessed_swap)
    rank = pc.if_else(guessed, _PORT_GUESS, pc.if_else(directed, _DIRECTION_GIVEN, _FLOW_ORIENTED)).cast(
        pa.int64()
    )
    order = pa.array(range(part.num_rows), pa.int64())
    key = pc.add(pc.shift_left(rank, _RANK_SHIFT), order)
    times = micros(column(part, "timestamp")).cast(pa.int64())
    start = micros(_struct_field(part, "flow", "start")).cast(pa.int64())
    # A pseudo-packet's event (no pcap_cnt) can carry a stale time (seen: the capture's first).
    dated = pc.if_else(pc.is_valid(column(part, "pcap_cnt")), times, pa.scalar(None, pa.int64()))
    app = column(part, "app_proto")
    protocol_event = pc.invert(pc.fill_null(pc.or_(packetwise, alert), True))
    app = pc.coalesce(app, pc.if_else(protocol_event, kinds, pa.scalar(None, pa.string())))
    arrays = {
        "flow_id": column(part, "flow_id"),
        "key": key,
        "src_ip": pc.if_else(swap, dst, src),
        "src_port": pc.if_else(swap, dport, sport),
        "dest_ip": pc.if_else(swap, src, dst),
        "dest_port": pc.if_else(swap, sport, dport),
        "proto": column(part, "proto"),
        "app_proto": app,
        "first": pc.min_element_wise(dated, start),
        "last": pc.max_element_wise(dated, start),
        "first_any": pc.min_element_wise(times, start),
        "last_any": pc.max_element_wise(times, start),
        **{name: _struct_field(part, "flow", name) for name in _COUNTERS},
        "events": pa.array([1] * part.num_rows, pa.int64()),
    }
    return pa.table([arrays[f.name].cast(f.type) for f in SUMMARY_SCHEMA], schema=SUMMARY_SCHEMA)


_FIRST: Final = pc.ScalarAggregateOptions(skip_nulls=False)


def compact(table: pa.Table) -> pa.Table:
    """One row per ``flow_id``: the orientation of the row with the lowest ``key``, the earliest and
    latest times, the largest counters, the events counted. Compacting compacted rows again gives
    the same result, so pieces can be summarised one by one and then together."""
    if table.num_rows == 0:
        return SUMMARY_SCHEMA.empty_table()
    ordered = table.sort_by([("flow_id", "ascending"), ("key", "ascending")])
    oriented = ("src_ip", "src_port", "dest_ip", "dest_port", "proto")
    grouped = ordered.group_by("flow_id", use_threads=False).aggregate(
        [
            ("key", "min"),
            *((name, "first", _FIRST) for name in oriented),
            ("app_proto", "first"),
            ("first", "min"),
            ("last", "max"),
            ("first_any", "min"),
            ("last_any", "max"),
            *((name, "max") for name in _COUNTERS),
            ("events", "sum"),
        ]
    )
    renamed = grouped.rename_columns(
        [name.rsplit("_", 1)[0] if name != "flow_id" else name for name in grouped.column_names]
    )
    return renamed.select(SUMMARY_SCHEMA.names).cast(SUMMARY_SCHEMA)


class Rebuild:
    """Per-flow summaries of the events read so far, in order; :meth:`add` keeps them compact."""

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []
        self._rows = 0
        self._compacted = 0
        #: Added to each piece's row places, so that the first event in the log wins among equals.
        self._seen = 0

    def add(self, rows: pa.Table) -> None:
        if rows.num_rows == 0:
            return
        key = pc.add(column(rows, "key"), self._seen)
        self._seen += rows.num_rows
        part = compact(rows.set_column(1, "key", key))
        self._parts.append(part)
        self._rows += part.num_rows
        if self._rows > 2 * self._compacted + 65_536:
            whole = compact(pa.concat_tables(self._parts))
            self._parts, self._rows, self._compacted = [whole], whole.num_rows, whole.num_rows

    def snapshot(self) -> tuple[list[pa.Table], int, int, int]:
        return list(self._parts), self._rows, self._compacted, self._seen

    def restore(self, snapshot: tuple[list[pa.Table], int, int, int]) -> None:
        parts, self._rows, self._compacted, self._seen = snapshot
        self._parts = list(parts)

    def flows(self) -> pa.Table:
        """The rebuilt connections as ``flow`` events (the columns :func:`flow_rows` selects), in
        order of their first time, and the number of events that made them."""
        summary = compact(pa.concat_tables(self._parts)) if self._parts else SUMMARY_SCHEMA.empty_table()
        dated = pc.coalesce(column(summary, "first"), column(summary, "first_any"))
        summary = summary.set_column(summary.schema.get_field_index("first"), "first", dated)
        summary = summary.sort_by([("first", "ascending"), ("flow_id", "ascending")])
        first = column(summary, "first").cast(TS)
        last = pc.coalesce(column(summary, "last"), column(summary, "last_any")).cast(TS)
        n = summary.num_rows
        flow = pa.StructArray.from_arrays(
            [
                *(pc.fill_null(column(summary, name), 0) for name in _COUNTERS),
                first,
                last,
                pa.nulls(n, pa.string()),
            ],
            names=[*_COUNTERS, "start", "end", "state"],
        )
        return pa.table(
            {
                "timestamp": first,
                "flow_id": column(summary, "flow_id"),
                "src_ip": column(summary, "src_ip"),
                "src_port": column(summary, "src_port"),
                "dest_ip": column(summary, "dest_ip"),
                "dest_port": column(summary, "dest_port"),
                "proto": column(summary, "proto"),
                "app_proto": column(summary, "app_proto"),
                "flow": flow,
                "tcp": pa.StructArray.from_arrays([pa.nulls(n, pa.string())], names=["tcp_flags_ts"]),
                "events": column(summary, "events"),
            }
        )
