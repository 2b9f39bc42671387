"""Uploads, first-seen destinations and compelled transfers on hand-built flows with known answers."""

from __future__ import annotations

from typing import Any

import pytest

from derisk.detect.compelled import detect_compelled
from derisk.detect.config import DetectionConfig, load_config
from derisk.detect.newdest import detect_new_destinations
from derisk.detect.upload import detect_uploads, upload_score
from derisk.gen.labelled import StubLaw, flows_from

T0 = 1_790_000_000.0
DAY = 86_400.0
CFG = DetectionConfig()


def laws(j: str) -> list[StubLaw]:
    return [StubLaw(j, "test law", "7", True, "V", "test")] if j in ("CN", "RU") else []


def flows(rows: list[dict[str, Any]]) -> Any:
    keys = sorted({k for r in rows for k in r})
    cols = {k: [r.get(k) for r in rows] for k in keys}
    cols["last_seen"] = [r.get("last_seen", r["first_seen"] + 10.0) for r in rows]
    return flows_from(cols)


def row(
    t: float, out: float, inb: float, *, src: str = "10.0.0.5", dst: str = "203.0.113.20", **kw: Any
) -> dict[str, Any]:
    return {"first_seen": t, "src_ip": src, "dst_ip": dst, "bytes_out": out, "bytes_in": inb, **kw}


def background() -> list[dict[str, Any]]:
    """A day of small traffic so that the window and baseline exist."""
    return [row(T0 + h * 3600.0, 2e4, 5e4, dst="198.51.100.3") for h in range(48)]


def test_lopsided_upload_is_found() -> None:
    rows = [*background(), row(T0 + DAY + 3600, 2e8, 1e6)]
    alerts = detect_uploads(flows(rows), CFG, laws)
    assert [(a.destination, a.evidence["scope"]) for a in alerts] == [("203.0.113.20", "destination")]
    ev = alerts[0].evidence
    assert ev["bytes_out"] == 200_000_000 and ev["ratio_out_in"] == 200.0
    assert alerts[0].score == round(upload_score(2e8, 1e6, ev["baseline_bytes_out"], 5e7), 3)
    assert "sent 200.0 MB" in alerts[0].sentence


@pytest.mark.parametrize(
    ("out", "inb", "why"),
    [(1e6, 2e8, "a download"), (2e8, 2e8, "symmetric (a call)"), (4e7, 1e5, "below 50 MB")],
)
def test_not_an_upload(out: float, inb: float, why: str) -> None:
    rows = [*background(), row(T0 + DAY + 3600, out, inb)]
    assert detect_uploads(flows(rows), CFG, laws) == [], why


def test_upload_within_the_system_baseline_is_quiet() -> None:
    nightly = [
        row(T0 + d * DAY + 7200, 3e9, 1e6, src="10.0.3.5", dst="203.0.113.30", system="backup")
        for d in range(2)
    ]
    assert detect_uploads(flows([*background(), *nightly]), CFG, laws) == []


def test_upload_spread_over_destinations_is_found_per_system() -> None:
    spread = [
        row(T0 + DAY + 3600 + k, 8e6, 1e4, src="10.0.5.10", dst=f"203.0.113.{100 + k}", system="erp")
        for k in range(15)
    ]
    alerts = detect_uploads(flows([*background(), *spread]), CFG, laws)
    assert [(a.system, a.evidence["scope"], a.evidence["destinations"]) for a in alerts] == [
        ("erp", "system", 15)
    ]


def test_new_destination_of_a_system_and_new_jurisdiction() -> None:
    base = [
        row(
            T0 + h * 3600.0,
            1e4,
            1e4,
            src="10.0.4.3",
            dst="198.51.100.3",
            system="cctv",
            dst_org="Old Org",
            dst_jurisdiction="BE",
        )
        for h in range(48)
    ]
    new = [
        row(
            T0 + DAY + 7200,
            1e4,
            1e4,
            src="10.0.4.3",
            dst="203.0.113.77",
            system="cctv",
            dst_org="New Org",
            dst_jurisdiction="RU",
            dst_controller="New Org",
        )
    ]
    alerts = detect_new_destinations(flows([*base, *new]), CFG, laws)
    scopes = sorted((a.evidence["scope"], a.destination) for a in alerts)
    assert scopes == [("destination", "203.0.113.77"), ("jurisdiction", "RU"), ("organisation", "New Org")]
    ru = next(a for a in alerts if a.evidence["scope"] == "jurisdiction")
    assert ru.laws and ru.severity == "critical"


