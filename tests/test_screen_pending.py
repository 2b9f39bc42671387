"""The EU revision agreed on 11 December 2025: named in every memo, applied only from the date it applies."""

from __future__ import annotations

import dataclasses
from datetime import date

from derisk.screen.catalogue import Catalogue
from derisk.screen.dealfile import parse_deal
from derisk.screen.engine import screen
from derisk.screen.memo import document, render_html
from derisk.screen.regimes import load_catalogue
from screen_table import AIRPORT, deal

CAT = load_catalogue()


def eu_result(catalogue: Catalogue, signing: str) -> dict[str, object]:
    raw = deal(target=AIRPORT, dates={"signing": signing, "closing": "2028-12-31"})
    screening = screen(parse_deal(raw, catalogue.vocabulary, source="t"), catalogue, today=date(2026, 12, 6))
    doc = document(screening, [])
    return next(r for r in doc["regimes"] if r["regime"] == "EU")


def with_applies_from(day: date) -> Catalogue:
    eu = CAT.regimes["EU"]
    pending = tuple(dataclasses.replace(p, applies_from=day) for p in eu.pending)
    regimes = {**CAT.regimes, "EU": dataclasses.replace(eu, pending=pending)}
    return dataclasses.replace(CAT, regimes=regimes)


def test_the_revision_is_recorded_as_pending_with_its_changes() -> None:
    (p,) = CAT.regimes["EU"].pending
    assert p.agreed == date(2025, 12, 11)
    assert p.applies_from is None  # not in force: no source read says otherwise
    assert any("45 calendar days" in c for c in p.changes)
    assert "Pending legislation" in p.status and "policy.trade.ec.europa.eu" in p.source


def test_not_applied_before_its_date_but_named_in_the_memo() -> None:
    eu = eu_result(CAT, "2026-06-01")
    (p,) = eu["pending_legislation"]  # type: ignore[misc]
    assert p["applies_to_this_deal"] is False
    assert not any(r["rule"].startswith("pending:") for r in eu["reasons"])  # type: ignore[attr-defined]
    raw = deal(target=AIRPORT, dates={"signing": "2026-06-01", "closing": "2028-12-31"})
    doc = document(screen(parse_deal(raw, CAT.vocabulary, source="t"), CAT, today=date(2026, 12, 6)), [])
    html = render_html(doc)
    assert "Pending legislation" in html and "45 calendar days" in html and "Not applied to this deal" in html


def test_applied_from_the_date_it_applies_and_not_a_day_before() -> None:
    cat = with_applies_from(date(2027, 6, 1))
    before = eu_result(cat, "2027-05-31")
    on = eu_result(cat, "2027-06-01")
    assert before["pending_legislation"][0]["applies_to_this_deal"] is False  # type: ignore[index]
    assert on["pending_legislation"][0]["applies_to_this_deal"] is True  # type: ignore[index]
    assert any(r["rule"] == "pending:revision-2025" for r in on["reasons"])  # type: ignore[attr-defined]


def be_deadlines(catalogue: Catalogue, signing: str) -> dict[str, str | None]:
    raw = deal(target=AIRPORT, dates={"signing": signing, "notification": signing, "closing": "2028-12-31"})
    screening = screen(parse_deal(raw, catalogue.vocabulary, source="t"), catalogue, today=date(2026, 12, 6))
    be = next(r for r in screening.regimes if r.regime.code == "BE")
    return {d["id"]: d["ends"] for d in be.deadlines}


def test_the_45_day_first_phase_joins_the_member_states_only_once_it_applies() -> None:
    assert "eu-revision-first-phase" not in be_deadlines(CAT, "2027-06-01")  # not in force: never added
    cat = with_applies_from(date(2027, 6, 1))
    assert "eu-revision-first-phase" not in be_deadlines(cat, "2027-05-31")
    on = be_deadlines(cat, "2027-06-01")
    assert on["eu-revision-first-phase"] == "2027-07-16"  # 1 June + 45 calendar days
    assert on["verification"] == "2027-07-01"  # the Belgian phases stay as they are
