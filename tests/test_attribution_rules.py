"""General service rules: a brand under another public suffix, the operator's own service.

End to end on generated Zeek logs (conn.log + ssl.log) through ``derisk analyze`` with the real IP
data fixture and the curated control graph; the rules' edges on a graph built for the test. Every
rule has its negative cases: a customer's domain on a CDN or cloud, a brand on another group's
network, look-alikes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from derisk.cli import main
from derisk.enrich.attribution import attribute
from derisk.enrich.ipdata import load_ipdata
from derisk.enrich.service_rules import BRAND_BASIS, INFERRED_CONFIDENCE, OPERATOR_BASIS
from derisk.gen.zeek import Session, build_logs, write_logs
from derisk.know.attribution import AttributionIndex, build_index, load_index
from derisk.know.graph import build_graph
from know_helpers import company, own

T0 = 1_793_000_000.0
SITE = "site: test\ninternal_networks: [10.1.0.0/24]\nsystems:\n  - {name: hmi, hosts: [10.1.0.5/32]}\n"
#: Country suffixes a test may put a brand under; the first the curated registry does not list is used,
#: so the test keeps testing the rule when the registry grows.
SUFFIXES = ("kp", "com.kp", "er", "com.er", "tk", "ml", "gq", "cf", "ga", "aq", "nf", "sx")


def _unlisted(index: AttributionIndex, label: str) -> str:
    for suffix in SUFFIXES:
        if index.match_domain(f"{label}.{suffix}") is None:
            return f"{label}.{suffix}"
    raise AssertionError(f"every test suffix of {label} is curated")


def _analyze(tmp_path: Path, sessions: list[Session]) -> dict[str, dict[str, Any]]:
    logs, _ = build_logs(sessions, seed=7)
    folder = tmp_path / "zeek"
    write_logs(folder, logs, fmt="tsv")
    (tmp_path / "site.yaml").write_text(SITE, encoding="utf-8")
    out = tmp_path / "a.json"
    args = ["analyze", str(folder), "-w", str(tmp_path / "ws"), "--site", str(tmp_path / "site.yaml")]
    assert main([*args, "--json", str(out), "-q"]) == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return {d["ip"]: d for d in doc["destinations"]}


def _tls(server: str, name: str, offset: float) -> Session:
    return Session("10.1.0.5", server, T0 + offset, 5_000, 20_000, name=name, name_via="sni", service="ssl")


def test_a_brand_under_another_suffix_on_its_own_group_s_network_end_to_end(
    tmp_path: Path, data_env: Path
) -> None:
    index = load_index(None)
    brand, alike = _unlisted(index, "google"), _unlisted(index, "g00gle")
    data = load_ipdata(data_env)
    google = data.sample_addresses(15169, None, 2)
    akamai = data.sample_addresses(20940, None, 1)[0]
    dests = _analyze(
        tmp_path,
        [
            _tls(google[0], f"www.{brand}", 0),
            _tls(akamai, f"www.{brand}", 10),
            _tls(google[1], f"www.{alike}", 20),
        ],
    )

    served = dests[google[0]]
    assert served["service"]["controller"] == "Alphabet Inc." and served["service"]["jurisdiction"] == "US"
    assert (served["service"]["basis"], served["service"]["confidence"]) == (BRAND_BASIS, INFERRED_CONFIDENCE)
    assert served["service"]["organisation"] == "Google LLC"
    # the combined answer is the service, and says on which basis
    assert (served["controller"], served["organisation_basis"]) == ("Alphabet Inc.", BRAND_BASIS)
    assert served["jurisdiction_basis"] == "registry"
    assert served["attribution_path"][0].startswith(f"{brand}: the brand 'google' of Google LLC (google.")
    bases = {
        b["basis"]: b for b in json.loads((tmp_path / "a.json").read_text())["attribution_bases"]["service"]
    }
    assert bases[BRAND_BASIS]["destinations"] == 1

    # the same brand on another group's network (an Akamai edge): no corroboration, unknown
    elsewhere = dests[akamai]
    assert elsewhere["service"]["basis"] == "unknown" and elsewhere["service"]["controller"] is None
    assert elsewhere["controller"] is None
    # a look-alike on Google's own network is nobody's brand
    fake = dests[google[1]]
    assert fake["service"]["basis"] == "unknown" and fake["controller"] is None


def test_the_operator_s_own_service_but_never_a_customer_s_on_a_cdn_end_to_end(
    tmp_path: Path, data_env: Path
) -> None:
    index = load_index(None)
    own, other = _unlisted(index, "deutsche-telekom"), _unlisted(index, "akamai")
    data = load_ipdata(data_env)
    dtag = data.sample_addresses(3320, None, 1)[0]
    akamai, amazon = data.sample_addresses(20940, None, 2), data.sample_addresses(16509, None, 2)
    dests = _analyze(
        tmp_path,
        [
            _tls(dtag, f"kundencenter.{own}", 0),
            _tls(akamai[0], f"www.{other}", 5),
            # customers of a CDN and of a cloud: their names do not name the operator
            _tls(akamai[1], "shop.customer-brand.de", 10),
            _tls(amazon[0], "app.launch-example.io", 20),
            # look-alikes of the cloud's name: a prefix or a spelling variant names nobody
            _tls(amazon[1], "www.amazon-deals.de", 30),
        ],
    )

    mine = dests[dtag]
    assert mine["service"]["controller"] == "Deutsche Telekom AG" and mine["service"]["jurisdiction"] == "DE"
    assert (mine["service"]["basis"], mine["service"]["confidence"]) == (OPERATOR_BASIS, INFERRED_CONFIDENCE)
    assert mine["controller"] == "Deutsche Telekom AG" and mine["organisation_basis"] == OPERATOR_BASIS
    edge = dests[akamai[0]]
    # the CDN's own name on the CDN: Akamai (as a brand when the registry lists akamai.com, else by name)
    assert edge["service"]["basis"] in (BRAND_BASIS, OPERATOR_BASIS)
    assert edge["controller"] == "Akamai Technologies, Inc."

    for address in (akamai[1], amazon[0], amazon[1]):
        customer = dests[address]
        assert customer["service"]["basis"] == "unknown", customer["domains"]
        assert customer["service"]["controller"] is None and customer["controller"] is None
        assert customer["infrastructure"]["controller"] is not None  # the operator's own layer stays


# -- the rules' edges, on a graph built for the test --------------------------------------------


def _index() -> AttributionIndex:
    return build_index(
        build_graph(
            [
                company(
                    "meta",
                    "Meta Platforms, Inc.",
                    aliases=("Facebook",),
                    asns=(32934,),
                    domains=("facebook.com",),
                ),
                company("insta", "Instagram, LLC", aliases=("Instagram",), domains=("instagram.com",)),
                company(
                    "goog",
                    "Google LLC",
                    aliases=("Google",),
                    asns=(15169,),
                    domains=("google.com", "run.app"),
                ),
                company("akamai", "Akamai Technologies, Inc.", aliases=("Akamai",), asns=(20940,)),
                company(
                    "orange-fr",
                    "Orange S.A.",
                    country="FR",
                    aliases=("Orange",),
                    asns=(3215,),
                    domains=("orange.fr",),
                ),
                company(
                    "orange-pl", "Orange Polska", country="PL", aliases=("Orange",), domains=("orange.pl",)
                ),
                company("bt", "BT Group plc", country="GB", aliases=("BT",), asns=(2856,)),
                company("ing", "ING Bank N.V.", country="NL", asns=(15625,)),
            ],
            [own("meta", "insta", 100.0)],
        )
    )


def _rows(keys: list[tuple[int, str]], index: AttributionIndex) -> list[dict[str, Any]]:
    table = pa.Table.from_pylist(
        [
            {"dst_asn": asn, "dst_domain": domain, "dst_as_country": "US", "dst_as_org": None}
            for asn, domain in keys
        ],
        schema=pa.schema(
            [
                pa.field("dst_asn", pa.int64()),
                pa.field("dst_domain", pa.string()),
                pa.field("dst_as_country", pa.string()),
                pa.field("dst_as_org", pa.string()),
            ]
        ),
    )
    rows: list[dict[str, Any]] = attribute(table, index).to_pylist()
    return rows


@pytest.mark.parametrize(
    ("asn", "domain", "basis", "controller"),
    [
        # a subsidiary's brand on its parent's network: the subsidiary, under the parent
        (32934, "instagram.de", BRAND_BASIS, "Meta Platforms, Inc."),
        (15169, "google.com.kp", BRAND_BASIS, "Google LLC"),
        # a brand of one group on another group's network: nothing
        (20940, "google.it", "unknown", None),
        (32934, "google.it", "unknown", None),
        # a group's service word is no brand: a customer's run.de on Google's cloud stays unknown
        (15169, "run.de", "unknown", None),
        # one label, two controllers (Orange S.A. and a namesake under no common controller): only
        # the one whose network serves it
        (3215, "orange.es", BRAND_BASIS, "Orange S.A."),
        # the operator's own service: the name names the operator whole
        (2856, "bt.co.uk", "unknown", None),  # two letters say too little
        (15625, "ingbank.nl", OPERATOR_BASIS, "ING Bank N.V."),
        (15625, "ing.nl", "unknown", None),  # "ING Bank" reduced is not "ing": no partial names
        (20940, "akamai.kp", OPERATOR_BASIS, "Akamai Technologies, Inc."),
        (20940, "akamai-cdn.kp", "unknown", None),
        (20940, "akamia.kp", "unknown", None),
        # attacker-controlled text: hidden characters do not make a look-alike read as the brand
        (15169, "goo\x00gle.it", "unknown", None),
        (15169, "g\u200boogle.it", "unknown", None),
        (20940, "aka\x00mai.kp", "unknown", None),
    ],
)
def test_rule_edges(asn: int, domain: str, basis: str, controller: str | None) -> None:
    (row,) = _rows([(asn, domain)], _index())
    assert (row["dst_service_basis"], row["dst_service_controller"]) == (basis, controller)
    assert row["dst_controller"] == controller
    if controller is not None:
        assert row["dst_service_confidence"] == INFERRED_CONFIDENCE and row["dst_org_basis"] == basis


def test_a_listed_domain_stays_a_curated_fact() -> None:
    (row,) = _rows([(15169, "google.com")], _index())
    assert (row["dst_service_basis"], row["dst_service_confidence"]) == ("domain", "V")


def test_a_name_without_a_known_operator_is_left_alone() -> None:
    (row,) = _rows([(64500, "google.it")], _index())
    assert row["dst_service_basis"] == "unknown" and row["dst_controller"] is None
