"""The regime files: every fact cited and tagged, every rule type-checked, nothing invented."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from derisk.errors import DataError
from derisk.screen.engine import fmt_date, fmt_money
from derisk.screen.regimes import CONFIDENCES, REGIME_ORDER, data_dir, load_catalogue

# shared/ lies beside the repository (as for every developer and for CI); the check is skipped elsewhere.
LEGAL_FACTS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "LEGAL-FACTS.md"
CAT = load_catalogue()


def test_all_five_regimes_load() -> None:
    assert list(CAT.regimes) == list(REGIME_ORDER)
    assert len(CAT.sectors) >= 30


def test_every_statement_carries_a_source_and_a_tag() -> None:
    for regime in CAT.regimes.values():
        cited = [
            *regime.facts.values(),
            *regime.lists.values(),
            *regime.thresholds.values(),
            *regime.rules,
            *regime.deadlines,
            *regime.penalties,
            *regime.notes,
            *regime.advice.values(),
            regime.authority,
            regime.instrument,
        ]
        if regime.standstill:
            cited.append(regime.standstill)
        for item in cited:
            assert item.source.strip(), (regime.code, item)
            assert item.confidence in CONFIDENCES, (regime.code, item)


def test_every_list_is_reachable_from_the_vocabulary() -> None:
    for code, regime in CAT.regimes.items():
        reached = {
            lid for s in CAT.sectors.values() for lid in (*s.lists.get(code, ()), *s.possibly.get(code, ()))
        }
        assert reached == set(regime.lists), code


def test_every_sector_but_other_maps_somewhere() -> None:
    for sector in CAT.sectors.values():
        if sector.id != "other":
            assert any(sector.lists.values()) or any(sector.possibly.values()), sector.id


def test_belgian_agreement_is_never_cited_by_article() -> None:
    """The agreement's article numbers are unverified: only its Article 1 (read) and the AML law's Art. 4."""
    text = (data_dir() / "regimes" / "be.yaml").read_text(encoding="utf-8")
    for match in re.finditer(r"\b(Art\.|Article|art\.)\s*(\d+)", text):
        line = text[text.rfind("\n", 0, match.start()) + 1 : text.find("\n", match.end())]
        assert match.group(2) == "1" or "aml:" in line, line


def test_unverified_facts_of_legal_facts_stay_unverified() -> None:
    be, fr, nl = CAT.regimes["BE"], CAT.regimes["FR"], CAT.regimes["NL"]
    assert be.facts["biotech-turnover"].confidence == "U"
    assert {p.confidence for p in be.penalties} == {"V", "U"}
    # FR: 30 and 45 working days (R151-6) [V], the 10%-listed fast track [S]; NL: Vifo Art. 18(1) read [V]
    assert {d.id: d.confidence for d in fr.deadlines} == {
        "fr-fast-track": "S",
        "fr-phase-1": "V",
        "fr-phase-2": "V",
    }
    assert all(d.confidence == "V" for d in nl.deadlines)
    assert be.rolls is not None and be.rolls.confidence == "U"
    assert {d.id: d.confidence for d in be.deadlines}["verification"] == "S"  # 30 days [V], calendar [S]


@pytest.mark.skipif(
    not LEGAL_FACTS.exists(), reason="shared/reference/LEGAL-FACTS.md is not beside this checkout"
)
def test_verified_numbers_and_dates_are_written_in_legal_facts() -> None:
    text = LEGAL_FACTS.read_text(encoding="utf-8").replace("**", "")
    # dates derived from the checklist's own figures: (regime, fact) -> the phrases it is derived from
    derived = {("NL", "call-in-lapsed"): ("8 months", "1 June 2023")}
    for regime in CAT.regimes.values():
        for fact in regime.facts.values():
            if fact.confidence == "U" or fact.unit not in ("percent", "eur", "date"):
                continue
            if (regime.code, fact.id) in derived:
                assert all(p in text for p in derived[regime.code, fact.id]), fact.id
                continue
            v = fact.value
            if fact.unit == "percent":
                # "25%" or a list such as "20/25/40/50/75%"
                pattern = rf"(?<![\d.]){v:g}(%|/[\d/]*%)"
                assert re.search(pattern, text), (regime.code, fact.id, v)
                continue
            shown = fmt_money(v) if fact.unit == "eur" else fmt_date(v)  # type: ignore[arg-type]
            assert shown in text, (regime.code, fact.id, shown)
        for d in regime.deadlines:
            if d.days and d.confidence != "U":
                shown = [f"{d.days} days", f"{d.days}-day", f"{d.days} working days"]
                if d.days % 7 == 0:
                    shown.append(f"{d.days // 7} weeks")
                assert any(x in text for x in shown), (regime.code, d.id)


def _copy_data(tmp_path: Path) -> Path:
    dest = tmp_path / "data"
    shutil.copytree(data_dir() / "regimes", dest / "regimes")
    shutil.copy(data_dir() / "sectors.yaml", dest / "sectors.yaml")
    return dest


def _edit(path: Path, change) -> None:  # type: ignore[no-untyped-def]
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        ("be.yaml", lambda d: d["facts"]["tier-25-pct"].pop("source"), "facts.tier-25-pct: missing source"),
        ("be.yaml", lambda d: d["facts"]["tier-25-pct"].update(confidence="X"), "confidence must be one of"),
        ("be.yaml", lambda d: d["lists"]["be-10"].update(colour="red"), "unknown key 'colour'"),
        (
            "be.yaml",
            lambda d: d["rules"][0].update(when={"gt": ["$target.country", 5]}),
            "compares str with number",
        ),
        ("be.yaml", lambda d: d["rules"][0].update(say="{$target.nam}"), "unknown '$target.nam'"),
        ("be.yaml", lambda d: d["rules"].pop(), "the last rule must decide unconditionally"),
        ("be.yaml", lambda d: d["deadlines"][0].update(days=None), "exactly one of days, months, years"),
        ("be.yaml", lambda d: d["deadlines"][1].update(start="after:nope"), "unknown earlier phase"),
        ("de.yaml", lambda d: d["rules"][3].update(threshold="nope"), "unknown threshold"),
        ("eu.yaml", lambda d: d["country_groups"]["eu"].pop("source"), "country_groups.eu: missing source"),
        ("fr.yaml", lambda d: d.update(extra=1), "unknown key 'extra'"),
    ],
)
def test_broken_regime_files_are_data_errors(tmp_path: Path, file: str, change, message: str) -> None:  # type: ignore[no-untyped-def]
    base = _copy_data(tmp_path)
    _edit(base / "regimes" / file, change)
    with pytest.raises(DataError) as info:
        load_catalogue(base)
    assert message in info.value.one_line()


def test_sector_mapping_to_unknown_list_is_a_data_error(tmp_path: Path) -> None:
    base = _copy_data(tmp_path)
    _edit(base / "sectors.yaml", lambda d: d["sectors"][0]["lists"].update(BE=["be-99"]))
    with pytest.raises(DataError, match="unknown list 'be-99'"):
        load_catalogue(base)


def test_docs_list_every_sector_and_deal_key() -> None:
    from derisk.screen import dealfile as deal_module

    text = (Path(__file__).parent.parent / "docs" / "screening.md").read_text(encoding="utf-8")
    for sid in CAT.sectors:
        assert f"| `{sid}` |" in text, sid
    keys = set().union(
        deal_module.DEAL_KEYS,
        deal_module.PARTY_KEYS,
        deal_module.TARGET_KEYS,
        deal_module.SUBSIDIARY_KEYS,
        deal_module.STAKE_KEYS,
        deal_module.DATE_KEYS,
        deal_module.REQUEST_KEYS,
    )
    for key in keys:
        assert f"`{key}`" in text, key
    assert "derisk.screening/1" in text and "`holidays` package" in text
