"""FollowTheMoney (FtM) JSON lines: checking them and reading them into the graph (writing: exporting.py).

Each line is one entity ``{"id", "schema", "properties": {name: [values]}}`` as OpenSanctions and
Aleph publish them (other top-level keys such as ``caption``, ``datasets`` or ``first_seen`` are kept
as they are). :func:`check_lines` validates a whole file against the FtM model (followthemoney 4)
and against the graph it will join, and returns every problem with its line number.

What derisk reads from FtM (documented in docs/know.md):

* nodes: any schema that is a ``LegalEntity`` (Company, Organization, PublicBody, Person …). Name:
  first ``name``; aliases: other names, ``alias``, ``weakAlias``, ``previousName``; country of
  incorporation: ``jurisdiction`` (else ``country``); where control is exercised: ``mainCountry``;
  a state body: schema ``PublicBody``; AS numbers: ``keywords`` values ``AS<number>``; domains: the
  registrable domain of each ``website``; sources: ``proof`` → ``Document``/``Article`` entities and ``sourceUrl``.
* links: ``Ownership`` (owner → asset, ``percentage`` = share of equity), ``Control`` (controller →
  controlled, ``controlType``), ``Directorship`` (director → organization), with ``startDate``,
  ``endDate``, ``summary`` and ``proof``. derisk's own qualifiers travel in ``status`` values:
  ``derisk:confidence=V|S|U``, ``derisk:disputed``, ``derisk:controlling=true|false``,
  ``derisk:voting=<percent>`` and ``derisk:kind=state``. Without them a link is tagged [U].
* sources: ``Article`` (any ``Document`` schema) with ``sourceUrl``, ``summary`` (what it says), ``date``, ``retrievedAt``,
  ``publisher``; keyword ``derisk:unverified`` marks [U].
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

from derisk.enrich.domains import extractor
from derisk.errors import Problem
from derisk.know.graph import Entity, Graph, Link, Source, build_graph

LINK_SCHEMATA: Final = {
    "Ownership": ("owner", "asset"),
    "Control": ("controller", "controlled"),
    "Directorship": ("director", "organization"),
}
KEPT_KEYS: Final = {"caption", "datasets", "referents", "first_seen", "last_seen", "last_change", "target"}
_ASN = re.compile(r"^AS(\d{1,10})$", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*(\d+(?:[.,]\d+)?)\s*%?\s*$")
MAX_ERRORS: Final = 200
#: Longest line (characters) read as one entity.
MAX_LINE: Final = 8 << 20


def _model() -> Any:
    """The FtM model, imported on first use: it costs about a second, and plain analyses never need it."""
    from followthemoney import model

    return model


def _registry() -> Any:
    from followthemoney.types import registry

    return registry


@dataclass(frozen=True)
class Record:
    """One FtM entity as stored: its JSON and where it came from."""

    data: dict[str, Any]
    origin_file: str = ""
    line: int = 0
    imported_at: str | None = None

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def schema(self) -> str:
        return str(self.data["schema"])

    def first(self, prop: str) -> str | None:
        found = self.values(prop)
        return found[0] if found else None

    def values(self, prop: str) -> list[str]:
        found = self.data.get("properties", {}).get(prop, [])
        return [str(v) for v in found]


def percentage(value: str) -> float | None:
    """A percentage as a number ("53.51", "53,51 %"), or None when it is not one."""
    match = _NUMBER.match(value)
    return float(match.group(1).replace(",", ".")) if match else None


def _status(record: Record) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in record.values("status"):
        if value.startswith("derisk:"):
            key, _, val = value.removeprefix("derisk:").partition("=")
            out[key] = val or "true"
    return out


# -- checking -------------------------------------------------------------------------------------
@dataclass
class CheckResult:
    records: list[Record] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Values and entities dropped the way FtM cleans them (an invalid phone number, a passport
    #: without a number): reported, never fatal.
    warnings: list[Problem] = field(default_factory=list)


#: Properties that decide who controls what, and where: an invalid value there is an error (dropping
#: it would silently change an attribution); elsewhere an invalid value is dropped with a warning.
CONTROL_PROPS: Final = frozenset(
    {
        "jurisdiction",
        "country",
        "mainCountry",
        "percentage",
        "startDate",
        "endDate",
        "status",
        *(p for pair in LINK_SCHEMATA.values() for p in pair),
    }
)


def parse_lines(lines: Iterable[str], source: str) -> CheckResult:
    """Parse and check each line on its own (JSON, schema, properties, values)."""
    result = CheckResult()
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        if len(line) > MAX_LINE:
            result.problems.append(
                Problem(where, f"longer than {MAX_LINE >> 20} MB (a name or value that size is not data)")
            )
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            result.problems.append(Problem(where, f"not JSON ({exc.msg} at column {exc.colno})"))
            continue
        except RecursionError:
            result.problems.append(Problem(where, "JSON nested too deeply"))
            continue
        problems, dropped = _check_entity(data)
        if problems:
            result.problems.extend(Problem(where, p) for p in problems)
            continue
        if dropped and dropped[0].startswith("entity dropped"):
            result.warnings.extend(Problem(where, d) for d in dropped)
            continue
        result.warnings.extend(Problem(where, d) for d in dropped)
        ident = str(data["id"])
        if ident in seen:
            result.problems.append(Problem(where, f"id {ident!r} already used on line {seen[ident]}"))
            continue
        seen[ident] = number
        kept = {k: v for k, v in data.items() if k in KEPT_KEYS}
        clean = {"id": ident, "schema": data["schema"], "properties": data.get("properties") or {}, **kept}
        result.records.append(Record(clean, source, number))
    return result


def _graph_schema(schema: Any) -> bool:
    """Schemata derisk reads into the control graph (checked strictly)."""
    return bool(schema.name in LINK_SCHEMATA or schema.is_a("LegalEntity") or schema.is_a("Document"))


def _check_entity(data: Any) -> tuple[list[str], list[str]]:
    """(errors, warnings) for one entity; invalid values outside :data:`CONTROL_PROPS` are removed
    from ``data`` in place and reported as warnings, as FtM's own cleaning drops them."""
    if not isinstance(data, dict):
        return ["expected a JSON object with id, schema and properties"], []
    problems: list[str] = []
    warnings: list[str] = []
    ident = data.get("id")
    if not isinstance(ident, str) or not ident.strip():
        problems.append("missing or empty 'id'")
    name = data.get("schema")
    schema = _model().get(name) if isinstance(name, str) else None
    if schema is None:
        return [*problems, f"unknown schema {data.get('schema')!r}"], []
    if schema.abstract:
        problems.append(f"schema {schema.name} is abstract; use a concrete one (e.g. Company)")
    properties = data.get("properties", {})
    if not isinstance(properties, dict):
        return [*problems, "'properties' must be an object of lists"], []
    strict = _graph_schema(schema)
    for name, values in list(properties.items()):
        prop = schema.get(name)
        if prop is None:
            problems.append(f"unknown property {name!r} for schema {schema.name}")
            continue
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            problems.append(f"property {name!r} must be a list of strings")
            continue
        kept = []
        for value in values:
            if prop.type.name in ("string", "text", "entity") or prop.type.clean(value) is not None:
                kept.append(value)
            elif strict and name in CONTROL_PROPS:
                problems.append(f"{name} value {value!r} is not a valid {prop.type.name}")
            else:
                warnings.append(f"{name} value {value[:80]!r} is not a valid {prop.type.name}; value dropped")
        if len(kept) != len(values):
            properties[name] = kept
        if schema.name == "Ownership" and name == "percentage":
            for value in values:
                number = percentage(value)
                if number is None:
                    problems.append(f"percentage {value!r} is not a number")
                elif not 0 <= number <= 100:
                    problems.append(f"percentage {value!r} is outside 0–100")
    for name in sorted(schema.required):
        if not properties.get(name):
            if strict:
                problems.append(f"{schema.name} needs property {name!r}")
            else:
                warnings.insert(0, f"entity dropped: {schema.name} needs property {name!r}")
    return problems, warnings


