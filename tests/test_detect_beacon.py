"""Beacons and strobes on hand-built flows with known answers, and the RITA v5 baseline's formulas."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from derisk.detect import detect
from derisk.detect.beacon import detect_beacons
from derisk.detect.config import DetectionConfig, load_config
from derisk.detect.rita import rita_beacons
from derisk.gen.labelled import StubLaw, flows_from

T0 = 1_790_000_000.0
DAY = 86_400.0
CFG = DetectionConfig()


def laws(j: str) -> list[StubLaw]:
    return [StubLaw("CN", "test law", "1", True, "U", "test")] if j == "CN" else []


def no_laws(_: str) -> list[Any]:
    return []


def pair(
    times: np.ndarray,
    *,
    dst: str = "203.0.113.5",
    name: str | None = None,
    size: Any = 600,
    juris: str | None = None,
    src: str = "10.0.0.7",
) -> dict[str, Any]:
    n = len(times)
    return {
        "first_seen": times,
        "last_seen": times + 0.2,
        "src_ip": [src] * n,
        "dst_ip": [dst] * n,
        "server_name": [name] * n,
        "bytes_out": np.broadcast_to(size, (n,)).astype(float),
        "bytes_in": [900] * n,
        "src_port": np.arange(n) + 40000,
        "dst_port": [443] * n,
        "protocol": [6] * n,
        "dst_jurisdiction": [juris] * n,
        "dst_controller": ["Ctl" if juris else None] * n,
    }


def concat(*parts: dict[str, Any]) -> dict[str, Any]:
    return {k: np.concatenate([np.asarray(p[k], dtype=object) for p in parts]) for k in parts[0]}


def anchor() -> dict[str, Any]:
    """One unrelated flow that makes the data span a whole day."""
    return pair(np.array([T0, T0 + DAY - 1]), dst="198.51.100.1", src="10.0.0.99")


def test_perfect_beacon_is_found_with_its_period_and_flows() -> None:
    t = T0 + np.arange(0, DAY, 60.0)
    alerts = detect_beacons(flows_from(pair(t)), CFG, no_laws)
    assert len(alerts) == 1
    a = alerts[0]
    assert (a.kind, a.src_ip, a.destination) == ("beacon", "10.0.0.7", "203.0.113.5")
    assert a.evidence["period_seconds"] == pytest.approx(60.0)
    assert a.evidence["check_ins"] == len(t)
    assert a.score > 0.95
    assert len(a.flow_ids) == 20 and a.flow_count == len(t)
    assert "every 60 s" in a.sentence


def test_jittered_beacon_with_skipped_check_ins_is_found() -> None:
    rng = np.random.default_rng(1)
    t = T0 + np.cumsum(300.0 * (1 + 0.2 * rng.uniform(-1, 1, 288)))
    t = t[rng.random(len(t)) > 0.25]  # a quarter of the check-ins missed
    alerts = detect_beacons(flows_from(pair(t, size=rng.lognormal(7, 0.8, len(t)))), CFG, no_laws)
    assert len(alerts) == 1
    ev = alerts[0].evidence
    assert 270 < ev["period_seconds"] < 330
    assert 0.15 < ev["skipped_share"] < 0.4


def test_part_day_beacon_scores_full_where_rita_does_not() -> None:
    t = T0 + 9 * 3600 + np.arange(0, 8 * 3600, 60.0)  # 09:00-17:00 only
    flows = flows_from(concat(pair(t), anchor()))
    alerts = detect_beacons(flows, CFG, no_laws)
    assert [a.destination for a in alerts] == ["203.0.113.5"]
    assert alerts[0].score > 0.95
    rita = {r["destination"]: r for r in rita_beacons(flows).to_pylist()}
    # RITA: timing 1, size 1, histogram 0 (8 of 24 bins), duration max(8/24, 8/12) -> (1+1+0+0.667)/4
    assert rita["203.0.113.5"]["hist_score"] == 0.0
    assert rita["203.0.113.5"]["dur_score"] == pytest.approx(0.667)
    assert rita["203.0.113.5"]["score"] == pytest.approx(0.667)


def test_rita_perfect_full_day_beacon_scores_one() -> None:
    t = T0 + np.arange(0, DAY, 60.0)
    rows = rita_beacons(flows_from(pair(t))).to_pylist()
    assert rows[0]["score"] == 1.0


def test_rita_needs_four_distinct_seconds() -> None:
    t = T0 + np.array([0.0, 0.1, 60.0, 120.0, 120.5])  # 3 distinct seconds
    assert rita_beacons(flows_from(pair(t))).num_rows == 0


def test_poisson_traffic_is_not_a_beacon() -> None:
    rng = np.random.default_rng(2)
    t = T0 + np.cumsum(rng.exponential(300.0, 280))
    assert detect_beacons(flows_from(pair(t)), CFG, no_laws) == []


def test_browsing_burst_is_not_a_beacon() -> None:
    rng = np.random.default_rng(3)
    t = T0 + np.cumsum(rng.exponential(2.0, 40))
    assert detect_beacons(flows_from(pair(t)), CFG, no_laws) == []


def test_near_miss_too_few_connections() -> None:
    t = T0 + np.arange(5) * 60.0  # below min_connections (6)
    assert detect_beacons(flows_from(pair(t)), CFG, no_laws) == []
    cfg = load_config({"beacon": {"min_connections": 4, "min_beats": 3, "min_active_minutes": 0}})
    assert len(detect_beacons(flows_from(pair(t)), cfg, no_laws)) == 1


def test_server_name_pairs_take_precedence_over_ip_pairs() -> None:
    t = T0 + np.arange(0, 6 * 3600, 120.0)
    ips = np.where(np.arange(len(t)) % 2 == 0, "203.0.113.5", "203.0.113.6")
    cols = pair(t, name="c2.example.net")
    cols["dst_ip"] = list(ips)  # the name rotates over two addresses
    alerts = detect_beacons(flows_from(cols), CFG, no_laws)
    assert [(a.destination, a.evidence["key"]) for a in alerts] == [("c2.example.net", "server_name")]


def test_strobe_instead_of_beacon() -> None:
    t = T0 + np.arange(0, 3600, 0.5)  # 7,200 connections in an hour
    cfg = load_config({"beacon": {"strobe_connections": 5000, "window_hours": 1}})
    alerts = detect_beacons(flows_from(pair(t)), cfg, no_laws)
    assert [a.kind for a in alerts] == ["strobe"]


def test_compelled_jurisdiction_ranks_above_unknown() -> None:
    t = T0 + np.arange(0, 6 * 3600, 60.0)
    flows = flows_from(concat(pair(t, dst="203.0.113.5", juris="CN"), pair(t, dst="203.0.113.6")))
    alerts = detect(flows, CFG, laws_for=laws, kinds=("beacon",)).alerts
    assert [a.destination for a in alerts] == ["203.0.113.5", "203.0.113.6"]
    cn, unknown = alerts
    assert cn.score == unknown.score and cn.severity_rank == unknown.severity_rank + 1
    assert [law.law for law in cn.laws] == ["test law"] and not unknown.laws
    assert "test law art. 1 [U]" in cn.sentence and "not legal advice" in cn.sentence


def test_hosts_of_one_system_merge_into_one_alert() -> None:
    t = T0 + np.arange(0, 6 * 3600, 60.0)
    parts = [pair(t + i, src=f"10.0.4.{i}") for i in range(1, 4)]
    for p in parts:
        p["system"] = ["cctv"] * len(t)
    alerts = detect(flows_from(concat(*parts)), CFG, laws_for=no_laws, kinds=("beacon",)).alerts
    assert len(alerts) == 1
    assert alerts[0].evidence["host_count"] == 3
    assert "and 2 other hosts" in alerts[0].sentence
