"""Sanctions, topics and datasets (OpenSanctions/FtM) of a destination's control chain, in alerts and
on entities: the shipped real-format OpenSanctions sample, the real DuckDB, generated Zeek logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from derisk.cli import main
from derisk.detect.alert import Alert, ListingRef, Target, make_alert, with_listings
from derisk.enrich.ipdata import load_ipdata
from derisk.gen.zeek import Session, build_logs, write_logs
from derisk.know.importing import import_file
from derisk.know.risk import chain_listings, listing_lookup
from derisk.store.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "know"
SAMPLE = FIXTURES / "opensanctions-sample.ftm.json"
T0 = 1_793_000_000.0
SITE = "site: test\ninternal_networks: [10.1.0.0/24]\nsystems:\n  - {name: hmi, hosts: [10.1.0.5/32]}\n"


def test_chain_listings_name_the_company_and_its_sanctioned_controller(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, SAMPLE)
        lookup = listing_lookup(ws)
        assert lookup is not None
        found = lookup("NK-sample-1")
        assert lookup("microsoft-corp") == ()  # a curated entity with nothing listed in its chain
    by_id = {x.entity_id: x for x in found}
    assert list(by_id) == ["NK-sample-1", "NK-sample-2"]
    company, person = by_id["NK-sample-1"], by_id["NK-sample-2"]
    assert company.role == "organisation" and person.role == "controller"
    assert company.datasets == ("us_ofac_sdn", "eu_fsf") and company.topics == ("sanction",)
    assert company.sanctions == ("Office of Foreign Assets Control, CMIC-EO13959, from 2021-06-03",)
    assert person.topics == ("sanction", "role.oligarch")
    assert person.sanctions == ("European Union, Sample regime, from 2022-02-28",)
    assert company.source is not None and "opensanctions-sample.ftm.json" in company.source


def test_no_lookup_without_an_ftm_import(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, FIXTURES / "gleif-lei2-sample.csv")
        assert listing_lookup(ws) is None


def test_alert_json_round_trip_and_sentence(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, SAMPLE)
        lookup = listing_lookup(ws)
        assert lookup is not None
        target = Target("10.1.0.5", "hmi", "cams.example.cn", organisation="<b>evil</b>", controller="x")
        alert = make_alert("beacon", 0.95, target, "beacons to {dest}", {}, lambda _j: [])
        listed = with_listings([alert], lambda _a: ["NK-sample-1"], lookup)[0]
        untouched = with_listings([alert], lambda _a: ["microsoft-corp"], lookup)[0]
    assert untouched is alert and alert.listings == ()
    doc = listed.to_json()
    assert [x["entity_id"] for x in doc["listings"]] == ["NK-sample-1", "NK-sample-2"]
    assert doc["listings"][1]["role"] == "controller"
    assert Alert.from_json(json.loads(json.dumps(doc))) == listed
    assert (
        "Listed in its control chain: Sample Surveillance Technology Co., Ltd. (organisation; sanction;"
        " us_ofac_sdn, eu_fsf); Sample Person (controller; sanction, role.oligarch; us_ofac_sdn)."
    ) in listed.sentence
    # A stored alert of before this key reads back without listings.
    old = {k: v for k, v in doc.items() if k != "listings"}
    assert Alert.from_json(old).listings == ()
    assert ListingRef.from_json(doc["listings"][0]).label().startswith("Sample Surveillance")


def _sessions(ipdata_dir: Path) -> list[Session]:
    data = load_ipdata(ipdata_dir)
    host = data.sample_addresses(35916, None, 1)[0]
    return [  # an hourly beacon to the sanctioned company's camera cloud, two days long
        Session(
            "10.1.0.5",
            host,
            T0 + i * 3_600 + (i % 3),
            900,
            300,
            name="cams.<i>sample</i>-surveillance.example.cn"
            if i == 0
            else "cams.sample-surveillance.example.cn",
            name_via="sni",
            service="ssl",
        )
        for i in range(48)
    ]


def _analyze(tmp_path: Path, ipdata_dir: Path) -> tuple[dict[str, Any], Path]:
    ws = tmp_path / "ws"
    assert main(["entity", "import", str(SAMPLE), "--workspace", str(ws)]) == 0
    logs, _ = build_logs(_sessions(ipdata_dir), seed=5)
    folder = tmp_path / "zeek"
    write_logs(folder, logs, fmt="tsv")
    site = tmp_path / "site.yaml"
    site.write_text(SITE, encoding="utf-8")
    out = tmp_path / "analysis.json"
    assert main(["analyze", str(folder), "-w", str(ws), "--site", str(site), "--json", str(out), "-q"]) == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc, ws


def test_alerts_name_the_listed_entities_end_to_end(
    tmp_path: Path, data_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from schema_check import assert_valid

    doc, ws = _analyze(tmp_path, data_env)
    beacons = [a for a in doc["alerts"] if a["kind"] == "beacon"]
    assert beacons, [a["kind"] for a in doc["alerts"]]
    listed = beacons[0]["listings"]
    assert [x["entity_id"] for x in listed] == ["NK-sample-1", "NK-sample-2"]
    assert listed[0]["datasets"] == ["us_ofac_sdn", "eu_fsf"]
    assert "Sample Person (controller; sanction, role.oligarch; us_ofac_sdn)" in beacons[0]["sentence"]
    assert_valid(doc, "analysis")

    capsys.readouterr()
    assert main(["alerts", "-w", str(ws), "--json", "-"]) == 0
    alerts_doc = json.loads(capsys.readouterr().out)
    assert_valid(alerts_doc, "alerts")
    stored = next(a for a in alerts_doc["alerts"] if a["kind"] == "beacon")
    assert stored["listings"] == listed  # kept in the workspace with the alert

    assert main(["alerts", "-w", str(ws), "--explain"]) == 0
    terminal = capsys.readouterr().out
    assert "Listed in its control chain" in terminal and "Sample Person (controller" in terminal

    html = tmp_path / "report.html"
    assert main(["report", "-w", str(ws), "--html", str(html), "-q"]) == 0
    page = html.read_text(encoding="utf-8")
    assert "Sample Person (controller)" in page
    assert "Sanction: Office of Foreign Assets Control, CMIC-EO13959" in page
    assert "opensanctions-sample.ftm.json" in page  # the source of the statement
    assert "<i>sample</i>" not in page  # attacker-controlled server names stay escaped


def test_entity_show_and_page_name_the_listed_controller(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from schema_check import assert_valid

    ws = tmp_path / "ws"
    with Workspace.open(ws) as opened:
        import_file(opened, SAMPLE)
    capsys.readouterr()
    assert main(["entity", "show", "NK-sample-1", "--workspace", str(ws), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert_valid(doc, "entity")
    assert [(x["entity_id"], x["role"]) for x in doc["listings"]] == [
        ("NK-sample-1", "organisation"),
        ("NK-sample-2", "controller"),
    ]
    assert main(["entity", "show", "NK-sample-1", "--workspace", str(ws)]) == 0
    text = capsys.readouterr().out
    assert "Sample Person (controller)" in text and "European Union, Sample regime" in text


def test_listing_of_a_chain_without_ftm_data_is_empty() -> None:
    from derisk.know.curated import load_curated

    graph = load_curated()
    assert chain_listings(graph, "microsoft-corp") == ()
    assert chain_listings(graph, "no-such-entity") == ()


def test_entity_page_names_the_listed_owners_escaped(tmp_path: Path) -> None:
    from derisk.web.app import create_app
    from derisk.web.auth import UserStore
    from web_helpers import PASSWORD, TestClient, csrf_of

    # A subsidiary of the sanctioned company, with hostile text in its name (FtM, as Aleph exports it).
    sub = {
        "id": "sub-1",
        "schema": "Company",
        "properties": {"name": ["Cams <script>alert(1)</script> Europe BV"], "country": ["nl"]},
    }
    owned = {
        "id": "sub-1-own",
        "schema": "Ownership",
        "properties": {"owner": ["NK-sample-1"], "asset": ["sub-1"], "percentage": ["100"]},
    }
    extra = tmp_path / "sub.ftm.json"
    extra.write_text(json.dumps(sub) + "\n" + json.dumps(owned) + "\n", encoding="utf-8")
    ws_path = tmp_path / "ws"
    with Workspace.open(ws_path) as ws:
        import_file(ws, SAMPLE)
        import_file(ws, extra)
    UserStore(ws_path).add("ada", PASSWORD, "admin")
    with TestClient(create_app(ws_path, warm=False), base_url="http://127.0.0.1") as client:
        page = client.get("/login")
        client.post("/login", data={"csrf": csrf_of(page.text), "username": "ada", "password": PASSWORD})
        html = client.get("/entities/sub-1").text
    assert "Listed in its control chain" in html
    assert "Sample Surveillance Technology Co., Ltd.</a> (owner)" in html
    assert "Sample Person</a> (controller)" in html and "European Union, Sample regime" in html
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
