"""Category-wide registry data (issue 11): brand top-level domains, universities, entity groups."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from derisk.know.attribution import load_index
from derisk.know.curated import check_groups, read_group_files


def _expect(match: Callable[[Any], Any], cases: Mapping[Any, tuple[str, str]]) -> None:
    """Each key matches an entry whose controller and jurisdiction are the expected ones."""
    for key, expected in cases.items():
        found = match(key)
        assert found is not None, key
        assert (found.controller_name, found.jurisdiction) == expected, key


def _doc(**entity: object) -> dict[str, object]:
    base: dict[str, object] = {"id": "acme", "schema": "Company", "name": "Acme Ltd", "sources": ["s"]}
    base.update(entity)
    return {
        "group": "Acme",
        "sources": {
            "s": {"url": "https://example.org/acme", "says": "Acme exists", "accessed": "2026-12-07"}
        },
        "entities": [base],
    }


def test_brand_tld_names_its_registry_operator() -> None:
    index = load_index(None)
    apple = index.match_domain("edge.apple")
    assert apple is not None and apple.org_id == "apple-inc" and apple.jurisdiction == "US"
    google = index.match_domain("blog.google")
    assert google is not None and google.controller_name == "Alphabet Inc."
    # A TLD nobody operates as a brand, and an open generic one, name nobody.
    assert index.match_domain("example.museum") is None
    assert index.match_domain("unknown-name.com") is None


@pytest.mark.parametrize("tld", ["com", "net", "de", "Apple", "app.le", 7])
def test_open_or_malformed_tld_is_refused(tld: object) -> None:
    _, _, problems = check_groups({"acme.yaml": _doc(tlds=[tld])})
    assert any("tld" in p.what for p in problems)


def test_brand_tld_is_accepted_and_indexed_as_a_domain() -> None:
    entities, _, problems = check_groups({"acme.yaml": _doc(tlds=["acme"], domains=["acme.com"])})
    assert not problems
    assert entities[0].domains == ("acme.com", "acme")


def test_entity_group_overrides_the_file_group() -> None:
    entities, _, problems = check_groups({"list.yaml": _doc(group="Acme University")})
    assert not problems
    assert entities[0].group == "Acme University"
    entities, _, _ = check_groups({"list.yaml": _doc()})
    assert entities[0].group == "Acme"


def test_universities_are_their_own_controllers_in_their_country() -> None:
    files = read_group_files()
    assert "universities.json" in files
    index = load_index(None)
    tartu = index.match_domain("ut.ee")
    assert tartu is not None
    assert (tartu.controller_name, tartu.jurisdiction, tartu.confidence) == ("University of Tartu", "EE", "U")
    assert tartu.group == "University of Tartu"
    # The generated list never takes a domain from a curated group, and no two entities claim one.
    assert index.conflicts == []
    mit = index.match_domain("mit.edu")
    assert mit is not None and mit.jurisdiction == "US"


def test_a_university_name_matches_only_in_full() -> None:
    index = load_index(None)
    found = index.match_as_org("George Mason University", "US")
    assert found is not None and found.controller_name == "George Mason University"
    # One word, or a name several universities share, is no match (not a guess made confident).
    assert index.match_as_org("UNIVERSITY", "US") is None
    assert index.match_as_org("State University", "US") is None


def test_media_and_adtech_groups_resolve_to_their_parents() -> None:
    index = load_index(None)
    cases = {
        "espncdn.com": ("The Walt Disney Company", "US"),
        "fwmrm.net": ("Comcast Corporation", "US"),
        "pandora.com": ("Sirius XM Holdings Inc.", "US"),
        "rtl.nl": ("Bertelsmann SE & Co. KGaA", "DE"),
        "wsj.com": ("News Corp", "US"),
        "criteo.net": ("Criteo S.A.", "FR"),
    }
    _expect(index.match_domain, cases)
    bbc = index.match_as_org("BBC", "GB")
    assert bbc is not None and bbc.jurisdiction == "GB"


def test_third_batch_of_categories_resolves_to_controllers() -> None:
    """Carriers of Latin America and Korea, US government networks, Opera, Wix, research bodies, SaaS."""
    index = load_index(None)
    by_asn = {
        6535: ("Carlos Slim Helú", "MX"),  # Telmex Chile, América Móvil
        17858: ("LG Corp.", "KR"),  # LG Powercomm, now LG Uplus
        9318: ("SK Inc.", "KR"),  # SK Broadband, through SK Telecom
        4766: ("KT Corporation", "KR"),
        721: ("United States of America", "US"),  # DoD Network Information Center
        39832: ("Zhou Yahui", "CN"),  # Opera, through Kunlun Tech
    }
    _expect(index.match_asn, by_asn)
    by_domain = {
        "static.wixstatic.com": ("Wix.com Ltd.", "IL"),
        "www.iit.cnr.it": ("Consiglio Nazionale delle Ricerche", "IT"),
        "api.segment.io": ("Twilio Inc.", "US"),
        "c.disquscdn.com": ("Zeta Global Holdings Corp.", "US"),
    }
    _expect(index.match_domain, by_domain)
    # An unrelated company whose name begins like a new alias ("Claro") stays unknown.
    assert index.match_as_org("Claroty LTD", "IL") is None


def test_carriers_of_asia_pacific_india_turkey_and_africa() -> None:
    """State-owned carriers resolve to their state, the others to their group, each in its country."""
    index = load_index(None)
    cases = {
        9829: ("Republic of India", "IN", True),  # BSNL
        9121: ("Republic of Türkiye", "TR", True),  # Türk Telekom
        7552: ("Socialist Republic of Viet Nam", "VN", True),  # Viettel
        7713: ("Republic of Indonesia", "ID", True),  # Telkom Indonesia
        4804: ("Republic of Singapore", "SG", True),  # Optus, through Singtel and Temasek
        55836: ("Mukesh Ambani", "IN", False),  # Reliance Jio
        37978: ("Telstra Group Limited", "AU", False),
        12091: ("MTN Group Limited", "ZA", False),
    }
    for asn, (controller, jurisdiction, state) in cases.items():
        found = index.match_asn(asn)
        assert found is not None, asn
        assert (found.controller_name, found.jurisdiction, found.state_controlled) == (
            controller,
            jurisdiction,
            state,
        )
