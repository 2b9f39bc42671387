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
from derisk.know.graph import Entity, Graph
from derisk.know.laws import DISCLAIMER, Law, laws_for, safeguards_for
from derisk.know.resolve import Resolution, resolve_controller

if TYPE_CHECKING:
    from derisk.know.graphdb import GraphDatabase

FACTORS: Final = {
    "government-link": "Link between the supplier and a third-country government",
    "legislation": "The controlling country's legislation and its checks and balances",
    "ownership": "The supplier's corporate ownership",
    "pressure": "The third country's ability to exert pressure",
    "supply-continuity": "Supply continuity",
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

    def to_json(self) -> dict[str, object]:
        return {
            "factor": self.factor,
            "title": self.title,
            "finding": self.finding,
            "evidence": list(self.evidence),
            "sentence": self.sentence,
        }


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


def _where(res: Resolution) -> str:
    return res.jurisdiction or "an unknown jurisdiction"


def _government_link(res: Resolution) -> RiskFactor:
    key = "government-link"
    evidence: list[str] = []
    third = third_country(res.jurisdiction)
    if res.state_controlled:
        evidence.extend(step.sentence() for step in res.path)
        finding = "present" if third else "not found"
        who = f"the state of {res.state}"
        text = f"{res.entity.name} is controlled by {who}" + (
            ", a third country." if third else ", an EU member state; this factor concerns third countries."
        )
    elif res.disputed:
        evidence.extend(step.sentence() for step in res.disputed)
        finding = "disputed"
        text = f"A link between {res.entity.name}'s owners and the state is alleged but disputed."
    elif res.state_influence:
        evidence.extend(step.sentence() for step in res.state_influence)
        finding = "indirect" if third else "not found"
        text = f"State bodies hold stakes without control in {res.entity.name}'s ownership chain."
    else:
        finding = "not found"
        text = f"No state ownership or control of {res.entity.name} is recorded in the control graph."
    return RiskFactor(key, FACTORS[key], finding, tuple(evidence), text)


def _legislation(res: Resolution, compulsion: list[Law]) -> RiskFactor:
    key = "legislation"
    where = _where(res)
    if res.jurisdiction is None:
        return RiskFactor(key, FACTORS[key], "unknown", (), "The controlling jurisdiction is unknown.")
    if not compulsion:
        safeguards = safeguards_for(res.jurisdiction)
        evidence = tuple(law.sentence() for law in safeguards)
        text = f"No law compelling cooperation or data access is recorded for {where}."
        if not third_country(res.jurisdiction):
            text += " EU law and its safeguards apply there."
        return RiskFactor(key, FACTORS[key], "not found", evidence, text, tuple(safeguards))
    cites = "; ".join(law.citation() for law in compulsion)
    oversight = [law for law in compulsion if law.judicial_oversight]
    text = f"Control is exercised from {where}, whose laws compel cooperation or data access: {cites}."
    if oversight:
        text += (
            " Recorded oversight: "
            + "; ".join(f"{law.law}: {law.judicial_oversight}" for law in oversight)
            + "."
        )
    else:
        text += " No judicial oversight of these duties is recorded in the legal base."
    text += f" {DISCLAIMER}"
    evidence = tuple(law.sentence() for law in compulsion)
    return RiskFactor(key, FACTORS[key], "present", evidence, text, tuple(compulsion))


def _ownership(res: Resolution) -> RiskFactor:
    key = "ownership"
    evidence = [step.sentence() for step in res.path]
    chain = " → ".join(res.chain())
    notes: list[str] = []
    incorporated = res.controller.country if res.controller else None
    if res.controller and incorporated and res.jurisdiction and incorporated != res.jurisdiction:
        notes.append(
            f"{res.controller.name} is incorporated in {incorporated} but control is exercised from "
            f"{res.jurisdiction}"
        )
    vie = [
        step for step in res.path if step.link.kind == "control" and "VIE" in (step.link.control_type or "")
    ]
    if vie:
        notes.append(
            "control rests on contracts (VIE structure), not on shares: "
            + ", ".join(step.asset.name for step in vie)
        )
    if res.cycles:
        notes.append("the ownership contains a cycle")
    if res.joint:
        notes.append("control is joint")
    text = f"Ownership chain: {chain}; weakest link [{res.confidence}]."
    if notes:
        joined = "; ".join(notes)
        text += " " + joined[:1].upper() + joined[1:] + "."
    finding = "present" if res.path or res.joint else "not found"
    return RiskFactor(key, FACTORS[key], finding, tuple(evidence), text)


def _pressure(res: Resolution, compulsion: list[Law]) -> RiskFactor:
    key = "pressure"
    general = [law for law in compulsion if "cooperation" in law.obligation or "assistance" in law.obligation]
    third = third_country(res.jurisdiction)
    evidence = tuple(law.sentence() for law in general)
    if third and (general or res.state_controlled):
        reasons = []
        if res.state_controlled:
            reasons.append(f"the state of {res.state} controls the entity")
        if general:
            reasons.append(
                "its laws impose duties to cooperate or assist: "
                + "; ".join(law.citation() for law in general)
            )
        text = (
            f"{res.jurisdiction} can exert pressure on {res.entity.name}: " + "; and ".join(reasons) + "."
            " Where its products are made is not recorded in the control graph."
        )
        return RiskFactor(key, FACTORS[key], "present", evidence, text, tuple(general))
    if third is None:
        return RiskFactor(key, FACTORS[key], "unknown", (), "The controlling jurisdiction is unknown.")
    text = f"No recorded legal or ownership lever lets a third country press {res.entity.name}."
    return RiskFactor(key, FACTORS[key], "not found", evidence, text)


def _continuity(graph: Graph, res: Resolution) -> RiskFactor:
    key = "supply-continuity"
    group = res.entity.group or (res.controller.group if res.controller else None)
    assessments = graph.assessments_for(group)
    if assessments:
        evidence = tuple(f"{a.says} [{a.confidence}] ({a.source.cite()})" for a in assessments)
        text = (
            f"Published assessments of {group}: "
            + " ".join(a.says for a in assessments)
            + " Plan for replacing the supplier (multi-vendor strategy, 5G Toolbox)."
        )
        return RiskFactor(key, FACTORS[key], "present", evidence, text)
    text = (
        f"derisk has no data on {res.entity.name}'s supply continuity; check lock-in and alternatives "
        "(NIS2 Art. 22 names systemic supply disruption from lock-in)."
    )
    return RiskFactor(key, FACTORS[key], "unknown", (), text)


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
