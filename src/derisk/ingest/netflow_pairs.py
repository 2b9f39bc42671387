"""Unidirectional NetFlow/IPFIX records into the bidirectional flows of the canonical table.

A NetFlow v5/v9 record (and an IPFIX record without reverse counters) describes one direction of a
connection. Within each batch of records, the n-th record of one direction of a 5-tuple is paired
with the n-th record of the other direction (in order of first packet); the pair becomes one flow
opened by the side whose first packet came first (on a tie, the side with the higher port, a
client's ephemeral port). A record left alone (its other direction was not exported, or fell in
another batch) is one flow on its own; when its source port is below 1024 and its destination port
is not, it is taken as a server's answer: the flow is oriented from the other end and its counts go
to ``bytes_in``. Biflow records (IPFIX reverse counters) are already one flow each. Only records
of the same exporter (``source_ref``) are paired: two routers on one path export the same packets.

Vectorised in an in-memory DuckDB database, one query per batch; :class:`Pairer` keeps it open.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

import pyarrow as pa

from derisk.flows import INGEST_SCHEMA, TS

if TYPE_CHECKING:
    import duckdb

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

_SQL: Final = """
WITH r AS (
    SELECT *, row_number() OVER () AS i,
        src_ip < dst_ip OR (src_ip = dst_ip AND coalesce(src_port, -1) <= coalesce(dst_port, -1)) AS fwd,
        coalesce(rev_bytes, 0) > 0 OR coalesce(rev_packets, 0) > 0 AS bi
    FROM _nf_records
), k AS (
    SELECT *,
        CASE WHEN fwd THEN src_ip ELSE dst_ip END AS a_ip,
        CASE WHEN fwd THEN src_port ELSE dst_port END AS a_port,
        CASE WHEN fwd THEN dst_ip ELSE src_ip END AS b_ip,
        CASE WHEN fwd THEN dst_port ELSE src_port END AS b_port
    FROM r
), n AS (
    SELECT *, row_number() OVER (
        PARTITION BY source_ref, a_ip, a_port, b_ip, b_port, protocol, fwd, bi ORDER BY first_us, i) AS nth
    FROM k
), pairs AS (
    SELECT
        CASE WHEN xo THEN x ELSE y END AS o,
        CASE WHEN xo THEN y ELSE x END AS a
    FROM (
        SELECT x, y,
            x.first_us < y.first_us OR (x.first_us = y.first_us
                AND coalesce(x.src_port, 0) >= coalesce(x.dst_port, 0)) AS xo
        FROM n x JOIN n y
          ON x.fwd AND NOT y.fwd AND NOT x.bi AND NOT y.bi
         AND x.a_ip = y.a_ip AND x.b_ip = y.b_ip AND x.protocol = y.protocol AND x.nth = y.nth
         AND x.source_ref = y.source_ref
         AND x.a_port IS NOT DISTINCT FROM y.a_port AND x.b_port IS NOT DISTINCT FROM y.b_port
    )
), used AS (
    SELECT o.i AS i FROM pairs UNION ALL SELECT a.i FROM pairs
), singles AS (
    SELECT *, NOT bi AND protocol IN (6, 17) AND src_port < 1024 AND dst_port >= 1024 AS reply
    FROM n ANTI JOIN used USING (i)
)
SELECT least(o.i, a.i) AS i,
    least(o.first_us, a.first_us) AS first_us, greatest(o.last_us, a.last_us) AS last_us,
    o.src_ip, o.src_port, o.dst_ip, o.dst_port, o.protocol,
    o.bytes AS bytes_out, a.bytes AS bytes_in, o.packets AS packets_out, a.packets AS packets_in,
    o.source_ref
FROM pairs
UNION ALL
SELECT i, first_us, last_us,
    CASE WHEN reply THEN dst_ip ELSE src_ip END, CASE WHEN reply THEN dst_port ELSE src_port END,
    CASE WHEN reply THEN src_ip ELSE dst_ip END, CASE WHEN reply THEN src_port ELSE dst_port END,
    protocol,
    CASE WHEN reply THEN coalesce(rev_bytes, 0) ELSE bytes END,
    CASE WHEN reply THEN bytes ELSE coalesce(rev_bytes, 0) END,
    CASE WHEN reply THEN coalesce(rev_packets, 0) ELSE packets END,
    CASE WHEN reply THEN packets ELSE coalesce(rev_packets, 0) END,
    source_ref
FROM singles
ORDER BY i
"""


class Pairer:
    """Pairs the records of a batch into flows (see the module's description)."""

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            import duckdb

            self._con = duckdb.connect(":memory:", config={"threads": 2, "memory_limit": "256MB"})
        return self._con

    def pair(self, records: pa.Table) -> Iterator[pa.RecordBatch]:
        """The flows of ``records`` (a table of :data:`RECORD_SCHEMA`) as ``INGEST_SCHEMA`` batches."""
        if records.num_rows == 0:
            return
        con = self._connection()
        con.register("_nf_records", records)
        try:
            flows = con.sql(_SQL).to_arrow_table()
        finally:
            con.unregister("_nf_records")
        n = flows.num_rows
        none = pa.nulls(n, pa.string())
        columns = {
            "first_seen": flows.column("first_us").cast(TS),
            "last_seen": flows.column("last_us").cast(TS),
        }
        for name in ("src_ip", "src_port", "dst_ip", "dst_port", "protocol", "bytes_out", "bytes_in"):
            columns[name] = flows.column(name)
        columns["packets_out"] = flows.column("packets_out")
        columns["packets_in"] = flows.column("packets_in")
        table = pa.table(
            {
                field.name: (
                    columns[field.name].cast(field.type)
                    if field.name in columns
                    else (flows.column("source_ref") if field.name == "source_ref" else none)
                )
                for field in INGEST_SCHEMA
            },
            schema=INGEST_SCHEMA,
        )
        yield from table.combine_chunks().to_batches()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
