"""The control graph: organisations, people, states and the links between them.

Every node (:class:`Entity`) and every edge (:class:`Link`) carries its source. The graph is built
from two places: the curated YAML files shipped in ``derisk/data/groups`` (one per corporate group,
see :mod:`derisk.know.curated`) and the FollowTheMoney entities a user imported into the workspace
(see :mod:`derisk.know.ftm`, :mod:`derisk.know.ftmstore` and :mod:`derisk.know.graphdb`). An imported entity with the id of a
curated one replaces it, so a user can correct the shipped data without editing the package.

The model follows FollowTheMoney: ``schema`` is an FtM schema name (Company, Organization,
PublicBody, Person) and links are FtM Ownership, Control and Directorship interval entities.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Final, Literal

from derisk.i18n.data import P_, T_, fill

if TYPE_CHECKING:
    from derisk.know.graphdb import GraphDatabase

#: Confidence tags: seen in a source [V], consistent across several secondary
#: sources [S], unverified [U]. Ordered from weakest to strongest.
CONFIDENCES: Final = ("U", "S", "V")
Confidence = Literal["U", "S", "V"]

#: Kinds of link. ``state`` is ownership or supervision by a state body (e.g. SASAC).
LINK_KINDS: Final = ("ownership", "control", "state", "directorship")

#: FtM schemata that derisk keeps as graph nodes.
NODE_SCHEMATA: Final = ("Company", "Organization", "PublicBody", "Person", "LegalEntity")


@dataclass(frozen=True)
class Source:
    """Where a statement comes from: a public URL, what it says, and when it was read or dated."""

    id: str
    url: str
    says: str
    date: str | None = None
    accessed: str | None = None
    verified: bool = True
    publisher: str | None = None

    def cite(self) -> str:
        when = f"accessed {self.accessed}" if self.accessed else f"dated {self.date}" if self.date else ""
        mark = "" if self.verified else " [U]"
        return f"{self.url} ({when}){mark}" if when else f"{self.url}{mark}"


@dataclass(frozen=True)
class Entity:
    """A company, organisation, public body or person."""

    id: str
    schema: str
    name: str
    aliases: tuple[str, ...] = ()
    #: ISO 3166-1 alpha-2 country of incorporation or registration (upper case).
    country: str | None = None
    #: Where control is exercised (head office, seat of management), when it differs or is known.
    control_jurisdiction: str | None = None
    #: A state or a state body (ministry, SASAC, a state holding agency).
    is_state: bool = False
    sources: tuple[Source, ...] = ()
    asns: tuple[int, ...] = ()
    domains: tuple[str, ...] = ()
    group: str | None = None
    notes: str | None = None
    #: "curated" (shipped YAML) or "imported" (a file imported into the workspace).
    origin: str = "curated"
    #: FtM topics (e.g. ``sanction``, ``role.pep``), datasets and sanctions (one line each:
    #: authority, programme, dates) of an imported OpenSanctions/FtM entity; empty otherwise.
    topics: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    sanctions: tuple[str, ...] = ()

    @property
    def jurisdiction(self) -> str | None:
        """Where control is exercised if known, else the country of incorporation."""
        return self.control_jurisdiction or self.country


@dataclass(frozen=True)
class Link:
    """An ownership, control, state or directorship statement: ``owner_id`` over ``asset_id``."""

    id: str
    kind: str
    owner_id: str
    asset_id: str
    share: float | None = None
    voting: float | None = None
    start: str | None = None
    end: str | None = None
    confidence: str = "U"
    source: Source | None = None
    disputed: bool = False
    #: Explicit statement that this link does (True) or does not (False) confer control; None
    #: means: decide from kind and percentages.
    controlling: bool | None = None
    #: For control links: the mechanism (e.g. "VIE contractual arrangements", "joint").
    control_type: str | None = None
    summary: str | None = None
    origin: str = "curated"

    def stake(self) -> float | None:
        """Voting rights if known, else equity share (percent)."""
        return self.voting if self.voting is not None else self.share

    def describe(self) -> str:
        """A short phrase: what this link says, for paths and sentences."""
        text = ", ".join(fill(template, **values) for template, values in self.describe_parts())
        return f"{text} {DISPUTED}" if self.disputed else text

    def describe_parts(self) -> list[tuple[str, dict[str, str]]]:
        """:meth:`describe` as phrase templates and their values (joined by ", "; the mark
        :data:`DISPUTED` not included), for pages that translate it."""
        parts: list[tuple[str, dict[str, str]]] = []
        if self.kind == "directorship":
            return [(P_("director of"), {})]
        if self.share is not None:
            parts.append((P_("{share} of shares"), {"share": _pct(self.share)}))
        if self.voting is not None:
            parts.append((P_("{voting} of voting rights"), {"voting": _pct(self.voting)}))
        if self.kind == "control":
            if self.control_type:
                parts.insert(
                    0, (P_("controls ({mechanism_sentence})"), {"mechanism_sentence": self.control_type})
                )
            else:
                parts.insert(0, (P_("controls (control)"), {}))
        elif self.kind == "state":
            if self.control_type:
                parts.insert(0, (P_("state {mechanism_sentence}"), {"mechanism_sentence": self.control_type}))
            else:
                parts.insert(0, (P_("state ownership or supervision"), {}))
        elif not parts:
            parts.append(
                (P_("owns (share not published)"), {})
                if self.controlling is None
                else (P_("owns a controlling stake"), {})
                if self.controlling
                else (P_("owns a non-controlling stake"), {})
            )
        return parts


#: What :meth:`Link.describe` adds to a disputed link.
DISPUTED: Final = T_("(disputed)")


def _pct(value: float) -> str:
    return f"{value:g}%"


@dataclass(frozen=True)
class Assessment:
    """A published assessment of a whole corporate group (e.g. a high-risk supplier designation)."""

    group: str
    says: str
    source: Source
    confidence: str


@dataclass
class Graph:
    """Entities by id and the links between them, with a content hash of everything used."""

    entities: dict[str, Entity]
    links: tuple[Link, ...]
    assessments: tuple[Assessment, ...] = field(default=())
    #: A content hash supplied by the loader (of the files and records read); computed when absent.
    fingerprint: str | None = None
    #: The workspace whose registration records (AS2Org, PeeringDB) are looked up per AS or domain
    #: asked for (:func:`derisk.enrich.attribution.prefetch`) instead of being loaded; None when
    #: there are none or they were all loaded.
    registry: GraphDatabase | None = field(default=None, repr=False, compare=False)
    #: AS numbers and domains that curated and FtM entities claim (registration records yield them).
    registry_claimed: tuple[frozenset[int], frozenset[str]] = field(
        default=(frozenset(), frozenset()), repr=False, compare=False
    )
    #: Ids of the registration records joined to a known entity (never nodes of their own).
    registry_joined: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def add(self, entities: Iterable[Entity], links: Iterable[Link]) -> None:
        """Add materialised entities and links (same id: replaced), dropping the cached indexes."""
        for entity in entities:
            self.entities[entity.id] = entity
        by_id = {link.id: link for link in self.links}
        by_id.update({link.id: link for link in links})
        self.links = tuple(by_id.values())
        for cached in ("_by_asset", "_by_owner"):
            self.__dict__.pop(cached, None)
        self.__dict__["_revision"] = self.__dict__.get("_revision", 0) + 1

    def assessments_for(self, group: str | None) -> tuple[Assessment, ...]:
        return tuple(a for a in self.assessments if group and a.group == group)

    @cached_property
    def _by_asset(self) -> dict[str, tuple[Link, ...]]:
        out: dict[str, list[Link]] = {}
        for link in self.links:
            out.setdefault(link.asset_id, []).append(link)
        return {k: tuple(v) for k, v in out.items()}

    @cached_property
    def _by_owner(self) -> dict[str, tuple[Link, ...]]:
        out: dict[str, list[Link]] = {}
        for link in self.links:
            out.setdefault(link.owner_id, []).append(link)
        return {k: tuple(v) for k, v in out.items()}

    def parents(self, asset_id: str) -> tuple[Link, ...]:
        """Links pointing at ``asset_id`` (its owners, controllers, directors)."""
        return self._by_asset.get(asset_id, ())

    def children(self, owner_id: str) -> tuple[Link, ...]:
        return self._by_owner.get(owner_id, ())

    def get(self, entity_id: str) -> Entity:
        from derisk.errors import NotFoundError

        try:
            return self.entities[entity_id]
        except KeyError:
            raise NotFoundError("no such entity in the control graph", source=entity_id) from None

    @cached_property
    def version(self) -> str:
        """A content hash of the data used (changes when any statement changes)."""
        if self.fingerprint is not None:
            return self.fingerprint
        digest = hashlib.sha256()
        for key in sorted(self.entities):
            digest.update(json.dumps(asdict(self.entities[key]), sort_keys=True, default=str).encode())
        for link in sorted(self.links, key=lambda item: item.id):
            digest.update(json.dumps(asdict(link), sort_keys=True, default=str).encode())
        return digest.hexdigest()[:16]


def build_graph(entities: Iterable[Entity], links: Iterable[Link]) -> Graph:
    """A graph from entities and links; later entities/links with the same id replace earlier ones."""
    by_id: dict[str, Entity] = {}
    for entity in entities:
        by_id[entity.id] = entity
    by_link: dict[str, Link] = {}
    for link in links:
        by_link[link.id] = link
    return Graph(entities=by_id, links=tuple(by_link.values()))


def merge(curated: Graph, imported_entities: Iterable[Entity], imported_links: Iterable[Link]) -> Graph:
    """Curated graph overlaid with imported statements (same id: the imported one wins)."""
    graph = build_graph([*curated.entities.values(), *imported_entities], [*curated.links, *imported_links])
    graph.assessments = curated.assessments
    return graph


def load_graph(workspace: GraphDatabase | None = None, *, lazy_registry: bool = True) -> Graph:
    """The curated graph plus, when a workspace is given, what was imported into it.

    Imported FtM entities are all read; of the large imported tables (GLEIF, AS2Org, PeeringDB,
    Wikidata: :mod:`derisk.know.graphdb`) only the entities carrying AS or domain hints and their
    ownership ancestors are materialised. Others join on demand (:func:`derisk.know.graphload.expand`).

    Registration records (AS2Org, PeeringDB: tens of thousands of organisations) are not read up
    front (``lazy_registry``, the default): those named like a known entity are joined to it at once
    (one DuckDB join on the comparable names), the others are looked up only for the ASes and
    domains a run sees (:func:`derisk.enrich.attribution.prefetch`). ``lazy_registry=False`` reads
    them all, as before; both give the same attribution.
    """
    from derisk.know.curated import load_curated

    curated = load_curated()
    if workspace is None:
        return curated
    from derisk.know import ftmstore, graphdb

    records = ftmstore.load_records(workspace)
    tables = graphdb.fingerprint(workspace)
    if not records and not tables:
        return curated
    from derisk.know.graphload import (
        REGISTRY_FORMATS,
        REGISTRY_PREFIXES,
        attach_registry_hints,
        join_registry,
        materialise,
    )

    if records:
        from derisk.know.ftm import from_ftm

        entities, links = from_ftm(records, origin="imported")
        graph = merge(curated, entities, links)
    else:
        graph = merge(curated, [], [])
    if tables:
        lazy = lazy_registry and graphdb.has_registry(workspace, REGISTRY_FORMATS)
        big_entities, big_links = materialise(
            workspace, None, except_prefixes=REGISTRY_PREFIXES if lazy else ()
        )
        if lazy:
            graph.registry = workspace
            graph.registry_claimed, graph.registry_joined = join_registry(graph.entities, workspace)
            fresh = [e for e in big_entities if e.id not in graph.entities]
        else:
            fresh = attach_registry_hints(
                graph.entities, [e for e in big_entities if e.id not in graph.entities]
            )
        graph.add(fresh, big_links)
        # Owners named by FtM or curated links that live in the imported tables (a GLEIF parent).
        missing = sorted({link.owner_id for link in graph.links if link.owner_id not in graph.entities})
        if missing:
            more, more_links = materialise(workspace, missing)
            graph.add([e for e in more if e.id not in graph.entities], more_links)
    digest = hashlib.sha256(curated.version.encode())
    digest.update(ftmstore.fingerprint(workspace).encode())
    for record in records:
        digest.update(json.dumps(record.data, sort_keys=True, ensure_ascii=False).encode())
    digest.update(tables.encode())
    graph.fingerprint = digest.hexdigest()[:16]
    return graph


def find_entities(
    graph: Graph, name: str, limit: int = 5, source: GraphDatabase | None = None
) -> list[tuple[Entity, float]]:
    """Entities whose name or alias resembles ``name`` (accent/transliteration tolerant), best first.

    With ``source`` (a workspace) the imported name tables are searched too; see
    :func:`derisk.know.names.find_entities`.
    """
    from derisk.know.names import find_entities as _find

    return _find(graph, name, limit, source)


def entity_table(entities: Mapping[str, Entity]) -> list[dict[str, object]]:
    """Plain rows for listing (id, name, schema, country, control jurisdiction, origin)."""
    return [
        {
            "id": e.id,
            "name": e.name,
            "schema": e.schema,
            "country": e.country,
            "control_jurisdiction": e.control_jurisdiction,
            "group": e.group,
            "origin": e.origin,
        }
        for e in sorted(entities.values(), key=lambda item: (item.group or "", item.name))
    ]
