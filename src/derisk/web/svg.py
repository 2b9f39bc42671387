"""Geometry for the server-rendered SVG charts (no JavaScript, no external tiles).

Functions return plain shapes (numbers and labels); templates draw them, so every label passes
through Jinja2's autoescape.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Final

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


@dataclass(frozen=True)
class Band:
    path: str
    width: float
    colour: str
    title: str


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
    total = sum(int(r["bytes_out"] or 0) for r in rows)
    if total <= 0:
        return {"nodes": [], "bands": [], "width": width, "height": height}
    cols: list[dict[str, int]] = [defaultdict(int), defaultdict(int), defaultdict(int)]
    for r in rows:
        for i, k in enumerate(_keys(r)):
            cols[i][k] += int(r["bytes_out"] or 0)
    keep = [set(sorted(c, key=lambda k, c=c: -c[k])[:max_nodes]) for c in cols]  # type: ignore[misc]
    merged: list[dict[str, int]] = [defaultdict(int), defaultdict(int), defaultdict(int)]
    pairs: list[dict[tuple[str, str], int]] = [defaultdict(int), defaultdict(int)]
    juris_of: dict[str, str] = {}
    for r in rows:
        ks = [k if k in keep[i] else "…" for i, k in enumerate(_keys(r))]
        v = int(r["bytes_out"] or 0)
        for i in range(3):
            merged[i][ks[i]] += v
        pairs[0][(ks[0], ks[1])] += v
        pairs[1][(ks[1], ks[2])] += v
        juris_of[ks[1]] = ks[2]
    gap, node_w, pad, min_h = 6.0, 14.0, 24.0, 13.0
    xs = (pad, width / 2 - node_w / 2, width - pad - node_w)
    nodes: dict[tuple[int, str], Node] = {}
    colours = _colours(merged[2])
    most = max(len(c) for c in merged)
    scale = max(1.0, height - gap * (most - 1) - min_h * most) / total
    bottom = 0.0
    for i in range(3):
        items = sorted(merged[i].items(), key=lambda kv: (-kv[1], kv[0]))
        y = 0.0
        for key, value in items:
            h = max(min_h, value * scale)
            href = links.get(f"{i}:{key}")
            nodes[(i, key)] = Node(i, key, key, xs[i], y, h, value, href)
            y += h + gap
        bottom = max(bottom, y - gap)
    bands: list[Band] = []
    for stage in (0, 1):
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
            juris = b if stage == 1 else juris_of.get(b, "ZZ")
            bands.append(Band(path, w, colours.get(juris, PALETTE[-1]), f"{a} → {b}"))
    height = bottom
    return {"nodes": list(nodes.values()), "bands": bands, "width": width, "height": height, "node_w": node_w}


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
) -> dict[str, Any]:
    """Bytes sent per hour (a rate, sampled every ``slot_minutes``), one polyline per controlling
    jurisdiction (the largest ``max_series``); missing slots count as zero."""
    if not rows:
        return {"series": [], "width": width, "height": height, "ticks": []}
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
    return {
        "series": series, "ticks": ticks, "width": width, "height": height, "peak": peak,
        "left": left, "plot_h": plot_h, "top": top_pad, "single": len(hours) == 1,
    }  # fmt: skip


def bar_width(part: int | float, whole: int | float, full: float = 160) -> float:
    return round(full * part / whole, 1) if whole else 0.0
