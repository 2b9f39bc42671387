"""Labelled traffic for the detection harness: seeded, deterministic, built directly as a flow table.

Two days of flows from a site of workstations and named systems, with what each detection should find
(:class:`Truth`) — beacons at several periods, jitters, duty cycles and skip rates; benign periodic
traffic (NTP, update checks, monitoring); bursty browsing and Poisson polling; DNS tunnels next to busy
CDN names and reputation look-ups; uploads next to downloads, calls and nightly backups; destinations
seen for the first time; transfers to controllers under compelling laws, with near misses for each.
All names and addresses are synthetic. Used by ``scripts/eval_detect.py`` and the tests.
"""

from __future__ import annotations

import string
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
    "huawei": Org("Huawei Cloud", "Huawei Investment & Holding", "CN", 136907, "159.138", "myhuaweicloud.com"),
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
        return [StubLaw(jurisdiction, f"harness compelled-cooperation law ({jurisdiction})", "1", True, "U", "synthetic")]
    return []


@dataclass
class Labelled:
    flows: pa.Table
    truth: list[Truth]
    allowlist: list[dict[str, Any]] = field(default_factory=list)


class _Builder:
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
            "src_ip": src, "system": self.system_of.get(src), "direction": direction, "input_id": "harness",
            "dst_port": port, "protocol": proto,
        }
        o = ORGS[org] if org else None
        scalar.update(dst_asn=o.asn if o else None, dst_as_org=o.org if o else None, dst_org=o.org if o else None,
                      dst_controller=o.controller if o else None, dst_jurisdiction=o.jurisdiction if o else None,
                      dst_jurisdiction_basis=("registry" if o.controller else "unknown") if o else None)
        for key, value in scalar.items():
            c[key].append([value] * n)
        c["dst_ip"].append(list(dst) if isinstance(dst, list) else [dst] * n)
        names = list(name) if isinstance(name, list) else [name] * n
        c["server_name"].append(names)
        c["dst_domain"].append([_reg(x) if x else (o.domain if o and o.org else None) for x in names])
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


def _reg(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[-2:])


def _rand_label(rng: np.random.Generator, n: int, alphabet: str) -> str:
    return "".join(rng.choice(list(alphabet), size=n))


def beacon_times(
    rng: np.random.Generator, period: float, jitter: float, skip: float, duty: tuple[float, float], days: float = 2
) -> np.ndarray:
    """Check-in times over ``days``: sleep = period × (1 ± jitter), beats dropped with probability
    ``skip``, kept only between ``duty`` hours of each day."""
    n = int(days * DAY / period * 1.1) + 10
    sleeps = period * (1.0 + jitter * rng.uniform(-1, 1, n))
    t = T0 + rng.uniform(0, period) + np.cumsum(sleeps)
    t = t[t < T0 + days * DAY]
    t = t[rng.random(len(t)) >= skip]
    hour = ((t - T0) % DAY) / 3600.0
    lo, hi = duty
    return t[(hour >= lo) & (hour < hi)]


WORDS = ("atlas", "nova", "orbit", "pixel", "harbor", "maple", "cedar", "delta", "ember", "falcon", "glacier",
         "horizon", "island", "jasper", "kepler", "lumen", "meadow", "nimbus", "onyx", "prairie")
_B32 = string.ascii_lowercase + "234567"
_HEX = "0123456789abcdef"


