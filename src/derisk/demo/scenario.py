"""The demo site: an e-commerce cargo hub at a regional airport, as conversations the generator writes.

Modelled on the situation the product starts from (a Chinese e-commerce group's logistics hub at a
European regional airport, see ``shared/seed``), the site has

* a warehouse-management system from a Chinese logistics vendor that checks in with its vendor's
  cloud every 60 seconds and steadily uploads parcel manifests to Alibaba Cloud object storage in
  Frankfurt: addresses that geolocate to Germany, operated by a group controlled from Hangzhou;
* a customs-declaration gateway talking to Belgian and EU services;
* airline cargo systems talking to their providers on AWS and Deutsche Telekom;
* CCTV cameras that phone home to Chinese clouds (a UDP keep-alive after a DNS lookup, so the
  server name comes from the DNS answer, and TLS snapshot uploads);
* office workstations using US clouds, one of which sends a burst of DNS queries for many random
  subdomains of one domain, the pattern of DNS tunnelling;
* with ``hostile=True`` (the tests, not the showcase), a few hostile strings (markup in a server
  name, control characters and quotes in a user agent, a very long DNS name) so that every output's
  escaping is exercised.

Addresses come from an :class:`AddressBook` (the lead's adapter over the installed IP data), so that
attribution of the demo is genuine. Everything is deterministic: the same book, start and length
give the same conversations.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from derisk.gen.model import Conversation, DnsLookup, Exchange, HttpRequest, Ledger, TlsHello
from derisk.gen.packets import CaptureFormat, write_capture


class AddressBook(Protocol):
    """Real public addresses by ASN (and optionally geolocated country), deterministic by index."""

    def address(self, asn: int, geo_country: str | None, index: int) -> str: ...


class AddressSampler(Protocol):
    def sample_addresses(self, asn: int, geo_country: str | None, count: int) -> list[str]: ...


class SampledAddressBook:
    """An :class:`AddressBook` over anything with ``sample_addresses`` (``derisk.enrich.ipdata.IpData``)."""

    def __init__(self, sampler: AddressSampler, per_asn: int = 8) -> None:
        self._sampler = sampler
        self._per_asn = per_asn
        self._cache: dict[tuple[int, str | None], list[str]] = {}

    def address(self, asn: int, geo_country: str | None, index: int) -> str:
        key = (asn, geo_country)
        if key not in self._cache:
            self._cache[key] = self._sampler.sample_addresses(asn, geo_country, self._per_asn)
        found = self._cache[key]
        if not found:
            where = f" geolocated to {geo_country}" if geo_country else ""
            raise LookupError(f"no address of AS{asn}{where} in the IP data")
        return found[index % len(found)]


@dataclass(frozen=True)
class Endpoint:
    """An external service of the demo: where it is announced from and the name clients use."""

    asn: int
    geo_country: str | None
    index: int
    name: str


#: The external services, by role. Names are real service names of the organisations concerned.
ENDPOINTS: dict[str, Endpoint] = {
    "wms-checkin": Endpoint(134963, "DE", 0, "link.cainiao.com"),
    "wms-manifests": Endpoint(134963, "DE", 1, "cainiao-eu-manifests.oss-eu-central-1.aliyuncs.com"),
    "wms-api": Endpoint(45102, None, 0, "global-api.cainiao.com"),
    "customs-be": Endpoint(2611, "BE", 0, "eservices.minfin.fgov.be"),
    "customs-edi": Endpoint(5432, "BE", 0, "mft.proximus.be"),
    "airline-aws": Endpoint(16509, None, 0, "api.champ.aero"),
    "airline-dt": Endpoint(3320, None, 0, "edi.lufthansa-cargo.com"),
    "cctv-p2p": Endpoint(4134, None, 0, "p2p.hik-connect.com"),
    "cctv-alarm": Endpoint(45090, None, 0, "alarm.hik-connect.com"),
    "ms-login": Endpoint(8075, None, 0, "login.microsoftonline.com"),
    "ms-mail": Endpoint(8075, None, 1, "outlook.office365.com"),
    "ms-update": Endpoint(8075, None, 2, "download.windowsupdate.com"),
    "google": Endpoint(15169, None, 0, "www.google.com"),
    "cloudflare": Endpoint(13335, None, 0, "cdnjs.cloudflare.com"),
    "hostile-sni": Endpoint(13335, None, 1, "<script>alert('derisk')</script>.example.com"),
    "long-name": Endpoint(13335, None, 2, ".".join(["x" * 63, "y" * 63, "z" * 63, "cdn.cloudflare.net"])),
}

TUNNEL_DOMAIN = "upd.telemetry-sync.net"
HOSTILE_USER_AGENT = "Mozilla/5.0 \"><script>alert(1)</script>\x1b[2J\x07 'quoted'"

RESOLVER = "10.40.0.53"
WMS_HOSTS = ("10.40.10.11", "10.40.10.12")
CUSTOMS_HOST = "10.40.20.5"
AIRLINE_HOST = "10.40.21.10"
CAMERAS = tuple(f"10.40.30.{101 + i}" for i in range(12))
OFFICE = tuple(f"10.40.50.{21 + i}" for i in range(8))
TUNNEL_HOST = OFFICE[6]

SITE_NAME = "Demo cargo hub (regional airport, fictitious)"


def site_document() -> dict[str, Any]:
    """The demo's site file as a YAML-ready mapping (see :mod:`derisk.site`)."""
    return {
        "site": SITE_NAME,
        "internal_networks": ["10.40.0.0/16"],
        "systems": [
            {
                "name": "Warehouse management",
                "description": "Parcel sorting and warehouse management; reports to the vendor's cloud",
                "vendor": "Cainiao Smart Logistics Network",
                "hosts": ["10.40.10.0/24"],
            },
            {
                "name": "Customs gateway",
                "description": "Customs declarations to Belgian and EU services",
                "vendor": "Customs broker software (demo)",
                "hosts": [f"{CUSTOMS_HOST}/32"],
            },
            {
                "name": "Airline cargo",
                "description": "Air waybills and flight manifests with airline cargo systems",
                "vendor": "CHAMP Cargosystems",
                "hosts": [f"{AIRLINE_HOST}/32"],
            },
            {
                "name": "CCTV",
                "description": "Perimeter and warehouse cameras",
                "vendor": "Hikvision",
                "hosts": ["10.40.30.0/24"],
            },
            {
                "name": "Office",
                "description": "Office workstations",
                "vendor": "Various",
                "hosts": ["10.40.50.0/24"],
            },
            {
                "name": "DNS resolver",
                "description": "The site's recursive resolver",
                "vendor": "Internal IT",
                "hosts": [f"{RESOLVER}/32"],
            },
        ],
    }


