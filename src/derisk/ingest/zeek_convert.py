"""conn.log batches (Zeek column names, or :mod:`derisk.store.zeekread`'s) to the canonical flow table."""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.flows import INGEST_SCHEMA, TS
from derisk.ingest.zeek_attempts import attempt_flags
from derisk.ingest.zeek_join import Companions
from derisk.ingest.zeek_log import MAX_EPOCH_SECONDS, ZeekLog, column, micros, text, timestamps
from derisk.store import zeekread

CONN_NOT_NULL: Final = frozenset({"ts", "uid", "id.orig_h", "id.resp_h"})
_PROTOCOLS: Final = {"tcp": 6, "udp": 17, "icmp": 1}


def _encoded(values: pa.Array) -> pa.DictionaryArray:
    return values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)


def _protocols(proto: pa.Array, orig_h: pa.Array) -> pa.Array:
    """Zeek's transport names as IP protocol numbers (ICMP over IPv6 is 58); others null."""
    encoded = _encoded(proto)
    names = pa.array(list(_PROTOCOLS))
    numbers = pa.array(list(_PROTOCOLS.values()), pa.int16())
    per_name = numbers.take(pc.index_in(pc.utf8_lower(encoded.dictionary), value_set=names))
    number = per_name.take(encoded.indices)
    if 1 in per_name.to_pylist():
        icmp6 = pc.and_(pc.equal(number, 1), pc.match_substring(orig_h, ":"))
        number = pc.if_else(icmp6, pa.scalar(58, pa.int16()), number)
    return number


def _ports(ports: pa.Array, protocol: pa.Array) -> pa.Array:
    """Ports of TCP and UDP flows; null otherwise (Zeek puts ICMP type and code there)."""
    transport = pc.fill_null(pc.is_in(protocol, value_set=pa.array([6, 17], pa.int16())), False)
    return pc.if_else(transport, ports.cast(pa.int32()), pa.scalar(None, pa.int32()))


def labels(values: pa.Array, log: ZeekLog) -> pa.Array:
    """A text column with few distinct values, unescaped and bounded once per distinct value."""
    encoded = _encoded(values)
    return text(encoded.dictionary, log).take(encoded.indices)


def to_flows(batch: pa.RecordBatch, log: ZeekLog, companions: Companions) -> pa.RecordBatch:
    """Convert one conn.log batch (Zeek column names) into an :data:`INGEST_SCHEMA` batch."""
    for name in CONN_NOT_NULL:
        if column(batch, name).null_count:
            raise log.diagnose(ValueError(f"{name} unset"), CONN_NOT_NULL)
    first = timestamps(column(batch, "ts"), log, CONN_NOT_NULL)
    if "duration" in log.columns:
        duration = column(batch, "duration")
        last = pc.add(first.cast(pa.int64()), micros(duration)).cast(TS)
    else:
        last = pa.nulls(batch.num_rows, TS)
    uid, orig_h, resp_h = column(batch, "uid"), column(batch, "id.orig_h"), column(batch, "id.resp_h")
    extra = companions.enrich(uid, orig_h, resp_h, first)
    protocol = _protocols(column(batch, "proto"), orig_h)
    service = (
        labels(column(batch, "service"), log)
        if "service" in log.columns
        else pa.nulls(batch.num_rows, pa.string())
    )
    arrays = {
        "first_seen": first,
        "last_seen": last,
        "src_ip": orig_h,
        "src_port": _ports(column(batch, "id.orig_p"), protocol),
        "dst_ip": resp_h,
        "dst_port": _ports(column(batch, "id.resp_p"), protocol),
        "protocol": protocol,
        "bytes_out": column(batch, "orig_ip_bytes"),
        "bytes_in": column(batch, "resp_ip_bytes"),
        "packets_out": column(batch, "orig_pkts"),
        "packets_in": column(batch, "resp_pkts"),
        "server_name": extra.server_name,
        "server_name_source": extra.server_name_source,
        "application": service,
        "ja4": extra.ja4,
        "user_agent": extra.user_agent,
        "dns_query": extra.dns_query,
        "source_ref": uid,
        **_attempts(batch, log, protocol),
    }
    return pa.RecordBatch.from_arrays(
        [arrays[f.name].cast(f.type) for f in INGEST_SCHEMA], schema=INGEST_SCHEMA
    )


