"""``derisk entity``: show, list, import and export the control graph (Know)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import click

from derisk.cli.options import json_option, workspace_option
from derisk.cli.output import emit_json, status_console, write_atomic
from derisk.errors import NotFoundError, StoreError
from derisk.safetext import visible
from derisk.store import DB_FILE

if TYPE_CHECKING:  # rich is imported when something is shown, so that --help stays quick
    from rich.console import Console
    from rich.text import Text

    from derisk.store.workspace import Workspace

SCHEMA: Final = "derisk.entity/1"
IMPORT_FORMATS: Final = ("ftm", "gleif-lei", "gleif-rr", "as2org", "peeringdb", "wikidata")
EVIDENCE_SCHEMA: Final = "derisk.evidence/1"
IMPORT_SCHEMA: Final = "derisk.import/1"
LIST_SCHEMA: Final = "derisk.entities/1"


def _t(value: object, limit: int = 100) -> Text:
    """A terminal cell shown literally (no rich markup), control characters escaped."""
    from rich.text import Text

    return Text(visible(None if value is None else str(value), limit))


def _open_existing(path: Path, explicit: bool) -> Workspace | None:
    """The workspace read-only, or None when there is none and none was asked for explicitly."""
    if not (path / DB_FILE).exists():
        if explicit:
            raise StoreError(
                "no workspace here (import entities first, or check --workspace)", source=str(path)
            )
        return None
    from derisk.store.workspace import Workspace

    return Workspace.open(path, create=False, read_only=True)


def _explicit(ctx: click.Context) -> bool:
    """Named on the command line, in a DERISK_* variable or in derisk.toml: a missing one is an error."""
    source = ctx.get_parameter_source("workspace")
    return source is not None and source.name != "DEFAULT"


def entity_document(graph: Any, entity_id: str, evidence: list[Any] | None = None) -> dict[str, Any]:
    """The ``derisk.entity/1`` JSON document for one entity (``evidence``: attached public reporting)."""
    from derisk.know.laws import DISCLAIMER, laws_for, safeguards_for
    from derisk.know.resolve import resolve_controller
    from derisk.know.risk import chain_listings, supplier_risk

    res = resolve_controller(graph, entity_id)
    entity = res.entity
    names = {key: graph.entities[key].name for key, _ in res.effective if key in graph.entities}
    return {
        "schema": SCHEMA,
        "entity": {
            "id": entity.id,
            "name": entity.name,
            "schema": entity.schema,
            "jurisdiction": entity.jurisdiction,
            "country": entity.country,
            "control_jurisdiction": entity.control_jurisdiction,
            "is_state": entity.is_state,
            "aliases": list(entity.aliases),
            "group": entity.group,
            "origin": entity.origin,
            "asns": list(entity.asns),
            "domains": list(entity.domains),
            "notes": entity.notes,
            "topics": list(entity.topics),
            "datasets": list(entity.datasets),
            "sanctions": list(entity.sanctions),
            "sources": [
                {"url": s.url, "says": s.says, "date": s.date, "accessed": s.accessed, "verified": s.verified}
                for s in entity.sources
            ],
        },
        "controller": None
        if res.controller is None
        else {"id": res.controller.id, "name": res.controller.name, "jurisdiction": res.jurisdiction},
        "joint": [{"id": e.id, "name": e.name, "jurisdiction": e.jurisdiction} for e in res.joint],
        "jurisdiction": res.jurisdiction,
        "jurisdiction_basis": res.jurisdiction_basis,
        "state_controlled": res.state_controlled,
        "state": res.state,
        "confidence": res.confidence,
        "chain": list(res.chain()),
        "path": [step.to_json() for step in res.path],
        "effective_ownership": [
            {"id": key, "name": names.get(key, key), "share": share} for key, share in res.effective
        ],
        "disputed": [step.to_json() for step in res.disputed],
        "state_influence": [step.to_json() for step in res.state_influence],
        "cycles": [list(c) for c in res.cycles],
        "sentence": res.sentence,
        "laws": [law.to_json() for law in laws_for(res.jurisdiction)],
        "safeguards": [law.to_json() for law in safeguards_for(res.jurisdiction)],
        "risk_factors": [factor.to_json() for factor in supplier_risk(graph, entity_id)],
        "listings": [item.to_json() for item in chain_listings(graph, entity_id)],
        "evidence": [ev.to_json() for ev in evidence or []],
        "graph_version": graph.version,
        "disclaimer": DISCLAIMER,
    }


def _print_entity(doc: dict[str, Any], console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    ent = doc["entity"]
    console.print(Text(f"{visible(ent['name'])} ({visible(ent['id'])}, {ent['schema']})", style="bold"))
    console.print(
        _t(
            f"incorporated: {ent['country'] or '?'}; control exercised from: {doc['jurisdiction'] or '?'}"
            f" ({doc['jurisdiction_basis']}); group: {ent['group'] or '–'}; origin: {ent['origin']}",
            400,
        )
    )
    if ent["sanctions"] or ent["topics"]:
        console.print(
            _t(
                f"topics: {', '.join(ent['topics']) or '–'}; datasets: {', '.join(ent['datasets']) or '–'}",
                400,
            )
        )
        for line in ent["sanctions"]:
            console.print(_t(f"sanction: {line}", 400))
    above = [x for x in doc["listings"] if x["entity_id"] != ent["id"]]
    if above:
        console.print(Text("Listed in the control chain:", style="bold"))
        for item in above:
            console.print(_t(f"  {_listing_line(item)}", 800))
    console.print(_t("chain: " + " → ".join(doc["chain"]), 400))
    if doc["path"]:
        table = Table(title="Control path")
        for col in ("from", "to", "link", "tag", "source"):
            table.add_column(col)
        for step in doc["path"]:
            src = step["source"] or {}
            table.add_row(
                _t(step["from"]),
                _t(step["to"]),
                _t(step["reason"], 80),
                _t(step["confidence"]),
                _t(src.get("url")),
            )
        console.print(table)
    console.print(_t(doc["sentence"], 2000))
    for ev in doc["evidence"]:
        console.print(
            _t(
                f"reported: {ev['publisher']}, {ev['date']} ({ev['language']}): “{ev['title']}” {ev['url']}",
                600,
            )
        )
        console.print(_t(f"  “{ev['quote']}”", 2000))
    if doc["laws"]:
        laws = Table(title=f"Laws that reach {doc['jurisdiction']} (decision support, not legal advice)")
        for col in ("law", "article", "tag", "obligation", "source"):
            laws.add_column(col)
        for law in doc["laws"]:
            laws.add_row(
                _t(law["law"]),
                _t(law["article"] or "–"),
                _t(law["confidence"]),
                _t(law["obligation"]),
                _t(law["source"], 60),
            )
        console.print(laws)
    risks = Table(title="Supplier risk factors (EU 5G coordinated risk assessment)")
    for col in ("factor", "finding", "why"):
        risks.add_column(col)
    for factor in doc["risk_factors"]:
        risks.add_row(_t(factor["title"]), _t(factor["finding"]), _t(factor["sentence"], 400))
    console.print(risks)


def _listing_line(item: dict[str, Any]) -> str:
    parts = [f"topics {', '.join(item['topics'])}" if item["topics"] else ""]
    parts.append(f"datasets {', '.join(item['datasets'])}" if item["datasets"] else "")
    parts += [f"sanction: {line}" for line in item["sanctions"]]
    parts.append(f"source {item['source']}" if item["source"] else "")
    return f"{item['name']} ({item['role']}): " + "; ".join(p for p in parts if p)


def _candidates(found: list[tuple[Any, float]]) -> list[str]:
    return [f"{visible(e.name)} ({e.id}, score {score:g})" for e, score in found]


def register(group: click.Group) -> None:
    @group.group("entity")
    def entity() -> None:
        """Know: organisations, who controls them, and the laws that reach them."""

    @entity.command("show")
    @click.argument("name")
    @json_option
    @workspace_option
    @click.pass_context
    def show(ctx: click.Context, name: str, json_dest: str | None, workspace: Path) -> None:
        """Show an entity, its ultimate controller with the explaining path, laws and risk factors.

        NAME is matched fuzzily (accents, transliteration, company forms ignored); an exact id works too.
        """
        from derisk.know.evidence import load
        from derisk.know.graph import load_graph
        from derisk.know.graphload import expand
        from derisk.know.names import MATCH_SCORE, find_entities, pick

        ws = _open_existing(workspace, _explicit(ctx))
        try:
            graph = load_graph(ws)
            found = find_entities(graph, name, limit=8, source=ws)
            chosen = pick(found, name)
            evidence = load(ws, [chosen.id]) if chosen is not None else []
            if chosen is not None and ws is not None and chosen.origin == "imported":
                expand(graph, ws, [chosen.id], refresh=True)  # its aliases, hints and owners
        finally:
            if ws is not None:
                ws.close()
        if chosen is None:
            if not found or found[0][1] < MATCH_SCORE:
                raise NotFoundError(
                    "no entity matches this name" + ("; nearest" if found else ""),
                    source=visible(name),
                    details=_candidates(found[:3]),
                )
            raise NotFoundError(
                f"ambiguous name, {len(found)} candidates (use a longer name or the id)",
                source=visible(name),
                details=_candidates(found),
            )
        doc = entity_document(graph, chosen.id, evidence)
        emit_json(doc, json_dest)
        _print_entity(doc, status_console(json_dest))

    @entity.command("list")
    @json_option
    @click.option(
        "--origin",
        type=click.Choice(["all", "curated", "imported"]),
        default="all",
        show_default=True,
        help="Which entities to list.",
    )
    @workspace_option
    @click.pass_context
    def list_(ctx: click.Context, json_dest: str | None, origin: str, workspace: Path) -> None:
        """List the entities of the control graph with their controller and jurisdiction."""
        from rich.table import Table

        from derisk.know.graph import load_graph
        from derisk.know.resolve import resolve_controller

        ws = _open_existing(workspace, _explicit(ctx))
        try:
            graph = load_graph(ws)
        finally:
            if ws is not None:
                ws.close()
        rows = []
        for ent in sorted(graph.entities.values(), key=lambda e: ((e.group or "~"), e.name)):
            if origin != "all" and ent.origin != origin:
                continue
            res = resolve_controller(graph, ent.id)
            rows.append(
                {
                    "id": ent.id,
                    "name": ent.name,
                    "schema": ent.schema,
                    "group": ent.group,
                    "country": ent.country,
                    "controller": res.controller.name if res.controller else None,
                    "jurisdiction": res.jurisdiction,
                    "state_controlled": res.state_controlled,
                    "confidence": res.confidence,
                    "origin": ent.origin,
                }
            )
        emit_json({"schema": LIST_SCHEMA, "graph_version": graph.version, "entities": rows}, json_dest)
        console = status_console(json_dest)
        table = Table(title=f"{len(rows)} entities (graph {graph.version})")
        for col in ("id", "name", "group", "controller", "jur.", "state", "tag", "origin"):
            table.add_column(col)
        for row in rows:
            table.add_row(
                _t(row["id"], 40),
                _t(row["name"], 60),
                _t(row["group"], 30),
                _t(row["controller"], 50),
                _t(row["jurisdiction"]),
                "yes" if row["state_controlled"] else "",
                _t(row["confidence"]),
                _t(row["origin"]),
            )
        console.print(table)

    @entity.command("import")
    @click.argument("file", type=click.Path(path_type=Path, dir_okay=True))
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(list(IMPORT_FORMATS)),
        default=None,
        help="Format of FILE (default: detected from its content).",
    )
    @workspace_option
    @json_option
    def import_(file: Path, fmt: str | None, workspace: Path, json_dest: str | None) -> None:
        """Import open data into the workspace's control graph.

        Formats: FollowTheMoney JSON lines (OpenSanctions), GLEIF golden copy CSV (Level 1 LEI and
        Level 2 relationship records), CAIDA AS-to-Organization, a PeeringDB dump, Wikidata (JSON
        dump or SPARQL JSON). An FtM file is checked as a whole and any error stops it; in the other
        formats a broken record is dropped and reported and the rest imported. Nothing usable left:
        exit 3 and the workspace unchanged. An import is one transaction.
        """
        from derisk.know.importing import import_file
        from derisk.store.workspace import Workspace

        with Workspace.open(workspace) as ws:
            report = import_file(ws, file, fmt)
        emit_json(
            {
                "schema": IMPORT_SCHEMA,
                "file": str(file),
                "workspace": str(workspace),
                "format": report.format,
                "import_id": report.import_id,
                "entities": report.entities,
                "nodes": report.nodes,
                "links": report.links,
                "problems": [{"where": p.where, "what": p.what} for p in report.warnings],
            },
            json_dest,
        )
        click.echo(
            f"imported {report.entities} entities ({report.nodes} organisations, bodies or people, "
            f"{report.links} links) from {visible(str(file))} ({report.format}) into {visible(str(workspace))}",
            err=json_dest == "-",
        )
        if report.warnings:
            click.echo(
                f"{len(report.warnings)} problem(s) in {visible(str(file))}, records dropped or skipped:",
                err=True,
            )
            for problem in report.warnings[:50]:
                click.echo(f"  {visible(str(problem), 300)}", err=True)
            if len(report.warnings) > 50:
                click.echo(f"  and {len(report.warnings) - 50} more", err=True)

    @entity.command("export")
    @click.option("--out", "out", metavar="FILE|-", default="-", show_default=True, help="Where to write.")
    @workspace_option
    @click.pass_context
    def export(ctx: click.Context, out: str, workspace: Path) -> None:
        """Write curated and imported entities as FollowTheMoney JSON lines."""
        from derisk.know.exporting import export_lines

        ws = _open_existing(workspace, _explicit(ctx))
        try:
            text = "".join(export_lines(ws))
        finally:
            if ws is not None:
                ws.close()
        if out == "-":
            click.echo(text, nl=False)
        else:
            write_atomic(Path(out), text)

    register_evidence(group)


def register_evidence(group: click.Group) -> None:
    @group.group("evidence")
    def evidence() -> None:
        """Public reporting as evidence: cited articles and reports attached to entities."""

    @evidence.command("add")
    @click.option(
        "--entity", "entities", multiple=True, required=True, help="Entity id or name (repeatable)."
    )
    @click.option("--url", required=True, help="Where the article or report is published.")
    @click.option("--title", required=True)
    @click.option("--publisher", required=True)
    @click.option("--date", "date", required=True, help="Publication date, YYYY-MM-DD.")
    @click.option("--language", default="en", show_default=True, help="ISO 639 code of the text.")
    @click.option("--quote", required=True, help="The passage that supports the point, quoted.")
    @workspace_option
    @json_option
    def add(
        entities: tuple[str, ...],
        url: str,
        title: str,
        publisher: str,
        date: str,
        language: str,
        quote: str,
        workspace: Path,
        json_dest: str | None,
    ) -> None:
        """Attach a cited article or report to entities (stored as FtM Article and Documentation)."""
        from derisk.know import evidence as ev
        from derisk.know.graph import load_graph
        from derisk.know.names import find_entities, pick
        from derisk.store.workspace import Workspace

        ev.check(url, title, publisher, date, language, quote)
        with Workspace.open(workspace) as ws:
            graph = load_graph(ws)
            ids = []
            for name in entities:
                found = find_entities(graph, name, limit=8, source=ws)
                chosen = pick(found, name)
                if chosen is None:
                    raise NotFoundError(
                        "no single entity matches this name",
                        source=visible(name),
                        details=_candidates(found[:5]),
                    )
                ids.append(chosen.id)
            stored = ev.add(ws, ev.Evidence("", url, title, publisher, date, language, quote, tuple(ids)))
        names = ", ".join(visible(graph.entities[i].name) for i in ids)
        emit_json({"schema": EVIDENCE_SCHEMA, "evidence": [stored.to_json()]}, json_dest)
        click.echo(f"evidence {stored.id} attached to {names}", err=json_dest == "-")

    @evidence.command("list")
    @json_option
    @workspace_option
    @click.pass_context
    def list_(ctx: click.Context, json_dest: str | None, workspace: Path) -> None:
        """List the evidence stored in the workspace."""
        from rich.table import Table

        from derisk.know import evidence as ev

        ws = _open_existing(workspace, _explicit(ctx))
        try:
            items = ev.load(ws)
        finally:
            if ws is not None:
                ws.close()
        emit_json({"schema": EVIDENCE_SCHEMA, "evidence": [e.to_json() for e in items]}, json_dest)
        console = status_console(json_dest)
        table = Table(title=f"{len(items)} pieces of evidence")
        for col in ("id", "publisher", "date", "title", "entities", "url"):
            table.add_column(col)
        for item in items:
            table.add_row(
                _t(item.id),
                _t(item.publisher, 40),
                _t(item.date),
                _t(item.title, 60),
                _t(", ".join(item.entity_ids), 60),
                _t(item.url, 80),
            )
        console.print(table)
