"""The shipped registry as a whole: consistent, sourced, and covering the networks traffic goes to.

``test_know_curated.py`` checks the loader (every key, every problem reported). This file checks the
data the loader accepts: no AS number or domain claimed twice, names that fuzzy matching can use,
each AS number of the global-infrastructure groups quoted by a source, and the networks a European
site meets most (hypergiants, CDNs, clouds, hosters, carriers) attributed to the right controller
and jurisdiction instead of the country where an AS happens to be registered.
"""

from __future__ import annotations

import re

import pytest

from derisk.know.attribution import load_index
from derisk.know.curated import check_groups, load_curated, read_group_files
from derisk.know.names import comparable

GRAPH = load_curated()
INDEX = load_index()

#: The global-infrastructure half of the registry (docs/know.md, "Registry scope"): every AS number
#: attached in these files must be quoted by one of the entity's sources.
INFRASTRUCTURE_FILES = frozenset(
    f"{name}.yaml"
    for name in [
        "adobe",
        "belgium-access",
        "verizon",
        "gen-digital",
        "ubisoft",
        "zegona",
        "proton",
        "roblox",
        "qualcomm",
        "nvidia",
        "messaging-services",
        "ck-hutchison",
        "saas-services",
        "bosch",
        "cdn-hosting-eu",
        "enbw",
        "godaddy",
        "honeywell",
        "schneider-electric",
        "siemens",
        "web-platforms",
        "automattic",
        "booking",
        "ebay",
        "m247",
        "mozilla",
        "paypal",
        "telecom-italia",
        "akamai",
        "altice-france",
        "amazon",
        "ams-ix",
        "apple",
        "arelion",
        "belnet",
        "bouygues",
        "cisco",
        "cloudflare",
        "cogent",
        "colt",
        "contabo",
        "de-cix",
        "deutsche-telekom",
        "digitalocean",
        "dropbox",
        "edgio",
        "equinix",
        "fastly",
        "gcore",
        "google",
        "gtt",
        "hetzner",
        "hurricane-electric",
        "ibm",
        "iliad",
        "kpn",
        "leaseweb",
        "liberty-global",
        "lumen",
        "meta",
        "microsoft",
        "netcologne",
        "netflix",
        "ntt",
        "odido",
        "oracle",
        "orange",
        "ovhcloud",
        "proximus",
        "salesforce",
        "spotify",
        "swisscom",
        "tata-communications",
        "telefonica",
        "telia",
        "thales",
        "united-internet",
        "valve",
        "vodafone",
        "vultr",
        "wikimedia",
        "x-corp",
        "yahoo",
        "zayo",
        "zenlayer",
        "zoom",
        "zscaler",
        "aruba",
        "chunghwa-telecom",
        "ca-digicert",
        "ca-sectigo",
        "ca-globalsign",
        "ca-isrg",
        "ca-identrust",
        "ca-asseco",
        "ca-bundesdruckerei",
        "ca-swisssign",
        "ca-buypass",
        "ca-harica",
        "ca-ssl-com",
        "ca-secom",
        "ca-microsec",
        "ca-wisekey",
        "ca-emudhra",
        "ca-infocert",
        "ca-certigna",
        "ca-cfca",
        "ca-trustasia",
        "ca-gdca",
        "ca-sheca",
        "ca-entrust",
        "nren-dfn",
        "nren-renater",
        "nren-garr",
        "nren-surf",
        "nren-jisc",
        "nren-rediris",
        "nren-switch",
        "nren-nordunet",
        "nren-aconet",
        "nren-cesnet",
        "nren-internet2",
        "nren-esnet",
        "nren-cernet",
        "nren-aarnet",
        "nren-canarie",
        "nren-heanet",
        "nren-grnet",
        "nren-csc",
        "nren-sikt",
        "nren-sunet",
        "nren-deic",
        "nren-fccn",
        "nren-geant",
        # registry by address space (docs/evaluation.md, "Registry by address space (2026-12-07)")
        "carrier-subsidiaries",
        "carriers-middle-east",
        "carriers-europe",
        "public-networks",
        "enterprise-networks",
        "carriers-americas",
        "carriers-asia-pacific",
        "carriers-national",
    ]
)
#: Private-use and documentation AS numbers (RFC 6996, RFC 5398) and AS_TRANS (RFC 6793).
_RESERVED = [(0, 0), (23456, 23456), (64496, 65535), (4200000000, 4294967295)]


