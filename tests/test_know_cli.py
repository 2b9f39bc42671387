"""The ``derisk entity`` commands, run through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from derisk.cli import main


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in an empty directory, so the default ./derisk-workspace does not exist."""
    monkeypatch.chdir(tmp_path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_cainiao_names_alibaba_with_path_and_chinese_laws(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = _run(capsys, "entity", "show", "Cainiao", "--json", "-")
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    assert doc["schema"] == "derisk.entity/1"
    assert doc["entity"]["name"] == "Cainiao Smart Logistics Network Limited"
    assert doc["entity"]["jurisdiction"] == "CN"
    assert doc["controller"] == {
        "id": "alibaba-group-holding",
        "name": "Alibaba Group Holding Limited",
        "jurisdiction": "CN",
    }
    assert doc["chain"] == [
        "Cainiao Smart Logistics Network Limited",
        "Alibaba Group Holding Limited",
        "control exercised from CN",
    ]
    assert doc["path"][0]["to"] == "Alibaba Group Holding Limited" and doc["path"][0]["confidence"] in "VSU"
    assert doc["path"][0]["source"]["url"].startswith("https://")
    laws = {(law["law"], law["article"]): law for law in doc["laws"]}
    assert laws[("National Intelligence Law", "Art. 7")]["confidence"] == "V"
    assert laws[("Data Security Law", "Art. 35")]["jurisdiction"] == "CN"
    assert all(law["source"] and law["confidence"] in ("V", "S", "U") for law in doc["laws"])
    assert any("[U]" in (law["article"] or "") for law in doc["laws"])
    factors = {f["factor"]: f for f in doc["risk_factors"]}
    assert set(factors) == {"government-link", "legislation", "ownership", "pressure", "supply-continuity"}
    assert factors["legislation"]["finding"] == "present"
    assert "not legal advice" in doc["disclaimer"]
    assert "Alibaba Group Holding Limited" in err  # the terminal view goes to stderr when JSON is on stdout


def test_show_liege_hub_by_accentless_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "hub.json"
    code, _, err = _run(
        capsys,
        "entity",
        "show",
        "cainiao liege ehub",
        "--json",
        str(out_file),
    )
    assert code == 0, err
    doc = json.loads(out_file.read_text(encoding="utf-8"))
    assert doc["entity"]["name"] == "Cainiao Liège eHub"
    assert [step["to"] for step in doc["path"]] == [
        "Cainiao Smart Logistics Network Limited",
        "Alibaba Group Holding Limited",
    ]


def test_ambiguous_name_lists_candidates_exit_7(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = _run(capsys, "entity", "show", "China")
    assert code == 7 and out == ""
    assert "ambiguous" in err and "China" in err and err.count("\n") == 1


def test_unknown_name_exit_7(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "entity", "show", "zzqqxx")
    assert code == 7 and "no entity matches" in err


def test_import_list_show_export_through_the_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    evil = "Evil\x1b[31m Cloud\u202e Ltd"
    lines = [
        {
            "id": "evil",
            "schema": "Company",
            "properties": {
                "name": [evil],
                "jurisdiction": ["ky"],
                "mainCountry": ["cn"],
                "keywords": ["AS64511"],
            },
        },
        {
            "id": "evil-own",
            "schema": "Ownership",
            "properties": {"owner": ["alibaba-group-holding"], "asset": ["evil"], "percentage": ["75"]},
        },
    ]
    src = tmp_path / "evil.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    code, out, err = _run(capsys, "entity", "import", str(src), "--workspace", str(ws))
    assert code == 0, err
    assert "imported 2 entities" in out
    code, out, err = _run(capsys, "entity", "list", "--origin", "imported", "--workspace", str(ws))
    assert code == 0 and "\x1b" not in out and "\u202e" not in out and "\\x1b" in out
    code, out, err = _run(capsys, "entity", "list", "--json", "-", "--workspace", str(ws))
    rows = {row["id"]: row for row in json.loads(out)["entities"]}
    assert (
        rows["evil"]["controller"] == "Alibaba Group Holding Limited" and rows["evil"]["jurisdiction"] == "CN"
    )
    assert rows["proximus"]["origin"] == "curated"
    code, out, err = _run(capsys, "entity", "show", "evil", "--workspace", str(ws))
    assert code == 0 and "\x1b" not in out and "Alibaba Group Holding Limited" in out
    dest = tmp_path / "export.jsonl"
    code, _, err = _run(capsys, "entity", "export", "--out", str(dest), "--workspace", str(ws))
    assert code == 0, err
    exported = [json.loads(line) for line in dest.read_text(encoding="utf-8").splitlines()]
    assert next(e for e in exported if e["id"] == "evil") == lines[0]


def test_bad_import_exit_3_and_no_workspace_left(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = tmp_path / "bad.jsonl"
    src.write_text(
        '{"id": "x", "schema": "Company", "properties": {"colour": ["red"]}}\nnot json\n', encoding="utf-8"
    )
    ws = tmp_path / "fresh-ws"
    code, out, err = _run(capsys, "entity", "import", str(src), "--workspace", str(ws))
    assert code == 3 and out == ""
    assert "line 1: unknown property 'colour'" in err and "line 2: not JSON" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not ws.exists()


def test_explicit_missing_workspace_is_a_store_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "entity", "export", "--workspace", str(tmp_path / "nope"))
    assert code == 6 and "no workspace here" in err


def test_docs_list_exactly_the_json_keys(capsys: pytest.CaptureFixture[str]) -> None:
    import re

    from derisk.cli.know import entity_document
    from derisk.know.curated import load_curated

    text = (Path(__file__).parent.parent / "docs" / "know.md").read_text(encoding="utf-8")
    section = text.split("## JSON: `derisk.entity/1`", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE))
    assert documented == set(entity_document(load_curated(), "proximus"))
