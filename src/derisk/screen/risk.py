"""Risk factors with evidence: who controls the investor, which laws reach it, what the target already sends.

Every factor quotes its evidence (a path in the Know graph with its sources, a law with its tag, bytes
measured in a Watch workspace) and never goes beyond it: where derisk has no data, the factor says
"not assessed". Factors:

* ``state-control``: Regulation 2019/452 Art. 4(2)(a), control by the government of a third country;
* ``third-country-law``: the laws of the jurisdiction control is exercised from, from the Know legal base;
* ``art-4-1-sectors``: the Art. 4(1) factors the target's sectors touch;
* ``measured-exposure``: bytes the target's systems sent to organisations under the investor's control;
* ``art-4-2-bc``: prior involvement and criminal-activity risk, which derisk cannot assess.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final

from derisk.errors import NotFoundError
from derisk.i18n.data import T_, fill
from derisk.know.graph import Entity, Graph, find_entities
from derisk.know.laws import laws_for
from derisk.know.resolve import Resolution, resolve_controller
from derisk.screen.catalogue import Catalogue
from derisk.screen.deal import Deal, Party, country_name
from derisk.screen.exposure import measured_exposure
from derisk.screen.factor import REGULATION, RiskFactor
from derisk.screen.variables import control_chain, walk

log = logging.getLogger(__name__)
MATCH_SCORE: Final = 90.0
ART_4_2_A: Final = T_(
    "Regulation (EU) 2019/452 Art. 4(2)(a): whether the investor is directly or indirectly controlled by the "
    "government of a third country, including state bodies or armed forces, through ownership or significant "
    "funding [V]."
)


@dataclass
class Resolved:
    """The investor chain with Know-graph references replaced by graph facts, and their resolutions."""

    investor: Party
    resolutions: list[Resolution] = field(default_factory=list)


def _kind(entity: Entity) -> str:
    if entity.is_state:
        return "state"
    return "person" if entity.schema == "Person" else "company"


def _node(
    entity: Entity, where: str, *, stake: float | None, controls: bool | None, owners: tuple[Party, ...]
) -> Party:
    country = entity.country or entity.control_jurisdiction
    activity = entity.control_jurisdiction if entity.control_jurisdiction != country else None
    return Party(
        where=where,
        name=entity.name,
        entity=entity.id,
        country=country,
        kind=_kind(entity),
        stake_pct=stake,
        controls=controls,
        main_activity_country=activity,
        owners=owners,
    )


def find_entity(graph: Graph, name: str, where: str) -> Entity:
    if name in graph.entities:
        return graph.get(name)
    found = find_entities(graph, name, limit=5)
    if found and found[0][1] >= MATCH_SCORE:
        return found[0][0]
    names = ", ".join(f"{e.name} ({e.id})" for e, _ in found) or "none"
    raise NotFoundError(f"{where}: no entity {name!r} in the Know graph", details=[f"closest: {names}"])


def resolve_investor(party: Party, graph: Graph) -> Resolved:
    """Replace every ``entity:`` node by the graph's facts; a node without inline owners gets its control path."""
    out = Resolved(party)
    out.investor = _resolve(party, graph, out)
    return out


def _resolve(party: Party, graph: Graph, acc: Resolved) -> Party:
    owners = tuple(_resolve(o, graph, acc) for o in party.owners)
    if party.entity is None:
        return replace(party, owners=owners)
    entity = find_entity(graph, party.entity, party.where)
    resolution = resolve_controller(graph, entity.id)
    acc.resolutions.append(resolution)
    if not owners:
        owners = _path_owners(resolution, party.where)
    node = _node(entity, party.where, stake=party.stake_pct, controls=party.controls, owners=owners)
    return replace(node, country=party.country or node.country, kind=party.kind or node.kind)


def _path_owners(resolution: Resolution, where: str) -> tuple[Party, ...]:
    """The resolution's control path as nested owners (each step controls the one below)."""
    chain: tuple[Party, ...] = ()
    steps = list(resolution.path)
    if resolution.state and not any(s.owner.is_state for s in steps):
        chain = (
            Party(
                where=f"{where} (Know graph)",
                name=f"State of {country_name(resolution.state)}",
                entity=None,
                country=resolution.state,
                kind="state",
                stake_pct=None,
                controls=True,
                main_activity_country=None,
                owners=(),
            ),
        )
    for step in reversed(steps):
        chain = (
            _node(step.owner, f"{where} (Know graph)", stake=step.link.stake(), controls=True, owners=chain),
        )
    return chain