def _quoted(asn: int, texts: list[str]) -> bool:
    for text in texts:
        if re.search(rf"\bAS{asn}\b", text):
            return True
        if any(int(a) <= asn <= int(b) for a, b in re.findall(r"AS(\d+)\s*-\s*AS(\d+)", text)):
            return True
    return False


def test_no_as_number_or_domain_is_claimed_twice() -> None:
    assert INDEX.conflicts == []


def test_as_numbers_are_public_and_listed_once_per_entity() -> None:
    for entity in GRAPH.entities.values():
        assert len(set(entity.asns)) == len(entity.asns), entity.id
        assert len(set(entity.domains)) == len(entity.domains), entity.id
        for asn in entity.asns:
            assert not any(low <= asn <= high for low, high in _RESERVED), (entity.id, asn)


def _infrastructure_entities() -> list[str]:
    files = read_group_files()
    return [row["id"] for name in sorted(INFRASTRUCTURE_FILES) for row in files[name].get("entities") or []]


def test_every_attributing_entity_has_a_name_search_can_use() -> None:
    """A name or alias that reduces to one or two letters ("X", "X Corp.") matched random text, and a
    flow-style alias with an unquoted comma ("CISCO SYSTEMS, INC.") split into a bare "INC."."""
    for entity_id in _infrastructure_entities():
        entity = GRAPH.entities[entity_id]
        if entity.asns or entity.domains:
            assert entity.aliases, entity.id
        for name in (entity.name, *entity.aliases):
            reduced = comparable(name)
            assert reduced and len(reduced) >= 3, (entity.id, name, reduced)


def test_no_two_entities_share_a_reduced_name() -> None:
    """A subsidiary named like its parent ("Microsoft Limited", "Vodafone GmbH") made the supplier name
    "Microsoft" ambiguous: name search drops company forms, so both reduce to the same words."""
    owners: dict[str, set[str]] = {}
    for entity in GRAPH.entities.values():
        for name in (entity.name, *entity.aliases):
            owners.setdefault(comparable(name), set()).add(entity.id)
    mine = set(_infrastructure_entities())
    shared = {key: ids for key, ids in owners.items() if key and len(ids) > 1 and ids & mine}
    assert shared == {}


def test_every_source_of_the_registry_is_used() -> None:
    used = {src.id for entity in GRAPH.entities.values() for src in entity.sources}
    used |= {link.source.id for link in GRAPH.links if link.source is not None}
    used |= {a.source.id for a in GRAPH.assessments}
    for name, document in read_group_files().items():
        if name not in INFRASTRUCTURE_FILES:
            continue
        for key in document.get("sources") or {}:
            assert f"{name.removesuffix('.yaml')}.{key}" in used, (name, key)


def test_infrastructure_files_are_present() -> None:
    assert set(read_group_files()) >= INFRASTRUCTURE_FILES
    assert len(INFRASTRUCTURE_FILES) >= 60


def test_each_infrastructure_as_number_is_quoted_by_a_source() -> None:
    checked = 0
    for name, document in read_group_files().items():
        if name not in INFRASTRUCTURE_FILES:
            continue
        for row in document.get("entities") or []:
            entity = GRAPH.entities[row["id"]]
            texts = [src.says for src in entity.sources]
            for asn in entity.asns:
                assert _quoted(asn, texts), (name, entity.id, asn)
                checked += 1
    assert checked >= 500


