"""Importing the published open-data formats: GLEIF L1/L2, CAIDA AS2Org, PeeringDB, Wikidata, OpenSanctions FtM."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from derisk.cli import main
from derisk.enrich.attribution import prefetch
from derisk.know.attribution import load_index
from derisk.know.graph import load_graph
from derisk.know.graphload import expand
from derisk.know.importing import detect, import_file
from derisk.know.names import find_entities, pick
from derisk.know.resolve import resolve_controller
from derisk.store.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "know"
GLEIF_ID = re.compile(r"^lei-[A-Z0-9]{20}$")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("gleif-lei2-sample.csv", "gleif-lei"),
        ("gleif-rr-sample.csv", "gleif-rr"),
        ("as-org2info-sample.txt", "as2org"),
        ("as-org2info-sample.jsonl", "as2org"),
        ("peeringdb-sample.json", "peeringdb"),
        ("wikidata-sample.json", "wikidata"),
        ("wikidata-sparql-sample.json", "wikidata"),
        ("opensanctions-sample.ftm.json", "ftm"),
    ],
)
def test_format_is_detected_from_content(name: str, fmt: str) -> None:
    assert detect(FIXTURES / name) == fmt


def test_gleif_level1_and_level2_give_a_chain_with_provenance(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        l1 = import_file(ws, FIXTURES / "gleif-lei2-sample.csv")
        rr = import_file(ws, FIXTURES / "gleif-rr-sample.csv")
        graph = load_graph(ws)
        found = find_entities(graph, "Example Europe S.à r.l.", limit=5, source=ws)
        expand(graph, ws, [found[0][0].id], refresh=True)
    assert (l1.nodes, l1.links, l1.warnings) == (12, 0, ())
    # 12 records: 1 inactive and 1 fund-management relation skipped, 3 ultimate-parent records of
    # children with a direct parent dropped; the ultimate parent of the Liège company stays.
    assert rr.links == 7
    assert any("IS_FUND-MANAGED_BY" in w.what for w in rr.warnings)
    assert any("inactive" in w.what for w in rr.warnings)
    chosen = pick(found)
    assert chosen is not None and chosen.id == "lei-300300UVWXYZABCD0418"
    res = resolve_controller(graph, chosen.id)
    assert res.controller is not None and res.controller.id == "lei-300300ABCDEFGHIJ0102"
    # Incorporated in the Cayman Islands, head office in China: control exercised from CN.
    assert res.jurisdiction == "CN" and res.controller.country == "KY"
    step = res.path[0]
    assert step.link.source is not None
    assert step.link.source.url == "https://search.gleif.org/#/record/300300UVWXYZABCD0418"
    assert "gleif-rr-sample.csv" in step.link.source.says and "sha256" in step.link.source.says
    assert step.link.source.date == "2026-09-18"
    assert step.confidence == "S"  # ENTITY_SUPPLIED_ONLY: not corroborated


def test_gleif_ultimate_parent_used_only_without_a_direct_one(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, FIXTURES / "gleif-lei2-sample.csv")
        import_file(ws, FIXTURES / "gleif-rr-sample.csv")
        graph = load_graph(ws)
        expand(graph, ws, ["lei-5299003FGHITESTLEI64", "lei-5299002BCDETESTLEI51"])
    liege = resolve_controller(graph, "lei-5299003FGHITESTLEI64")
    cloud = resolve_controller(graph, "lei-5299002BCDETESTLEI51")
    assert liege.controller is not None and liege.controller.name == "Derisk Sample Holding SE"
    assert [s.link.control_type for s in liege.path] == ["accounting consolidation: ultimate parent"]
    assert [s.owner.name for s in cloud.path] == ["Derisk Sample Networks GmbH", "Derisk Sample Holding SE"]


@pytest.mark.parametrize("name", ["as-org2info-sample.txt", "as-org2info-sample.jsonl"])
def test_as2org_sibling_ases_join_the_known_group(tmp_path: Path, name: str) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, FIXTURES / name)
        index = load_index(ws)
    # AS8068 is not in the curated Microsoft entry; its registered organisation's name is.
    match = index.match_asn(8068)
    assert match is not None and match.org_id == "microsoft-corp"
    assert match.controller_name == "Microsoft Corporation" and match.jurisdiction == "US"


def test_as2org_unknown_organisation_groups_its_ases(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, FIXTURES / "as-org2info-sample.txt")
        index = load_index(ws)
        # Registration records are looked up per AS asked for (as attribution does for its keys).
        assert index.match_asn(64501) is None
        prefetch(index, [64501, 64502])
    first, second = index.match_asn(64501), index.match_asn(64502)
    assert first is not None and second is not None
    assert first.org_id == second.org_id == "as2org-ORG-SAMPLE-AP"
    assert first.jurisdiction == "CN"


def test_peeringdb_org_carries_its_networks(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        report = import_file(ws, FIXTURES / "peeringdb-sample.json")
        index = load_index(ws)
        prefetch(index, [64530])
        graph = load_graph(ws)
        expand(graph, ws, ["peeringdb-org-10"])
    assert report.nodes == 3 and report.warnings == ()
    hg = graph.entities["peeringdb-org-10"]
    assert hg.asns == (64510, 64511) and hg.domains == ("example.net",)
    assert "SHG Edge" in hg.aliases
    match = index.match_asn(64530)
    assert match is not None and match.org_name == "Sample Port Networks NV" and match.jurisdiction == "BE"


@pytest.mark.parametrize("name", ["wikidata-sample.json", "wikidata-sparql-sample.json"])
def test_wikidata_ownership_chain(tmp_path: Path, name: str) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, FIXTURES / name)
        graph = load_graph(ws)
        expand(graph, ws, ["wd-Q90000004"])
    res = resolve_controller(graph, "wd-Q90000004")
    assert res.controller is not None
    assert res.jurisdiction == "CN"
    assert res.path[0].link.share == 100.0
    assert res.path[0].link.source is not None
    assert res.path[0].link.source.url == "https://www.wikidata.org/wiki/Q90000004"


def test_opensanctions_cleaning_warns_and_keeps_the_rest(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        report = import_file(ws, FIXTURES / "opensanctions-sample.ftm.json")
        graph = load_graph(ws)
    warnings = [str(w) for w in report.warnings]
    assert warnings == [
        "line 1: phone value 'not a phone number' is not a valid phone; value dropped",
        "line 2: email value 'no-at-sign' is not a valid email; value dropped",
        "line 3: entity dropped: Passport needs property 'number'",
    ]
    company = graph.entities["NK-sample-1"]
    assert company.name == "Sample Surveillance Technology Co., Ltd."  # the caption
    assert company.topics == ("sanction",)
    assert company.datasets == ("us_ofac_sdn", "eu_fsf")
    assert company.sanctions == ("Office of Foreign Assets Control, CMIC-EO13959, from 2021-06-03",)
    person = graph.entities["NK-sample-2"]
    assert person.sanctions == ("European Union, Sample regime, from 2022-02-28",)


def test_entity_show_lists_sanctions_and_topics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = str(tmp_path / "ws")
    assert main(["entity", "import", str(FIXTURES / "opensanctions-sample.ftm.json"), "--workspace", ws]) == 0
    _, err = capsys.readouterr()
    assert "3 problem(s)" in err and "Passport needs property 'number'" in err
    assert main(["entity", "show", "Sample Surveillance Technology", "--workspace", ws, "--json", "-"]) == 0
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert doc["entity"]["sanctions"] == ["Office of Foreign Assets Control, CMIC-EO13959, from 2021-06-03"]
    assert doc["entity"]["topics"] == ["sanction"]
    assert doc["controller"]["id"] == "NK-sample-2"


def test_cli_import_with_explicit_format_and_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = str(tmp_path / "ws")
    lei = str(FIXTURES / "gleif-lei2-sample.csv")
    assert main(["entity", "import", lei, "--format", "gleif-lei", "--workspace", ws]) == 0
    out, _ = capsys.readouterr()
    assert "imported 12 entities" in out and "(gleif-lei)" in out
    assert main(["entity", "show", "Port Sample Terminal", "--workspace", ws, "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr()[0])
    assert doc["entity"]["id"] == "lei-984500SAMPLEPORT0129" and doc["entity"]["country"] == "BE"


def test_reimport_replaces_and_records_each_import(tmp_path: Path) -> None:
    from derisk.know.graphdb import import_rows

    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, FIXTURES / "gleif-lei2-sample.csv")
        import_file(ws, FIXTURES / "gleif-lei2-sample.csv")
        count = ws.query("SELECT count(*) FROM kg_entities")[0][0]
        rows = import_rows(ws)
    assert count == 12 and len(rows) == 1 and rows[0][2] == "gleif-lei" and len(rows[0][3]) == 64


def test_only_hinted_entities_and_ancestors_are_materialised(tmp_path: Path) -> None:
    """GLEIF entities without hints stay in DuckDB; an FtM operator owned by a GLEIF company pulls
    in that company and its GLEIF parents, so attribution follows the chain."""
    operator = {
        "id": "ftm-op",
        "schema": "Company",
        "properties": {"name": ["Sample Operator SRL"], "jurisdiction": ["be"], "keywords": ["AS64599"]},
    }
    owned = {
        "id": "ftm-own",
        "schema": "Ownership",
        "properties": {"owner": ["lei-984500SAMPLEPORT0129"], "asset": ["ftm-op"], "percentage": ["100"]},
    }
    path = tmp_path / "op.ftm.json"
    path.write_text(json.dumps(operator) + "\n" + json.dumps(owned) + "\n", encoding="utf-8")
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, FIXTURES / "gleif-lei2-sample.csv")
        import_file(ws, FIXTURES / "gleif-rr-sample.csv")
        graph = load_graph(ws)
        assert not [e for e in graph.entities if GLEIF_ID.match(e)]
        import_file(ws, path)
        graph = load_graph(ws)
        index = load_index(ws)
    assert sorted(e for e in graph.entities if GLEIF_ID.match(e)) == [
        "lei-300300ABCDEFGHIJ0102",
        "lei-984500SAMPLEPORT0129",
    ]
    match = index.match_asn(64599)
    assert match is not None and match.controller_id == "lei-300300ABCDEFGHIJ0102"
    assert match.jurisdiction == "CN"


def test_registration_record_named_like_a_known_entity_is_not_a_second_node(tmp_path: Path) -> None:
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, FIXTURES / "as-org2info-sample.txt")
        graph = load_graph(ws)
        found = find_entities(graph, "Microsoft Corporation", limit=8, source=ws)
    assert "as2org-MSFT-ARIN" not in graph.entities
    assert "as2org-MSFT-ARIN" not in [e.id for e, _ in found]
    chosen = pick(found, "Microsoft Corporation")
    assert chosen is not None and chosen.id == "microsoft-corp"
    assert (
        any("caida.org" in s.url for s in graph.entities["microsoft-corp"].sources)
        or 8068 in graph.entities["microsoft-corp"].asns
    )
