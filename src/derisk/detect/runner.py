"""The hook ``derisk analyze`` calls: detect over the workspace's flows and store the alerts.

Up to :data:`BUCKET_ROWS` flows are read whole and handed to :func:`derisk.detect.detect`. Beyond
that the detections run bucket by bucket, so memory is bounded by a bucket, not by the workspace:

* DuckDB computes the clock (the *frame*: first and last outbound start, as
  :func:`derisk.detect.segments.outbound_frame` does) over every flow, and cuts the flows into
  buckets by a hash of the system (else the internal host), in one scan written to Parquet in the
  process's private spill folder (removed at once): the grouping the local path already uses for the
  detections that look at one system at a time, which run on each bucket as it is read back;
* the two detections that compare across systems get, from the same pass, only the flows their
  answer depends on: DNS tunnels the flows with a DNS query (and the names connected to directly,
  the only thing the other flows tell them); new organisations and jurisdictions the first outbound
  start and bytes of each organisation and jurisdiction, then, in a second read, only the flows of
  those first seen after the baseline.

The allow-list is applied to each bucket as to the whole table (a flow's masks depend on the flow
alone), and the result is the same as :func:`derisk.detect.detect` on the whole table (tested).
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect import (
    COLUMNS,
    DETECTORS,
    DetectionResult,
    config_for_site,
    default_laws_for,
    detect,
    merge_hosts,
)
from derisk.detect.alert import Alert, LawsFor, cached_laws, with_listings
from derisk.detect.allowlist import Suppression, allow_masks
from derisk.detect.config import DetectionConfig
from derisk.detect.dnstunnel import detect_dns_tunnels
from derisk.detect.newdest import detect_new_destinations, single_input
from derisk.detect.segments import Frame, column, flow_times, ints, mask_eq, plain
from derisk.errors import StoreError
from derisk.flows import FLOW_SCHEMA
from derisk.store.alerts import read_flows_compact_con, replace_alerts
from derisk.store.spill import spill_directory
from derisk.store.sqltext import literal
from derisk.store.workspace import Workspace

log = logging.getLogger(__name__)

#: Flows read at once at most (about 1 GB of detection memory); larger workspaces go by buckets.
BUCKET_ROWS: Final = 4_000_000
#: The new-destination scopes that compare across systems, and the column each groups by.
SITE_SCOPES: Final = (("organisation", "dst_org"), ("jurisdiction", "dst_jurisdiction"))
_BUCKET_KEY: Final = "coalesce(system, src_ip)"
#: Rows a row group of the bucket files holds (small: DuckDB keeps one open per bucket and thread).
SPLIT_ROW_GROUP: Final = 50_000


def detection_columns() -> list[str]:
    return [c for c in COLUMNS if c in FLOW_SCHEMA.names]


def detect_in_workspace(
    ws: Workspace, site: Any, input_ids: list[str] | None = None, *, laws_for: LawsFor | None = None
) -> list[Alert]:
    """Run every detection on the workspace's flows (only the columns they read) and replace the stored
    alerts, inside the transaction the caller holds. ``input_ids`` is informational: detections always
    look at every flow of the workspace, for beacons and baselines need the whole history."""
    config = config_for_site(site)
    result = detect_flows(ws.con, config, laws_for=laws_for, source=str(ws.path))
    alerts = _with_listings(ws, result.alerts)
    replace_alerts(ws, alerts, result.suppressed, con=ws.con)
    log.info("%d alerts from %d flows (inputs: %s)", len(alerts), result.flows, ", ".join(input_ids or []))
    return alerts


def detect_flows(
    con: duckdb.DuckDBPyConnection,
    config: DetectionConfig,
    *,
    laws_for: LawsFor | None = None,
    now: datetime | None = None,
    bucket_rows: int = BUCKET_ROWS,
    source: str | None = None,
) -> DetectionResult:
    """Every detection over ``flows_attributed`` on ``con``: whole up to ``bucket_rows`` flows,
    bucket by bucket beyond (the same result, in bounded memory)."""
    columns = detection_columns()
    try:
        total = int(con.execute("SELECT count(*) FROM flows_attributed").fetchall()[0][0])
    except duckdb.Error as exc:
        raise StoreError(f"could not count flows: {exc}", source=source) from None
    if total <= bucket_rows:
        flows = read_flows_compact_con(con, columns, source=source)
        return detect(flows, config, laws_for=laws_for, now=now)
    return _by_buckets(
        con, config, laws_for or default_laws_for(), now, math.ceil(total / bucket_rows), source
    )


def sql_frame(con: duckdb.DuckDBPyConnection, now: datetime | None) -> Frame | None:
    """:func:`derisk.detect.segments.outbound_frame` over ``flows_attributed``, in DuckDB."""
    limit = (now or datetime.now(UTC)).timestamp() + 86_400.0
    row = con.execute(
        "WITH t AS (SELECT epoch_us(first_seen) / 1e6 AS s FROM flows_attributed "
        "WHERE direction = 'outbound' AND first_seen IS NOT NULL) "
        "SELECT min(s), max(s) FROM t WHERE s >= 0 AND s <= ?",
        [limit],
    ).fetchall()[0]
    if row[0] is None:
        return None
    return float(row[0]), float(row[1])


def _kept(table: pa.Table, masks: list[Any], config: DetectionConfig, kinds: tuple[str, ...]) -> pa.Table:
    keep = np.ones(table.num_rows, dtype=bool)
    for i, entry in enumerate(config.allowlist):
        if any(entry.applies_to(k) for k in kinds):
            keep &= ~masks[i]
    return table if keep.all() else table.filter(pa.array(keep))


@dataclass
class Pass:
    """What a pass over buckets gathers: the alerts of the detections that look at one system at a
    time, and for the others the flows or sums their answer depends on. Buckets' passes merge."""

    alerts: list[Alert] = field(default_factory=list)
    suppressed: list[int] = field(default_factory=list)
    flows: int = 0
    missing: int = 0
    future: int = 0
    reversed: int = 0
    dns_rows: list[pa.Table] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    #: per scope: value → [first outbound start, bytes]
    firsts: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    #: input prefixes of the flow ids the new-destination view holds (up to two), whether it holds
    #: any id, and whether any id is not ``input#ordinal``: :func:`single_input` over every bucket.
    inputs: list[str | None] = field(default_factory=list)
    any_ids: bool = False
    odd_ids: bool = False

    def merge(self, other: Pass) -> None:
        self.alerts.extend(other.alerts)
        mine = self.suppressed or [0] * len(other.suppressed)
        self.suppressed = [a + b for a, b in zip(mine, other.suppressed, strict=True)] or mine
        self.flows += other.flows
        self.missing += other.missing
        self.future += other.future
        self.reversed += other.reversed
        self.dns_rows.extend(t for t in other.dns_rows if t.num_rows)
        self.names |= other.names
        for scope, seen in other.firsts.items():
            into = self.firsts.setdefault(scope, {})
            for key, (first, total) in seen.items():
                if key in into:
                    into[key][0] = min(into[key][0], first)
                    into[key][1] += total
                else:
                    into[key] = [first, total]
        for prefix in other.inputs:
            if prefix not in self.inputs and len(self.inputs) < 2:
                self.inputs.append(prefix)
        self.any_ids |= other.any_ids
        self.odd_ids |= other.odd_ids


