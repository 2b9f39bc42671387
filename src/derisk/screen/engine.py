"""The screening engine: run every regime's decision list on a deal and explain the answer.

For each regime the engine evaluates the direct target and, for indirect acquisitions, every
subsidiary in the regime's countries; the strongest outcome wins (required > unclear > not-required).
The answer carries the sentences of the rules that decided it, the thresholds and sector lists that
triggered, the deadlines computed from the deal's dates, the standstill, the penalties, and every
unverified fact it rests on. The EU mechanism runs last, as it depends on the member states' answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from derisk.i18n.data import T_
from derisk.screen import deadlines as dl
from derisk.screen.catalogue import Catalogue, Fact, Regime
from derisk.screen.deal import Deal, Party, country_name
from derisk.screen.rules import Decision, Env, Step, Value, run
from derisk.screen.variables import VARIABLES, Subject, subjects

RANK: Final = {"not-required": 0, "unclear": 1, "required": 2}
HEADLINES: Final = {
    "required": T_("Notification required"),
    "not-required": T_("No notification required"),
    "unclear": T_("Unclear: not decided by the reviewed facts"),
}
EU_HEADLINES: Final = {
    "required": T_("The deal enters the EU cooperation mechanism"),
    "not-required": T_("No step in the EU cooperation mechanism expected"),
    "unclear": T_("Unclear whether the EU cooperation mechanism is engaged"),
}
DISCLAIMER: Final = T_(
    "Decision support, not legal advice. derisk applies cited, confidence-tagged facts ([V] seen in a source, "
    "[S] consistent across secondary sources, [U] unverified) to the facts in the deal file; it does not replace "
    "a lawyer's review of the primary texts or contact with the screening authorities."
)
CONVENTIONS: Final = T_(
    "Deadlines: a period of N days ends on the N-th counted day after its start; working days are Monday to "
    "Friday minus the member state's public holidays (the holidays package: Belgium, France and the Netherlands "
    "as a whole, Germany's nationwide holidays only, no federal state assumed); a calendar period that ends on a "
    "weekend or public holiday is shown with the next working day and the regime's own, tagged, rule on whether "
    "it rolls; the clock stops on the days after an information request up to and including the day it is "
    "answered. Voting rights in a subsidiary acquired indirectly are the product of the shares along the chain; "
    "an ultimate beneficial owner is a natural person with more than 25% of the investor (the product along the "
    "chain) or control of it."
)


@dataclass(frozen=True)
class Reason:
    rule: str
    sentence: str
    role: str  # "decisive" | "note" | "open" | "term"
    source: str
    confidence: str
    subject: str


@dataclass
class RegimeResult:
    regime: Regime
    outcome: str
    headline: str
    reasons: list[Reason]
    thresholds: list[dict[str, Any]]
    sectors: list[dict[str, Any]]
    deadlines: list[dict[str, Any]]
    standstill: dict[str, Any] | None
    penalties: list[dict[str, str]]
    unverified: list[dict[str, str]]
    subjects: list[str] = field(default_factory=list)
    advice: dict[str, str] | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rests_on_unverified(self) -> bool:
        return any(u["used_for"] == "outcome" for u in self.unverified)


def fmt_money(value: float) -> str:
    if value % 1_000_000 == 0:
        return f"EUR {value / 1_000_000:,.0f} million"
    return f"EUR {value:,.0f}"


def fmt_date(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def fmt_number(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:,.0f}"


def fmt_fact(fact: Fact) -> str:
    """A fact's value as a memo shows it, with its confidence tag."""
    v = fact.value
    if isinstance(v, date):
        shown = fmt_date(v)
    elif isinstance(v, float) and not isinstance(v, bool):
        unit = {"percent": "%", "days": " days", "months": " months", "years": " years"}.get(fact.unit, "")
        shown = fmt_money(v) if fact.unit == "eur" else f"{fmt_number(v)}{unit}"
    else:
        shown = str(v)
    return f"{shown} [{fact.confidence}]"


def make_formatter(regime: Regime) -> Callable[[str, Value], str]:
    def fmt(ref: str, value: Value) -> str:
        if ref.startswith("@"):
            return fmt_fact(regime.facts[ref[1:]])
        return fmt_value(ref[1:], value)

    return fmt


def fmt_value(name: str, value: Value) -> str:
    if value is None:
        return "not given"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return fmt_money(value) if name.endswith("_eur") else fmt_number(value)
    if isinstance(value, date):
        return fmt_date(value)
    if isinstance(value, frozenset):
        return ", ".join(sorted(value)) or "none"
    return value or "none"


