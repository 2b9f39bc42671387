"""The parts of the evaluation harness's traffic: browsing, beacons, benign periodic traffic, long
connections, DNS (tunnels and busy CDN names), uploads and new destinations, each with its ground truth.

:func:`derisk.gen.labelled.generate` mixes them; they are kept apart so that each stays readable.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from derisk.gen.labelled import DAY, ORGS, RESOLVER, SYSTEMS, T0, FlowBuilder, Truth, registrable


def _queries(b: FlowBuilder, times: Any, host: str, names: list[str], *, out: float, inb: float) -> None:
    """DNS queries from ``host`` to the site's resolver (internal flows that carry the names)."""
    b.add(times, host, RESOLVER, None, query=names, port=53, proto=17, direction="internal", out=out, inb=inb)


def _rand_label(rng: np.random.Generator, n: int, alphabet: str) -> str:
    return "".join(rng.choice(list(alphabet), size=n))


def beacon_times(
    rng: np.random.Generator,
    period: float,
    jitter: float,
    skip: float,
    duty: tuple[float, float],
    days: float = 2,
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


WORDS = (
    "atlas",
    "nova",
    "orbit",
    "pixel",
    "harbor",
    "maple",
    "cedar",
    "delta",
    "ember",
    "falcon",
    "glacier",
    "horizon",
    "island",
    "jasper",
    "kepler",
    "lumen",
    "meadow",
    "nimbus",
    "onyx",
    "prairie",
)
_B32 = string.ascii_lowercase + "234567"
_HEX = "0123456789abcdef"


def browsing(b: FlowBuilder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
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
                b.add(
                    t[:1] - 0.05,
                    h,
                    RESOLVER,
                    None,
                    name=None,
                    query=[site],
                    port=53,
                    proto=17,
                    direction="internal",
                    out=80,
                    inb=200,
                )
    # mail polling: Poisson, mean 5 minutes, all day
    for h in hosts[:30]:
        t = T0 + np.cumsum(rng.exponential(300.0, int(2 * DAY / 300 * 1.2)))
        t = t[t < T0 + 2 * DAY]
        b.add(
            t,
            h,
            b.ip("microsoft"),
            "microsoft",
            name="outlook.office365.com",
            out=rng.lognormal(8, 0.5, len(t)),
        )
        truth.append(Truth("beacon", h, "outlook.office365.com", False, "poisson-polling"))


def beacons(b: FlowBuilder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    periods = (10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
    jitters = (0.0, 0.1, 0.3)
    duties = ((0.0, 24.0), (9.0, 17.0), (20.0, 24.0))
    skips = (0.0, 0.1, 0.3)
    orgs = ("alibaba", "tencent", "unknown", "ovh", "amazon", "hetzner", "yandex")
    combos = [
        (p, j, d, s)
        for p in periods
        for j in jitters
        for d in duties
        for s in skips
        if (d[1] - d[0]) * 3600 / p * (1 - s) >= 12
    ]
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
    b.add(
        t,
        "10.10.1.10",
        b.ip("alibaba"),
        "alibaba",
        name="wms-telemetry.aliyuncs.com",
        out=700 + 20 * rng.standard_normal(len(t)),
    )
    truth.append(Truth("beacon", "10.10.1.10", "wms-telemetry.aliyuncs.com", True, "beacon demo wms 60s"))


def benign_periodic(
    b: FlowBuilder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]
) -> list[dict[str, Any]]:
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


def long_connections(b: FlowBuilder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    for i in range(10):
        hours = float(rng.uniform(1.5, 20.0))
        host, ip = hosts[50 + i], b.ip(("unknown", "ovh", "tencent")[i % 3])
        start = T0 + DAY + rng.uniform(0, 3 * 3600)
        if i % 2:  # cut in 30-minute records by the exporter's active timeout
            edges = np.arange(0.0, hours * 3600.0, 1800.0)
            b.add(
                start + edges,
                host,
                ip,
                ("unknown", "ovh", "tencent")[i % 3],
                dur=np.minimum(1800.0, hours * 3600.0 - edges),
                port=8443,
                out=5e4,
                inb=5e4,
                sport=50000 + i,
            )
        else:
            b.add(
                np.array([start]),
                host,
                ip,
                ("unknown", "ovh", "tencent")[i % 3],
                dur=hours * 3600.0,
                port=8443,
                out=5e4,
                inb=5e4,
            )
        truth.append(Truth("long-connection", host, ip, True, f"long {hours:.1f}h split={bool(i % 2)}"))
    for i in range(10):  # near misses: 40-55 minutes
        host, ip = hosts[60 + i], b.ip("hetzner")
        b.add(
            np.array([T0 + DAY + 3600.0 * i]),
            host,
            ip,
            "hetzner",
            dur=float(rng.uniform(2400, 3300)),
            port=22,
        )
        truth.append(Truth("long-connection", host, ip, False, "near-miss under 1h"))


def dns(b: FlowBuilder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    tunnels = [
        ("t.qx7-relay.com", 3000, 60, _B32),
        ("d.exfil-cache.net", 800, 40, _HEX),
        ("ns.update-chk.org", 400, 28, _B32),
        ("c.slowdrip.io", 150, 24, _HEX),
    ]
    for i, (dom, n, width, alpha) in enumerate(tunnels):
        host = hosts[80 + i]
        names = [f"{_rand_label(rng, width, alpha)}.{k}.{dom}" for k in range(n)]
        t = T0 + DAY + np.sort(rng.uniform(0, DAY, n))
        _queries(b, t, host, names, out=150, inb=150)
        truth.append(Truth("dns-tunnel", None, registrable(dom), True, f"tunnel {n} names x {width} chars"))

    def cdn_label(dom: str) -> str:
        if dom == "googlevideo.com":
            return f"rr{rng.integers(1, 9)}---sn-{_rand_label(rng, 8, _HEX)}"
        if dom == "cloudfront.net":
            return f"d{_rand_label(rng, 13, string.ascii_lowercase + string.digits)}"
        return f"e{rng.integers(1000, 99999)}.a"

    for dom, org in (
        ("googlevideo.com", "google"),
        ("cloudfront.net", "amazon"),
        ("akamaiedge.net", "akamai"),
    ):
        names = [f"{cdn_label(dom)}.{dom}" for _ in range(600)]
        t = T0 + np.sort(rng.uniform(0, 2 * DAY, len(names)))
        src = [hosts[j] for j in rng.integers(0, len(hosts), len(names))]
        for s in sorted(set(src)):
            sel = np.array([x == s for x in src])
            q = [nm for nm, keep in zip(names, sel, strict=True) if keep]
            b.add(
                t[sel], s, RESOLVER, None, query=q, port=53, proto=17, direction="internal", out=80, inb=200
            )
            b.add(t[sel] + 0.05, s, b.ip(org), org, name=q, out=900, inb=2e5)
        truth.append(Truth("dns-tunnel", None, dom, False, "busy CDN names"))
    names = [f"{_rand_label(rng, 32, _HEX)}.4.0.1.avrep-lookups.com" for _ in range(500)]
    _queries(b, T0 + np.sort(rng.uniform(0, 2 * DAY, 500)), hosts[5], names, out=120, inb=120)
    truth.append(Truth("dns-tunnel", None, "avrep-lookups.com", False, "anti-virus reputation look-ups"))
    names = [f"host{k}.corp-directory.com" for k in range(300)]  # many short, low-entropy names
    _queries(b, T0 + np.sort(rng.uniform(0, 2 * DAY, 300)), hosts[6], names, out=80, inb=120)
    truth.append(Truth("dns-tunnel", None, "corp-directory.com", False, "many short names"))


def uploads(b: FlowBuilder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    day2 = T0 + DAY + 3600.0
    for i, (mb, org, flows) in enumerate(
        [
            (80, "unknown", 1),
            (300, "ovh", 5),
            (2000, "hetzner", 20),
            (120, "tencent", 3),
            (600, "unknown", 10),
        ]
    ):
        host = hosts[90 + i]
        ip = b.ip(org)
        t = day2 + 3600 * i + np.sort(rng.uniform(0, 600 * flows, flows))
        b.add(t, host, ip, org, out=mb * 1e6 / flows, inb=2e5 / flows, dur=50.0)
        truth.append(Truth("upload", host, ORGS[org].domain if ORGS[org].org else ip, True, f"exfil {mb} MB"))
    # spread: the ERP system sends 8 MB to each of 15 destinations
    for k in range(15):
        ip = b.ip("unknown")
        b.add(np.array([day2 + 7200 + k * 30.0]), "10.10.5.10", ip, "unknown", out=8e6, inb=5e4)
    truth.append(
        Truth("new-destination", "erp", "*", True, "system sends to 15 new destinations (one alert)")
    )
    truth.append(Truth("upload", "erp", "*", True, "exfil spread over destinations"))
    for i in range(5):  # downloads, calls, near misses
        host = hosts[100 + i]
        b.add(
            day2 + np.sort(rng.uniform(0, 3600, 10)),
            host,
            b.ip("akamai"),
            "akamai",
            out=5e5,
            inb=1e8,
            name="dl.akamaized-sw.com",
        )
        truth.append(Truth("upload", host, "akamaized-sw.com", False, "large download"))
        b.add(
            day2 + np.sort(rng.uniform(0, 7200, 6)),
            host,
            b.ip("microsoft"),
            "microsoft",
            out=5e7,
            inb=5e7,
            name="teams-relay.azure.com",
        )
        truth.append(Truth("upload", host, "azure.com", False, "video call"))
        b.add(np.array([day2 + 5000.0]), host, b.ip("ovh"), "ovh", out=4e7, inb=1e5, name=f"share{i}.ovh.net")
        truth.append(Truth("upload", host, "ovh.net", False, "near miss 40 MB"))
    for day in range(2):  # nightly backup, same size both days: the system's own baseline
        b.add(
            T0 + day * DAY + 2 * 3600 + np.sort(rng.uniform(0, 3600, 30)),
            "10.10.3.5",
            b.ip("proximus"),
            "proximus",
            out=1e8,
            inb=1e6,
            name="vault.proximus.be",
        )
    truth.append(Truth("upload", "backup", "proximus.be", False, "nightly backup within baseline"))


def new_destinations(b: FlowBuilder, rng: np.random.Generator, truth: list[Truth], hosts: list[str]) -> None:
    stable = {sysname: b.ip("microsoft") for sysname in SYSTEMS}
    for sysname, ips in SYSTEMS.items():  # usual destinations, both days
        for day in range(2):
            t = T0 + day * DAY + np.sort(rng.uniform(0, DAY, 40))
            b.add(t, ips[-1], stable[sysname], "microsoft", name=f"{sysname}-vendor.azure.com", out=3e4)
    late = b.ip("hetzner")  # near miss: first seen just inside the baseline
    b.add(
        np.array([T0 + DAY - 1800.0, T0 + DAY + 3600.0]),
        "10.10.2.5",
        late,
        "hetzner",
        name="hist-sync.your-server.de",
    )
    truth.append(
        Truth("new-destination", "scada-historian", "your-server.de", False, "seen late in baseline")
    )
    new = b.ip("ovh")
    b.add(
        T0 + DAY + 3 * 3600 + np.sort(rng.uniform(0, 6000, 20)),
        "10.10.4.3",
        new,
        "ovh",
        name="fw-update.cam-cloud.ovh.net",
    )
    truth.append(Truth("new-destination", "cctv", "ovh.net", True, "system talks to a new destination"))
    t5 = T0 + DAY + 5 * 3600 + np.arange(5) * 60.0
    b.add(t5, hosts[110], b.ip("yandex"), "yandex", name="api.yandexcloud.net", out=2e4)
    truth.append(Truth("new-destination", None, "Yandex Cloud", True, "new organisation"))
    truth.append(Truth("new-destination", None, "RU", True, "new jurisdiction"))
    b.add(t5 + 600, hosts[111], b.ip("huawei"), "huawei", name="obs.myhuaweicloud.com", out=2e4)
    truth.append(
        Truth("new-destination", None, "Huawei Cloud", True, "new organisation (known jurisdiction)")
    )
