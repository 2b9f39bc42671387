"""A table of deals written from the rules in LEGAL-FACTS.md, at and around every boundary.

Each row states, from the legal facts (not from derisk's output), which answer a regime must give and
which rule must decide it. Countries: CN, US, GB (UK), CH (Switzerland) and NO (EFTA) are non-EU;
FR, DE, LU, NL, BE are EU member states.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from derisk.screen.dealfile import parse_deal
from derisk.screen.engine import Screening, screen
from derisk.screen.regimes import load_catalogue
from screen_table import CASES as TABLE
from screen_table import Case

CAT = load_catalogue()
TODAY = date(2024, 1, 10)


def company(country: str, *owners: dict[str, Any], name: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "name": name or f"Investor {country}",
        "country": country,
        "kind": "company",
        "owners": list(owners),
        **kw,
    }


def person(country: str, stake: float = 100, name: str | None = None) -> dict[str, Any]:
    return {
        "name": name or f"Owner resident in {country}",
        "country": country,
        "kind": "person",
        "stake_pct": stake,
    }


def state(country: str, stake: float = 100) -> dict[str, Any]:
    return {"name": f"State holding of {country}", "country": country, "kind": "state", "stake_pct": stake}


CN = company("CN", person("CN"))
US = company("US", person("US"))

BASE: dict[str, Any] = {
    "investor": CN,
    "target": {"name": "Target NV", "country": "BE", "sectors": ["energy"], "turnover_eur": 150_000_000},
    "stake": {"before_pct": 0, "after_pct": 25, "control_before": False, "control_after": False},
    "dates": {"signing": "2024-01-15", "closing": "2024-06-28"},
}


def deal(
    *,
    investor: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    stake: dict[str, Any] | None = None,
    signing: str | None = None,
) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    if investor is not None:
        d["investor"] = investor
    d["target"].update(target or {})
    d["stake"].update(stake or {})
    if signing:
        d["dates"]["signing"] = signing
    return d


def run(raw: dict[str, Any]) -> Screening:
    return screen(parse_deal(raw, CAT.vocabulary, source="table"), CAT, today=TODAY)


def pct(after: float, before: float = 0, control: bool | None = False) -> dict[str, Any]:
    return {"after_pct": after, "before_pct": before, "control_after": control}


AIRPORT = {"sectors": ["airport-logistics"]}
OTHER = {"sectors": ["other"]}

# (case id, deal, {regime: (outcome, deciding rule or None)})
CASES: list[tuple[str, dict[str, Any], dict[str, tuple[str, str | None]]]] = [
    # --- Belgium: the 10% tier (turnover above EUR 100 million and a 10% sector) ---
    ("be-9.99pct-energy", deal(stake=pct(9.99)), {"BE": ("not-required", "be.no-threshold")}),
    ("be-10pct-energy-150m", deal(stake=pct(10)), {"BE": ("required", "be.tier-10")}),
    (
        "be-10pct-energy-100m-exactly",
        deal(stake=pct(10), target={"turnover_eur": 100_000_000}),
        {"BE": ("not-required", "be.no-threshold")},
    ),
    (
        "be-10pct-energy-100m-plus-1",
        deal(stake=pct(10), target={"turnover_eur": 100_000_001}),
        {"BE": ("required", "be.tier-10")},
    ),
    (
        "be-10pct-turnover-unknown",
        deal(stake=pct(10), target={"turnover_eur": None}),
        {"BE": ("unclear", None)},
    ),
    (
        "be-10pct-airport-not-a-10-sector",
        deal(stake=pct(10), target=AIRPORT),
        {"BE": ("not-required", "be.no-threshold")},
    ),
    # --- Belgium: the 25% tier ---
    (
        "be-24.99pct-airport",
        deal(stake=pct(24.99), target=AIRPORT),
        {"BE": ("not-required", "be.no-threshold")},
    ),
    ("be-25pct-airport", deal(stake=pct(25), target=AIRPORT), {"BE": ("required", "be.tier-25")}),
    (
        "be-25pct-energy-100m",
        deal(stake=pct(25), target={"turnover_eur": 100_000_000}),
        {"BE": ("required", "be.tier-25")},
    ),
    (
        "be-50pct-unlisted-sector",
        deal(stake=pct(50), target=OTHER),
        {"BE": ("not-required", "be.no-threshold")},
    ),
    # --- Belgium: control ---
    (
        "be-control-5pct-airport",
        deal(stake=pct(5, control=True), target=AIRPORT),
        {"BE": ("required", "be.control")},
    ),
    (
        "be-control-unlisted-sector",
        deal(stake=pct(60, control=True), target=OTHER),
        {"BE": ("not-required", "be.control-unlisted")},
    ),
    ("be-control-unknown-5pct", deal(stake=pct(5, control=None), target=AIRPORT), {"BE": ("unclear", None)}),
    # --- Belgium: who is a foreign investor ---
    (
        "be-eu-investor-fr",
        deal(investor=company("FR", person("FR")), target=AIRPORT),
        {"BE": ("not-required", "be.not-foreign"), "EU": ("not-required", "eu.union-investor")},
    ),
    (
        "be-uk-investor",
        deal(investor=company("GB", person("GB")), target=AIRPORT),
        {"BE": ("required", "be.tier-25")},
    ),
    (
        "be-swiss-investor",
        deal(investor=company("CH", person("CH")), target=AIRPORT),
        {"BE": ("required", "be.tier-25")},
    ),
    (
        "be-norwegian-efta-investor",
        deal(investor=company("NO", person("NO")), target=AIRPORT),
        {"BE": ("required", "be.tier-25")},
    ),
    ("be-us-investor-10pct", deal(investor=US, stake=pct(10)), {"BE": ("required", "be.tier-10")}),
    (
        "be-chinese-investor",
        deal(target=AIRPORT),
        {"BE": ("required", "be.tier-25"), "EU": ("required", None)},
    ),
    (
        "be-belgian-company-non-eu-ubo",
        deal(investor=company("BE", person("BE", 70), person("CN", 30)), target=AIRPORT),
        {"BE": ("required", "be.tier-25")},
    ),
    (
        "be-eu-company-eu-ubos",
        deal(investor=company("NL", person("NL", 50), person("DE", 50)), target=AIRPORT),
        {"BE": ("not-required", "be.not-foreign")},
    ),
    (
        "be-eu-spv-of-chinese-company-no-ubo",
        deal(investor=company("LU", company("CN", stake_pct=100)), target=AIRPORT),
        {"BE": ("unclear", "be.ubo-open")},
    ),
    (
        "be-eu-spv-of-chinese-state",
        deal(investor=company("LU", state("CN")), target=AIRPORT),
        {"BE": ("unclear", "be.ubo-open")},
    ),
    (
        "be-person-resident-in-china",
        deal(investor=person("CN"), target=AIRPORT),
        {"BE": ("required", "be.tier-25")},
    ),
    (
        "be-person-resident-in-belgium",
        deal(investor=person("BE"), target=AIRPORT),
        {"BE": ("not-required", "be.not-foreign")},
    ),
    (
        "be-eu-company-main-activity-in-china",
        deal(investor=company("IE", person("IE"), main_activity_country="CN"), target=AIRPORT),
        {"BE": ("required", "be.tier-25")},
    ),
    # --- Belgium: indirect acquisitions, greenfield, asset deals, branches ---
    (
        "be-indirect-through-german-parent",
        deal(
            target={
                "name": "Parent GmbH",
                "country": "DE",
                "sectors": ["other"],
                "subsidiaries": [
                    {"name": "Cargo BV", "country": "BE", "sectors": ["airport-logistics"], "held_pct": 100}
                ],
            },
            stake=pct(30),
        ),
        {"BE": ("required", "be.tier-25"), "DE": ("not-required", "de.outside-sectors")},
    ),
    (
        "be-indirect-product-below-25",
        deal(
            target={
                "name": "Parent GmbH",
                "country": "DE",
                "sectors": ["other"],
                "subsidiaries": [
                    {"name": "Cargo BV", "country": "BE", "sectors": ["airport-logistics"], "held_pct": 60}
                ],
            },
            stake=pct(40),
        ),
        {"BE": ("not-required", "be.no-threshold")},
    ),
    (
        "be-greenfield",
        deal(target={**AIRPORT, "greenfield": True}, stake=pct(100, control=True)),
        {"BE": ("not-required", "be.greenfield")},
    ),
    (
        "be-asset-deal-with-control",
        deal(target={**AIRPORT, "asset_deal": True}, stake=pct(100, control=True)),
        {"BE": ("required", "be.control"), "FR": ("not-required", "fr.scope")},
    ),
    (
        "be-asset-deal-without-control",
        deal(target={**AIRPORT, "asset_deal": True}, stake=pct(30, control=False)),
        {"BE": ("not-required", "be.asset-no-control")},
    ),
    ("be-branch", deal(target={**AIRPORT, "branch": True}), {"BE": ("required", "be.tier-25")}),
    # --- Belgium: steps and dates ---
    ("be-step-10-to-25", deal(target=AIRPORT, stake=pct(25, before=10)), {"BE": ("required", "be.tier-25")}),
    ("be-step-10-to-20-energy", deal(stake=pct(20, before=10)), {"BE": ("not-required", "be.no-threshold")}),
    (
        "be-step-25-to-30",
        deal(target=AIRPORT, stake=pct(30, before=25)),
        {"BE": ("not-required", "be.no-threshold")},
    ),
    (
        "be-signed-30-june-2023",
        deal(target=AIRPORT, signing="2023-06-30"),
        {"BE": ("not-required", "be.signed-before")},
    ),
    ("be-signed-1-july-2023", deal(target=AIRPORT, signing="2023-07-01"), {"BE": ("required", "be.tier-25")}),
    (
        "be-biotech-above-believed-amount",
        deal(target={"sectors": ["biotechnology"], "turnover_eur": 30_000_000}),
        {"BE": ("required", "be.tier-25-biotech")},
    ),
    (
        "be-biotech-below-believed-amount",
        deal(target={"sectors": ["biotechnology"], "turnover_eur": 20_000_000}),
        {"BE": ("unclear", "be.tier-25-biotech-below")},
    ),
    # --- Germany ---
    (
        "de-kritis-software-10pct",
        deal(target={"country": "DE", "sectors": ["kritis-software"]}, stake=pct(10)),
        {"DE": ("required", "de.cs-10"), "BE": ("not-required", "be.scope")},
    ),
    (
        "de-kritis-software-9.99pct",
        deal(target={"country": "DE", "sectors": ["kritis-software"]}, stake=pct(9.99)),
        {"DE": ("not-required", "de.none")},
    ),
    (
        "de-semiconductors-10pct",
        deal(target={"country": "DE", "sectors": ["semiconductors"]}, stake=pct(10)),
        {"DE": ("not-required", "de.none")},
    ),
    (
        "de-semiconductors-20pct",
        deal(target={"country": "DE", "sectors": ["semiconductors"]}, stake=pct(20)),
        {"DE": ("required", "de.cs-20")},
    ),
    (
        "de-semiconductors-later-15-to-25",
        deal(target={"country": "DE", "sectors": ["semiconductors"]}, stake=pct(25, before=20)),
        {"DE": ("required", "de.cs-20-later")},
    ),
    (
        "de-kritis-later-40-to-50",
        deal(target={"country": "DE", "sectors": ["kritis-software"]}, stake=pct(50, 40)),
        {"DE": ("required", "de.cs-10-later")},
    ),
    (
        "de-defence-us-10pct",
        deal(investor=US, target={"country": "DE", "sectors": ["defence"]}, stake=pct(10)),
        {"DE": ("required", "de.sector-specific")},
    ),
    (
        "de-defence-french-10pct",
        deal(
            investor=company("FR", person("FR")),
            target={"country": "DE", "sectors": ["defence"]},
            stake=pct(10),
        ),
        {"DE": ("required", "de.sector-specific")},
    ),
    (
        "de-defence-german-10pct",
        deal(
            investor=company("DE", person("DE")),
            target={"country": "DE", "sectors": ["defence"]},
            stake=pct(10),
        ),
        {"DE": ("not-required", "de.not-foreign")},
    ),
    (
        "de-french-acquirer-kritis",
        deal(
            investor=company("FR", person("FR")),
            target={"country": "DE", "sectors": ["kritis-software"]},
            stake=pct(10),
        ),
        {"DE": ("not-required", "de.not-foreign")},
    ),
    (
        "de-swiss-efta-acquirer-kritis",
        deal(
            investor=company("CH", person("CH")),
            target={"country": "DE", "sectors": ["kritis-software"]},
            stake=pct(10),
        ),
        {"DE": ("not-required", "de.not-foreign")},
    ),
    (
        "de-other-sector-30pct",
        deal(target={"country": "DE", "sectors": ["other"]}, stake=pct(30)),
        {"DE": ("not-required", "de.outside-sectors")},
    ),
    (
        "de-eu-spv-chinese-parent",
        deal(
            investor=company("LU", company("CN", person("CN"), stake_pct=100)),
            target={"country": "DE", "sectors": ["kritis-software"]},
            stake=pct(10),
        ),
        {"DE": ("required", "de.cs-10")},
    ),
    # --- France ---
    (
        "fr-us-25pct-data-hosting",
        deal(investor=US, target={"country": "FR", "sectors": ["digital-infrastructure"]}),
        {"FR": ("required", "fr.pct-25")},
    ),
    (
        "fr-us-24.99pct",
        deal(investor=US, target={"country": "FR", "sectors": ["digital-infrastructure"]}, stake=pct(24.99)),
        {"FR": ("not-required", "fr.none")},
    ),
    (
        "fr-german-30pct-no-control",
        deal(
            investor=company("DE", person("DE")),
            target={"country": "FR", "sectors": ["digital-infrastructure"]},
            stake=pct(30),
        ),
        {"FR": ("not-required", "fr.none")},
    ),
    (
        "fr-german-control",
        deal(
            investor=company("DE", person("DE")),
            target={"country": "FR", "sectors": ["digital-infrastructure"]},
            stake=pct(60, control=True),
        ),
        {"FR": ("required", "fr.control")},
    ),
    (
        "fr-us-10pct-listed",
        deal(
            investor=US,
            target={"country": "FR", "sectors": ["digital-infrastructure"], "listed": True},
            stake=pct(10),
        ),
        {"FR": ("required", "fr.pct-10-listed")},
    ),
    (
        "fr-us-10pct-unlisted",
        deal(investor=US, target={"country": "FR", "sectors": ["digital-infrastructure"]}, stake=pct(10)),
        {"FR": ("not-required", "fr.none")},
    ),
    (
        "fr-us-control-unlisted-sector",
        deal(investor=US, target={"country": "FR", "sectors": ["other"]}, stake=pct(60, control=True)),
        {"FR": ("not-required", "fr.no-sector")},
    ),
    (
        "fr-french-investor",
        deal(
            investor=company("FR", person("FR")),
            target={"country": "FR", "sectors": ["defence"]},
            stake=pct(60, control=True),
        ),
        {"FR": ("not-required", "fr.not-foreign")},
    ),
    # --- Netherlands ---
    (
        "nl-dutch-acquirer-control-gas-storage",
        deal(
            investor=company("NL", person("NL")),
            target={"country": "NL", "sectors": ["gas-storage"]},
            stake=pct(60, control=True),
        ),
        {"NL": ("required", "nl.control"), "BE": ("not-required", "be.scope")},
    ),
    (
        "nl-semiconductors-10pct",
        deal(target={"country": "NL", "sectors": ["semiconductors"]}, stake=pct(10)),
        {"NL": ("required", "nl.hst-tier")},
    ),
    (
        "nl-semiconductors-9pct",
        deal(target={"country": "NL", "sectors": ["semiconductors"]}, stake=pct(9)),
        {"NL": ("not-required", "nl.none")},
    ),
    (
        "nl-heat-transport-40pct-no-control",
        deal(target={"country": "NL", "sectors": ["heat-transport"]}, stake=pct(40)),
        {"NL": ("not-required", "nl.none")},
    ),
    (
        "nl-signed-2022-control",
        deal(
            target={"country": "NL", "sectors": ["gas-storage"]},
            stake=pct(60, control=True),
            signing="2022-01-03",
        ),
        {"NL": ("not-required", "nl.retroactive-open")},
    ),
    (
        "nl-signed-before-reach",
        deal(
            target={"country": "NL", "sectors": ["gas-storage"]},
            stake=pct(60, control=True),
            signing="2020-06-01",
        ),
        {"NL": ("not-required", "nl.before-reach")},
    ),
    (
        "nl-airport-logistics-possibly-vital",
        deal(target={"country": "NL", "sectors": ["airport-logistics"]}, stake=pct(60, control=True)),
        {"NL": ("unclear", None)},
    ),
    # --- EU cooperation mechanism ---
    ("eu-uk-target", deal(target={"country": "GB", **AIRPORT}), {"EU": ("not-required", "eu.scope")}),
    (
        "eu-no-member-state-screening",
        deal(target=OTHER, stake=pct(5)),
        {"EU": ("not-required", "eu.non-screened")},
    ),
    (
        "eu-member-state-unclear",
        deal(target={"sectors": ["biotechnology"], "turnover_eur": 20_000_000}, stake=pct(30)),
        {"EU": ("unclear", "eu.member-state-unclear")},
    ),
]


#: The source of the expected answer of each row above, by the regime its id starts with.
SOURCES = {
    "be-": "Cooperation Agreement of 30 November 2022 (as a whole), https://investmentpolicy.unctad.org/investment-laws/laws/519/belgium-cooperation-agreement-establishing-a-foreign-direct-investment-screening-mechanism",
    "de-": "AWV §§ 55a, 56, 60, https://www.gesetze-im-internet.de/awv_2013/",
    "fr-": "Code monétaire et financier R151-1 to R151-7, https://www.legifrance.gouv.fr/codes/texte_lc/LEGITEXT000006072026/",
    "nl-": "Vifo Act, https://wetten.overheid.nl/BWBR0046747",
    "eu-": "Regulation (EU) 2019/452, https://eur-lex.europa.eu/eli/reg/2019/452/oj",
}


def source_of(case_id: str) -> str:
    return next(src for prefix, src in SOURCES.items() if case_id.startswith(prefix))


def test_the_table_is_large_enough() -> None:
    ids = [c[0] for c in CASES] + [c.id for c in TABLE]
    assert len(ids) >= 150
    assert len(set(ids)) == len(ids)
    for cid in (c[0] for c in CASES):
        assert "https://" in source_of(cid), cid
    for case in TABLE:
        assert "https://" in case.source, case.id
    # every regime, and deadlines across a public holiday of each member state
    assert {code for c in TABLE for code in c.expected} == {"BE", "DE", "FR", "NL", "EU"}
    assert {code for c in TABLE for code in c.deadlines} == {"BE", "DE", "FR", "NL"}


@pytest.mark.parametrize("case", TABLE, ids=[c.id for c in TABLE])
def test_table(case: Case) -> None:
    today = date.fromisoformat(case.today) if case.today else TODAY
    result = {
        r.regime.code: r
        for r in screen(parse_deal(case.raw, CAT.vocabulary, source=case.id), CAT, today=today).regimes
    }
    for code, (outcome, rule) in case.expected.items():
        r = result[code]
        decisive = [x.rule for x in r.reasons if x.role == "decisive"]
        got = decisive[0] if decisive else None
        assert (r.outcome, got if rule else None) == (outcome, rule), (
            f"{case.id} {code} ({case.source}): {[(x.role, x.rule, x.sentence) for x in r.reasons]}"
        )
        for x in r.reasons:
            if x.role == "open":
                assert x.sentence.strip()
    for code, phases in case.deadlines.items():
        shown = {d["id"]: d for d in result[code].deadlines}
        for phase, (ends, next_working) in phases.items():
            d = shown[phase]
            assert d["ends"] == (ends or None), (case.id, phase, d)
            rolls = d["rolls"]
            assert (rolls["next_working_day"] if rolls else None) == next_working, (case.id, phase, rolls)
            if rolls:
                assert rolls["confidence"] == "U" and "deadline" in {
                    u["used_for"] for u in result[code].unverified
                }


@pytest.mark.parametrize(("case", "raw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_boundary(case: str, raw: dict[str, Any], expected: dict[str, tuple[str, str | None]]) -> None:
    result = {r.regime.code: r for r in run(raw).regimes}
    for code, (outcome, rule) in expected.items():
        r = result[code]
        decisive = [x for x in r.reasons if x.role == "decisive"]
        got = decisive[0].rule if decisive else None
        assert (r.outcome, got if rule else None) == (outcome, rule), (
            f"{case} {code}: {[(x.role, x.rule, x.sentence) for x in r.reasons]}"
        )
        assert r.reasons, "every answer has at least one reason"
        assert all(x.sentence.strip() for x in r.reasons)


def test_unclear_for_a_missing_turnover_says_what_is_missing() -> None:
    be = run(deal(stake=pct(10), target={"turnover_eur": None})).regimes[0]
    open_ = [x for x in be.reasons if x.role == "open"]
    assert open_ and "turnover" in open_[0].sentence
    assert be.outcome == "unclear"


def test_possible_sector_list_is_named_in_the_open_question() -> None:
    nl = {
        r.regime.code: r
        for r in run(
            deal(target={"country": "NL", "sectors": ["airport-logistics"]}, stake=pct(60, control=True))
        ).regimes
    }["NL"]
    assert any("nl-vital" in x.sentence for x in nl.reasons if x.role == "open")


def test_biotech_answer_rests_on_the_unverified_amount() -> None:
    be = run(deal(target={"sectors": ["biotechnology"], "turnover_eur": 30_000_000})).regimes[0]
    assert be.rests_on_unverified
    assert "fact:biotech-turnover" in {u["id"] for u in be.unverified}


def test_tier_25_answer_rests_on_no_unverified_fact() -> None:
    be = run(deal(target=AIRPORT)).regimes[0]
    assert be.outcome == "required" and not be.rests_on_unverified


def test_foreign_investor_reason_names_the_non_eu_ubo() -> None:
    be = run(deal(investor=company("BE", person("BE", 70), person("CN", 30)), target=AIRPORT)).regimes[0]
    terms = {x.rule: x.sentence for x in be.reasons if x.role == "term"}
    assert "CN" in terms["term:non-eu-ubo"]


def test_step_note_reminds_of_new_notification_per_level() -> None:
    be = run(deal(target=AIRPORT, stake=pct(25, before=10))).regimes[0]
    assert any(x.rule == "be.step" and x.role == "note" for x in be.reasons)


def test_indirect_note_states_the_product_of_voting_rights() -> None:
    raw = deal(
        target={
            "name": "Parent GmbH",
            "country": "DE",
            "sectors": ["other"],
            "subsidiaries": [
                {"name": "Cargo BV", "country": "BE", "sectors": ["airport-logistics"], "held_pct": 100}
            ],
        },
        stake=pct(30),
    )
    be = run(raw).regimes[0]
    note = next(x for x in be.reasons if x.rule == "be.indirect")
    assert "Parent GmbH" in note.sentence and "30%" in note.sentence and note.subject == "Cargo BV"


def test_thresholds_name_the_fact_and_list_that_triggered() -> None:
    be = run(deal(stake=pct(10))).regimes[0]
    (t,) = be.thresholds
    assert t["id"] == "tier-10"
    assert {f["id"] for f in t["facts"]} == {"tier-10-pct", "tier-10-turnover"}
    assert [x["id"] for x in t["lists"]] == ["be-10"]


def test_closing_inside_the_verification_phase_warns_of_the_standstill() -> None:
    raw = deal(target=AIRPORT)
    raw["dates"] = {"signing": "2025-03-03", "notification": "2025-03-10", "closing": "2025-04-01"}
    be = screen(parse_deal(raw, CAT.vocabulary, source="t"), CAT, today=date(2025, 3, 1)).regimes[0]
    assert be.standstill is not None and be.standstill["warning"]
    assert "2025-04-09" in be.standstill["warning"]  # 10 March + 30 calendar days


def test_without_a_notification_date_the_clock_starts_on_the_later_of_signing_and_today() -> None:
    raw = deal(target=AIRPORT)
    raw["dates"] = {"signing": "2025-03-03", "closing": "2025-09-30"}
    be = screen(parse_deal(raw, CAT.vocabulary, source="t"), CAT, today=date(2025, 3, 20)).regimes[0]
    verification = be.deadlines[0]
    assert verification["start"] == "2025-03-20" and verification["ends"] == "2025-04-19"
    assert "assumed" in verification["start_basis"]
    assert be.standstill is not None and be.standstill["warning"] is None


def test_not_required_regimes_carry_no_deadlines() -> None:
    result = {r.regime.code: r for r in run(deal(target=AIRPORT)).regimes}
    assert result["DE"].deadlines == [] and result["DE"].standstill is None
    assert result["BE"].deadlines


def test_sentences_carry_the_values_and_tags_they_rest_on() -> None:
    be = run(deal(stake=pct(10))).regimes[0]
    sentence = next(x.sentence for x in be.reasons if x.role == "decisive")
    assert "EUR 150 million" in sentence and "EUR 100 million [V]" in sentence and "10% [V]" in sentence
    before = run(deal(target=AIRPORT, signing="2023-06-30")).regimes[0]
    sentence = next(x.sentence for x in before.reasons if x.role == "decisive")
    assert "30 June 2023" in sentence and "1 July 2023 [V]" in sentence


@given(st.floats(0, 100, allow_nan=False), st.sampled_from(["CN", "US", "GB", "CH"]))
def test_belgian_25pct_tier_holds_for_every_stake_and_non_eu_investor(after: float, country: str) -> None:
    be = run(deal(investor=company(country, person(country)), target=AIRPORT, stake=pct(after))).regimes[0]
    assert be.outcome == ("required" if after >= 25 else "not-required")


@given(st.floats(0, 100, allow_nan=False), st.sampled_from(["FR", "DE", "LU", "IE"]))
def test_eu_investors_never_need_belgian_screening(after: float, country: str) -> None:
    be = run(deal(investor=company(country, person(country)), target=AIRPORT, stake=pct(after))).regimes[0]
    assert be.outcome == "not-required"
