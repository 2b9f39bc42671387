"""Labelled traffic for the detection harness: seeded, deterministic, built directly as a flow table.

Two days of flows from a site of workstations and named systems, with what each detection should find
(:class:`Truth`) — beacons at several periods, jitters, duty cycles and skip rates; benign periodic
traffic (NTP, update checks, monitoring); bursty browsing and Poisson polling; DNS tunnels next to busy
CDN names and reputation look-ups; uploads next to downloads, calls and nightly backups; destinations
seen for the first time; transfers to controllers under compelling laws, with near misses for each.
All names and addresses are synthetic. Used by ``scripts/eval_detect.py`` and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from derisk.flows import FLOW_SCHEMA

T0 = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
DAY = 86_400.0
RESOLVER = "10.0.0.53"


@dataclass(frozen=True)
class Org:
    org: str | None
    controller: str | None
    jurisdiction: str | None
    asn: int
    prefix: str
    domain: str


ORGS: dict[str, Org] = {
    "alibaba": Org("Alibaba Cloud", "Alibaba Group Holding Limited", "CN", 45102, "47.88", "aliyuncs.com"),
    "tencent": Org("Tencent Cloud", "Tencent Holdings Limited", "CN", 132203, "43.129", "tencentcs.com"),
    "huawei": Org(
        "Huawei Cloud", "Huawei Investment & Holding", "CN", 136907, "159.138", "myhuaweicloud.com"
    ),
    "yandex": Org("Yandex Cloud", "Yandex", "RU", 13238, "77.88", "yandexcloud.net"),
    "amazon": Org("Amazon Web Services", "Amazon.com, Inc.", "US", 16509, "52.94", "amazonaws.com"),
    "microsoft": Org("Microsoft Azure", "Microsoft Corporation", "US", 8075, "20.190", "azure.com"),
    "google": Org("Google Cloud", "Alphabet Inc.", "US", 15169, "142.250", "googleusercontent.com"),
    "cloudflare": Org("Cloudflare", "Cloudflare, Inc.", "US", 13335, "104.16", "cloudflare.net"),
    "akamai": Org("Akamai", "Akamai Technologies, Inc.", "US", 20940, "23.32", "akamaiedge.net"),
    "ovh": Org("OVHcloud", "OVH Groupe SA", "FR", 16276, "51.68", "ovh.net"),
    "hetzner": Org("Hetzner Online", "Hetzner Online GmbH", "DE", 24940, "88.99", "your-server.de"),
    "proximus": Org("Proximus", "Proximus SA", "BE", 5432, "194.78", "proximus.be"),
    "unknown": Org(None, None, None, 64512, "185.220", "example-unknown.net"),
}
COMPELLING = ("CN", "RU")
SYSTEMS = {
    "wms": ["10.10.1.10", "10.10.1.11", "10.10.1.12"],
    "scada-historian": ["10.10.2.5"],
    "backup": ["10.10.3.5"],
    "cctv": [f"10.10.4.{i}" for i in range(1, 9)],
    "erp": ["10.10.5.10"],
    "mail": ["10.10.6.10"],
}


def registrable(name: str) -> str:
    """The harness's names all end in a two-label registrable domain."""
    parts = name.split(".")
    return ".".join(parts[-2:])


@dataclass(frozen=True)
class Truth:
    """One labelled instance: the alert a detection should (positive) or should not raise."""

    kind: str
    src: str | None  # internal host or system name; None for site-wide instances
    destination: str
    positive: bool
    category: str


@dataclass(frozen=True)
class StubLaw:
    """A synthetic law for the harness: it says nothing about any real law."""

    jurisdiction: str
    law: str
    article: str | None
    in_force: bool
    confidence: str
    source: str


def harness_laws(jurisdiction: str) -> list[StubLaw]:
    if jurisdiction in COMPELLING:
        return [
            StubLaw(
                jurisdiction,
                f"harness compelled-cooperation law ({jurisdiction})",
                "1",
                True,
                "U",
                "synthetic",
            )
        ]
    return []


@dataclass
class Labelled:
    flows: pa.Table
    truth: list[Truth]
    allowlist: list[dict[str, Any]] = field(default_factory=list)