def _attempts(batch: pa.RecordBatch, log: ZeekLog, protocol: pa.Array) -> dict[str, pa.Array]:
    """``conn_state`` (bounded text) and ``is_attempt`` of a conn.log batch in Zeek column names."""
    if "conn_state" not in log.columns:
        return {
            "conn_state": pa.nulls(batch.num_rows, pa.string()),
            "is_attempt": pa.nulls(batch.num_rows, pa.bool_()),
        }
    state = labels(column(batch, "conn_state"), log)
    payload = "orig_bytes" in log.columns and "resp_bytes" in log.columns
    flags = attempt_flags(
        state,
        (column(batch, "orig_bytes"), column(batch, "resp_bytes")) if payload else None,
        (column(batch, "orig_ip_bytes"), column(batch, "resp_ip_bytes")),
        (column(batch, "orig_pkts"), column(batch, "resp_pkts")),
        protocol,
        pc.match_substring(column(batch, "id.orig_h"), ":"),
    )
    return {"conn_state": state, "is_attempt": flags}


def duck_flows(batch: pa.RecordBatch, log: ZeekLog, companions: Companions) -> pa.RecordBatch:
    """Convert a batch of :func:`derisk.store.zeekread.read_conn` into an :data:`INGEST_SCHEMA` batch."""
    for name in ("first_us", "uid", "src_ip", "dst_ip"):
        if batch.column(name).null_count:
            raise zeekread.ZeekReadError(f"{name} is unset")
    bounds = pc.min_max(batch.column("first_us")).as_py()
    if bounds["min"] < 0 or bounds["max"] >= MAX_EPOCH_SECONDS * 1e6:
        raise zeekread.ZeekReadError("implausible timestamp")
    first = batch.column("first_us").cast(TS)
    uid, src_ip, dst_ip = batch.column("uid"), batch.column("src_ip"), batch.column("dst_ip")
    extra = companions.enrich(uid, src_ip, dst_ip, first)
    service = batch.column("service")
    arrays = {
        "first_seen": first,
        "last_seen": batch.column("last_us").cast(TS),
        "server_name": extra.server_name,
        "server_name_source": extra.server_name_source,
        "application": labels(service, log) if service.null_count < len(service) else service,
        "ja4": extra.ja4,
        "user_agent": extra.user_agent,
        "dns_query": extra.dns_query,
        "source_ref": uid,
        **_duck_attempts(batch, log),
    }
    return pa.RecordBatch.from_arrays(
        [(arrays[f.name] if f.name in arrays else batch.column(f.name)).cast(f.type) for f in INGEST_SCHEMA],
        schema=INGEST_SCHEMA,
    )


def _duck_attempts(batch: pa.RecordBatch, log: ZeekLog) -> dict[str, pa.Array]:
    state = batch.column("conn_state")
    if state.null_count == len(state):
        return {"conn_state": state, "is_attempt": pa.nulls(batch.num_rows, pa.bool_())}
    state = labels(state, log)
    payload = "orig_bytes" in log.columns and "resp_bytes" in log.columns
    flags = attempt_flags(
        state,
        (batch.column("orig_bytes"), batch.column("resp_bytes")) if payload else None,
        (batch.column("bytes_out"), batch.column("bytes_in")),
        (batch.column("packets_out"), batch.column("packets_in")),
        batch.column("protocol"),
        pc.match_substring(batch.column("src_ip"), ":"),
    )
    return {"conn_state": state, "is_attempt": flags}