def check_graph(records: list[Record], known_ids: set[str], base: Graph) -> list[Problem]:
    """Cross-line checks: dangling references, totals above 100% per asset, cycles of control."""
    problems: list[Problem] = []
    ids = known_ids | {r.id for r in records}
    for record in records:
        schema = _model().get(record.schema)
        assert schema is not None
        for name, values in record.data.get("properties", {}).items():
            prop = schema.get(name)
            if prop is None or prop.type.name != "entity":
                continue
            for value in values:
                if value not in ids:
                    problems.append(Problem(f"line {record.line}", f"{name} refers to unknown id {value!r}"))
    if problems:
        return problems
    entities, links = from_ftm(records, origin="imported")
    merged = build_graph([*base.entities.values(), *entities], [*base.links, *links])
    lines = {r.id: r.line for r in records}
    problems.extend(_totals(merged, lines))
    problems.extend(_cycles(merged, lines))
    return problems


def _active(link: Link) -> bool:
    return not (link.end and link.end < date.today().isoformat()[: len(link.end)])


def _totals(graph: Graph, lines: dict[str, int]) -> list[Problem]:
    problems = []
    totals: dict[str, list[Link]] = {}
    for link in graph.links:
        if link.kind in ("ownership", "state") and link.share is not None and _active(link):
            totals.setdefault(link.asset_id, []).append(link)
    for asset, links in sorted(totals.items()):
        total = sum(link.share or 0 for link in links)
        if total > 100.0001 and any(link.id in lines for link in links):
            where = ", ".join(f"line {lines[link.id]}" for link in links if link.id in lines)
            name = graph.entities[asset].name if asset in graph.entities else asset
            problems.append(Problem(where, f"ownership of {name!r} adds up to {total:g}% (more than 100%)"))
    return problems