@pytest.mark.parametrize(
    ("asn", "operator", "controller", "jurisdiction"),
    [
        (32934, "Meta Platforms, Inc.", "Meta Platforms, Inc.", "US"),
        (11917, "WhatsApp LLC", "Meta Platforms, Inc.", "US"),
        (20940, "Akamai International B.V.", "Akamai Technologies, Inc.", "US"),
        (63949, "Akamai Technologies, Inc.", "Akamai Technologies, Inc.", "US"),
        (48337, "Linode, LLC", "Akamai Technologies, Inc.", "US"),
        (714, "Apple Inc.", "Apple Inc.", "US"),
        (2906, "Netflix Streaming Services Inc.", "Netflix, Inc.", "US"),
        (54113, "Fastly, Inc.", "Fastly, Inc.", "US"),
        (31898, "Oracle Corporation", "Oracle Corporation", "US"),
        (
            36351,
            "International Business Machines Corporation",
            "International Business Machines Corporation",
            "US",
        ),
        (8068, "Microsoft Corporation", "Microsoft Corporation", "US"),
        (8075, "Microsoft Corporation", "Microsoft Corporation", "US"),
        (396982, "Google LLC", "Alphabet Inc.", "US"),
        (43515, "Google Ireland Limited", "Alphabet Inc.", "US"),
        (8987, "Amazon Data Services Ireland Ltd", "Amazon.com, Inc.", "US"),
        (209242, "Cloudflare, Inc.", "Cloudflare, Inc.", "US"),
        (14061, "DigitalOcean, LLC", "DigitalOcean, LLC", "US"),
        (24940, "Hetzner Online GmbH", "Hetzner Online GmbH", "DE"),
        (16276, "OVH SAS", "OVH Groupe SA", "FR"),
        (20473, "The Constant Company, LLC", "The Constant Company, LLC", "US"),
        (60781, "LeaseWeb Netherlands B.V.", "Leaseweb Global B.V.", "NL"),
        (199524, "G-Core Labs S.A.", "Victor Kislyi", "BY"),
        (3356, "Level 3 Parent, LLC", "Lumen Technologies, Inc.", "US"),
        (174, "Cogent Communications, LLC", "Cogent Communications, LLC", "US"),
        (2914, "NTT America, Inc.", "NTT, Inc.", "JP"),
        (6939, "Hurricane Electric LLC", "Hurricane Electric LLC", "US"),
        (5511, "Orange S.A.", "Orange S.A.", "FR"),
        (12392, "VOO SA", "Orange S.A.", "FR"),
        (3320, "Deutsche Telekom AG", "Deutsche Telekom AG", "DE"),
        (1136, "KPN B.V.", "Koninklijke KPN N.V.", "NL"),
        (6848, "Telenet BV", "John C. Malone", "US"),
    ],
)
def test_infrastructure_as_attributes_to_its_controller(
    asn: int, operator: str, controller: str, jurisdiction: str
) -> None:
    match = INDEX.match_asn(asn)
    assert match is not None
    assert (match.org_name, match.controller_name, match.jurisdiction) == (operator, controller, jurisdiction)


@pytest.mark.parametrize(
    ("asn", "state"),
    [
        (3303, "Swiss Confederation"),
        (5432, "Belgian State"),
        (6774, "Belgian State"),
        (8422, "City of Cologne"),
    ],
)
def test_state_controlled_carriers(asn: int, state: str) -> None:
    match = INDEX.match_asn(asn)
    assert match is not None and match.state_controlled and match.controller_name == state


@pytest.mark.parametrize(
    ("asn", "jurisdiction"),
    [(5511, "FR"), (3301, "SE"), (2914, "JP"), (3352, "ES"), (3320, "DE")],
)
def test_minority_state_stakes_do_not_make_a_carrier_state_controlled(asn: int, jurisdiction: str) -> None:
    match = INDEX.match_asn(asn)
    assert match is not None and not match.state_controlled and match.jurisdiction == jurisdiction


def test_joint_ventures_name_no_single_controller() -> None:
    for asn in (33915, 5089):  # VodafoneZiggo, Virgin Media O2: 50:50 joint ventures
        match = INDEX.match_asn(asn)
        assert match is not None
        assert match.controller_name == match.org_name  # the JV itself: neither parent controls it


