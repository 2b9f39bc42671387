"""The screening result as a JSON document (``derisk.screening/1``) and as a self-contained HTML memo.

The HTML memo is rendered by Jinja2 with autoescape on, inline CSS and no external resource, so it
can be mailed or archived as one file. Names in a deal file and evidence from a workspace are
untrusted text: autoescape covers HTML, :func:`derisk.safetext.visible` covers the terminal.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

import jinja2
from rich.console import Console
from rich.table import Table
from rich.text import Text

from derisk import __version__
from derisk.i18n import DEFAULT_LANGUAGE, LANGUAGES
from derisk.i18n.data import T_, fill
from derisk.report.pages import page_environment
from derisk.safetext import visible
from derisk.screen.deal import Party, country_name
from derisk.screen.engine import CONVENTIONS, DISCLAIMER, RegimeResult, Screening, fmt_date
from derisk.screen.factor import RiskFactor
from derisk.screen.variables import chain_text

SCHEMA: Final = "derisk.screening/1"
_STYLE: Final = {"required": "bold red", "unclear": "bold yellow", "not-required": "green"}


def regime_json(r: RegimeResult) -> dict[str, Any]:
    g = r.regime
    return {
        "regime": g.code,
        "name": g.name,
        "title": g.title,
        "outcome": r.outcome,
        "headline": r.headline,
        "rests_on_unverified": r.rests_on_unverified,
        "subjects": r.subjects,
        "reasons": [
            {
                "rule": x.rule,
                "sentence": x.sentence,
                "role": x.role,
                "subject": x.subject,
                "source": x.source,
                "confidence": x.confidence,
            }
            for x in r.reasons
        ],
        "thresholds": r.thresholds,
        "sectors": r.sectors,
        "deadlines": r.deadlines,
        "standstill": r.standstill,
        "penalties": r.penalties,
        "advice": r.advice,
        "unverified_facts": r.unverified,
        "authority": {
            "text": g.authority.text,
            "source": g.authority.source,
            "confidence": g.authority.confidence,
        },
        "instrument": {
            "text": g.instrument.text,
            "source": g.instrument.source,
            "confidence": g.instrument.confidence,
        },
        "notes": [{"text": n.text, "source": n.source, "confidence": n.confidence} for n in g.notes],
        "pending_legislation": r.pending,
        "sources": [s.to_json() for s in g.sources.values() if s.kind != "derisk"],
    }


def party_json(p: Party) -> dict[str, Any]:
    """The investor chain as screened: inline facts with Know-graph nodes filled in."""
    return {
        "name": p.label,
        "entity": p.entity,
        "country": p.country,
        "kind": p.kind,
        "main_activity_country": p.main_activity_country,
        "stake_pct": p.stake_pct,
        "controls": p.controls,
        "owners": [party_json(o) for o in p.owners],
    }


def document(screening: Screening, factors: list[RiskFactor]) -> dict[str, Any]:
    """The ``derisk.screening/1`` JSON document (documented in docs/screening.md)."""
    return {
        "schema": SCHEMA,
        "derisk_version": __version__,
        "as_of": screening.today.isoformat(),
        "question": question(screening),
        "deal": screening.deal.to_json(),
        "investor_chain": chain_text(screening.investor),
        "investor_resolved": party_json(screening.investor),
        "regimes": [regime_json(r) for r in screening.regimes],
        "risk_factors": [f.to_json() for f in factors],
        "conventions": CONVENTIONS,
        "disclaimer": DISCLAIMER,
    }


def question(screening: Screening) -> str:
    d = screening.deal
    t, s = d.target, d.stake
    if s.before_pct and s.control_after:
        template = T_(
            "Must the acquisition by {investor} of {after_pct}% of the voting rights (from {before_pct}%) "
            "and control of {target} ({country}), signed on {signing} with closing planned on {closing}, "
            "be notified for foreign-investment screening, where, and by when?"
        )
    elif s.before_pct:
        template = T_(
            "Must the acquisition by {investor} of {after_pct}% of the voting rights (from {before_pct}%) "
            "of {target} ({country}), signed on {signing} with closing planned on {closing}, be notified "
            "for foreign-investment screening, where, and by when?"
        )
    elif s.control_after:
        template = T_(
            "Must the acquisition by {investor} of {after_pct}% of the voting rights and control of "
            "{target} ({country}), signed on {signing} with closing planned on {closing}, be notified for "
            "foreign-investment screening, where, and by when?"
        )
    else:
        template = T_(
            "Must the acquisition by {investor} of {after_pct}% of the voting rights of {target} "
            "({country}), signed on {signing} with closing planned on {closing}, be notified for "
            "foreign-investment screening, where, and by when?"
        )
    return fill(
        template,
        investor=screening.investor.label,
        after_pct=f"{s.after_pct:g}",
        before_pct=f"{s.before_pct:g}" if s.before_pct else "",
        target=t.name,
        country=country_name(t.country),
        signing=fmt_date(d.signing),
        closing=fmt_date(d.closing),
    )


@lru_cache(maxsize=4)
def _environment(lang: str) -> jinja2.Environment:
    return page_environment("derisk.screen", lang)


def render_html(doc: dict[str, Any], lang: str = DEFAULT_LANGUAGE) -> str:
    """The memo for a lawyer: question, short answers, reasons with rule and source, deadlines, evidence.

    In ``lang`` (en, fr, nl, de): the page's texts through the message catalogue, the document's
    data sentences through the data catalogue (:mod:`derisk.i18n.data`); the document stays English."""
    from derisk.report.svg import deadline_timeline

    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    timeline = deadline_timeline(doc["regimes"], doc.get("as_of"))
    return _environment(lang).get_template("memo.html.j2").render(doc=doc, timeline=timeline, lang=lang)


def print_summary(console: Console, doc: dict[str, Any]) -> None:
    """A terminal summary: one line per regime, deadlines of the regimes that apply, risk findings."""
    console.print(Text(visible(doc["question"], 600)))
    table = Table(show_lines=False, title="Screening (decision support, not legal advice)")
    for col in ("Regime", "Answer", "Decided by", "Unverified"):
        table.add_column(col)
    for r in doc["regimes"]:
        decisive = next((x for x in r["reasons"] if x["role"] == "decisive"), None)
        rule = decisive["rule"] if decisive else "open questions"
        table.add_row(
            Text(r["regime"]),
            Text(r["headline"], style=_STYLE[r["outcome"]]),
            Text(rule),
            Text("yes" if r["rests_on_unverified"] else "no"),
        )
    console.print(table)
    for r in doc["regimes"]:
        if r["outcome"] == "not-required":
            continue
        decisive = [x for x in r["reasons"] if x["role"] in ("decisive", "open")]
        for x in decisive:
            console.print(Text(f"{r['regime']}: {visible(x['sentence'], 1000)}"))
        for dl in r["deadlines"]:
            length = dl["days"] or dl["months"] or dl["years"]
            unit = "days" if dl["days"] else "months" if dl["months"] else "years"
            cond = f" ({dl['conditional']})" if dl["conditional"] else ""
            kind = "working" if dl["kind"] == "business" else dl["kind"]
            console.print(
                Text(
                    f"  {dl['phase']}: {length} {kind} {unit} [{dl['confidence']}], ends "
                    f"{dl['ends'] or 'unknown'}{cond}"
                )
            )
            if dl["rolls"]:
                console.print(Text(f"    {visible(dl['rolls']['text'], 600)} [{dl['rolls']['confidence']}]"))
        if r["standstill"] and r["standstill"]["warning"]:
            console.print(Text(f"  {r['standstill']['warning']}", style="bold red"))
    for r in doc["regimes"]:
        for p in r.get("pending_legislation", []):
            console.print(Text(f"Pending ({r['regime']}): {p['title']}: {p['status']} [{p['confidence']}]"))
    for f in doc["risk_factors"]:
        console.print(Text(f"Risk: {f['title']}: {f['finding']} [{f['confidence']}]"))
    console.print(Text(doc["disclaimer"], style="italic"))
