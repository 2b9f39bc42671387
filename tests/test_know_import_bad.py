"""Hostile import files: every problem reported, usable records kept, nothing changed when none are."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from derisk.cli import main
from derisk.errors import InputError
from derisk.know.graphdb import import_rows
from derisk.know.importing import import_file
from derisk.store.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "know"
L1_HEADER = ["LEI", "Entity.LegalName", "Entity.LegalJurisdiction", "Registration.LastUpdateDate"]
RR_HEADER = ["Relationship.StartNode.NodeID", "Relationship.EndNode.NodeID", "Relationship.RelationshipType"]


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    out = csv.writer(buf, quoting=csv.QUOTE_ALL)
    out.writerow(header)
    out.writerows(rows)
    return buf.getvalue()


def lei(n: int) -> str:
    return f"5299{n:014d}{n % 97:02d}"


def _snapshot(ws: Workspace) -> tuple[object, ...]:
    return (
        ws.query("SELECT * FROM kg_entities ORDER BY id"),
        ws.query("SELECT * FROM kg_links ORDER BY id"),
        ws.query("SELECT * FROM kg_names ORDER BY entity_id, name"),
        import_rows(ws),
    )


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace.open(tmp_path / "ws")
    import_file(workspace, FIXTURES / "gleif-lei2-sample.csv")
    return workspace


def _fails(ws: Workspace, path: Path, fmt: str | None, *expected: str) -> None:
    before = _snapshot(ws)
    with pytest.raises(InputError) as info:
        import_file(ws, path, fmt)
    assert _snapshot(ws) == before
    message = info.value.one_line()
    assert message.startswith(str(path)) and "\n" not in message
    for part in expected:
        assert part in message, message


def test_wrong_columns_exit_3_and_graph_unchanged(ws: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "wrong.csv"
    bad.write_text('"Name","Country"\n"X","DE"\n', encoding="utf-8")
    _fails(ws, bad, "gleif-lei", "missing column(s) LEI, Entity.LegalName", "found: Name, Country")


def test_only_broken_rows_nothing_usable(ws: Workspace, tmp_path: Path) -> None:
    bad = tmp_path / "broken.csv"
    bad.write_text(_csv(L1_HEADER, [["short", "A", "DE", ""], [lei(1), "", "DE", ""]]), encoding="utf-8")
    _fails(ws, bad, "gleif-lei", "nothing usable", "row 2: LEI is not 20 characters", "row 3: no legal name")


def test_truncated_file_keeps_complete_rows(ws: Workspace, tmp_path: Path) -> None:
    text = _csv(L1_HEADER, [[lei(n), f"Company {n}", "DE", "2026-01-01"] for n in range(1, 6)])
    cut = text[: text.rindex('"DE"')]  # the last row ends in the middle of a field
    path = tmp_path / "truncated.csv"
    path.write_text(cut, encoding="utf-8")
    report = import_file(ws, path, "gleif-lei")
    assert report.nodes == 4
    assert len(report.warnings) == 1 and "row 6" in str(report.warnings[0])


def test_duplicate_ids_first_kept(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "dups.csv"
    rows = [[lei(1), "First", "DE", ""], [lei(2), "Other", "FR", ""], [lei(1), "Second", "NL", ""]]
    path.write_text(_csv(L1_HEADER, rows), encoding="utf-8")
    report = import_file(ws, path, "gleif-lei")
    assert report.nodes == 2
    assert [str(w) for w in report.warnings] == [
        f"line 4: entity id 'lei-{lei(1)}' already used on line 2; first kept"
    ]
    assert ws.query("SELECT name FROM kg_entities WHERE id = ?", [f"lei-{lei(1)}"]) == [("First",)]


def test_ownership_cycle_links_dropped(ws: Workspace, tmp_path: Path) -> None:
    entities = tmp_path / "l1.csv"
    entities.write_text(_csv(L1_HEADER, [[lei(n), f"C{n}", "DE", ""] for n in (1, 2, 3)]), encoding="utf-8")
    import_file(ws, entities, "gleif-lei")
    rels = tmp_path / "rr.csv"
    direct = "IS_DIRECTLY_CONSOLIDATED_BY"
    rows = [[lei(1), lei(2), direct], [lei(2), lei(3), direct], [lei(3), lei(1), direct]]
    rels.write_text(_csv(RR_HEADER, rows), encoding="utf-8")
    report = import_file(ws, rels, "gleif-rr")
    assert report.links == 2
    assert len(report.warnings) == 1 and "closes a cycle of control" in report.warnings[0].what


def test_cycle_only_file_is_refused(ws: Workspace, tmp_path: Path) -> None:
    entities = tmp_path / "l1.csv"
    entities.write_text(_csv(L1_HEADER, [[lei(n), f"C{n}", "DE", ""] for n in (1, 2)]), encoding="utf-8")
    import_file(ws, entities, "gleif-lei")
    rels = tmp_path / "rr.csv"
    rels.write_text(
        _csv(
            RR_HEADER,
            [
                [lei(1), lei(2), "IS_DIRECTLY_CONSOLIDATED_BY"],
                [lei(2), lei(1), "IS_DIRECTLY_CONSOLIDATED_BY"],
            ],
        ),
        encoding="utf-8",
    )
    report = import_file(ws, rels, "gleif-rr")
    assert report.links == 1  # the second link closes the cycle; the first alone is usable


def test_dangling_relationship_dropped(ws: Workspace, tmp_path: Path) -> None:
    rels = tmp_path / "rr.csv"
    rels.write_text(_csv(RR_HEADER, [[lei(77), lei(78), "IS_DIRECTLY_CONSOLIDATED_BY"]]), encoding="utf-8")
    _fails(ws, rels, "gleif-rr", "not in the graph; link dropped")


def test_fifty_megabyte_name(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(_csv(L1_HEADER, [[lei(1), "Fine Company", "DE", ""]]))
        fh.write(f'"{lei(2)}","{"A" * (50 << 20)}","DE",""\n')
        fh.write(f'"{lei(3)}","After Company","FR",""\n')
    report = import_file(ws, path, "gleif-lei")
    assert report.nodes >= 1
    assert any("50" in str(w) or "64 MB" in str(w) or "characters" in str(w) for w in report.warnings)


def test_fifty_megabyte_line_as2org(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("# format:org_id|changed|org_name|country|source\n")
        fh.write(f"BIG-ARIN|20240101|{'B' * (50 << 20)}|US|ARIN\n")
        fh.write("OK-ARIN|20240101|Ok Networks|US|ARIN\n")
    report = import_file(ws, path, "as2org")
    assert report.nodes == 1
    assert [w.where for w in report.warnings] == ["line 2"] and "longer than 8 MB" in report.warnings[0].what


def test_mixed_encodings(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    good = _csv(L1_HEADER, [[lei(1), "Société Générale Test", "FR", ""]]).encode("utf-8")
    latin = f'"{lei(2)}","Soci\xe9t\xe9 Latin","FR",""\n'.encode("latin-1")
    path.write_bytes(good + latin)
    report = import_file(ws, path, "gleif-lei")
    assert report.nodes == 1
    assert [str(w) for w in report.warnings] == ["row 3: Entity.LegalName is not UTF-8 (byte 4); dropped"]


def test_mixed_encodings_as2org(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    path.write_bytes(
        b"# format:org_id|changed|org_name|country|source\n"
        b"A-RIPE|20240101|T\xe9l\xe9com Latin|FR|RIPE\n" + "B-RIPE|20240101|Télécom UTF|FR|RIPE\n".encode()
    )
    report = import_file(ws, path, "as2org")
    assert report.nodes == 1 and "line 2: not UTF-8" in str(report.warnings[0])


@pytest.mark.parametrize("fmt", ["peeringdb", "wikidata"])
def test_deeply_nested_json(ws: Workspace, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"org": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    before = _snapshot(ws)
    with pytest.raises(InputError) as info:
        import_file(ws, path, fmt)
    assert _snapshot(ws) == before
    assert "\n" not in info.value.one_line()


def test_deeply_nested_ftm_line(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "deep.ftm.json"
    path.write_text('{"id": "x", "schema": "Company", "properties": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    _fails(ws, path, "ftm", "line 1")


def test_truncated_peeringdb(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "pdb.json"
    text = (FIXTURES / "peeringdb-sample.json").read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    _fails(ws, path, "peeringdb", "not JSON", "truncated?")


def test_random_bytes_and_empty(ws: Workspace, tmp_path: Path) -> None:
    noise = tmp_path / "noise.bin"
    noise.write_bytes(bytes(range(256)) * 64)
    for fmt in ("gleif-lei", "gleif-rr", "as2org", "peeringdb", "wikidata"):
        before = _snapshot(ws)
        with pytest.raises(InputError):
            import_file(ws, noise, fmt)
        assert _snapshot(ws) == before
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    _fails(ws, empty, "gleif-lei", "missing column(s)")


def test_cli_exit_3_no_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(_csv(L1_HEADER, [["nope", "", "", ""]]), encoding="utf-8")
    code = main(["entity", "import", str(bad), "--format", "gleif-lei", "--workspace", str(tmp_path / "w")])
    _out, err = capsys.readouterr()
    assert code == 3 and "Traceback" not in err and "nothing usable" in err
    assert not (tmp_path / "w").exists()


def test_json_lines_object_of_wrong_type_reported(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "orgs.jsonl"
    path.write_text(
        json.dumps(
            {"type": "Organization", "organizationId": "X-RIPE", "name": "X Networks", "country": "DE"}
        )
        + "\n[1, 2]\n"
        + json.dumps({"type": "Planet", "organizationId": "Y"})
        + "\n",
        encoding="utf-8",
    )
    report = import_file(ws, path, "as2org")
    assert report.nodes == 1
    assert [w.where for w in report.warnings] == ["line 2", "line 3"]


def test_fifty_megabyte_ftm_line_refused(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "huge.ftm.json"
    entity = {"id": "big", "schema": "Company", "properties": {"name": ["B" * (50 << 20)]}}
    path.write_text(json.dumps(entity) + "\n", encoding="utf-8")
    _fails(ws, path, "ftm", "line 1: longer than 8 MB")
