"""The site file: every problem reported at once, before any work; orientation and labelling."""

from __future__ import annotations

import itertools
from pathlib import Path

import pyarrow as pa
import pytest

from derisk import ipaddrs
from derisk import site as site_module
from derisk.errors import ConfigError, InputError
from derisk.flows import batch_from_columns
from derisk.site import load_site, parse_site

GOOD = """
site: Test hub
internal_networks: [10.0.0.0/8, "2001:db8::/32"]
systems:
  - name: wms
    vendor: Cainiao Smart Logistics Network
    hosts: [10.1.0.0/24]
  - name: cctv
    vendor: Hikvision
    hosts: [10.2.0.5, "2001:db8:2::/64"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_site_loads(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, GOOD))
    assert site.name == "Test hub"
    assert site.system_names() == ["wms", "cctv"]
    assert site.classify("10.1.0.9") == (True, "wms")
    assert site.classify("2001:db8:2::7") == (True, "cctv")
    assert site.classify("8.8.8.8") == (False, None)


BAD = [
    ("systems: [{name: a, hosts: [10.0.0.300]}]", ["'10.0.0.300' is not a valid IP address or CIDR"]),
    ("colour: blue", ["colour: unknown key"]),
    (
        "systems: [{name: a, hosts: [10.0.0.0/8]}, {name: b, hosts: [10.1.0.0/16]}]",
        ["overlaps 10.0.0.0/8 of system 'a'"],
    ),
    ("systems: [{name: a, hosts: [10.0.0.1], port: 3}]", ["systems[0].port: unknown key"]),
    ("systems: [{name: a, hosts: []}]", ["must be a non-empty list"]),
    ("systems: [{name: a, hosts: [1.1.1.1]}, {name: a, hosts: [2.2.2.2]}]", ["duplicate system name 'a'"]),
    ("internal_networks: []", ["internal_networks: must be a non-empty list"]),
    ("systems: {a: 1}", ["systems: must be a list"]),
    ("site: [1, 2]", ["site: must be text"]),
    ("- just a list", ["must be a YAML mapping"]),
]


@pytest.mark.parametrize(("text", "messages"), BAD)
def test_bad_site_files(tmp_path: Path, text: str, messages: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        load_site(write(tmp_path, text))
    line = err.value.one_line()
    assert "\n" not in line
    assert str(tmp_path / "site.yaml") in line
    for message in messages:
        assert message in line


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    text = "colour: blue\nsystems: [{name: a, hosts: [300.1.1.1]}, {name: b, hosts: [x], extra: 1}]\n"
    with pytest.raises(ConfigError) as err:
        load_site(write(tmp_path, text))
    assert "(4 problems)" in err.value.one_line()


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_site(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="is a directory"):
        load_site(tmp_path)
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_site(write(tmp_path, "site: [unclosed\n"))
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"site: caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_site(bad)


def test_orientation_puts_the_site_on_the_src_side(tmp_path: Path) -> None:
    site = load_site(write(tmp_path, GOOD))
    batch = batch_from_columns(
        {
            "src_ip": ["10.1.0.5", "203.0.113.9", "10.1.0.5", "198.51.100.1"],
            "dst_ip": ["47.1.1.1", "10.2.0.5", "10.2.0.5", "198.51.100.2"],
            "bytes_out": [100, 7, 1, 1],
            "bytes_in": [5, 900, 2, 2],
            "packets_out": [3, 1, 1, 1],
            "packets_in": [1, 4, 1, 1],
        }
    )
    rows = site.orient(batch).to_pylist()
    assert [r["direction"] for r in rows] == ["outbound", "inbound", "internal", "external"]
    # inbound: an outside host opened the flow; the site's camera is src and sent 900 bytes
    assert rows[1]["src_ip"] == "10.2.0.5" and rows[1]["dst_ip"] == "203.0.113.9"
    assert (rows[1]["bytes_out"], rows[1]["bytes_in"], rows[1]["packets_out"]) == (900, 7, 4)
    assert [r["system"] for r in rows] == ["wms", "cctv", "wms", None]


def test_orientation_follows_the_rule_for_every_pair_of_addresses(tmp_path: Path) -> None:
    """The vectorised orientation against the rule applied to one flow at a time (``classify`` and
    ``not_destination`` of each address): internal, system, external, multicast, broadcast
    (limited and directed), link-local, unspecified, IPv6, IPv4-mapped, junk and empty text."""
    site = load_site(write(tmp_path, GOOD))
    addresses = [
        "10.1.0.5",
        "10.2.0.5",
        "10.9.9.9",
        "203.0.113.9",
        "224.0.0.251",
        "255.255.255.255",
        "10.255.255.255",
        "169.254.1.1",
        "0.0.0.0",
        "2001:db8:2::7",
        "2001:db8::1",
        "2a00::1",
        "fe80::1",
        "ff02::fb",
        "::ffff:10.1.0.9",
        "not an address",
        "",
    ]
    pairs = [(a, b) for a in addresses for b in addresses]
    n = len(pairs)
    batch = batch_from_columns(
        {
            "src_ip": [a for a, _ in pairs],
            "dst_ip": [b for _, b in pairs],
            "src_port": list(range(n)),
            "dst_port": list(range(n, 2 * n)),
            "bytes_out": list(range(n)),
            "bytes_in": list(range(10_000, 10_000 + n)),
            "packets_out": list(range(n)),
            "packets_in": list(range(20_000, 20_000 + n)),
        }
    )
    rows = site.orient(batch).to_pylist()

    def scoped(address: str) -> bool:
        return bool(ipaddrs.not_destination(ipaddrs.parse(pa.array([address])), site.broadcasts)[0])

    for i, ((a, b), row) in enumerate(zip(pairs, rows, strict=True)):
        (a_int, a_sys), (b_int, b_sys) = site.classify(a), site.classify(b)
        swap = not a_int and b_int
        if scoped(a) or scoped(b):
            direction = "local-scope"
        elif a_int:
            direction = "internal" if b_int else "outbound"
        else:
            direction = "inbound" if b_int else "external"
        assert row["direction"] == direction, (a, b)
        expected = (b, a, n + i, i, 10_000 + i, i) if swap else (a, b, i, n + i, i, 10_000 + i)
        got = (
            row["src_ip"],
            row["dst_ip"],
            row["src_port"],
            row["dst_port"],
            row["bytes_out"],
            row["bytes_in"],
        )
        assert got == expected, (a, b)
        assert row["system"] == (b_sys if swap else a_sys), (a, b)
    assert {r["direction"] for r in rows} == {"local-scope", "internal", "outbound", "inbound", "external"}


def test_orientation_of_later_batches_uses_the_addresses_seen_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A site remembers the labels of addresses from earlier batches: batches sharing some
    addresses and bringing new ones are oriented as by a site that never saw another batch, also
    when the remembered addresses pass the limit and it starts afresh."""
    monkeypatch.setattr(site_module, "SEEN_LIMIT", 6)
    site = load_site(write(tmp_path, GOOD))
    pool = ["10.1.0.5", "10.2.0.5", "203.0.113.9", "224.0.0.251", "2001:db8:2::7", "8.8.8.8", "10.9.9.9"]
    pool += ["junk", "10.1.0.7", "fe80::1", "198.51.100.3", "10.255.255.255", "2a00::1", "0.0.0.0"]
    remembered = []
    for start in range(0, 12):
        src: list[object] = [pool[(start + i) % len(pool)] for i in range(2)]
        dst: list[object] = [pool[(start + 7 + i) % len(pool)] for i in range(2)]
        batch = batch_from_columns({"src_ip": src, "dst_ip": dst, "bytes_out": [1, 2], "bytes_in": [3, 4]})
        assert site.orient(batch).equals(load_site(write(tmp_path, GOOD)).orient(batch)), start
        assert site._seen is not None
        remembered.append(len(site._seen.addresses))
    assert max(remembered) <= 6  # bounded (a batch here has four distinct addresses)
    grew = [b > a for a, b in itertools.pairwise(remembered)]
    assert any(grew) and not all(grew)  # remembered new addresses, and started afresh


def test_digest_changes_with_systems_not_with_names_order(tmp_path: Path) -> None:
    a = parse_site({"systems": [{"name": "x", "hosts": ["10.0.0.1"]}]}, "a")
    b = parse_site({"systems": [{"name": "x", "hosts": ["10.0.0.2"]}]}, "b")
    assert a.digest() != b.digest()
    assert a.digest() == parse_site({"systems": [{"name": "x", "hosts": ["10.0.0.1"]}]}, "c").digest()