@dataclass(frozen=True)
class Scenario:
    """The demo's conversations, its site file and the story it tells."""

    site: dict[str, Any]
    conversations: tuple[Conversation, ...]
    start: datetime
    end: datetime
    highlights: tuple[str, ...]

    def write(self, path: Path, *, fmt: CaptureFormat = "pcap", snaplen: int | None = None) -> Ledger:
        """Write the capture and return the generator's ledger of it."""
        return write_capture(self.conversations, path, fmt=fmt, snaplen=snaplen)


def _fraction(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class _Plan:
    def __init__(self, book: AddressBook, start: datetime, hours: float) -> None:
        self.book = book
        self.start = start
        self.seconds = hours * 3600
        self.conversations: list[Conversation] = []
        self._ports: dict[str, int] = {}
        self._resolved: dict[tuple[str, str], float] = {}

    def server(self, role: str) -> tuple[str, str]:
        endpoint = ENDPOINTS[role]
        return self.book.address(endpoint.asn, endpoint.geo_country, endpoint.index), endpoint.name

    def port(self, host: str) -> int:
        current = self._ports.get(host, 49152 + int(_fraction("port", host) * 4000))
        self._ports[host] = 49152 if current >= 65535 else current + 1
        return current

    def at(self, offset: float) -> datetime:
        return self.start + timedelta(seconds=round(offset, 6))

    def resolve(self, host: str, name: str, address: str, offset: float, *, ttl: float = 1800) -> None:
        """Look ``name`` up from ``host`` just before ``offset`` unless it did so within ``ttl``."""
        last = self._resolved.get((host, name))
        if last is not None and offset - last < ttl:
            return
        self._resolved[(host, name)] = offset
        lookup = DnsLookup(name, "AAAA" if ":" in address else "A", (address,), ttl=int(ttl))
        when = max(0.0, offset - 0.05)
        self.conversations.append(
            Conversation("udp", host, RESOLVER, self.at(when), self.port(host), 53, dns=lookup, label="dns")
        )

    def tls(self, host: str, role: str, offset: float, sizes: list[tuple[str, int]], label: str) -> None:
        address, name = self.server(role)
        self.resolve(host, name, address, offset)
        exchanges = tuple(Exchange("c2s" if d == "up" else "s2c", n, gap=0.02) for d, n in sizes)
        self.conversations.append(
            Conversation(
                "tcp",
                host,
                address,
                self.at(offset),
                self.port(host),
                443,
                exchanges,
                tls=TlsHello(name),
                label=label,
            )
        )

    def every(self, period: float, jitter: float, key: str, phase: float = 0.0) -> list[float]:
        """Offsets from ``phase`` every ``period`` seconds, each moved by up to ``jitter`` seconds."""
        out, t, n = [], phase, 0
        while t < self.seconds - 5:
            out.append(max(0.0, t + (2 * _fraction(key, n) - 1) * jitter))
            n += 1
            t = phase + n * period
        return out

    def irregular(self, shortest: float, longest: float, key: str, phase: float = 0.0) -> list[float]:
        """Offsets from ``phase`` with gaps spread between ``shortest`` and ``longest`` seconds, as
        people and business events come: no clock a beacon detector would find."""
        out, t, n = [], phase, 0
        while t < self.seconds - 5:
            out.append(t)
            spread = _fraction(key, n) ** 2  # more short gaps than long ones
            t += shortest + spread * (longest - shortest)
            n += 1
        return out


def _warehouse(plan: _Plan) -> None:
    checkin, manifests = WMS_HOSTS
    for n, t in enumerate(plan.every(60, 1.5, "wms-checkin", phase=3)):
        plan.tls(
            checkin,
            "wms-checkin",
            t,
            [("up", 420 + int(_fraction("ci", n) * 80)), ("down", 310)],
            "wms-checkin",
        )
    for n, t in enumerate(plan.every(120, 20, "wms-manifests", phase=40)):
        size = 24_000 + int(_fraction("manifest", n) * 22_000)
        plan.tls(manifests, "wms-manifests", t, [("up", size), ("down", 350)], "wms-manifest-upload")
    for n, t in enumerate(plan.every(3600, 60, "wms-api", phase=600)):
        plan.tls(checkin, "wms-api", t, [("up", 1800), ("down", 9000 + n * 100)], "wms-config-sync")


def _customs(plan: _Plan) -> None:
    for n, t in enumerate(plan.irregular(120, 1500, "customs", phase=200)):
        plan.tls(
            CUSTOMS_HOST, "customs-be", t, [("up", 6000 + n * 37), ("down", 1500)], "customs-declaration"
        )
        if n % 2 == 0:
            plan.tls(CUSTOMS_HOST, "customs-edi", t + 30, [("up", 3000), ("down", 800)], "customs-edi")


def _airline(plan: _Plan) -> None:
    for n, t in enumerate(plan.irregular(180, 2400, "airline", phase=450)):
        plan.tls(AIRLINE_HOST, "airline-aws", t, [("up", 4000), ("down", 7000 + n * 50)], "airline-awb")
        plan.tls(AIRLINE_HOST, "airline-dt", t + 45, [("up", 2500), ("down", 1200)], "airline-edi")


def _cameras(plan: _Plan) -> None:
    p2p_address, p2p_name = plan.server("cctv-p2p")
    for i, camera in enumerate(CAMERAS):
        for t in plan.every(300, 10, f"cam-keepalive-{i}", phase=17 + i * 7):
            plan.resolve(camera, p2p_name, p2p_address, t)
            exchanges = (Exchange("c2s", 92), Exchange("s2c", 60))
            plan.conversations.append(
                Conversation(
                    "udp",
                    camera,
                    p2p_address,
                    plan.at(t),
                    plan.port(camera),
                    6800,
                    exchanges,
                    label="cctv-keepalive",
                )
            )
        for n, t in enumerate(plan.every(3600, 300, f"cam-snapshot-{i}", phase=900 + i * 61)):
            size = 35_000 + int(_fraction("snap", i, n) * 15_000)
            plan.tls(camera, "cctv-alarm", t, [("up", size), ("down", 300)], "cctv-snapshot-upload")


def _office(plan: _Plan) -> None:
    for i, host in enumerate(OFFICE):
        for n, t in enumerate(plan.irregular(240, 3000, f"office-{i}", phase=60 + i * 97)):
            plan.tls(host, "ms-login", t, [("up", 1500), ("down", 4500)], "office-login")
            plan.tls(host, "ms-mail", t + 3, [("up", 2500), ("down", 18_000 + n * 400)], "office-mail")
            if n % 2 == 0:
                plan.tls(host, "google", t + 40, [("up", 900), ("down", 6000)], "office-search")
            if n % 3 == 1:
                plan.tls(host, "cloudflare", t + 70, [("up", 700), ("down", 12_000)], "office-cdn")
        update_address, update_name = plan.server("ms-update")
        t = 1800 + i * 400
        plan.resolve(host, update_name, update_address, t)
        http = HttpRequest(
            update_name, "Microsoft-Delivery-Optimization/10.0", path="/d/msdownload/update.cab"
        )
        plan.conversations.append(
            Conversation(
                "tcp", host, update_address, plan.at(t), plan.port(host), 80, (Exchange("s2c", 20_000),),
                http=http, label="office-update",
            )
        )  # fmt: skip


def _hostile(plan: _Plan) -> None:
    host = OFFICE[2]
    t = plan.seconds * 0.4
    plan.tls(host, "hostile-sni", t, [("up", 600), ("down", 2000)], "hostile-sni")
    cdn_address, cdn_name = plan.server("cloudflare")
    http = HttpRequest(cdn_name, HOSTILE_USER_AGENT, path="/ajax/libs/jquery.min.js")
    plan.conversations.append(
        Conversation(
            "tcp",
            host,
            cdn_address,
            plan.at(t + 5),
            plan.port(host),
            80,
            (),
            http=http,
            label="hostile-user-agent",
        )
    )
    long_address, long_name = plan.server("long-name")
    plan.resolve(host, long_name, long_address, t + 10)
    plan.conversations.append(
        Conversation(
            "udp", host, long_address, plan.at(t + 10), plan.port(host), 3478,
            (Exchange("c2s", 200), Exchange("s2c", 200)), label="long-name",
        )
    )  # fmt: skip


def _tunnel(plan: _Plan) -> None:
    """A burst of queries for random-looking subdomains of one domain, as DNS tunnelling tools send."""
    t0 = plan.seconds * 0.55
    for n in range(320):
        digest = hashlib.sha256(f"chunk-{n}".encode()).digest()
        label = base64.b32encode(digest[:30]).decode().rstrip("=").lower()
        name = f"{label}.{n:04x}.{TUNNEL_DOMAIN}"
        lookup = DnsLookup(name, "A", (), ttl=0)
        when = plan.at(t0 + n * 0.25 + _fraction("tunnel", n) * 0.1)
        plan.conversations.append(
            Conversation(
                "udp", TUNNEL_HOST, RESOLVER, when, plan.port(TUNNEL_HOST), 53, dns=lookup, label="dns-tunnel"
            )
        )


def build_scenario(
    addresses: AddressBook, *, start: datetime, hours: float = 6, hostile: bool = False
) -> Scenario:
    """The demo site's conversations over ``hours`` from ``start`` (timezone-aware).

    ``hostile`` adds the conversations that carry hostile strings (markup in a server name, control
    characters in a user agent): the tests' check that every output escapes them. The showcase
    (`derisk demo`) leaves them out."""
    if start.tzinfo is None:
        raise ValueError("the demo start time must be timezone-aware (UTC)")
    if not 0.25 <= hours <= 48:
        raise ValueError(f"the demo covers between 0.25 and 48 hours, not {hours}")
    plan = _Plan(addresses, start, hours)
    parts = (_warehouse, _customs, _airline, _cameras, _office, *((_hostile,) if hostile else ()), _tunnel)
    for part in parts:
        part(plan)
    conversations = tuple(sorted(plan.conversations, key=lambda c: (c.start, c.client_ip, c.client_port)))
    checkin_address, _ = plan.server("wms-checkin")
    highlights = (
        f"The warehouse-management system checks in with {ENDPOINTS['wms-checkin'].name} "
        f"({checkin_address}) every 60 seconds and uploads parcel manifests to Alibaba Cloud storage "
        "in Frankfurt: geolocation says Germany, control lies with Alibaba Group in China.",
        "CCTV cameras phone home to Chinese clouds (Chinanet and Tencent) and upload snapshots.",
        "Customs and airline systems talk to Belgian, EU, AWS and Deutsche Telekom services.",
        f"One office workstation ({TUNNEL_HOST}) sends a burst of queries for random subdomains of "
        f"{TUNNEL_DOMAIN}, the pattern of DNS tunnelling.",
    )
    return Scenario(
        site=site_document(),
        conversations=conversations,
        start=start,
        end=start + timedelta(hours=hours),
        highlights=highlights,
    )
