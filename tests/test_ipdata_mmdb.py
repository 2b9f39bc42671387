"""MaxMind-format databases a user supplies work in place of ip-location-db (source is pluggable)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from derisk.cli import main
from derisk.enrich.ipdata import load_ipdata
from derisk.enrich.update import install_mmdb
from derisk.errors import InputError


def _asn_db(path: Path) -> Path:
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-ASN", languages=["en"])
    w.insert_network(
        IPSet(["170.33.144.0/22"]),
        {
            "autonomous_system_number": 134963,
            "autonomous_system_organization": "Alibaba Cloud (Singapore) Private Limited",
        },
    )
    w.insert_network(
        IPSet(["2001:4860::/32"]),
        {"autonomous_system_number": 15169, "autonomous_system_organization": "Google LLC"},
    )
    w.to_db_file(str(path))
    return path


def _country_db(path: Path) -> Path:
    w = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="GeoLite2-Country", languages=["en"])
    w.insert_network(
        IPSet(["170.33.144.0/22"]), {"country": {"iso_code": "DE"}, "registered_country": {"iso_code": "SG"}}
    )
    # an anycast block: registered, but no measured location
    w.insert_network(IPSet(["2001:4860::/32"]), {"registered_country": {"iso_code": "US"}})
    w.to_db_file(str(path))
    return path


def test_mmdb_lookup(tmp_path: Path) -> None:
    install_mmdb(tmp_path / "data", _asn_db(tmp_path / "asn.mmdb"), _country_db(tmp_path / "cc.mmdb"))
    data = load_ipdata(tmp_path / "data")
    rows = {
        r["ip"]: r
        for r in data.lookup(pa.array(["170.33.144.10", "2001:4860::8888", "10.0.0.1", "junk"])).to_pylist()
    }
    assert rows["170.33.144.10"]["asn"] == 134963
    assert rows["170.33.144.10"]["geo_country"] == "DE"
    assert rows["170.33.144.10"]["as_country"] == "SG"  # registration kept apart from location
    # a registration country never stands in for a measured location
    assert rows["2001:4860::8888"]["geo_country"] is None and rows["2001:4860::8888"]["as_country"] == "US"
    assert rows["2001:4860::8888"]["as_org"] == "Google LLC"
    assert rows["10.0.0.1"]["asn"] is None and rows["junk"]["asn"] is None
    assert data.manifest.ipdata_kind == "maxmind"


def test_not_a_database_is_rejected_and_old_data_kept(tmp_path: Path, ipdata_dir: Path) -> None:
    bogus = tmp_path / "bogus.mmdb"
    bogus.write_bytes(b"definitely not a maxmind database")
    with pytest.raises(InputError, match="not a MaxMind database"):
        install_mmdb(tmp_path / "data", bogus, None)
    assert main(["data", "update", "--data-dir", str(tmp_path / "d2"), "--mmdb-asn", str(bogus)]) == 3


def test_cli_refuses_country_without_asn(tmp_path: Path) -> None:
    assert main(["data", "update", "--data-dir", str(tmp_path), "--mmdb-country", str(tmp_path / "x")]) == 2
