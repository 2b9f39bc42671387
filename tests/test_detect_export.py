"""ECS export carries the fields it claims with the right types; the alerts store and `derisk alerts`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from derisk.cli import main
from derisk.detect import detect
from derisk.detect.alert import Alert
from derisk.detect.config import load_config
from derisk.detect.ecs import ECS_FIELDS, ECS_OPTIONAL, ecs_lines
from derisk.gen.labelled import StubLaw, flows_from
from derisk.store.alerts import load_alerts, load_suppressions, replace_alerts
from derisk.store.workspace import Workspace
from ecs_check import ecs_definitions, ecs_problems, flatten

T0 = 1_790_000_000.0
DAY = 86_400.0


def laws(j: str) -> list[StubLaw]:
    return [StubLaw("CN", "test law", "7", True, "V", "test")] if j == "CN" else []


@pytest.fixture(scope="module")
def result() -> Any:
    """A beacon to a CN-controlled name, a DNS tunnel, an upload, and an allow-listed beacon."""
    t = T0 + np.arange(0, DAY, 60.0)
    n = len(t)
    parts: list[dict[str, Any]] = [
        {
            "first_seen": t,
            "src_ip": ["10.10.1.10"] * n,
            "system": ["wms"] * n,
            "dst_ip": ["47.88.0.5"] * n,
            "server_name": ["link.example.cn"] * n,
            "dst_controller": ["Alibaba Group"] * n,
            "dst_org": ["Cainiao"] * n,
            "dst_jurisdiction": ["CN"] * n,
            "dst_jurisdiction_basis": ["registry"] * n,
            "bytes_out": [700] * n,
            "bytes_in": [300] * n,
        },
        {
            "first_seen": t[:300] + 5,
            "src_ip": ["10.1.0.9"] * 300,
            "dst_ip": ["10.0.0.53"] * 300,
            "dns_query": [f"{i:040x}.t.tunnel-example.com" for i in range(10**30, 10**30 + 300)],
            "direction": ["internal"] * 300,
            "bytes_out": [100] * 300,
            "bytes_in": [100] * 300,
        },
        {
            "first_seen": t + 7,
            "src_ip": ["10.1.0.3"] * n,
            "dst_ip": ["192.0.2.123"] * n,
            "server_name": ["time.allowed-example.org"] * n,
            "bytes_out": [76] * n,
            "bytes_in": [76] * n,
        },
        {
            "first_seen": np.array([T0 + DAY - 3600.0]),
            "src_ip": ["10.1.0.4"],
            "dst_ip": ["198.51.100.66"],
            "bytes_out": [3e8],
            "bytes_in": [1e5],
        },
    ]
    cols: dict[str, list[Any]] = {}
    keys = sorted({k for p in parts for k in p})
    for p in parts:
        m = len(p["first_seen"])
        for k in keys:
            cols.setdefault(k, []).extend(list(p[k]) if k in p else [None] * m)
    cols["last_seen"] = [x + 0.5 for x in cols["first_seen"]]
    cols["direction"] = [d or "outbound" for d in cols["direction"]]
    cols["src_port"] = list(range(20000, 20000 + len(cols["first_seen"])))
    cfg = load_config(None, [{"domain": "*.allowed-example.org", "reason": "time service"}])
    return detect(flows_from(cols), cfg, laws_for=laws)


def test_the_fixture_raises_the_expected_kinds(result: Any) -> None:
    kinds = sorted(a.kind for a in result.alerts)
    assert kinds == ["beacon", "compelled-transfer", "dns-tunnel", "upload"]
    assert result.suppressed[0].flows == 1440


def test_every_ecs_line_conforms_to_ecs_definitions(result: Any) -> None:
    """Without a workspace (no flows behind the alerts) the lines still conform to ECS's own definitions."""
    lines = list(ecs_lines(result.alerts, observer_name="test site"))
    assert len(lines) == len(result.alerts)
    for line in lines:
        doc = json.loads(line)
        assert ecs_problems(doc, ecs_definitions()) == [], doc["rule"]["name"]
        names = {n for n in flatten(doc) if n != "derisk"} | {f"derisk.{k}" for k in doc["derisk"]}
        assert set(ECS_FIELDS) <= names <= set(ECS_FIELDS) | set(ECS_OPTIONAL)
        assert doc["event"]["kind"] == "alert" and doc["event"]["category"] == [
            "network",
            "intrusion_detection",
        ]
        assert doc["observer"]["name"] == "test site"


