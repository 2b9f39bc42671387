"""Long connections: one connection held open for hours, per (internal host, destination IP).

Flow exporters cut long connections into several records (NFStream's active timeout, for one); the
records of one 5-tuple that follow each other within ``stitch_gap_seconds`` are stitched back into one
connection before its duration is measured. Score: 0.5 at ``min_hours``, rising with the logarithm of
the duration to 1.0 at 12 hours (RITA's bands are 1, 4, 8 and 12 hours).
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pyarrow as pa

from derisk.detect.alert import Alert, LawsFor, make_alert
from derisk.detect.config import DetectionConfig
from derisk.detect.explain import phrase
from derisk.detect.segments import (
    F64,
    I64,
    B,
    as_datetime,
    codes_of,
    column,
    combine,
    flow_times,
    mask_eq,
    segments,
)
from derisk.detect.targets import flow_ids_for, rows_info, target_from
from derisk.i18n.data import P_

FULL_SCORE_HOURS = 12.0


def long_score(hours: float, min_hours: float) -> float:
    if hours < min_hours:
        return 0.0
    top = max(FULL_SCORE_HOURS, min_hours * 1.01)
    return min(1.0, 0.5 + 0.5 * math.log(hours / min_hours) / math.log(top / min_hours))


def five_tuple(flows: pa.Table) -> I64:
    """A code per 5-tuple; a missing port or protocol is a value of its own, not a wildcard."""
    parts = [codes_of(column(flows, c)) + 1 for c in ("src_ip", "dst_ip", "src_port", "dst_port", "protocol")]
    parts[0] -= 1
    parts[1] -= 1  # addresses must be present
    return combine(*parts)


def continuation_rows(flows: pa.Table, start: F64, end: F64, rows: I64, stitch: float) -> B:
    """Which of ``rows`` continue an earlier record of the same 5-tuple (an exporter's cut, not a new
    connection): mask over ``rows``."""
    out = np.zeros(len(rows), dtype=bool)
    if len(rows) < 2:
        return out
    key = five_tuple(flows)[rows]
    order = np.lexsort((start[rows], key))
    c, s, e = key[order], start[rows][order], end[rows][order]
    base = float(min(s.min(), e.min()))
    span = float(max(s.max(), e.max())) - base + 1.0
    idx = segments(c).index().astype(np.float64)
    run_end = np.maximum.accumulate((e - base) + idx * span) - idx * span + base
    prev_end = np.r_[-np.inf, run_end[:-1]]
    cont = np.r_[False, c[1:] == c[:-1]] & (s <= prev_end + stitch) & (c >= 0)
    out[order] = cont
    return out


def stitch_records(codes: I64, start: F64, end: F64, stitch: float) -> tuple[I64, I64]:
    """Records sorted by (5-tuple code, start) and the connection number of each sorted record: a new
    connection starts where the tuple changes or the next start is past the running end + ``stitch``."""
    order = np.lexsort((start, codes))
    c, s, e = codes[order], start[order], end[order]
    if len(c) == 0:
        return order, np.zeros(0, dtype=np.int64)
    # running max of the end within each tuple (segments kept apart by an offset per segment)
    base = float(min(s.min(), e.min()))
    span = float(max(s.max(), e.max())) - base + 1.0
    idx = segments(c).index().astype(np.float64)
    run_end = np.maximum.accumulate((e - base) + idx * span) - idx * span + base
    prev_end = np.r_[-np.inf, run_end[:-1]]
    new_conn = np.r_[True, c[1:] != c[:-1]] | (s > prev_end + stitch)
    return order, np.cumsum(new_conn) - 1


def detect_long_connections(
    flows: pa.Table,
    cfg: DetectionConfig,
    laws_for: LawsFor,
    *,
    now: datetime | None = None,
    frame: object = None,
) -> list[Alert]:
    if flows.num_rows == 0:
        return []
    times = flow_times(flows, now)
    direction = column(flows, "direction")
    ok = (mask_eq(direction, "outbound") | mask_eq(direction, "inbound")) & times.valid
    rows = np.flatnonzero(ok & (five_tuple(flows) >= 0))
    if len(rows) == 0:
        return []
    min_hours = cfg.get("long_connection", "min_hours")
    stitch = cfg.get("long_connection", "stitch_gap_seconds")
    src = codes_of(column(flows, "src_ip"))
    dst = codes_of(column(flows, "dst_ip"))
    tuple_codes = five_tuple(flows)[rows]
    start, end = times.start[rows], times.end[rows]
    order, conn = stitch_records(tuple_codes, start, end, stitch)
    s, e = start[order], end[order]
    cseg = segments(conn)
    conn_first, conn_last = cseg.min(s), cseg.max(e)
    dur_h = (conn_last - conn_first) / 3600.0
    long_conn = np.flatnonzero(dur_h >= min_hours)
    if len(long_conn) == 0:
        return []
    # one alert per (host, destination IP): its longest connection
    pair = combine(src, dst)[rows][order][cseg.starts[long_conn]]
    best: dict[int, int] = {}
    for j, p in enumerate(pair.tolist()):  # loop over long connections only (few)
        if p not in best or dur_h[long_conn[j]] > dur_h[long_conn[best[p]]]:
            best[p] = j
    chosen = [long_conn[j] for j in best.values()]
    row_lists = [rows[order[cseg.starts[k] : cseg.ends[k]]] for k in chosen]
    infos = rows_info(flows, np.array([r[0] for r in row_lists], dtype=np.int64))
    ids = flow_ids_for(flows, row_lists)
    alerts = []
    for j, k in enumerate(chosen):
        hours = float(dur_h[k])
        info = infos[j]
        target = target_from(info, str(info.get("server_name") or info.get("dst_ip") or ""))
        evidence = {
            "duration_hours": round(hours, 2),
            "records_stitched": int(cseg.lengths[k]),
            "min_hours": min_hours,
        }
        first = float(conn_first[k])
        summary = (
            phrase(
                P_("held one connection to {dest} open for {hours} h ({records} flow records stitched)"),
                hours=f"{hours:.1f}",
                records=int(cseg.lengths[k]),
            )
            if cseg.lengths[k] > 1
            else phrase(P_("held one connection to {dest} open for {hours} h"), hours=f"{hours:.1f}")
        )
        alerts.append(
            make_alert(
                "long-connection",
                long_score(hours, min_hours),
                target,
                summary,
                evidence,
                laws_for,
                flow_ids=ids[j],
                flow_count=int(cseg.lengths[k]),
                first_seen=as_datetime(first),
                last_seen=as_datetime(float(conn_last[k])),
            )
        )
    return alerts
