"""`derisk alerts --misp/--stix` on real workspaces: the MISP event and the STIX 2.1 bundle pass their
libraries' checks, load back and round-trip, carry the destinations, controller, jurisdiction, evidence and
TLP, and keep attacker-controlled text as bounded data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import stix2
from pymisp import MISPAttribute, MISPEvent

from derisk.cli import main
from derisk.cli.detect import TLP_LEVELS
from derisk.detect.alert import Alert, Target
from derisk.detect.exchange import MAX_TEXT
from derisk.detect.exchange import TLP_LEVELS as EXCHANGE_TLP
from derisk.detect.misp import misp_event, misp_json
from derisk.detect.stix import PRODUCER_ID, stix_bundle, stix_json

ROOT = Path(__file__).resolve().parent.parent
HIKVISION_IP = "1.48.0.10"
HIKVISION_NAME = "p2p.hik-connect.com"
SASAC = "State-owned Assets Supervision and Administration Commission of the State Council"


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("exchange-demo") / "demo"
    assert main(["demo", "--out", str(out), "--data-dir", str(ipdata_dir), "--hours", "3"]) == 0
    return out / "workspace"


@pytest.fixture(scope="module")
def exported(demo_ws: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("exchange")
    misp, stix = out / "event.misp.json", out / "bundle.stix.json"
    assert main(["alerts", "-w", str(demo_ws), "--misp", str(misp), "--stix", str(stix)]) == 0
    return misp, stix


def _misp(path: Path) -> MISPEvent:
    event = MISPEvent()
    event.load(path.read_text(encoding="utf-8"))
    return event


def _check_misp(text: str) -> MISPEvent:
    """PyMISP's own event schema, object templates and attribute type/category table."""
    doc = json.loads(text)
    schema = json.loads(resources.files("pymisp").joinpath("data/schema-lax.json").read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(doc)
    event = MISPEvent()
    event.load(text)
    mapping = MISPAttribute().describe_types["category_type_mappings"]
    for obj in event.objects:
        obj.to_json(strict=True)  # required attributes of the object's template
        for attr in obj.attributes:
            assert attr.type in mapping[attr.category], (obj.name, attr.type, attr.category)
    for attr in event.attributes:
        assert attr.type in mapping[attr.category], (attr.type, attr.category)
    return event


def test_tlp_choices_match_the_converters() -> None:
    assert TLP_LEVELS == EXCHANGE_TLP


def test_misp_event_passes_pymisp_and_round_trips(
    exported: tuple[Path, Path], demo_ws: Path, tmp_path: Path
) -> None:
    text = exported[0].read_text(encoding="utf-8")
    event = _check_misp(text)
    assert json.loads(misp_json(event)) == json.loads(text)  # loaded and written again: the same event
    assert "tlp:amber" in [t.name for t in event.tags]
    assert event.threat_level_id == 1  # the demo has critical beacons
    values = {(a.type, a.value) for a in event.attributes}
    assert ("ip-dst", HIKVISION_IP) in values and ("hostname", HIKVISION_NAME) in values
    # read back from the flows behind the alerts: the second Hikvision address and the registrable domain
    assert ("ip-dst", "1.12.0.10") in values and ("domain", "hik-connect.com") in values
    hik = next(a for a in event.attributes if a.value == HIKVISION_IP)
    tags = {t.name for t in hik.tags}
    assert 'derisk:jurisdiction="CN"' in tags and 'derisk:kind="beacon"' in tags
    assert any(t.startswith('derisk:severity="') for t in tags)
    orgs = [o for o in event.objects if o.name == "organization"]
    sasac = next(o for o in orgs if o.get_attributes_by_relation("name")[0].value == SASAC)
    assert "CN" in sasac.get_attributes_by_relation("description")[0].value
    conns = [o for o in event.objects if o.name == "network-connection"]
    cctv = next(c for c in conns if c.get_attributes_by_relation("hostname-dst")[0].value == HIKVISION_NAME)
    assert cctv.get_attributes_by_relation("layer4-protocol")[0].value == "UDP"
    assert int(cctv.get_attributes_by_relation("dst-port")[0].value) == 6800
    assert int(cctv.get_attributes_by_relation("src-bytes-count")[0].value) > 0
    assert any(r.referenced_uuid == sasac.uuid for c in conns for r in c.references)
    notes = [o for o in event.objects if o.name == "annotation"]
    listed = tmp_path / "alerts.json"
    assert main(["alerts", "-w", str(demo_ws), "--json", str(listed)]) == 0
    alerts = json.loads(listed.read_text(encoding="utf-8"))["alerts"]
    assert len(notes) == len(alerts) == 6
    assert all(o.get_attributes_by_relation("text")[0].value.count("Evidence: ") == 1 for o in notes)


def test_stix_bundle_parses_strictly_and_round_trips(exported: tuple[Path, Path]) -> None:
    text = exported[1].read_text(encoding="utf-8")
    bundle = stix2.parse(text, allow_custom=False)
    assert json.loads(bundle.serialize()) == json.loads(text)
    objects = {o.id: o for o in bundle.objects}
    types = {o.type for o in bundle.objects}
    assert {"identity", "indicator", "observed-data", "note", "relationship", "location"} <= types
    assert stix2.TLP_AMBER.id in objects
    for obj in bundle.objects:
        if obj.type not in ("marking-definition", "ipv4-addr", "ipv6-addr", "domain-name"):
            assert obj.object_marking_refs == [stix2.TLP_AMBER.id], obj.id
        for ref in ("source_ref", "target_ref", "created_by_ref"):
            if ref in obj:
                assert obj[ref] in objects, (obj.id, ref)
        for ref in obj.get("object_refs", []):
            assert ref in objects, (obj.id, ref)
    patterns = {o.pattern for o in bundle.objects if o.type == "indicator"}
    assert f"[ipv4-addr:value = '{HIKVISION_IP}']" in patterns
    assert f"[domain-name:value = '{HIKVISION_NAME}']" in patterns
    sasac = next(o for o in bundle.objects if o.type == "identity" and o.name == SASAC)
    assert sasac.identity_class == "organization"
    located = [o for o in bundle.objects if o.type == "relationship" and o.source_ref == sasac.id]
    assert [objects[r.target_ref].country for r in located] == ["CN"]
    assert any(
        o.type == "relationship" and o.relationship_type == "related-to" and o.target_ref == sasac.id
        for o in bundle.objects
    )
    notes = [o for o in bundle.objects if o.type == "note"]
    assert notes and all("Evidence: " in n.content for n in notes)
    assert all(any(lab.startswith("severity:") for lab in n.labels) for n in notes)


def test_stix_bundle_passes_the_oasis_validator_strictly(exported: tuple[Path, Path]) -> None:
    from stix2validator import ValidationOptions, validate_file

    result = validate_file(str(exported[1]), ValidationOptions(strict=True))
    problems = [str(m) for o in result.object_results for m in [*o.errors, *o.warnings]]
    assert result.is_valid and problems == []


def test_a_second_export_keeps_the_ids_and_tlp_is_chosen(
    demo_ws: Path, exported: tuple[Path, Path], tmp_path: Path
) -> None:
    misp, stix = tmp_path / "e.json", tmp_path / "b.json"
    args = ["alerts", "-w", str(demo_ws), "--misp", str(misp), "--stix", str(stix), "--tlp", "red"]
    assert main(args) == 0
    first, again = _misp(exported[0]), _misp(misp)
    assert first.uuid == again.uuid
    assert {o.uuid for o in first.objects} == {o.uuid for o in again.objects}
    assert "tlp:red" in [t.name for t in again.tags]
    objects = json.loads(stix.read_text())["objects"]
    ids = {o["id"] for o in objects}
    assert stix2.TLP_RED.id in ids and stix2.TLP_AMBER.id not in ids
    before = json.loads(exported[1].read_text())["objects"]
    # STIX domain objects get fresh UUIDv4 ids (STIX 2.1, 2.9); the producer and observables keep theirs
    assert sorted(o["type"] for o in before) == sorted(o["type"] for o in objects)
    kept = {o["id"] for o in before if o["type"] in ("ipv4-addr", "domain-name")} | {PRODUCER_ID}
    assert kept <= ids


def test_filters_apply_and_no_alert_gives_an_empty_valid_export(
    demo_ws: Path, tmp_path: Path, ipdata_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    misp, stix = tmp_path / "e.json", tmp_path / "b.json"
    assert (
        main(["alerts", "-w", str(demo_ws), "--kind", "dns-tunnel", "--misp", str(misp), "--stix", str(stix)])
        == 0
    )
    event = _check_misp(misp.read_text())
    assert {o.name for o in event.objects} == {"network-connection", "annotation"}
    # a tunnel's flows go to the site's resolver: its domain is exported, no internal address
    assert {(a.type, a.value) for a in event.attributes} == {("domain", "telemetry-sync.net")}
    assert not [
        o for o in stix2.parse(stix.read_text()).objects if o.type == "indicator" and "ipv4" in o.pattern
    ]
    monkeypatch.setenv("DERISK_DATA_DIR", str(ipdata_dir))
    ws = tmp_path / "quiet"
    golden = ROOT / "tests" / "fixtures" / "pcap" / "golden.pcap"
    assert main(["analyze", str(golden), "-w", str(ws), "-q"]) == 0
    assert main(["alerts", "-w", str(ws), "--misp", str(misp), "--stix", str(stix)]) == 0
    empty = _check_misp(misp.read_text())
    assert empty.objects == [] and empty.attributes == [] and empty.threat_level_id == 4
    assert {o.type for o in stix2.parse(stix.read_text(), allow_custom=False).objects} == {
        "identity",
        "marking-definition",
    }


HOSTILE_NAME = "x'] OR [file:name = 'evil' <script>alert(1)</script>\u202e\x00"


def _hostile() -> Alert:
    evidence: dict[str, Any] = {
        "server_names": [HOSTILE_NAME, "ok.example.org", "a" * 300],
        "destinations": ["203.0.113.9", "not-an-ip", "1.2.3.4/24"],
        "blob": "<b>bold</b>" * 10_000,
    }
    return Alert(
        kind="beacon",
        score=0.9,
        severity="high",
        target=Target(
            src_ip="10.0.0.5",
            system="<img src=x onerror=alert(1)>",
            destination=HOSTILE_NAME,
            dst_ip="198.51.100.7",
            server_name=HOSTILE_NAME,
            controller='Example <Corp> "Holdings" ' + "x" * 5000,
            jurisdiction="C'N",
        ),
        summary="beacon to " + HOSTILE_NAME,
        evidence=evidence,
        first_seen=datetime(2026, 1, 1, tzinfo=UTC),
        last_seen=datetime(2026, 1, 2, tzinfo=UTC),
        flow_count=3,
        alert_id="beacon:hostile",
    )


def test_attacker_controlled_text_stays_bounded_data() -> None:
    alert = _hostile()
    event = _check_misp(misp_json(misp_event([alert])))
    values = {(a.type, a.value) for a in event.attributes}
    assert values == {
        ("ip-dst", "198.51.100.7"),
        ("ip-dst", "203.0.113.9"),
        ("hostname", "ok.example.org"),
    }
    note = next(o for o in event.objects if o.name == "annotation")
    text = note.get_attributes_by_relation("text")[0].value
    assert len(text) <= MAX_TEXT and "<script>" in text  # kept as text, never rendered
    org = next(o for o in event.objects if o.name == "organization")
    assert len(org.get_attributes_by_relation("name")[0].value) <= 256
    now = datetime(2026, 2, 1, tzinfo=UTC)
    bundle = stix2.parse(stix_json(stix_bundle([alert], now=now)), allow_custom=False)
    patterns = sorted(o.pattern for o in bundle.objects if o.type == "indicator")
    assert patterns == [
        "[domain-name:value = 'ok.example.org']",
        "[ipv4-addr:value = '198.51.100.7']",
        "[ipv4-addr:value = '203.0.113.9']",
    ]
    assert not [o for o in bundle.objects if o.type == "location"]  # "C'N" is no country code
    note_obj = next(o for o in bundle.objects if o.type == "note")
    assert len(note_obj.content) <= MAX_TEXT


def test_alerts_help_does_not_load_the_exchange_libraries() -> None:
    probe = (
        "import sys, contextlib, io\nfrom derisk.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['alerts', '--help'])\n"
        "print(sorted(m for m in ('pymisp', 'stix2', 'jsonschema') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_bad_destination_is_one_line(
    demo_ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(demo_ws, ws)
    target = tmp_path / "no-such-dir" / "e.json"
    code = main(["alerts", "-w", str(ws), "--misp", str(target)])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and err.count("\n") == 1
