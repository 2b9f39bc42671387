"""Research and education networks, domain registries and DNS operators in the shipped registry.

The files below (added for issue 11) are read through the real loader and attributed through the real
index: each AS number is quoted by a source, each source is used, no name collides with another
entity's, and a sample of AS numbers and domains resolves to the right organisation, controller and
jurisdiction instead of falling back to the country where the AS happens to be registered.
"""

from __future__ import annotations

import re

import pytest

from derisk.know.attribution import load_index
from derisk.know.curated import load_curated, read_group_files
from derisk.know.names import comparable

GRAPH = load_curated()
INDEX = load_index()

FILES = frozenset(
    [
        "nren-asia-pacific.yaml",
        "nren-latin-america.yaml",
        "nren-europe-more.yaml",
        "nren-africa-middle-east.yaml",
        "registries-cctld-europe.yaml",
        "registries-cctld-world.yaml",
        "registries-internet-numbers.yaml",
        "dns-infrastructure.yaml",
    ]
)


def _rows() -> list[tuple[str, dict[str, object]]]:
    files = read_group_files()
    return [(name, row) for name in sorted(FILES) for row in files[name].get("entities") or []]


def test_files_are_shipped_and_loaded() -> None:
    assert set(read_group_files()) >= FILES
    ids = [str(row["id"]) for _name, row in _rows()]
    assert len(ids) >= 100
    assert all(entity_id in GRAPH.entities for entity_id in ids)


def test_no_as_number_or_domain_is_claimed_twice() -> None:
    assert INDEX.conflicts == []


def test_each_as_number_is_quoted_by_one_of_the_entitys_sources() -> None:
    checked = 0
    for name, row in _rows():
        entity = GRAPH.entities[str(row["id"])]
        texts = [src.says for src in entity.sources]
        for asn in entity.asns:
            assert any(re.search(rf"\bAS{asn}\b", text) for text in texts), (name, entity.id, asn)
            checked += 1
        assert len(set(entity.asns)) == len(entity.asns), entity.id
    assert checked >= 300


def test_every_source_is_used() -> None:
    used = {src.id for entity in GRAPH.entities.values() for src in entity.sources}
    used |= {link.source.id for link in GRAPH.links if link.source is not None}
    for name, document in read_group_files().items():
        if name in FILES:
            for key in document.get("sources") or {}:
                assert f"{name.removesuffix('.yaml')}.{key}" in used, (name, key)


def test_names_are_usable_and_shared_with_no_other_entity() -> None:
    """A name reducing to one or two letters matched random text; a name shared with another entity
    made AS-name matching ambiguous (it then attaches to neither)."""
    owners: dict[str, set[str]] = {}
    for entity in GRAPH.entities.values():
        for label in (entity.name, *entity.aliases):
            owners.setdefault(comparable(label), set()).add(entity.id)
    for _name, row in _rows():
        entity = GRAPH.entities[str(row["id"])]
        for label in (entity.name, *entity.aliases):
            reduced = comparable(label)
            assert reduced and len(reduced) >= 3, (entity.id, label)
            assert owners[reduced] == {entity.id}, (entity.id, label, owners[reduced])


@pytest.mark.parametrize(
    ("asn", "operator", "controller", "jurisdiction", "state"),
    [
        # national research and education networks
        (55824, "National Knowledge Network", "National Informatics Centre", "IN", True),
        (2697, "ERNET India", "ERNET India", "IN", True),
        (1237, "Korea Institute of Science and Technology Information", None, "KR", False),
        (38022, "Research and Education Advanced Network New Zealand", None, "NZ", False),
        (3662, "Joint Universities Computer Centre Limited", None, "HK", False),
        (17965, "China Science and Technology Network", "Computer Network Information Center", "CN", True),
        (27750, "Cooperación Latino Americana de Redes Avanzadas", None, "UY", False),
        (11340, "Red Universitaria Nacional", None, "CL", False),
        (9112, None, None, "PL", False),
        (8517, "National Academic Network and Information Center", None, "TR", True),
        (2614, None, None, "RO", True),
        (2107, "Akademska in raziskovalna mreža Slovenije", None, "SI", True),
        (3319, None, None, "UA", False),
        (36914, "Kenya Education Network", None, "KE", False),
        (199354, None, None, "DE", False),
        # domain and number registries, DNS operators
        (25192, "CZ.NIC, z.s.p.o.", "CZ.NIC, z.s.p.o.", "CZ", False),
        (31529, "DENIC eG", "DENIC eG", "DE", False),
        (1140, "Stichting Internet Domeinregistratie Nederland", None, "NL", False),
        (43519, "Nominet UK", None, "GB", False),
        (18245, "China Internet Network Information Center", None, "CN", True),
        (9858, "Korea Internet & Security Agency", None, "KR", True),
        (3333, "Réseaux IP Européens Network Coordination Centre", None, "NL", False),
        (4608, "Asia Pacific Network Information Centre", None, "AU", False),
        (28000, None, None, "UY", False),
        (37708, None, None, "MU", False),
        (7342, "VeriSign Global Registry Services", "VeriSign, Inc.", "US", False),
        (12041, "Afilias, Inc.", "Identity Digital Inc.", "US", False),
        (8674, "Netnod AB", None, "SE", False),
    ],
)
def test_as_numbers_attribute_to_the_organisation(
    asn: int, operator: str | None, controller: str | None, jurisdiction: str, state: bool
) -> None:
    match = INDEX.match_asn(asn)
    assert match is not None
    assert match.jurisdiction == jurisdiction
    assert match.state_controlled is state
    if operator is not None:
        assert match.org_name == operator
    if controller is not None:
        assert controller in (match.controller_name or "")
    else:
        assert match.controller_name


@pytest.mark.parametrize(
    ("domain", "controller", "jurisdiction"),
    [
        ("example.com", "Internet Corporation for Assigned Names and Numbers", "US"),
        ("nic.cz", "CZ.NIC, z.s.p.o.", "CZ"),
        ("nkn.in", "National Informatics Centre", "IN"),
        ("ripe.net", "Réseaux IP Européens Network Coordination Centre", "NL"),
        ("registro.br", "Núcleo de Informação e Coordenação do Ponto BR", "BR"),
        ("pir.org", "Internet Society (ISOC)", "US"),
    ],
)
def test_domains_attribute_to_their_controller(domain: str, controller: str, jurisdiction: str) -> None:
    match = INDEX.match_domain(domain)
    assert match is not None
    assert (match.controller_name, match.jurisdiction) == (controller, jurisdiction)


def test_organisation_names_from_the_asn_data_attach_to_the_entity() -> None:
    """Other AS numbers registered under the same organisation name join the entity by name; a name
    that only resembles it (an ISP called 'Internet Company of New Zealand') does not."""
    cnnic = INDEX.match_as_org("China Internet Network Information Center", "CN")
    assert cnnic is not None and cnnic.org_id == "cnnic"
    for unrelated in (
        "INTERNET COMPANY OF NEW ZEALAND LIMITED",
        "ISC Group",
        '"Internet Society" Public Organisation',
    ):
        match = INDEX.match_as_org(unrelated, None)
        assert match is None or match.org_id not in {row["id"] for _name, row in _rows()}, unrelated
