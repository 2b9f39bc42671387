"""Assemble a Reduce result (site or trade) into the ``derisk.reduce/1`` JSON document and HTML.

The document is the contract documented in docs/reduce.md; the HTML is rendered from it with
Jinja2 autoescape, so every name that came from a site file, a graph or the network is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

import jinja2
import pyarrow as pa

from derisk import __version__
from derisk.i18n import DEFAULT_LANGUAGE, LANGUAGES
from derisk.i18n.data import T_, fill
from derisk.reduce.findings import Finding, sort_findings
from derisk.reduce.jurisdictions import EuMembers, eu_members
from derisk.reduce.measures import Measures, measure
from derisk.reduce.plan import Plan, build_plan
from derisk.reduce.register import ROLE_LABELS, Register
from derisk.reduce.trade import TradeResult
from derisk.reduce.traffic import TrafficReport, compare
from derisk.report.pages import page_environment
from derisk.report.svg import plan_bars

SCHEMA: Final = "derisk.reduce/1"
DISCLAIMER: Final = T_(
    "Decision support, not legal advice. Legal statements come from derisk's curated facts and keep their "
    "confidence tags: [V] seen in a source, [S] consistent across secondary sources, [U] unverified."
)

#: A supplier in a third-country dependency finding, by (controller named, state-controlled): the
#: role a data string, so pages translate each supplier of the list (names kept).
_SUPPLIER: Final = {
    (False, False): T_("{name} ({role_label} of {system}, {jurisdiction})"),
    (True, False): T_("{name} ({role_label} of {system}; controller {controller}, {jurisdiction})"),
    (False, True): T_("{name} ({role_label} of {system}, {jurisdiction}, state-controlled)"),
    (True, True): T_(
        "{name} ({role_label} of {system}; controller {controller}, {jurisdiction}, state-controlled)"
    ),
}


@dataclass(frozen=True)
class SiteResult:
    register: Register
    measures: Measures
    traffic: TrafficReport | None
    plan: Plan
    findings: tuple[Finding, ...]


def _function_findings(register: Register, m: Measures, eu: EuMembers) -> list[Finding]:
    out: list[Finding] = []
    for fm in m.functions:
        third = [j for j in fm.depends_on if eu.is_third_country(j)]
        if not third:
            continue
        parts = []
        for system in fm.systems:
            for slot in register.slots_of(system):
                for s in slot.suppliers:
                    if s.jurisdiction in third:
                        ctrl = s.controller_name != s.name
                        state = bool(s.resolved and s.resolved.state_controlled)
                        parts.append(
                            fill(
                                _SUPPLIER[ctrl, state],
                                name=s.name,
                                role_label=ROLE_LABELS[slot.role],
                                system=system,
                                controller=s.controller_name,
                                jurisdiction=s.jurisdiction,
                            )
                        )
        out.append(
            Finding(
                kind="third-country-dependency",
                severity="high",
                subject=fm.name,
                sentence=fill(
                    T_(
                        "The function {function} cannot run without suppliers controlled from {where}: {suppliers}."
                    ),
                    function=repr(fm.name),
                    where=", ".join(third),
                    suppliers="; ".join(parts),
                ),
                evidence={"function": fm.name, "jurisdictions": third, "systems": list(fm.systems)},
            )
        )
    for p in m.single_points:
        if p.third_country and not p.mitigated:
            out.append(
                Finding(
                    kind="single-point-of-dependency",
                    severity="medium",
                    subject=f"{p.system}/{p.role}",
                    sentence=p.sentence(),
                    evidence=p.to_json(),
                )
            )
    return out


def analyse_site(
    register: Register,
    *,
    flows: pa.Table | None = None,
    workspace: str | None = None,
    eu: EuMembers | None = None,
) -> SiteResult:
    """Measures, traffic comparison (when flows are given), findings and plan of a register."""
    eu = eu or eu_members()
    m = measure(register, eu)
    traffic = compare(register, flows, workspace=workspace, eu=eu) if flows is not None else None
    findings = [*register.findings, *_function_findings(register, m, eu)]
    if traffic is not None:
        findings.extend(traffic.findings)
    plan = build_plan(register, eu=eu)
    return SiteResult(register, m, traffic, plan, tuple(sort_findings(findings)))


def _register_json(register: Register) -> dict[str, Any]:
    return {
        "functions": [
            {"name": f.name, "description": f.description, "systems": list(f.systems)}
            for f in register.functions
        ],
        "dependencies": [
            {
                "system": slot.system,
                "role": slot.role,
                "escrow": slot.escrow,
                "egress_controlled": slot.egress_controlled,
                "suppliers": [
                    {
                        "name": s.name,
                        "resolved": s.resolved is not None,
                        "entity_id": s.resolved.entity_id if s.resolved else None,
                        "entity": s.resolved.entity_name if s.resolved else None,
                        "controller_id": s.resolved.controller_id if s.resolved else None,
                        "controller": s.controller_name,
                        "jurisdiction": s.jurisdiction,
                        "state_controlled": bool(s.resolved and s.resolved.state_controlled),
                        "confidence": s.resolved.confidence if s.resolved else None,
                        "sentence": s.resolved.sentence if s.resolved else None,
                    }
                    for s in slot.suppliers
                ],
            }
            for slot in register.slots
        ],
    }


def site_document(
    result: SiteResult, *, source: str | None = None, laws: dict[str, list[dict[str, Any]]] | None = None
) -> dict[str, Any]:
    """The ``derisk.reduce/1`` document of a site; ``laws``: compelling laws per jurisdiction (Know)."""
    m = result.measures
    return {
        "schema": SCHEMA,
        "mode": "site",
        "derisk_version": __version__,
        "disclaimer": DISCLAIMER,
        "source": source,
        "site": result.register.site,
        "shares": {
            "dependency": m.headline()["dependency_shares"],
            "exposure": m.to_json()["exposure_shares"],
            "edges": m.headline()["edge_shares"],
        },
        "hhi": m.headline()["hhi"],
        "measures": m.to_json(),
        "register": _register_json(result.register),
        "traffic": result.traffic.to_json() if result.traffic else {"available": False},
        "findings": [f.to_json() for f in result.findings],
        "plan": result.plan.to_json(),
        "laws": laws or {},
    }


def third_country_jurisdictions(result: SiteResult, eu: EuMembers | None = None) -> list[str]:
    """Third-country jurisdictions the register depends on or is exposed to, most edges first."""
    eu = eu or eu_members()
    shares = {**result.measures.exposure_shares, **result.measures.edge_shares}
    return sorted((j for j in shares if eu.is_third_country(j)), key=lambda j: (-shares[j], j))


def trade_document(result: TradeResult) -> dict[str, Any]:
    """The ``derisk.reduce/1`` document of a trade-data run."""
    summary = result.summary()
    return {
        "schema": SCHEMA,
        "mode": "trade",
        "derisk_version": __version__,
        "disclaimer": DISCLAIMER,
        "source": result.source,
        "shares": {"dependent_imports_by_supplier": summary["dependent_imports_by_supplier"]},
        "hhi": None,
        "trade": result.to_json(),
        "findings": [f.to_json() for f in sort_findings(list(result.findings))],
        "plan": None,
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


@lru_cache(maxsize=4)
def _environment(lang: str) -> jinja2.Environment:
    env = page_environment("derisk.reduce", lang)
    env.filters["pct"] = _pct
    env.filters["num"] = _num
    env.globals["role_label"] = ROLE_LABELS
    env.globals["plan_bars"] = plan_bars
    return env


def render_html(document: dict[str, Any], lang: str = DEFAULT_LANGUAGE) -> str:
    """A self-contained HTML page (inline CSS, no scripts, no external resources) of a document, in
    ``lang`` (en, fr, nl, de): page texts through the message catalogue, the document's sentences
    through the data catalogue (:mod:`derisk.i18n.data`); the document itself stays English."""
    lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
    return _environment(lang).get_template("reduce.html.j2").render(doc=document, lang=lang)
