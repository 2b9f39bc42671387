"""Supplier risk factors: each finding with its evidence and a sentence, from graph and legal base."""

from __future__ import annotations

from derisk.know.curated import load_curated
from derisk.know.names import comparable, find_entities, pick
from derisk.know.risk import FACTORS, supplier_risk, third_country
from know_helpers import ent, graph, own


def test_state_controlled_third_country_supplier() -> None:
    g = graph(
        [ent("vendor", country="CN"), ent("sasac", country="CN", state=True)],
        [own("sasac", "vendor", kind="state")],
    )
    factors = supplier_risk(g, "vendor")
    assert [f.factor for f in factors] == list(FACTORS)
    by = {f.factor: f for f in factors}
    assert by["government-link"].finding == "present" and by["government-link"].evidence
    assert by["legislation"].finding == "present"
    assert "National Intelligence Law Art. 7 [V]" in by["legislation"].sentence
    assert "not legal advice" in by["legislation"].sentence
    assert by["pressure"].finding == "present" and "state of CN" in by["pressure"].sentence
    for factor in factors:
        assert factor.sentence and factor.title


def test_eu_state_owner_is_not_a_third_country_link() -> None:
    g = graph([ent("telco", country="BE"), ent("be", country="BE", state=True)], [own("be", "telco", 53.51)])
    by = {f.factor: f for f in supplier_risk(g, "telco")}
    assert by["government-link"].finding == "not found"
    assert by["legislation"].finding == "not found" and "EU law" in by["legislation"].sentence
    assert any("2016/679" in e for e in by["legislation"].evidence)
    assert by["pressure"].finding == "not found"


def test_disputed_state_link_and_vie_are_explained() -> None:
    g = graph(
        [
            ent("op", country="CN"),
            ent("hold", country="KY", control="CN"),
            ent("st", country="CN", state=True),
        ],
        [
            own("hold", "op", kind="control", control_type="VIE contractual arrangements"),
            own("st", "hold", kind="control", disputed=True, confidence="U"),
        ],
    )
    by = {f.factor: f for f in supplier_risk(g, "op")}
    assert by["government-link"].finding == "disputed"
    own_sentence = by["ownership"].sentence
    assert "incorporated in KY but control is exercised from CN" in own_sentence
    assert "VIE" in own_sentence


def test_unknown_jurisdiction_is_unknown_not_safe() -> None:
    g = graph([ent("x", country=None)], [])
    by = {f.factor: f for f in supplier_risk(g, "x")}
    assert by["legislation"].finding == "unknown" and by["pressure"].finding == "unknown"
    assert third_country(None) is None and third_country("BE") is False and third_country("CN") is True


def test_published_assessment_feeds_supply_continuity() -> None:
    by = {f.factor: f for f in supplier_risk(load_curated(), "huawei-cloud")}
    assert by["supply-continuity"].finding == "present"
    assert "materially higher-risk" in by["supply-continuity"].sentence
    assert by["government-link"].finding == "disputed"


def test_names_tolerate_accents_transliteration_and_company_forms() -> None:
    assert comparable("Cainiao Liège eHub") == comparable("CAINIAO LIEGE EHUB")
    assert comparable("Proximus NV") == "proximus"
    g = load_curated()
    assert pick(find_entities(g, "Cainiao Liege")).id == "cainiao-liege-ehub"  # type: ignore[union-attr]
    assert pick(find_entities(g, "hikvison")).id == "hikvision"  # type: ignore[union-attr]
    assert pick(find_entities(g, "阿里巴巴")).id == "alibaba-group-holding"  # type: ignore[union-attr]
    assert pick(find_entities(g, "China")) is None
    assert len(find_entities(g, "China", limit=5)) == 5


def test_eu_member_list_is_sourced_and_checked() -> None:
    import pytest

    from derisk.countries import parse_members
    from derisk.data import read_yaml
    from derisk.errors import DataError
    from derisk.know.risk import eu_members

    assert len(eu_members()) == 27 and "BE" in eu_members() and "GB" not in eu_members()
    data = read_yaml("eu-members.yaml")
    assert "europa.eu" in data["source"]
    with pytest.raises(DataError):
        parse_members({**data, "colour": 1}, "broken")
    with pytest.raises(DataError):
        parse_members({**data, "members": {"be": "Belgium"}}, "broken")
