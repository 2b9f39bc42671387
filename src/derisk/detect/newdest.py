"""First-seen destinations, organisations and jurisdictions relative to a baseline period.

The baseline is the first ``baseline_hours`` of the data; without data after it there is nothing to
compare and no alert. Reported after it, for outbound flows carrying at least ``min_bytes``:

* per *system* (hosts the site file names): a destination (registrable domain, else IP) the system
  never talked to in the baseline (score 0.7); workstations without a system label are left out, for
  they meet new web sites every hour;
* site-wide: an organisation (0.8) or a controlling jurisdiction (0.9) no host talked to in the
  baseline.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.alert import Alert, LawsFor, make_alert
from derisk.detect.config import DetectionConfig
from derisk.detect.segments import (
    I64,
    B,
    as_datetime,
    codes_of,
    column,
    combine,
    flow_times,
    ints,
    mask_eq,
    segments,
)
from derisk.detect.targets import flow_ids_for, rows_info, target_from

SCORES = {"destination": 0.7, "organisation": 0.8, "jurisdiction": 0.9}


def _first_seen_groups(key: I64, start: np.ndarray, rows: I64, baseline_end: float) -> list[I64]:
    """Row lists (sorted by time) of every key whose first flow is after the baseline."""
    r = rows[key[rows] >= 0]
    if len(r) == 0:
        return []
    order = r[np.lexsort((start[r], key[r]))]
    seg = segments(key[order])
    first = start[order[seg.starts]]
    return [order[seg.starts[i] : seg.ends[i]] for i in np.flatnonzero(first >= baseline_end)]


def detect_new_destinations(
    flows: pa.Table, cfg: DetectionConfig, laws_for: LawsFor, *, now: datetime | None = None
) -> list[Alert]:
    if flows.num_rows == 0:
        return []
    times = flow_times(flows, now)
    outbound: B = mask_eq(column(flows, "direction"), "outbound") & times.valid
    if not outbound.any():
        return []
    t0 = float(times.start[outbound].min())
    baseline_end = t0 + cfg.get("new_destination", "baseline_hours") * 3600.0
    if float(times.start[outbound].max()) < baseline_end:
        return []
    size = ints(flows, "bytes_out") + ints(flows, "bytes_in")
    rows = np.flatnonzero(outbound)
    dest_name = pc.coalesce(column(flows, "dst_domain"), column(flows, "dst_ip"))
    system = column(flows, "system")
    min_bytes = cfg.get("new_destination", "min_bytes")
    found: list[tuple[str, I64]] = []
    sys_codes = codes_of(system)
    for r in _first_seen_groups(combine(sys_codes, codes_of(dest_name)), times.start, rows, baseline_end):
        found.append(("destination", r))
    for scope, col in (("organisation", "dst_org"), ("jurisdiction", "dst_jurisdiction")):
        for r in _first_seen_groups(codes_of(column(flows, col)), times.start, rows, baseline_end):
            found.append((scope, r))
    found = [f for f in found if size[f[1]].sum() >= min_bytes]
    if not found:
        return []
    infos = rows_info(flows, np.array([f[1][0] for f in found], dtype=np.int64))
    ids = flow_ids_for(flows, [f[1] for f in found])
    alerts = []
    for j, (scope, r) in enumerate(found):
        info = infos[j]
        if scope == "destination":
            dname = str(pc.take(dest_name, pa.array([r[0]], pa.int64())).to_pylist()[0])
            target = target_from(info, dname)
            what = "talked for the first time to {dest}"
        elif scope == "organisation":
            target = target_from({**info, "system": info.get("system")}, str(info.get("dst_org")))
            what = f"was the first to reach organisation {info.get('dst_org')} ({{dest}})"
        else:
            target = target_from(info, str(info.get("dst_jurisdiction")))
            what = f"was the first to send traffic under jurisdiction {info.get('dst_jurisdiction')}"
        hosts = len(pc.unique(pc.take(column(flows, "src_ip"), pa.array(r, pa.int64()))))
        evidence = {
            "scope": scope,
            "baseline_end": as_datetime(baseline_end).isoformat(),
            "flows_since": len(r),
            "bytes_since": int(size[r].sum()),
            "hosts": hosts,
        }
        alerts.append(make_alert("new-destination", SCORES[scope], target,
                                 f"{what} after the baseline period ({len(r):,} flows, {hosts} hosts)",
                                 evidence, laws_for, flow_ids=ids[j], flow_count=len(r),
                                 first_seen=as_datetime(times.start[r].min()),
                                 last_seen=as_datetime(times.start[r].max())))
    return alerts
