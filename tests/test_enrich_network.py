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
from derisk.site import default_site


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