def _controls(link: Link) -> bool:
    if link.disputed or link.kind == "directorship" or not _active(link):
        return False
    if link.controlling is not None:
        return link.controlling
    if link.kind in ("control", "state"):
        return True
    stake = link.stake()
    return stake is not None and stake > 50


def _cycles(graph: Graph, lines: dict[str, int]) -> list[Problem]:
    """Cycles of control: strongly connected components of the "controls" relation (Tarjan, iterative)."""
    edges: dict[str, list[Link]] = {}
    for link in graph.links:
        if _controls(link):
            edges.setdefault(link.asset_id, []).append(link)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, pos = work.pop()
            if pos == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            out = edges.get(node, [])
            if pos < len(out):
                work.append((node, pos + 1))
                nxt = out[pos].owner_id
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                members: list[str] = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    members.append(top)
                    if top == node:
                        break
                if len(members) > 1 or any(lk.owner_id == node for lk in out):
                    components.append(sorted(members))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    problems: list[Problem] = []
    for members in components:
        inside = set(members)
        via = [lk for m in members for lk in edges.get(m, []) if lk.owner_id in inside]
        if not any(lk.id in lines for lk in via):
            continue
        names = ", ".join(graph.entities[m].name if m in graph.entities else m for m in members)
        where = ", ".join(sorted({f"line {lines[lk.id]}" for lk in via if lk.id in lines}))
        problems.append(Problem(where, f"cycle of control among {names}"))
    return problems


# -- reading into the graph -----------------------------------------------------------------------
def _domain(url: str) -> str | None:
    parts = extractor()(url)
    return parts.top_domain_under_public_suffix or None


def _country(values: list[str]) -> str | None:
    for value in values:
        cleaned = _registry().country.clean(value)
        if cleaned:
            return str(cleaned).upper()
    return None


def _source_of(record: Record, documents: dict[str, Record]) -> list[Source]:
    sources = []
    for ref in record.values("proof"):
        doc = documents.get(ref)
        if doc is None:
            continue
        unverified = "derisk:unverified" in doc.values("keywords")
        sources.append(
            Source(
                id=doc.id,
                url=(doc.values("sourceUrl") or [""])[0],
                says=(doc.values("summary") or doc.values("title") or [""])[0],
                date=doc.first("date"),
                accessed=doc.first("retrievedAt"),
                verified=not unverified,
                publisher=doc.first("publisher"),
            )
        )
    for url in record.values("sourceUrl"):
        publisher = (record.values("publisher") or ["the imported file"])[0]
        sources.append(
            Source(
                id=f"{record.id}#sourceUrl",
                url=url,
                says=f"cited by {publisher}",
                accessed=record.first("retrievedAt"),
            )
        )
    if not sources:
        sources.append(
            Source(
                id=f"import:{record.origin_file}",
                url=f"file:{record.origin_file}",
                says=f"imported FtM file {record.origin_file}, line {record.line}",
                accessed=record.imported_at,
                verified=False,
            )
        )
    return sources


