"""Who ultimately controls an entity, why, and from which jurisdiction.

Rules, applied at each level from the entity upwards (links whose end date has passed, or whose start
date lies in the future, are ignored; directorships never confer control):

1. A link the source describes as controlling (``controlling: true``), a contractual control link
   (``control``, e.g. a VIE structure) and a state supervision link (``state``) confer control.
   ``controlling: false`` never does. An ownership link confers control with more than 50% of the
   voting rights (or of the shares when voting rights are not published).
2. Otherwise stakes are added up by the *ultimate* controller of each holder: a parent that controls
   two holders of 30% each controls 60% (diamonds). Stakes of different bodies of the same state are
   added up as that state's (collective state control).
3. Two or more distinct controllers at one level (e.g. 50/50, or two control links marked ``joint``)
   are reported as joint control; each is resolved further.
4. Disputed links are not followed but reported, with their source, next to the result.
5. A cycle (A controls B controls A) stops the walk; it is reported and no controller is chosen.

Effective ownership is the product of equity shares along each path, summed over all simple paths.
The confidence of a result is the weakest confidence of the links it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Final

from derisk.i18n.data import T_, fill
from derisk.know.graph import CONFIDENCES, Entity, Graph, Link

MAX_PATHS: Final = 10_000
MAX_DEPTH: Final = 40


@dataclass(frozen=True)
class PathStep:
    """One step up the chain: ``owner`` controls ``asset`` through ``link``."""

    asset: Entity
    owner: Entity
    link: Link
    reason: str

    @property
    def confidence(self) -> str:
        return self.link.confidence

    def sentence(self) -> str:
        cite = self.link.source.cite() if self.link.source else "no source"
        return fill(
            T_("{owner} → {asset}: {reason_sentence} [{confidence}] ({cite})"),
            owner=self.owner.name,
            asset=self.asset.name,
            reason_sentence=self.reason,
            confidence=self.confidence,
            cite=cite,
        )

    def to_json(self) -> dict[str, object]:
        src = self.link.source
        return {
            "from": self.asset.name,
            "from_id": self.asset.id,
            "to": self.owner.name,
            "to_id": self.owner.id,
            "kind": self.link.kind,
            "share": self.link.share,
            "voting": self.link.voting,
            "control_type": self.link.control_type,
            "reason": self.reason,
            "confidence": self.link.confidence,
            "disputed": self.link.disputed,
            "source": {
                "url": src.url,
                "says": src.says,
                "date": src.date,
                "accessed": src.accessed,
                "verified": src.verified,
            }
            if src
            else None,
        }


@dataclass(frozen=True)
class Resolution:
    entity: Entity
    controller: Entity | None
    joint: tuple[Entity, ...]
    path: tuple[PathStep, ...]
    jurisdiction: str | None
    state_controlled: bool
    state: str | None
    confidence: str
    sentence: str
    jurisdiction_basis: str = "unknown"
    effective: tuple[tuple[str, float], ...] = ()
    state_influence: tuple[PathStep, ...] = ()
    disputed: tuple[PathStep, ...] = ()
    cycles: tuple[tuple[str, ...], ...] = ()
    notes: tuple[str, ...] = field(default=())

    def chain(self) -> tuple[str, ...]:
        """Names from the entity to its controller, then where control is exercised."""
        names = [self.entity.name, *(step.owner.name for step in self.path)]
        if self.joint:
            names.append("jointly: " + " and ".join(e.name for e in self.joint))
        if self.jurisdiction:
            names.append(f"control exercised from {self.jurisdiction}")
        return tuple(names)


def _weakest(confidences: list[str]) -> str:
    if not confidences:
        return "V"
    return min(confidences, key=CONFIDENCES.index)


def _active(link: Link, today: str) -> bool:
    if link.start and link.start[: len(today)] > today[: len(link.start)]:
        return False
    return not (link.end and link.end[: len(today)] < today[: len(link.end)])


def _reason(link: Link) -> str:
    text = link.describe()
    return text if link.summary is None else f"{text}; {link.summary}"


@dataclass
class _Partial:
    """What resolving one entity produced (before sentences are written)."""

    controller: Entity | None
    joint: tuple[Entity, ...]
    path: tuple[PathStep, ...]
    state: str | None
    collective_state: bool = False
    cycles: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class _Resolver:
    def __init__(self, graph: Graph, as_of: str | None) -> None:
        self.graph = graph
        self.today = as_of or date.today().isoformat()
        self.stack: list[str] = []
        self.memo: dict[str, _Partial] = {}

    def parents(self, entity_id: str) -> list[Link]:
        return [
            link
            for link in self.graph.parents(entity_id)
            if _active(link, self.today)
            and link.kind != "directorship"
            and link.owner_id in self.graph.entities
        ]

    def resolve(self, entity_id: str) -> _Partial:
        if entity_id in self.memo:
            return self.memo[entity_id]
        entity = self.graph.entities[entity_id]
        if entity_id in self.stack:
            cycle = (*self.stack[self.stack.index(entity_id) :], entity_id)
            return _Partial(None, (), (), None, cycles=[cycle])
        if len(self.stack) > MAX_DEPTH:
            return _Partial(entity, (), (), None, notes=["chain longer than 40 links: stopped"])
        self.stack.append(entity_id)
        try:
            result = self._resolve(entity)
        finally:
            self.stack.pop()
        if not result.cycles:
            self.memo[entity_id] = result
        return result

    def _resolve(self, entity: Entity) -> _Partial:
        links = [link for link in self.parents(entity.id) if not link.disputed]
        explicit = [link for link in links if self._confers(link)]
        if explicit:
            return self._follow(entity, explicit)
        return self._aggregate(entity, links)

    @staticmethod
    def _confers(link: Link) -> bool:
        if link.controlling is not None:
            return link.controlling
        if link.kind in ("control", "state"):
            return True
        stake = link.stake()
        return stake is not None and stake > 50

    def _follow(self, entity: Entity, links: list[Link]) -> _Partial:
        by_owner: dict[str, Link] = {}
        for link in sorted(links, key=lambda item: (-CONFIDENCES.index(item.confidence), item.id)):
            by_owner.setdefault(link.owner_id, link)
        if len(by_owner) == 1:
            link = next(iter(by_owner.values()))
            return self._up(entity, link)
        return self._joint(entity, list(by_owner.values()))

    def _up(self, entity: Entity, link: Link, reason: str | None = None) -> _Partial:
        owner = self.graph.entities[link.owner_id]
        step = PathStep(asset=entity, owner=owner, link=link, reason=reason or _reason(link))
        above = self.resolve(owner.id)
        if above.cycles and above.controller is None and not above.joint:
            return _Partial(None, (), (step, *above.path), None, cycles=above.cycles, notes=above.notes)
        return _Partial(
            above.controller,
            above.joint,
            (step, *above.path),
            above.state,
            above.collective_state,
            list(above.cycles),
            list(above.notes),
        )

    def _joint(self, entity: Entity, links: list[Link]) -> _Partial:
        tops: dict[str, Entity] = {}
        cycles: list[tuple[str, ...]] = []
        states: set[str | None] = set()
        for link in links:
            above = self.resolve(link.owner_id)
            cycles.extend(above.cycles)
            for top in (above.controller, *above.joint) if above.controller else above.joint:
                if top is not None:
                    tops[top.id] = top
            states.add(above.state)
        if len(tops) == 1:
            # Every joint holder answers to the same ultimate controller: sole control after all.
            best = max(links, key=lambda item: (item.stake() or 0, item.id))
            partial = self._up(entity, best, _reason(best) + " (all holders answer to the same controller)")
            partial.cycles.extend(cycles)
            return partial
        state = states.pop() if len(states) == 1 else None
        steps = tuple(
            PathStep(entity, self.graph.entities[link.owner_id], link, _reason(link)) for link in links
        )
        return _Partial(
            None,
            tuple(tops.values()),
            steps,
            state,
            cycles=cycles,
            notes=["joint control: " + ", ".join(self.graph.entities[k.owner_id].name for k in links)],
        )

    def _aggregate(self, entity: Entity, links: list[Link]) -> _Partial:
        """No single controlling link: add stakes up by ultimate controller, or by state."""
        totals: dict[str, float] = {}
        members: dict[str, list[Link]] = {}
        cycles: list[tuple[str, ...]] = []
        for link in links:
            stake = link.stake()
            if stake is None or link.controlling is False:
                continue
            above = self.resolve(link.owner_id)
            cycles.extend(above.cycles)
            top = above.controller or self.graph.entities[link.owner_id]
            key = f"state:{above.state}" if above.state else top.id
            totals[key] = totals.get(key, 0.0) + stake
            members.setdefault(key, []).append(link)
        winners = [key for key, total in totals.items() if total > 50]
        fifty = [key for key, total in totals.items() if total == 50]
        if winners:
            key = winners[0]
            group = members[key]
            total = totals[key]
            if len(group) == 1:
                partial = self._up(entity, group[0])
            elif key.startswith("state:"):
                steps = tuple(
                    PathStep(entity, self.graph.entities[link.owner_id], link, _reason(link))
                    for link in group
                )
                tops = {self.resolve(link.owner_id).controller for link in group}
                joint = tuple(sorted((t for t in tops if t is not None), key=lambda e: e.name))
                partial = _Partial(None, joint, steps, key.removeprefix("state:"), collective_state=True)
                partial.notes.append(f"bodies of the state {key[6:]} hold {total:g}% together")
            else:
                best = max(group, key=lambda item: (item.stake() or 0, item.id))
                partial = self._up(
                    entity, best, _reason(best) + f" (with other holders it controls: {total:g}%)"
                )
            partial.cycles.extend(cycles)
            return partial
        if len(fifty) >= 2:
            return self._joint(entity, [members[key][0] for key in fifty])
        state = entity.country if entity.is_state else None
        return _Partial(entity, (), (), state, cycles=cycles)


def effective_ownership(
    graph: Graph, entity_id: str, *, as_of: str | None = None
) -> tuple[dict[str, float], list[tuple[str, ...]]]:
    """Effective equity share (percent) of every ancestor: product along paths, summed over paths.

    Returns the shares and the cycles met (each as a tuple of entity ids); cycles are not followed.
    """
    today = as_of or date.today().isoformat()
    shares: dict[str, float] = {}
    cycles: list[tuple[str, ...]] = []
    count = 0
    stack: list[tuple[str, float, tuple[str, ...]]] = [(entity_id, 1.0, (entity_id,))]
    while stack and count < MAX_PATHS:
        current, factor, path = stack.pop()
        for link in graph.parents(current):
            if link.kind not in ("ownership", "state") or link.share is None or not _active(link, today):
                continue
            if link.owner_id in path:
                cycles.append((*path[path.index(link.owner_id) :], link.owner_id))
                continue
            count += 1
            value = factor * link.share / 100
            shares[link.owner_id] = shares.get(link.owner_id, 0.0) + value * 100
            if len(path) < MAX_DEPTH:
                stack.append((link.owner_id, value, (*path, link.owner_id)))
    return {k: round(v, 6) for k, v in shares.items()}, cycles


def resolve_controller(graph: Graph, entity_id: str, *, as_of: str | None = None) -> Resolution:
    """The ultimate controller of ``entity_id`` with the path that explains it."""
    entity = graph.get(entity_id)
    if not graph.parents(entity_id):
        return _root(entity)
    return _walk(graph, entity, as_of)


def _walk(graph: Graph, entity: Entity, as_of: str | None) -> Resolution:
    """The general resolution: up the links, stakes added by controller, side findings."""
    entity_id = entity.id
    resolver = _Resolver(graph, as_of)
    partial = resolver.resolve(entity_id)
    effective, eff_cycles = effective_ownership(graph, entity_id, as_of=as_of)
    cycles = tuple(dict.fromkeys([*partial.cycles, *eff_cycles]))
    controller = partial.controller
    top = controller
    if controller is not None and controller.is_state:
        state: str | None = controller.country
    else:
        state = partial.state
    state_controlled = state is not None
    jurisdiction, basis = _jurisdiction(partial, controller, cycles, graph)
    confidences = [step.confidence for step in partial.path]
    if partial.path:
        confidence = _weakest(confidences)
    else:  # nothing rests on links: as sure as the entity's own sources
        confidence = "V" if any(src.verified for src in entity.sources) else "U"
    if cycles and controller is None and not partial.joint:
        confidence = "U"
    influence, disputed = _side_findings(graph, resolver, entity_id, partial.path)
    result = Resolution(
        entity=entity,
        controller=top,
        joint=partial.joint,
        path=partial.path,
        jurisdiction=jurisdiction,
        state_controlled=state_controlled,
        state=state,
        confidence=confidence,
        sentence="",
        jurisdiction_basis=basis,
        effective=tuple(sorted(effective.items(), key=lambda kv: (-kv[1], kv[0]))),
        state_influence=influence,
        disputed=disputed,
        cycles=cycles,
        notes=tuple(partial.notes),
    )
    from derisk.know.explain import resolution_sentence

    return _with_sentence(result, resolution_sentence(result))


def _root(entity: Entity) -> Resolution:
    """The resolution of an entity that nothing owns, controls or directs (most registration
    records): its own ultimate controller. The same result as the general walk, without it."""
    from derisk.know.explain import resolution_sentence

    if entity.control_jurisdiction:
        jurisdiction, basis = entity.control_jurisdiction, "control-jurisdiction"
    elif entity.country:
        jurisdiction, basis = entity.country, "country-of-incorporation"
    else:
        jurisdiction, basis = None, "unknown"
    state = entity.country if entity.is_state else None
    confidence = "V" if any(src.verified for src in entity.sources) else "U"
    args = (entity, entity, (), (), jurisdiction, state is not None, state, confidence)
    draft = Resolution(*args, sentence="", jurisdiction_basis=basis)
    return Resolution(*args, sentence=resolution_sentence(draft), jurisdiction_basis=basis)


def _with_sentence(result: Resolution, sentence: str) -> Resolution:
    from dataclasses import replace

    return replace(result, sentence=sentence)


def _jurisdiction(
    partial: _Partial, controller: Entity | None, cycles: tuple[tuple[str, ...], ...], graph: Graph
) -> tuple[str | None, str]:
    if controller is not None:
        if controller.control_jurisdiction:
            return controller.control_jurisdiction, "control-jurisdiction"
        if controller.country:
            return controller.country, "country-of-incorporation"
        return None, "unknown"
    if partial.state:
        return partial.state, "state"
    members: list[Entity] = list(partial.joint)
    if not members and cycles:
        members = [graph.entities[i] for cycle in cycles for i in cycle if i in graph.entities]
    found = {m.jurisdiction for m in members}
    if len(found) == 1 and None not in found:
        return found.pop(), "joint" if partial.joint else "cycle"
    return None, "unknown"


def _side_findings(
    graph: Graph, resolver: _Resolver, entity_id: str, path: tuple[PathStep, ...]
) -> tuple[tuple[PathStep, ...], tuple[PathStep, ...]]:
    """Non-controlling state stakes and disputed links on the entity and everything above it."""
    seen: set[str] = set()
    on_path = {step.link.id for step in path}
    todo = [entity_id, *(step.owner.id for step in path)]
    influence: list[PathStep] = []
    disputed: list[PathStep] = []
    while todo:
        current = todo.pop(0)
        if current in seen:
            continue
        seen.add(current)
        asset = graph.entities[current]
        for link in resolver.parents(current):
            owner = graph.entities[link.owner_id]
            step = PathStep(asset, owner, link, _reason(link))
            if link.disputed:
                disputed.append(step)
            elif link.id not in on_path and not resolver._confers(link):
                top = resolver.resolve(owner.id)
                if owner.is_state or top.state or (top.controller is not None and top.controller.is_state):
                    influence.append(step)
            todo.append(link.owner_id)
    return tuple(influence), tuple(disputed)
