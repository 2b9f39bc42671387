"""Suricata EVE events to columns of the canonical flow table, column-wise (no loop over rows).

Rules (documented for users in ``docs/ingest-eve.md``): ``src`` is the flow's client (Suricata's
``src_ip`` of a ``flow`` event), bytes are the captured bytes less an Ethernet header per packet,
server names come from the flow's own ``tls``/``quic`` SNI, else its ``http`` Host, else the DNS
answers that gave the destination address (:class:`derisk.store.answers.AnswerIndex`).
"""

from __future__ import annotations

import ipaddress
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.flows import INGEST_SCHEMA, TS
from derisk.ingest.logtext import bound_text, normalise_name
from derisk.store.answers import AnswerIndex

#: Suricata counts each packet's bytes as captured, link-layer header included; derisk's flow table
#: holds IP-layer bytes, so an Ethernet header is taken off per packet (docs/ingest-eve.md).
LINK_HEADER_BYTES: Final = 14
#: ``proto`` as Suricata names it, upper-cased: the IANA keywords of its own table (Suricata 7+,
#: e.g. ``IGMP``, ``IP-in-IP``, ``IPv6`` in suricata-verify's expected flow events) and the
#: /etc/protocols aliases older versions took (``OSPFIGP``, ``IP-ENCAP``); others are numbers.
_PROTOCOLS: Final = {
    **{"TCP": 6, "UDP": 17, "ICMP": 1, "IPV6-ICMP": 58, "SCTP": 132, "GRE": 47, "ESP": 50, "AH": 51},
    **{"IGMP": 2, "IP-IN-IP": 4, "IPIP": 4, "IP-ENCAP": 4, "IPENCAP": 4, "IPV6": 41, "RSVP": 46},
    **{"EIGRP": 88, "OSPF": 89, "OSPFIGP": 89, "ETHERIP": 97, "PIM": 103, "IPCOMP": 108, "VRRP": 112},
    **{"L2TP": 115, "UDPLITE": 136, "MPLS-IN-IP": 137},
}
_ACK: Final = 0x10
_SYN: Final = 0x02
_STRING = pa.string()


