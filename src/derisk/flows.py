"""The canonical flow table: one Arrow schema for every input format.

Ingest modules yield batches of :data:`INGEST_SCHEMA`, where ``src`` is the side that opened the
flow (Zeek's originator, NFStream's ``src``) and ``bytes_out`` is what that side sent. The pipeline
then orients each flow to the site's point of view (:func:`derisk.site.Site.orient`): when exactly one
endpoint is internal it becomes ``src``, so ``bytes_out`` is always what the site sent and ``dst_*``
always describes the external party. ``direction`` keeps who opened the flow.

Documented for users in ``docs/flow-schema.md``; a test keeps the two in step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

#: What every ingest module yields. Field order is the order of the stored table.
INGEST_SCHEMA: Final = pa.schema(
    [
        pa.field("first_seen", TS, nullable=True),
        pa.field("last_seen", TS, nullable=True),
        pa.field("src_ip", pa.string(), nullable=False),
        pa.field("src_port", pa.int32()),
        pa.field("dst_ip", pa.string(), nullable=False),
        pa.field("dst_port", pa.int32()),
        pa.field("protocol", pa.int16()),
        pa.field("bytes_out", pa.int64()),
        pa.field("bytes_in", pa.int64()),
        pa.field("packets_out", pa.int64()),
        pa.field("packets_in", pa.int64()),
        pa.field("server_name", pa.string()),
        pa.field("server_name_source", pa.string()),
        pa.field("application", pa.string()),
        pa.field("ja4", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("dns_query", pa.string()),
        pa.field("source_ref", pa.string()),
        pa.field("conn_state", pa.string()),
        pa.field("is_attempt", pa.bool_()),
    ]
)

#: Values of ``server_name_source``.
SERVER_NAME_SOURCES: Final = ("sni", "http-host", "dns-answer")

#: Values of ``direction`` (who opened the flow, relative to the site).
#: ``local-scope``: either endpoint is multicast, broadcast, link-local or unspecified (never a
#: destination; counted apart, never attributed).
DIRECTIONS: Final = ("outbound", "inbound", "internal", "external", "local-scope")

#: Columns the pipeline adds: provenance, orientation, system label.
PIPELINE_FIELDS: Final = [
    pa.field("flow_id", pa.string(), nullable=False),
    pa.field("input_id", pa.string(), nullable=False),
    pa.field("direction", pa.string(), nullable=False),
    pa.field("system", pa.string()),
]

#: Enrichment of the external endpoint (``dst``), by network data, at ingest time.
NETWORK_ENRICHMENT_FIELDS: Final = [
    pa.field("dst_asn", pa.int64()),
    pa.field("dst_as_org", pa.string()),
    pa.field("dst_as_country", pa.string()),
    pa.field("dst_geo_country", pa.string()),
    pa.field("dst_domain", pa.string()),
    pa.field("ipdata_version", pa.string()),
]

#: Attribution to organisation, controller and jurisdiction, recomputed from the current control
#: graph at every analysis so that a graph change shows at once.
ATTRIBUTION_FIELDS: Final = [
    pa.field("dst_org", pa.string()),
    pa.field("dst_org_id", pa.string()),
    pa.field("dst_org_basis", pa.string()),
    pa.field("dst_controller", pa.string()),
    pa.field("dst_controller_id", pa.string()),
    pa.field("dst_jurisdiction", pa.string()),
    pa.field("dst_jurisdiction_basis", pa.string()),
    pa.field("attribution_path", pa.string()),
    pa.field("registry_version", pa.string()),
    # Infrastructure layer: who runs the server (AS holder, CDN, cloud), from the AS number or the
    # AS organisation name, else the AS registration country as a guess.
    pa.field("dst_infra_org", pa.string()),
    pa.field("dst_infra_org_id", pa.string()),
    pa.field("dst_infra_controller", pa.string()),
    pa.field("dst_infra_controller_id", pa.string()),
    pa.field("dst_infra_jurisdiction", pa.string()),
    pa.field("dst_infra_basis", pa.string()),
    pa.field("dst_infra_confidence", pa.string()),
    # Service layer: whose name the traffic carries (SNI, HTTP Host, DNS answer → registrable domain).
    pa.field("dst_service_org", pa.string()),
    pa.field("dst_service_org_id", pa.string()),
    pa.field("dst_service_controller", pa.string()),
    pa.field("dst_service_controller_id", pa.string()),
    pa.field("dst_service_jurisdiction", pa.string()),
    pa.field("dst_service_basis", pa.string()),
    pa.field("dst_service_confidence", pa.string()),
]

#: What the workspace stores per flow.
STORED_SCHEMA: Final = pa.schema(PIPELINE_FIELDS + list(INGEST_SCHEMA) + NETWORK_ENRICHMENT_FIELDS)

#: The full canonical flow table as analyses see it.
FLOW_SCHEMA: Final = pa.schema(list(STORED_SCHEMA) + ATTRIBUTION_FIELDS)

#: Values of ``dst_jurisdiction_basis``.
JURISDICTION_BASES: Final = ("registry", "as-registration", "unknown")

#: Values of ``dst_infra_basis``: the AS number is in the control graph; the AS organisation name
#: clearly names a graph entity; only the AS registration country is known (a guess); nothing.
INFRA_BASES: Final = ("asn", "as-org-name", "as-registration", "unknown")

#: Values of ``dst_service_basis`` (null when the flow carries no server name): the registrable
#: domain is in the control graph; a name is carried but the graph does not know it.
SERVICE_BASES: Final = ("domain", "brand-domain", "operator-domain", "unknown")

#: Value of ``dst_infra_confidence`` for the AS registration country (other values are the control
#: graph's V/S/U tags).
GUESS_CONFIDENCE: Final = "guess"

#: Rows per batch that ingest modules aim for: large enough for vectorised work, small enough that
#: memory stays bounded whatever the input size.
BATCH_ROWS: Final = 65_536


def empty_ingest_batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=INGEST_SCHEMA)


def contiguous(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as one array (a batch's columns are; a table's may be chunked).

    A column of one chunk is that chunk, not a copy (``combine_chunks`` copies even then).
    """
    if not isinstance(column, pa.ChunkedArray):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def batch_from_columns(columns: dict[str, list[object]]) -> pa.RecordBatch:
    """Build an :data:`INGEST_SCHEMA` batch from column lists; missing columns become nulls.

    A column left empty while others have rows counts as missing (a reader that fills its columns
    by name need not know of columns it has no value for, such as ``conn_state`` for captures).
    """
    length = max((len(values) for values in columns.values()), default=0)
    arrays = []
    for field in INGEST_SCHEMA:
        values = columns.get(field.name)
        if not values:
            values = [None] * length
        arrays.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=INGEST_SCHEMA)


#: Batches smaller than this are grouped before the pipeline works on them (each batch costs a few
#: fixed milliseconds of orientation, lookups and insert); larger ones go through as they come, so
#: a reader that hands out flows as it meters them (a capture) is not held back.
MIN_BATCH_ROWS: Final = 8_192


def rebatch(batches: Iterator[pa.RecordBatch], rows: int = MIN_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Group small batches into batches of at least ``rows`` rows (or the remainder at the end)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield from pa.Table.from_batches(pending).combine_chunks().to_batches()
            pending, count = [], 0
    if pending:
        yield from pa.Table.from_batches(pending).combine_chunks().to_batches()


def input_id_for(digest: str, fmt: str) -> str:
    """Deterministic input id: the same bytes in the same format always get the same id."""
    return f"{fmt}:{digest[:16]}"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's contents, streamed."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def files_digest(paths: Sequence[Path]) -> str:
    """Digest of a set of files (a Zeek log directory): their names and contents, order-independent."""
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        h.update(f"{path.name}\0{file_digest(path)}\n".encode())
    return h.hexdigest()
