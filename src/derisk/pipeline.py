"""One analysis run: ingest → orient → enrich → store → attribute → detect, all-or-nothing.

Every input is recognised and the reference data opened before the workspace is touched, so a bad
input or missing data fails fast; everything written by a run happens in one transaction, so an
error or an interruption (Ctrl-C) leaves the workspace exactly as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa

from derisk import interrupts
from derisk.enrich.attribution import attribute
from derisk.enrich.ipdata import IpData, load_ipdata
from derisk.enrich.network import Enricher, with_ordinals
from derisk.errors import DeriskError, InputError
from derisk.flows import INGEST_SCHEMA, rebatch
from derisk.ingest import InputSpec, read_input, resolve_inputs
from derisk.know.attribution import load_index
from derisk.readahead import ReadAhead
from derisk.site import Site
from derisk.store import flows as store
from derisk.store.workspace import Workspace

log = logging.getLogger(__name__)

#: Called while an input streams in with (input, flows stored so far, reader units so far: packets
#: for captures, bytes on disk for Zeek logs).
Progress = Callable[[InputSpec, int, int], None]


@dataclass
class RunResult:
    run_id: str
    started_at: dt.datetime
    specs: list[InputSpec]
    ingested: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    ipdata_version: str | None = None
    registry_version: str | None = None
    alerts: list[Any] = field(default_factory=list)

    @property
    def input_ids(self) -> list[str]:
        return [s.input_id for s in self.specs]


def _check_batch(batch: pa.RecordBatch, spec: InputSpec) -> pa.RecordBatch:
    if batch.schema.names != INGEST_SCHEMA.names:
        raise InputError(f"reader produced unexpected columns {batch.schema.names}", source=str(spec.path))
    return batch


def prepare_flows(
    batch: pa.RecordBatch,
    site: Site,
    ipdata: IpData,
    first_ordinal: int,
    enricher: Enricher | None = None,
) -> pa.RecordBatch:
    """Orient, enrich and number one batch of ingested flows, ready for :func:`store.insert_stream`
    (the per-batch step of :func:`prepare`; ``derisk watch`` calls it for each batch it reads).
    ``enricher`` (over ``ipdata``) remembers the lookups of earlier batches of the same input."""
    oriented = site.orient_coded(batch)  # its address codes spare the enricher a hash pass
    enriched = (enricher if enricher is not None else Enricher(ipdata)).coded(oriented)
    return with_ordinals(enriched, first_ordinal)


def attribute_new(con: Any, flows: pa.Table, index: Any) -> int:
    """Attribute the keys of ``flows`` (stored, in ``con``'s transaction) that the workspace's
    attribution does not hold yet; returns how many. ``derisk watch`` calls it per batch, so the
    cost follows the batch, not the history; the rows are those :func:`run` computes for the keys."""
    from derisk.store import checkpoints

    keys = checkpoints.new_attribution_keys(con, flows)
    if keys.num_rows:
        checkpoints.add_attribution(con, attribute(keys, index))
    return int(keys.num_rows)


def prepare(
    spec: InputSpec, site: Site, ipdata: IpData, progress: Progress | None
) -> Iterator[pa.RecordBatch]:
    """Ingest one input: read it and prepare its batches for the store (oriented, enriched, numbered).

    :func:`run` calls it in a :class:`~derisk.readahead.ReadAhead` worker thread; it never touches
    the workspace (the benchmark also times it alone).
    """
    prepared = read = 0

    def advance(n: int) -> None:
        nonlocal read
        read += n
        if progress is not None:
            progress(spec, prepared, read)

    reader = read_input(spec, progress=advance)
    enricher = Enricher(ipdata)
    try:
        for batch in rebatch(reader):
            yield prepare_flows(_check_batch(batch, spec), site, ipdata, prepared, enricher)
            prepared += batch.num_rows
            advance(0)
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()


def _read_ahead(
    spec: InputSpec, site: Site, ipdata: IpData, progress: Progress | None
) -> ReadAhead[pa.RecordBatch]:
    return ReadAhead(partial(prepare, spec, site, ipdata, progress), name=f"derisk-read-{spec.format}")


def _ingest_one(
    con: Any,
    spec: InputSpec,
    batches: ReadAhead[pa.RecordBatch],
    ipdata: IpData,
    site_digest: str,
    is_new: Callable[[], bool],
) -> int | None:
    """Stream one input into the workspace; None when it turned out to be stored already.

    ``is_new`` decides with the input's digest, which a worker thread computes while the first
    flows are metered; it is asked before the first row is written.
    """
    first = next(batches, None)
    if not is_new():
        return None
    count = store.insert_stream(
        con,
        itertools.chain([first] if first is not None else [], batches),
        input_id=spec.input_id,
        ipdata_version=ipdata.manifest.version,
    )
    store.record_input(
        con,
        store.InputRecord(
            input_id=spec.input_id,
            path=str(spec.path),
            format=spec.format,
            digest=spec.digest,
            size_bytes=spec.size_bytes,
            site_digest=site_digest,
            ipdata_version=ipdata.manifest.version,
            flow_count=count,
        ),
    )
    return count


def _is_new(ws: Workspace, con: Any, spec: InputSpec, site_digest: str, result: RunResult) -> bool:
    """False when the workspace holds this input already (oriented for this site); it is then skipped."""
    known = store.known_input(ws, spec.input_id)
    if known is not None and known[0] == site_digest:
        result.skipped[spec.input_id] = known[1]
        log.info("%s already in the workspace (%d flows); not ingested again", spec.path, known[1])
        return False
    if known is not None:
        log.info("%s: site file changed since it was ingested; re-orienting", spec.path)
        store.forget_input(con, spec.input_id)
    return True


def _digest_of(spec: InputSpec) -> str:
    return spec.digest


def _always() -> bool:
    return True


def _after(hashing: Future[str], decide: Callable[[], bool]) -> bool:
    hashing.result()
    return decide()


#: Inputs at least this large (bytes in all) have the public suffix list parsed ahead, in the warm-up
#: thread; smaller ones parse it when a name needs it (a few packets may have none: 0.3 CPU s saved).
WARM_SUFFIXES_FROM = 1 << 20


def _warm_reference_data(suffixes: bool) -> None:
    """Load what attribution and detection read, in a worker thread, while ingest runs.

    Only process-wide caches are filled (nothing touches the workspace's connection), so the main
    thread finds them ready instead of paying for them after the last packet.
    """
    from derisk.detect.runner import detect_in_workspace  # noqa: F401 - the import is the work
    from derisk.enrich.domains import registrable_domain
    from derisk.know.curated import load_curated
    from derisk.know.laws import load_legal_base

    load_curated()
    load_legal_base()
    if suffixes:
        registrable_domain("www.example.com")


def _run_id(started: dt.datetime, site_digest: str, specs: list[InputSpec]) -> str:
    key = f"{started.isoformat()}|{site_digest}|{','.join(s.input_id for s in specs)}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def run(
    workspace: Path,
    inputs: list[Path],
    site: Site,
    *,
    data_root: Path | None = None,
    progress: Progress | None = None,
    detect: bool = True,
    strict: bool = False,
) -> RunResult:
    """Analyse ``inputs`` (none: re-attribute what the workspace holds) into ``workspace``."""
    started = dt.datetime.now(dt.UTC)
    specs = resolve_inputs(inputs, strict=strict)
    ipdata = load_ipdata(data_root) if specs else None
    site_digest = site.digest()
    result = RunResult(run_id="", started_at=started, specs=specs)
    with contextlib.ExitStack() as stack:
        early: ReadAhead[pa.RecordBatch] | None = None
        if specs and not Workspace.exists(workspace):
            # Nothing in a new workspace can be a repeat: the first input is read while it is created.
            assert ipdata is not None
            early = stack.enter_context(_read_ahead(specs[0], site, ipdata, progress))
        ws = stack.enter_context(Workspace.open(workspace, create=bool(specs)))
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=2))
        # The control graph, legal base and suffix list load while the inputs stream in.
        warming = pool.submit(_warm_reference_data, sum(s.size_bytes for s in specs) >= WARM_SUFFIXES_FROM)
        with ws.transaction() as con:
            for n, spec in enumerate(specs):
                hashing = pool.submit(_digest_of, spec)
                decide = partial(_is_new, ws, con, spec, site_digest, result)
                if early is None and store.seen_path(ws, str(spec.path), spec.size_bytes):
                    # Probably a repeat: decide before metering anything.
                    hashing.result()
                    if not decide():
                        continue
                    check: Callable[[], bool] = _always
                else:
                    check = partial(_after, hashing, decide)
                assert ipdata is not None
                try:
                    reading = (
                        early if n == 0 and early is not None else _read_ahead(spec, site, ipdata, progress)
                    )
                    with reading as batches:
                        stored = _ingest_one(con, spec, batches, ipdata, site_digest, check)
                except DeriskError:
                    raise
                except (OSError, ValueError, pa.ArrowException) as exc:
                    raise InputError(
                        f"cannot be read ({type(exc).__name__}: {exc})", source=str(spec.path)
                    ) from None
                if stored is not None:
                    result.ingested[spec.input_id] = stored
                interrupts.check()
            warming.result()
            index = load_index(ws)
            result.registry_version = index.version
            store.replace_attribution(con, attribute(store.attribution_keys(ws), index))
            if detect:
                from derisk.detect.runner import detect_in_workspace

                interrupts.check()
                result.alerts = list(detect_in_workspace(ws, site, [s.input_id for s in specs]))
            result.ipdata_version = ipdata.manifest.version if ipdata else None
            # Named only now: the input ids come from content hashes that are computed while the
            # inputs are read, never before the first packet is metered.
            result.run_id = _run_id(started, site_digest, specs)
            store.record_run(
                con,
                {
                    "run_id": result.run_id,
                    "started_at": started,
                    "site": site.name,
                    "site_digest": site_digest,
                    "ipdata_version": result.ipdata_version,
                    "registry_version": index.version,
                    "inputs": result.input_ids,
                },
            )
    return result
