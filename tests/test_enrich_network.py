"""The enricher that remembers addresses and server names across an input's batches gives exactly
what enriching each batch afresh gives (real Zeek log, real IP data fixture)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from derisk.enrich.ipdata import load_ipdata
from derisk.enrich.network import Enricher, enrich_batch
from derisk.gen.zeek_bench import write_bench_conn_log
from derisk.ingest.zeek import read_zeek
from derisk.site import Site, default_site


@pytest.mark.parametrize("limit", [1, 50, 100_000])
def test_remembered_lookups_equal_fresh_ones(ipdata_dir: Path, tmp_path: Path, limit: int) -> None:
    write_bench_conn_log(tmp_path / "conn.log", 6_000, seed=7)
    flows = pa.Table.from_batches(list(read_zeek(tmp_path)))
    site, ipdata = default_site(), load_ipdata(ipdata_dir)
    # Every third flow goes to one of 40 addresses the IP data knows (Google's and Alibaba's).
    known = ipdata.sample_addresses(15169, None, 20) + ipdata.sample_addresses(45102, None, 20)
    dst = flows.column("dst_ip").to_pylist()
    dst[::3] = [known[i % len(known)] for i in range(len(dst[::3]))]
    flows = flows.set_column(flows.schema.get_field_index("dst_ip"), flows.schema.field("dst_ip"), [dst])
    # Server names, recurring across batches, some of a public suffix with several labels.
    names = [
        None if i % 2 else f"h{i % 50}.site{i % 7}.{('com', 'co.uk')[i % 3 == 0]}" for i in range(len(dst))
    ]
    where = flows.schema.get_field_index("server_name")
    flows = flows.set_column(where, flows.schema.field("server_name"), [names])
    # Small batches, so that most addresses recur in later ones; the limit forces forgetting.
    batches = [site.orient(b) for b in flows.to_batches(max_chunksize=700)]
    enricher = Enricher(ipdata, limit=limit)
    remembered = [enricher(b) for b in batches]
    fresh = [enrich_batch(b, ipdata) for b in batches]
    assert len(remembered) > 5
    for got, want in zip(remembered, fresh, strict=True):
        assert got.schema.equals(want.schema)
        assert got.equals(want)
    asns = set(pa.Table.from_batches(remembered).column("dst_asn").to_pylist())
    assert {15169, 45102, None} <= asns
    domains = set(pa.Table.from_batches(remembered).column("dst_domain").to_pylist())
    assert {"site1.com", "site0.co.uk"} <= domains


@pytest.mark.parametrize("limit", [1, 100_000])
def test_lookup_by_orientation_codes_equals_lookup_by_address(
    ipdata_dir: Path, tmp_path: Path, limit: int
) -> None:
    """``Enricher.coded`` (the addresses found through orientation's codes, the rows whose name
    names dst from its directions) gives what enriching the oriented batch by its columns gives,
    whatever the direction: outbound, inbound (endpoints swapped), external, local-scope, unset."""
    write_bench_conn_log(tmp_path / "conn.log", 3_000, seed=11)
    flows = pa.Table.from_batches(list(read_zeek(tmp_path)))
    ipdata = load_ipdata(ipdata_dir)
    known = ipdata.sample_addresses(15169, None, 10) + ipdata.sample_addresses(45102, None, 10)
    src, dst = flows.column("src_ip").to_pylist(), flows.column("dst_ip").to_pylist()
    for i in range(len(dst)):
        if i % 3 == 0:
            dst[i] = known[i % len(known)]
        if i % 5 == 0:  # opened from outside: inbound
            src[i], dst[i] = dst[i], src[i]
        elif i % 7 == 0:  # two public addresses: external
            src[i] = known[(i + 1) % len(known)]
        elif i % 11 == 0:  # multicast: local-scope
            dst[i] = "224.0.0.251"
    names = [None if i % 4 == 1 else f"h{i % 30}.site{i % 5}.com" for i in range(len(dst))]
    for name, values in (("src_ip", src), ("dst_ip", dst), ("server_name", names)):
        where = flows.schema.get_field_index(name)
        flows = flows.set_column(where, flows.schema.field(name), [values])
    site = Site(name=None, internal_networks=default_site().internal_networks, systems=())
    enricher = Enricher(ipdata, limit=limit)
    directions: set[str] = set()
    for batch in flows.to_batches(max_chunksize=500):
        oriented = site.orient_coded(batch)
        got, want = enricher.coded(oriented), enrich_batch(site.orient(batch), ipdata)
        assert got.schema.equals(want.schema)
        assert got.equals(want)
        directions |= set(got.column("direction").to_pylist())
    assert directions == {"outbound", "inbound", "external", "local-scope"}
