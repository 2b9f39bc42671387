"""SIEM exports checked against the ecosystem's own definitions, on a workspace `derisk analyze` built.

ECS: every field name of every line exists in ECS's ``ecs_flat.yml`` (the release in
``tests/fixtures/ecs``) or is under ``derisk.*``; every value has the type ECS declares (arrays only
where ECS normalises to an array; allowed values where ECS lists them); ``related.ip`` holds every
host and destination of the alert's flows, read straight from the workspace.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest
import yaml

from derisk.cli import main
from derisk.demo.scenario import SampledAddressBook, build_scenario
from derisk.detect.ecs import ECS_FIELDS, ECS_OPTIONAL, ECS_VERSION
from derisk.enrich.ipdata import load_ipdata
from derisk.gen.packets import write_capture
from derisk.store.workspace import Workspace
from ecs_check import ECS_FLAT, ecs_definitions, ecs_problems, flatten
from ocsf_check import ocsf_problems

START: Final = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ecs_defs() -> dict[str, Any]:
    return ecs_definitions()


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Path:
    """The demo scenario's capture through the real `derisk analyze`: a workspace with alerts."""
    root = tmp_path_factory.mktemp("siem")
    book = SampledAddressBook(load_ipdata(ipdata_dir))
    scenario = build_scenario(book, start=START, hours=1.0, hostile=True)
    capture = root / "capture.pcap"
    write_capture(scenario.conversations, capture)
    site = root / "site.yaml"
    site.write_text(yaml.safe_dump(scenario.site), encoding="utf-8")
    ws = root / "ws"
    argv = [
        "analyze",
        str(capture),
        "--site",
        str(site),
        "--workspace",
        str(ws),
        "--data-dir",
        str(ipdata_dir),
    ]
    assert main([*argv, "-q"]) == 0
    return ws