def _browsing(b: _Builder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    """Bursty browsing sessions in working hours, and Poisson mail polling: irregular, never beacons."""
    orgs = ["amazon", "microsoft", "google", "cloudflare", "akamai", "ovh", "hetzner", "proximus", "alibaba"]
    sites = [(f"{WORDS[i % 20]}{i}.com", orgs[i % len(orgs)]) for i in range(300)]
    site_ips = {s: [b.ip(o) for _ in range(1 + i % 3)] for i, (s, o) in enumerate(sites)}
    zipf = 1.0 / np.arange(1, 301) ** 1.1
    zipf /= zipf.sum()
    for h in hosts:
        for day in range(2):
            n_sess = rng.poisson(4 * 10)
            starts = T0 + day * DAY + 8 * 3600 + np.sort(rng.uniform(0, 10 * 3600, n_sess))
            for s0 in starts:
                site, org = sites[int(rng.choice(300, p=zipf))]
                k = 1 + int(rng.geometric(1 / 8))
                t = s0 + np.cumsum(rng.exponential(2.0, k))
                ips = [site_ips[site][j] for j in rng.integers(0, len(site_ips[site]), k)]
                b.add(t, h, ips, org, out=rng.lognormal(7.5, 1, k), inb=rng.lognormal(10, 1.5, k), name=site)
                b.add(t[:1] - 0.05, h, RESOLVER, None, name=None, query=[site], port=53, proto=17,
                      direction="internal", out=80, inb=200)
    # mail polling: Poisson, mean 5 minutes, all day
    for h in hosts[:30]:
        t = T0 + np.cumsum(rng.exponential(300.0, int(2 * DAY / 300 * 1.2)))
        t = t[t < T0 + 2 * DAY]
        b.add(t, h, b.ip("microsoft"), "microsoft", name="outlook.office365.com", out=rng.lognormal(8, 0.5, len(t)))
        truth.append(Truth("beacon", h, "outlook.office365.com", False, "poisson-polling"))


def _beacons(b: _Builder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    periods = (10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
    jitters = (0.0, 0.1, 0.3)
    duties = ((0.0, 24.0), (9.0, 17.0), (20.0, 24.0))
    skips = (0.0, 0.1, 0.3)
    orgs = ("alibaba", "tencent", "unknown", "ovh", "amazon", "hetzner", "yandex")
    combos = [(p, j, d, s) for p in periods for j in jitters for d in duties for s in skips
              if (d[1] - d[0]) * 3600 / p * (1 - s) >= 12]
    picks = rng.choice(len(combos), size=60, replace=False)
    for n, ci in enumerate(sorted(picks)):
        p, j, d, s = combos[ci]
        host = hosts[(n * 7) % len(hosts)]
        org = orgs[n % len(orgs)]
        if org == "yandex":
            org = "unknown"
        t = beacon_times(rng, p, j, s, d)
        size = (600 + 40 * rng.standard_normal(len(t))) if n % 2 == 0 else rng.lognormal(7, 0.8, len(t))
        ip = b.ip(org)
        named = n % 3 != 0
        name = f"cdn{n}-sync.{ORGS[org].domain}" if named else None
        b.add(t, host, ip, org, out=np.maximum(size, 60), inb=rng.lognormal(7, 0.5, len(t)), name=name)
        cat = f"beacon p={p:g}s jitter={j:g} duty={d[0]:g}-{d[1]:g}h skip={s:g}"
        truth.append(Truth("beacon", host, name or ip, True, cat))
    # the demo case: the warehouse system checks in with Alibaba Cloud every ~60 s
    t = beacon_times(rng, 60.0, 0.05, 0.0, (0.0, 24.0))
    b.add(t, "10.10.1.10", b.ip("alibaba"), "alibaba", name="wms-telemetry.aliyuncs.com",
          out=700 + 20 * rng.standard_normal(len(t)))
    truth.append(Truth("beacon", "10.10.1.10", "wms-telemetry.aliyuncs.com", True, "beacon demo wms 60s"))


def _benign_periodic(b: _Builder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> list[dict[str, Any]]:
    """Truly periodic and benign: a site allow-lists these, with a reason."""
    ntp = [b.ip("cloudflare") for _ in range(4)]
    for i, h in enumerate(hosts[:20]):
        t = beacon_times(rng, 1024.0, 0.02, 0.0, (0.0, 24.0))
        b.add(t, h, ntp[i % 4], "cloudflare", port=123, proto=17, out=76, inb=76)
        truth.append(Truth("beacon", h, ntp[i % 4], False, "ntp"))
    for h in hosts[20:40]:
        t = beacon_times(rng, 3600.0, 0.1, 0.0, (0.0, 24.0))
        b.add(t, h, b.ip("microsoft"), "microsoft", name="update.windowsupdate.com", out=1200)
        truth.append(Truth("beacon", h, "update.windowsupdate.com", False, "update-check"))
    for ips in SYSTEMS.values():
        t = beacon_times(rng, 60.0, 0.02, 0.0, (0.0, 24.0))
        b.add(t, ips[0], b.ip("amazon"), "amazon", name="intake.monitoring-saas.com", out=900)
        truth.append(Truth("beacon", ips[0], "intake.monitoring-saas.com", False, "monitoring"))
    return [
        {"ip": "104.16.0.0/16", "reason": "NTP pool servers", "kinds": ["beacon"]},
        {"domain": "*.windowsupdate.com", "reason": "operating-system update checks"},
        {"domain": "*.monitoring-saas.com", "reason": "the site's monitoring service"},
        {"domain": "*.avrep-lookups.com", "reason": "anti-virus reputation look-ups over DNS"},
    ]


def _long_connections(b: _Builder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    for i in range(10):
        hours = float(rng.uniform(1.5, 20.0))
        host, ip = hosts[50 + i], b.ip(("unknown", "ovh", "tencent")[i % 3])
        start = T0 + DAY + rng.uniform(0, 3 * 3600)
        if i % 2:  # cut in 30-minute records by the exporter's active timeout
            edges = np.arange(0.0, hours * 3600.0, 1800.0)
            b.add(start + edges, host, ip, ("unknown", "ovh", "tencent")[i % 3],
                  dur=np.minimum(1800.0, hours * 3600.0 - edges), port=8443, out=5e4, inb=5e4, sport=50000 + i)
        else:
            b.add(np.array([start]), host, ip, ("unknown", "ovh", "tencent")[i % 3], dur=hours * 3600.0,
                  port=8443, out=5e4, inb=5e4)
        truth.append(Truth("long-connection", host, ip, True, f"long {hours:.1f}h split={bool(i % 2)}"))
    for i in range(10):  # near misses: 40-55 minutes
        host, ip = hosts[60 + i], b.ip("hetzner")
        b.add(np.array([T0 + DAY + 3600.0 * i]), host, ip, "hetzner", dur=float(rng.uniform(2400, 3300)), port=22)
        truth.append(Truth("long-connection", host, ip, False, "near-miss under 1h"))


def _dns(b: _Builder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    tunnels = [("t.qx7-relay.com", 3000, 60, _B32), ("d.exfil-cache.net", 800, 40, _HEX),
               ("ns.update-chk.org", 400, 28, _B32), ("c.slowdrip.io", 150, 24, _HEX)]
    for i, (dom, n, width, alpha) in enumerate(tunnels):
        host = hosts[80 + i]
        names = [f"{_rand_label(rng, width, alpha)}.{k}.{dom}" for k in range(n)]
        t = T0 + DAY + np.sort(rng.uniform(0, DAY, n))
        b.add(t, host, RESOLVER, None, query=names, port=53, proto=17, direction="internal", out=150, inb=150)
        truth.append(Truth("dns-tunnel", None, _reg(dom), True, f"tunnel {n} names x {width} chars"))
    def cdn_label(dom: str) -> str:
        if dom == "googlevideo.com":
            return f"rr{rng.integers(1, 9)}---sn-{_rand_label(rng, 8, _HEX)}"
        if dom == "cloudfront.net":
            return f"d{_rand_label(rng, 13, string.ascii_lowercase + string.digits)}"
        return f"e{rng.integers(1000, 99999)}.a"

    for dom, org in (("googlevideo.com", "google"), ("cloudfront.net", "amazon"), ("akamaiedge.net", "akamai")):
        names = [f"{cdn_label(dom)}.{dom}" for _ in range(600)]
        t = T0 + np.sort(rng.uniform(0, 2 * DAY, len(names)))
        src = [hosts[j] for j in rng.integers(0, len(hosts), len(names))]
        for s in sorted(set(src)):
            sel = np.array([x == s for x in src])
            q = [nm for nm, keep in zip(names, sel, strict=True) if keep]
            b.add(t[sel], s, RESOLVER, None, query=q, port=53, proto=17, direction="internal", out=80, inb=200)
            b.add(t[sel] + 0.05, s, b.ip(org), org, name=q, out=900, inb=2e5)
        truth.append(Truth("dns-tunnel", None, dom, False, "busy CDN names"))
    names = [f"{_rand_label(rng, 32, _HEX)}.4.0.1.avrep-lookups.com" for _ in range(500)]
    b.add(T0 + np.sort(rng.uniform(0, 2 * DAY, 500)), hosts[5], RESOLVER, None, query=names, port=53, proto=17,
          direction="internal", out=120, inb=120)
    truth.append(Truth("dns-tunnel", None, "avrep-lookups.com", False, "anti-virus reputation look-ups"))
    names = [f"host{k}.corp-directory.com" for k in range(300)]  # many short, low-entropy names
    b.add(T0 + np.sort(rng.uniform(0, 2 * DAY, 300)), hosts[6], RESOLVER, None, query=names, port=53, proto=17,
          direction="internal", out=80, inb=120)
    truth.append(Truth("dns-tunnel", None, "corp-directory.com", False, "many short names"))


def _uploads(b: _Builder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    day2 = T0 + DAY + 3600.0
    for i, (mb, org, flows) in enumerate([(80, "unknown", 1), (300, "ovh", 5), (2000, "hetzner", 20),
                                          (120, "tencent", 3), (600, "unknown", 10)]):
        host = hosts[90 + i]
        ip = b.ip(org)
        t = day2 + 3600 * i + np.sort(rng.uniform(0, 600 * flows, flows))
        b.add(t, host, ip, org, out=mb * 1e6 / flows, inb=2e5 / flows, dur=50.0)
        truth.append(Truth("upload", host, ORGS[org].domain if ORGS[org].org else ip, True, f"exfil {mb} MB"))
    # spread: the ERP system sends 8 MB to each of 15 destinations
    for k in range(15):
        ip = b.ip("unknown")
        b.add(np.array([day2 + 7200 + k * 30.0]), "10.10.5.10", ip, "unknown", out=8e6, inb=5e4)
    truth.append(Truth("new-destination", "erp", "*", True, "system sends to 15 new destinations (one alert)"))
    truth.append(Truth("upload", "erp", "*", True, "exfil spread over destinations"))
    for i in range(5):  # downloads, calls, near misses
        host = hosts[100 + i]
        b.add(day2 + np.sort(rng.uniform(0, 3600, 10)), host, b.ip("akamai"), "akamai", out=5e5, inb=1e8, name="dl.akamaized-sw.com")
        truth.append(Truth("upload", host, "akamaized-sw.com", False, "large download"))
        b.add(day2 + np.sort(rng.uniform(0, 7200, 6)), host, b.ip("microsoft"), "microsoft", out=5e7, inb=5e7,
              name="teams-relay.azure.com")
        truth.append(Truth("upload", host, "azure.com", False, "video call"))
        b.add(np.array([day2 + 5000.0]), host, b.ip("ovh"), "ovh", out=4e7, inb=1e5, name=f"share{i}.ovh.net")
        truth.append(Truth("upload", host, "ovh.net", False, "near miss 40 MB"))
    for day in range(2):  # nightly backup, same size both days: the system's own baseline
        b.add(T0 + day * DAY + 2 * 3600 + np.sort(rng.uniform(0, 3600, 30)), "10.10.3.5", b.ip("proximus"), "proximus",
              out=1e8, inb=1e6, name="vault.proximus.be")
    truth.append(Truth("upload", "backup", "proximus.be", False, "nightly backup within baseline"))


def _new_destinations(b: _Builder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    stable = {sysname: b.ip("microsoft") for sysname in SYSTEMS}
    for sysname, ips in SYSTEMS.items():  # usual destinations, both days
        for day in range(2):
            t = T0 + day * DAY + np.sort(rng.uniform(0, DAY, 40))
            b.add(t, ips[-1], stable[sysname], "microsoft", name=f"{sysname}-vendor.azure.com", out=3e4)
    late = b.ip("hetzner")  # near miss: first seen just inside the baseline
    b.add(np.array([T0 + DAY - 1800.0, T0 + DAY + 3600.0]), "10.10.2.5", late, "hetzner", name="hist-sync.your-server.de")
    truth.append(Truth("new-destination", "scada-historian", "your-server.de", False, "seen late in baseline"))
    new = b.ip("ovh")
    b.add(T0 + DAY + 3 * 3600 + np.sort(rng.uniform(0, 6000, 20)), "10.10.4.3", new, "ovh",
          name="fw-update.cam-cloud.ovh.net")
    truth.append(Truth("new-destination", "cctv", "ovh.net", True, "system talks to a new destination"))
    t5 = T0 + DAY + 5 * 3600 + np.arange(5) * 60.0
    b.add(t5, hosts[110], b.ip("yandex"), "yandex", name="api.yandexcloud.net", out=2e4)
    truth.append(Truth("new-destination", None, "Yandex Cloud", True, "new organisation"))
    truth.append(Truth("new-destination", None, "RU", True, "new jurisdiction"))
    b.add(t5 + 600, hosts[111], b.ip("huawei"), "huawei", name="obs.myhuaweicloud.com", out=2e4)
    truth.append(Truth("new-destination", None, "Huawei Cloud", True, "new organisation (known jurisdiction)"))


def compelled_truth(flows: pa.Table, min_bytes: float, min_hours: float) -> list[Truth]:
    """Ground truth for compelled transfers, computed in plain Python from the generated rows."""
    acc: dict[tuple[str, str], list[float]] = {}
    cols = flows.select(["direction", "dst_jurisdiction", "system", "src_ip", "dst_controller", "bytes_out",
                         "first_seen", "last_seen"]).to_pylist()
    for r in cols:
        if r["direction"] != "outbound" or r["dst_jurisdiction"] not in COMPELLING or not r["dst_controller"]:
            continue
        key = (r["system"] or r["src_ip"], r["dst_controller"])
        a = acc.setdefault(key, [0.0, float("inf"), float("-inf")])
        a[0] += r["bytes_out"] or 0
        a[1] = min(a[1], r["first_seen"].timestamp())
        a[2] = max(a[2], r["last_seen"].timestamp())
    return [Truth("compelled-transfer", who, ctrl, v[0] >= min_bytes and (v[2] - v[1]) / 3600 >= min_hours,
                  "sustained" if v[0] >= min_bytes else "below bytes threshold")
            for (who, ctrl), v in sorted(acc.items())]


def generate(seed: int = 7) -> Labelled:
    """Two days of labelled traffic (about 300,000 flows), the same for the same seed."""
    rng = np.random.default_rng(seed)
    b = _Builder(rng)
    truth: list[Truth] = []
    hosts = [f"10.1.{i // 200}.{i % 200 + 1}" for i in range(120)]
    _browsing(b, rng, truth, hosts)
    _beacons(b, rng, truth, hosts)
    allow = _benign_periodic(b, rng, truth, hosts)
    _long_connections(b, rng, truth, hosts)
    _dns(b, rng, truth, hosts)
    _uploads(b, rng, truth, hosts)
    _new_destinations(b, rng, truth, hosts)
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
