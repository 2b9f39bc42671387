"""``derisk entity export``: curated entities plus imported ones as FtM JSON lines.

Imported entities are written exactly as they were imported; a curated entity whose id was imported
is replaced by the imported version. Exporting, importing the result into an empty workspace and
exporting again gives the same lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from followthemoney import model

from derisk.know.curated import load_curated
from derisk.know.ftm import LINK_SCHEMATA, dumps
from derisk.know.ftmstore import load_records
from derisk.know.graph import Entity, Graph, Link, Source
from derisk.know.graphdb import GraphDatabase


def _proxy(schema: str, ident: str, props: dict[str, list[str | None]]) -> dict[str, Any]:
    proxy = model.make_entity(schema)
    proxy.id = ident
    for name, values in props.items():
        for value in values:
            if value is not None and value != "":
                proxy.add(name, value)
    data: dict[str, Any] = proxy.to_dict()
    return {"id": data["id"], "schema": data["schema"], "properties": data["properties"]}


def _document(src: Source) -> dict[str, Any]:
    return _proxy(
        "Article",
        src.id,
        {
            "title": [src.publisher or src.url],
            "sourceUrl": [src.url],
            "summary": [src.says],
            "date": [src.date],
            "retrievedAt": [src.accessed],
            "publisher": [src.publisher],
            "keywords": [None if src.verified else "derisk:unverified"],
        },
    )


def entity_to_ftm(entity: Entity) -> dict[str, Any]:
    return _proxy(
        entity.schema,
        entity.id,
        {
            "name": [entity.name],
            "alias": list(entity.aliases),
            "jurisdiction": [entity.country.lower() if entity.country else None],
            "mainCountry": [entity.control_jurisdiction.lower() if entity.control_jurisdiction else None],
            "keywords": [f"AS{asn}" for asn in entity.asns],
            "website": [f"https://{domain}/" for domain in entity.domains],
            "notes": [entity.notes],
            "proof": [src.id for src in entity.sources],
        },
    )


def link_to_ftm(link: Link) -> dict[str, Any]:
    status: list[str | None] = [f"derisk:confidence={link.confidence}"]
    if link.disputed:
        status.append("derisk:disputed")
    if link.controlling is not None:
        status.append(f"derisk:controlling={'true' if link.controlling else 'false'}")
    if link.voting is not None:
        status.append(f"derisk:voting={link.voting:g}")
    if link.kind == "state":
        status.append("derisk:kind=state")
    schema = (
        "Ownership"
        if link.kind == "ownership" or (link.kind == "state" and link.share)
        else ("Directorship" if link.kind == "directorship" else "Control")
    )
    owner_prop, asset_prop = LINK_SCHEMATA[schema]
    props: dict[str, list[str | None]] = {
        owner_prop: [link.owner_id],
        asset_prop: [link.asset_id],
        "startDate": [link.start],
        "endDate": [link.end],
        "summary": [link.summary],
        "status": status,
        "proof": [link.source.id if link.source else None],
    }
    if schema == "Ownership":
        props["percentage"] = [f"{link.share:g}" if link.share is not None else None]
        props["ownershipType"] = [link.control_type]
    elif schema == "Control":
        props["controlType"] = [link.control_type]
    return _proxy(schema, link.id, props)


def graph_to_ftm(graph: Graph) -> Iterator[dict[str, Any]]:
    """FtM entities for the graph: sources (Article), nodes, then links; deterministic order."""
    sources: dict[str, Source] = {}
    for entity in graph.entities.values():
        for src in entity.sources:
            sources.setdefault(src.id, src)
    for link in graph.links:
        if link.source is not None:
            sources.setdefault(link.source.id, link.source)
    for key in sorted(sources):
        yield _document(sources[key])
    for key in sorted(graph.entities):
        yield entity_to_ftm(graph.entities[key])
    for link in sorted(graph.links, key=lambda item: item.id):
        yield link_to_ftm(link)


def _rank(data: dict[str, Any]) -> tuple[int, str]:
    schema = model.get(data["schema"])
    if schema is not None and schema.is_a("Document"):
        return (0, data["id"])
    if schema is not None and schema.is_a("Interval"):
        return (2, data["id"])
    return (1, data["id"])


def export_entities(ws: GraphDatabase | None) -> Iterator[dict[str, Any]]:
    """Sources first, then organisations and people, then links; each group in id order."""
    imported = load_records(ws) if ws is not None else []
    by_id = {data["id"]: data for data in graph_to_ftm(load_curated())}
    by_id.update({record.id: record.data for record in imported})
    yield from sorted(by_id.values(), key=_rank)


def export_lines(ws: GraphDatabase | None) -> Iterator[str]:
    for data in export_entities(ws):
        yield dumps(data) + "\n"