@pytest.fixture(scope="module")
def ecs_docs(analysed: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("ecs") / "alerts.ecs.jsonl"
    assert main(["alerts", "-w", str(analysed), "--ecs", str(out)]) == 0
    docs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert docs, "the demo scenario raises alerts"
    return docs


def test_the_vendored_definitions_are_the_release_we_claim(ecs_defs: dict[str, Any]) -> None:
    assert len(ecs_defs) > 1000 and ecs_defs["@timestamp"]["type"] == "date"
    notes = (ECS_FLAT.parent.parent / "README.md").read_text(encoding="utf-8")
    assert f"ecs_flat.yml` of ECS {ECS_VERSION}" in notes and "Apache-2.0" in notes


def test_every_ecs_line_conforms_to_ecs_definitions(
    ecs_docs: list[dict[str, Any]], ecs_defs: dict[str, Any]
) -> None:
    for doc in ecs_docs:
        assert ecs_problems(doc, ecs_defs) == [], doc["rule"]["name"]


def test_the_checker_catches_what_ecs_does_not_allow(
    ecs_docs: list[dict[str, Any]], ecs_defs: dict[str, Any]
) -> None:
    """The check above can fail: wrong names, types, shapes and values are reported."""
    doc = json.loads(json.dumps(ecs_docs[0]))
    doc["destination"]["port"] = "443"
    doc["source"]["ip"] = "not-an-ip"
    doc["related"]["ip"] = doc["related"]["ip"][0]
    doc["event"]["kind"] = "warning"
    doc["event"]["start"] = "yesterday"
    doc["destination"]["asn"] = 1
    found = "\n".join(ecs_problems(doc, ecs_defs))
    for expected in (
        "destination.port: '443' is not of ECS type long",
        "source.ip: 'not-an-ip' is not of ECS type ip",
        "related.ip: an array expected",
        "event.kind: 'warning' not among ECS's allowed values",
        "event.start: 'yesterday' is not of ECS type date",
        "destination.asn: not an ECS field",
    ):
        assert expected in found


def test_every_emitted_field_is_documented_and_the_required_ones_present(
    ecs_docs: list[dict[str, Any]],
) -> None:
    text = (Path(__file__).parent.parent / "docs" / "detection.md").read_text(encoding="utf-8")
    known = set(ECS_FIELDS) | set(ECS_OPTIONAL)
    for doc in ecs_docs:
        names = {n for n in flatten(doc) if n != "derisk"} | {f"derisk.{k}" for k in doc["derisk"]}
        assert names <= known, names - known
        assert set(ECS_FIELDS) <= names
    for name in known:
        assert f"`{name}`" in text, name


def test_related_ip_and_hosts_are_complete(analysed: Path, ecs_docs: list[dict[str, Any]]) -> None:
    """related.ip holds every internal host and destination of the alert's flows (not 1 of 12)."""
    with Workspace.open(analysed, create=False, read_only=True) as ws:
        for doc in ecs_docs:
            ours = doc["derisk"]
            if not ours.get("system") or ours["kind"] == "dns-tunnel":
                continue
            rows = ws.query(
                "SELECT DISTINCT src_ip, dst_ip, server_name FROM flows_attributed WHERE system = ? "
                "AND ? IN (server_name, dst_ip, dst_domain, dst_org, dst_as_org, dst_controller, dst_jurisdiction) "
                "AND first_seen BETWEEN ? AND ?",
                [ours["system"], ours["destination"], doc["event"]["start"], doc["event"]["end"]],
            )
            assert rows, doc["rule"]["name"]
            ips = {r[0] for r in rows} | {r[1] for r in rows}
            assert ips <= set(doc["related"]["ip"]), (doc["rule"]["name"], ips - set(doc["related"]["ip"]))
            names = {r[2] for r in rows if r[2]}
            assert names <= set(doc["related"].get("hosts", [])), doc["rule"]["name"]
            assert doc["derisk"]["flows_found"] >= len(rows) > 0
    several = [d for d in ecs_docs if len(d["derisk"].get("hosts", [])) > 1]
    assert several, "the demo has alerts about systems with several hosts"
    for doc in ecs_docs:  # the CCTV beacon: 12 cameras, all of them, not the one the alert record keeps
        hosts = [h for h in doc["derisk"]["evidence"].get("hosts") or [] if isinstance(h, str)]
        assert set(hosts) <= set(doc["related"]["ip"]) and set(hosts) <= set(doc["derisk"]["hosts"])
        if doc["rule"]["name"] == "beacon":
            assert doc["derisk"]["flows_found"] == doc["derisk"]["flow_count"]
    assert max(len(d["derisk"]["hosts"]) for d in ecs_docs) >= 12


def test_network_details_come_from_the_flows(ecs_docs: list[dict[str, Any]]) -> None:
    beacons = [d for d in ecs_docs if d["rule"]["name"] == "beacon"]
    assert beacons
    for doc in beacons:
        assert doc["network"]["transport"] in ("tcp", "udp")
        assert doc["network"]["bytes"] == doc["source"]["bytes"] + doc["destination"]["bytes"] > 0
        assert isinstance(doc["destination"]["port"], int)
        assert doc["event"]["category"] == ["network", "intrusion_detection"]
        assert doc["event"]["start"] <= doc["event"]["end"]
    assert any("as" in d.get("destination", {}) for d in ecs_docs)
    assert any("geo" in d.get("destination", {}) for d in ecs_docs)
    assert any(d["derisk"].get("controller") and d["derisk"].get("jurisdiction") for d in ecs_docs)
    for doc in ecs_docs:  # the layer the controller comes from, as the flows' attribution has it
        ours = doc["derisk"]
        if ours.get("layer"):
            pair = (ours["layer"], ours["controller"])
            assert any((x["layer"], x["controller"]) == pair for x in ours["layers"])
    assert any(d["derisk"].get("layer") == "service" for d in ecs_docs)


# -- OCSF --------------------------------------------------------------------------------------

#: What derisk adds to each evidence beside what py-ocsf-models models: OCSF 1.5.0's own attributes
#: of the Evidence Artifacts object, which that library lists as to do.
OCSF_NETWORK: Final = {"src_endpoint", "dst_endpoint", "connection_info"}


@pytest.fixture(scope="module")
def ocsf_lines_out(analysed: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    out = tmp_path_factory.mktemp("ocsf") / "alerts.ocsf.jsonl"
    assert main(["alerts", "-w", str(analysed), "--ocsf", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines
    return lines


def test_every_ocsf_line_validates_as_a_detection_finding(ocsf_lines_out: list[str]) -> None:
    """py-ocsf-models validates each line strictly; nothing but the network details escapes its model."""
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding

    for line in ocsf_lines_out:
        finding = DetectionFinding.model_validate_json(line, strict=True)
        doc = json.loads(line)
        assert (doc["class_uid"], doc["category_uid"], doc["type_uid"]) == (2004, 2, 200401)
        assert doc["metadata"]["version"] == "1.5.0" and doc["metadata"]["product"]["name"] == "derisk"
        modelled = finding.model_dump(mode="json", exclude_none=True)
        evidence = doc["evidences"][0]
        network = {k: evidence.pop(k) for k in OCSF_NETWORK if k in evidence}
        assert doc == modelled, "an attribute the library does not model"
        assert network.get("src_endpoint") or network.get("dst_endpoint")
        # What the library leaves out, against OCSF 1.5.0's own object definitions (vendored).
        assert ocsf_problems(network, "evidences") == [], doc["finding_info"]["title"]


def test_the_ocsf_definitions_catch_what_ocsf_does_not_allow(ocsf_lines_out: list[str]) -> None:
    evidence = json.loads(ocsf_lines_out[0])["evidences"][0]
    evidence["dst_endpoint"]["port"] = 70000
    evidence["dst_endpoint"]["asn"] = 1
    evidence["src_endpoint"]["ip"] = "10.0.0"
    evidence["connection_info"]["direction_id"] = 7
    del evidence["connection_info"]["protocol_num"]
    evidence["dst_endpoint"]["autonomous_system"] = {"number": "AS1"}
    network = {k: evidence[k] for k in OCSF_NETWORK}
    found = "\n".join(ocsf_problems(network, "evidences"))
    for expected in (
        "dst_endpoint.port: 70000 is not of OCSF type port_t",
        "dst_endpoint.asn: not an attribute of OCSF object network_endpoint",
        "src_endpoint.ip: '10.0.0' is not of OCSF type ip_t",
        "connection_info.direction_id: 7 not among OCSF's values",
        "dst_endpoint.autonomous_system.number: 'AS1' is not of OCSF type integer_t",
    ):
        assert expected in found
    del evidence["connection_info"]["direction_id"]
    assert "connection_info.direction_id: required" in "\n".join(ocsf_problems(network, "evidences"))


def test_ocsf_observables_hold_every_host_and_destination(
    ocsf_lines_out: list[str], ecs_docs: list[dict[str, Any]]
) -> None:
    by_id = {d["event"]["id"]: d for d in ecs_docs}
    for line in ocsf_lines_out:
        doc = json.loads(line)
        ips = {o["value"] for o in doc.get("observables", []) if o["type_id"] == 2}
        ecs = by_id[doc["finding_info"]["uid"]]
        assert ips == set(ecs["related"]["ip"]), doc["finding_info"]["title"]
        names = {o["value"] for o in doc.get("observables", []) if o["type_id"] == 1}
        assert names == set(ecs["related"].get("hosts", []))
        assert doc["unmapped"]["derisk"]["kind"] == ecs["derisk"]["kind"]
        assert (
            doc["severity_id"] == {"low": 2, "medium": 3, "high": 4, "critical": 5}[ecs["derisk"]["severity"]]
        )
    beacon = next(
        json.loads(x) for x in ocsf_lines_out if json.loads(x)["finding_info"]["analytic"]["name"] == "beacon"
    )
    conn = beacon["evidences"][0]["connection_info"]
    assert conn["protocol_name"] in ("tcp", "udp") and conn["direction_id"] == 2
    assert isinstance(beacon["evidences"][0]["dst_endpoint"]["port"], int)


def test_the_library_rejects_a_broken_finding(ocsf_lines_out: list[str]) -> None:
    """The validation above can fail."""
    from py_ocsf_models.events.findings.detection_finding import DetectionFinding
    from pydantic import ValidationError

    doc = json.loads(ocsf_lines_out[0])
    for key, value in (("severity_id", 7), ("time", "yesterday"), ("type_uid", 400101)):
        broken = {**doc, key: value}
        with pytest.raises(ValidationError):
            DetectionFinding.model_validate_json(json.dumps(broken), strict=True)
    del doc["finding_info"]["uid"]
    with pytest.raises(ValidationError):
        DetectionFinding.model_validate_json(json.dumps(doc), strict=True)


def test_ocsf_to_stdout_keeps_the_table_off_it(analysed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "-w", str(analysed), "--ocsf", "-", "--kind", "beacon"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines and all(json.loads(x)["finding_info"]["analytic"]["name"] == "beacon" for x in lines)
    assert "severity" in captured.err


def test_ocsf_to_a_folder_that_is_not_there(
    analysed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "-w", str(analysed), "--ocsf", str(tmp_path / "no" / "x.jsonl")]) == 3
    assert "output folder does not exist" in capsys.readouterr().err
