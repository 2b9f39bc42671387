"""Supplier risk profile along the non-technical factors of the EU coordinated 5G risk assessment.

The EU coordinated risk assessment of the cybersecurity of 5G networks (NIS Cooperation Group,
9 October 2019) names the factors (their exact wording is [U]): a strong link between the supplier
and a third-country government; that country's legislation, especially without democratic checks
and balances or EU data-protection or security agreements; the supplier's corporate ownership; the
third country's ability to exert pressure, including over the place of manufacture; supply
continuity. Each factor comes back with its finding, the evidence from the control graph and the
legal base, and a sentence a person can follow. There is deliberately no score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from derisk import countries
from derisk.i18n.data import P_, T_
from derisk.know.explain import Part, part, text
from derisk.know.graph import Entity, Graph
from derisk.know.laws import Law, laws_for, safeguards_for
from derisk.know.resolve import PathStep, Resolution, resolve_controller

if TYPE_CHECKING:
    from derisk.know.graphdb import GraphDatabase

FACTORS: Final = {
    "government-link": T_("Link between the supplier and a third-country government"),
    "legislation": T_("The controlling country's legislation and its checks and balances"),
    "ownership": T_("The supplier's corporate ownership"),
    "pressure": T_("The third country's ability to exert pressure"),
    "supply-continuity": T_("Supply continuity"),
}
#: Findings, from most to least concerning.
FINDINGS: Final = ("present", "disputed", "indirect", "not found", "unknown")


@dataclass(frozen=True)
class RiskFactor:
    factor: str
    title: str
    finding: str
    evidence: tuple[str, ...]
    sentence: str
    laws: tuple[Law, ...] = field(default=())
    #: The sentence as phrase templates with their values (what a page translates); ``sentence`` is
    #: their English text.
    parts: tuple[Part, ...] = field(default=(), compare=False)
    #: The control-chain steps ``evidence`` describes (one each), for pages that translate their
    #: phrases; empty when the evidence is laws or assessments.
    steps: tuple[PathStep, ...] = field(default=(), compare=False)

    def to_json(self) -> dict[str, object]:
        return {
            "factor": self.factor,
            "title": self.title,
            "finding": self.finding,
            "evidence": list(self.evidence),
            "sentence": self.sentence,
            "explanation": [{"template": t, "fields": dict(v)} for t, v in self.parts],
        }


def _factor(
    key: str,
    finding: str,
    evidence: tuple[str, ...],
    parts: list[Part],
    laws: tuple[Law, ...] = (),
    steps: tuple[PathStep, ...] = (),
) -> RiskFactor:
    return RiskFactor(key, FACTORS[key], finding, evidence, text(parts), laws, tuple(parts), steps)


def eu_members() -> frozenset[str]:
    """The EU's member states, from the one shipped list (see :mod:`derisk.countries`)."""
    return countries.eu_members().codes


def third_country(code: str | None) -> bool | None:
    """True for a non-EU jurisdiction, False for an EU member, None when unknown."""
    if not code:
        return None
    return code.upper() not in eu_members()


def supplier_risk(graph: Graph, entity_id: str, *, as_of: str | None = None) -> list[RiskFactor]:
    """The five factors for ``entity_id``, each with its evidence and sentence."""
    res = resolve_controller(graph, entity_id, as_of=as_of)
    compulsion = laws_for(res.jurisdiction)
    return [
        _government_link(res),
        _legislation(res, compulsion),
        _ownership(res),
        _pressure(res, compulsion),
        _continuity(graph, res),
    ]


_UNKNOWN: Final = P_("The controlling jurisdiction is unknown.")


def _government_link(res: Resolution) -> RiskFactor:
    key = "government-link"
    steps: tuple[PathStep, ...] = ()
    third = third_country(res.jurisdiction)
    name = res.entity.name
    if res.state_controlled:
        steps = res.path
        finding = "present" if third else "not found"
        template = (
            P_("{name} is controlled by the state of {state}, a third country.")
            if third
            else P_(
                "{name} is controlled by the state of {state}, an EU member state; this factor concerns "
                "third countries."
            )
        )
        parts = [part(template, name=name, state=res.state)]
    elif res.disputed:
        steps = res.disputed
        finding = "disputed"
        parts = [part(P_("A link between {name}'s owners and the state is alleged but disputed."), name=name)]
    elif res.state_influence:
        steps = res.state_influence
        finding = "indirect" if third else "not found"
        parts = [part(P_("State bodies hold stakes without control in {name}'s ownership chain."), name=name)]
    else:
        finding = "not found"
        parts = [
            part(P_("No state ownership or control of {name} is recorded in the control graph."), name=name)
        ]
    return _factor(key, finding, tuple(step.sentence() for step in steps), parts, steps=steps)


