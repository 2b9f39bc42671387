"""``derisk reduce``: the derisk.reduce/1 JSON contract, bad input, escaping, and traffic from a real workspace."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from derisk.cli import main
from derisk.enrich.ipdata import load_ipdata
from derisk.gen.model import Conversation, Exchange, TlsHello
from derisk.gen.packets import write_capture
from derisk.reduce.register import demo_functions

EXAMPLE = Path(__file__).parent.parent / "examples" / "sites" / "liege-hub.yaml"
DOCS = Path(__file__).parent.parent / "docs" / "reduce.md"
T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
SITE: dict[str, Any] = {
    "site": "Test cargo hub",
    "internal_networks": ["10.0.0.0/8"],
    "systems": [
        {
            "name": "wms",
            "vendor": "Cainiao Smart Logistics Network",
            "hosting": "Alibaba Cloud",
            "hosts": ["10.1.0.0/24"],
        },
        {"name": "customs-gateway", "vendor": "Descartes Systems Group", "hosts": ["10.2.0.0/24"]},
        {"name": "airline-cargo", "vendor": "Champ Cargosystems", "hosts": ["10.3.0.0/24"]},
        {"name": "cctv", "vendor": "Hikvision", "hardware": "Hikvision", "hosts": ["10.4.0.0/24"]},
        {"name": "office", "vendor": "Microsoft", "hosting": "Microsoft", "hosts": ["10.9.0.0/24"]},
    ],
    "functions": demo_functions(),
}


def reduce_json(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "reduce.json"
    assert main(["reduce", *args, "--json", str(out)]) == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


def write_site(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_site_document_contract(tmp_path: Path) -> None:
    doc = reduce_json(tmp_path, str(EXAMPLE), "--html", str(tmp_path / "r.html"))
    assert doc["schema"] == "derisk.reduce/1" and doc["mode"] == "site"
    assert "not legal advice" in doc["disclaimer"]
    for key in ("shares", "hhi", "measures", "register", "traffic", "findings", "plan", "laws"):
        assert key in doc, key
    assert set(doc["shares"]) == {"dependency", "exposure", "edges"}
    assert doc["traffic"] == {"available": False}
    # sorting and customs depend on the China-controlled vendor and cloud of the wms
    funcs = {f["name"]: f for f in doc["measures"]["functions"]}
    assert (
        "CN" in funcs["parcel sorting"]["depends_on"] and "CN" in funcs["customs declarations"]["depends_on"]
    )
    assert doc["shares"]["dependency"]["CN"] == pytest.approx(0.6)  # sorting, customs, video of 5
    deps = {(d["system"], d["role"]): d["suppliers"][0] for d in doc["register"]["dependencies"]}
    assert deps[("wms", "hosting")]["controller"] == "Alibaba Group Holding Limited"
    assert deps[("wms", "hosting")]["jurisdiction"] == "CN"
    kinds = {f["kind"] for f in doc["findings"]}
    assert {"third-country-dependency", "single-point-of-dependency", "unknown-supplier"} <= kinds
    # the plan's first step lowers the CN edge share and the HHI
    first = doc["plan"]["steps"][0]
    assert first["target"] == {"system": "wms", "roles": ["hosting"]}
    assert first["after"]["edge_shares"]["CN"] < first["before"]["edge_shares"]["CN"]
    assert first["after"]["hhi"] < first["before"]["hhi"]
    assert doc["laws"]["CN"][0]["citation"]
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    bars = html.split('<svg class="plan-bars"', 1)[1].split("</svg>", 1)[0]
    steps = len(doc["plan"]["steps"])
    assert bars.count("<rect ") == 2 * 4 * steps, "before and after, four measures, every step"
    first = doc["plan"]["steps"][0]
    assert f"Risk score before: {round(first['before']['risk_score'], 3)}" in bars
    assert "<script" not in html and "http://" not in html.replace("http-equiv", "")


def test_trade_document_contract(tmp_path: Path) -> None:
    doc = reduce_json(tmp_path, "--trade-sample", "--html", str(tmp_path / "t.html"))
    assert doc["schema"] == "derisk.reduce/1" and doc["mode"] == "trade"
    assert doc["plan"] is None and doc["hhi"] is None
    trade = doc["trade"]
    assert trade["illustrative"] is True
    assert trade["dependent"] == ["280530", "282200", "294110", "850760"]
    assert trade["parameters"]["demand_share_confidence"] == "U"
    assert doc["shares"]["dependent_imports_by_supplier"]["CN"] == pytest.approx(0.881188)
    assert "Illustrative data" in (tmp_path / "t.html").read_text(encoding="utf-8")


def test_docs_name_every_key_of_the_contract(tmp_path: Path) -> None:
    text = DOCS.read_text(encoding="utf-8")
    site = reduce_json(tmp_path, str(EXAMPLE))
    trade = reduce_json(tmp_path, "--trade-sample")
    keys = set(site) | set(trade) | set(site["measures"]) | set(trade["trade"]) | set(site["plan"])
    keys |= set(site["plan"]["steps"][0]) | set(trade["trade"]["products"][0]) | set(site["findings"][0])
    missing = sorted(k for k in keys if f"`{k}`" not in text)
    assert missing == []
    kinds = {f["kind"] for f in site["findings"]} | {f["kind"] for f in trade["findings"]}
    assert sorted(k for k in kinds if f"`{k}`" not in text) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 2, "give exactly one of SITE_FILE, --trade FILE or --trade-sample"),
        (["site.yaml", "--trade-sample"], 2, "give exactly one of"),
        (["--trade-sample", "--workspace", "ws"], 2, "--workspace is for SITE_FILE"),
        (["missing.yaml"], 3, "missing.yaml: no such file"),
        (["site.yaml", "--workspace", "nows"], 6, "no workspace here"),
        (["site.yaml", "--year", "2020"], 2, "need --trade"),
    ],
)
def test_usage_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    code: int,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "site.yaml").write_text("{}", encoding="utf-8")
    assert main(["reduce", *args]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bad_register_and_bad_trade_data_exit_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = write_site(tmp_path, {**SITE, "functions": [{"name": "sorting", "systems": ["wms", "sorter"]}]})
    assert main(["reduce", str(site)]) == 4
    assert "unknown system 'sorter'" in capsys.readouterr().err
    trade = tmp_path / "baci.csv"
    trade.write_text("t,i,j,k,v,q\n2023,156,276,850760,-1,\n", encoding="utf-8")
    countries = Path(
        str(EXAMPLE.parent.parent.parent / "src/derisk/data/trade-sample/country_codes_sample.csv")
    )
    assert main(["reduce", "--trade", str(trade)]) == 2  # no country table beside it
    assert "no country table" in capsys.readouterr().err
    out = tmp_path / "x.json"
    assert main(["reduce", "--trade", str(trade), "--countries", str(countries), "--json", str(out)]) == 3
    err = capsys.readouterr().err
    assert "negative value v (line 2)" in err and not out.exists()


def test_hostile_names_are_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hostile = "<script>alert(1)</script>\x1b[31m"
    doc = {**SITE, "functions": [{"name": hostile, "systems": ["wms"]}]}
    doc["systems"] = [{**SITE["systems"][0], "vendor": "Evil <b>Corp</b>\x1b]0;x\x07"}]
    site = write_site(tmp_path, doc)
    html_path = tmp_path / "r.html"
    assert main(["reduce", str(site), "--html", str(html_path)]) == 0
    html = html_path.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Evil &lt;b&gt;Corp&lt;/b&gt;" in html
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b" in out


def test_traffic_from_a_workspace_confirms_the_cloud_and_flags_undeclared(
    tmp_path: Path, data_env: Path
) -> None:
    data = load_ipdata(data_env)
    alibaba_de = data.sample_addresses(134963, "DE", 1)[0]
    google = data.sample_addresses(15169, None, 1)[0]
    convs = [
        Conversation(
            "tcp",
            "10.1.0.5",
            alibaba_de,
            T0,
            40000,
            443,
            (Exchange("c2s", 50_000), Exchange("s2c", 600)),
            tls=TlsHello("oss-eu-central-1.aliyuncs.com"),
        ),
        Conversation(
            "tcp",
            "10.9.0.7",
            google,
            T0 + dt.timedelta(seconds=2),
            40002,
            443,
            (Exchange("c2s", 900), Exchange("s2c", 12_000)),
            tls=TlsHello("www.google.com"),
        ),
    ]
    capture = tmp_path / "c.pcap"
    ledger = write_capture(convs, capture)
    site = write_site(tmp_path, SITE)
    ws = tmp_path / "ws"
    assert main(["analyze", str(capture), "--site", str(site), "--workspace", str(ws), "-q"]) == 0
    doc = reduce_json(tmp_path, str(site), "--workspace", str(ws))
    traffic = doc["traffic"]
    assert traffic["available"] is True
    confirmed = {(c["system"], c["role"]): c for c in traffic["confirmed"]}
    # the wms's vendor and cloud share one controller, so the same flows confirm both
    wms_bytes = sum(e.bytes_c2s for e in ledger.entries if e.server_ip == alibaba_de)
    assert confirmed[("wms", "hosting")]["bytes_out"] == wms_bytes
    assert confirmed[("wms", "hosting")]["controller"] == "Alibaba Group Holding Limited"
    assert confirmed[("wms", "vendor")]["jurisdiction"] == "CN"
    assert traffic["bytes_out_by_jurisdiction"]["CN"] == wms_bytes
    findings = {(f["kind"], f["subject"]) for f in doc["findings"]}
    undeclared = [f for f in doc["findings"] if f["kind"] == "undeclared-traffic"]
    assert [f["evidence"]["system"] for f in undeclared] == ["office"]
    assert "Google LLC (controlled by Alphabet Inc., US)" in undeclared[0]["sentence"]
    assert ("declared-without-traffic", "office/vendor") in findings
    assert ("system-without-traffic", "cctv") in findings


def test_json_to_stdout_keeps_the_summary_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reduce", "--trade-sample", "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["schema"] == "derisk.reduce/1"
    assert "Dependent products" in captured.err


def test_short_workspace_and_quiet_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`-w` is `--workspace` as on every other command; `-q` prints nothing but the JSON still comes."""
    site = write_site(tmp_path, SITE)
    assert main(["reduce", str(site), "-w", str(tmp_path / "absent")]) != 0
    capsys.readouterr()
    assert main(["reduce", str(site), "-q", "--json", str(tmp_path / "q.json")]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads((tmp_path / "q.json").read_text(encoding="utf-8"))["schema"] == "derisk.reduce/1"