def test_ecs_destination_and_threat_per_kind(result: Any) -> None:
    docs = {json.loads(x)["rule"]["name"]: json.loads(x) for x in ecs_lines(result.alerts)}
    beacon = docs["beacon"]
    assert beacon["source"]["ip"] == "10.10.1.10"
    assert beacon["destination"] == {"ip": "47.88.0.5", "domain": "link.example.cn"}
    assert beacon["threat"]["technique"]["id"] == ["T1071"]
    assert (
        beacon["derisk"]["controller"] == "Alibaba Group" and beacon["derisk"]["laws"][0]["law"] == "test law"
    )
    assert docs["dns-tunnel"]["destination"]["domain"] == "tunnel-example.com"
    assert docs["dns-tunnel"]["threat"]["technique"]["id"] == ["T1071.004"]
    assert "threat" not in docs["compelled-transfer"]


def test_store_round_trip_and_filters(result: Any, tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        assert replace_alerts(ws, result.alerts, result.suppressed) == len(result.alerts)
    with Workspace.open(tmp_path / "ws", read_only=True) as ws:
        back = load_alerts(ws)
        assert [a.to_json() for a in back] == [a.to_json() for a in result.alerts]
        assert [a.kind for a in load_alerts(ws, kind="beacon")] == ["beacon"]
        assert {a.system for a in load_alerts(ws, system="wms")} == {"wms"}
        assert all(a.severity in ("high", "critical") for a in load_alerts(ws, min_severity="high"))
        assert load_suppressions(ws)[0]["reason"] == "time service"
    with Workspace.open(tmp_path / "ws") as ws:  # replacing, not appending
        replace_alerts(ws, result.alerts[:1])
        assert len(load_alerts(ws)) == 1


def test_alert_json_round_trip(result: Any) -> None:
    for a in result.alerts:
        assert Alert.from_json(json.loads(json.dumps(a.to_json()))).to_json() == a.to_json()


def test_cli_lists_filters_and_exports(
    result: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws_dir = tmp_path / "ws"
    with Workspace.open(ws_dir) as ws:
        replace_alerts(ws, result.alerts, result.suppressed)
    assert main(["alerts", "-w", str(ws_dir)]) == 0
    out = capsys.readouterr().out
    assert "beacon" in out and "link.example.cn" in out and "suppressed 1,440 flows (time service)" in out
    assert main(["alerts", "-w", str(ws_dir), "--kind", "dns-tunnel", "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "derisk.alerts/1" and [a["kind"] for a in doc["alerts"]] == ["dns-tunnel"]
    ecs = tmp_path / "alerts.ecs.jsonl"
    assert main(["alerts", "-w", str(ws_dir), "--system", "wms", "--ecs", str(ecs)]) == 0
    lines = ecs.read_text(encoding="utf-8").splitlines()
    assert {json.loads(x)["derisk"]["system"] for x in lines} == {"wms"}


def test_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "-w", str(tmp_path / "nothing")]) == 6
    assert "no workspace here" in capsys.readouterr().err
    assert main(["alerts", "-w", str(tmp_path), "--min-severity", "extreme"]) == 2
    with Workspace.open(tmp_path / "empty"):
        pass
    assert main(["alerts", "-w", str(tmp_path / "empty")]) == 0
    assert "No alerts" in capsys.readouterr().out


def test_analyze_hook_reads_the_workspace_compactly_and_stores_alerts(tmp_path: Path) -> None:
    """What `derisk analyze` calls: flows and attribution in a real workspace, alerts out and stored."""
    from derisk.detect.runner import detect_in_workspace
    from derisk.flows import ATTRIBUTION_FIELDS, STORED_SCHEMA
    from derisk.site import parse_site
    from derisk.store.alerts import read_flows_compact

    t = T0 + np.arange(0, 6 * 3600, 60.0)
    n = len(t)
    full = flows_from(
        {
            "first_seen": t,
            "last_seen": t + 0.3,
            "src_ip": "10.10.1.10",
            "system": "wms",
            "dst_ip": "47.88.0.5",
            "server_name": "link.example.cn",
            "dst_domain": "example.cn",
            "dst_asn": 45102,
            "bytes_out": 5000,
            "bytes_in": 300,
            "input_id": "test",
            "src_port": np.arange(n) + 30000,
            "dst_port": 443,
            "protocol": 6,
        },
        n,
    )
    attribution = {f.name: [None] for f in ATTRIBUTION_FIELDS}
    attribution.update(
        dst_asn=[45102],
        dst_domain=["example.cn"],
        dst_controller=["Alibaba Group"],
        dst_org=["Cainiao"],
        dst_jurisdiction=["CN"],
        dst_jurisdiction_basis=["registry"],
    )
    with Workspace.open(tmp_path / "ws") as ws, ws.transaction() as con:
        con.register("new_flows", full.select(STORED_SCHEMA.names))
        con.execute("INSERT INTO flows SELECT * FROM new_flows")
        cols = ", ".join(["dst_asn", "dst_domain"] + [f.name for f in ATTRIBUTION_FIELDS])
        values = [attribution[c][0] for c in ["dst_asn", "dst_domain"] + [f.name for f in ATTRIBUTION_FIELDS]]
        con.execute(f"INSERT INTO attribution ({cols}) VALUES ({', '.join('?' * len(values))})", values)
        compact = read_flows_compact(ws, ["src_ip", "dst_controller", "first_seen"])
        assert compact.num_rows == n and str(compact.schema.field("src_ip").type).startswith("dictionary")
        site = parse_site({"systems": [{"name": "wms", "hosts": ["10.10.1.0/28"]}]}, "site.yaml")
        alerts = detect_in_workspace(ws, site, ["test"], laws_for=laws)
    kinds = sorted(a.kind for a in alerts)
    assert kinds == ["beacon", "compelled-transfer"]
    beacon = next(a for a in alerts if a.kind == "beacon")
    assert (beacon.system, beacon.destination, beacon.controller) == (
        "wms",
        "link.example.cn",
        "Alibaba Group",
    )
    assert "test law art. 7 [V]" in beacon.sentence
    with Workspace.open(tmp_path / "ws", read_only=True) as ws:
        assert sorted(a.kind for a in load_alerts(ws)) == kinds
        from derisk.store.alert_flows import alert_flows

        behind = alert_flows(ws, load_alerts(ws))
    # Both alerts rest on every one of the n flows: the beacon by its server name, the compelled
    # transfer by its controller.
    for a in alerts:
        found = behind[a.alert_id]
        assert (found.flows, found.src_ips, found.dst_ips) == (n, ("10.10.1.10",), ("47.88.0.5",)), a.kind
        assert (found.dst_port, found.protocol, found.bytes_out) == (443, 6, 5000 * n)
        assert found.dst_asn == 45102 and found.dst_domains == ("example.cn",)


def test_ocsf_lines_without_flows_still_validate(result: Any) -> None:
    """Alerts whose flows are not at hand (no workspace) still give valid Detection Findings."""
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding

    from derisk.detect.ocsf import ocsf_lines
    from ocsf_check import ocsf_problems

    lines = list(ocsf_lines(result.alerts))
    assert len(lines) == len(result.alerts)
    for line in lines:
        DetectionFinding.model_validate_json(line, strict=True)
        evidence = json.loads(line)["evidences"][0]
        network = {
            k: evidence[k] for k in ("src_endpoint", "dst_endpoint", "connection_info") if k in evidence
        }
        assert ocsf_problems(network, "evidences") == []
    beacon = next(json.loads(x) for x in lines if '"beacon"' in x and "link.example.cn" in x)
    assert beacon["evidences"][0]["dst_endpoint"] == {
        "ip": "47.88.0.5",
        "hostname": "link.example.cn",
        "owner": {"org": {"name": "Cainiao"}},
    }
    assert beacon["unmapped"]["derisk"]["controller"] == "Alibaba Group"
