"""Resolve supplier names of the register through the Know control graph, and the laws that reach them.

A name is taken only when the match is clear: exactly one entity matches exactly (score 100, after
Know's normalisation of accents and company forms), or the best candidate scores at least
:data:`MIN_SCORE` and leads the next one by :data:`CLEAR_LEAD`. Otherwise the name is *ambiguous*
(candidates listed) or *unknown*; neither is guessed.
"""

from __future__ import annotations

from typing import Any, Final

from derisk.know.graph import Entity, Graph, find_entities, load_graph
from derisk.know.laws import laws_for
from derisk.know.resolve import resolve_controller
from derisk.reduce.register import Resolved, Resolver

MIN_SCORE: Final = 92.0
CLEAR_LEAD: Final = 8.0


def know_resolver(graph: Graph | None = None) -> Resolver:
    """A resolver over the Know graph (the curated graph when none is given), cached per name."""
    g = graph if graph is not None else load_graph()
    cache: dict[str, Resolved | None] = {}

    def resolve(name: str) -> Resolved | None:
        if name not in cache:
            cache[name] = _resolve(g, name)
        return cache[name]

    return resolve


def _one_group(graph: Graph, entities: list[Entity]) -> Entity | None:
    """The entity to take when several match equally but all are controlled by the same one: that
    controller if it is among them (``Microsoft`` → Microsoft Corporation, not Microsoft Limited),
    else the first. None when they lead to different controllers (truly ambiguous)."""
    controllers = {}
    for entity in entities:
        res = resolve_controller(graph, entity.id)
        controllers[entity.id] = res.controller.id if res.controller is not None else None
    distinct = set(controllers.values())
    if len(distinct) != 1 or None in distinct:
        return None
    (top,) = distinct
    return next((e for e in entities if e.id == top), entities[0])


def _resolve(graph: Graph, name: str) -> Resolved | None:
    hits = find_entities(graph, name, limit=5)
    exact = [e for e, score in hits if score >= 100.0]
    same_group = _one_group(graph, exact) if len(exact) > 1 else None
    if len(exact) == 1 or same_group is not None:
        entity, score = same_group or exact[0], 100.0
    elif len(exact) > 1 or (
        hits and hits[0][1] >= MIN_SCORE and len(hits) > 1 and hits[0][1] - hits[1][1] < CLEAR_LEAD
    ):
        close = [e for e, s in hits if s >= MIN_SCORE]
        return Resolved(
            query=name,
            entity_id=None,
            entity_name=None,
            controller_id=None,
            controller_name=None,
            jurisdiction=None,
            sentence=f"{name!r} matches several entities: " + "; ".join(f"{e.name} ({e.id})" for e in close),
            candidates=tuple(e.id for e in close),
        )
    elif hits and hits[0][1] >= MIN_SCORE:
        entity, score = hits[0]
    else:
        return None
    res = resolve_controller(graph, entity.id)
    controller = res.controller
    if controller is not None:
        controller_id: str | None = controller.id
        controller_name: str | None = controller.name
    elif res.joint:
        controller_id = "+".join(e.id for e in res.joint)
        controller_name = " and ".join(e.name for e in res.joint)
    else:
        controller_id, controller_name = None, None
    chain = [entity.id, *(step.owner.id for step in res.path)]
    is_state = controller is not None and controller.is_state
    if is_state and controller is not None:
        chain = [c for c in chain if c != controller.id]
    return Resolved(
        query=name,
        controller_is_state=is_state,
        chain_ids=tuple(dict.fromkeys(chain)),
        entity_id=entity.id,
        entity_name=entity.name,
        controller_id=controller_id,
        controller_name=controller_name,
        jurisdiction=res.jurisdiction,
        state_controlled=res.state_controlled,
        confidence=res.confidence,
        sentence=res.sentence,
        match_score=score,
    )


def compelling_laws(jurisdictions: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per jurisdiction, the curated laws that compel cooperation or data access (with their tags)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for j in jurisdictions:
        laws = [law for law in laws_for(j) if law.kind == "compulsion"]
        if laws:
            out[j] = [
                {
                    "citation": law.citation(),
                    "obligation": law.obligation,
                    "confidence": law.confidence,
                    "source": law.source,
                }
                for law in laws
            ]
    return out