def state_control(investor: Party, resolutions: Sequence[Resolution], eu: frozenset[str]) -> RiskFactor:
    evidence: list[str] = []
    ctl = [investor, *control_chain(investor)]
    states = [p for p in ctl if p.kind == "state"]
    side = [p for p in walk(investor) if p.kind == "state" and p not in states]
    for r in resolutions:
        evidence.append(fill(T_("Know graph: {resolution_sentence}"), resolution_sentence=r.sentence))
        evidence.extend(
            fill(T_("Know graph path: {step_sentence}"), step_sentence=s.sentence()) for s in r.path
        )
        evidence.extend(
            fill(T_("Know graph, state stake without control: {step_sentence}"), step_sentence=s.sentence())
            for s in r.state_influence
        )
    third = [p for p in states if p.country and p.country not in eu]
    graph_state = [r for r in resolutions if r.state_controlled and r.state and r.state not in eu]
    confidence = min((r.confidence for r in resolutions), default="S", key="VSU".index)
    if third or graph_state:
        who = ", ".join(
            sorted(
                {country_name(p.country or "") for p in third}
                | {country_name(r.state or "") for r in graph_state}
            )
        )
        finding = "state-controlled"
        sentence = fill(
            T_("The investor is controlled by a state body of a third country ({who}). {art_sentence}"),
            who=who,
            art_sentence=ART_4_2_A,
        )
    elif side:
        finding = "state-stake"
        names = ", ".join(
            f"{p.label} ({p.country}, {p.stake_pct if p.stake_pct is not None else '?'}%)" for p in side
        )
        sentence = fill(
            T_(
                "State bodies hold stakes without control in the chain ({names}); Art. 4(2)(a) also names "
                "significant funding. {art_sentence}"
            ),
            names=names,
            art_sentence=ART_4_2_A,
        )
    elif any(r.state_influence for r in resolutions):
        finding = "state-stake"
        sentence = fill(
            T_("The Know graph records state stakes without control above the investor. {art_sentence}"),
            art_sentence=ART_4_2_A,
        )
    else:
        finding = "no-state-control-found"
        sentence = fill(
            T_(
                "No control by a state body is found in the Know graph: {chain}. This is a finding on the "
                "evidence given, not a proof of independence. {art_sentence}"
            )
            if resolutions
            else T_(
                "No control by a state body is found in the chain in the deal file: {chain}. This is a "
                "finding on the evidence given, not a proof of independence. {art_sentence}"
            ),
            chain=_chain(investor),
            art_sentence=ART_4_2_A,
        )
    if not resolutions:
        evidence.append(fill(T_("Deal file chain: {chain}"), chain=_chain(investor)))
        confidence = "U"
    return RiskFactor(
        "state-control",
        T_("Control by a third-country government (Art. 4(2)(a))"),
        finding,
        sentence,
        tuple(evidence),
        f"{REGULATION}, Art. 4(2)(a); Know graph sources as quoted",
        confidence,
    )


def _chain(party: Party) -> str:
    from derisk.screen.variables import chain_text

    return chain_text(party)


def third_country_law(
    investor: Party, resolutions: Sequence[Resolution], eu: frozenset[str]
) -> RiskFactor | None:
    where: list[str] = [r.jurisdiction for r in resolutions if r.jurisdiction]
    for p in [investor, *control_chain(investor)]:
        for c in (p.main_activity_country, p.country):
            if c:
                where.append(c)
    jurisdictions = [c for c in dict.fromkeys(where) if c not in eu]
    if not jurisdictions:
        return None
    evidence: list[str] = []
    for code in jurisdictions:
        for law in laws_for(code):
            art = f" {law.article}" if law.article else ""
            tag = f" (article [{law.article_confidence}])" if law.article_confidence else ""
            evidence.append(
                f"{country_name(code)}: {law.law}{art}{tag}: {law.summary} [{law.confidence}] — {law.source}"
            )
    names = ", ".join(country_name(c) for c in jurisdictions)
    if evidence:
        sentence = fill(
            T_(
                "Control over the investor is exercised from or incorporated in {names}; the Know legal base "
                "lists {count} laws there that oblige organisations to cooperate with the state or "
                "restrict data transfers. Screening authorities weigh such laws when the target holds "
                "sensitive data (cf. Art. 4(1), access to sensitive information)."
            ),
            names=names,
            count=len(evidence),
        )
    else:
        sentence = fill(
            T_("Control is exercised from {names}; the Know legal base has no laws recorded for it."),
            names=names,
        )
    return RiskFactor(
        "third-country-law",
        T_("Laws of the controlling jurisdiction"),
        "laws-found" if evidence else "none-recorded",
        sentence,
        tuple(evidence),
        "Know legal base (derisk/data/laws: each law with its own source, quoted in the evidence)",
        "V" if evidence else "U",
    )