def from_ftm(records: Iterable[Record], *, origin: str = "imported") -> tuple[list[Entity], list[Link]]:
    """Graph entities and links from FtM records (other schemata are kept in the store, not the graph)."""
    items = list(records)
    documents = {r.id: r for r in items if (sc := _model().get(r.schema)) is not None and sc.is_a("Document")}
    sanctions: dict[str, list[str]] = {}
    for record in items:
        if record.schema == "Sanction":
            for target in record.values("entity"):
                sanctions.setdefault(target, []).append(_sanction_line(record))
    entities: list[Entity] = []
    links: list[Link] = []
    for record in items:
        schema = _model().get(record.schema)
        if schema is None:
            continue
        if record.schema in LINK_SCHEMATA:
            links.append(_link(record, documents, origin))
        elif schema.is_a("LegalEntity"):
            entities.append(_entity(record, documents, origin, tuple(sanctions.get(record.id, ()))))
    return entities, links


def _sanction_line(record: Record) -> str:
    """One line for a Sanction entity: authority, programme, listing dates."""
    parts = [
        " / ".join(record.values("authority")) or "sanction",
        " / ".join(record.values("program")),
        f"from {record.first('startDate') or record.first('listingDate')}"
        if (record.first("startDate") or record.first("listingDate"))
        else "",
        f"until {record.first('endDate')}" if record.first("endDate") else "",
    ]
    return ", ".join(p for p in parts if p)


def _entity(
    record: Record, documents: dict[str, Record], origin: str, sanctions: tuple[str, ...] = ()
) -> Entity:
    names = record.values("name")
    caption = record.data.get("caption")
    if isinstance(caption, str) and caption.strip():
        names = [caption, *(n for n in names if n != caption)]
    datasets = record.data.get("datasets")
    aliases = [
        *names[1:],
        *record.values("alias"),
        *record.values("weakAlias"),
        *record.values("previousName"),
    ]
    asns = sorted({int(m.group(1)) for v in record.values("keywords") if (m := _ASN.match(v.strip()))})
    domains = sorted({d for url in record.values("website") if (d := _domain(url))})
    return Entity(
        id=record.id,
        schema=record.schema,
        name=names[0] if names else record.id,
        aliases=tuple(dict.fromkeys(aliases)),
        country=_country(record.values("jurisdiction")) or _country(record.values("country")),
        control_jurisdiction=_country(record.values("mainCountry")),
        is_state=record.schema == "PublicBody",
        sources=tuple(_source_of(record, documents)),
        asns=tuple(asns),
        domains=tuple(domains),
        group=None,
        notes=record.first("notes"),
        origin=origin,
        topics=tuple(record.values("topics")),
        datasets=tuple(str(d) for d in datasets) if isinstance(datasets, list) else (),
        sanctions=sanctions,
    )


def _link(record: Record, documents: dict[str, Record], origin: str) -> Link:
    owner_prop, asset_prop = LINK_SCHEMATA[record.schema]
    status = _status(record)
    kind = {"Ownership": "ownership", "Control": "control", "Directorship": "directorship"}[record.schema]
    if status.get("kind") == "state":
        kind = "state"
    shares = [p for v in record.values("percentage") if (p := percentage(v)) is not None]
    voting = percentage(status["voting"]) if "voting" in status else None
    controlling = {"true": True, "false": False}.get(status.get("controlling", ""))
    confidence = status.get("confidence", "U")
    control_type = record.first("controlType") or record.first("ownershipType")
    return Link(
        id=record.id,
        kind=kind,
        owner_id=(record.values(owner_prop) or [""])[0],
        asset_id=(record.values(asset_prop) or [""])[0],
        share=shares[0] if shares else None,
        voting=voting,
        start=record.first("startDate"),
        end=record.first("endDate"),
        confidence=confidence if confidence in ("V", "S", "U") else "U",
        source=_source_of(record, documents)[0],
        disputed="disputed" in status,
        controlling=controlling,
        control_type=control_type,
        summary=record.first("summary"),
        origin=origin,
    )


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
