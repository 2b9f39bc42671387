"""Every document derisk writes, produced by the real CLI on the project's fixtures, validates against its
shipped JSON Schema; so do the example site and deal files; `derisk schema` prints and checks them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from derisk.cli import main
from derisk.schemas import ID_BASE, SCHEMAS, as_json_data, file_name, load_schema, problems
from schema_check import assert_file_valid, assert_valid

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
DEALS = sorted((ROOT / "examples" / "deals").glob("*.yaml"))
SITES = sorted((ROOT / "examples" / "sites").glob("*.yaml"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("schema-demo") / "demo"
    assert main(["demo", "--out", str(out), "--data-dir", str(ipdata_dir), "--hours", "3"]) == 0
    return out


@pytest.fixture
def env(ipdata_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DERISK_DATA_DIR", str(ipdata_dir))
    return ipdata_dir


def _json(tmp_path: Path, name: str, *argv: str) -> Path:
    out = tmp_path / f"{name}.json"
    assert main([*argv, "--json", str(out)]) == 0, argv
    return out


def test_every_schema_is_a_valid_2020_12_schema_with_its_id() -> None:
    for name in SCHEMAS:
        schema = load_schema(name)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == ID_BASE + file_name(name)
        assert schema["description"]
    shipped = {p.name for p in (ROOT / "src" / "derisk" / "schemas").glob("*.schema.json")}
    assert shipped == {file_name(n) for n in SCHEMAS}


@pytest.mark.slow
def _notes(path: Path) -> object:
    return json.loads(path.read_text())["run"]["input_notes"]


def test_analysis_of_the_golden_capture_and_a_zeek_log(tmp_path: Path, env: Path) -> None:
    pcap = _json(
        tmp_path, "pcap", "analyze", str(FIXTURES / "pcap" / "golden.pcap"), "-w", str(tmp_path / "a"), "-q"
    )
    assert assert_file_valid(pcap, "analysis")["totals"]["flows"] > 0
    zeek = _json(
        tmp_path,
        "zeek",
        "analyze",
        str(FIXTURES / "zeek" / "pop3" / "conn.log"),
        "-w",
        str(tmp_path / "b"),
        "-q",
    )
    assert_file_valid(zeek, "analysis")
    assert_file_valid(_json(tmp_path, "inputs", "inputs", "-w", str(tmp_path / "b")), "inputs")
    # every reader's notes fit the contract: an EVE log without flow events, an IPFIX file
    alerts = tmp_path / "alerts.eve.json"
    lines = (FIXTURES / "eve" / "nicoaller-alerts.eve.json").read_text().splitlines()
    alerts.write_text(
        "".join(line + "\n" for line in lines if '"event_type":"flow"' not in line.replace(" ", ""))
    )
    for name, source in (
        ("eve", alerts),
        ("ipfix", FIXTURES / "netflow" / "ipfix" / "softflowd-golden.ipfix"),
    ):
        doc = assert_file_valid(
            _json(tmp_path, name, "analyze", str(source), "-w", str(tmp_path / name), "-q")
        )
        assert doc["run"]["input_notes"], name
    assert "lower bounds" in str(_notes(tmp_path / "eve.json"))
    assert_file_valid(_json(tmp_path, "alerts", "alerts", "-w", str(tmp_path / "a")), "alerts")


@pytest.mark.slow
def test_the_demo_documents_and_the_workspace_commands(
    demo: Path, tmp_path: Path, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    analysis = assert_file_valid(demo / "analysis.json")
    assert analysis["alerts"], "the demo raises alerts, so their items are validated too"
    assert_file_valid(demo / "reduce.json")
    assert_file_valid(demo / "screening.json")
    ws = tmp_path / "ws"
    shutil.copytree(demo / "workspace", ws)
    alerts = assert_file_valid(_json(tmp_path, "alerts", "alerts", "-w", str(ws)))
    assert {a["kind"] for a in alerts["alerts"]} >= {"beacon"}
    assert_file_valid(_json(tmp_path, "inputs", "inputs", "-w", str(ws)))
    assert (
        main(
            [
                "evidence",
                "add",
                "--entity",
                "Hikvision",
                "--url",
                "https://example.org/report",
                "--title",
                "A report",
                "--publisher",
                "Example",
                "--date",
                "2024-01-02",
                "--quote",
                "a quoted passage",
                "-w",
                str(ws),
                "--json",
                str(tmp_path / "added.json"),
            ]
        )
        == 0
    )
    added = assert_file_valid(tmp_path / "added.json", "evidence")
    evidence = assert_file_valid(_json(tmp_path, "evidence", "evidence", "list", "-w", str(ws)))
    assert added["evidence"][0]["id"] in {e["id"] for e in evidence["evidence"]}
    imported = assert_file_valid(
        _json(
            tmp_path,
            "import",
            "entity",
            "import",
            str(FIXTURES / "know" / "gleif-lei2-sample.csv"),
            "-w",
            str(ws),
        )
    )
    assert imported["entities"] > 0 and imported["format"].startswith("gleif")
    entity = assert_file_valid(_json(tmp_path, "entity", "entity", "show", "Hikvision", "-w", str(ws)))
    assert entity["entity"]["id"] == "hikvision"
    # an entity whose controller is unknown: "controller" is null
    lone = assert_file_valid(_json(tmp_path, "lone", "entity", "show", "wangtouzhongwen", "-w", str(ws)))
    assert lone["controller"] is None
    assert_file_valid(_json(tmp_path, "entities", "entity", "list", "-w", str(ws)))
    site = _json(tmp_path, "reduce-site", "reduce", str(SITES[0]), "--workspace", str(ws))
    assert_file_valid(site)
    assert_file_valid(_json(tmp_path, "data", "data", "status"))
    monkeypatch.setenv("DERISK_TEST_PW", "a long enough password")
    assert (
        main(["users", "add", "ana", "--role", "analyst", "--password-env", "DERISK_TEST_PW", "-w", str(ws)])
        == 0
    )
    users = assert_file_valid(_json(tmp_path, "users", "users", "list", "-w", str(ws)))
    assert [(u["name"], u["role"]) for u in users["users"]] == [("ana", "analyst")]
    assert "hash" not in json.dumps(users)
    report = assert_file_valid(_json(tmp_path, "report", "report", "-w", str(ws)), "analysis")
    assert main(["export", "parquet", str(tmp_path / "pq"), "-w", str(ws)]) == 0
    manifest = assert_file_valid(tmp_path / "pq" / "manifest.json", "parquet")
    assert manifest["rows"]["flows"] == analysis["totals"]["flows"]
    assert report["totals"] == analysis["totals"], "the report's document is the workspace's analysis"
    assert_valid(as_json_data(yaml.safe_load((demo / "site.yaml").read_text(encoding="utf-8"))), "site")


def test_data_update_document(tmp_path: Path) -> None:
    source = FIXTURES / "ip-location-db"
    args = ["data", "update", "--from", str(source), "--unverified", "--data-dir", str(tmp_path / "d")]
    doc = assert_file_valid(_json(tmp_path, "update", *args), "data")
    assert doc["schema"] == "derisk.data/1"


def test_reduce_trade_sample_and_a_site_without_traffic(tmp_path: Path) -> None:
    assert_file_valid(_json(tmp_path, "trade", "reduce", "--trade-sample"))
    site = assert_file_valid(_json(tmp_path, "site", "reduce", str(SITES[0])))
    assert site["traffic"] == {"available": False}


@pytest.mark.parametrize("deal", DEALS, ids=[d.stem for d in DEALS])
def test_each_example_deal_and_its_screening(deal: Path, tmp_path: Path) -> None:
    assert_valid(as_json_data(yaml.safe_load(deal.read_text(encoding="utf-8"))), "deal")
    assert_file_valid(_json(tmp_path, "screening", "screen", str(deal), "--today", "2025-03-01"))


@pytest.mark.parametrize("site", SITES, ids=[s.stem for s in SITES])
def test_each_example_site_file(site: Path) -> None:
    assert_valid(as_json_data(yaml.safe_load(site.read_text(encoding="utf-8"))), "site")


def _analysis(demo: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((demo / "analysis.json").read_text(encoding="utf-8"))
    return doc


@pytest.mark.slow
def test_the_schemas_reject_what_the_contract_forbids(demo: Path) -> None:
    doc = _analysis(demo)
    assert problems(doc, "analysis") == []
    wrong = _analysis(demo)
    wrong["totals"]["flows"] = "many"
    assert any(p.startswith("totals/flows") for p in problems(wrong, "analysis"))
    missing = _analysis(demo)
    del missing["destinations"]
    assert any("destinations" in p for p in problems(missing, "analysis"))
    bad = _analysis(demo)
    bad["alerts"][0]["severity"] = "apocalyptic"
    assert problems(bad, "analysis")
    stamp = _analysis(demo)
    stamp["generated_at"] = "yesterday"  # format checks are on
    assert any(p.startswith("generated_at") for p in problems(stamp, "analysis"))
    added = _analysis(demo)
    added["a_key_a_later_version_adds"] = {"x": 1}  # documents may gain keys
    assert problems(added, "analysis") == []
    deal = as_json_data(yaml.safe_load(DEALS[0].read_text(encoding="utf-8")))
    deal["stake"]["after_pct"] = 150
    deal["surprise"] = True
    found = problems(deal, "deal")
    assert any(p.startswith("stake/after_pct") for p in found)
    assert any("surprise" in p for p in found)


def test_schema_command_lists_prints_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    listed = capsys.readouterr().out
    assert all(ID_BASE + file_name(n) in listed for n in SCHEMAS)
    assert main(["schema", "derisk.analysis/1"]) == 0
    assert json.loads(capsys.readouterr().out) == load_schema("analysis")
    assert main(["schema", "deal", "--check", str(DEALS[0])]) == 0
    capsys.readouterr()
    assert main(["schema", "site", "--check", str(DEALS[0])]) == 3
    assert "does not match derisk.site-1.schema.json" in capsys.readouterr().err
    assert main(["schema", "no-such"]) == 7
    assert "no schema named" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\x01\xff\xfe", b"{" * 100_000, b"a: [", b"\xff\xfe not utf-8", b"- &a [*a]"],
    ids=["empty", "random", "deep", "truncated", "not-utf8", "alias"],
)
def test_schema_check_on_hostile_files_is_one_line(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    for suffix in (".json", ".yaml"):
        path = tmp_path / f"f{suffix}"
        path.write_bytes(content)
        code = main(["schema", "site", "--check", str(path)])
        err = capsys.readouterr().err
        assert code == 3, (suffix, err)
        assert err.count("\n") == 1 and "Traceback" not in err


#: Documents that carry a derisk.*/1 name but are data derisk ships and reads, not documents it writes.
NOT_WRITTEN = {
    "mitigations": "the mitigation catalogue shipped in src/derisk/reduce (checked when loaded)",
    "server-ports": "the server-port table shipped in src/derisk/data (checked when loaded, derisk.ingest.initiator)",
}


def test_every_document_name_in_the_code_has_a_schema() -> None:
    """A new derisk.NAME/1 document cannot be added without its schema (or a reason it has none)."""
    import re

    names: set[str] = set()
    for path in (ROOT / "src" / "derisk").rglob("*.py"):
        names |= set(re.findall(r'"derisk\.([a-z_-]+)/1"', path.read_text(encoding="utf-8")))
    assert names - set(NOT_WRITTEN) == set(SCHEMAS) - {"site"}


def test_deal_schema_sectors_are_the_controlled_vocabulary() -> None:
    shipped = yaml.safe_load((ROOT / "src" / "derisk" / "data" / "sectors.yaml").read_text(encoding="utf-8"))
    enum = load_schema("deal")["properties"]["target"]["properties"]["sectors"]["items"]["enum"]
    assert enum == [s["id"] for s in shipped["sectors"]]


def test_watch_status_file(tmp_path: Path, env: Path) -> None:
    """`derisk watch --status-file` on a followed Zeek folder writes a valid derisk.watch-status/1."""
    import subprocess
    import sys

    logs = tmp_path / "logs"
    shutil.copytree(FIXTURES / "zeek" / "pop3", logs)
    status = tmp_path / "status.json"
    argv = [sys.executable, "-m", "derisk", "watch", "--zeek-dir", str(logs), "-w", str(tmp_path / "ws")]
    argv += ["--exit-when-idle", "1", "--status-file", str(status), "-q"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = assert_file_valid(status, "watch-status")
    assert doc["flows"] > 0 and doc["batches"] >= 1
