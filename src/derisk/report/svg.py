"""Geometry for the server-rendered SVG charts (no JavaScript, no external tiles).

Functions return plain shapes (numbers and labels); templates draw them, so every label passes
through Jinja2's autoescape.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Final

from derisk.kinds import SEVERITIES
from derisk.safetext import visible

#: Longest node label a picture prints (the full label is in the node's tooltip).
LABEL_CHARS: Final = 46

#: Colours by jurisdiction class: compelling third country, EU/EEA, other.
PALETTE: Final = ("#b42318", "#175cd3", "#027a48", "#b54708", "#6941c6", "#c11574", "#0e7090", "#667085")


@dataclass(frozen=True)
class Node:
    column: int
    key: str
    label: str
    x: float
    y: float
    height: float
    value: int
    href: str | None = None

    @property
    def short(self) -> str:
        """The label as a picture shows it: printable, one line, at most :data:`LABEL_CHARS` characters."""
        text = visible(self.label, 1000)
        return text if len(text) <= LABEL_CHARS else text[: LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class Band:
    path: str
    width: float
    colour: str
    title: str
    value: int = 0
    differs: bool = False


def flow_diagram(
    rows: list[dict[str, Any]],
    *,
    links: dict[str, str],
    width: float = 900,
    height: float = 360,
    max_nodes: int = 12,
) -> dict[str, Any]:
    """System → controller → jurisdiction, band widths proportional to bytes sent.

    ``rows`` carry ``system``, ``controller``, ``jurisdiction`` and ``bytes_out`` (the analysis
    document's ``systems`` list). Small nodes beyond ``max_nodes`` per column are merged as "other".
    """
    keyed = [(_keys(r), int(r["bytes_out"] or 0)) for r in rows]
    return _bands(keyed, links=links, width=width, height=height, max_nodes=max_nodes)


def geo_control_diagram(
    destinations: list[dict[str, Any]], *, width: float = 900, height: float = 300, max_nodes: int = 12
) -> dict[str, Any]:
    """Where the servers stand (left, measured geolocation) → where their controllers sit (right).

    A band whose two ends differ is ``differs``: geolocation alone would have named the wrong state.
    """
    keyed = [
        ((str(d.get("geo_country") or "ZZ"), str(d.get("jurisdiction") or "ZZ")), int(d["bytes_out"] or 0))
        for d in destinations
    ]
    return _bands(keyed, links={}, width=width, height=height, max_nodes=max_nodes)


def _bands(
    keyed: Sequence[tuple[Sequence[str], int]],
    *,
    links: dict[str, str],
    width: float,
    height: float,
    max_nodes: int,
) -> dict[str, Any]:
    """Columns of nodes joined by bands (a Sankey diagram); the last column's key colours the bands."""
    total = sum(v for _, v in keyed)
    ncols = len(keyed[0][0]) if keyed else 0
    if total <= 0 or ncols < 2:
        return {"nodes": [], "bands": [], "width": width, "height": height, "node_w": 14.0}
    cols: list[dict[str, int]] = [defaultdict(int) for _ in range(ncols)]
    for ks, v in keyed:
        for i, k in enumerate(ks):
            cols[i][k] += v
    keep = [set(sorted(c, key=lambda k, c=c: -c[k])[:max_nodes]) for c in cols]  # type: ignore[misc]
    merged: list[dict[str, int]] = [defaultdict(int) for _ in range(ncols)]
    pairs: list[dict[tuple[str, str], int]] = [defaultdict(int) for _ in range(ncols - 1)]
    last_of: dict[tuple[int, str], str] = {}
    for raw, v in keyed:
        kept = [k if k in keep[i] else "…" for i, k in enumerate(raw)]
        for i in range(ncols):
            merged[i][kept[i]] += v
            last_of[(i, kept[i])] = kept[-1]
        for i in range(ncols - 1):
            pairs[i][(kept[i], kept[i + 1])] += v
    gap, node_w, pad, min_h = 6.0, 14.0, 24.0, 13.0
    xs = [pad + i * (width - 2 * pad - node_w) / (ncols - 1) for i in range(ncols)]
    nodes: dict[tuple[int, str], Node] = {}
    colours = _colours(merged[-1])
    most = max(len(c) for c in merged)
    scale = max(1.0, height - gap * (most - 1) - min_h * most) / total
    bottom = 0.0
    for i in range(ncols):
        items = sorted(merged[i].items(), key=lambda kv: (-kv[1], kv[0]))
        y = 0.0
        for key, value in items:
            h = max(min_h, value * scale)
            href = links.get(f"{i}:{key}")
            nodes[(i, key)] = Node(i, key, key, xs[i], y, h, value, href)
            y += h + gap
        bottom = max(bottom, y - gap)
    bands: list[Band] = []
    for stage in range(ncols - 1):
        out_off: dict[str, float] = defaultdict(float)
        in_off: dict[str, float] = defaultdict(float)
        for (a, b), v in sorted(pairs[stage].items(), key=lambda kv: (-kv[1], kv[0])):
            na, nb = nodes[(stage, a)], nodes[(stage + 1, b)]
            w = max(1.0, v * scale)
            y0 = na.y + out_off[a] + w / 2
            y1 = nb.y + in_off[b] + w / 2
            out_off[a] += w
            in_off[b] += w
            x0, x1 = na.x + node_w, nb.x
            mid = (x0 + x1) / 2
            path = f"M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}"
            last = last_of.get((stage + 1, b), "ZZ")
            differs = ncols == 2 and a != b and "ZZ" not in (a, b) and "…" not in (a, b)
            bands.append(Band(path, w, colours.get(last, PALETTE[-1]), f"{a} → {b}", v, differs))
    return {
        "nodes": list(nodes.values()), "bands": bands, "width": width, "height": bottom, "node_w": node_w,
        "columns": ncols,
    }  # fmt: skip


def _keys(r: dict[str, Any]) -> tuple[str, str, str]:
    return (str(r.get("system") or "?"), str(r.get("controller") or "?"), str(r.get("jurisdiction") or "ZZ"))


def _colours(by_jurisdiction: dict[str, int]) -> dict[str, str]:
    ordered = sorted(by_jurisdiction, key=lambda k: -by_jurisdiction[k])
    return {
        k: PALETTE[i % (len(PALETTE) - 1)] if k not in ("ZZ", "…") else PALETTE[-1]
        for i, k in enumerate(ordered)
    }


def trend_chart(
    rows: list[dict[str, Any]],
    *,
    slot_minutes: int = 60,
    width: float = 900,
    height: float = 220,
    max_series: int = 6,
    alerts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Bytes sent per hour (a rate, sampled every ``slot_minutes``), one polyline per controlling
    jurisdiction (the largest ``max_series``); missing slots count as zero. ``alerts`` (documents with
    ``first_seen``, ``severity``, ``kind``) become marks on the time axis, one per slot, coloured by the
    most severe alert that started in it."""
    if not rows:
        return {"series": [], "width": width, "height": height, "ticks": [], "marks": []}
    rate = 60 / slot_minutes
    first, last = min(r["hour"] for r in rows), max(r["hour"] for r in rows)
    step_td = dt.timedelta(minutes=slot_minutes)
    hours = [first + i * step_td for i in range(int((last - first) / step_td) + 1)][:2000]
    per: dict[str, dict[dt.datetime, int]] = defaultdict(dict)
    totals: dict[str, int] = defaultdict(int)
    for r in rows:
        per[r["jurisdiction"]][r["hour"]] = round(int(r["bytes_out"] or 0) * rate)
        totals[r["jurisdiction"]] += int(r["bytes_out"] or 0)  # bytes over the whole period
    top = sorted(totals, key=lambda k: (-totals[k], k))[:max_series]
    peak = max((v for j in top for v in per[j].values()), default=1) or 1
    left, bottom, top_pad = 60.0, 24.0, 8.0
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    step = plot_w / max(1, len(hours) - 1)
    colours = _colours(totals)
    series = []
    for j in top:
        pts = []
        for i, h in enumerate(hours):
            v = per[j].get(h, 0)
            pts.append(f"{left + i * step:.1f},{top_pad + plot_h - plot_h * v / peak:.1f}")
        series.append({"jurisdiction": j, "points": " ".join(pts), "colour": colours[j], "total": totals[j]})
    every = max(1, len(hours) // 8)
    ticks = [
        {
            "x": left + i * step,
            "label": h.strftime("%d %H:%M") if isinstance(h, dt.datetime) else str(h),
            "end": i == len(hours) - 1 and i > 0,
        }
        for i, h in enumerate(hours)
        if i % every == 0
    ]
    marks = _alert_marks(alerts or [], first, step_td, len(hours), left, step)
    return {
        "series": series, "ticks": ticks, "width": width, "height": height, "peak": peak,
        "left": left, "plot_h": plot_h, "top": top_pad, "single": len(hours) == 1, "marks": marks,
    }  # fmt: skip


def _when(value: Any, like: dt.datetime) -> dt.datetime | None:
    """An alert's time as a datetime comparable with ``like`` (aware or naive UTC, as the chart's)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    if like.tzinfo is None and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if like.tzinfo is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _alert_marks(
    alerts: list[dict[str, Any]], first: Any, step_td: dt.timedelta, slots: int, left: float, step: float
) -> list[dict[str, Any]]:
    if not isinstance(first, dt.datetime):
        return []
    per_slot: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for a in alerts:
        when = _when(a.get("first_seen"), first)
        if when is None:
            continue
        index = int((when - first) / step_td)
        if 0 <= index < slots:
            per_slot[index].append(a)
    marks = []
    for index, group in sorted(per_slot.items()):
        worst = max(group, key=lambda a: _rank(a.get("severity")))
        kinds = sorted({str(a.get("kind")) for a in group})
        marks.append(
            {
                "x": round(left + index * step, 1),
                "severity": worst.get("severity") if worst.get("severity") in SEVERITIES else "low",
                "count": len(group),
                "kinds": kinds,
            }
        )
    return marks


def _rank(severity: Any) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


def bar_width(part: int | float, whole: int | float, full: float = 160) -> float:
    return round(full * part / whole, 1) if whole else 0.0


def timing_plot(flows: list[dict[str, Any]], *, width: float = 900, height: float = 220) -> dict[str, Any]:
    """A beacon's rhythm from the flows behind it (oldest first): each flow is a point at its start
    time, its height the interval since the flow before (log scale: a steady beacon is a flat line),
    and a bar below it for the bytes it sent. The median interval is drawn as a dashed line."""
    times: list[tuple[dt.datetime, int]] = []
    for f in flows:
        when = f.get("first_seen")
        if isinstance(when, str):
            try:
                when = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError:
                continue
        if isinstance(when, dt.datetime):
            times.append((when if when.tzinfo else when.replace(tzinfo=dt.UTC), int(f.get("bytes_out") or 0)))
    times.sort(key=lambda t: t[0])
    if len(times) < 3:
        return {"points": [], "bars": [], "width": width, "height": height}
    gaps = [(b[0] - a[0]).total_seconds() for a, b in pairwise(times)]
    first, span = times[0][0], max(1e-9, (times[-1][0] - times[0][0]).total_seconds())
    left, right, top = 64.0, 10.0, 8.0
    plot_w = width - left - right
    interval_h, bar_h, gap_h = (height - top - 40) * 0.65, (height - top - 40) * 0.35, 16.0
    median = sorted(gaps)[len(gaps) // 2]
    # the axis spans at least a decade either side of the median: a steady rhythm draws a flat line
    lo = max(0.001, min(min((g for g in gaps if g > 0), default=0.001), median / 10))
    hi = max(max(gaps), median * 10, 2 * lo)
    scale_lo, scale_hi = math.log10(lo), math.log10(hi)

    def y_of(seconds: float) -> float:
        value = math.log10(max(seconds, lo))
        return top + interval_h - interval_h * (value - scale_lo) / max(1e-9, scale_hi - scale_lo)

    def x_of(when: dt.datetime) -> float:
        return left + plot_w * (when - first).total_seconds() / span

    points = [
        {"x": round(x_of(times[i + 1][0]), 1), "y": round(y_of(g), 1), "seconds": round(g, 3)}
        for i, g in enumerate(gaps)
    ]
    most = max(b for _, b in times) or 1
    base = top + interval_h + gap_h + bar_h
    bars = [
        {"x": round(x_of(t), 1), "y": round(base - bar_h * b / most, 1), "bytes": b, "base": round(base, 1)}
        for t, b in times
    ]
    return {
        "points": points, "bars": bars, "width": width, "height": height, "left": left, "top": top,
        "median_y": round(y_of(median), 1), "median": round(median, 3), "lo": round(lo, 3), "hi": round(hi, 3),
        "axis_y": round(top + interval_h, 1), "base": round(base, 1), "most": most, "count": len(times),
        "first": first.strftime("%Y-%m-%d %H:%M:%S UTC"), "last": times[-1][0].strftime("%H:%M:%S"),
    }  # fmt: skip


@dataclass(frozen=True)
class ChainBox:
    x: float
    y: float
    w: float
    h: float
    label: str
    country: str | None
    href: str | None
    state: bool

    @property
    def short(self) -> str:
        text = visible(self.label, 1000)
        limit = max(8, int(self.w / 7))
        return text if len(text) <= limit else text[: limit - 1] + "…"


def chain_diagram(
    steps: Sequence[tuple[dict[str, Any], dict[str, Any], str, str]], *, width: float = 900, box_h: float = 54
) -> dict[str, Any]:
    """A control chain drawn left to right: the entity, then each owner up to the ultimate controller.

    ``steps`` are (asset, owner, what the link says, confidence) from the entity upwards; an asset or
    owner is a mapping with ``label``, ``country``, ``href`` and ``state`` (a state body)."""
    if not steps:
        return {"boxes": [], "arrows": [], "width": width, "height": 0}
    chain = [steps[0][0]] + [owner for _, owner, _, _ in steps]
    n = len(chain)
    gap = 46.0
    w = min(220.0, (width - gap * (n - 1)) / n)
    boxes = [
        ChainBox(
            i * (w + gap),
            4.0,
            w,
            box_h,
            str(c["label"]),
            c.get("country"),
            c.get("href"),
            bool(c.get("state")),
        )
        for i, c in enumerate(chain)
    ]
    arrows = [
        {
            "x1": round(a.x + a.w, 1), "x2": round(b.x, 1), "y": round(a.y + box_h / 2, 1),
            "says": visible(says, 200), "confidence": confidence,
        }
        for (a, b), (_, _, says, confidence) in zip(pairwise(boxes), steps, strict=True)
    ]  # fmt: skip
    return {"boxes": boxes, "arrows": arrows, "width": width, "height": box_h + 8, "gap": gap}


def deadline_timeline(
    regimes: list[dict[str, Any]], as_of: str | None, *, width: float = 900, row_h: float = 22
) -> dict[str, Any]:
    """The screening deadlines whose start and end are known, one bar per phase on a date axis, with
    today (``as_of``) marked; phases without dates are listed apart (``undated``), never drawn."""
    dated: list[tuple[str, str, dt.date, dt.date, bool, str]] = []
    undated: list[str] = []
    for r in regimes:
        for d in r.get("deadlines") or []:
            label = f"{r.get('regime')}: {d.get('phase')}"
            try:
                start = dt.date.fromisoformat(str(d.get("start")))
                ends = dt.date.fromisoformat(str(d.get("ends")))
            except ValueError:
                undated.append(label)
                continue
            dated.append(
                (label, str(r.get("regime")), start, ends, bool(d.get("passed")), str(d.get("confidence")))
            )
    today = None
    if as_of:
        with contextlib.suppress(ValueError):
            today = dt.date.fromisoformat(as_of[:10])
    if not dated:
        return {"rows": [], "undated": undated, "width": width, "height": 0}
    lo = min(x[2] for x in dated)
    hi = max(x[3] for x in dated)
    if today is not None:
        lo, hi = min(lo, today), max(hi, today)
    days = max(1, (hi - lo).days)
    left, right, top = 260.0, 16.0, 6.0
    plot_w = width - left - right

    def x_of(day: dt.date) -> float:
        return round(left + plot_w * (day - lo).days / days, 1)

    rows = [
        {
            "label": visible(label, 300), "x0": x_of(s), "x1": max(x_of(e), x_of(s) + 2), "y": top + i * row_h,
            "start": s.isoformat(), "ends": e.isoformat(), "passed": passed, "confidence": conf, "regime": regime,
        }
        for i, (label, regime, s, e, passed, conf) in enumerate(sorted(dated, key=lambda x: (x[2], x[3], x[0])))
    ]  # fmt: skip
    height = top + len(rows) * row_h + 24
    ticks = [
        {"x": x_of(lo), "label": lo.isoformat(), "end": False},
        {"x": x_of(hi), "label": hi.isoformat(), "end": True},
    ]
    marker = {"x": x_of(today), "label": today.isoformat()} if today is not None else None
    return {
        "rows": rows, "undated": undated, "width": width, "height": height, "left": left, "row_h": row_h,
        "ticks": ticks, "today": marker, "axis_y": height - 20,
    }  # fmt: skip


#: The plan's measures drawn before and after each step, with their upper bound (None: the largest seen).
PLAN_MEASURES: Final = (
    ("risk_score", None),
    ("third_country_dependency", 1.0),
    ("third_country_edge_share", 1.0),
    ("hhi", 1.0),
)


def plan_bars(steps: list[dict[str, Any]], *, width: float = 900, row_h: float = 34) -> dict[str, Any]:
    """Before/after bars for each plan step: per measure of :data:`PLAN_MEASURES`, a grey bar for the
    value before the step and a blue one after it (shares on 0–1, the risk score on 0–its largest)."""
    if not steps:
        return {"rows": [], "columns": [], "width": width, "height": 0}
    left, top, pad = 40.0, 22.0, 18.0
    col_w = (width - left) / len(PLAN_MEASURES)
    bounds = {}
    for key, bound_ in PLAN_MEASURES:
        seen = [float((s.get(side) or {}).get(key) or 0) for s in steps for side in ("before", "after")]
        bounds[key] = bound_ if bound_ is not None else max(max(seen), 1e-9)
    columns = [{"key": key, "x": round(left + j * col_w, 1)} for j, (key, _) in enumerate(PLAN_MEASURES)]
    rows = []
    for i, s in enumerate(steps):
        y = top + i * row_h
        cells = []
        for j, (key, _) in enumerate(PLAN_MEASURES):
            before = float((s.get("before") or {}).get(key) or 0)
            after = float((s.get("after") or {}).get(key) or 0)
            full = col_w - pad
            cells.append({
                "key": key, "x": round(left + j * col_w, 1), "before": round(before, 3), "after": round(after, 3),
                "before_w": round(full * min(1.0, before / bounds[key]), 1),
                "after_w": round(full * min(1.0, after / bounds[key]), 1),
            })  # fmt: skip
        rows.append({"rank": s.get("rank"), "y": round(y, 1), "cells": cells})
    return {
        "rows": rows,
        "columns": columns,
        "width": width,
        "height": top + len(steps) * row_h + 4,
        "row_h": row_h,
    }