def _legislation(res: Resolution, compulsion: list[Law]) -> RiskFactor:
    key = "legislation"
    if res.jurisdiction is None:
        return _factor(key, "unknown", (), [part(_UNKNOWN)])
    where = res.jurisdiction
    if not compulsion:
        safeguards = safeguards_for(res.jurisdiction)
        evidence = tuple(law.sentence() for law in safeguards)
        parts = [
            part(P_("No law compelling cooperation or data access is recorded for {where}."), where=where)
        ]
        if not third_country(res.jurisdiction):
            parts.append(part(P_("EU law and its safeguards apply there.")))
        return _factor(key, "not found", evidence, parts, tuple(safeguards))
    cites = "; ".join(law.citation() for law in compulsion)
    oversight = [law for law in compulsion if law.judicial_oversight]
    parts = [
        part(
            P_("Control is exercised from {where}, whose laws compel cooperation or data access: {laws}."),
            where=where,
            laws=cites,
        )
    ]
    if oversight:
        recorded = "; ".join(f"{law.law}: {law.judicial_oversight}" for law in oversight)
        parts.append(part(P_("Recorded oversight: {oversight}."), oversight=recorded))
    else:
        parts.append(part(P_("No judicial oversight of these duties is recorded in the legal base.")))
    parts.append(part(P_("Decision support, not legal advice.")))  # laws.DISCLAIMER
    evidence = tuple(law.sentence() for law in compulsion)
    return _factor(key, "present", evidence, parts, tuple(compulsion))


def _ownership(res: Resolution) -> RiskFactor:
    key = "ownership"
    chain = " → ".join(res.chain())
    notes: list[Part] = []
    incorporated = res.controller.country if res.controller else None
    if res.controller and incorporated and res.jurisdiction and incorporated != res.jurisdiction:
        notes.append(
            part(
                P_("{controller} is incorporated in {country} but control is exercised from {where}."),
                controller=res.controller.name,
                country=incorporated,
                where=res.jurisdiction,
            )
        )
    vie = [
        step for step in res.path if step.link.kind == "control" and "VIE" in (step.link.control_type or "")
    ]
    if vie:
        notes.append(
            part(
                P_("Control rests on contracts (VIE structure), not on shares: {names}."),
                names=", ".join(step.asset.name for step in vie),
            )
        )
    if res.cycles:
        notes.append(part(P_("The ownership contains a cycle.")))
    if res.joint:
        notes.append(part(P_("Control is joint.")))
    names = res.chain()
    if res.jurisdiction and names and names[-1] == f"control exercised from {res.jurisdiction}":
        # the chain's last step (written by resolve) is a phrase, not a name: its own template
        first = part(
            P_("Ownership chain: {chain} → control exercised from {where}; weakest link [{confidence}]."),
            chain=" → ".join(names[:-1]),
            where=res.jurisdiction,
            confidence=res.confidence,
        )
    else:
        first = part(
            P_("Ownership chain: {chain}; weakest link [{confidence}]."),
            chain=chain,
            confidence=res.confidence,
        )
    parts = [first, *notes]
    finding = "present" if res.path or res.joint else "not found"
    return _factor(key, finding, tuple(step.sentence() for step in res.path), parts, steps=res.path)


def _pressure(res: Resolution, compulsion: list[Law]) -> RiskFactor:
    key = "pressure"
    general = [law for law in compulsion if "cooperation" in law.obligation or "assistance" in law.obligation]
    third = third_country(res.jurisdiction)
    evidence = tuple(law.sentence() for law in general)
    name = res.entity.name
    if third and (general or res.state_controlled):
        where = res.jurisdiction
        laws = "; ".join(law.citation() for law in general)
        if res.state_controlled and general:
            first = part(
                P_(
                    "{where} can exert pressure on {name}: the state of {state} controls the entity; and its "
                    "laws impose duties to cooperate or assist: {laws}."
                ),
                where=where,
                name=name,
                state=res.state,
                laws=laws,
            )
        elif res.state_controlled:
            first = part(
                P_("{where} can exert pressure on {name}: the state of {state} controls the entity."),
                where=where,
                name=name,
                state=res.state,
            )
        else:
            first = part(
                P_(
                    "{where} can exert pressure on {name}: its laws impose duties to cooperate or assist: {laws}."
                ),
                where=where,
                name=name,
                laws=laws,
            )
        parts = [first, part(P_("Where its products are made is not recorded in the control graph."))]
        return _factor(key, "present", evidence, parts, tuple(general))
    if third is None:
        return _factor(key, "unknown", (), [part(_UNKNOWN)])
    parts = [part(P_("No recorded legal or ownership lever lets a third country press {name}."), name=name)]
    return _factor(key, "not found", evidence, parts)


