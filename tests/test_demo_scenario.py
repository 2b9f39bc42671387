"""The demo scenario: real addresses from the IP data, a valid site file, and a capture derisk reads
back exactly as the generator's ledger records it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.demo.scenario import (
    CAMERAS,
    ENDPOINTS,
    HOSTILE_USER_AGENT,
    TUNNEL_DOMAIN,
    TUNNEL_HOST,
    WMS_HOSTS,
    SampledAddressBook,
    Scenario,
    build_scenario,
)
from derisk.enrich.ipdata import load_ipdata
from derisk.flows import INGEST_SCHEMA
from derisk.gen.model import Ledger
from derisk.ingest.pcap import read_pcap
from derisk.site import parse_site

START = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def book(ipdata_dir: Path) -> SampledAddressBook:
    return SampledAddressBook(load_ipdata(ipdata_dir))


@pytest.fixture(scope="module")
def demo(
    book: SampledAddressBook, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Scenario, Ledger, pa.Table]:
    scenario = build_scenario(book, start=START, hostile=True)
    path = tmp_path_factory.mktemp("demo") / "demo.pcap"
    ledger = scenario.write(path)
    table = pa.Table.from_batches(list(read_pcap(path)), schema=INGEST_SCHEMA)
    return scenario, ledger, table


def test_same_book_and_start_give_the_same_scenario(book: SampledAddressBook) -> None:
    assert build_scenario(book, start=START, hours=1) == build_scenario(book, start=START, hours=1)


def test_size_and_site(demo: tuple[Scenario, Ledger, pa.Table]) -> None:
    scenario, ledger, _ = demo
    assert 20_000 <= ledger.packets <= 40_000
    site = parse_site(scenario.site, "demo site")
    assert site.name == scenario.site["site"]
    assert site.classify(WMS_HOSTS[0]) == (True, "Warehouse management")
    assert site.classify(CAMERAS[0]) == (True, "CCTV")
    vendors = {s["name"]: s["vendor"] for s in scenario.site["systems"]}
    assert vendors["Warehouse management"] == "Cainiao Smart Logistics Network"
    assert vendors["CCTV"] == "Hikvision"


def test_addresses_are_real_and_in_the_right_networks(
    book: SampledAddressBook, ipdata_dir: Path, demo: tuple[Scenario, Ledger, pa.Table]
) -> None:
    ipdata = load_ipdata(ipdata_dir)
    roles = ("wms-checkin", "wms-manifests", "cctv-p2p", "cctv-alarm", "ms-login", "customs-be")
    addresses = [book.address(ENDPOINTS[r].asn, ENDPOINTS[r].geo_country, ENDPOINTS[r].index) for r in roles]
    found = ipdata.lookup(pa.array(addresses)).to_pylist()
    for role, row in zip(roles, found, strict=True):
        assert row["asn"] == ENDPOINTS[role].asn, role
    alibaba = found[0]
    assert alibaba["geo_country"] == "DE"  # geolocates to Germany; control lies elsewhere
    servers = {c.server_ip for c in demo[0].conversations}
    assert set(addresses) <= servers


def test_demo_capture_matches_the_ledger(demo: tuple[Scenario, Ledger, pa.Table]) -> None:
    _, ledger, table = demo
    rows = {
        (r["src_ip"], r["src_port"] or 0, r["dst_ip"], r["dst_port"] or 0, r["protocol"]): r
        for r in table.select(
            ["src_ip", "src_port", "dst_ip", "dst_port", "protocol", "bytes_out", "bytes_in", "packets_out",
             "packets_in"]
        ).to_pylist()
    }  # fmt: skip
    assert len(rows) == table.num_rows == len(ledger)
    for entry in ledger:
        row = rows[entry.key()]
        assert (row["bytes_out"], row["bytes_in"], row["packets_out"], row["packets_in"]) == (
            entry.bytes_c2s,
            entry.bytes_s2c,
            entry.packets_c2s,
            entry.packets_s2c,
        ), entry.label


def test_story_is_visible_in_the_flows(demo: tuple[Scenario, Ledger, pa.Table]) -> None:
    _, ledger, table = demo
    flows = table.to_pylist()
    checkins = sorted(
        r["first_seen"]
        for r in flows
        if r["server_name"] == ENDPOINTS["wms-checkin"].name and r["dst_port"] == 443
    )
    gaps = [(b - a).total_seconds() for a, b in pairwise(checkins)]
    assert len(checkins) > 300 and all(56 <= g <= 64 for g in gaps)
    keepalives = [r for r in flows if r["src_ip"] in CAMERAS and r["dst_port"] == 6800]
    assert keepalives and all(r["server_name"] == ENDPOINTS["cctv-p2p"].name for r in keepalives)
    assert all(r["server_name_source"] == "dns-answer" for r in keepalives)
    tunnel = [
        r for r in flows if r["src_ip"] == TUNNEL_HOST and (r["dns_query"] or "").endswith(TUNNEL_DOMAIN)
    ]
    assert len({r["dns_query"] for r in tunnel}) == 320
    uploads = Counter(e.label for e in ledger if e.label == "wms-manifest-upload")
    assert uploads["wms-manifest-upload"] == 180


def test_hostile_strings_survive_ingest_intact(demo: tuple[Scenario, Ledger, pa.Table]) -> None:
    _, _, table = demo
    names = set(table.column("server_name").to_pylist())
    agents = set(table.column("user_agent").to_pylist())
    assert ENDPOINTS["hostile-sni"].name in names
    assert ENDPOINTS["long-name"].name in names  # from the DNS answer, all 209 characters
    assert HOSTILE_USER_AGENT in agents
