"""Beacons and strobes: software that checks in with a fixed period, per (internal host, server name)
and per (internal host, destination IP).

The score is built to keep what RITA v5 measures (regular gaps, regular sizes) and to fix where it is
weak (see ``docs/detection.md``):

* **Skipped check-ins.** The base period is estimated robustly: the lower quartile of the gaps, then
  the median of the gaps within ±50 % of it. Every gap is then read as ``k`` periods
  (``k = round(gap / period)``); a gap of 2 or 3 periods is a missed beat, not an irregularity.
* **Jitter.** The phase error ``|gap / period - k|`` (0 for a perfect beat, 0.5 for a gap exactly
  between beats) measures regularity; jitter of ±20 % costs at most 0.2 per gap.
* **Part-day beacons (duty cycle).** Gaps longer than ``max_skip`` periods are pauses (the software
  was off, the host asleep); time in pauses is not held against the beacon, only the share of gaps that
  are pauses. A beacon that runs 09:00–17:00 scores as well as one that runs all day.
* **Bursts.** Connection starts closer than half ``min_period_seconds`` are one check-in, and flow
  records that continue an earlier record of the same 5-tuple (an exporter's cut) are not check-ins.

Score = ``(0.5 * timing + 0.3 * beat regularity + 0.2 * max(size, timing)) * (1 - pause share)``
where timing = ``1 - 2 * mean phase error``, beat regularity = on-beat gaps / expected beats, and size
is RITA's statistical core on bytes sent (so a beacon with varying payloads is not penalised).

Pairs with ``strobe_connections`` or more connections per 24 hours are strobes instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.alert import Alert, LawsFor, make_alert
from derisk.detect.config import DetectionConfig
from derisk.detect.explain import phrase
from derisk.detect.longconn import continuation_rows
from derisk.detect.rita import _median_range, statistical_core
from derisk.detect.segments import (
    F64,
    I64,
    Frame,
    Segments,
    as_datetime,
    codes_of,
    column,
    combine,
    outbound_rows,
    segments,
)
from derisk.detect.targets import flow_ids_for, rows_info, target_from
from derisk.i18n.data import P_

ON_BEAT = 0.25  # phase error up to which a gap counts as a beat


@dataclass(frozen=True)
class PairScores:
    """Scores of every analysed group; ``rows`` holds the row positions of each group, sorted by time."""

    codes: I64
    seg: Segments
    rows: I64
    strobe: np.ndarray
    scored: np.ndarray
    period: F64
    jitter: F64
    timing: F64
    regularity: F64
    size: F64
    pause_share: F64
    beats: I64
    expected: I64
    pauses: I64
    active: F64
    first: F64
    last: F64
    bytes_median: F64
    confidence: F64
    score: F64


def score_pairs(codes: I64, t: F64, size: F64, cfg: DetectionConfig) -> PairScores:
    """Score every group of rows (``codes``) with at least ``min_connections`` connections."""
    g = "beacon"
    min_conn = int(cfg.get(g, "min_connections"))
    min_period = cfg.get(g, "min_period_seconds")
    max_skip = cfg.get(g, "max_skip")
    strobe_at = cfg.get(g, "strobe_connections") * cfg.get(g, "window_hours") / 24.0
    counts = np.bincount(codes) if len(codes) else np.zeros(0, dtype=np.int64)
    keep = np.flatnonzero(counts[codes] >= min_conn) if len(codes) else np.zeros(0, dtype=np.int64)
    order = keep[np.lexsort((t[keep], codes[keep]))]
    c, tt = codes[order], t[order]
    seg = segments(c)
    n = len(seg)
    strobe = seg.lengths >= strobe_at
    idx = seg.index()
    same = np.r_[False, c[1:] == c[:-1]] if len(c) else np.zeros(0, dtype=bool)
    gap = np.r_[0.0, np.diff(tt)] if len(tt) else np.zeros(0)
    gap_ok = same & (gap >= min_period / 2.0) & ~strobe[idx]
    gi, gv = idx[gap_ok], gap[gap_ok]
    o = np.lexsort((gv, gi))
    gi, gs = gi[o], gv[o]
    gseg = segments(gi)
    m = gseg.lengths
    at = gseg.index()
    # robust base period: lower quartile, then the median of gaps within ±50 % of it
    p0 = gs[gseg.starts + (m - 1) // 4] if len(gseg) else np.zeros(0)
    lo, hi = 0.5 * p0, 1.5 * p0
    below = gseg.sum((gs < lo[at]).astype(np.int64))
    inside = gseg.sum(((gs >= lo[at]) & (gs <= hi[at])).astype(np.int64))
    period_g = _median_range(gs, gseg.starts + below, inside)
    ratio = gs / np.maximum(period_g[at], 1e-9)
    k = np.rint(ratio)
    err = np.where(k == 0, 0.5, np.abs(ratio - k))
    pause = k > max_skip
    live = ~pause
    live_n = gseg.sum(live.astype(np.int64))
    timing_g = 1.0 - 2.0 * gseg.sum(np.where(live, err, 0.0)) / np.maximum(live_n, 1)
    onbeat = live & (k >= 1) & (err <= ON_BEAT)
    beats_g = gseg.sum(onbeat.astype(np.int64))
    expected_g = gseg.sum(np.where(live, k, 0.0)).astype(np.int64)
    regular_g = beats_g / np.maximum(expected_g, 1)
    # evidence against chance: a random phase lands on a beat half of the time
    n_live = gseg.sum((live & (k >= 1)).astype(np.int64))
    z_g = (beats_g - 0.5 * n_live) / np.sqrt(np.maximum(0.25 * n_live, 1e-9))
    pauses_g = gseg.sum(pause.astype(np.int64))
    active_g = gseg.sum(np.where(live, gs, 0.0))
    dev = np.where(onbeat, np.abs(gs - k * period_g[at]), np.inf)
    o2 = np.lexsort((dev, at))
    jitter_g = _median_range(dev[o2], gseg.starts, beats_g)

    # back to one value per group (groups without gaps keep zeros)
    def per_group(values: np.ndarray, fill: float = 0.0) -> F64:
        out = np.full(n, fill, dtype=np.float64)
        out[gseg.codes] = values
        return out

    period = per_group(period_g)
    timing = per_group(timing_g)
    regularity = per_group(regular_g)
    beats = per_group(beats_g).astype(np.int64)
    expected = per_group(expected_g).astype(np.int64)
    pauses = per_group(pauses_g).astype(np.int64)
    gaps = per_group(m.astype(np.float64))
    active = per_group(active_g)
    jitter = per_group(jitter_g)
    z = per_group(z_g)
    confidence = np.clip(0.5 + z / 6.0, 0.0, 1.0)
    pause_share = np.where(gaps > 0, pauses / np.maximum(gaps, 1), 1.0)
    # size: RITA's statistical core on bytes sent per connection
    b = size[order]
    o3 = np.lexsort((b, idx))
    size_score, _, _ = statistical_core(b[o3], seg, 0.0)
    bytes_median = _median_range(b[o3], seg.starts, seg.lengths)
    score = (0.5 * timing + 0.3 * regularity + 0.2 * np.maximum(size_score, timing)) * (1.0 - pause_share)
    score = score * confidence
    score = np.clip(score, 0.0, 1.0)
    scored = (
        ~strobe
        & (gaps >= 3)
        & (period >= min_period)
        & (period <= cfg.get(g, "max_period_seconds"))
        & (beats >= cfg.get(g, "min_beats"))
        & (active >= cfg.get(g, "min_active_minutes") * 60.0)
    )
    score = np.where(scored, score, 0.0)
    return PairScores(
        codes=seg.codes,
        seg=seg,
        rows=order,
        strobe=strobe,
        scored=scored,
        period=period,
        jitter=jitter,
        timing=timing,
        regularity=regularity,
        size=size_score,
        pause_share=pause_share,
        beats=beats,
        expected=expected,
        pauses=pauses,
        active=active,
        first=seg.min(tt) if n else np.zeros(0),
        last=seg.max(tt) if n else np.zeros(0),
        bytes_median=bytes_median,
        confidence=confidence,
        score=score,
    )


def _fmt_period(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def detect_beacons(
    flows: pa.Table,
    cfg: DetectionConfig,
    laws_for: LawsFor,
    *,
    now: datetime | None = None,
    frame: Frame | None = None,
) -> list[Alert]:
    """Beacon and strobe alerts for the outbound flows of ``flows`` (window cut from ``frame``)."""
    found = outbound_rows(flows, now)
    if found is None:
        return []
    times, ok = found
    window = cfg.get("beacon", "window_hours") * 3600.0
    last = frame[1] if frame else float(times.start[ok].max())
    ok &= times.start >= last - window
    rows_ok = np.flatnonzero(ok)
    stitch = cfg.get("long_connection", "stitch_gap_seconds")
    ok[rows_ok[continuation_rows(flows, times.start, times.end, rows_ok, stitch)]] = False
    src = codes_of(column(flows, "src_ip"))
    size = np.asarray(
        pc.fill_null(pc.cast(column(flows, "bytes_out"), pa.float64()), 0.0).to_numpy(zero_copy_only=False),
        dtype=np.float64,
    )
    min_score = cfg.get("beacon", "min_score")
    claimed = np.zeros(flows.num_rows, dtype=bool)
    alerts: list[Alert] = []
    for key_type, dest_col in (("server_name", "server_name"), ("ip", "dst_ip")):
        codes = combine(src, codes_of(column(flows, dest_col)))
        rows = np.flatnonzero(ok & ~claimed & (codes >= 0))
        if len(rows) == 0:
            continue
        res = score_pairs(codes[rows], times.start[rows], size[rows], cfg)
        if key_type == "server_name":
            claimed[rows[res.rows]] = True  # rows of every analysed name pair: not analysed again by IP
        hit = np.flatnonzero((res.scored & (res.score >= min_score)) | res.strobe)
        if len(hit) == 0:
            continue
        row_lists = [rows[res.rows[res.seg.starts[i] : res.seg.ends[i]]] for i in hit]
        infos = rows_info(flows, np.array([r[-1] for r in row_lists], dtype=np.int64))
        ids = flow_ids_for(flows, row_lists)
        for j, i in enumerate(hit):
            info = infos[j]
            dest = str(info.get(dest_col) or "")
            target = target_from(info, dest, by_name=key_type == "server_name")
            span_h = float(res.last[i] - res.first[i]) / 3600.0
            common = {
                "key": key_type,
                "connections": int(res.seg.lengths[i]),
                "span_hours": round(span_h, 2),
                "window_hours": cfg.get("beacon", "window_hours"),
                "bytes_out_median": float(res.bytes_median[i]),
            }
            if res.strobe[i]:
                n = int(res.seg.lengths[i])
                score = min(1.0, 0.8 + 0.2 * n / (2 * cfg.get("beacon", "strobe_connections")))
                summary = phrase(
                    P_("opened {connections} connections to {dest} in {hours} h (a strobe)"),
                    connections=f"{n:,}",
                    hours=f"{span_h:.1f}",
                )
                alerts.append(
                    make_alert(
                        "strobe",
                        score,
                        target,
                        summary,
                        common,
                        laws_for,
                        flow_ids=ids[j],
                        flow_count=n,
                        first_seen=as_datetime(res.first[i]),
                        last_seen=as_datetime(res.last[i]),
                    )
                )
                continue
            expected = max(int(res.expected[i]), 1)
            skipped = max(0.0, 1.0 - float(res.beats[i]) / expected)
            evidence = {
                **common,
                "period_seconds": round(float(res.period[i]), 3),
                "jitter_seconds": round(float(res.jitter[i]), 3),
                "check_ins": int(res.beats[i]) + 1,
                "expected_beats": expected,
                "skipped_share": round(skipped, 3),
                "pauses": int(res.pauses[i]),
                "active_hours": round(float(res.active[i]) / 3600.0, 2),
                "timing_score": round(float(res.timing[i]), 3),
                "regularity_score": round(float(res.regularity[i]), 3),
                "size_score": round(float(res.size[i]), 3),
                "pause_share": round(float(res.pause_share[i]), 3),
                "confidence": round(float(res.confidence[i]), 3),
            }
            summary = phrase(
                P_(
                    "beacons to {dest} every {period} (±{jitter} s): {check_ins} check-ins over {hours} h, "
                    "active {active} h, {skipped} of beats skipped"
                ),
                period=_fmt_period(float(res.period[i])),
                jitter=f"{float(res.jitter[i]):.1f}",
                check_ins=f"{int(res.beats[i]) + 1:,}",
                hours=f"{span_h:.1f}",
                active=f"{float(res.active[i]) / 3600.0:.1f}",
                skipped=f"{skipped:.0%}",
            )
            alerts.append(
                make_alert(
                    "beacon",
                    float(res.score[i]),
                    target,
                    summary,
                    evidence,
                    laws_for,
                    flow_ids=ids[j],
                    flow_count=int(res.seg.lengths[i]),
                    first_seen=as_datetime(res.first[i]),
                    last_seen=as_datetime(res.last[i]),
                )
            )
    return alerts
