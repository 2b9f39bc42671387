"""A faithful re-implementation of RITA v5's beacon score: the baseline derisk measures itself against.

Written from RITA v5's published description of its scoring and its documented defaults
(Active Countermeasures, github.com/activecm/rita), not copied; vectorised over all pairs at once. Per (internal host, destination IP) and per
(internal host, server name), over the last 24 hours of the data:

* at least 4 distinct connection times (seconds) and fewer than 86,400 connections;
* timing score: the statistical core on the sorted non-zero gaps between connection starts (at least
  3 of them); size score: the core on the bytes the internal side sent per connection;
* statistical core: Bowley skew ``(Q1 + Q3 - 2 Q2) / (Q3 - Q1)``, counted only when ``Q3 - Q1 >= 10``
  and the median differs from both quartiles, scoring ``1 - |skew|``; MAD score
  ``(median - MAD) / median`` (a default when the median is below 1); core = their mean;
* histogram score: 24 bins over the window; ``1 - CV`` of bin counts (0 above 1), or, with at least
  11 non-empty bins, the share of non-empty bins in the two most common bar heights (heights grouped
  in steps of 5 % of the tallest bar, one outlier bar forgiven); the larger of the two;
* duration score (at least 6 non-empty bins): the larger of coverage (first-to-last span over the
  window) and the longest run of consecutive non-empty bins (wrapping around) over 12;
* score = mean of the four, rounded to 3 decimals; reported at 0.5 or more.

The window is ``max(first, last - 24 h)`` to ``last`` (connections from the start of the window's first
hour are kept, as RITA's hourly tables do). Connections used by a qualifying server-name pair are left
out of the IP pairs, as RITA does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.segments import (
    F64,
    I64,
    Segments,
    codes_of,
    column,
    combine,
    flow_times,
    mask_eq,
    segments,
)

MIN_UNIQUE = 4
STROBE = 86_400
BINS = 24
MODE_SENSITIVITY = 0.05
BIMODAL_OUTLIERS = 1
BIMODAL_MIN_BARS = 11
DURATION_MIN_BARS = 6
IDEAL_RUN = 12
REPORT_AT = 0.5


def _round3(x: F64) -> F64:
    return np.asarray(np.floor(x * 1000.0 + 0.5) / 1000.0, dtype=np.float64)


def _median_range(v: F64, lo: I64, n: I64) -> F64:
    """Median of v[lo:lo+n] (sorted) for every range; 0 where n == 0."""
    safe = np.maximum(n, 1)
    a = lo + (safe - 1) // 2
    b = lo + safe // 2
    a = np.minimum(a, len(v) - 1)
    b = np.minimum(b, len(v) - 1)
    return np.where(n > 0, (v[a] + v[b]) / 2.0, 0.0)


def statistical_core(values: F64, seg: Segments, default_mad: float) -> tuple[F64, F64, F64]:
    """RITA's statistical core per segment of ``values`` sorted within segments (lengths ≥ 3).

    Returns (core score, Bowley skew, MAD).
    """
    if len(seg) == 0:
        z = np.zeros(0)
        return z, z, z
    n = seg.lengths
    even = n % 2 == 0
    c1 = np.where(even, n // 2, (n - 1) // 2)
    c2 = np.where(even, n // 2, c1 + 1)
    q1 = _median_range(values, seg.starts, c1)
    q2 = _median_range(values, seg.starts, n)
    q3 = _median_range(values, seg.starts + c2, n - c2)
    den = q3 - q1
    use = (den >= 10) & (q2 != q1) & (q2 != q3)
    skew = np.where(use, (q1 + q3 - 2 * q2) / np.where(use, den, 1.0), 0.0)
    skew_score = 1.0 - np.abs(skew)
    idx = seg.index()
    dev = np.abs(values - q2[idx])
    order = np.lexsort((dev, idx))
    mad = _median_range(dev[order], seg.starts, n)
    with np.errstate(divide="ignore", invalid="ignore"):
        mad_score = np.where(q2 >= 1, (q2 - mad) / np.where(q2 >= 1, q2, 1.0), default_mad)
    mad_score = np.where(np.isnan(mad_score) | (mad_score < 0), 0.0, mad_score)
    return _round3((skew_score + mad_score) / 2.0), skew, mad


def histogram(ts: F64, idx: I64, groups: int, lo: float, hi: float, bins: int = BINS) -> I64:
    """Counts per (group, bin) of timestamps over [lo, hi] split in ``bins`` equal bins."""
    step = (hi - lo) / bins
    b = np.clip(np.floor((ts - lo) / step).astype(np.int64), 0, bins - 1)
    counts = np.bincount(idx * bins + b, minlength=groups * bins)
    return counts.reshape(groups, bins)


def longest_run(present: np.ndarray) -> I64:
    """Longest run of consecutive non-empty bins per row, wrapping around, capped at the bin count."""
    rows, bins = present.shape
    best = np.zeros(rows, dtype=np.int64)
    run = np.zeros(rows, dtype=np.int64)
    for i in range(2 * bins):  # loop over bins (48), vectorised over groups
        col = present[:, i % bins]
        run = np.where(col, run + 1, 0)
        best = np.maximum(best, run)
    return np.asarray(np.minimum(best, bins), dtype=np.int64)


def histogram_scores(counts: I64) -> tuple[F64, I64, I64]:
    """(histogram score, non-empty bars, longest run) per row of a (groups, bins) count matrix."""
    rows, bins = counts.shape
    c = counts.astype(np.float64)
    mean = c.mean(axis=1)
    sd = c.std(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = np.where(mean > 0, sd / np.where(mean > 0, mean, 1.0), 2.0)
    cv_score = np.where(cv > 1.0, 0.0, _round3(1.0 - cv))
    bars = (counts > 0).sum(axis=1).astype(np.int64)
    largest = counts.max(axis=1).astype(np.float64)
    size = np.maximum(np.ceil(largest * MODE_SENSITIVITY), 1.0)
    binned = np.where(counts > 0, np.floor(c / size[:, None]) * size[:, None], -1.0)
    binned.sort(axis=1)
    # run lengths of equal binned heights (ignoring -1 = empty) per row: top two
    top1 = np.zeros(rows)
    top2 = np.zeros(rows)
    run = np.zeros(rows)
    for i in range(bins):
        same = (binned[:, i] == binned[:, i - 1]) if i > 0 else np.zeros(rows, dtype=bool)
        run = np.where(same, run + 1, 1.0)
        last = (binned[:, i + 1] != binned[:, i]) if i + 1 < bins else np.ones(rows, dtype=bool)
        closing = last & (binned[:, i] >= 0)
        val = np.where(closing, run, 0.0)
        top2 = np.where(val > top1, top1, np.maximum(top2, val))
        top1 = np.maximum(top1, val)
    adjusted = np.maximum(bars - BIMODAL_OUTLIERS, 1).astype(np.float64)
    modal = np.where(bars >= BIMODAL_MIN_BARS, (top1 + top2) / adjusted, 0.0)
    modal = np.minimum(_round3(modal), 1.0)
    return np.maximum(cv_score, modal), bars, longest_run(counts > 0)


def duration_scores(first: F64, last: F64, lo: float, hi: float, bars: I64, run: I64) -> F64:
    coverage = np.minimum(np.ceil((last - first) / (hi - lo) * 1000.0) / 1000.0, 1.0)
    consistency = np.minimum(np.ceil(run / IDEAL_RUN * 1000.0) / 1000.0, 1.0)
    return np.where(bars >= DURATION_MIN_BARS, np.maximum(coverage, consistency), 0.0)


@dataclass(frozen=True)
class RitaResult:
    """RITA v5 beacon scores: one row per analysed pair."""

    table: (
        pa.Table
    )  # key_type, src_ip, destination, score, ts_score, ds_score, hist_score, dur_score, connections


def _score_groups(
    codes: I64, ts: F64, size: F64, lo: float, hi: float
) -> tuple[I64, F64, F64, F64, F64, F64, I64]:
    """Score every group with >= 4 distinct second timestamps and < 86,400 connections."""
    order = np.lexsort((ts, codes))
    c, t, b = codes[order], ts[order], size[order]
    seg = segments(c)
    idx = seg.index()
    same = np.r_[False, c[1:] == c[:-1]]
    new_ts = ~same | np.r_[True, t[1:] != t[:-1]]
    unique = seg.sum(new_ts.astype(np.int64))
    ok = (unique >= MIN_UNIQUE) & (seg.lengths < STROBE)
    gaps = np.r_[0.0, np.diff(t)]
    nonzero_gap = same & (gaps > 0)
    nz_count = seg.sum(nonzero_gap.astype(np.int64))
    ok &= nz_count >= 3
    first, last = seg.min(t), seg.max(t)
    ok &= last > first
    keep_rows = ok[idx]
    # timing: non-zero gaps per group, sorted
    g_rows = nonzero_gap & keep_rows
    g_idx, g_val = idx[g_rows], gaps[g_rows]
    o = np.lexsort((g_val, g_idx))
    g_idx, g_val = g_idx[o], g_val[o]
    gseg = segments(g_idx)
    ts_score_sub, _, _ = statistical_core(g_val, gseg, 1.0)
    ts_score = np.zeros(len(seg))
    ts_score[gseg.codes] = ts_score_sub
    # size: bytes per connection, sorted within group
    s_idx, s_val = idx[keep_rows], b[keep_rows]
    o = np.lexsort((s_val, s_idx))
    s_idx, s_val = s_idx[o], s_val[o]
    sseg = segments(s_idx)
    ds_sub, _, _ = statistical_core(s_val, sseg, 0.0)
    ds_score = np.zeros(len(seg))
    ds_score[sseg.codes] = ds_sub
    counts = histogram(t, idx, len(seg), lo, hi)
    hist_score, bars, run = histogram_scores(counts)
    dur_score = duration_scores(first, last, lo, hi, bars, run)
    score = _round3((ts_score + ds_score + hist_score + dur_score) / 4.0)
    sel = np.flatnonzero(ok)
    return (
        seg.codes[sel],
        score[sel],
        ts_score[sel],
        ds_score[sel],
        hist_score[sel],
        dur_score[sel],
        seg.lengths[sel],
    )


def rita_beacons(flows: pa.Table, *, window_hours: float = 24.0) -> pa.Table:
    """RITA v5 beacon scores for every analysable pair of an outbound flow table."""
    times = flow_times(flows, None)
    direction = column(flows, "direction")
    outbound = mask_eq(direction, "outbound") & times.valid
    ts = np.floor(times.start)
    schema = pa.schema(
        [
            ("key_type", pa.string()),
            ("src_ip", pa.string()),
            ("destination", pa.string()),
            ("score", pa.float64()),
            ("ts_score", pa.float64()),
            ("ds_score", pa.float64()),
            ("hist_score", pa.float64()),
            ("dur_score", pa.float64()),
            ("connections", pa.int64()),
        ]
    )
    if not outbound.any():
        return schema.empty_table()
    hi = float(ts[outbound].max())
    lo = max(float(ts[outbound].min()), hi - window_hours * 3600.0)
    if hi <= lo:
        return schema.empty_table()
    in_window = outbound & (ts >= np.floor(lo / 3600.0) * 3600.0)  # RITA keeps whole hours from lo's hour
    src = codes_of(column(flows, "src_ip"))
    name_codes = combine(src, codes_of(column(flows, "server_name")))
    ip_codes = combine(src, codes_of(column(flows, "dst_ip")))
    size = np.asarray(
        pc.fill_null(pc.cast(column(flows, "bytes_out"), pa.float64()), 0.0).to_numpy(zero_copy_only=False),
        dtype=np.float64,
    )
    parts = []
    name_rows = np.flatnonzero(in_window & (name_codes >= 0))
    claimed = np.zeros(flows.num_rows, dtype=bool)
    for key_type, rows, codes in (("sni", name_rows, name_codes), ("ip", None, ip_codes)):
        if rows is None:
            rows = np.flatnonzero(in_window & ~claimed & (ip_codes >= 0))
        if len(rows) == 0:
            continue
        gcodes, score, tss, dss, hs, ds, n = _score_groups(codes[rows], ts[rows], size[rows], lo, hi)
        if key_type == "sni":
            claimed[rows[np.isin(codes[rows], gcodes)]] = True
        # one representative row per group for its names
        order = np.argsort(codes[rows], kind="stable")
        sorted_codes = codes[rows][order]
        rep = rows[order[np.searchsorted(sorted_codes, gcodes)]]
        take = pa.array(rep, pa.int64())
        dest_col = "server_name" if key_type == "sni" else "dst_ip"
        parts.append(
            pa.table(
                {
                    "key_type": pa.array([key_type] * len(rep), pa.string()),
                    "src_ip": pc.take(column(flows, "src_ip"), take).combine_chunks().cast(pa.string()),
                    "destination": pc.take(column(flows, dest_col), take).combine_chunks().cast(pa.string()),
                    "score": score,
                    "ts_score": tss,
                    "ds_score": dss,
                    "hist_score": hs,
                    "dur_score": ds,
                    "connections": n.astype(np.int64),
                },
                schema=schema,
            )
        )
    return pa.concat_tables(parts) if parts else schema.empty_table()