@pytest.mark.parametrize(
    ("name", "controller"),
    [
        ("mmg-fna.whatsapp.net", "Meta Platforms, Inc."),
        ("scontent.fbcdn.net", "Meta Platforms, Inc."),
        ("a1.akamaiedge.net", "Akamai Technologies, Inc."),
        ("akamaized.net", "Akamai Technologies, Inc."),
        ("ipv4-c001.1.oca.nflxvideo.net", "Netflix, Inc."),
        ("gsp-ssl.ls.aaplimg.com", "Apple Inc."),
        ("github.com", "Microsoft Corporation"),
        ("x.com", "Elon Musk"),
        ("d1.cloudfront.net", "Amazon.com, Inc."),
        ("steamcontent.com", "Valve Corporation"),
        ("spotify.com", "Spotify founders (Daniel Ek and Martin Lorentzon)"),
    ],
)
def test_service_domains_attribute_to_their_group(name: str, controller: str) -> None:
    match = INDEX.match_domain(name)
    assert match is not None and match.controller_name == controller


def test_every_infrastructure_as_and_domain_resolves_to_a_jurisdiction() -> None:
    """A controller without a country (a person, a founders' group) left the jurisdiction unknown."""
    for entity_id in _infrastructure_entities():
        entity = GRAPH.entities[entity_id]
        for asn in entity.asns:
            match = INDEX.match_asn(asn)
            assert match is not None and match.jurisdiction, (entity_id, asn)
        for domain in entity.domains:
            match = INDEX.match_domain(domain)
            assert match is not None and match.jurisdiction, (entity_id, domain)


@pytest.mark.parametrize(
    ("name", "controller", "jurisdiction"),
    [
        ("ocsp.digicert.com", "DigiCert, Inc.", "US"),
        ("r3.o.lencr.org", "Internet Security Research Group", "US"),
        ("ocsp.sectigo.com", "GI Partners", "US"),
        ("ocsp.usertrust.com", "GI Partners", "US"),
        ("ocsp.globalsign.com", "GMO Internet Group, Inc.", "JP"),
        ("ocsp.pki.goog", "Alphabet Inc.", "US"),
        ("ocsp09.actalis.it", "Aruba S.p.A.", "IT"),
        ("isrg.trustid.ocsp.identrust.com", "ASSA ABLOY AB", "SE"),
        ("crl.d-trust.net", "Federal Republic of Germany", "DE"),
        ("ocsp.swisssign.net", "Swiss Confederation", "CH"),
        ("ocsp.telesec.de", "Deutsche Telekom AG", "DE"),
        ("ocsp.msocsp.com", "Microsoft Corporation", "US"),
        ("ocsp.cfca.com.cn", "China Financial Certification Authority Co., Ltd.", "CN"),
    ],
)
def test_certificate_authority_hosts_attribute_to_the_ca_owner(
    name: str, controller: str, jurisdiction: str
) -> None:
    """OCSP, CRL and issuer hosts of the CA owners in Mozilla's root store (CCADB) name their controller."""
    match = INDEX.match_domain(name)
    assert match is not None, name
    assert (match.controller_name, match.jurisdiction) == (controller, jurisdiction)


@pytest.mark.parametrize(
    ("asn", "jurisdiction"),
    [
        (680, "DE"),
        (2200, "FR"),
        (137, "IT"),
        (1103, "NL"),
        (786, "GB"),
        (766, "ES"),
        (4538, "CN"),
        (11537, "US"),
    ],
)
def test_research_networks_attribute_to_their_country(asn: int, jurisdiction: str) -> None:
    match = INDEX.match_asn(asn)
    assert match is not None and match.jurisdiction == jurisdiction and match.controller_name


