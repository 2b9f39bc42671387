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


def materialise(db: GraphDatabase, seeds: list[str] | None) -> tuple[list[Entity], list[Link]]:
    """Entities and links of the imported tables for ``seeds`` (None: every hinted entity) and ancestors."""
    tables = subgraph(db, seeds)
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


def attach_registry_hints(known: dict[str, Entity], imported: list[Entity]) -> list[Entity]:
    """Registration records (AS2Org, PeeringDB) joined to the entities a user or the registry knows.

    * An AS or domain that a curated or FtM entity already carries stays with that entity: the
      registration record's claim to it is dropped (the curated group is more specific).
    * A registration record whose organisation name is, after normalisation, the name or an alias of
      exactly one known entity (of the record's country, when several share the name) hands its
      other ASes and domains to that entity (sibling ASes: AS8068 "Microsoft Corporation" joins the
      curated Microsoft), citing the registration record.

    Returns the imported entities less those joined to a known entity, with claimed hints removed;
    ``known`` is updated in place.
    """
    from dataclasses import replace

    from derisk.know.names import comparable

    if not any(e.id.startswith(REGISTRY_PREFIXES) and (e.asns or e.domains) for e in imported):
        return imported

    claimed_asn = {a for e in known.values() for a in e.asns}
    claimed_domain = {d for e in known.values() for d in e.domains}
    by_name: dict[str, set[str]] = {}
    for entity in known.values():
        for label in (entity.name, *entity.aliases):
            if key := comparable(label):
                by_name.setdefault(key, set()).add(entity.id)
    out = []
    for entity in imported:
        if not entity.id.startswith(REGISTRY_PREFIXES) or not (entity.asns or entity.domains):
            out.append(entity)
            continue
        asns = tuple(a for a in entity.asns if a not in claimed_asn)
        domains = tuple(d for d in entity.domains if d not in claimed_domain)
        owners = by_name.get(comparable(entity.name), set())
        if len(owners) > 1:  # "Microsoft Corporation" (US) and "Microsoft Limited" (GB) reduce alike
            owners = {o for o in owners if known[o].country == entity.country}
        if len(owners) == 1:
            target = known[next(iter(owners))]
            if not (asns or domains):
                continue  # the record is that entity, and adds nothing to it
            known[target.id] = replace(
                target,
                asns=tuple(sorted({*target.asns, *asns})),
                domains=tuple(sorted({*target.domains, *domains})),
                sources=(*target.sources, *entity.sources),
            )
            claimed_asn.update(asns)
            claimed_domain.update(domains)
            continue  # the record is that entity: not a second node of the same name
        out.append(replace(entity, asns=asns, domains=domains))
    return out


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