class FlowBuilder:
    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.cols: dict[str, list[Any]] = {n: [] for n in FLOW_SCHEMA.names}
        self.n = 0
        self.ip_count: dict[str, int] = {}
        self.system_of = {ip: name for name, ips in SYSTEMS.items() for ip in ips}

    def ip(self, org: str) -> str:
        k = self.ip_count.get(org, 0) + 1
        self.ip_count[org] = k
        return f"{ORGS[org].prefix}.{k // 250}.{k % 250 + 1}"

    def add(
        self,
        start: np.ndarray,
        src: str,
        dst: str | list[str],
        org: str | None,
        *,
        dur: np.ndarray | float = 0.5,
        out: np.ndarray | float = 500.0,
        inb: np.ndarray | float = 1500.0,
        name: str | list[str] | None = None,
        query: list[str] | None = None,
        port: int = 443,
        proto: int = 6,
        direction: str = "outbound",
        sport: int | None = None,
    ) -> None:
        n = len(start)
        if n == 0:
            return
        start = np.asarray(start, dtype=np.float64)

        def arr(v: Any) -> np.ndarray:
            return np.broadcast_to(np.asarray(v, dtype=np.float64), (n,))

        c = self.cols
        first = (start * 1e6).astype(np.int64)
        c["first_seen"].append(first)
        c["last_seen"].append(first + (arr(dur) * 1e6).astype(np.int64))
        c["bytes_out"].append(arr(out).astype(np.int64))
        c["bytes_in"].append(arr(inb).astype(np.int64))
        c["flow_id"].append([f"f{self.n + i}" for i in range(n)])
        c["src_port"].append(np.full(n, sport) if sport else self.rng.integers(32768, 61000, n))
        self.n += n
        scalar = {
            "src_ip": src,
            "system": self.system_of.get(src),
            "direction": direction,
            "input_id": "harness",
            "dst_port": port,
            "protocol": proto,
        }
        o = ORGS[org] if org else None
        scalar.update(
            dst_asn=o.asn if o else None,
            dst_as_org=o.org if o else None,
            dst_org=o.org if o else None,
            dst_controller=o.controller if o else None,
            dst_jurisdiction=o.jurisdiction if o else None,
            dst_jurisdiction_basis=("registry" if o.controller else "unknown") if o else None,
        )
        for key, value in scalar.items():
            c[key].append([value] * n)
        c["dst_ip"].append(list(dst) if isinstance(dst, list) else [dst] * n)
        names = list(name) if isinstance(name, list) else [name] * n
        c["server_name"].append(names)
        c["dst_domain"].append([registrable(x) if x else (o.domain if o and o.org else None) for x in names])
        c["dns_query"].append(query if query is not None else [None] * n)

    def table(self) -> pa.Table:
        arrays = []
        for f in FLOW_SCHEMA:
            parts = self.cols[f.name]
            if not parts:
                arrays.append(pa.nulls(self.n, f.type))
                continue
            flat: list[Any] = []
            for p in parts:
                flat.extend(p.tolist() if isinstance(p, np.ndarray) else p)
            if pa.types.is_timestamp(f.type):
                arrays.append(pa.array(np.asarray(flat, dtype=np.int64), pa.int64()).cast(f.type))
            else:
                arrays.append(pa.array(flat, f.type) if len(flat) == self.n else pa.nulls(self.n, f.type))
        return pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)


def compelled_truth(flows: pa.Table, min_bytes: float, min_hours: float) -> list[Truth]:
    """Ground truth for compelled transfers, computed in plain Python from the generated rows."""
    acc: dict[tuple[str, str], list[float]] = {}
    cols = flows.select(
        [
            "direction",
            "dst_jurisdiction",
            "system",
            "src_ip",
            "dst_controller",
            "bytes_out",
            "first_seen",
            "last_seen",
        ]
    ).to_pylist()
    for r in cols:
        if r["direction"] != "outbound" or r["dst_jurisdiction"] not in COMPELLING or not r["dst_controller"]:
            continue
        key = (r["system"] or r["src_ip"], r["dst_controller"])
        a = acc.setdefault(key, [0.0, float("inf"), float("-inf")])
        a[0] += r["bytes_out"] or 0
        a[1] = min(a[1], r["first_seen"].timestamp())
        a[2] = max(a[2], r["last_seen"].timestamp())
    return [
        Truth(
            "compelled-transfer",
            who,
            ctrl,
            v[0] >= min_bytes and (v[2] - v[1]) / 3600 >= min_hours,
            "sustained" if v[0] >= min_bytes else "below bytes threshold",
        )
        for (who, ctrl), v in sorted(acc.items())
    ]


def generate(seed: int = 7) -> Labelled:
    """Two days of labelled traffic (about 300,000 flows), the same for the same seed."""
    from derisk.gen import labelled_parts as part

    rng = np.random.default_rng(seed)
    b = FlowBuilder(rng)
    truth: list[Truth] = []
    hosts = [f"10.1.{i // 200}.{i % 200 + 1}" for i in range(120)]
    part.browsing(b, rng, truth, hosts)
    part.beacons(b, rng, truth, hosts)
    allow = part.benign_periodic(b, rng, truth, hosts)
    part.long_connections(b, rng, truth, hosts)
    part.dns(b, rng, truth, hosts)
    part.uploads(b, rng, truth, hosts)
    part.new_destinations(b, rng, truth, hosts)
    flows = b.table()
    truth += compelled_truth(flows, 1_000_000, 1.0)
    return Labelled(flows=flows, truth=truth, allowlist=allow)


def flows_from(columns: dict[str, Any], n: int | None = None) -> pa.Table:
    """A :data:`FLOW_SCHEMA` table from column values (lists, arrays or one scalar for every row);
    times are float seconds since the epoch; absent columns are nulls; flow ids are generated."""
    sizes = [len(v) for v in columns.values() if isinstance(v, list | np.ndarray)]
    rows = n if n is not None else (sizes[0] if sizes else 0)
    arrays = []
    for f in FLOW_SCHEMA:
        value = columns.get(f.name)
        if value is None and f.name == "flow_id":
            value = [f"t{i}" for i in range(rows)]
        if value is None and f.name == "direction":
            value = "outbound"
        if value is None:
            arrays.append(pa.nulls(rows, f.type))
            continue
        values = list(value) if isinstance(value, list | np.ndarray) else [value] * rows
        if pa.types.is_timestamp(f.type):
            us = [None if v is None else round(float(v) * 1e6) for v in values]
            arrays.append(pa.array(us, pa.int64()).cast(f.type))
        elif pa.types.is_integer(f.type):
            arrays.append(pa.array([None if v is None else int(v) for v in values], f.type))
        else:
            arrays.append(pa.array(values, f.type))
    return pa.Table.from_arrays(arrays, schema=FLOW_SCHEMA)