def test_listed_domains_join_the_entity_with_their_source() -> None:
    base = {"url": "https://example.org/a", "says": "a list", "accessed": "2026-12-06"}
    document = {
        "group": "G",
        "sources": {"own": base, "list": base | {"url": "https://example.org/list"}},
        "entities": [
            {
                "id": "g-one",
                "schema": "Company",
                "name": "G One",
                "domains": ["g.example"],
                "listed_domains": {"list": ["g-cdn.example", "g.example"]},
                "sources": ["own"],
            }
        ],
    }
    entities, _, problems = check_groups({"g.yaml": document})
    assert problems == []
    assert entities[0].domains == ("g.example", "g-cdn.example")
    assert {s.url for s in entities[0].sources} == {"https://example.org/a", "https://example.org/list"}


def test_listed_domains_need_a_defined_source_and_valid_domains() -> None:
    base = {"url": "https://example.org/a", "says": "a list", "accessed": "2026-12-06"}
    entity = {"id": "g-one", "schema": "Company", "name": "G One", "sources": ["own"]}
    document = {"group": "G", "sources": {"own": base}, "entities": [entity]}
    entity["listed_domains"] = {"nowhere": ["g.example"], "own": ["Not A Domain", "ok.example"]}
    entities, _, problems = check_groups({"g.yaml": document})
    texts = [p.what for p in problems]
    assert any("'nowhere' is not defined" in t for t in texts), texts
    assert any("'Not A Domain'" in t for t in texts), texts
    assert entities[0].domains == ("ok.example",)
    entity["listed_domains"] = ["g.example"]
    _, _, problems = check_groups({"g.yaml": document})
    assert [p.what for p in problems] == ["listed_domains must map a source key to a list of domains"]


@pytest.mark.parametrize(
    ("asn", "controller", "jurisdiction"),
    [
        # registry by address space (docs/evaluation.md, "Registry by address space (2026-12-07)")
        (8447, "Carlos Slim Helú", "MX"),  # A1 Telekom Austria, an AS of a group already curated
        (26615, "Telecom Italia S.p.A.", "IT"),  # TIM Brasil through TIM Brasil Serviços e Participações
        (25019, "Kingdom of Saudi Arabia", "SA"),  # stc through the Public Investment Fund
        (6713, "United Arab Emirates", "AE"),  # Maroc Telecom through e& (53%)
        (16135, "Republic of Türkiye", "TR"),  # Turkcell: the wealth fund's 26.2% is controlling by statute
        (2119, "Kingdom of Norway", "NO"),
        (203665, "United Kingdom of Great Britain and Northern Ireland", "GB"),
        (209502, "French Republic", "FR"),  # EDF after the 2023 squeeze-out
        (5650, "Verizon Communications Inc.", "US"),  # Frontier, acquired January 2026
        (1540, "United States of America", "US"),  # the Army's USAISC through the Department of Defense
        (24921, "Republic of Latvia", "LV"),  # LMT: 28% directly plus 23% through state-controlled Tet
    ],
)
def test_address_space_additions_attribute_to_their_controller(
    asn: int, controller: str, jurisdiction: str
) -> None:
    match = INDEX.match_asn(asn)
    assert match is not None
    assert (match.controller_name, match.jurisdiction) == (controller, jurisdiction)


@pytest.mark.parametrize(
    ("asn", "jurisdiction"),
    [
        (12479, "ES"),  # MasOrange: Orange and the KKR/Cinven/Providence funds at 50% each
        (9824, "JP"),  # JCOM: KDDI and Sumitomo Corporation at 50% each
        (7545, "AU"),  # TPG Telecom: Vodafone and CK Hutchison at 25.05% each
        (7303, "AR"),  # Telecom Argentina: CVH and Fintech at 40% each
        (58224, "IR"),  # TCI: the Mobin consortium's 50%-plus-one stake is disputed
    ],
)
def test_shared_or_disputed_control_names_the_company_itself(asn: int, jurisdiction: str) -> None:
    match = INDEX.match_asn(asn)
    assert match is not None
    assert (match.controller_name, match.jurisdiction) == (match.org_name, jurisdiction)
