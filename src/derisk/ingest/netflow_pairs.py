"""Unidirectional NetFlow/IPFIX records into the bidirectional flows of the canonical table.

A NetFlow v5/v9 record (and an IPFIX record without reverse counters) describes one direction of a
connection. Within each batch of records, the n-th record of one direction of a 5-tuple is paired
with the n-th record of the other direction (in order of first packet); the pair becomes one flow
opened by the side whose first packet came first (on a tie, the side with the higher port, a
client's ephemeral port). A record left alone (its other direction was not exported, or fell in
another batch) is one flow on its own; when its source port is below 1024 and its destination port
is not, it is taken as a server's answer: the flow is oriented from the other end and its counts go
to ``bytes_in``. Biflow records (IPFIX reverse counters) are already one flow each. Last, as for
captures (:mod:`derisk.ingest.initiator`), a flow from a server port (the System Ports and listed
User Ports) to a client port is turned round: a pair whose server record came first (a connection
older than the exporter's cache entry, split by its active timeout) is the client's. Only records
of the same exporter (``source_ref``) are paired: two routers on one path export the same packets.

Vectorised with numpy over each batch: one sort by connection, direction and first packet, ranks
within groups, and an intersection of (connection, rank) keys between the two directions.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.flows import INGEST_SCHEMA, TS, contiguous
from derisk.ingest.initiator import by_opener

#: One NetFlow record as readers hand it to :class:`Pairer` (times in epoch microseconds).
RECORD_SCHEMA: Final = pa.schema(
    [
        pa.field("first_us", pa.int64()),
        pa.field("last_us", pa.int64()),
        pa.field("src_ip", pa.string()),
        pa.field("src_port", pa.int32()),
        pa.field("dst_ip", pa.string()),
        pa.field("dst_port", pa.int32()),
        pa.field("protocol", pa.int16()),
        pa.field("packets", pa.int64()),
        pa.field("bytes", pa.int64()),
        pa.field("rev_packets", pa.int64()),
        pa.field("rev_bytes", pa.int64()),
        pa.field("source_ref", pa.string()),
    ]
)

_PORTLESS: Final = -1


def _np(column: pa.Array | pa.ChunkedArray, fill: int = 0) -> np.ndarray:
    array = contiguous(column)
    return np.asarray(pc.fill_null(array, fill).to_numpy(zero_copy_only=False), dtype=np.int64)


def _boundaries(sorted_columns: list[np.ndarray]) -> np.ndarray:
    """True where a row of the sorted columns starts a new group."""
    new = np.zeros(len(sorted_columns[0]), dtype=bool)
    new[0] = True
    for column in sorted_columns:
        new[1:] |= column[1:] != column[:-1]
    return new


def _match(records: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output flow: the record that gives it its orientation, its partner (-1 if none), and
    whether a lone record is a server's answer (its endpoints are swapped)."""
    n = records.num_rows
    src_ip, dst_ip = contiguous(records.column("src_ip")), contiguous(records.column("dst_ip"))
    sport = _np(records.column("src_port"), _PORTLESS)
    dport = _np(records.column("dst_port"), _PORTLESS)
    proto = _np(records.column("protocol"))
    first = _np(records.column("first_us"))
    bi = (_np(records.column("rev_bytes")) > 0) | (_np(records.column("rev_packets")) > 0)
    endpoints = pa.concat_arrays([src_ip, dst_ip]).dictionary_encode()
    codes = np.asarray(endpoints.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    s_code, d_code = codes[:n], codes[n:]
    exporter = np.asarray(
        contiguous(records.column("source_ref")).dictionary_encode().indices.to_numpy(zero_copy_only=False),
        dtype=np.int64,
    )
    less = np.asarray(pc.fill_null(pc.less(src_ip, dst_ip), False).to_numpy(zero_copy_only=False), dtype=bool)
    same = s_code == d_code
    fwd = less | (same & (sport <= dport))
    a, b = np.where(fwd, s_code, d_code), np.where(fwd, d_code, s_code)
    a_port, b_port = np.where(fwd, sport, dport), np.where(fwd, dport, sport)
    index = np.arange(n, dtype=np.int64)
    connection = [exporter, a, b, a_port, b_port, proto, bi.astype(np.int64)]
    order = np.lexsort((index, first, fwd, *reversed(connection)))
    sorted_conn = [c[order] for c in connection]
    conn_start = _boundaries(sorted_conn)
    group_start = conn_start | _boundaries([fwd[order]])
    conn_id = np.cumsum(conn_start) - 1
    starts = np.flatnonzero(group_start)
    nth = np.arange(n) - starts[np.cumsum(group_start) - 1]
    key = conn_id * (n + 1) + nth
    sorted_fwd, sorted_bi = fwd[order], bi[order]
    fwd_rows = np.flatnonzero(sorted_fwd & ~sorted_bi)
    rev_rows = np.flatnonzero(~sorted_fwd & ~sorted_bi)
    _, fi, ri = np.intersect1d(key[fwd_rows], key[rev_rows], assume_unique=True, return_indices=True)
    x, y = order[fwd_rows[fi]], order[rev_rows[ri]]
    x_opens = (first[x] < first[y]) | ((first[x] == first[y]) & (sport[x] >= dport[x]))
    opener, partner = np.where(x_opens, x, y), np.where(x_opens, y, x)
    alone = np.ones(n, dtype=bool)
    alone[x] = alone[y] = False
    single = np.flatnonzero(alone)
    reply = ~bi[single] & np.isin(proto[single], (6, 17)) & (sport[single] >= 0) & (sport[single] < 1024)
    reply &= dport[single] >= 1024
    main = np.concatenate([opener, single])
    other = np.concatenate([partner, np.full(len(single), -1, dtype=np.int64)])
    swap = np.concatenate([np.zeros(len(opener), dtype=bool), reply])
    place = np.argsort(np.where(other >= 0, np.minimum(main, other), main), kind="stable")
    return main[place], other[place], swap[place]


def pair_records(records: pa.Table) -> pa.Table:
    """The flows of ``records`` (:data:`RECORD_SCHEMA`) as an ``INGEST_SCHEMA`` table."""
    main, other, swap = _match(records)
    paired = other >= 0
    partner = np.where(paired, other, main)
    swap_a, paired_a = pa.array(swap), pa.array(paired)

    def col(name: str, rows: np.ndarray) -> pa.Array:
        return pc.take(contiguous(records.column(name)), pa.array(rows))

    def pick(cond: pa.Array, yes: pa.Array, no: pa.Array) -> pa.Array:
        return pc.if_else(cond, yes, no)

    zero = pa.scalar(0, pa.int64())
    columns: dict[str, pa.Array] = {}
    first_m, first_p = col("first_us", main), col("first_us", partner)
    last_m, last_p = col("last_us", main), col("last_us", partner)
    columns["first_seen"] = pc.min_element_wise(first_m, first_p).cast(TS)
    columns["last_seen"] = pc.max_element_wise(last_m, last_p).cast(TS)
    for a, b in (("src_ip", "dst_ip"), ("src_port", "dst_port")):
        columns[a] = pick(swap_a, col(b, main), col(a, main))
        columns[b] = pick(swap_a, col(a, main), col(b, main))
    columns["protocol"] = col("protocol", main)
    for fwd_name, rev_name, out, into in (
        ("bytes", "rev_bytes", "bytes_out", "bytes_in"),
        ("packets", "rev_packets", "packets_out", "packets_in"),
    ):
        mine, reverse = col(fwd_name, main), pc.fill_null(col(rev_name, main), zero)
        columns[out] = pick(paired_a, mine, pick(swap_a, reverse, mine))
        columns[into] = pick(paired_a, col(fwd_name, partner), pick(swap_a, mine, reverse))
    columns["source_ref"] = col("source_ref", main)
    none = pa.nulls(len(main), pa.string())
    return pa.table(
        {f.name: columns[f.name].cast(f.type) if f.name in columns else none for f in INGEST_SCHEMA},
        schema=INGEST_SCHEMA,
    )


class Pairer:
    """Pairs the records of each batch into flows (see the module's description)."""

    def pair(self, records: pa.Table) -> Iterator[pa.RecordBatch]:
        """The flows of ``records`` (a table of :data:`RECORD_SCHEMA`) as ``INGEST_SCHEMA`` batches."""
        if records.num_rows == 0:
            return
        yield from map(by_opener, pair_records(records).combine_chunks().to_batches())

    def close(self) -> None:
        """Nothing to release (kept so that readers can treat pairers alike)."""
