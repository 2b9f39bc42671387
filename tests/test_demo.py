"""`derisk demo` end to end on the IP data fixture: the README's main job must work offline too."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from derisk.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, ipdata_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("demo") / "derisk-demo"
    assert main(["demo", "--out", str(out), "--data-dir", str(ipdata_dir), "--hours", "3"]) == 0
    return out


def test_demo_writes_every_artefact(demo: Path) -> None:
    for name in (
        "site.yaml",
        "cargo-hub.pcapng",
        "analysis.json",
        "report.html",
        "reduce.html",
        "reduce.json",
        "workspace/derisk.duckdb",
    ):
        assert (demo / name).exists(), name


def test_demo_tells_the_liege_story(demo: Path) -> None:
    doc = json.loads((demo / "analysis.json").read_text(encoding="utf-8"))
    wms = [d for d in doc["destinations"] if "Warehouse management" in d["systems"]]
    frankfurt = [d for d in wms if d["geo_country"] == "DE" and d["jurisdiction"] == "CN"]
    assert frankfurt, "the warehouse system's Alibaba Cloud endpoints in Germany must be controlled from CN"
    assert all(d["controller"] == "Alibaba Group Holding Limited" for d in frankfurt)
    cn = next(e for e in doc["exposure"] if e["jurisdiction"] == "CN")
    assert any(law["law"] == "National Intelligence Law" and law["article"] == "Art. 7" for law in cn["laws"])
    beacons = [a for a in doc["alerts"] if a["kind"] == "beacon" and a["system"] == "Warehouse management"]
    assert beacons, "the warehouse software's 60-second check-in must be an alert"
    assert beacons[0]["controller"] == "Alibaba Group Holding Limited"
    assert beacons[0]["jurisdiction"] == "CN"


def test_demo_refuses_to_overwrite_a_foreign_folder(tmp_path: Path, ipdata_dir: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    assert main(["demo", "--out", str(precious), "--data-dir", str(ipdata_dir)]) == 2
    assert (precious / "thesis.txt").read_text() == "do not delete"


def test_demo_without_ip_data_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "d"), "--data-dir", str(tmp_path / "none")]) == 5
    assert "derisk data update" in capsys.readouterr().err


def test_demo_reduce_shows_china_dependency_and_a_plan_that_lowers_it(demo: Path) -> None:
    doc = json.loads((demo / "reduce.json").read_text(encoding="utf-8"))
    assert doc["schema"] == "derisk.reduce/1"
    funcs = {f["name"]: f for f in doc["measures"]["functions"]}
    assert (
        "CN" in funcs["parcel sorting"]["depends_on"] and "CN" in funcs["customs declarations"]["depends_on"]
    )
    first = doc["plan"]["steps"][0]
    assert first["after"]["edge_shares"].get("CN", 0) < first["before"]["edge_shares"]["CN"]


def test_demo_screening_requires_belgian_notification(demo: Path) -> None:
    doc = json.loads((demo / "screening.json").read_text(encoding="utf-8"))
    be = next(r for r in doc["regimes"] if r["regime"] == "BE")
    assert be["outcome"] == "required"
    assert "not legal advice" in doc["disclaimer"]


def test_demo_dns_tunnel_names_the_office_system(demo: Path) -> None:
    doc = json.loads((demo / "analysis.json").read_text(encoding="utf-8"))
    tunnels = [a for a in doc["alerts"] if a["kind"] == "dns-tunnel"]
    assert tunnels and tunnels[0]["system"] == "Office"


def test_demo_report_shows_the_seed_article_as_public_reporting(demo: Path) -> None:
    doc = json.loads((demo / "analysis.json").read_text(encoding="utf-8"))
    (article,) = [ev for ev in doc["evidence"] if "cainiao-network" in ev["entities"]]
    assert article["publisher"] and article["date"] == "2023-10-06" and article["language"] == "deu"
    html = (demo / "report.html").read_text(encoding="utf-8")
    assert "Public reporting" in html and article["url"] in html


def test_demo_quiet_json_to_stdout_is_the_analysis_document(
    tmp_path: Path, ipdata_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`-q --json -`: standard output carries the document and nothing else; the files are still written."""
    out = tmp_path / "quiet-demo"
    args = ["demo", "--out", str(out), "--data-dir", str(ipdata_dir), "--hours", "0.25", "-q", "--json", "-"]
    assert main(args) == 0
    captured = capfd.readouterr()
    doc = json.loads(captured.out)
    assert doc["schema"] == "derisk.analysis/1"
    assert doc == json.loads((out / "analysis.json").read_text(encoding="utf-8"))
    assert captured.err == ""


def test_demo_report_has_its_pictures(demo: Path) -> None:
    """The report (and so its PDF) carries the three pictures, each with a text alternative: the
    system → controller → jurisdiction bands, the time chart with the alerts marked, and where servers
    stand versus who controls them, where the demo's Alibaba Cloud servers in Germany show as controlled
    from China."""
    html = (demo / "report.html").read_text(encoding="utf-8")
    labels = re.findall(r'<svg class="(?:diagram|trend)"[^>]*role="img" aria-label="([^"]+)"', html)
    assert labels == [
        "From system to controller to jurisdiction",
        "Traffic over time",
        "Where servers stand versus who controls them",
    ]
    assert re.search(r'<g class="mark sev-(?:critical|high|medium|low)">', html), (
        "alerts marked on the time axis"
    )
    assert re.search(r'stroke-dasharray="6 3"><title>DE → CN: [^<]+\(stands in one country', html)


def test_the_showcase_carries_no_hostile_test_strings(demo: Path) -> None:
    """The hostile strings that exercise escaping belong to the tests' scenario, not to the showcase."""
    for name in ("analysis.json", "report.html"):
        text = (demo / name).read_text(encoding="utf-8")
        assert "&lt;script" not in text and "<script>alert" not in text, name
        assert "alert(" not in text and "\\u001b" not in text and "x1b[2J" not in text, name


def test_terminal_summary_wraps_alert_explanations_instead_of_cutting_them(demo: Path) -> None:
    import io

    from rich.console import Console

    from derisk.report.terminal import render_analysis

    doc = json.loads((demo / "analysis.json").read_text(encoding="utf-8"))
    longest = max(doc["alerts"][:10], key=lambda a: len(a["sentence"]))
    assert len(longest["sentence"]) > 90
    buffer = io.StringIO()
    Console(file=buffer, width=120, highlight=False, soft_wrap=False).print(render_analysis(doc, top=10))
    flat = "".join(buffer.getvalue().split())
    assert "".join(longest["sentence"].split()) in flat, "the whole sentence, wrapped below the table"
    assert "…[truncated]" not in buffer.getvalue().split("Alerts (", 1)[1]
