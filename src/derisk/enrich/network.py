"""Network enrichment of oriented flows: AS, AS country, geolocation and registrable domain of ``dst``."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from derisk.enrich.domains import registrable_domains
from derisk.enrich.ipdata import IpData


def enrich_batch(batch: pa.RecordBatch, ipdata: IpData) -> pa.RecordBatch:
    """Add the ``dst_*`` network columns; one lookup per distinct address in the batch."""
    dst = batch.column("dst_ip")
    found = ipdata.lookup(dst)
    rows = pc.index_in(dst, value_set=found.column("ip"))
    columns = {name: batch.column(name) for name in batch.schema.names}
    columns["dst_asn"] = pc.take(found.column("asn"), rows)
    columns["dst_as_org"] = pc.take(found.column("as_org"), rows)
    columns["dst_as_country"] = pc.take(found.column("as_country"), rows)
    columns["dst_geo_country"] = pc.take(found.column("geo_country"), rows)
    # A server name describes the responder; after orientation that is dst unless an outside
    # party opened the flow to one of our servers.
    names_dst = pc.is_in(batch.column("direction"), value_set=pa.array(["outbound", "external"]))
    names = pc.if_else(names_dst, batch.column("server_name"), pa.scalar(None, pa.string()))
    columns["dst_domain"] = registrable_domains(names)
    columns["ipdata_version"] = pa.array([ipdata.manifest.version] * batch.num_rows, pa.string())
    return pa.RecordBatch.from_pydict(
        {k: (v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v) for k, v in columns.items()}
    )


def add_ids(batch: pa.RecordBatch, input_id: str, first_ordinal: int) -> pa.RecordBatch:
    """Deterministic flow ids: the input id and the flow's ordinal within that input."""
    n = batch.num_rows
    ordinals = pa.array(range(first_ordinal, first_ordinal + n), pa.int64())
    ids = pc.binary_join_element_wise(
        pa.array([input_id] * n, pa.string()), pc.cast(ordinals, pa.string()), "#"
    )
    columns = {name: batch.column(name) for name in batch.schema.names}
    columns["flow_id"] = ids
    columns["input_id"] = pa.array([input_id] * n, pa.string())
    return pa.RecordBatch.from_pydict(columns)
