"""Large or lopsided uploads, per destination and per system, against each system's own baseline.

The *window* is the last ``beacon.window_hours`` of the data; everything before it is the *baseline*.
A system (or, without a system label, an internal host) is its own reference: its baseline is the
largest amount it sent to one destination in one window-length slot of the baseline period. Slots
are whole window-lengths counted from the epoch (the last one cut short at the window), so they do
not move as data arrives: ``derisk watch`` keeps the same baseline batch by batch
(:mod:`derisk.detect.incremental`).

* Per destination (registrable domain, else IP): alert when the host sent at least ``min_bytes_out``,
  at least ``min_ratio`` times what it received, and at least ``baseline_factor`` times its baseline.
  Score = half lopsidedness (``log10(out / in) / 2``, capped at 1) + half size
  (``0.5 + log10(out / max(baseline, min_bytes_out))``, capped).
* Per system: the same test on the system's total over all destinations, reported only when no single
  destination already raised an alert for it (exfiltration split over many destinations).
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.alert import Alert, LawsFor, Target, make_alert
from derisk.detect.config import DetectionConfig
from derisk.detect.explain import Phrase, phrase
from derisk.detect.segments import (
    F64,
    I64,
    B,
    Frame,
    as_datetime,
    codes_of,
    column,
    combine,
    first_value,
    ints,
    outbound_rows,
    segments,
)
from derisk.detect.targets import flow_ids_for, rows_info, target_from
from derisk.i18n.data import P_


def upload_score(out: float, inb: float, baseline: float, min_bytes: float) -> float:
    lopsided = min(1.0, max(0.0, math.log10(max(out, 1.0) / max(inb, 1.0)) / 2.0))
    size = min(1.0, max(0.0, 0.5 + math.log10(max(out, 1.0) / max(baseline, min_bytes))))
    return 0.5 * lopsided + 0.5 * size


def _fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} B"


def who_dest_keys(flows: pa.Table) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """Per row, who sent (``s:`` system, else ``i:`` internal host) and where to (``d:`` registrable
    domain, else ``a:`` IP), as strings (null when both are missing): the keys uploads are counted by."""

    def either(first: str, second: str, tags: tuple[str, str]) -> pa.ChunkedArray:
        a = pc.cast(column(flows, first), pa.string())
        b = pc.cast(column(flows, second), pa.string())
        return pc.if_else(
            pc.is_valid(a),
            pc.binary_join_element_wise(tags[0], a, ""),
            pc.binary_join_element_wise(tags[1], b, ""),
        )

    return either("system", "src_ip", ("s:", "i:")), either("dst_domain", "dst_ip", ("d:", "a:"))


def baseline_slots(start: F64, window: float) -> I64:
    """The window-length slot of each start time, counted from the epoch: slots do not move as data
    arrives, so a baseline is the same whether computed at once or batch by batch."""
    return np.floor(start / window).astype(np.int64)


def detect_uploads(
    flows: pa.Table,
    cfg: DetectionConfig,
    laws_for: LawsFor,
    *,
    now: datetime | None = None,
    frame: Frame | None = None,
) -> list[Alert]:
    found = outbound_rows(flows, now)
    if found is None:
        return []
    times, ok = found
    window = cfg.get("beacon", "window_hours") * 3600.0
    t_hi = frame[1] if frame else float(times.start[ok].max())
    cut = t_hi - window
    in_base = ok & (times.start < cut)
    who_key, dest_key = who_dest_keys(flows)
    who, dest = codes_of(who_key), codes_of(dest_key)
    out_b = ints(flows, "bytes_out").astype(np.float64)
    n_who = int(who.max()) + 1 if len(who) else 0
    # baseline per who: the most sent to one destination in one window-length slot before the cut
    baseline = np.zeros(max(n_who, 1))
    brow = np.flatnonzero(in_base & (who >= 0) & (dest >= 0))
    if len(brow):
        slot = baseline_slots(times.start[brow], window)
        key = combine(who[brow], dest[brow], slot - slot.min())
        sums = np.bincount(key, weights=out_b[brow])
        key_who = np.zeros(len(sums), dtype=np.int64)
        key_who[key] = who[brow]
        np.maximum.at(baseline, key_who, sums)
    return upload_alerts(
        flows, cfg, laws_for, times.start, ok & (times.start >= cut), who, dest, baseline, bool(in_base.any())
    )


def upload_alerts(
    flows: pa.Table,
    cfg: DetectionConfig,
    laws_for: LawsFor,
    start: F64,
    in_window: B,
    who: I64,
    dest: I64,
    baseline: F64,
    baseline_defined: bool,
) -> list[Alert]:
    """The upload alerts of the rows ``in_window``, given each who-code's ``baseline``."""
    window = cfg.get("beacon", "window_hours") * 3600.0
    out_b = ints(flows, "bytes_out").astype(np.float64)
    in_b = ints(flows, "bytes_in").astype(np.float64)
    min_bytes = cfg.get("upload", "min_bytes_out")
    ratio = cfg.get("upload", "min_ratio")
    factor = cfg.get("upload", "baseline_factor")
    min_score = cfg.get("upload", "min_score")
    rows = np.flatnonzero(in_window & (who >= 0) & (dest >= 0))
    if len(rows) == 0:
        return []
    pair = combine(who[rows], dest[rows])
    order = np.argsort(pair, kind="stable")
    seg = segments(pair[order])
    r_sorted = rows[order]
    out_sum = seg.sum(out_b[r_sorted])
    in_sum = seg.sum(in_b[r_sorted])
    pair_who = who[r_sorted[seg.starts]]
    base = baseline[pair_who]
    cand = (out_sum >= min_bytes) & (out_sum >= ratio * in_sum) & (out_sum >= factor * base)
    hits = [
        (i, s)
        for i in np.flatnonzero(cand)
        if (s := upload_score(float(out_sum[i]), float(in_sum[i]), float(base[i]), min_bytes)) >= min_score
    ]
    alerted_who = {int(pair_who[i]) for i, _ in hits}
    row_lists: list[I64] = [r_sorted[seg.starts[i] : seg.ends[i]] for i, _ in hits]
    # per system: totals over all destinations, for systems without a per-destination alert
    wseg_order = np.argsort(who[rows], kind="stable")
    wrows = rows[wseg_order]
    wseg = segments(who[wrows])
    w_out, w_in = wseg.sum(out_b[wrows]), wseg.sum(in_b[wrows])
    w_base = baseline[wseg.codes] * 1.0
    w_hits = []
    for i in np.flatnonzero((w_out >= min_bytes) & (w_out >= ratio * w_in) & (w_out >= factor * w_base)):
        if int(wseg.codes[i]) in alerted_who:
            continue
        s = upload_score(float(w_out[i]), float(w_in[i]), float(w_base[i]), min_bytes)
        if s >= min_score:
            w_hits.append((i, s))
            row_lists.append(wrows[wseg.starts[i] : wseg.ends[i]])
    if not row_lists:
        return []
    ids = flow_ids_for(flows, row_lists)
    infos = rows_info(flows, np.array([r[0] for r in row_lists], dtype=np.int64))
    alerts = []
    entries = [("dest", i, s) for i, s in hits] + [("system", i, s) for i, s in w_hits]
    for j, (scope, i, s) in enumerate(entries):
        r = row_lists[j]
        info = infos[j]
        if scope == "dest":
            o, inb, b = float(out_sum[i]), float(in_sum[i]), float(base[i])
            target = target_from(info, str(first_value(info, "dst_domain", "dst_ip")))
            dests = 1
            where: Phrase | None = None
        else:
            o, inb, b = float(w_out[i]), float(w_in[i]), float(w_base[i])
            dests = len(np.unique(dest[r]))
            where = phrase(P_("{count} destinations"), count=dests)
            target = Target(src_ip=info.get("src_ip"), system=info.get("system"), destination=where.text())
        if not info.get("system"):
            target = Target(**{**target.__dict__, "system": None})
        evidence = {
            "scope": "destination" if scope == "dest" else "system",
            "bytes_out": int(o),
            "bytes_in": int(inb),
            "ratio_out_in": round(o / max(inb, 1.0), 1),
            "baseline_bytes_out": int(b),
            "baseline_defined": baseline_defined,
            "destinations": dests,
            "window_hours": window / 3600.0,
        }
        summary = (
            phrase(
                P_(
                    "sent {sent} to {dest} and received {received}, against a baseline of {baseline} "
                    "(the most it sent to one destination in {window} h before)"
                ),
                sent=_fmt_bytes(o),
                received=_fmt_bytes(inb),
                baseline=_fmt_bytes(b),
                window=f"{window / 3600.0:g}",
            )
            if baseline_defined
            else phrase(
                P_("sent {sent} to {dest} and received {received}, with no baseline period in the data"),
                sent=_fmt_bytes(o),
                received=_fmt_bytes(inb),
            )
        )
        starts = start[r]
        alerts.append(
            make_alert(
                "upload",
                s,
                target,
                summary,
                evidence,
                laws_for,
                flow_ids=ids[j],
                flow_count=len(r),
                first_seen=as_datetime(starts.min()),
                last_seen=as_datetime(starts.max()),
                destination=where,
            )
        )
    return alerts
