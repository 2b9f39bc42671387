"""Network enrichment of oriented flows: AS, AS country, geolocation and registrable domain of ``dst``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.enrich.domains import registrable_domains
from derisk.enrich.ipdata import IpData
from derisk.flows import contiguous


def enrich_batch(batch: pa.RecordBatch, ipdata: IpData) -> pa.RecordBatch:
    """Add the ``dst_*`` network columns; one lookup per distinct address in the batch."""
    dst = batch.column("dst_ip")
    encoded = contiguous(dst).dictionary_encode()
    found = ipdata.lookup(encoded.dictionary)
    # The row of ``found`` for each distinct address, then for each flow.
    rows = pc.take(pc.index_in(encoded.dictionary, value_set=found.column("ip")), encoded.indices)
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
    return pa.RecordBatch.from_pydict({k: contiguous(v) for k, v in columns.items()})


def with_ordinals(batch: pa.RecordBatch, first_ordinal: int) -> pa.RecordBatch:
    """Number the flows of an input (the store makes ``flow_id`` from it: deterministic per input)."""
    ordinals = pa.array(np.arange(first_ordinal, first_ordinal + batch.num_rows, dtype=np.int64))
    return batch.append_column(pa.field("ordinal", pa.int64(), nullable=False), ordinals)