def sector_factors(deal: Deal, catalogue: Catalogue) -> RiskFactor | None:
    eu = catalogue.regimes.get("EU")
    if eu is None:
        return None
    hits: dict[str, list[str]] = {}
    sectors = [*deal.target.sectors, *(s for sub in deal.target.subsidiaries for s in sub.sectors)]
    for sid in dict.fromkeys(sectors):
        sector = catalogue.sectors[sid]
        for lid in sector.lists.get("EU", ()):
            hits.setdefault(lid, []).append(sector.label)
    if not hits:
        return None
    evidence = tuple(
        fill(
            T_("{list_label} [{confidence}]: {sector_labels}"),
            list_label=eu.lists[lid].label,
            confidence=eu.lists[lid].confidence,
            sector_labels=", ".join(labels),
        )
        for lid, labels in hits.items()
    )
    return RiskFactor(
        "art-4-1-sectors",
        T_("Sensitive activities of the target (Art. 4(1))"),
        "touched",
        fill(
            T_(
                "The target's activities touch {count} of the Art. 4(1) factors member states and the "
                "Commission may consider (outline seen, exact wording unverified)."
            ),
            count=len(hits),
        ),
        evidence,
        f"{REGULATION}, Art. 4(1)",
        "V",
    )


def not_assessed() -> RiskFactor:
    return RiskFactor(
        "art-4-2-bc",
        T_("Prior involvement and risk of illegal activity (Art. 4(2)(b), (c))"),
        "not-assessed",
        T_(
            "derisk holds no data on the investor's prior involvement in activities affecting security or public order "
            "(b) or on a serious risk of illegal or criminal activity (c); these factors are not assessed."
        ),
        (),
        f"{REGULATION}, Art. 4(2)(b), (c)",
        "V",
    )


def controller_keys(resolved: Resolved) -> tuple[list[str], list[str]]:
    """Graph ids and names that identify the investor's group: its controllers and the chain's parties."""
    ids: list[str] = []
    names: list[str] = []
    for r in resolved.resolutions:
        ids.append(r.entity.id)
        if r.controller is not None:
            ids.append(r.controller.id)
            names.append(r.controller.name)
        ids.extend(e.id for e in r.joint)
    for p in [resolved.investor, *control_chain(resolved.investor)]:
        if p.kind != "state":
            names.append(p.label)
        if p.entity:
            ids.append(p.entity)
    return list(dict.fromkeys(ids)), list(dict.fromkeys(names))


def supplier_factors(graph: Graph, resolution: Resolution) -> list[RiskFactor]:
    """The Know supplier-risk factors (EU 5G coordinated risk assessment) for the investor entity."""
    from derisk.know.risk import supplier_risk

    return [
        RiskFactor(
            f"supplier:{f.factor}",
            fill(T_("{factor_label} (investor as supplier-risk profile)"), factor_label=f.title),
            f.finding,
            f.sentence,
            f.evidence,
            f"Know graph and legal base: {resolution.entity.name} (EU 5G coordinated risk assessment factors)",
            resolution.confidence,
            tuple(f.parts),
        )
        for f in supplier_risk(graph, resolution.entity.id)
    ]


def risk_factors(
    deal: Deal,
    catalogue: Catalogue,
    resolved: Resolved,
    workspace: Path | None,
    graph: Graph | None = None,
) -> list[RiskFactor]:
    """Every factor for the deal; with a graph, the investor's supplier-risk profile replaces the law list."""
    eu = catalogue.groups.get("eu", frozenset())
    out = [state_control(resolved.investor, resolved.resolutions, eu)]
    if graph is not None and resolved.resolutions:
        out.extend(supplier_factors(graph, resolved.resolutions[0]))
    else:
        law = third_country_law(resolved.investor, resolved.resolutions, eu)
        if law:
            out.append(law)
    sectors = sector_factors(deal, catalogue)
    if sectors:
        out.append(sectors)
    if workspace is not None:
        ids, names = controller_keys(resolved)
        out.append(measured_exposure(workspace, ids, names))
    out.append(not_assessed())
    return out
