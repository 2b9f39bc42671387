"""The attribution index: AS numbers and registrable domains → operator → controller → jurisdiction.

It is a *view of the control graph* (curated YAML plus entities imported into the workspace), not a
second source of truth: every entity that carries attribution hints (``asns``, ``domains``; for
imported FtM entities see :mod:`derisk.know.ftm`) is resolved with :func:`resolve_controller` and
indexed by its hints. When two entities claim the same AS number or domain, an imported entity wins
over a curated one (the user's data is more specific); otherwise the lower id wins, and the conflict
is kept in :attr:`AttributionIndex.conflicts`.

``version`` is a content hash of the graph used, so an analysis can record which data produced it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from derisk.know.graph import Entity, Graph, load_graph
from derisk.know.orgnames import ORG_SCHEMATA, OrgNameIndex, legal_forms, reduce_name
from derisk.know.resolve import Resolution, resolve_controller

if TYPE_CHECKING:
    from derisk.store.workspace import Workspace


@dataclass(frozen=True)
class Match:
    """Who operates an AS number or a domain, who controls the operator, and from where."""

    org_id: str
    org_name: str
    controller_id: str | None
    controller_name: str | None
    jurisdiction: str | None
    path: tuple[str, ...]
    confidence: str
    group: str | None = None
    state_controlled: bool = False
    state: str | None = None
    joint: tuple[str, ...] = ()
    origin: str = "curated"
    sentence: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "org_id": self.org_id,
            "organisation": self.org_name,
            "controller_id": self.controller_id,
            "controller": self.controller_name,
            "jurisdiction": self.jurisdiction,
            "path": list(self.path),
            "confidence": self.confidence,
            "group": self.group,
            "state_controlled": self.state_controlled,
            "state": self.state,
            "joint": list(self.joint),
            "origin": self.origin,
        }


def match_from(entity: Entity, res: Resolution) -> Match:
    controller = res.controller
    group = entity.group or (controller.group if controller else None)
    if group is None and controller is not None:
        group = controller.name
    return Match(
        org_id=entity.id,
        org_name=entity.name,
        controller_id=controller.id if controller else None,
        controller_name=controller.name
        if controller
        else (" and ".join(e.name for e in res.joint) if res.joint else None),
        jurisdiction=res.jurisdiction,
        path=res.chain(),
        confidence=res.confidence,
        group=group,
        state_controlled=res.state_controlled,
        state=res.state,
        joint=tuple(e.name for e in res.joint),
        origin=entity.origin,
        sentence=res.sentence,
    )


def _priority(entity: Entity) -> tuple[int, str]:
    return (0 if entity.origin == "imported" else 1, entity.id)


@dataclass
class AttributionIndex:
    version: str
    by_asn: dict[int, Match]
    by_domain: dict[str, Match]
    conflicts: list[str] = field(default_factory=list)
    #: The graph, for organisation-name matches (resolved on first use, per matched entity).
    graph: Graph | None = None
    _names: OrgNameIndex | None = field(default=None, repr=False)
    _by_org_name: dict[tuple[str, str | None], Match | None] = field(default_factory=dict, repr=False)
    _countries_by_group: dict[str, set[str]] | None = field(default=None, repr=False)

    def match_asn(self, asn: int) -> Match | None:
        return self.by_asn.get(int(asn))

    @property
    def names(self) -> OrgNameIndex:
        """The organisation-name index over the graph, built on first use (one pass over names)."""
        if self._names is None:
            entities = self.graph.entities.values() if self.graph is not None else ()
            self._names = OrgNameIndex.build(
                (e.id, e.name, e.aliases) for e in entities if e.schema in ORG_SCHEMATA
            )
        return self._names

    def match_as_org(self, as_org: str, country: str | None = None) -> Match | None:
        """The entity an AS organisation name clearly names (see :mod:`derisk.know.orgnames`).

        Several entities of one reduced name count only when they lead to the same controller. A
        name that reduces to one word ("ORANGE LLC", "LLC NTT", "KPN") says too little on its own:
        such a match holds only when the AS is registered in a country where the named group has
        an entity (``country``, the AS registration country), or when the AS name carries the same
        legal form as the entity's name ("Microsoft Corporation" registered in Ireland); else it is
        no match (a guess, not a confident wrong answer). Cached per (name, country).
        """
        key = (as_org, country)
        if key in self._by_org_name:
            return self._by_org_name[key]
        found: Match | None = None
        if self.graph is not None:
            ids, _score = self.names.candidates(as_org)
            matches = [match_from(self.graph.entities[i], resolve_controller(self.graph, i)) for i in ids]
            controllers = {m.controller_id or m.org_id for m in matches}
            if matches and len(controllers) == 1:
                found = matches[0]
                if len(reduce_name(as_org).split()) == 1 and not self._one_word_holds(as_org, country, ids):
                    found = None
        self._by_org_name[key] = found
        return found

    def _one_word_holds(self, as_org: str, country: str | None, ids: list[str]) -> bool:
        assert self.graph is not None
        if country is not None and country in self._group_countries(ids):
            return True
        forms = legal_forms(as_org)
        if not forms:
            return False
        key = reduce_name(as_org)
        for entity_id in ids:
            entity = self.graph.entities[entity_id]
            if any(forms & legal_forms(n) for n in (entity.name, *entity.aliases) if reduce_name(n) == key):
                return True
        return False

    def _group_countries(self, entity_ids: list[str]) -> set[str]:
        """Countries (of incorporation, or control) of every entity in the groups of ``entity_ids``."""
        assert self.graph is not None
        if self._countries_by_group is None:
            by_group: dict[str, set[str]] = {}
            for entity in self.graph.entities.values():
                if entity.group:
                    places = {c for c in (entity.country, entity.control_jurisdiction) if c}
                    by_group.setdefault(entity.group, set()).update(places)
            self._countries_by_group = by_group
        countries: set[str] = set()
        for entity_id in entity_ids:
            entity = self.graph.entities[entity_id]
            countries |= {c for c in (entity.country, entity.control_jurisdiction) if c}
            if entity.group:
                countries |= self._countries_by_group.get(entity.group, set())
        return countries

    def match_domain(self, registrable_domain: str) -> Match | None:
        """Exact registrable domain, else the closest indexed parent (``a.b.zte.com.cn`` →
        ``zte.com.cn``), else the brand top-level domain (``tether.edge.apple`` → ``apple``: only
        entities that operate a TLD as its registry index a one-label name, see ``tlds`` in
        :mod:`derisk.know.curated`)."""
        name = registrable_domain.strip().lower().rstrip(".")
        while name:
            found = self.by_domain.get(name)
            if found is not None:
                return found
            _, _, name = name.partition(".")
            if "." not in name:
                return self.by_domain.get(name) if name else None
        return None

    def asn_table(self) -> pa.Table:
        """One row per AS number, for vectorised joins (``dst_asn`` = ``asn``)."""
        return _table(("asn", pa.int64()), [(asn, m) for asn, m in sorted(self.by_asn.items())])

    def domain_table(self) -> pa.Table:
        """One row per registrable domain, for vectorised joins (``dst_domain`` = ``domain``)."""
        return _table(("domain", pa.string()), sorted(self.by_domain.items()))


def _table(key: tuple[str, pa.DataType], rows: Iterable[tuple[object, Match]]) -> pa.Table:
    items = list(rows)
    return pa.table(
        {
            key[0]: pa.array([k for k, _ in items], type=key[1]),
            "org_id": [m.org_id for _, m in items],
            "organisation": [m.org_name for _, m in items],
            "corporate_group": [m.group for _, m in items],
            "controller_id": [m.controller_id for _, m in items],
            "controller": [m.controller_name for _, m in items],
            "jurisdiction": [m.jurisdiction for _, m in items],
            "state_controlled": pa.array([m.state_controlled for _, m in items], type=pa.bool_()),
            "path": pa.array([list(m.path) for _, m in items], type=pa.list_(pa.string())),
            "confidence": [m.confidence for _, m in items],
        }
    )


def build_index(graph: Graph) -> AttributionIndex:
    """Resolve every entity that carries AS numbers or domains and index it by them."""
    by_asn: dict[int, Match] = {}
    by_domain: dict[str, Match] = {}
    owners_asn: dict[int, Entity] = {}
    owners_domain: dict[str, Entity] = {}
    conflicts: list[str] = []
    for entity in sorted(graph.entities.values(), key=_priority):
        if not entity.asns and not entity.domains:
            continue
        match = match_from(entity, resolve_controller(graph, entity.id))
        for asn in entity.asns:
            if asn in owners_asn:
                conflicts.append(f"AS{asn}: {owners_asn[asn].name} kept, {entity.name} ignored")
                continue
            owners_asn[asn] = entity
            by_asn[asn] = match
        for domain in entity.domains:
            if domain in owners_domain:
                conflicts.append(f"{domain}: {owners_domain[domain].name} kept, {entity.name} ignored")
                continue
            owners_domain[domain] = entity
            by_domain[domain] = match
    return AttributionIndex(
        version=graph.version, by_asn=by_asn, by_domain=by_domain, conflicts=conflicts, graph=graph
    )


def load_index(workspace: Workspace | None = None) -> AttributionIndex:
    """The index over the curated graph plus the entities imported into ``workspace``."""
    from derisk.know.compiled import remembered

    graph = load_graph(workspace)
    compiled = remembered(graph)  # the curated graph alone: its index was compiled with it
    return compiled.index() if compiled is not None else build_index(graph)
