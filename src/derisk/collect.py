"""``derisk collect``: NetFlow/IPFIX from the network into the workspace, one transaction per batch.

Each batch the collector hands out (:mod:`derisk.ingest.collector`) is oriented to the site,
enriched and stored as one input (format ``netflow``, id from the SHA-256 of its datagrams) in its
own transaction: a batch is stored whole or not at all, and the batches stored before an error or
an interruption stay. When collection ends, the workspace is attributed and the detections run, as
``derisk analyze`` without inputs does. Contract for users: ``docs/ingest-netflow.md``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from derisk.enrich.ipdata import IpData, load_ipdata
from derisk.enrich.network import enrich_batch, with_ordinals
from derisk.flows import input_id_for
from derisk.ingest.collector import Batch, Collector
from derisk.ingest.export_capture import CaptureExports
from derisk.site import Site
from derisk.store import flows as store
from derisk.store.workspace import Workspace

log = logging.getLogger(__name__)

FORMAT = "netflow"


@dataclass
class CollectResult:
    batches: int = 0
    flows: int = 0
    skipped: int = 0
    input_ids: list[str] = field(default_factory=list)


def _store(
    ws: Workspace, batch: Batch, collector: Collector | CaptureExports, site: Site, ipdata: IpData
) -> int | None:
    ipdata_version = ipdata.manifest.version
    input_id = input_id_for(batch.digest, FORMAT)
    site_digest = site.digest()
    known = store.known_input(ws, input_id)
    if known is not None and known[0] == site_digest:
        return None  # the same datagrams again (a replay): stored already
    with ws.transaction() as con:
        if known is not None:
            store.forget_input(con, input_id)
        prepared = []
        ordinal = 0
        for flows in batch.flows:
            prepared.append(with_ordinals(enrich_batch(site.orient(flows), ipdata), ordinal))
            ordinal += flows.num_rows
        count = store.insert_stream(con, iter(prepared), input_id=input_id, ipdata_version=ipdata_version)
        store.record_input(
            con,
            store.InputRecord(
                input_id=input_id,
                path=str(collector.endpoint),
                format=FORMAT,
                digest=batch.digest,
                size_bytes=batch.size_bytes,
                site_digest=site_digest,
                ipdata_version=ipdata_version,
                flow_count=count,
            ),
        )
    return count


def collect(
    collector: Collector | CaptureExports,
    workspace: Path,
    site: Site,
    *,
    data_root: Path | None = None,
    on_batch: Callable[[CollectResult], None] | None = None,
) -> CollectResult:
    """Store every batch ``collector`` hands out, then attribute the workspace and run detections."""
    ipdata = load_ipdata(data_root)
    result = CollectResult()
    with contextlib.ExitStack() as stack:
        ws: Workspace | None = None
        for batch in collector.batches():
            if not batch.flows:
                continue
            if ws is None:  # opened (or created) only once there is something to store
                ws = stack.enter_context(Workspace.open(workspace, create=True))
            stored = _store(ws, batch, collector, site, ipdata)
            if stored is None:
                result.skipped += 1
                continue
            result.batches += 1
            result.flows += stored
            result.input_ids.append(input_id_for(batch.digest, FORMAT))
            if on_batch is not None:
                on_batch(result)
    if result.batches:
        from derisk.pipeline import run

        run(workspace, [], site, data_root=data_root)
    return result
