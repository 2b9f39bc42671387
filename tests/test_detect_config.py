"""Site tuning: thresholds are checked, allow-lists match as documented and record what they suppress."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from derisk.detect import detect, run_detections
from derisk.detect.config import SPECS, check_allowlist, check_section, load_config
from derisk.errors import ConfigError
from derisk.gen.labelled import flows_from
from derisk.site import parse_site

T0 = 1_790_000_000.0


def no_laws(_: str) -> list[Any]:
    return []


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"beacon": {"min_period_seconds": -5}}, "out of range"),
        ({"beacon": {"min_score": 1.5}}, "out of range"),
        ({"beacon": {"min_connections": 4.5}}, "whole number"),
        ({"beacon": {"min_score": "high"}}, "must be a number"),
        ({"beacon": {"min_score": True}}, "must be a number"),
        ({"beacon": {"min_period_seconds": 600, "max_period_seconds": 60}}, "must be below"),
        ({"beacon": {"period": 60}}, "unknown threshold"),
        ({"beacons": {}}, "unknown detection"),
        ({"upload": [1, 2]}, "must be a mapping"),
        ([1], "must be a mapping"),
    ],
)
def test_absurd_thresholds_are_problems(section: Any, fragment: str) -> None:
    problems = check_section(section)
    assert problems and any(fragment in p.what for p in problems), problems


def test_valid_thresholds_and_defaults() -> None:
    assert check_section({"beacon": {"min_score": 0.8, "min_period_seconds": 10}, "upload": None}) == []
    cfg = load_config({"beacon": {"min_score": 0.8}})
    assert cfg.get("beacon", "min_score") == 0.8
    assert cfg.get("upload", "min_bytes_out") == SPECS["upload"]["min_bytes_out"][0]


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"domain": "*.example.com"}, "reason"),
        ({"domain": "example.com", "asn": 1, "reason": "x"}, "exactly one"),
        ({"reason": "x"}, "exactly one"),
        ({"domain": "*.*.example.com", "reason": "x"}, "not a domain"),
        ({"ip": "10.0.0.300", "reason": "x"}, "not an IP"),
        ({"asn": -3, "reason": "x"}, "asn must be"),
        ({"controller": "X", "reason": "x", "kinds": ["beacons"]}, "unknown kind"),
        ({"controller": "X", "reason": "x", "colour": "red"}, "unknown key"),
    ],
)
def test_bad_allowlist_entries(entry: dict[str, Any], fragment: str) -> None:
    problems = check_allowlist([entry])
    assert any(fragment in p.what for p in problems), problems


def test_load_config_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        load_config({"beacon": {"min_score": 2}}, [{"domain": "x.com"}])
    assert err.value.exit_code == 4
    assert len(err.value.details) == 2


def test_site_file_sections_are_checked_when_the_site_loads() -> None:
    with pytest.raises(ConfigError) as err:
        parse_site({"detection": {"beacon": {"min_period_seconds": -1}}}, "site.yaml")
    assert "detection.beacon.min_period_seconds" in err.value.one_line()


def beacon_flows(**attrs: Any) -> Any:
    t = T0 + np.arange(0, 6 * 3600, 60.0)
    cols: dict[str, Any] = {
        "first_seen": t,
        "last_seen": t + 0.1,
        "src_ip": "10.0.0.7",
        "dst_ip": "203.0.113.5",
        "src_port": np.arange(len(t)) + 40000,
        "dst_port": 443,
        "protocol": 6,
        "bytes_out": 600,
        "bytes_in": 900,
    }
    cols.update(attrs)
    return flows_from(cols, len(t))


@pytest.mark.parametrize(
    ("entry", "attrs"),
    [
        ({"domain": "*.example.com"}, {"server_name": "example.com"}),  # the wildcard matches the base domain
        ({"domain": "*.example.com"}, {"server_name": "a.b.example.com"}),
        ({"domain": "example.com"}, {"server_name": "EXAMPLE.com."}),
        ({"ip": "203.0.113.0/24"}, {}),
        ({"asn": 64500}, {"dst_asn": 64500}),
        ({"organisation": "ACME Cloud"}, {"dst_as_org": "acme cloud"}),
        ({"controller": "ACME Holding"}, {"dst_controller": "ACME Holding"}),
    ],
)
def test_allowlist_suppresses_and_records_its_reason(entry: dict[str, Any], attrs: dict[str, Any]) -> None:
    flows = beacon_flows(**attrs)
    assert detect(flows, load_config(), laws_for=no_laws).alerts  # found without the entry
    cfg = load_config(None, [{**entry, "reason": "vendor telemetry, reviewed 2026-11"}])
    result = detect(flows, cfg, laws_for=no_laws)
    assert result.alerts == []
    [sup] = result.suppressed
    assert sup.flows == flows.num_rows and sup.entry.reason == "vendor telemetry, reviewed 2026-11"
    assert result.summary_json()["suppressed"][0]["reason"] == "vendor telemetry, reviewed 2026-11"


@pytest.mark.parametrize(
    ("entry", "attrs"),
    [
        ({"domain": "example.com"}, {"server_name": "a.example.com"}),  # no wildcard: exact name only
        ({"domain": "*.example.com"}, {"server_name": "badexample.com"}),
        ({"ip": "203.0.114.0/24"}, {}),
        ({"asn": 64501}, {"dst_asn": 64500}),
    ],
)
def test_allowlist_near_misses(entry: dict[str, Any], attrs: dict[str, Any]) -> None:
    cfg = load_config(None, [{**entry, "reason": "r"}])
    result = detect(beacon_flows(**attrs), cfg, laws_for=no_laws)
    assert len(result.alerts) == 1 and result.suppressed[0].flows == 0


def test_allowlist_restricted_to_kinds() -> None:
    cfg = load_config(None, [{"ip": "203.0.113.5", "reason": "r", "kinds": ["dns-tunnel"]}])
    assert len(detect(beacon_flows(), cfg, laws_for=no_laws).alerts) == 1


def test_run_detections_reads_the_site_sections() -> None:
    site = parse_site({"allowlist": [{"ip": "203.0.113.5", "reason": "r"}]}, "site.yaml")
    assert run_detections(beacon_flows(), site, laws_for=no_laws) == []
    site = parse_site({"detection": {"beacon": {"min_score": 1.0}}}, "site.yaml")
    assert run_detections(beacon_flows(), site, laws_for=no_laws) != []  # a perfect beacon scores 1.0


def test_every_threshold_and_ecs_field_is_documented() -> None:
    import re
    from pathlib import Path

    from derisk.detect.ecs import ECS_FIELDS, ECS_OPTIONAL

    text = (Path(__file__).parent.parent / "docs" / "detection.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| (\w+) \| `(\w+)` \|", text, flags=re.MULTILINE))
    assert documented == {(s, n) for s, spec in SPECS.items() for n in spec}
    for name in [*ECS_FIELDS, *ECS_OPTIONAL]:
        assert f"`{name}`" in text, name