def micros(text: pa.Array) -> pa.Array:
    """EVE times (``2024-05-01T10:00:00.123456+0000``) as :data:`TS`; unreadable ones null."""
    try:
        return text.cast(TS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out = []
        for value in text.to_pylist():
            try:
                out.append(pa.scalar(value).cast(TS).value if value is not None else None)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                out.append(None)
        return pa.array(out, pa.int64()).cast(TS)


def addresses(values: pa.Array) -> pa.Array:
    """Addresses in their usual text form: Suricata writes IPv6 in full (``2001:0db8:0000:...``)."""
    v6 = pc.fill_null(pc.match_substring(values, ":"), False)
    if not pc.any(v6).as_py():
        return values
    encoded = pc.dictionary_encode(values)
    dictionary = encoded.dictionary.to_pylist()
    changed = False
    for i in pc.indices_nonzero(pc.fill_null(pc.match_substring(encoded.dictionary, ":"), False)).to_pylist():
        text = dictionary[i]
        try:
            short = ipaddress.ip_address(text).compressed
        except ValueError:
            continue
        if short != text:
            dictionary[i], changed = short, True
    if not changed:
        return values
    return pa.array(dictionary, _STRING).take(encoded.indices)


def _protocols(proto: pa.Array) -> pa.Array:
    encoded = pc.dictionary_encode(pc.utf8_upper(proto))
    numbers = []
    for name in encoded.dictionary.to_pylist():
        number = _PROTOCOLS.get(name) if name is not None else None
        if number is None and name is not None and name.isdigit() and int(name) < 256:
            number = int(name)
        numbers.append(number)
    return pa.array(numbers, pa.int16()).take(encoded.indices)


def _ports(ports: pa.Array, protocol: pa.Array) -> pa.Array:
    transport = pc.fill_null(pc.is_in(protocol, value_set=pa.array([6, 17], pa.int16())), False)
    valid = pc.and_(pc.greater_equal(ports, 0), pc.less(ports, 65536))
    keep = pc.and_(transport, pc.fill_null(valid, False))
    return pc.if_else(keep, ports, pa.scalar(None, pa.int64())).cast(pa.int32())


def _ip_bytes(link_bytes: pa.Array, packets: pa.Array) -> pa.Array:
    """Captured bytes less an Ethernet header per packet; never below 0."""
    overhead = pc.multiply(pc.fill_null(packets, 0), LINK_HEADER_BYTES)
    return pc.max_element_wise(pc.subtract(link_bytes, overhead), 0)


def _attempts(protocol: pa.Array, client_flags: pa.Array) -> pa.Array:
    """A TCP flow whose client sent SYN but never ACK never carried data (null when flags are absent)."""
    encoded = pc.dictionary_encode(client_flags)
    verdicts = []
    for text in encoded.dictionary.to_pylist():
        try:
            flags = int(text, 16) if text else 0
        except ValueError:
            flags = 0
        verdicts.append(None if flags == 0 else bool(flags & _SYN and not flags & _ACK))
    per_flow = pa.array(verdicts, pa.bool_()).take(encoded.indices)
    tcp = pc.equal(protocol, 6)
    return pc.if_else(pc.fill_null(tcp, False), per_flow, pc.if_else(pc.is_valid(protocol), False, None))


def _field(table: pa.Table, parent: str, child: str) -> pa.Array:
    column = table.column(parent)
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return pc.struct_field(array, child)


def column(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


class Pending:
    """Names and labels from application events, by ``flow_id``, until their flow event arrives.

    One table per value (SNI, JA4, Host, User-Agent, query) holds the events that carry it, in
    logged order; a flow's value is the first of its flow id there (``index_in`` finds the first).
    """

    _COLUMNS: Final = ("sni", "ja4", "host", "user_agent", "dns_query")

    def __init__(self) -> None:
        self._tables: dict[str, pa.Table] = {}

    def add(self, events: pa.Table) -> None:
        """Application events of one piece (``flow_id`` and some of the columns above)."""
        if events.num_rows == 0:
            return
        flow_id = column(events, "flow_id")
        for name in self._COLUMNS:
            if name not in events.column_names:
                continue
            values = column(events, name)
            if values.null_count == len(values):
                continue
            keep = pc.is_valid(values)
            part = pa.table({"flow_id": flow_id.filter(keep), name: values.filter(keep)})
            if name in self._tables:
                part = pa.concat_tables([self._tables[name], part]).combine_chunks()
            self._tables[name] = part

    def snapshot(self) -> dict[str, pa.Table]:
        """The waiting names as they are (tables are immutable), for :meth:`restore`."""
        return dict(self._tables)

    def restore(self, snapshot: dict[str, pa.Table]) -> None:
        self._tables = dict(snapshot)

    def take(self, flow_ids: pa.Array, *, forget: bool = True) -> dict[str, pa.Array]:
        """The names of these flows; ``forget`` when they have ended (one flow event per flow)."""
        n = len(flow_ids)
        out = {name: pa.nulls(n, _STRING) for name in self._COLUMNS}
        for name, table in list(self._tables.items()):
            known = column(table, "flow_id")
            index = pc.index_in(flow_ids, value_set=known)
            if index.null_count == n:
                continue
            out[name] = column(table, name).take(index)
            if forget:  # netflow keeps them: one event per direction, both with the flow's id
                done = pc.is_in(known, value_set=flow_ids.filter(pc.is_valid(index)))
                self._tables[name] = table.filter(pc.invert(done))
        return out


def app_events(table: pa.Table, kinds: pa.Array) -> pa.Table:
    """``flow_id`` with server name, JA4, Host, User-Agent and DNS query of the application events."""
    is_tls = pc.equal(kinds, "tls")
    is_quic = pc.equal(kinds, "quic")
    is_http = pc.equal(kinds, "http")
    is_dns = pc.equal(kinds, "dns")
    wanted = pc.fill_null(pc.or_(pc.or_(is_tls, is_quic), pc.or_(is_http, is_dns)), False)
    if not pc.any(wanted).as_py():
        return pa.table({"flow_id": pa.array([], pa.int64())})
    part = table.select(["flow_id", "tls", "quic", "http", "dns"]).filter(wanted)
    kinds = kinds.filter(wanted)
    none = pa.scalar(None, _STRING)
    sni = pc.if_else(
        pc.equal(kinds, "tls"),
        _field(part, "tls", "sni"),
        pc.if_else(pc.equal(kinds, "quic"), _field(part, "quic", "sni"), none),
    )
    http = pc.equal(kinds, "http")
    host = pc.if_else(http, _field(part, "http", "hostname"), none)
    if pc.any(pc.fill_null(pc.match_substring(host, ":"), False)).as_py():
        host = pc.replace_substring_regex(host, r":[0-9]+$", "")
    queries = _field(part, "dns", "queries")
    first_query = pc.list_element(pc.if_else(pc.greater(pc.list_value_length(queries), 0), queries, None), 0)
    query = pc.coalesce(_field(part, "dns", "rrname"), pc.struct_field(first_query, "rrname"))
    return pa.table(
        {
            "flow_id": column(part, "flow_id"),
            "sni": normalise_name(bound_text(sni)),
            "ja4": pc.if_else(pc.equal(kinds, "tls"), bound_text(_field(part, "tls", "ja4")), none),
            "host": normalise_name(bound_text(host)),
            "user_agent": pc.if_else(http, bound_text(_field(part, "http", "http_user_agent")), none),
            "dns_query": pc.if_else(pc.equal(kinds, "dns"), normalise_name(bound_text(query)), none),
        }
    ).filter(pc.is_valid(column(part, "flow_id")))


def dns_answers(table: pa.Table, kinds: pa.Array) -> pa.Table | None:
    """One row per A/AAAA address answered: (client, address, time, question), in log order."""
    is_dns = pc.fill_null(pc.equal(kinds, "dns"), False)
    if not pc.any(is_dns).as_py():
        return None
    dns = table.select(["timestamp", "src_ip", "dns"]).filter(is_dns)
    queries = _field(dns, "dns", "queries")
    first = pc.list_element(pc.if_else(pc.greater(pc.list_value_length(queries), 0), queries, None), 0)
    question = normalise_name(
        bound_text(pc.coalesce(_field(dns, "dns", "rrname"), pc.struct_field(first, "rrname")))
    )
    ts = micros(column(dns, "timestamp")).cast(pa.int64())
    client = addresses(column(dns, "src_ip"))
    rows: list[pa.Table] = []
    # Detailed answers (EVE v2 and v3): a list of records; grouped answers: lists per type.
    answers = _field(dns, "dns", "answers")
    parent = pc.list_parent_indices(answers)
    flat = pc.list_flatten(answers)
    address_type = pc.is_in(pc.struct_field(flat, "rrtype"), value_set=pa.array(["A", "AAAA"]))
    rows.append(_answer_rows(pc.struct_field(flat, "rdata"), parent, address_type, client, ts, question))
    for rrtype in ("A", "AAAA"):
        grouped = pc.struct_field(_field(dns, "dns", "grouped"), rrtype)
        values = pc.list_flatten(grouped)
        rows.append(_answer_rows(values, pc.list_parent_indices(grouped), None, client, ts, question))
    # EVE v1: one event per answer record.
    single = pc.and_(
        pc.equal(_field(dns, "dns", "type"), "answer"),
        pc.is_in(_field(dns, "dns", "rrtype"), value_set=pa.array(["A", "AAAA"])),
    )
    rows.append(
        _answer_rows(
            _field(dns, "dns", "rdata"),
            pa.array(range(dns.num_rows), pa.int64()),
            single,
            client,
            ts,
            question,
        )
    )
    found = pa.concat_tables(rows)
    return found if found.num_rows else None


def _answer_rows(
    values: pa.Array,
    parent: pa.Array,
    keep: pa.Array | None,
    client: pa.Array,
    ts: pa.Array,
    question: pa.Array,
) -> pa.Table:
    parent = parent.cast(pa.int64())
    valid = pc.is_valid(values)
    if keep is not None:
        valid = pc.and_(valid, pc.fill_null(keep, False))
    values, parent = values.filter(valid), parent.filter(valid)
    table = pa.table(
        {
            "client": client.take(parent),
            "address": addresses(bound_text(values)) if len(values) else values.cast(_STRING),
            "ts": ts.take(parent),
            "name": question.take(parent),
        }
    )
    return table.filter(pc.and_(pc.is_valid(table["ts"]), pc.is_valid(table["name"])))


_FLOW_COLUMNS: Final = (
    "timestamp", "flow_id", "src_ip", "src_port", "dest_ip", "dest_port", "proto", "app_proto",
)  # fmt: skip
#: The nested records :func:`to_batch` reads, per kind of flow event (filtering the others, large
#: structs that are null in these rows, would be wasted work).
_FLOW_RECORDS: Final = {"flow": ("flow", "tcp"), "netflow": ("netflow",)}


def flow_rows(table: pa.Table, kinds: pa.Array, kind: str) -> pa.Table:
    """The ``kind`` events (``flow`` or ``netflow``) that have both addresses, in one filter."""
    keep = pc.and_(
        pc.fill_null(pc.equal(kinds, kind), False),
        pc.and_(pc.is_valid(column(table, "src_ip")), pc.is_valid(column(table, "dest_ip"))),
    )
    return table.select([*_FLOW_COLUMNS, *_FLOW_RECORDS[kind]]).filter(keep)


def to_batch(
    flows: pa.Table, names: dict[str, pa.Array], answers: AnswerIndex, netflow: bool
) -> pa.RecordBatch:
    """Flow (or netflow) events of one piece as an :data:`INGEST_SCHEMA` batch."""
    n = flows.num_rows
    src, dst = addresses(column(flows, "src_ip")), addresses(column(flows, "dest_ip"))
    protocol = _protocols(column(flows, "proto"))
    record = "netflow" if netflow else "flow"
    first = micros(_field(flows, record, "start"))
    last = micros(_field(flows, record, "end"))
    first = pc.coalesce(first, micros(column(flows, "timestamp")))
    if netflow:
        sent = _ip_bytes(_field(flows, "netflow", "bytes"), _field(flows, "netflow", "pkts"))
        bytes_out, bytes_in = sent, pa.array([0] * n, pa.int64())
        packets_out, packets_in = _field(flows, "netflow", "pkts"), pa.array([0] * n, pa.int64())
        state = pa.nulls(n, _STRING)
        attempt = pa.nulls(n, pa.bool_())
    else:
        packets_out, packets_in = (
            _field(flows, "flow", "pkts_toserver"),
            _field(flows, "flow", "pkts_toclient"),
        )
        bytes_out = _ip_bytes(_field(flows, "flow", "bytes_toserver"), packets_out)
        bytes_in = _ip_bytes(_field(flows, "flow", "bytes_toclient"), packets_in)
        state = bound_text(_field(flows, "flow", "state"))
        attempt = _attempts(protocol, _field(flows, "tcp", "tcp_flags_ts"))
    sni, host = names["sni"], names["host"]
    server_name = pc.coalesce(sni, host)
    none = pa.scalar(None, _STRING)
    source = pc.if_else(pc.is_valid(sni), "sni", pc.if_else(pc.is_valid(host), "http-host", none))
    missing = pc.is_null(server_name)
    if len(answers) and pc.any(missing).as_py():
        rows = pc.indices_nonzero(missing)
        client, server, start = src.take(rows), dst.take(rows), first.take(rows).cast(pa.int64())
        found = answers.names(client, server, start)
        if netflow:  # a reply's source is the server, its destination the client
            found = pc.coalesce(found, answers.names(server, client, start))
        if found.null_count < len(found):
            # Row i of the piece is answer number (missing rows before it) when it is missing a name.
            rank = pc.subtract(pc.cumulative_sum(missing.cast(pa.int64())), 1)
            scattered = found.take(pc.if_else(missing, rank, pa.scalar(None, pa.int64())))
            server_name = pc.coalesce(server_name, scattered)
            source = pc.if_else(pc.and_(missing, pc.is_valid(scattered)), "dns-answer", source)
    application = column(flows, "app_proto")
    application = pc.if_else(pc.is_in(application, value_set=pa.array(["failed"])), none, application)
    flow_id = column(flows, "flow_id")
    arrays = {
        "first_seen": first,
        "last_seen": last,
        "src_ip": src,
        "src_port": _ports(column(flows, "src_port"), protocol),
        "dst_ip": dst,
        "dst_port": _ports(column(flows, "dest_port"), protocol),
        "protocol": protocol,
        "bytes_out": bytes_out,
        "bytes_in": bytes_in,
        "packets_out": packets_out,
        "packets_in": packets_in,
        "server_name": server_name,
        "server_name_source": source,
        "application": bound_text(application),
        "ja4": names["ja4"],
        "user_agent": names["user_agent"],
        "dns_query": pc.if_else(pc.is_in(application, value_set=pa.array(["dns"])), names["dns_query"], none),
        "source_ref": flow_id.cast(_STRING),
        "conn_state": state,
        "is_attempt": attempt,
    }
    return pa.RecordBatch.from_arrays(
        [arrays[f.name].cast(f.type) for f in INGEST_SCHEMA], schema=INGEST_SCHEMA
    )
