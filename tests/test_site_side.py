"""Without a site file, the capturing host's side of flows between two public addresses is guessed.

Public captures are often taken on a host with a public address (a campus on public IPv4 space) or
over IPv6, where every host has a global address: with only the private ranges as the site, such
traffic has no site side and was left out. The guess (:mod:`derisk.site_side`) takes the address
(IPv6: the /64) found in more than half of those flows and in more than any other (on a tie, the one
that opened more of them), a site file turns the guess off, the choice holds for later batches, and the analysis
names the addresses it took.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pyarrow as pa

from derisk.enrich.ipdata import load_ipdata
from derisk.gen.zeek import Session
from derisk.site import default_site, parse_site
from test_attribution_layers import T0, _analyze

HOST = "198.51.100.7"


def _batch(pairs: list[tuple[str, str]]) -> pa.RecordBatch:
    n = len(pairs)
    return pa.RecordBatch.from_pydict(
        {
            "src_ip": [a for a, _ in pairs],
            "dst_ip": [b for _, b in pairs],
            "src_port": [50_000 + i for i in range(n)],
            "dst_port": [443] * n,
            "bytes_out": [100] * n,
            "bytes_in": [1_000] * n,
            "packets_out": [1] * n,
            "packets_in": [2] * n,
        }
    )


def _oriented(site_pairs: list[tuple[str, str]], site: object = None) -> dict[str, list[object]]:
    s = default_site() if site is None else site
    return s.orient(_batch(site_pairs)).to_pydict()  # type: ignore[attr-defined, no-any-return]


def test_the_host_in_most_flows_is_the_site_outbound_and_inbound() -> None:
    got = _oriented([(HOST, "203.0.113.1"), (HOST, "203.0.113.2"), ("203.0.113.3", HOST)])
    assert got["direction"] == ["outbound", "outbound", "inbound"]
    # the flow the remote side opened is turned round: the site's address first, its bytes as sent
    assert got["src_ip"] == [HOST, HOST, HOST]
    assert got["dst_ip"] == ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    assert got["bytes_out"][2] == 1_000 and got["bytes_in"][2] == 100


def test_ipv6_temporary_addresses_of_one_64_are_one_site() -> None:
    got = _oriented(
        [
            ("2001:db8:a:b::1", "2a00:1450:4007:813::2003"),
            ("2001:db8:a:b:9c4e::77", "2606:4700::6812:25e4"),
            ("2001:db8:a:b::1", "2a03:2880:f00c:13:face:b00c:0:2"),
        ]
    )
    assert got["direction"] == ["outbound"] * 3


def test_a_tie_goes_to_the_side_that_opened_more_and_a_tie_there_decides_nothing() -> None:
    # one peer: both ends take part in every flow; the capturing host is normally the client
    got = _oriented([("2001:db8:a:b::1", "2606:4700::1")])
    assert got["direction"] == ["outbound"] and got["src_ip"] == ["2001:db8:a:b::1"]
    got = _oriented([("203.0.113.1", HOST), (HOST, "203.0.113.1"), ("203.0.113.1", HOST)])
    assert got["direction"] == ["outbound", "inbound", "outbound"]
    assert got["src_ip"] == ["203.0.113.1"] * 3
    # each opened as many: nothing tells which is the capturing host
    got = _oriented([(HOST, "203.0.113.1"), ("203.0.113.1", HOST)])
    assert got["direction"] == ["external", "external"]
    # two tied in more than half of the flows, beside a flow of others: the one that opened more
    got = _oriented(
        [(HOST, "203.0.113.1"), ("203.0.113.1", HOST), (HOST, "203.0.113.1"), ("192.0.2.9", "192.0.2.10")]
    )
    assert got["direction"] == ["outbound", "inbound", "outbound", "external"]


def test_private_and_site_file_traffic_is_not_guessed() -> None:
    site = parse_site({"site": "s", "internal_networks": ["10.0.0.0/8"]}, "site.yaml")
    got = _oriented([(HOST, "203.0.113.1"), (HOST, "203.0.113.2")], site)
    assert got["direction"] == ["external", "external"]
    mixed = _oriented([("10.0.0.5", "203.0.113.1"), (HOST, "203.0.113.2"), (HOST, "203.0.113.9")])
    assert mixed["direction"] == ["outbound", "outbound", "outbound"]


def test_the_choice_holds_for_later_batches_and_workers_do_not_guess() -> None:
    site = default_site()
    site.orient(_batch([(HOST, "203.0.113.1"), (HOST, "203.0.113.2")]))
    # a later batch where another address is busier: the host chosen first stays the site
    later = site.orient(_batch([("192.0.2.50", "203.0.113.4")] * 3 + [("203.0.113.5", HOST)]))
    assert later.column("direction").to_pylist() == ["external"] * 3 + ["inbound"]
    worker = pickle.loads(pickle.dumps(site))  # as Spark ships the site to its workers
    again = worker.orient(_batch([(HOST, "203.0.113.1"), (HOST, "203.0.113.2")]))
    assert again.column("direction").to_pylist() == ["external", "external"]


def test_analysis_attributes_a_public_host_and_names_the_guess(tmp_path: Path, data_env: Path) -> None:
    data = load_ipdata(data_env)
    google = data.sample_addresses(15169, None, 3)
    sessions = [Session(HOST, ip, T0 + i, 9_000, 1_000) for i, ip in enumerate(google)]
    doc = _analyze(tmp_path, sessions, site=None)
    assert {d["ip"] for d in doc["destinations"]} == set(google)
    assert all(d["infrastructure"]["controller"] for d in doc["destinations"])
    (notice,) = [n for n in doc["notices"] if n["code"] == "site-side-guessed"]
    assert notice["addresses"] == [HOST] and HOST in notice["text"]
    assert "internal-networks-needed" not in [n["code"] for n in doc["notices"]]
    with_site = _analyze(tmp_path / "s", sessions, site="internal_networks: [10.0.0.0/8]\n", name="with-site")
    assert with_site["destinations"] == []
    assert "site-side-guessed" not in [n["code"] for n in with_site["notices"]]


def test_a_report_later_names_the_guess_only_where_one_was_made(tmp_path: Path, data_env: Path) -> None:
    import json

    from derisk.cli import main

    data = load_ipdata(data_env)
    google = data.sample_addresses(15169, None, 2)
    sessions = [Session(HOST, ip, T0 + i, 9_000, 1_000) for i, ip in enumerate(google)]
    _analyze(tmp_path / "guess", sessions, site=None)
    # the site file makes the public host the site's: oriented alike, but nothing was guessed
    _analyze(tmp_path / "told", sessions, site=f"internal_networks: [{HOST}/32]\n")
    for name, expected in (("guess", [HOST]), ("told", None)):
        out = tmp_path / f"{name}-report.json"
        assert main(["report", "-w", str(tmp_path / name / "ws"), "--json", str(out), "-q"]) == 0
        notices = json.loads(out.read_text(encoding="utf-8"))["notices"]
        found = [n["addresses"] for n in notices if n["code"] == "site-side-guessed"]
        assert found == ([expected] if expected else [])


def test_missing_and_junk_addresses_are_never_the_site() -> None:
    pairs: list[tuple[str, str]] = [(HOST, "203.0.113.1"), (HOST, "203.0.113.2"), ("not-an-ip", HOST)]
    batch = _batch(pairs)
    columns = batch.to_pydict()
    columns["src_ip"].append(None)
    columns["dst_ip"].append("203.0.113.3")
    for name in ("src_port", "dst_port", "bytes_out", "bytes_in", "packets_out", "packets_in"):
        columns[name].append(columns[name][0])
    got = default_site().orient(pa.RecordBatch.from_pydict(columns)).to_pydict()
    assert got["direction"] == ["outbound", "outbound", "inbound", "external"]
    assert got["src_ip"][:3] == [HOST] * 3


def test_counting_stops_where_no_host_stands_out() -> None:
    from derisk.site_side import MAX_UNDECIDED, SideGuess

    guess = SideGuess()
    guess.totals[4] = MAX_UNDECIDED  # as after that many flows of many hosts
    addresses = pa.array([HOST, "203.0.113.1", "203.0.113.2"])
    import numpy as np

    side = guess.site_side(addresses, np.array([0, 0]), np.array([1, 2]))
    assert not side.any() and guess.counts[4] == {}


def test_an_ipv4_mapped_host_is_named_as_ipv4(tmp_path: Path, data_env: Path) -> None:
    data = load_ipdata(data_env)
    google = data.sample_addresses(15169, None, 2)
    sessions = [
        Session(f"::ffff:{HOST}", google[0], T0, 9_000, 1_000),
        Session(HOST, google[1], T0 + 1, 9_000, 1_000),
    ]
    doc = _analyze(tmp_path, sessions, site=None)
    (notice,) = [n for n in doc["notices"] if n["code"] == "site-side-guessed"]
    assert notice["addresses"] == [HOST]
