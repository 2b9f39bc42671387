"""Watch end to end: generated capture → derisk analyze → JSON, checked against the generator's ledger.

The expected bytes come from the generator's own record of the packets it wrote, never from derisk.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml

from derisk.cli import main
from derisk.enrich.ipdata import load_ipdata
from derisk.gen.model import Conversation, DnsLookup, Exchange, HttpRequest, TlsHello
from derisk.gen.packets import write_capture

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
SITE = {
    "site": "Test cargo hub",
    "internal_networks": ["10.0.0.0/8"],
    "systems": [
        {"name": "wms", "vendor": "Cainiao Smart Logistics Network", "hosts": ["10.1.0.0/24"]},
        {"name": "office", "vendor": "Microsoft", "hosts": ["10.9.0.0/24"]},
    ],
}


def _conversations(ipdata_dir: Path) -> tuple[list[Conversation], dict[str, str]]:
    data = load_ipdata(ipdata_dir)
    addr = {
        "alibaba_de": data.sample_addresses(134963, "DE", 1)[0],
        "google": data.sample_addresses(15169, None, 1)[0],
        "bluecloud": data.sample_addresses(58593, None, 1)[0],
    }
    s = dt.timedelta(seconds=1)
    convs = [
        Conversation(
            "tcp",
            "10.1.0.5",
            addr["alibaba_de"],
            T0,
            40000,
            443,
            (Exchange("c2s", 50_000), Exchange("s2c", 600)),
            tls=TlsHello("oss-eu-central-1.aliyuncs.com"),
        ),
        Conversation("tcp", "10.1.0.5", addr["alibaba_de"], T0 + 60 * s, 40001, 443, (Exchange("c2s", 700),)),
        Conversation(
            "tcp",
            "10.9.0.7",
            addr["google"],
            T0 + 2 * s,
            40002,
            443,
            (Exchange("c2s", 900), Exchange("s2c", 12_000)),
            tls=TlsHello("www.google.com"),
        ),
        Conversation(
            "tcp",
            "10.9.0.7",
            addr["bluecloud"],
            T0 + 3 * s,
            40003,
            80,
            http=HttpRequest(host="<script>alert(1)</script>.example", user_agent='evil"\x1b[31m<b>'),
        ),
        Conversation(
            "udp",
            "10.9.0.7",
            "10.0.0.53",
            T0 + 4 * s,
            5300,
            53,
            dns=DnsLookup("updates.example.org", answers=(addr["google"],)),
        ),
        Conversation(
            "icmp",
            "10.9.0.7",
            addr["google"],
            T0 + 5 * s,
            exchanges=(Exchange("c2s", 56), Exchange("s2c", 56)),
        ),
    ]
    return convs, addr


def _analyze(tmp_path: Path, capture: Path, data_env: Path, *extra: str) -> dict[str, Any]:
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(SITE), encoding="utf-8")
    out = tmp_path / "out.json"
    code = main(
        [
            "analyze",
            str(capture),
            "--site",
            str(site),
            "--workspace",
            str(tmp_path / "ws"),
            "--json",
            str(out),
            "--html",
            str(tmp_path / "report.html"),
            "-q",
            *extra,
        ]
    )
    assert code == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


@pytest.mark.parametrize(("fmt", "snaplen"), [("pcap", None), ("pcapng", None), ("pcap", 96)])
def test_bytes_match_the_ledger_and_alibaba_in_germany_is_controlled_from_china(
    tmp_path: Path, data_env: Path, fmt: str, snaplen: int | None
) -> None:
    convs, addr = _conversations(data_env)
    capture = tmp_path / f"capture.{fmt}"
    ledger = write_capture(convs, capture, fmt=fmt, snaplen=snaplen)  # type: ignore[arg-type]
    doc = _analyze(tmp_path, capture, data_env)

    assert doc["schema"] == "derisk.analysis/1"
    assert doc["site"] == "Test cargo hub"
    expected_out: dict[str, int] = defaultdict(int)
    expected_in: dict[str, int] = defaultdict(int)
    for entry in ledger.entries:
        if not entry.server_ip.startswith("10."):
            expected_out[entry.server_ip] += entry.bytes_c2s
            expected_in[entry.server_ip] += entry.bytes_s2c
    got = {d["ip"]: d for d in doc["destinations"]}
    assert set(got) == set(expected_out)
    for ip in expected_out:
        assert (got[ip]["bytes_out"], got[ip]["bytes_in"]) == (expected_out[ip], expected_in[ip]), ip
    assert doc["totals"]["flows"] == len(ledger.entries)
    assert doc["totals"]["bytes_out"] == sum(e.bytes_c2s for e in ledger.entries)

    ali = got[addr["alibaba_de"]]
    assert ali["geo_country"] == "DE"
    assert ali["controller"] == "Alibaba Group Holding Limited"
    assert ali["jurisdiction"] == "CN"
    assert ali["jurisdiction_basis"] == "registry"
    assert ali["systems"] == ["wms"]
    if snaplen is None:  # a 96-byte snap length cuts the ClientHello: the AS number still attributes it
        assert "oss-eu-central-1.aliyuncs.com" in ali["server_names"]

    cn = next(e for e in doc["exposure"] if e["jurisdiction"] == "CN")
    # CN exposure: Alibaba (registry) plus an AS registered in CN that the graph does not know
    assert cn["bytes_out"] == expected_out[addr["alibaba_de"]] + expected_out[addr["bluecloud"]]
    assert cn["bases"] == ["as-registration", "registry"]
    assert "Alibaba Group Holding Limited" in cn["controllers"]
    assert any(law["law"].startswith("National Intelligence Law") for law in cn["laws"])
    assert sum(e["bytes_out"] for e in doc["exposure"]) == sum(d["bytes_out"] for d in doc["destinations"])


def test_unknown_operator_falls_back_to_as_registration(tmp_path: Path, data_env: Path) -> None:
    convs, addr = _conversations(data_env)
    capture = tmp_path / "c.pcap"
    write_capture(convs, capture)
    doc = _analyze(tmp_path, capture, data_env)
    blue = next(d for d in doc["destinations"] if d["ip"] == addr["bluecloud"])
    assert blue["controller"] is None
    assert blue["jurisdiction_basis"] == "as-registration"
    assert blue["jurisdiction"] == blue["as_country"]


def test_reingest_adds_nothing_and_hostile_names_stay_inert(tmp_path: Path, data_env: Path) -> None:
    convs, _ = _conversations(data_env)
    capture = tmp_path / "c.pcap"
    write_capture(convs, capture)
    first = _analyze(tmp_path, capture, data_env)
    second = _analyze(tmp_path, capture, data_env)
    assert second["totals"] == first["totals"]
    assert list(second["run"]["already_present"].values()) == [first["totals"]["flows"]]
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.example" in html


def test_same_capture_under_two_names_is_stored_once(tmp_path: Path, data_env: Path) -> None:
    convs, _ = _conversations(data_env)
    first = tmp_path / "a.pcap"
    write_capture(convs, first)
    second = tmp_path / "copy-of-a.pcap"
    second.write_bytes(first.read_bytes())
    out = tmp_path / "out.json"
    assert (
        main(["analyze", str(first), str(second), "-w", str(tmp_path / "ws"), "--json", str(out), "-q"]) == 0
    )
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["totals"]["flows"] == len(convs)
    assert list(doc["run"]["already_present"].values()) == [len(convs)]
