"""The SVG pictures' geometry (derisk.report.svg) and their markup (_charts.html.j2) on hostile labels."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from derisk.cli import main
from derisk.report import svg
from derisk.report.html import environment

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def _rows(naive: bool) -> list[dict[str, object]]:
    hours = [T0 + dt.timedelta(hours=i) for i in range(4)]
    return [
        {"hour": h.replace(tzinfo=None) if naive else h, "jurisdiction": j, "bytes_out": 1000 * (i + 1)}
        for i, h in enumerate(hours)
        for j in ("CN", "US")
    ]


def test_alert_marks_one_per_slot_with_the_worst_severity() -> None:
    alerts: list[dict[str, Any]] = [
        {"first_seen": "2026-11-02T09:10:00Z", "severity": "medium", "kind": "beacon"},
        {"first_seen": "2026-11-02T09:50:00+00:00", "severity": "critical", "kind": "upload"},
        {"first_seen": "2026-11-02T11:00:00Z", "severity": "low", "kind": "new-destination"},
        {"first_seen": "2026-11-03T11:00:00Z", "severity": "high", "kind": "beacon"},  # after the chart
        {"first_seen": "not a time", "severity": "high", "kind": "beacon"},
        {"first_seen": None, "severity": "high", "kind": "beacon"},
    ]
    for naive in (False, True):
        chart = svg.trend_chart(_rows(naive), alerts=alerts)
        marks = chart["marks"]
        assert [(m["severity"], m["count"], m["kinds"]) for m in marks] == [
            ("critical", 2, ["beacon", "upload"]),
            ("low", 1, ["new-destination"]),
        ]
        assert marks[0]["x"] < marks[1]["x"]


def test_geo_control_bands_mark_where_standing_and_control_differ() -> None:
    dests: list[dict[str, Any]] = [
        {"geo_country": "DE", "jurisdiction": "CN", "bytes_out": 500},
        {"geo_country": "DE", "jurisdiction": "DE", "bytes_out": 300},
        {"geo_country": None, "jurisdiction": "US", "bytes_out": 100},
    ]
    picture = svg.geo_control_diagram(dests)
    differs = {b.title: b.differs for b in picture["bands"]}
    assert differs == {"DE → CN": True, "DE → DE": False, "ZZ → US": False}
    assert svg.geo_control_diagram([])["nodes"] == []


def test_hostile_names_are_escaped_and_shortened_in_the_pictures() -> None:
    hostile = '<script>alert(1)</script>"\u202e' + "x" * 300
    node = svg.Node(0, hostile, hostile, 0, 0, 10, 1)
    assert len(node.short) == svg.LABEL_CHARS and "\u202e" not in node.short
    systems = [{"system": hostile, "controller": hostile, "jurisdiction": "CN", "bytes_out": 10}]
    macro = environment("en").get_template("_charts.html.j2").module.flow_diagram  # type: ignore[attr-defined]
    html = str(macro(svg.flow_diagram(systems, links={}), "label"))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "\u202e" not in html


def test_timing_plot_of_a_steady_beacon_is_flat() -> None:
    flows = [
        {"first_seen": (T0 + dt.timedelta(seconds=60 * i + (i % 3))).isoformat(), "bytes_out": 200 + i}
        for i in range(30)
    ]
    flows.insert(5, {"first_seen": "garbage", "bytes_out": 1})  # unreadable times are left out
    plot = svg.timing_plot(flows)
    assert len(plot["points"]) == 29 and len(plot["bars"]) == 30
    assert 58 <= plot["median"] <= 62
    ys = [p["y"] for p in plot["points"]]
    assert max(ys) - min(ys) < 5, "a steady rhythm draws a flat line on the log scale"
    assert all(b["y"] <= b["base"] for b in plot["bars"])
    assert svg.timing_plot(flows[:2])["points"] == []


def test_screening_memo_draws_the_deadlines_with_today_marked(tmp_path: Path) -> None:
    """The memo of the Liège example deal: one bar per dated phase, today's line, and the phases whose
    start date is unknown listed apart, not drawn at a made-up date."""
    out = tmp_path / "memo.html"
    deal = Path(__file__).parent.parent / "examples" / "deals" / "liege-cargo.yaml"
    assert main(["screen", str(deal), "--html", str(out), "--today", "2025-04-01", "-q"]) == 0
    html = out.read_text(encoding="utf-8")
    picture = html.split('<svg class="timeline"', 1)[1].split("</svg>", 1)[0]
    assert 'role="img" aria-label="Deadlines"' in picture
    assert picture.count("<rect ") >= 1 and "as of 2025-04-01" in picture
    doc_rows = svg.deadline_timeline(
        [{"regime": "X", "deadlines": [{"phase": "p", "start": "2025-01-01", "ends": "2025-02-01"},
                                       {"phase": "q", "start": None, "ends": None}]}],
        "2025-03-01",
    )  # fmt: skip
    assert [r["label"] for r in doc_rows["rows"]] == ["X: p"] and doc_rows["undated"] == ["X: q"]
    assert doc_rows["today"]["x"] == doc_rows["width"] - 16, "today beyond the last end widens the axis"
