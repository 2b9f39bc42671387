"""FollowTheMoney import and export: round trip, the bad-import table, attribution from imported data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from derisk.errors import InputError
from derisk.know.attribution import load_index
from derisk.know.curated import load_curated
from derisk.know.exporting import export_lines
from derisk.know.ftmstore import load_records as load_imported
from derisk.know.graph import load_graph
from derisk.know.importing import import_file
from derisk.know.resolve import resolve_controller
from derisk.store.entities import list_imports
from derisk.store.workspace import Workspace


def _lines(*entities: dict[str, Any]) -> str:
    return "".join(json.dumps(e) + "\n" for e in entities)


def company(ident: str, name: str, **props: list[str]) -> dict[str, Any]:
    return {"id": ident, "schema": "Company", "properties": {"name": [name], **props}}


def ownership(
    ident: str, owner: str, asset: str, pct: str | None = None, **props: list[str]
) -> dict[str, Any]:
    extra = {"percentage": [pct]} if pct is not None else {}
    return {
        "id": ident,
        "schema": "Ownership",
        "properties": {"owner": [owner], "asset": [asset], **extra, **props},
    }


SUBSIDIARY = _lines(
    company(
        "acde",
        "Alibaba Cloud (Germany) GmbH",
        jurisdiction=["de"],
        keywords=["AS64500"],
        website=["https://www.alicloud-de.example.com/"],
        sourceUrl=["https://example.com/register/acde"],
    ),
    ownership(
        "own-acde",
        "alibaba-group-holding",
        "acde",
        "100",
        startDate=["2024-01-01"],
        status=["derisk:confidence=S"],
    ),
)


def test_export_import_export_is_lossless(tmp_path: Path) -> None:
    first = "".join(export_lines(None))
    assert first.count("\n") > 100
    for line in first.splitlines():
        data = json.loads(line)
        assert set(data) == {"id", "schema", "properties"}
    path = tmp_path / "all.jsonl"
    path.write_text(first, encoding="utf-8")
    with Workspace.open(tmp_path / "ws") as ws:
        report = import_file(ws, path)
        second = "".join(export_lines(ws))
        graph = load_graph(ws)
    assert report.entities == first.count("\n")
    assert second == first
    curated = load_curated()
    assert set(graph.entities) == set(curated.entities)
    for ident in ("cainiao-liege-ehub", "proximus", "huawei-cloud", "wangtouzhongwen", "hikvision"):
        a, b = resolve_controller(curated, ident), resolve_controller(graph, ident)
        assert (a.chain(), a.jurisdiction, a.state, a.confidence, len(a.disputed)) == (
            b.chain(),
            b.jurisdiction,
            b.state,
            b.confidence,
            len(b.disputed),
        )
    proximus = next(link for link in graph.links if link.asset_id == "proximus")
    assert (proximus.share, proximus.voting, proximus.confidence) == (53.51, 56.05, "V")


def test_imported_subsidiary_changes_attribution(tmp_path: Path) -> None:
    path = tmp_path / "sub.jsonl"
    path.write_text(SUBSIDIARY, encoding="utf-8")
    assert load_index().match_asn(64500) is None
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, path)
        index = load_index(ws)
        records = load_imported(ws)
        imports = list_imports(ws)
    match = index.match_asn(64500)
    assert match is not None
    assert match.org_name == "Alibaba Cloud (Germany) GmbH"
    assert match.controller_name == "Alibaba Group Holding Limited" and match.jurisdiction == "CN"
    assert match.origin == "imported" and match.confidence == "S"
    assert index.match_domain("alicloud-de.example.com") == match
    assert index.version != load_index().version
    assert [r.id for r in records] == ["acde", "own-acde"] and imports[0].entity_count == 2


def test_imported_operator_wins_over_curated_hint(tmp_path: Path) -> None:
    path = tmp_path / "override.jsonl"
    path.write_text(
        _lines(company("us-op", "Example Operator Inc.", jurisdiction=["us"], keywords=["AS45102"])),
        encoding="utf-8",
    )
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, path)
        index = load_index(ws)
    match = index.match_asn(45102)
    assert match is not None and match.org_name == "Example Operator Inc." and match.jurisdiction == "US"
    assert any("AS45102" in c for c in index.conflicts)


GOOD = company("g1", "Good Co")
BAD_IMPORTS = [
    ("not-json", "{oops\n", ["line 1: not JSON"]),
    (
        "unknown-schema",
        _lines({"id": "x", "schema": "Spaceship", "properties": {}}),
        ["unknown schema 'Spaceship'"],
    ),
    (
        "unknown-property",
        _lines(company("x", "X", colour=["red"])),
        ["unknown property 'colour' for schema Company"],
    ),
    ("abstract-schema", _lines({"id": "x", "schema": "Thing", "properties": {"name": ["X"]}}), ["abstract"]),
    (
        "percentage-text",
        _lines(GOOD, company("g2", "G2"), ownership("o", "g1", "g2", "half")),
        ["line 3: percentage 'half' is not a number"],
    ),
    (
        "percentage-over",
        _lines(GOOD, company("g2", "G2"), ownership("o", "g1", "g2", "140")),
        ["outside 0–100"],
    ),
    (
        "total-over",
        _lines(
            GOOD,
            company("g2", "G2"),
            company("g3", "G3"),
            ownership("o1", "g1", "g3", "60"),
            ownership("o2", "g2", "g3", "50"),
        ),
        ["adds up to 110% (more than 100%)"],
    ),
    (
        "total-over-curated",
        _lines(GOOD, ownership("o1", "g1", "proximus", "60")),
        ["'Proximus NV' adds up to 113.51%"],
    ),
    (
        "dangling",
        _lines(GOOD, ownership("o", "ghost", "g1", "10")),
        ["line 2: owner refers to unknown id 'ghost'"],
    ),
    (
        "missing-required",
        _lines(GOOD, {"id": "o", "schema": "Ownership", "properties": {"owner": ["g1"]}}),
        ["Ownership needs property 'asset'"],
    ),
    (
        "cycle",
        _lines(
            GOOD, company("g2", "G2"), ownership("o1", "g1", "g2", "60"), ownership("o2", "g2", "g1", "60")
        ),
        ["cycle of control"],
    ),
    (
        "cycle-of-three",
        _lines(
            GOOD,
            company("g2", "G2"),
            company("g3", "G3"),
            ownership("o1", "g1", "g2", "60"),
            ownership("o2", "g2", "g3", "70"),
            {"id": "c3", "schema": "Control", "properties": {"controller": ["g3"], "controlled": ["g1"]}},
        ),
        ["cycle of control among Good Co, G2, G3", "line 4, line 5, line 6"],
    ),
    ("duplicate-id", _lines(GOOD, GOOD), ["line 2: id 'g1' already used on line 1"]),
    ("bad-country", _lines(company("x", "X", jurisdiction=["Atlantis"])), ["is not a valid country"]),
    ("empty", "\n\n", ["no entities in the file"]),
    ("not-an-object", "[1, 2]\n", ["expected a JSON object"]),
]


@pytest.mark.parametrize(("name", "text", "expected"), BAD_IMPORTS, ids=[b[0] for b in BAD_IMPORTS])
def test_bad_import_is_rejected_and_store_unchanged(
    tmp_path: Path, name: str, text: str, expected: list[str]
) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(SUBSIDIARY, encoding="utf-8")
    bad = tmp_path / f"{name}.jsonl"
    bad.write_text(text, encoding="utf-8")
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, good)
        before = ("".join(export_lines(ws)), load_imported(ws), list_imports(ws))
        with pytest.raises(InputError) as info:
            import_file(ws, bad)
        after = ("".join(export_lines(ws)), load_imported(ws), list_imports(ws))
    assert before == after
    message = info.value.one_line()
    assert message.startswith(str(bad)) and "\n" not in message
    for part in expected:
        assert part in message, message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "many.jsonl"
    bad.write_text(
        "{oops\n"
        + _lines(company("x", "X", colour=["red"]), {"id": "y", "schema": "Nope", "properties": {}}),
        encoding="utf-8",
    )
    with Workspace.open(tmp_path / "ws") as ws, pytest.raises(InputError) as info:
        import_file(ws, bad)
    details = info.value.details
    assert len(details) == 3
    assert [d.split(":")[0] for d in details] == ["line 1", "line 2", "line 3"]


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.jsonl"
    bad.write_bytes(b'{"id": "x\xe9"}\n')
    with Workspace.open(tmp_path / "ws") as ws:
        with pytest.raises(InputError, match="not UTF-8"):
            import_file(ws, bad)
        with pytest.raises(InputError, match="no such file"):
            import_file(ws, tmp_path / "missing.jsonl")


def test_reimport_replaces_instead_of_duplicating(tmp_path: Path) -> None:
    path = tmp_path / "sub.jsonl"
    path.write_text(SUBSIDIARY, encoding="utf-8")
    with Workspace.open(tmp_path / "ws") as ws:
        import_file(ws, path)
        import_file(ws, path)
        assert [r.id for r in load_imported(ws)] == ["acde", "own-acde"]