def _continuity(graph: Graph, res: Resolution) -> RiskFactor:
    key = "supply-continuity"
    group = res.entity.group or (res.controller.group if res.controller else None)
    assessments = graph.assessments_for(group)
    if assessments:
        evidence = tuple(f"{a.says} [{a.confidence}] ({a.source.cite()})" for a in assessments)
        parts = [part(P_("Published assessments of {group}:"), group=group)]
        parts.extend(part(P_("{says_sentence}"), says_sentence=a.says) for a in assessments)
        parts.append(part(P_("Plan for replacing the supplier (multi-vendor strategy, 5G Toolbox).")))
        return _factor(key, "present", evidence, parts)
    parts = [
        part(
            P_(
                "derisk has no data on {name}'s supply continuity; check lock-in and alternatives (NIS2 Art. 22 "
                "names systemic supply disruption from lock-in)."
            ),
            name=res.entity.name,
        )
    ]
    return _factor(key, "unknown", (), parts)


@dataclass(frozen=True)
class Listing:
    """An entity of a control chain that a sanctions or watch list names (OpenSanctions/FtM topics,
    datasets and Sanction records), with where that statement comes from."""

    entity_id: str
    name: str
    #: Its place in the chain: ``organisation`` (the entity itself), ``owner``, ``controller``
    #: (the ultimate one) or ``joint controller``.
    role: str
    topics: tuple[str, ...]
    datasets: tuple[str, ...]
    sanctions: tuple[str, ...]
    source: str | None

    def to_json(self) -> dict[str, object]:
        return {
            "entity_id": self.entity_id,
            "name": self.name,
            "role": self.role,
            "topics": list(self.topics),
            "datasets": list(self.datasets),
            "sanctions": list(self.sanctions),
            "source": self.source,
        }

    def sentence(self) -> str:
        """``X (controller) is listed: topics …; datasets …; sanction: …; source …`` (plain text)."""
        parts = []
        if self.topics:
            parts.append("topics " + ", ".join(self.topics))
        if self.datasets:
            parts.append("datasets " + ", ".join(self.datasets))
        parts.extend(f"sanction: {line}" for line in self.sanctions)
        if self.source:
            parts.append(f"source {self.source}")
        return f"{self.name} ({self.role}) is listed: " + "; ".join(parts)


def _listing(entity: Entity, role: str) -> Listing | None:
    if not (entity.topics or entity.sanctions):
        return None
    source = entity.sources[0].cite() if entity.sources else None
    return Listing(entity.id, entity.name, role, entity.topics, entity.datasets, entity.sanctions, source)


def chain_listings(graph: Graph, entity_id: str, *, as_of: str | None = None) -> tuple[Listing, ...]:
    """The listed entities of ``entity_id``'s control chain: itself, every owner on the path to its
    ultimate controller, the controller and joint controllers (each once, from the entity upwards)."""
    if entity_id not in graph.entities:
        return ()
    res = resolve_controller(graph, entity_id, as_of=as_of)
    chain: list[tuple[Entity, str]] = [(res.entity, "organisation")]
    chain.extend((step.owner, "owner") for step in res.path)
    if res.controller is not None:
        chain.append((res.controller, "controller"))
    chain.extend((e, "joint controller") for e in res.joint)
    roles: dict[str, tuple[Entity, str]] = {}
    for entity, role in chain:
        # The controller keeps that role even when it is also the last owner on the path.
        if entity.id not in roles or role in ("controller", "joint controller"):
            roles[entity.id] = (entity, role if entity.id != res.entity.id else "organisation")
    found = (_listing(entity, role) for entity, role in roles.values())
    return tuple(item for item in found if item is not None)


def listing_lookup(db: GraphDatabase) -> Callable[[str], tuple[Listing, ...]] | None:
    """``entity id → listed entities of its chain`` over the workspace's control graph, or None when
    nothing imported into ``db`` can carry a listing (no FtM/OpenSanctions import): the graph is then
    not even loaded. Each entity is resolved once."""
    from derisk.know import ftmstore

    if not ftmstore.fingerprint(db):
        return None
    from derisk.know.graph import load_graph
    from derisk.know.graphload import expand

    graph = load_graph(db)
    cache: dict[str, tuple[Listing, ...]] = {}

    def lookup(entity_id: str) -> tuple[Listing, ...]:
        if entity_id not in cache:
            if entity_id not in graph.entities:
                expand(graph, db, [entity_id])
            cache[entity_id] = chain_listings(graph, entity_id)
        return cache[entity_id]

    return lookup