def test_new_destination_near_miss_seen_late_in_the_baseline() -> None:
    base = [
        row(T0 + h * 3600.0, 1e4, 1e4, src="10.0.4.3", dst="198.51.100.3", system="cctv") for h in range(48)
    ]
    late = [
        row(T0 + DAY - 600, 1e4, 1e4, src="10.0.4.3", dst="203.0.113.77", system="cctv"),
        row(T0 + DAY + 600, 1e4, 1e4, src="10.0.4.3", dst="203.0.113.77", system="cctv"),
    ]
    assert detect_new_destinations(flows([*base, *late]), CFG, laws) == []


def test_workstations_do_not_raise_new_destination_alerts() -> None:
    base = [row(T0 + h * 3600.0, 1e4, 1e4, dst="198.51.100.3") for h in range(48)]
    assert (
        detect_new_destinations(flows([*base, row(T0 + DAY + 60, 1e4, 1e4, dst="203.0.113.1")]), CFG, laws)
        == []
    )


def test_no_baseline_no_new_destination() -> None:
    rows = [
        row(T0 + h * 600.0, 1e4, 1e4, src="10.0.4.3", dst=f"203.0.113.{h}", system="cctv") for h in range(10)
    ]
    assert detect_new_destinations(flows(rows), CFG, laws) == []


def cn_rows(n: int, out: float, span_h: float, **kw: Any) -> list[dict[str, Any]]:
    return [
        row(
            T0 + i * span_h * 3600 / max(n - 1, 1),
            out,
            1e3,
            src="10.0.1.10",
            dst="47.88.0.5",
            system="wms",
            dst_controller="Alibaba Group",
            dst_jurisdiction="CN",
            server_name="link.example.cn",
            **kw,
        )
        for i in range(n)
    ]


def test_sustained_transfer_to_compelled_controller() -> None:
    alerts = detect_compelled(flows(cn_rows(100, 5e4, 6.0)), CFG, laws)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.system, a.destination, a.jurisdiction) == ("wms", "Alibaba Group", "CN")
    assert a.evidence["bytes_out"] == 5_000_000 and a.score == pytest.approx(0.9)
    assert [law.law for law in a.laws] == ["test law"]
    assert "Alibaba Group" in a.sentence and "test law art. 7 [V]" in a.sentence


@pytest.mark.parametrize(
    ("n", "out", "span", "why"), [(100, 9e3, 6.0, "0.9 MB"), (100, 5e4, 0.8, "48 minutes")]
)
def test_compelled_near_misses(n: int, out: float, span: float, why: str) -> None:
    assert detect_compelled(flows(cn_rows(n, out, span)), CFG, laws) == [], why


def test_same_transfer_outside_compelling_jurisdictions_is_quiet() -> None:
    rows = cn_rows(100, 5e4, 6.0)
    for r in rows:
        r["dst_jurisdiction"] = "BE"
    assert detect_compelled(flows(rows), CFG, laws) == []


def test_site_thresholds_apply() -> None:
    strict = load_config({"compelled": {"min_bytes_out": 10_000_000}})
    assert detect_compelled(flows(cn_rows(100, 5e4, 6.0)), strict, laws) == []


def test_many_new_destinations_of_one_system_are_one_alert() -> None:
    base = [
        row(T0 + h * 3600.0, 1e4, 1e4, src="10.0.4.3", dst="198.51.100.3", system="cctv") for h in range(48)
    ]
    new = [
        row(T0 + DAY + 60.0 * k, 1e4 * (k + 1), 1e4, src="10.0.4.3", dst=f"203.0.113.{k}", system="cctv")
        for k in range(30)
    ]
    alerts = detect_new_destinations(flows([*base, *new]), CFG, laws)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.destination == "30 new destinations" and a.evidence["new_destinations"] == 30
    assert a.target.dst_ip == "203.0.113.29"  # the largest first
    assert a.evidence["examples"][:2] == ["203.0.113.28", "203.0.113.27"]
