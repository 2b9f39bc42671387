"""Materialising part of the imported graph (DuckDB rows) as :class:`Entity` and :class:`Link` objects.

Only what a question needs is built: for attribution, the entities that carry AS or domain hints and
their ownership ancestors; for ``entity show`` or a search, the entities asked for and their
ancestors. Each object cites its statement: the source URL of the record, the record id, the file
and its SHA-256 digest, and the date the record states.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from derisk.know.graph import Entity, Graph, Link, Source
from derisk.know.graphdb import (
    HINT_SCHEMA,
    NAME_SCHEMA,
    GraphDatabase,
    empty,
    entity_rows,
    import_rows,
    subgraph,
)


def _source(row: dict[str, Any], imports: dict[str, tuple[str, str, str]], what: str) -> Source:
    path, fmt, digest = imports.get(str(row.get("import_id") or ""), ("", "", ""))
    record = row.get("record_id") or row["id"]
    return Source(
        id=f"{fmt or 'import'}:{record}",
        url=str(row.get("source_url") or f"file:{path}"),
        says=f"{what} {record} in {path} (sha256 {digest[:16]})" if path else f"{what} {record}",
        date=row.get("source_date"),
        verified=True,
        publisher=fmt or None,
    )


def _imports(db: GraphDatabase) -> dict[str, tuple[str, str, str]]:
    return {str(r[0]): (str(r[1]), str(r[2]), str(r[3])) for r in import_rows(db)}


def materialise(
    db: GraphDatabase, seeds: list[str] | None, *, except_prefixes: tuple[str, ...] = ()
) -> tuple[list[Entity], list[Link]]:
    """Entities and links of the imported tables for ``seeds`` (None: every hinted entity whose id
    starts with none of ``except_prefixes``) and their ancestors."""
    tables = subgraph(db, seeds, except_prefixes=except_prefixes)
    imports = _imports(db)
    return _entities(tables, imports), _links(tables["kg_links"], imports)


def _group(table: pa.Table, value: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for ident, item in zip(
        table.column("entity_id").to_pylist(), table.column(value).to_pylist(), strict=True
    ):
        out.setdefault(ident, []).append(item)
    return out


def _entities(tables: dict[str, pa.Table], imports: dict[str, tuple[str, str, str]]) -> list[Entity]:
    names = _group(tables["kg_names"], "name")
    hints = tables["kg_hints"]
    asns: dict[str, set[int]] = {}
    domains: dict[str, set[str]] = {}
    for ident, kind, value in zip(
        hints.column("entity_id").to_pylist(),
        hints.column("kind").to_pylist(),
        hints.column("value").to_pylist(),
        strict=True,
    ):
        if kind == "asn" and value.isdigit():
            asns.setdefault(ident, set()).add(int(value))
        elif kind == "domain":
            domains.setdefault(ident, set()).add(value)
    out = []
    for row in tables["kg_entities"].to_pylist():
        ident = row["id"]
        extra = json.loads(row["extra"]) if row.get("extra") else {}
        out.append(
            Entity(
                id=ident,
                schema=row["schema"],
                name=row["name"],
                aliases=tuple(n for n in dict.fromkeys(names.get(ident, [])) if n != row["name"]),
                country=row["country"],
                control_jurisdiction=row["control_jurisdiction"],
                is_state=bool(row["is_state"]),
                sources=(_source(row, imports, "record"),),
                asns=tuple(sorted(asns.get(ident, ()))),
                domains=tuple(sorted(domains.get(ident, ()))),
                notes=row["notes"],
                origin="imported",
                topics=tuple(extra.get("topics", ())),
                datasets=tuple(extra.get("datasets", ())),
                sanctions=tuple(extra.get("sanctions", ())),
            )
        )
    return out


def _links(table: pa.Table, imports: dict[str, tuple[str, str, str]]) -> list[Link]:
    return [
        Link(
            id=row["id"],
            kind=row["kind"],
            owner_id=row["owner_id"],
            asset_id=row["asset_id"],
            share=row["share"],
            start=row["start"],
            end=row["end"],
            confidence=row["confidence"] if row["confidence"] in ("V", "S", "U") else "U",
            source=_source(row, imports, "statement"),
            controlling=row["controlling"],
            control_type=row["control_type"],
            summary=row["summary"],
            origin="imported",
        )
        for row in table.to_pylist()
    ]


#: Registration data (who holds an AS, who runs a network): its hints yield to curated and FtM ones.
REGISTRY_PREFIXES = ("as2org-", "peeringdb-org-")
#: The import formats that write registration records.
REGISTRY_FORMATS = ("as2org", "peeringdb")


def known_names(known: dict[str, Entity]) -> dict[str, set[str]]:
    """Comparable names and aliases of the entities a user or the registry knows → their ids."""
    from derisk.know.names import comparable

    by_name: dict[str, set[str]] = {}
    for entity in known.values():
        for label in (entity.name, *entity.aliases):
            if key := comparable(label):
                by_name.setdefault(key, set()).add(entity.id)
    return by_name


def joined_owner(
    known: dict[str, Entity], by_name: dict[str, set[str]], norm: str, country: str | None
) -> str | None:
    """The one known entity a registration record of comparable name ``norm`` is, or None."""
    owners = by_name.get(norm, set())
    if len(owners) > 1:  # "Microsoft Corporation" (US) and "Microsoft Limited" (GB) reduce alike
        owners = {o for o in owners if known[o].country == country}
    return next(iter(owners)) if len(owners) == 1 else None


def attach_registry_hints(known: dict[str, Entity], imported: list[Entity]) -> list[Entity]:
    """Registration records (AS2Org, PeeringDB) joined to the entities a user or the registry knows.

    * An AS or domain that a curated or FtM entity already carries stays with that entity: the
      registration record's claim to it is dropped (the curated group is more specific).
    * A registration record whose organisation name is, after normalisation, the name or an alias of
      exactly one known entity (of the record's country, when several share the name) hands its
      other ASes and domains to that entity (sibling ASes: AS8068 "Microsoft Corporation" joins the
      curated Microsoft), citing the registration record. Such records are joined first, in id
      order, so the other records lose what they hand over whatever order they come in.

    Returns the imported entities less those joined to a known entity, with claimed hints removed;
    ``known`` is updated in place.
    """
    from dataclasses import replace

    from derisk.know.names import comparable

    if not any(e.id.startswith(REGISTRY_PREFIXES) and (e.asns or e.domains) for e in imported):
        return imported

    claimed_asn = {a for e in known.values() for a in e.asns}
    claimed_domain = {d for e in known.values() for d in e.domains}
    by_name = known_names(known)
    owner_of: dict[str, str] = {}
    for entity in imported:
        if entity.id.startswith(REGISTRY_PREFIXES) and (entity.asns or entity.domains):
            owner = joined_owner(known, by_name, comparable(entity.name), entity.country)
            if owner is not None:
                owner_of[entity.id] = owner
    for entity in sorted((e for e in imported if e.id in owner_of), key=lambda e: e.id):
        asns = tuple(a for a in entity.asns if a not in claimed_asn)
        domains = tuple(d for d in entity.domains if d not in claimed_domain)
        if not (asns or domains):
            continue  # the record is that entity, and adds nothing to it
        target = known[owner_of[entity.id]]
        known[target.id] = replace(
            target,
            asns=tuple(sorted({*target.asns, *asns})),
            domains=tuple(sorted({*target.domains, *domains})),
            sources=(*target.sources, *entity.sources),
        )
        claimed_asn.update(asns)
        claimed_domain.update(domains)
    out = []
    for entity in imported:
        if entity.id in owner_of:
            continue  # the record is that entity: not a second node of the same name
        if not entity.id.startswith(REGISTRY_PREFIXES) or not (entity.asns or entity.domains):
            out.append(entity)
            continue
        asns = tuple(a for a in entity.asns if a not in claimed_asn)
        domains = tuple(d for d in entity.domains if d not in claimed_domain)
        out.append(replace(entity, asns=asns, domains=domains))
    return out


def join_registry(
    known: dict[str, Entity], db: GraphDatabase
) -> tuple[tuple[frozenset[int], frozenset[str]], frozenset[str]]:
    """The registration records named like a known entity, joined to it (as :func:`attach_registry_hints`
    does), found by one DuckDB join on the comparable names instead of reading every record.

    ``known`` is updated in place. Returns the AS numbers and domains the known entities now claim
    (the other registration records never get those, :func:`registry_owners`) and the ids of the
    records joined (never nodes of their own).
    """
    from derisk.know.graphdb import registry_named

    by_name = known_names(known)
    rows = registry_named(db, REGISTRY_PREFIXES, sorted(by_name))
    joined = [ident for ident, norm, country in rows if joined_owner(known, by_name, norm, country)]
    if joined:
        entities, _links = materialise(db, joined)
        wanted = set(joined)
        attach_registry_hints(known, [e for e in entities if e.id in wanted])
    claimed = (
        frozenset(a for e in known.values() for a in e.asns),
        frozenset(d for e in known.values() for d in e.domains),
    )
    return claimed, frozenset(joined)


def registry_owners(
    db: GraphDatabase, claimed: tuple[frozenset[int], frozenset[str]], asns: list[int], domains: list[str]
) -> tuple[dict[str, str], list[Entity], list[Link]]:
    """Which registration record holds each of ``asns`` and ``domains`` (one DuckDB join on the
    hints), as the eager load would decide: values a known entity claims are skipped, and of several
    records claiming a value the lowest id wins. Returns ``{"asn:N" or "domain:D": record id}`` and
    the records (claimed hints removed) with their links, materialised for these values only.
    """
    from derisk.know.graphdb import registry_claims

    owner: dict[str, str] = {}
    for ident, kind, value in registry_claims(db, REGISTRY_PREFIXES, asns, domains):
        if (int(value) in claimed[0]) if kind == "asn" else (value in claimed[1]):
            continue
        key = f"{kind}:{value}"
        if key not in owner or ident < owner[key]:
            owner[key] = ident
    if not owner:
        return {}, [], []
    entities, links = materialise(db, sorted(set(owner.values())))
    return owner, [unclaimed(e, claimed) for e in entities], links


def unclaimed(entity: Entity, claimed: tuple[frozenset[int], frozenset[str]]) -> Entity:
    """A registration record without the hints known entities claim (other entities unchanged)."""
    from dataclasses import replace

    asns, domains = claimed
    if not entity.id.startswith(REGISTRY_PREFIXES) or (
        asns.isdisjoint(entity.asns) and domains.isdisjoint(entity.domains)
    ):
        return entity
    return replace(
        entity,
        asns=tuple(a for a in entity.asns if a not in asns),
        domains=tuple(d for d in entity.domains if d not in domains),
    )


def expand(graph: Graph, db: GraphDatabase, ids: Iterable[str], *, refresh: bool = False) -> None:
    """Add the imported entities ``ids`` with their names, hints and ancestors to ``graph``, in place.

    ``refresh``: also for ids already in the graph (e.g. added by a search without their ancestors).
    """
    wanted = [i for i in dict.fromkeys(ids) if refresh or i not in graph.entities]
    if not wanted:
        return
    entities, links = materialise(db, wanted)
    keep = set(wanted)
    graph.add([e for e in entities if e.id in keep or e.id not in graph.entities], links)


def add_found(graph: Graph, db: GraphDatabase, ids: Iterable[str]) -> None:
    """Add imported entities a search found, without names, hints or ancestors (cheap: one lookup
    per id); :func:`expand` with ``refresh`` completes an entity that is then shown."""
    wanted = [i for i in dict.fromkeys(ids) if i not in graph.entities]
    if not wanted:
        return
    tables = {
        "kg_entities": entity_rows(db, wanted),
        "kg_names": empty(NAME_SCHEMA),
        "kg_hints": empty(HINT_SCHEMA),
    }
    graph.add(_entities(tables, _imports(db)), [])