def _env(regime: Regime, catalogue: Catalogue, subject: Subject, extra: Mapping[str, Value]) -> Env:
    lists: set[str] = set()
    maybe: set[str] = set()
    for sid in subject.sectors:
        sector = catalogue.sectors[sid]
        lists.update(sector.lists.get(regime.code, ()))
        maybe.update(sector.possibly.get(regime.code, ()))
    return Env(
        variables={**subject.variables, **extra},
        facts={k: f.value for k, f in regime.facts.items()},
        lists=frozenset(lists),
        maybe_lists=frozenset(maybe - lists),
        groups=catalogue.groups,
        var_labels={k: v.label for k, v in VARIABLES.items()},
        terms=regime.terms,
    )


def _reasons(decision: Decision, env: Env, regime: Regime, subject: str) -> list[Reason]:
    fmt = make_formatter(regime)
    out: list[Reason] = []
    seen_terms: set[str] = set()
    for step in decision.steps:
        if step.rule.kind != "note" or step.status != "unknown":
            for name, value in [*step.trace.nested.items(), *step.trace.terms.items()]:
                direct = name in step.trace.terms
                if name in seen_terms or (not direct and value is not True):
                    continue
                seen_terms.add(name)
                term = regime.terms[name]
                if value is None:
                    sentence = f"Cannot tell: {term.say_true.render(env, fmt)}"
                else:
                    sentence = (term.say_true if value else term.say_false).render(env, fmt)
                out.append(
                    Reason(
                        f"term:{name}",
                        sentence,
                        "term",
                        regime.instrument.source,
                        regime.instrument.confidence,
                        subject,
                    )
                )
        role = (
            "note"
            if step.rule.kind == "note"
            else "decisive"
            if step is decision.decisive
            else "fallback"
            if step.status == "fallback"
            else "open"
        )
        out.append(Reason(step.rule.id, step.sentence, role, step.rule.source, step.rule.confidence, subject))
    return out


def _unverified(regime: Regime, steps: Sequence[Step]) -> list[dict[str, str]]:
    out: dict[str, dict[str, str]] = {}

    def add(key: str, text: str, source: str, used_for: str) -> None:
        out.setdefault(key, {"id": key, "text": text, "source": source, "used_for": used_for})

    for step in steps:
        if step.rule.kind == "note" and step.status != "fired":
            continue
        if step.rule.confidence == "U":
            add(f"rule:{step.rule.id}", step.sentence, step.rule.source, "outcome")
        for fid in sorted(step.trace.facts):
            fact = regime.facts[fid]
            if fact.confidence == "U":
                add(f"fact:{fid}", fact.text, fact.source, "outcome")
        for lid in sorted(step.trace.lists):
            if regime.lists[lid].confidence == "U":
                add(f"list:{lid}", regime.lists[lid].label, regime.lists[lid].source, "outcome")
        if step.rule.threshold and regime.thresholds[step.rule.threshold].confidence == "U":
            t = regime.thresholds[step.rule.threshold]
            add(f"threshold:{step.rule.threshold}", t.text, t.source, "outcome")
    return list(out.values())


def _thresholds(regime: Regime, step: Step | None) -> list[dict[str, Any]]:
    if step is None or step.rule.threshold is None:
        return []
    t = regime.thresholds[step.rule.threshold]
    return [
        {
            "id": step.rule.threshold,
            "text": t.text,
            "rule": step.rule.id,
            "source": t.source,
            "confidence": t.confidence,
            "facts": [
                {
                    "id": f.id,
                    "text": f.text,
                    "value": f.value.isoformat() if isinstance(f.value, date) else f.value,
                    "confidence": f.confidence,
                }
                for f in (regime.facts[i] for i in sorted(step.trace.facts))
            ],
            "lists": [{"id": lid, "label": regime.lists[lid].label} for lid in sorted(step.trace.lists)],
        }
    ]


