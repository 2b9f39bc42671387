"""The boundary table's data: deals at and around every rule boundary, each with the text that decides it.

Each row states, from the published texts (not from derisk's output), the answer a regime must give,
the rule that must decide it, and the source of that expected answer (article and URL). Deadline rows
also give the end date worked out by hand on a calendar, public holidays included.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# --- sources of the expected answers (article and URL) ---
BE_CA = (
    "Cooperation Agreement of 30 November 2022 (as a whole), unofficial EN translation "
    "https://investmentpolicy.unctad.org/investment-laws/laws/519/belgium-cooperation-agreement-establishing-a-foreign-direct-investment-screening-mechanism"
)
BE_FOREIGN = (
    "Cooperation Agreement of 30 November 2022, definition of foreign investor (three limbs), per Baker McKenzie "
    "https://insightplus.bakermckenzie.com/bm/mergers-acquisitions_5/belgium-screening-of-foreign-direct-investments"
)
BE_UBO = (
    "Law of 18 September 2017 (AML), Art. 4, 27° (UBO: more than 25% or control), https://www.ejustice.just.fgov.be/ "
    "+ " + BE_FOREIGN
)
BE_ISC = "ISC guidelines updated 4 April 2024 (greenfield, asset deals, branches, no intragroup exemption), https://economie.fgov.be/"
BE_START = "ICLG Belgium 2024, 1.1 (in force 1 July 2023), https://iclg.com/practice-areas/foreign-direct-investment-regimes-laws-and-regulations/belgium"
BE_HOL = "Belgian public holidays (21 July, National Day), holidays package 0.86 country BE https://pypi.org/project/holidays/0.86/; rolling [U]: ISC annual report https://economie.fgov.be/"
AWV_55A = "AWV § 55a(1) and (5), https://www.gesetze-im-internet.de/awv_2013/__55a.html"
AWV_56_1 = "AWV § 56(1) (direct or indirect voting rights; 10/20/25%), https://www.gesetze-im-internet.de/awv_2013/__56.html"
AWV_56_2 = "AWV § 56(2) (further levels 20/25/40/50/75, 25/40/50/75, 40/50/75), https://www.gesetze-im-internet.de/awv_2013/__56.html"
AWV_56_3 = (
    "AWV § 56(3) (effective participation in control), https://www.gesetze-im-internet.de/awv_2013/__56.html"
)
AWV_55 = "AWV § 55(1) (acquisition of a domestic undertaking or a participation; review, no filing outside § 55a), https://www.gesetze-im-internet.de/awv_2013/__55.html"
AWV_60 = "AWV §§ 60(1), 60a(1)-(2) (sector-specific review, any foreign acquirer, 10%), https://www.gesetze-im-internet.de/awv_2013/__60a.html"
AWG_14A = "AWG § 14a(1) (2 months; 4 months from complete documents), https://www.gesetze-im-internet.de/awg_2013/__14a.html"
DE_HOL = "German nationwide public holidays (3 October, German Unity Day), holidays package 0.86 country DE (no Land assumed); rolling [U]: VwVfG § 31(3) https://www.gesetze-im-internet.de/vwvfg/__31.html"
CMF = "https://www.legifrance.gouv.fr/codes/texte_lc/LEGITEXT000006072026/"
FR_R151_1 = f"Code monétaire et financier R151-1 (foreign investor, control chains), {CMF}"
FR_R151_2 = f"Code monétaire et financier R151-2 (control incl. EU investors; 25% and 10% listed for non-EU/EEA only), {CMF}"
FR_R151_3 = f"Code monétaire et financier R151-3 (sectors), {CMF}"
FR_R151_6 = (
    f"Code monétaire et financier R151-6 (30 and 45 working days), {CMF}; 14 July: Code du travail L3133-1"
)
FR_R151_7 = f"Code monétaire et financier R151-7 (intragroup exemption), {CMF}"
FR_L233_3 = "Code de commerce L233-3 (control, directly or indirectly), https://www.legifrance.gouv.fr/codes/texte_lc/LEGITEXT000005634379/"
FR_FAST = f"R151-2 10% listed trigger and its fast track (10 working days), {CMF}; Direction générale du Trésor https://www.tresor.economie.gouv.fr/"
VIFO = "Vifo Act (scope: all acquirers, vital providers, sensitive technology, control, 10/20/25%), https://wetten.overheid.nl/BWBR0046747"
VIFO_18 = "Vifo Act Art. 18(1) (8 weeks; at most 6 months; 3 more for an FDI), https://wetten.overheid.nl/BWBR0046747"
VIFO_BACK = (
    "Stibbe, reach back to 8 September 2020, https://www.stibbe.com/en/news/2022/february/wetsvoorstel-veiligheidstoets-investeringen-fusies-en-overnames"
    " + Vifo transitional provisions (call-in within 8 months of 1 June 2023), https://wetten.overheid.nl/BWBR0046747"
)
VIFO_ASSETS = "Stibbe (asset transfers and joint ventures are acquisition activities), https://www.stibbe.com/nl/publications-and-insights/wet-veiligheidstoets-investeringen-fusies-en-overnames-0"
NL_HOL = "Dutch public holidays (27 April, King's Day), holidays package 0.86 country NL; rolling [U]: Algemene termijnenwet https://wetten.overheid.nl/BWBR0002448"
EU_REG = "Regulation (EU) 2019/452, Arts. 1, 2 and 6, https://eur-lex.europa.eu/eli/reg/2019/452/oj"
EU_REV = "Provisional agreement of 11 December 2025 on the revised screening regulation (applies 18 months after entry into force), https://policy.trade.ec.europa.eu/node/1939_en"


def company(country: str, *owners: dict[str, Any], name: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "name": name or f"Investor {country}",
        "country": country,
        "kind": "company",
        "owners": list(owners),
        **kw,
    }


def person(country: str, stake: float = 100, name: str | None = None, **kw: Any) -> dict[str, Any]:
    return {
        "name": name or f"Owner resident in {country}",
        "country": country,
        "kind": "person",
        "stake_pct": stake,
        **kw,
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
    **top: Any,
) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    if investor is not None:
        d["investor"] = investor
    d["target"].update(target or {})
    d["stake"].update(stake or {})
    if signing:
        d["dates"]["signing"] = signing
    for key, value in top.items():
        if key == "dates":
            d["dates"].update(value)
        else:
            d[key] = value
    return d


def pct(
    after: float, before: float = 0, control: bool | str | None = False, control_before: bool | str = False
) -> dict[str, Any]:
    return {
        "after_pct": after,
        "before_pct": before,
        "control_after": control,
        "control_before": control_before,
    }


AIRPORT = {"sectors": ["airport-logistics"]}
OTHER = {"sectors": ["other"]}


def de(sectors: list[str], **kw: Any) -> dict[str, Any]:
    return {"country": "DE", "sectors": sectors, **kw}


def fr(sectors: list[str], **kw: Any) -> dict[str, Any]:
    return {"country": "FR", "sectors": sectors, **kw}


def nl(sectors: list[str], **kw: Any) -> dict[str, Any]:
    return {"country": "NL", "sectors": sectors, **kw}


@dataclass(frozen=True)
class Case:
    id: str
    raw: dict[str, Any]
    expected: dict[str, tuple[str, str | None]]
    source: str
    today: str | None = None
    deadlines: dict[str, dict[str, tuple[str, str | None]]] = field(
        default_factory=dict
    )  # id -> (ends, next working)


KRITIS = ["kritis-software"]
CHIPS = ["semiconductors"]
LU_HOLD = company("LU", company("US", person("US"), stake_pct=100), name="Holding LU")

CASES: list[Case] = []


def add(
    cid: str, raw: dict[str, Any], expected: dict[str, tuple[str, str | None]], source: str, **kw: Any
) -> None:
    CASES.append(Case(cid, raw, expected, source, **kw))


# ---------------------------------------------------------------- Belgium
for after, outcome, rule in [
    (9.99, "not-required", "be.no-threshold"),
    (10, "required", "be.tier-10"),
    (10.01, "required", "be.tier-10"),
]:
    add(f"t-be-tier10-{after}", deal(stake=pct(after)), {"BE": (outcome, rule)}, BE_CA)
add("t-be-tier10-from-5-to-12", deal(stake=pct(12, before=5)), {"BE": ("required", "be.tier-10")}, BE_CA)
add(
    "t-be-tier10-from-10-to-15",
    deal(stake=pct(15, before=10)),
    {"BE": ("not-required", "be.no-threshold")},
    BE_CA,
)
for after, outcome, rule in [
    (24.99, "not-required", "be.no-threshold"),
    (25, "required", "be.tier-25"),
    (25.01, "required", "be.tier-25"),
]:
    add(
        f"t-be-tier25-airport-{after}", deal(stake=pct(after), target=AIRPORT), {"BE": (outcome, rule)}, BE_CA
    )
add(
    "t-be-tier25-from-25-to-40",
    deal(stake=pct(40, before=25), target=AIRPORT),
    {"BE": ("not-required", "be.no-threshold")},
    BE_CA,
)
# the third limb: UBOs in the AML sense (more than 25%, or control)
add(
    "t-be-ubo-lux-90-us-angel-10",
    deal(investor=company("LU", person("LU", 90), person("US", 10)), stake=pct(30)),
    {"BE": ("not-required", "be.not-foreign")},
    BE_UBO,
)
add(
    "t-be-ubo-us-exactly-25",
    deal(investor=company("LU", person("LU", 75), person("US", 25)), stake=pct(30)),
    {"BE": ("not-required", "be.not-foreign")},
    BE_UBO,
)
add(
    "t-be-ubo-us-25.01",
    deal(investor=company("LU", person("LU", 74.99), person("US", 25.01)), stake=pct(30)),
    {"BE": ("required", "be.tier-10")},
    BE_UBO,
)
add(
    "t-be-ubo-us-10-but-controls",
    deal(
        investor=company("LU", person("LU", 90, controls=False), person("US", 10, controls=True)),
        stake=pct(30),
    ),
    {"BE": ("required", "be.tier-10")},
    BE_UBO,
)
add(
    "t-be-ubo-indirect-product-30",
    deal(
        investor=company(
            "LU", company("LU", person("US", 50), person("LU", 50), stake_pct=60, name="Mid LU")
        ),
        stake=pct(30),
    ),
    {"BE": ("required", "be.tier-10")},
    BE_UBO,
)
add(
    "t-be-ubo-indirect-product-24",
    deal(
        investor=company(
            "LU",
            company("LU", person("US", 40), person("LU", 60), stake_pct=60, name="Mid LU"),
            person("LU", 40),
        ),
        stake=pct(30),
    ),
    {"BE": ("not-required", "be.not-foreign")},
    BE_UBO,
)
add(
    "t-be-ubo-open-us-fund-30",
    deal(
        investor=company("LU", company("US", stake_pct=30, name="Fund US"), person("LU", 70)), stake=pct(30)
    ),
    {"BE": ("unclear", "be.ubo-open")},
    BE_UBO,
)
add(
    "t-be-ubo-open-us-fund-20-not-significant",
    deal(
        investor=company("LU", company("US", stake_pct=20, name="Fund US"), person("LU", 80)), stake=pct(30)
    ),
    {"BE": ("not-required", "be.not-foreign")},
    BE_UBO,
)
add(
    "t-be-ubo-open-state-100",
    deal(investor=company("LU", state("CN")), stake=pct(30)),
    {"BE": ("unclear", "be.ubo-open")},
    BE_UBO,
)
for c in ("GB", "CH", "NO", "US", "JP"):
    add(
        f"t-be-non-eu-company-{c}",
        deal(investor=company(c, person(c)), stake=pct(25), target=AIRPORT),
        {"BE": ("required", "be.tier-25")},
        BE_FOREIGN,
    )
for c in ("FR", "DE", "LU", "IE", "BE"):
    add(
        f"t-be-eu-company-{c}",
        deal(investor=company(c, person(c)), stake=pct(25), target=AIRPORT),
        {"BE": ("not-required", "be.not-foreign")},
        BE_FOREIGN,
    )
add(
    "t-be-us-resident-person",
    deal(investor=person("US"), stake=pct(25), target=AIRPORT),
    {"BE": ("required", "be.tier-25")},
    BE_FOREIGN,
)
add(
    "t-be-lux-run-from-china",
    deal(investor=company("LU", person("LU"), main_activity_country="CN"), stake=pct(25), target=AIRPORT),
    {"BE": ("required", "be.tier-25")},
    BE_FOREIGN,
)
add(
    "t-be-control-listed-5pct",
    deal(stake=pct(5, control=True), target=AIRPORT),
    {"BE": ("required", "be.control")},
    BE_CA,
)
add(
    "t-be-control-unlisted",
    deal(stake=pct(60, control=True), target=OTHER),
    {"BE": ("not-required", "be.control-unlisted")},
    "FPS Economy; Linklaters (control trigger only in the listed sectors) " + BE_CA,
)
add(
    "t-be-control-unknown-unlisted",
    deal(stake=pct(10, control=None), target=OTHER),
    {"BE": ("not-required", "be.no-threshold")},
    BE_CA,
)
add(
    "t-be-joint-to-sole-listed",
    deal(stake=pct(100, before=50, control=True, control_before="joint"), target=AIRPORT),
    {"BE": ("required", "be.joint-to-sole")},
    BE_ISC,
)
add(
    "t-be-joint-to-sole-unlisted",
    deal(stake=pct(100, before=50, control=True, control_before="joint"), target=OTHER),
    {"BE": ("not-required", "be.control-unlisted")},
    BE_CA,
)
add(
    "t-be-joint-acquired-listed",
    deal(stake=pct(20, control="joint"), target=AIRPORT),
    {"BE": ("required", "be.control")},
    BE_CA,
)
add(
    "t-be-greenfield",
    deal(target={**AIRPORT, "greenfield": True}),
    {"BE": ("not-required", "be.greenfield")},
    BE_ISC,
)
add(
    "t-be-asset-with-control",
    deal(target={**AIRPORT, "asset_deal": True}, stake=pct(100, control=True)),
    {"BE": ("required", "be.control")},
    BE_ISC,
)
add(
    "t-be-asset-without-control",
    deal(target={**AIRPORT, "asset_deal": True}, stake=pct(100, control=False)),
    {"BE": ("not-required", "be.asset-no-control")},
    BE_ISC,
)
add(
    "t-be-signed-2023-06-30",
    deal(target=AIRPORT, signing="2023-06-30"),
    {"BE": ("not-required", "be.signed-before")},
    BE_START,
)
add(
    "t-be-signed-2023-07-01",
    deal(target=AIRPORT, signing="2023-07-01"),
    {"BE": ("required", "be.tier-25")},
    BE_START,
)
add(
    "t-be-intragroup-no-exemption",
    deal(target=AIRPORT, intragroup=True),
    {"BE": ("required", "be.tier-25")},
    BE_ISC,
)
add(
    "t-be-biotech-25m-exactly",
    deal(target={"sectors": ["biotechnology"], "turnover_eur": 25_000_000}),
    {"BE": ("unclear", None)},
    BE_CA + " (turnover condition [U])",
)
add(
    "t-be-biotech-above",
    deal(target={"sectors": ["biotechnology"], "turnover_eur": 25_000_001}),
    {"BE": ("required", "be.tier-25-biotech")},
    BE_CA + " (turnover condition [U])",
)
add("t-be-branch", deal(target={**AIRPORT, "branch": True}), {"BE": ("required", "be.tier-25")}, BE_ISC)
add(
    "t-be-not-belgian",
    deal(target=de(["energy"]), stake=pct(30)),
    {"BE": ("not-required", "be.scope")},
    BE_CA,
)
add(
    "t-be-deadline-across-21-july",
    deal(
        target=AIRPORT, dates={"signing": "2026-06-15", "notification": "2026-06-21", "closing": "2026-12-31"}
    ),
    {"BE": ("required", "be.tier-25")},
    BE_HOL,
    today="2026-06-01",
    deadlines={"BE": {"verification": ("2026-07-21", "2026-07-22")}},
)
add(
    "t-be-deadline-on-a-working-day",
    deal(
        target=AIRPORT, dates={"signing": "2025-03-03", "notification": "2025-03-10", "closing": "2025-12-31"}
    ),
    {"BE": ("required", "be.tier-25")},
    BE_HOL,
    today="2025-03-01",
    deadlines={"BE": {"verification": ("2025-04-09", None), "screening": ("2025-05-07", None)}},
)

# ---------------------------------------------------------------- Germany
for after, outcome, rule in [
    (9.99, "not-required", "de.none"),
    (10, "required", "de.cs-10"),
    (10.01, "required", "de.cs-10"),
]:
    add(
        f"t-de-kritis-{after}",
        deal(investor=US, target=de(KRITIS), stake=pct(after)),
        {"DE": (outcome, rule)},
        AWV_56_1,
    )
for before, after, outcome, rule in [
    (10, 19.99, "not-required", "de.none"),
    (10, 20, "required", "de.cs-10-later"),
    (20, 24.99, "not-required", "de.none"),
    (20, 25, "required", "de.cs-10-later"),
    (25, 39.99, "not-required", "de.none"),
    (25, 40, "required", "de.cs-10-later"),
    (40, 50, "required", "de.cs-10-later"),
    (50, 74.99, "not-required", "de.none"),
    (50, 75, "required", "de.cs-10-later"),
    (75, 100, "not-required", "de.none"),
]:
    add(
        f"t-de-kritis-from-{before}-to-{after}",
        deal(investor=US, target=de(KRITIS), stake=pct(after, before=before)),
        {"DE": (outcome, rule)},
        AWV_56_2,
    )
for after, outcome, rule in [
    (19.99, "not-required", "de.none"),
    (20, "required", "de.cs-20"),
    (20.01, "required", "de.cs-20"),
]:
    add(
        f"t-de-chips-{after}",
        deal(investor=US, target=de(CHIPS), stake=pct(after)),
        {"DE": (outcome, rule)},
        AWV_56_1,
    )
for before, after, outcome, rule in [
    (10, 20, "required", "de.cs-20"),
    (20, 24.99, "not-required", "de.none"),
    (20, 25, "required", "de.cs-20-later"),
    (25, 39.99, "not-required", "de.none"),
    (25, 40, "required", "de.cs-20-later"),
    (40, 50, "required", "de.cs-20-later"),
    (50, 75, "required", "de.cs-20-later"),
]:
    add(
        f"t-de-chips-from-{before}-to-{after}",
        deal(investor=US, target=de(CHIPS), stake=pct(after, before=before)),
        {"DE": (outcome, rule)},
        AWV_56_2,
    )
for after in (25, 40, 75):
    add(
        f"t-de-other-sector-{after}",
        deal(investor=US, target=de(["other"]), stake=pct(after)),
        {"DE": ("not-required", "de.outside-sectors")},
        AWV_55,
    )
add(
    "t-de-other-sector-control",
    deal(investor=US, target=de(["other"]), stake=pct(60, control=True)),
    {"DE": ("not-required", "de.outside-sectors")},
    AWV_55,
)
add(
    "t-de-eu-spv-chinese-group-chips-20",
    deal(investor=company("LU", company("CN", person("CN"), stake_pct=100)), target=de(CHIPS), stake=pct(20)),
    {"DE": ("required", "de.cs-20")},
    AWV_55A + " + " + AWV_56_1,
)
add(
    "t-de-eu-spv-chinese-minority",
    deal(
        investor=company(
            "LU", company("CN", person("CN"), stake_pct=30, name="Minority CN"), person("LU", 70)
        ),
        target=de(CHIPS),
        stake=pct(25),
    ),
    {"DE": ("unclear", "de.minority-chain")},
    AWV_56_1 + " (attribution of intermediate holdings)",
)
add(
    "t-de-swiss-efta-acquirer",
    deal(investor=company("CH", person("CH")), target=de(CHIPS), stake=pct(25)),
    {"DE": ("not-required", "de.not-foreign")},
    AWV_55,
)
add(
    "t-de-uk-acquirer",
    deal(investor=company("GB", person("GB")), target=de(CHIPS), stake=pct(25)),
    {"DE": ("required", "de.cs-20")},
    AWV_56_1,
)
add(
    "t-de-greenfield",
    deal(investor=US, target=de(CHIPS, greenfield=True), stake=pct(100, control=True)),
    {"DE": ("not-required", "de.greenfield")},
    AWV_55,
)
add(
    "t-de-asset-deal-listed-sector",
    deal(investor=US, target=de(CHIPS, asset_deal=True), stake=pct(100, control=True)),
    {"DE": ("unclear", "de.asset-deal")},
    AWV_55 + " (asset deals: provision not read)",
)
add(
    "t-de-atypical-control-5pct",
    deal(investor=US, target=de(KRITIS), stake=pct(5, control=True)),
    {"DE": ("required", "de.cs-atypical")},
    AWV_56_3,
)
add(
    "t-de-defence-us-9.99",
    deal(investor=US, target=de(["defence"]), stake=pct(9.99)),
    {"DE": ("not-required", "de.none")},
    AWV_60,
)
add(
    "t-de-defence-us-10",
    deal(investor=US, target=de(["defence"]), stake=pct(10)),
    {"DE": ("required", "de.sector-specific")},
    AWV_60,
)
add(
    "t-de-defence-french-10",
    deal(investor=company("FR", person("FR")), target=de(["defence"]), stake=pct(10)),
    {"DE": ("required", "de.sector-specific")},
    AWV_60,
)
add(
    "t-de-defence-german",
    deal(investor=company("DE", person("DE")), target=de(["defence"]), stake=pct(30)),
    {"DE": ("not-required", "de.not-foreign")},
    AWV_60,
)
add(
    "t-de-defence-german-spv-of-us",
    deal(
        investor=company("DE", company("US", person("US"), stake_pct=100)),
        target=de(["defence"]),
        stake=pct(10),
    ),
    {"DE": ("required", "de.sector-specific")},
    AWV_60,
)
add(
    "t-de-defence-from-10-to-20",
    deal(investor=US, target=de(["defence"]), stake=pct(20, before=10)),
    {"DE": ("required", "de.sector-specific-later")},
    AWV_60 + " + " + AWV_56_2,
)
add(
    "t-de-defence-from-10-to-15",
    deal(investor=US, target=de(["defence"]), stake=pct(15, before=10)),
    {"DE": ("not-required", "de.none")},
    AWV_60,
)
add(
    "t-de-indirect-through-dutch-parent",
    deal(
        investor=US,
        target={
            "name": "Parent BV",
            "country": "NL",
            "sectors": ["other"],
            "subsidiaries": [{"name": "Chips GmbH", "country": "DE", "sectors": CHIPS, "held_pct": 100}],
        },
        stake=pct(30),
    ),
    {"DE": ("required", "de.cs-20")},
    AWV_56_1,
)
add(
    "t-de-deadline-across-3-october",
    deal(
        investor=US,
        target=de(CHIPS),
        stake=pct(25),
        dates={
            "signing": "2025-07-28",
            "notification": "2025-08-03",
            "closing": "2026-06-30",
            "complete_documents": "2025-09-01",
        },
    ),
    {"DE": ("required", "de.cs-20")},
    AWG_14A + " + " + DE_HOL,
    today="2025-07-01",
    deadlines={
        "DE": {"de-phase-1": ("2025-10-03", "2025-10-06"), "de-phase-2": ("2026-01-01", "2026-01-02")}
    },
)
add(
    "t-de-phase-2-needs-complete-documents",
    deal(
        investor=US,
        target=de(CHIPS),
        stake=pct(25),
        dates={"signing": "2025-07-28", "notification": "2025-08-04", "closing": "2026-06-30"},
    ),
    {"DE": ("required", "de.cs-20")},
    AWG_14A,
    today="2025-07-01",
    deadlines={"DE": {"de-phase-1": ("2025-10-04", "2025-10-06"), "de-phase-2": ("", None)}},
)

# ---------------------------------------------------------------- France
for after, outcome, rule in [
    (24.99, "not-required", "fr.none"),
    (25, "required", "fr.pct-25"),
    (25.01, "required", "fr.pct-25"),
]:
    add(
        f"t-fr-25-{after}",
        deal(target=fr(["digital-infrastructure"]), stake=pct(after)),
        {"FR": (outcome, rule)},
        FR_R151_2,
    )
add(
    "t-fr-from-25-to-40",
    deal(target=fr(["digital-infrastructure"]), stake=pct(40, before=25)),
    {"FR": ("not-required", "fr.none")},
    FR_R151_2,
)
for after, outcome, rule in [
    (9.99, "not-required", "fr.none"),
    (10, "required", "fr.pct-10-listed"),
    (24.99, "required", "fr.pct-10-listed"),
    (30, "required", "fr.pct-25"),
]:
    add(
        f"t-fr-listed-{after}",
        deal(target=fr(["digital-infrastructure"], listed=True), stake=pct(after)),
        {"FR": (outcome, rule)},
        FR_FAST,
    )
add(
    "t-fr-listed-from-10-to-20",
    deal(target=fr(["digital-infrastructure"], listed=True), stake=pct(20, before=10)),
    {"FR": ("not-required", "fr.none")},
    FR_R151_2,
)
add(
    "t-fr-german-12pct-listed",
    deal(
        investor=company("DE", person("DE")),
        target=fr(["digital-infrastructure"], listed=True),
        stake=pct(12),
    ),
    {"FR": ("not-required", "fr.none")},
    FR_R151_2,
)
add(
    "t-fr-german-30pct",
    deal(investor=company("DE", person("DE")), target=fr(["digital-infrastructure"]), stake=pct(30)),
    {"FR": ("not-required", "fr.none")},
    FR_R151_2,
)
add(
    "t-fr-german-control",
    deal(
        investor=company("DE", person("DE")),
        target=fr(["digital-infrastructure"]),
        stake=pct(60, control=True),
    ),
    {"FR": ("required", "fr.control")},
    FR_R151_2,
)
add(
    "t-fr-norway-eea-30pct",
    deal(investor=company("NO", person("NO")), target=fr(["digital-infrastructure"]), stake=pct(30)),
    {"FR": ("not-required", "fr.none")},
    FR_R151_2,
)
add(
    "t-fr-swiss-30pct",
    deal(investor=company("CH", person("CH")), target=fr(["digital-infrastructure"]), stake=pct(30)),
    {"FR": ("required", "fr.pct-25")},
    FR_R151_2,
)
add(
    "t-fr-us-12pct-unlisted",
    deal(investor=US, target=fr(["digital-infrastructure"]), stake=pct(12)),
    {"FR": ("not-required", "fr.none")},
    FR_R151_2,
)
add(
    "t-fr-defence-control-through-lux-holding",
    deal(investor=LU_HOLD, target=fr(["defence"]), stake=pct(100, control=True)),
    {"FR": ("required", "fr.control")},
    FR_R151_2 + " + " + FR_L233_3,
)
add(
    "t-fr-defence-control-lux-held-by-french",
    deal(investor=company("LU", person("FR")), target=fr(["defence"]), stake=pct(100, control=True)),
    {"FR": ("required", "fr.control")},
    FR_R151_1,
)
add(
    "t-fr-french-spv-of-chinese-parent-30",
    deal(
        investor=company("FR", company("CN", person("CN"), stake_pct=100)),
        target=fr(["defence"]),
        stake=pct(30),
    ),
    {"FR": ("required", "fr.pct-25")},
    FR_R151_1 + " + " + FR_R151_2,
)
add(
    "t-fr-french-investor",
    deal(investor=company("FR", person("FR")), target=fr(["defence"]), stake=pct(100, control=True)),
    {"FR": ("not-required", "fr.not-foreign")},
    FR_R151_1,
)
add(
    "t-fr-no-sector",
    deal(target=fr(["other"]), stake=pct(100, control=True)),
    {"FR": ("not-required", "fr.no-sector")},
    FR_R151_3,
)
add(
    "t-fr-greenfield",
    deal(target=fr(["defence"], greenfield=True), stake=pct(100, control=True)),
    {"FR": ("not-required", "fr.greenfield")},
    FR_R151_2,
)
add(
    "t-fr-intragroup",
    deal(
        investor=company("NL", company("US", person("US"), stake_pct=100)),
        target=fr(["cybersecurity"]),
        stake=pct(100, control=True),
        intragroup=True,
    ),
    {"FR": ("not-required", "fr.intragroup")},
    FR_R151_7,
)
add(
    "t-fr-asset-deal-branch",
    deal(target=fr(["defence"], asset_deal=True), stake=pct(100, control=False)),
    {"FR": ("required", "fr.branch")},
    FR_R151_2 + " (branch of activity; derisk's reading [U])",
)
add(
    "t-fr-defence-indirect-through-lux-holding-target",
    deal(
        target={
            "name": "Holding SARL",
            "country": "LU",
            "sectors": ["other"],
            "subsidiaries": [
                {
                    "name": "Défense SAS",
                    "country": "FR",
                    "sectors": ["defence"],
                    "held_pct": 100,
                    "controlled": True,
                }
            ],
        },
        stake=pct(100, control=True),
    ),
    {"FR": ("required", "fr.control"), "BE": ("not-required", "be.scope")},
    FR_R151_2 + " + " + FR_L233_3,
)
add(
    "t-be-energy-indirect-through-lux-holding-target",
    deal(
        target={
            "name": "Holding SARL",
            "country": "LU",
            "sectors": ["other"],
            "subsidiaries": [
                {
                    "name": "Energie NV",
                    "country": "BE",
                    "sectors": ["energy"],
                    "held_pct": 80,
                    "controlled": True,
                    "turnover_eur": 50_000_000,
                }
            ],
        },
        stake=pct(40),
    ),
    {"BE": ("required", "be.tier-25")},
    BE_CA + " (indirect acquisitions covered; 40% x 80% = 32%)",
)
add(
    "t-fr-fast-track-across-14-july",
    deal(
        target=fr(["digital-infrastructure"], listed=True),
        stake=pct(12),
        dates={"signing": "2025-07-01", "notification": "2025-07-07", "closing": "2025-12-31"},
    ),
    {"FR": ("required", "fr.pct-10-listed")},
    FR_FAST + " + " + FR_R151_6,
    today="2025-07-01",
    deadlines={"FR": {"fr-fast-track": ("2025-07-22", None)}},
)
add(
    "t-fr-phase-1-across-14-july",
    deal(
        target=fr(["digital-infrastructure"]),
        stake=pct(30),
        dates={"signing": "2025-06-30", "notification": "2025-07-01", "closing": "2025-12-31"},
    ),
    {"FR": ("required", "fr.pct-25")},
    FR_R151_6,
    today="2025-06-01",
    deadlines={"FR": {"fr-phase-1": ("2025-08-13", None)}},
)

# ---------------------------------------------------------------- Netherlands
GAS = nl(["gas-storage"])
add(
    "t-nl-gas-control-dutch",
    deal(investor=company("NL", person("NL")), target=GAS, stake=pct(60, control=True)),
    {"NL": ("required", "nl.control")},
    VIFO,
)
add(
    "t-nl-gas-control-through-lux-holding",
    deal(investor=LU_HOLD, target=GAS, stake=pct(60, control=True)),
    {"NL": ("required", "nl.control")},
    VIFO + " (indirect acquisitions covered)",
)
add(
    "t-nl-gas-indirect-via-lux-target",
    deal(
        investor=US,
        target={
            "name": "Holding SARL",
            "country": "LU",
            "sectors": ["other"],
            "subsidiaries": [
                {
                    "name": "Gasopslag BV",
                    "country": "NL",
                    "sectors": ["gas-storage"],
                    "held_pct": 100,
                    "controlled": True,
                }
            ],
        },
        stake=pct(100, control=True),
    ),
    {"NL": ("required", "nl.control")},
    VIFO + " (indirect acquisitions covered)",
)
add("t-nl-gas-40pct-no-control", deal(target=GAS, stake=pct(40)), {"NL": ("not-required", "nl.none")}, VIFO)
for before, after, outcome, rule in [
    (0, 9.99, "not-required", "nl.none"),
    (0, 10, "required", "nl.hst-tier"),
    (10, 20, "required", "nl.hst-tier"),
    (20, 25, "required", "nl.hst-tier"),
    (25, 30, "not-required", "nl.none"),
]:
    add(
        f"t-nl-chips-from-{before}-to-{after}",
        deal(target=nl(CHIPS), stake=pct(after, before=before)),
        {"NL": (outcome, rule)},
        VIFO,
    )
add(
    "t-nl-signed-2020-09-07",
    deal(target=GAS, stake=pct(60, control=True), signing="2020-09-07"),
    {"NL": ("not-required", "nl.before-reach")},
    VIFO_BACK,
)
add(
    "t-nl-signed-2020-09-08-window-open",
    deal(target=GAS, stake=pct(60, control=True), signing="2020-09-08"),
    {"NL": ("not-required", "nl.retroactive-open")},
    VIFO_BACK,
    today="2024-01-31",
)
add(
    "t-nl-signed-2022-window-lapsed",
    deal(target=GAS, stake=pct(60, control=True), signing="2022-03-01"),
    {"NL": ("not-required", "nl.retroactive-lapsed")},
    VIFO_BACK,
    today="2024-02-01",
)
add(
    "t-nl-signed-2023-05-31",
    deal(target=GAS, stake=pct(60, control=True), signing="2023-05-31"),
    {"NL": ("not-required", "nl.retroactive-lapsed")},
    VIFO_BACK,
    today="2025-01-01",
)
add(
    "t-nl-signed-2023-06-01",
    deal(target=GAS, stake=pct(60, control=True), signing="2023-06-01"),
    {"NL": ("required", "nl.control")},
    VIFO,
    today="2025-01-01",
)
add(
    "t-nl-asset-deal-heat",
    deal(
        investor=company("NL", person("NL")),
        target=nl(["heat-transport"], asset_deal=True),
        stake=pct(100, control=True),
    ),
    {"NL": ("required", "nl.asset-deal")},
    VIFO_ASSETS,
)
add(
    "t-nl-greenfield",
    deal(target=nl(["heat-transport"], greenfield=True), stake=pct(100, control=True)),
    {"NL": ("unclear", "nl.greenfield")},
    VIFO_ASSETS + " (greenfield: open question)",
)
add(
    "t-nl-other-sector",
    deal(target=nl(["other"]), stake=pct(100, control=True)),
    {"NL": ("not-required", "nl.no-target")},
    VIFO,
)
add(
    "t-nl-joint-to-sole",
    deal(target=GAS, stake=pct(100, before=50, control=True, control_before="joint")),
    {"NL": ("required", "nl.control")},
    VIFO,
)
add(
    "t-nl-deadline-across-27-april",
    deal(
        target=GAS,
        stake=pct(60, control=True),
        dates={"signing": "2026-02-20", "notification": "2026-03-02", "closing": "2026-12-31"},
    ),
    {"NL": ("required", "nl.control")},
    VIFO_18 + " + " + NL_HOL,
    today="2026-02-01",
    deadlines={
        "NL": {
            "nl-phase-1": ("2026-04-27", "2026-04-28"),
            "nl-extension": ("2026-10-27", None),
            "nl-extension-fdi": ("2027-01-27", None),
        }
    },
)

# ---------------------------------------------------------------- EU
add(
    "t-eu-cn-into-be-required",
    deal(target=AIRPORT),
    {"EU": ("required", "eu.member-state-screening")},
    EU_REG,
)
add(
    "t-eu-eu-investor",
    deal(investor=company("FR", person("FR")), target=AIRPORT),
    {"EU": ("not-required", "eu.union-investor")},
    EU_REG,
)
add(
    "t-eu-target-outside",
    deal(target={"country": "CH", "sectors": ["energy"]}),
    {"EU": ("not-required", "eu.scope")},
    EU_REG,
)
add(
    "t-eu-lux-angel-not-screened",
    deal(investor=company("LU", person("LU", 90), person("US", 10)), stake=pct(30)),
    {"EU": ("not-required", "eu.non-screened"), "BE": ("not-required", "be.not-foreign")},
    EU_REG + " + " + BE_UBO,
)
add(
    "t-eu-spv-chinese-chips-de",
    deal(investor=company("LU", company("CN", person("CN"), stake_pct=100)), target=de(CHIPS), stake=pct(20)),
    {"EU": ("required", "eu.member-state-screening")},
    EU_REG + " + " + AWV_55A,
)
add(
    "t-eu-member-state-open",
    deal(
        investor=company(
            "LU", company("CN", person("CN"), stake_pct=30, name="Minority CN"), person("LU", 70)
        ),
        target=de(CHIPS),
        stake=pct(25),
    ),
    {"EU": ("unclear", "eu.member-state-unclear")},
    EU_REG + " + " + AWV_56_1,
)
add(
    "t-eu-revision-not-applied-2026",
    deal(target=AIRPORT, dates={"signing": "2026-06-01", "closing": "2026-12-31"}),
    {"EU": ("required", "eu.member-state-screening")},
    EU_REV,
    today="2026-06-01",
)
