"""Long connections and DNS tunnels on hand-built flows, with their near misses."""

from __future__ import annotations

import string
from typing import Any

import numpy as np
import pytest

from derisk.detect.config import DetectionConfig, load_config
from derisk.detect.dnstunnel import detect_dns_tunnels, entropy_bits, registrable
from derisk.detect.longconn import detect_long_connections, long_score
from derisk.gen.labelled import flows_from

T0 = 1_790_000_000.0
CFG = DetectionConfig()


def no_laws(_: str) -> list[Any]:
    return []


def conn(
    starts: list[float], durs: list[float], *, sport: int | list[int] = 50000, dst: str = "203.0.113.9"
) -> dict[str, Any]:
    n = len(starts)
    return {
        "first_seen": np.array(starts),
        "last_seen": np.array(starts) + np.array(durs),
        "src_ip": "10.0.0.5",
        "dst_ip": dst,
        "src_port": sport if isinstance(sport, list) else [sport] * n,
        "dst_port": 8443,
        "protocol": 6,
        "bytes_out": 1000,
        "bytes_in": 1000,
    }


def test_two_hour_connection_is_long() -> None:
    alerts = detect_long_connections(flows_from(conn([T0], [7200.0])), CFG, no_laws)
    assert len(alerts) == 1
    assert alerts[0].evidence["duration_hours"] == pytest.approx(2.0)
    assert alerts[0].score == round(long_score(2.0, 1.0), 3)
    assert "open for 2.0 h" in alerts[0].sentence


def test_fifty_minutes_is_a_near_miss() -> None:
    assert detect_long_connections(flows_from(conn([T0], [3000.0])), CFG, no_laws) == []


def test_records_cut_by_the_exporter_are_stitched() -> None:
    starts = [T0 + 1800.0 * i for i in range(6)]  # six 30-minute records of one 5-tuple: 3 hours
    alerts = detect_long_connections(flows_from(conn(starts, [1800.0] * 6)), CFG, no_laws)
    assert len(alerts) == 1
    assert alerts[0].evidence["records_stitched"] == 6
    assert alerts[0].evidence["duration_hours"] == pytest.approx(3.0)


def test_separate_connections_are_not_stitched() -> None:
    starts = [T0 + 1800.0 * i for i in range(6)]
    flows = flows_from(conn(starts, [1800.0] * 6, sport=[50000 + i for i in range(6)]))
    assert detect_long_connections(flows, CFG, no_laws) == []


def test_long_score_bands() -> None:
    assert long_score(0.9, 1.0) == 0.0
    assert long_score(1.0, 1.0) == pytest.approx(0.5)
    assert long_score(12.0, 1.0) == pytest.approx(1.0)
    assert long_score(30.0, 1.0) == 1.0


def test_registrable_domains_from_the_bundled_list() -> None:
    assert registrable(["a.b.example.co.uk", "x.github.io", "10.0.0.1", "com"]) == [
        "example.co.uk",
        "github.io",
        None,
        None,
    ]  # ICANN section only: github.io is a private suffix


def test_entropy_matches_the_definition() -> None:
    h, n = entropy_bits(["aaaa", "abab", "abcd", ""])
    assert list(n) == [4, 4, 4, 0]
    assert h[:3] == pytest.approx([0.0, 1.0, 2.0])


def dns(names: list[str], src: str = "10.0.0.8") -> dict[str, Any]:
    n = len(names)
    return {
        "first_seen": T0 + np.arange(n) * 2.0,
        "last_seen": T0 + np.arange(n) * 2.0 + 0.01,
        "src_ip": src,
        "dst_ip": "10.0.0.53",
        "dst_port": 53,
        "protocol": 17,
        "dns_query": names,
        "direction": "internal",
        "bytes_out": 120,
        "bytes_in": 200,
    }


def tunnel_names(n: int, width: int, domain: str = "t.exfil.example-c2.com") -> list[str]:
    rng = np.random.default_rng(4)
    return [f"{''.join(rng.choice(list(string.hexdigits.lower()[:16]), width))}.{domain}" for _ in range(n)]


def test_tunnel_is_found() -> None:
    alerts = detect_dns_tunnels(flows_from(dns(tunnel_names(200, 40))), CFG, no_laws)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.destination == "example-c2.com" and a.src_ip == "10.0.0.8"
    assert a.evidence["unique_names"] == 200 and a.evidence["connected_directly"] is False
    assert "never connected to directly" in a.sentence


def test_tunnel_near_miss_below_unique_threshold() -> None:
    assert detect_dns_tunnels(flows_from(dns(tunnel_names(99, 40))), CFG, no_laws) == []


def test_domain_connected_to_directly_is_weighed_down() -> None:
    names = tunnel_names(200, 40)
    queries = dns(names)
    direct = {
        "first_seen": [T0],
        "last_seen": [T0 + 1],
        "src_ip": "10.0.0.8",
        "dst_ip": "203.0.113.7",
        "server_name": "www.example-c2.com",
        "bytes_out": 500,
        "bytes_in": 500,
    }
    merged = {
        k: list(np.broadcast_to(np.asarray(queries.get(k), dtype=object), (200,)))
        + list(np.broadcast_to(np.asarray(direct.get(k), dtype=object), (1,)))
        for k in queries | direct
    }
    merged["direction"] = ["internal"] * 200 + ["outbound"]
    assert detect_dns_tunnels(flows_from(merged), CFG, no_laws) == []
    loose = load_config({"dns_tunnel": {"min_score": 0.4}})
    assert len(detect_dns_tunnels(flows_from(merged), loose, no_laws)) == 1


def test_busy_cdn_names_are_not_tunnels() -> None:
    rng = np.random.default_rng(5)
    names = [f"e{rng.integers(1000, 99999)}.a.akamaiedge.net" for _ in range(800)]
    assert detect_dns_tunnels(flows_from(dns(names)), CFG, no_laws) == []
