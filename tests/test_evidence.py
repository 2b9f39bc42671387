"""Public reporting as evidence: ``derisk evidence add/list``, in ``entity show`` and on entity pages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from derisk.cli import main
from derisk.errors import InputError
from derisk.know import evidence
from derisk.store.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "know"
URL = "https://www.klamm.de/news/spionagevorwuerfe-belasten-alibaba-europaeischer-hub-im-zentrum-der-kontroverse-62N20231006150014.html"
QUOTE = "Dabei gibt es Bedenken hinsichtlich einer von Cainiao, dem Logistikarm von Alibaba, eingesetzten Software."


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _add(ws: Path, *extra: str) -> list[str]:
    return [
        "evidence", "add", "--url", URL, "--title", "Spionagevorwürfe belasten Alibaba",
        "--publisher", "Eulerpool News", "--date", "2023-10-06", "--language", "de",
        "--quote", QUOTE, "--workspace", str(ws), *extra,
    ]  # fmt: skip


def test_add_by_name_then_list_and_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ws = tmp_path / "ws"
    code, out, err = _run(capsys, *_add(ws, "--entity", "Cainiao Smart Logistics Network"))
    assert code == 0, err
    assert "attached to Cainiao" in out
    code, out, _ = _run(capsys, "evidence", "list", "--workspace", str(ws), "--json", "-")
    listed = json.loads(out)
    assert listed["schema"] == "derisk.evidence/1"
    (item,) = listed["evidence"]
    assert item["url"] == URL and item["quote"] == QUOTE and item["entities"] == ["cainiao-network"]
    code, out, _ = _run(capsys, "entity", "show", "cainiao-network", "--workspace", str(ws), "--json", "-")
    doc = json.loads(out)
    assert [e["publisher"] for e in doc["evidence"]] == ["Eulerpool News"]
    assert (
        doc["evidence"][0]["date"] == "2023-10-06" and doc["evidence"][0]["language"] == "deu"
    )  # FtM cleans to ISO 639-3
    # Another entity carries none.
    code, out, _ = _run(
        capsys, "entity", "show", "alibaba-group-holding", "--workspace", str(ws), "--json", "-"
    )
    assert json.loads(out)["evidence"] == []
    code, out, _ = _run(capsys, "entity", "show", "cainiao-network", "--workspace", str(ws))
    assert "reported: Eulerpool News, 2023-10-06" in out and "Logistikarm" in out


def test_same_article_again_replaces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert _run(capsys, *_add(ws, "--entity", "cainiao-network"))[0] == 0
    assert _run(capsys, *_add(ws, "--entity", "cainiao-network", "--entity", "cainiao-liege-ehub"))[0] == 0
    with Workspace.open(ws, create=False, read_only=True) as opened:
        items = evidence.load(opened)
    assert len(items) == 1 and sorted(items[0].entity_ids) == ["cainiao-liege-ehub", "cainiao-network"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--date", "06.10.2023"], "--date: must be YYYY-MM-DD"),
        (["--date", "2023-02-30"], "not a calendar date"),
        (["--url", "javascript:alert(1)"], "--url: must be an http(s) URL"),
        (["--language", "Deutsch"], "--language"),
        (["--quote", ""], "--quote"),
        (["--title", "two\nlines"], "--title"),
    ],
)
def test_bad_citation_exit_3_nothing_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    ws = tmp_path / "ws"
    argv = _add(ws, "--entity", "cainiao-network")
    for flag, value in zip(args[::2], args[1::2], strict=True):
        argv[argv.index(flag) + 1] = value
    code, _, err = _run(capsys, *argv)
    assert code == 3 and expected in err and "Traceback" not in err
    assert not ws.exists()


def test_unknown_entity_exit_7(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, *_add(tmp_path / "ws", "--entity", "Zzyzx Nonexistent Holdings"))
    assert code == 7 and "no single entity matches" in err


def test_demo_data_cites_the_seed_article() -> None:
    from importlib.resources import files

    (item,) = evidence.from_yaml(files("derisk.data").joinpath("evidence", "demo.yaml").read_text("utf-8"))
    assert item.publisher == "Eulerpool News" and item.date == "2023-10-06" and item.language == "de"
    assert item.url.startswith("https://") and "Cainiao" in item.quote
    assert item.entity_ids == ("cainiao-network", "cainiao-liege-ehub")


def test_from_yaml_checks_each_entry() -> None:
    bad = "evidence:\n  - {url: ftp://x, title: T, publisher: P, date: '2023-10-06', quote: Q}\n"
    with pytest.raises(InputError, match="--url"):
        evidence.from_yaml(bad)


def test_entity_page_shows_evidence_sanctions_and_imported_entities(tmp_path: Path) -> None:
    from derisk.know.importing import import_file
    from derisk.web.app import create_app
    from derisk.web.auth import UserStore
    from web_helpers import PASSWORD, TestClient, csrf_of

    ws_path = tmp_path / "ws"
    hostile = 'Zitat <script>alert(1)</script> "Logistikarm"'
    with Workspace.open(ws_path) as ws:
        import_file(ws, FIXTURES / "gleif-lei2-sample.csv")
        import_file(ws, FIXTURES / "gleif-rr-sample.csv")
        import_file(ws, FIXTURES / "opensanctions-sample.ftm.json")
        evidence.add(
            ws,
            evidence.Evidence(
                "", URL, "Titel", "Eulerpool News", "2023-10-06", "de", hostile, ("cainiao-network",)
            ),
        )
    UserStore(ws_path).add("ada", PASSWORD, "admin")
    with TestClient(create_app(ws_path, warm=False), base_url="http://127.0.0.1") as client:
        page = client.get("/login")
        client.post("/login", data={"csrf": csrf_of(page.text), "username": "ada", "password": PASSWORD})
        html = client.get("/entities/cainiao-network").text
        assert "Public reporting" in html and "Eulerpool News" in html and URL in html
        assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
        gleif = client.get("/entities/lei-300300UVWXYZABCD0418")
        assert gleif.status_code == 200 and "Example Europe" in gleif.text
        sanctioned = client.get("/entities/NK-sample-1").text
        assert "CMIC-EO13959" in sanctioned and "us_ofac_sdn" in sanctioned
        found = client.get("/search", params={"q": "Port Sample Terminal"}).text
        assert "/entities/lei-984500SAMPLEPORT0129" in found


def test_demo_attaches_the_seed_article_to_cainiao(
    tmp_path: Path, ipdata_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--data-dir", str(ipdata_dir), "--hours", "0.25"]) == 0
    capsys.readouterr()
    code, text, _ = _run(
        capsys,
        "entity",
        "show",
        "Cainiao Smart Logistics Network",
        "--workspace",
        str(out / "workspace"),
        "--json",
        "-",
    )
    assert code == 0
    (item,) = json.loads(text)["evidence"]
    assert item["publisher"] == "Eulerpool News" and item["date"] == "2023-10-06"
    assert "Cainiao, dem Logistikarm von Alibaba" in item["quote"] and item["url"].startswith("https://")