def _deadlines(
    regime: Regime, deal: Deal, today: date, decided_by: set[str], added: Sequence[dl.DeadlineSpec] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    notified = deal.notification or max(deal.signing, today)
    basis = (
        "the notification date in the deal file"
        if deal.notification
        else f"assumed notification on {notified.isoformat()} (the later of signing and today); "
        "give dates.notification for the real date"
    )
    stops = [(r.requested, r.answered) for r in deal.info_requests if r.regime == regime.code]
    specs = [
        s
        for s in regime.deadlines
        if (not s.when_rules or decided_by & set(s.when_rules)) and not decided_by & set(s.unless_rules)
    ] + list(added)
    computed = dl.compute(
        specs,
        {
            "notification": notified,
            "closing": deal.closing,
            "member-state-notification": None,
            "complete-documents": deal.complete_documents,
        },
        stops,
        regime.holidays,
    )
    out: list[dict[str, Any]] = []
    unverified: list[dict[str, str]] = []
    for c in computed:
        s = c.spec
        start_basis = {
            "notification": basis,
            "closing": "the planned closing date in the deal file",
            "member-state-notification": "the screening member state's notification (not known)",
            "complete-documents": (
                "receipt of the complete documents (dates.complete_documents)"
                if deal.complete_documents
                else "receipt of the complete documents, not given: give dates.complete_documents"
            ),
        }.get(s.start, f"the end of the previous phase ({s.start[6:]})")
        rolls = None
        r = regime.rolls
        if c.non_working and c.next_working and r is not None and s.years is None:
            rolls = {
                "non_working": c.non_working,
                "next_working_day": c.next_working.isoformat(),
                "text": (
                    f"{c.ends.isoformat() if c.ends else ''} is not a working day ({c.non_working}); "
                    f"next working day {c.next_working.isoformat()}." + (f" {r.text}" if r else "")
                ),
                "source": r.source if r else "",
                "confidence": r.confidence if r else "U",
            }
            if r and r.confidence == "U":
                unverified.append(
                    {
                        "id": f"rolls:{s.id}",
                        "text": f"{s.phase} ends on a non-working day: {r.text}",
                        "source": r.source,
                        "used_for": "deadline",
                    }
                )
        out.append(
            {
                "id": s.id,
                "phase": s.phase,
                "days": s.days,
                "months": s.months,
                "years": s.years,
                "kind": s.kind,
                "start": c.start.isoformat() if c.start else None,
                "start_basis": start_basis,
                "ends": c.ends.isoformat() if c.ends else None,
                "suspended_days": c.suspended_days,
                "open_request": c.open_request,
                "conditional": s.conditional,
                "note": s.note,
                "passed": bool(c.ends and c.ends < today),
                "working_days_of": regime.holidays if s.kind == "business" else None,
                "rolls": rolls,
                "source": s.source,
                "confidence": s.confidence,
            }
        )
        if s.confidence == "U":
            unverified.append(
                {
                    "id": f"deadline:{s.id}",
                    "text": f"{s.phase}: {s.days or s.months or s.years} "
                    f"{'days' if s.days else 'months' if s.months else 'years'} ({s.kind})",
                    "source": s.source,
                    "used_for": "deadline",
                }
            )
    return out, unverified


def _standstill(regime: Regime, deal: Deal, deadlines: list[dict[str, Any]]) -> dict[str, Any] | None:
    if regime.standstill is None:
        return None
    first = next((d for d in deadlines if d["start"] and not d["conditional"]), None)
    warning = None
    if first and first["ends"] and deal.closing.isoformat() <= first["ends"]:
        warning = (
            f"The planned closing ({deal.closing.isoformat()}) is not after the end of the "
            f"{first['phase'].lower()} ({first['ends']}): closing before clearance breaches the standstill."
        )
    return {
        "text": regime.standstill.text,
        "source": regime.standstill.source,
        "confidence": regime.standstill.confidence,
        "warning": warning,
    }


def evaluate(
    regime: Regime,
    catalogue: Catalogue,
    deal: Deal,
    subs: Sequence[Subject],
    today: date,
    extra: Mapping[str, Value] | None = None,
    added_deadlines: Sequence[dl.DeadlineSpec] = (),
) -> RegimeResult:
    in_scope = [s for s in subs if s.country in regime.scope_countries] or [subs[0]]
    results: list[tuple[Subject, Decision, Env]] = []
    for subject in in_scope:
        env = _env(regime, catalogue, subject, extra or {})
        results.append((subject, run(regime.rules, env, make_formatter(regime)), env))
    best = max(results, key=lambda r: RANK[r[1].outcome])
    outcome = best[1].outcome
    reasons: list[Reason] = []
    unverified: list[dict[str, str]] = []
    thresholds: list[dict[str, Any]] = []
    sectors: dict[str, dict[str, Any]] = {}
    for subject, decision, env in results:
        reasons.extend(_reasons(decision, env, regime, subject.name))
        for u in _unverified(regime, decision.steps):
            if u["id"] not in {x["id"] for x in unverified}:
                unverified.append(u)
        if decision.outcome == outcome:
            thresholds.extend(_thresholds(regime, decision.decisive))
        for lid in sorted(env.lists | env.maybe_lists):
            sl = regime.lists[lid]
            sectors.setdefault(
                lid,
                {
                    "list": lid,
                    "label": sl.label,
                    "certain": lid in env.lists,
                    "source": sl.source,
                    "confidence": sl.confidence,
                },
            )
    deadlines: list[dict[str, Any]] = []
    decided_by = {
        d.decisive.rule.id for _, d, _ in results if d.outcome == outcome and d.decisive is not None
    }
    if outcome != "not-required":
        deadlines, du = _deadlines(regime, deal, today, decided_by, added_deadlines)
        unverified.extend(du)
    penalties = [{"text": p.text, "source": p.source, "confidence": p.confidence} for p in regime.penalties]
    if outcome != "not-required":
        unverified.extend(
            {"id": f"penalty:{i}", "text": p.text, "source": p.source, "used_for": "penalty"}
            for i, p in enumerate(regime.penalties)
            if p.confidence == "U"
        )
    headline = (EU_HEADLINES if regime.code == "EU" else HEADLINES)[outcome]
    cited = regime.advice.get(outcome)
    advice = {"text": cited.text, "source": cited.source, "confidence": cited.confidence} if cited else None
    if cited and cited.confidence == "U":
        unverified.append(
            {"id": f"advice:{outcome}", "text": cited.text, "source": cited.source, "used_for": "advice"}
        )
    pending = [
        {
            "id": p.id,
            "title": p.title,
            "status": p.status,
            "agreed": p.agreed.isoformat() if p.agreed else None,
            "applies_from": p.applies_from.isoformat() if p.applies_from else None,
            "applies_to_this_deal": p.applies_to(deal.signing),
            "changes": list(p.changes),
            "source": p.source,
            "confidence": p.confidence,
        }
        for p in regime.pending
    ]
    for p in pending:
        if p["applies_to_this_deal"]:
            reasons.append(
                Reason(
                    f"pending:{p['id']}",
                    f"{p['title']} applies to deals from {p['applies_from']}, and this one was signed on "
                    f"{deal.signing.isoformat()}: derisk's rules model the text in force before it; review the "
                    "deal under the new text.",
                    "note",
                    str(p["source"]),
                    str(p["confidence"]),
                    subs[0].name,
                )
            )
    return RegimeResult(
        regime,
        outcome,
        headline,
        reasons,
        thresholds,
        list(sectors.values()),
        deadlines,
        _standstill(regime, deal, deadlines) if outcome != "not-required" else None,
        penalties,
        unverified,
        [s.name for s in in_scope],
        advice,
        pending,
    )


@dataclass
class Screening:
    deal: Deal
    investor: Party
    today: date
    regimes: list[RegimeResult]
    risk_factors: list[dict[str, Any]] = field(default_factory=list)


def screen(deal: Deal, catalogue: Catalogue, *, today: date, investor: Party | None = None) -> Screening:
    """Screen ``deal`` under every regime. ``investor`` is the chain with Know-graph references resolved."""
    chain = investor or deal.investor
    subs = subjects(deal, chain, catalogue.vocabulary, today)
    eu = catalogue.regimes.get("EU")
    # EU legislation agreed but not yet applicable adds its phases only to deals signed once it applies
    added = [spec for p in (eu.pending if eu else ()) if p.applies_to(deal.signing) for spec in p.deadlines]
    member_states = [
        evaluate(catalogue.regimes[c], catalogue, deal, subs, today, added_deadlines=added)
        for c in ("BE", "DE", "FR", "NL")
        if c in catalogue.regimes
    ]
    extra: dict[str, Value] = {
        "others.required": frozenset(r.regime.code for r in member_states if r.outcome == "required"),
        "others.unclear": frozenset(r.regime.code for r in member_states if r.outcome == "unclear"),
    }
    results = list(member_states)
    if "EU" in catalogue.regimes:
        results.insert(1, evaluate(catalogue.regimes["EU"], catalogue, deal, subs, today, extra))
    return Screening(deal, chain, today, results)


def investor_summary(party: Party) -> str:
    country = country_name(party.country) if party.country else "country unknown"
    return f"{party.label} ({party.kind or 'kind unknown'}, {country})"