def _note_inputs(acc: Pass, view: pa.Table) -> None:
    """Gather what :func:`derisk.detect.newdest.single_input` needs, bucket by bucket."""
    ids = column(view, "flow_id")
    if len(ids) == 0 or ids.null_count == len(ids):
        return
    acc.any_ids = True
    parts = pc.split_pattern(pc.cast(plain(ids), pa.string()), "#", max_splits=1)
    if not pc.all(pc.equal(pc.list_value_length(parts), 2)).as_py():
        acc.odd_ids = True
    for prefix in pc.unique(pc.list_element(parts, 0)).to_pylist():
        if prefix not in acc.inputs and len(acc.inputs) < 2:
            acc.inputs.append(prefix)


def _compact(table: pa.Table) -> pa.Table:
    """String columns dictionary-encoded (as :func:`read_flows_compact_con` reads them)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_string(f.type) and f.name != "flow_id":
            table = table.set_column(i, f.name, pc.dictionary_encode(table.column(i)))
    return table


def bucket_pass(
    table: pa.Table,
    config: DetectionConfig,
    laws: LawsFor,
    frame: Frame | None,
    now: datetime | None,
    *,
    keep_dns: bool = True,
) -> Pass:
    """One bucket (every flow of each of its systems, else internal hosts): the partitionable
    detections run on it, the rest is gathered for :func:`finish`. Without ``keep_dns`` the flows
    with a DNS query are not kept (the caller scores DNS tunnels by domain itself, with
    :func:`dns_tunnel_rows` and :attr:`Pass.names`)."""
    acc = Pass(flows=table.num_rows)
    table = table.select([c for c in COLUMNS if c in table.column_names])
    masks, suppressed = allow_masks(table, config.allowlist)
    acc.suppressed = [s.flows for s in suppressed]
    times = flow_times(table, now)
    acc.missing, acc.future, acc.reversed = times.missing, times.future, times.reversed
    for kinds, detector, partitionable in DETECTORS:
        if partitionable:
            acc.alerts.extend(
                detector(_kept(table, masks, config, kinds), config, laws, now=now, frame=frame)
            )
    dns = _kept(table, masks, config, ("dns-tunnel",))
    if keep_dns:
        acc.dns_rows.append(_compact(dns.filter(pc.is_valid(column(dns, "dns_query")))))
    for name in ("server_name", "dst_domain"):
        acc.names.update(str(v) for v in pc.unique(plain(column(dns, name))).drop_null().to_pylist())
    view = _kept(table, masks, config, ("new-destination",))
    _note_inputs(acc, view)
    vt = flow_times(view, now)
    ok = mask_eq(column(view, "direction"), "outbound") & vt.valid
    size = (ints(view, "bytes_out") + ints(view, "bytes_in")).astype(np.float64)
    for scope, col in SITE_SCOPES:
        values = pc.cast(plain(column(view, col)), pa.string()).filter(pa.array(ok))
        part = (
            pa.table({"k": values, "s": vt.start[ok], "b": size[ok]})
            .group_by("k")
            .aggregate([("s", "min"), ("b", "sum")])
        )
        seen = acc.firsts.setdefault(scope, {})
        for key, first, total in zip(
            *(part.column(c).to_pylist() for c in ("k", "s_min", "b_sum")), strict=True
        ):
            if key is not None:
                seen[key] = [first, total]
    return acc


def dns_tunnel_rows(table: pa.Table, config: DetectionConfig) -> pa.Table:
    """The flows of ``table`` :func:`detect_dns_tunnels` reads: those with a DNS query, allow-list applied."""
    masks, _ = allow_masks(table, config.allowlist)
    dns = _kept(table, masks, config, ("dns-tunnel",))
    return dns.filter(pc.is_valid(column(dns, "dns_query")))


def _dns_table(acc: Pass) -> pa.Table | None:
    """The flows with a DNS query and one row per name connected to directly (as its server name):
    all :func:`detect_dns_tunnels` reads of the other flows are those names."""
    if not acc.dns_rows:
        return None
    schema = acc.dns_rows[0].schema
    names = sorted(acc.names)
    filler = {}
    for f in schema:
        if f.name == "server_name":
            arr = pa.array(names, pa.string())
            filler[f.name] = arr.dictionary_encode() if pa.types.is_dictionary(f.type) else arr
        else:
            filler[f.name] = pa.nulls(len(names), f.type)
    return pa.concat_tables([*acc.dns_rows, pa.table(filler, schema=schema)])


#: Reads the flows (detection columns) whose ``column`` is one of ``values``.
KeyReader = Callable[[str, list[str]], pa.Table]


def _site_scope(
    read: KeyReader,
    acc: Pass,
    config: DetectionConfig,
    laws: LawsFor,
    frame: Frame,
    now: datetime | None,
    scope: str,
    col: str,
) -> list[Alert]:
    """New organisations or jurisdictions: read only the flows of those first seen after the baseline."""
    baseline_end = frame[0] + config.get("new_destination", "baseline_hours") * 3600.0
    min_bytes = config.get("new_destination", "min_bytes")
    seen = acc.firsts.get(scope, {})
    new = sorted(k for k, (first, total) in seen.items() if first >= baseline_end and total >= min_bytes)
    if not new:
        return []
    table = read(col, new).select([c for c in COLUMNS if c in FLOW_SCHEMA.names])
    masks, _ = allow_masks(table, config.allowlist)
    view = _kept(table, masks, config, ("new-destination",))
    if single_input(view):
        # every flow is from two inputs or more (the caller checked): one flow id of another input,
        # on a row no scope counts, keeps the detector from taking these flows as one input's
        ids = pc.split_pattern(pc.cast(plain(column(view, "flow_id")), pa.string()), "#", max_splits=1)
        own = pc.list_element(ids, 0)[0].as_py()
        other = next(p for p in acc.inputs if p != own)
        filler = {f.name: pa.nulls(1, f.type) for f in view.schema}
        filler["flow_id"] = pa.array([f"{other}#0"], pa.string()).cast(view.schema.field("flow_id").type)
        view = pa.concat_tables([view, pa.table(filler, schema=view.schema)])
    return detect_new_destinations(view, config, laws, now=now, frame=frame, scopes=(scope,))


def finish(
    acc: Pass,
    read: KeyReader,
    config: DetectionConfig,
    laws: LawsFor,
    frame: Frame | None,
    now: datetime | None,
) -> DetectionResult:
    """The detections that compare across systems, from a merged :class:`Pass`; every alert."""
    alerts = list(acc.alerts)
    dns = _dns_table(acc)
    if dns is not None:
        alerts += detect_dns_tunnels(dns, config, laws, now=now, frame=frame)
    acc.dns_rows.clear()
    one_input = acc.any_ids and not acc.odd_ids and len(acc.inputs) == 1
    if frame is not None and not one_input:
        for scope, col in SITE_SCOPES:
            alerts += _site_scope(read, acc, config, laws, frame, now, scope, col)
    alerts = merge_hosts(alerts)
    alerts.sort(key=lambda a: (-a.severity_rank, -a.score, a.kind, a.destination, a.src_ip or ""))
    if acc.missing or acc.future:
        log.warning(
            "%d flows without a start time and %d with a start time in the future were left out of time-based detections",
            acc.missing,
            acc.future,
        )
    counts = acc.suppressed or [0] * len(config.allowlist)
    return DetectionResult(
        alerts=alerts,
        suppressed=[Suppression(e, n) for e, n in zip(config.allowlist, counts, strict=True)],
        flows=acc.flows,
        skipped_missing_time=acc.missing,
        skipped_future_time=acc.future,
        reversed_times=acc.reversed,
    )


def _split(con: duckdb.DuckDBPyConnection, buckets: int, folder: Path, source: str | None) -> None:
    """Cut the flows' detection columns into ``folder/_bucket=B/``, one Parquet folder per bucket, in
    one scan: reading each bucket by a ``WHERE`` on the hash instead would scan every flow once per
    bucket (25 scans of 100 M flows)."""
    cols = ", ".join(f'"{c}"' for c in detection_columns())
    try:
        con.execute(
            f"COPY (SELECT {cols}, hash({_BUCKET_KEY}) % {buckets} AS _bucket FROM flows_attributed) "
            f"TO {literal(str(folder))} (FORMAT parquet, PARTITION_BY (_bucket), "
            f"ROW_GROUP_SIZE {SPLIT_ROW_GROUP})"
        )
    except duckdb.Error as exc:
        raise StoreError(f"could not cut flows into buckets: {exc}", source=source) from None


def _read_bucket(con: duckdb.DuckDBPyConnection, folder: Path, bucket: int, source: str | None) -> pa.Table:
    """One bucket written by :func:`_split`, string columns dictionary-encoded (as
    :func:`read_flows_compact_con` reads them)."""
    columns = detection_columns()
    schema = pa.schema([FLOW_SCHEMA.field(c) for c in columns])
    part = folder / f"_bucket={bucket}"
    if not part.exists():
        return schema.empty_table()
    cols = ", ".join(f'"{c}"' for c in columns)
    scan = f"read_parquet({literal(str(part / '*.parquet'))}, hive_partitioning = false)"
    batches = []
    try:
        for batch in con.sql(f"SELECT {cols} FROM {scan}").to_arrow_reader(1_000_000):
            arrays = [batch.column(f.name).cast(f.type) for f in schema]
            batches.append(_compact(pa.Table.from_arrays(arrays, schema=schema)))
    except duckdb.Error as exc:
        raise StoreError(f"could not read flows: {exc}", source=source) from None
    return pa.concat_tables(batches) if batches else schema.empty_table()


def _by_buckets(
    con: duckdb.DuckDBPyConnection,
    config: DetectionConfig,
    laws: LawsFor,
    now: datetime | None,
    buckets: int,
    source: str | None,
) -> DetectionResult:
    laws = cached_laws(laws)
    try:
        frame = sql_frame(con, now)
    except duckdb.Error as exc:
        raise StoreError(f"could not read flows: {exc}", source=source) from None
    acc = Pass()
    columns = detection_columns()
    with tempfile.TemporaryDirectory(prefix="derisk-buckets-", dir=spill_directory()) as tmp:
        folder = Path(tmp) / "flows"
        _split(con, buckets, folder, source)
        log.info("detections: flows cut into %d buckets", buckets)
        for b in range(buckets):  # loop over buckets (few), each analysed vectorised
            table = _read_bucket(con, folder, b, source)
            acc.merge(bucket_pass(table, config, laws, frame, now))
            del table
            log.info("detections: bucket %d of %d done (%d flows so far)", b + 1, buckets, acc.flows)

    def read(col: str, values: list[str]) -> pa.Table:
        where = f'"{col}" IN ({", ".join(literal(v) for v in values)})'
        return read_flows_compact_con(con, columns, where=where, source=source)

    return finish(acc, read, config, laws, frame, now)


def _with_listings(ws: Workspace, alerts: list[Alert]) -> list[Alert]:
    """Name the sanctioned or listed entities (OpenSanctions/FtM imports) of the control chain of the
    organisations the alerts' flows were attributed to (combined, service and infrastructure)."""
    from derisk.know.risk import listing_lookup

    lookup = listing_lookup(ws) if alerts else None
    if lookup is None:
        return alerts
    ids = sorted({f for a in alerts for f in a.flow_ids})
    table = ws.query_arrow(
        "SELECT DISTINCT flow_id, dst_org_id, dst_service_org_id, dst_infra_org_id FROM flows_attributed"
        " WHERE flow_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    )
    orgs: dict[str, list[str]] = {}
    for row in table.to_pylist():
        found = (row["dst_org_id"], row["dst_service_org_id"], row["dst_infra_org_id"])
        orgs.setdefault(row["flow_id"], []).extend(v for v in found if v)

    def entities_of(alert: Alert) -> list[str]:
        return list(dict.fromkeys(o for f in alert.flow_ids for o in orgs.get(f, [])))

    return with_listings(alerts, entities_of, lookup)
