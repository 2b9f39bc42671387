"""First-seen destinations, organisations and jurisdictions relative to a baseline period.

The baseline is the first ``baseline_hours`` of the data; without data after it there is nothing to
compare and no alert. Reported after it, for outbound flows carrying at least ``min_bytes``:

* per *system* (hosts the site file names): a destination (registrable domain, else IP) the system
  never talked to in the baseline (score 0.7); workstations without a system label are left out, for
  they meet new web sites every hour. A system with more than ``max_per_system`` new destinations
  gets one alert listing the largest of them instead of one alert each;
* site-wide: an organisation (0.8) or a controlling jurisdiction (0.9) no host talked to in the
  baseline.

A baseline must come from earlier data: when every flow comes from one input (a site's first
capture or log), nothing is new against anything, so no new-destination alert is raised at all;
the analysis document says so instead (``notices``, code ``no-baseline``), and that input becomes
the baseline of the next analysis. Flows whose ids do not name their input (``input#ordinal``) are
judged on time alone, as before.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.alert import Alert, LawsFor, make_alert
from derisk.detect.config import DetectionConfig
from derisk.detect.explain import Phrase, phrase
from derisk.detect.segments import (
    F64,
    I64,
    B,
    Frame,
    Segments,
    as_datetime,
    coalesce_codes,
    codes_of,
    column,
    combine,
    first_value,
    flow_times,
    ints,
    mask_eq,
    segments,
)
from derisk.detect.targets import flow_ids_for, rows_info, target_from
from derisk.i18n.data import P_

#: The summary per (what it saw, one flow, one host): written out whole, so each is one template to translate.
_NEW_TEMPLATES: dict[tuple[str, bool, bool], str] = {
    ("talked for the first time to {dest}", True, True): P_(
        "talked for the first time to {dest} after the baseline period ({flows} flow, {hosts} host)"
    ),
    ("talked for the first time to {dest}", False, True): P_(
        "talked for the first time to {dest} after the baseline period ({flows} flows, {hosts} host)"
    ),
    ("talked for the first time to {dest}", False, False): P_(
        "talked for the first time to {dest} after the baseline period ({flows} flows, {hosts} hosts)"
    ),
    ("talked for the first time to {dest}", True, False): P_(
        "talked for the first time to {dest} after the baseline period ({flows} flows, {hosts} hosts)"
    ),
    ("talked to {count} destinations for the first time (the largest: {largest})", True, True): P_(
        "talked to {count} destinations for the first time (the largest: {largest}) after the baseline period ({flows} flow, {hosts} host)"
    ),
    ("talked to {count} destinations for the first time (the largest: {largest})", False, True): P_(
        "talked to {count} destinations for the first time (the largest: {largest}) after the baseline period ({flows} flows, {hosts} host)"
    ),
    ("talked to {count} destinations for the first time (the largest: {largest})", False, False): P_(
        "talked to {count} destinations for the first time (the largest: {largest}) after the baseline period ({flows} flows, {hosts} hosts)"
    ),
    ("talked to {count} destinations for the first time (the largest: {largest})", True, False): P_(
        "talked to {count} destinations for the first time (the largest: {largest}) after the baseline period ({flows} flows, {hosts} hosts)"
    ),
    ("was the first to reach organisation {organisation}", True, True): P_(
        "was the first to reach organisation {organisation} after the baseline period ({flows} flow, {hosts} host)"
    ),
    ("was the first to reach organisation {organisation}", False, True): P_(
        "was the first to reach organisation {organisation} after the baseline period ({flows} flows, {hosts} host)"
    ),
    ("was the first to reach organisation {organisation}", False, False): P_(
        "was the first to reach organisation {organisation} after the baseline period ({flows} flows, {hosts} hosts)"
    ),
    ("was the first to reach organisation {organisation}", True, False): P_(
        "was the first to reach organisation {organisation} after the baseline period ({flows} flows, {hosts} hosts)"
    ),
    ("was the first to send traffic under jurisdiction {jurisdiction}", True, True): P_(
        "was the first to send traffic under jurisdiction {jurisdiction} after the baseline period ({flows} flow, {hosts} host)"
    ),
    ("was the first to send traffic under jurisdiction {jurisdiction}", False, True): P_(
        "was the first to send traffic under jurisdiction {jurisdiction} after the baseline period ({flows} flows, {hosts} host)"
    ),
    ("was the first to send traffic under jurisdiction {jurisdiction}", False, False): P_(
        "was the first to send traffic under jurisdiction {jurisdiction} after the baseline period ({flows} flows, {hosts} hosts)"
    ),
    ("was the first to send traffic under jurisdiction {jurisdiction}", True, False): P_(
        "was the first to send traffic under jurisdiction {jurisdiction} after the baseline period ({flows} flows, {hosts} hosts)"
    ),
}


SCORES = {"destination": 0.7, "organisation": 0.8, "jurisdiction": 0.9}
EXAMPLES = 10


@dataclass(frozen=True)
class _New:
    """Groups (of one key) first seen after the baseline, each a slice of ``order``."""

    order: I64
    seg: Segments
    picked: I64  # segment numbers of the new groups
    bytes: F64  # per picked group


def _first_seen(key: I64, start: F64, size: F64, rows: B, baseline_end: float, min_bytes: float) -> _New:
    """Keys first seen after the baseline: first time and bytes per key without sorting every row
    (slot 0 collects the rows left out); only the rows of new keys are sorted."""
    slot = np.where(rows, key + 1, 0)
    n = int(slot.max()) + 1
    first = np.full(n, np.inf)
    np.minimum.at(first, slot, start)
    total = np.bincount(slot, weights=size, minlength=n)
    new = np.flatnonzero(np.isfinite(first) & (first >= baseline_end) & (total >= min_bytes))
    new = new[new > 0]
    r = np.flatnonzero(np.isin(slot, new))
    del slot
    order = r[np.lexsort((start[r], key[r]))]
    seg = segments(key[order])
    return _New(
        order, seg, np.arange(len(seg), dtype=np.int64), np.asarray(total[seg.codes + 1], dtype=np.float64)
    )


def single_input(flows: pa.Table) -> bool:
    """Whether every flow comes from one input (ids ``input#ordinal``): no earlier data to compare."""
    ids = column(flows, "flow_id")
    if ids.null_count == len(ids) or len(ids) == 0:
        return False
    parts = pc.split_pattern(pc.cast(ids, pa.string()), "#", max_splits=1)
    if not pc.all(pc.equal(pc.list_value_length(parts), 2)).as_py():
        return False
    inputs = pc.unique(pc.list_element(parts, 0))
    return len(inputs) == 1


def detect_new_destinations(
    flows: pa.Table,
    cfg: DetectionConfig,
    laws_for: LawsFor,
    *,
    now: datetime | None = None,
    frame: Frame | None = None,
    scopes: tuple[str, ...] = ("destination", "organisation", "jurisdiction"),
) -> list[Alert]:
    if flows.num_rows == 0:
        return []
    times = flow_times(flows, now)
    outbound: B = mask_eq(column(flows, "direction"), "outbound") & times.valid
    if not outbound.any():
        return []
    t0, t1 = frame if frame else (float(times.start[outbound].min()), float(times.start[outbound].max()))
    baseline_end = t0 + cfg.get("new_destination", "baseline_hours") * 3600.0
    if t1 < baseline_end or single_input(flows):
        return []
    size = (ints(flows, "bytes_out") + ints(flows, "bytes_in")).astype(np.float64)
    rows = outbound
    min_bytes = cfg.get("new_destination", "min_bytes")
    max_per_system = int(cfg.get("new_destination", "max_per_system"))
    # (scope, rows of the alert, rows of further new destinations summarised in it)
    found: list[tuple[str, I64, list[I64]]] = []
    if "destination" in scopes:
        sys_codes = codes_of(column(flows, "system"))
        dest = coalesce_codes(column(flows, "dst_domain"), column(flows, "dst_ip"))
        new = _first_seen(combine(sys_codes, dest), times.start, size, rows, baseline_end, min_bytes)
        del dest
        owner = sys_codes[new.order[new.seg.starts[new.picked]]] if len(new.picked) else np.zeros(0, np.int64)
    else:
        owner = np.zeros(0, np.int64)
    for system in np.unique(owner):  # loop over systems with new destinations (few)
        mine = new.picked[owner == system]
        by_size = mine[np.argsort(-new.bytes[owner == system], kind="stable")]
        slices = [new.order[new.seg.starts[i] : new.seg.ends[i]] for i in by_size[: EXAMPLES + 1]]
        if len(mine) <= max_per_system:
            slices = [new.order[new.seg.starts[i] : new.seg.ends[i]] for i in by_size]
            found.extend(("destination", sl, []) for sl in slices)
        else:
            found.append(("destinations", slices[0], [*slices[1:EXAMPLES], np.array([len(mine)], np.int64)]))
    for scope, col in (("organisation", "dst_org"), ("jurisdiction", "dst_jurisdiction")):
        if scope not in scopes:
            continue
        grp = _first_seen(codes_of(column(flows, col)), times.start, size, rows, baseline_end, min_bytes)
        found.extend((scope, grp.order[grp.seg.starts[i] : grp.seg.ends[i]], []) for i in grp.picked)
    if not found:
        return []
    infos = rows_info(flows, np.array([f[1][0] for f in found], dtype=np.int64))
    ids = flow_ids_for(flows, [f[1] for f in found])
    src = codes_of(column(flows, "src_ip"))
    alerts = []
    for j, (scope, r, extra) in enumerate(found):
        examples: list[str] = []
        count = 0
        if scope == "destinations":
            count = int(extra[-1][0])
            rows_ex = rows_info(flows, np.array([x[0] for x in extra[:-1]], dtype=np.int64))
            examples = [str(first_value(e, "dst_domain", "dst_ip")) for e in rows_ex]
        hosts = len(np.unique(src[r]))
        seen = NewSeen(
            len(r), int(size[r].sum()), hosts, float(times.start[r].min()), float(times.start[r].max())
        )
        alerts.append(new_alert(scope, infos[j], baseline_end, seen, ids[j], examples, count, laws_for))
    return alerts


@dataclass(frozen=True)
class NewSeen:
    """What was seen of a new destination, organisation or jurisdiction since the baseline."""

    flows: int
    bytes: int
    hosts: int
    first: float
    last: float


def new_alert(
    scope: str,
    info: dict[str, Any],
    baseline_end: float,
    seen: NewSeen,
    flow_ids: list[str],
    examples: list[str],
    count: int,
    laws_for: LawsFor,
) -> Alert:
    """The alert of one new key; ``info`` is the attribution of its first flow. For the ``destinations``
    scope (a system with too many new destinations), ``count`` is how many and ``examples`` the next
    largest after the one ``info`` names."""
    evidence: dict[str, object] = {
        "scope": scope,
        "baseline_end": as_datetime(baseline_end).isoformat(),
        "flows_since": seen.flows,
        "bytes_since": seen.bytes,
    }
    where: Phrase | None = None
    if scope in ("destination", "destinations"):
        target = target_from(info, str(first_value(info, "dst_domain", "dst_ip")))
        what, values = "talked for the first time to {dest}", {}
        if scope == "destinations":
            evidence["new_destinations"] = count
            evidence["examples"] = examples
            largest = str(first_value(info, "dst_domain", "dst_ip"))
            what = "talked to {count} destinations for the first time (the largest: {largest})"
            values = {"count": f"{count:,}", "largest": largest}
            where = phrase(P_("{count} new destinations"), count=count)
            target = replace(target, destination=where.text())
    elif scope == "organisation":
        target = target_from(info, str(info.get("dst_org")))
        what, values = (
            "was the first to reach organisation {organisation}",
            {"organisation": str(info.get("dst_org"))},
        )
    else:
        target = target_from(info, str(info.get("dst_jurisdiction")))
        what = "was the first to send traffic under jurisdiction {jurisdiction}"
        values = {"jurisdiction": str(info.get("dst_jurisdiction"))}
    evidence["hosts"] = seen.hosts
    kind_scope = "destination" if scope == "destinations" else scope
    n = seen.flows
    return make_alert(
        "new-destination",
        SCORES[kind_scope],
        target,
        phrase(_NEW_TEMPLATES[(what, n == 1, seen.hosts == 1)], flows=f"{n:,}", hosts=seen.hosts, **values),
        evidence,
        laws_for,
        flow_ids=flow_ids,
        flow_count=n,
        first_seen=as_datetime(seen.first),
        last_seen=as_datetime(seen.last),
        destination=where,
    )
