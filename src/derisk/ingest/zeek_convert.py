"""conn.log records as DuckDB read them (:mod:`derisk.store.zeekread`) to the canonical flow table."""

from __future__ import annotations

from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA, TS
from derisk.ingest.zeek_join import Companions
from derisk.ingest.zeek_log import MAX_EPOCH_SECONDS, ZeekLog, text
from derisk.store import zeekread

CONN_NOT_NULL: Final = frozenset({"ts", "uid", "id.orig_h", "id.resp_h"})


def labels(values: pa.Array, log: ZeekLog) -> pa.Array:
    """A text column with few distinct values, unescaped and bounded once per distinct value."""
    if values.null_count == len(values):
        return values
    encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    return text(encoded.dictionary, log).take(encoded.indices)


def duck_flows(batch: pa.RecordBatch, log: ZeekLog, companions: Companions) -> pa.RecordBatch:
    """Convert a batch of :func:`derisk.store.zeekread.read_conn` into an :data:`INGEST_SCHEMA` batch.

    Raises :class:`~derisk.store.zeekread.ZeekReadError` for a record with an unset ``ts``, ``uid``
    or address, or a time before 1970 or past :data:`MAX_EPOCH_SECONDS`.
    """
    for name in ("first_us", "uid", "src_ip", "dst_ip"):
        if batch.column(name).null_count:
            raise zeekread.ZeekReadError(f"{name} is unset")
    bounds = pc.min_max(batch.column("first_us")).as_py()
    if bounds["min"] < 0 or bounds["max"] >= MAX_EPOCH_SECONDS * 1e6:
        raise zeekread.ZeekReadError("implausible timestamp")
    first = batch.column("first_us").cast(TS)
    uid, src_ip, dst_ip = batch.column("uid"), batch.column("src_ip"), batch.column("dst_ip")
    extra = companions.enrich(uid, src_ip, dst_ip, first, batch.column("uid_hash"))
    plain = pc.all(batch.column("plain_text")).as_py()  # no escapes, nothing empty or long: as read
    service, state = batch.column("service"), batch.column("conn_state")
    arrays = {
        "first_seen": first,
        "last_seen": batch.column("last_us").cast(TS),
        "server_name": extra.server_name,
        "server_name_source": extra.server_name_source,
        "application": service if plain else labels(service, log),
        "ja4": extra.ja4,
        "user_agent": extra.user_agent,
        "dns_query": extra.dns_query,
        "source_ref": uid,
        "conn_state": state if plain else labels(state, log),
    }
    columns = [arrays[f.name] if f.name in arrays else batch.column(f.name) for f in INGEST_SCHEMA]
    return pa.RecordBatch.from_arrays(
        [c if c.type == f.type else c.cast(f.type) for c, f in zip(columns, INGEST_SCHEMA, strict=True)],
        schema=INGEST_SCHEMA,
    )


def to_flows(records: pa.RecordBatch | pa.Table, log: ZeekLog, companions: Companions) -> pa.RecordBatch:
    """conn records read by :meth:`ZeekLog.parse` (Zeek's names, ``ts`` in µs) as one
    :data:`INGEST_SCHEMA` batch, converted by the same ``SELECT`` and checks as a whole log.

    Raises :class:`~derisk.errors.InputError` naming the log when a record is unusable.
    """
    table = records if isinstance(records, pa.Table) else pa.Table.from_batches([records])
    try:
        converted = zeekread.convert_records(table, log.columns, companions.database)
        batch = converted.combine_chunks().to_batches()
        if not batch:
            return pa.RecordBatch.from_pylist([], schema=INGEST_SCHEMA)
        return duck_flows(batch[0], log, companions)
    except zeekread.ZeekReadError as exc:  # no scan of the whole file: these records may be a piece of it
        raise InputError(f"a record cannot be used ({exc})", source=log.display) from None
