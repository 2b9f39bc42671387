"""The curated control graph shipped with derisk: one YAML file per corporate group (or a generated
JSON file of the same layout, see :func:`read_group_files`).

Format of ``derisk/data/groups/<group>.yaml`` (every key checked; unknown keys are errors)::

    group: Alibaba Group
    sources:                       # keyed by a short name used below
      sec-20f-2023:
        url: https://www.sec.gov/...
        says: "Incorporated in the Cayman Islands"
        date: 2024-02-23           # document date, and/or
        accessed: 2026-11-26       # when it was read
        verified: true             # false: not checked, shown as [U]; may then lack dates
        publisher: US SEC          # optional
    entities:
      - id: alibaba-group-holding  # unique across all files
        schema: Company            # FtM schema: Company, Organization, PublicBody, Person
        name: Alibaba Group Holding Limited
        aliases: [Alibaba Group]
        country: KY                # incorporation (ISO 3166-1 alpha-2)
        control_jurisdiction: CN   # where control is exercised, when known
        is_state: false            # a state or state body
        asns: [45102]              # attribution hints: AS numbers it operates
        domains: [alibaba.com]     # attribution hints: registrable domains it operates
        tlds: [alibaba]            # optional: brand top-level domains it operates as registry
                                   # (IANA root zone database): every name under them is its own
        listed_domains:            # optional: more domains, each list as a cited public list has it
          ddg-tds: [alibabacorp.com]   # key: a source defined above (also counted as the entity's)
        sources: [sec-20f-2023]    # at least one
        notes: optional text
        group: optional            # the entity's own group when it is not the file's (a file of
                                   # independent organisations, e.g. universities)
    links:
      - kind: ownership            # ownership | control | state | directorship
        owner: alibaba-group-holding
        asset: cainiao-network
        share: 53.5                # percent of equity, only when a source gives it
        voting: 56.05              # percent of voting rights, only when a source gives it
        controlling: true          # optional: the source says the stake is (not) controlling
        control_type: VIE contractual arrangements
        start: 2013                # optional ISO date (partial allowed)
        end: null
        confidence: V              # V seen in a source | S consistent across sources | U unverified
        disputed: false
        source: sec-20f-2023       # exactly one
        summary: optional text
    assessments:                   # optional: published assessments of the whole group
      - says: "The Commission considers ... materially higher-risk suppliers"
        source: eu-5g-2023
        confidence: V
    listed_domains:                # optional: more domains for entities defined in other files, each
      microsoft-corp:              # list as a cited public list has it (a generated file such as
        v2fly-azure: [azure.cn]    # domain-lists.json); a domain any entity already has is left out
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import replace
from functools import lru_cache
from importlib import resources
from typing import Any, Final

from derisk.countries import country_code
from derisk.data import content_digest, read_yaml_folder
from derisk.errors import DataError, Problem, raise_problems
from derisk.know.graph import (
    CONFIDENCES,
    LINK_KINDS,
    NODE_SCHEMATA,
    Assessment,
    Entity,
    Graph,
    Link,
    Source,
    build_graph,
)

FILE_KEYS: Final = {"group", "sources", "entities", "links", "assessments", "listed_domains"}
ASSESSMENT_KEYS: Final = {"says", "source", "confidence"}
SOURCE_KEYS: Final = {"url", "says", "date", "accessed", "verified", "publisher"}
ENTITY_KEYS: Final = {
    "id",
    "schema",
    "name",
    "aliases",
    "country",
    "control_jurisdiction",
    "is_state",
    "asns",
    "domains",
    "listed_domains",
    "sources",
    "notes",
    "group",
    "tlds",
}
LINK_KEYS: Final = {
    "kind",
    "owner",
    "asset",
    "share",
    "voting",
    "controlling",
    "control_type",
    "start",
    "end",
    "confidence",
    "disputed",
    "source",
    "summary",
}
_ID = re.compile(r"^[a-z0-9][a-z0-9.-]{1,80}$")
_DOMAIN = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


_TLD = re.compile(r"^[a-z]{3,63}$")
#: Top-level domains open to everyone's registrations, never one organisation's: the country-code
#: ones have two letters (refused by _TLD), and the largest generic ones are refused by name.
_OPEN_TLDS: Final = frozenset(
    [
        "com",
        "net",
        "org",
        "info",
        "biz",
        "edu",
        "gov",
        "mil",
        "int",
        "arpa",
        "xyz",
        "top",
        "online",
        "site",
        "shop",
        "app",
        "dev",
        "io",
        "co",
        "me",
        "tv",
        "cloud",
    ]
)

_PARTIAL_DATE = re.compile(r"^\d{4}(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12]\d|3[01]))?)?$")


def _date(value: Any) -> str | None:
    """An ISO 8601 date, possibly partial (``2017``, ``2017-06``, ``2017-06-28``), as FtM writes dates."""
    if value is None:
        return None
    text = value.isoformat() if hasattr(value, "isoformat") else str(value).strip()
    text = text[:10]
    if not _PARTIAL_DATE.match(text):
        return None
    try:
        if len(text) == 10:
            dt.date.fromisoformat(text)
    except ValueError:
        return None
    return text


def _country(value: Any) -> str | None:
    if value is None or not re.fullmatch(r"[A-Za-z]{2}", str(value)):
        return None
    return country_code(str(value))


class _FileReader:
    """Reads one group file into entities and links, collecting every problem."""

    def __init__(self, name: str, data: Any, problems: list[Problem]) -> None:
        self.name = name
        self.problems = problems
        self.sources: dict[str, Source] = {}
        self.entities: list[Entity] = []
        self.links: list[Link] = []
        self.assessments: list[Assessment] = []
        #: Domains this file lists for entities of other files: (where, entity id, source, domains).
        self.extra_domains: list[tuple[str, str, Source, list[str]]] = []
        self.group = ""
        if not isinstance(data, dict):
            self.problem("", "expected a mapping with keys group, sources, entities, links")
            return
        self.keys("", data, FILE_KEYS, required={"group", "sources", "entities"})
        self.group = str(data.get("group") or "")
        for key, value in (data.get("sources") or {}).items():
            self.source(str(key), value)
        for index, value in enumerate(data.get("entities") or []):
            self.entity(f"entities[{index}]", value)
        for index, value in enumerate(data.get("links") or []):
            self.link(f"links[{index}]", value)
        for index, value in enumerate(data.get("assessments") or []):
            self.assessment(f"assessments[{index}]", value)
        self.listed_domains(data.get("listed_domains"))

    def problem(self, where: str, what: str) -> None:
        self.problems.append(Problem(f"{self.name}{': ' + where if where else ''}", what))

    def keys(self, where: str, data: dict[str, Any], allowed: set[str], required: set[str]) -> None:
        for key in sorted(set(data) - allowed):
            self.problem(where, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
        for key in sorted(required - set(data)):
            self.problem(where, f"missing key {key!r}")

    def source(self, key: str, data: Any) -> None:
        where = f"sources.{key}"
        if not isinstance(data, dict):
            self.problem(where, "expected a mapping with url, says, date or accessed")
            return
        self.keys(where, data, SOURCE_KEYS, required={"url", "says"})
        url = str(data.get("url") or "")
        if not url.startswith(("https://", "http://")):
            self.problem(where, f"url must be an http(s) URL, found {url!r}")
        if not str(data.get("says") or "").strip():
            self.problem(where, "says must state what the source says")
        date, accessed = _date(data.get("date")), _date(data.get("accessed"))
        verified = data.get("verified", True)
        if not isinstance(verified, bool):
            self.problem(where, f"verified must be true or false, found {verified!r}")
        if date is None and accessed is None and verified is not False:
            self.problem(where, "needs a document date or an access date (or verified: false)")
        self.sources[key] = Source(
            id=f"{self.name.removesuffix('.yaml')}.{key}",
            url=url,
            says=str(data.get("says") or "").strip(),
            date=date,
            accessed=accessed,
            verified=bool(data.get("verified", True)),
            publisher=data.get("publisher"),
        )

    def assessment(self, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            self.problem(where, "expected a mapping with says, source, confidence")
            return
        self.keys(where, data, ASSESSMENT_KEYS, required=ASSESSMENT_KEYS)
        source = self.sources.get(str(data.get("source")))
        if source is None:
            self.problem(where, f"source {data.get('source')!r} is not defined under sources")
            return
        if data.get("confidence") not in CONFIDENCES:
            self.problem(where, "confidence must be one of V, S, U")
        self.assessments.append(
            Assessment(self.group, str(data.get("says") or ""), source, str(data.get("confidence")))
        )

    def entity(self, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            self.problem(where, "expected a mapping")
            return
        self.keys(where, data, ENTITY_KEYS, required={"id", "schema", "name", "sources"})
        ident = str(data.get("id") or "")
        if not _ID.match(ident):
            self.problem(where, f"id {ident!r} must be lower-case letters, digits, dots and dashes")
        schema = data.get("schema")
        if schema not in NODE_SCHEMATA:
            self.problem(where, f"schema {schema!r} is not one of {', '.join(NODE_SCHEMATA)}")
        sources = []
        for key in data.get("sources") or []:
            if key in self.sources:
                sources.append(self.sources[key])
            else:
                self.problem(where, f"source {key!r} is not defined under sources")
        if not sources:
            self.problem(where, "an entity needs at least one source")
        country, control = data.get("country"), data.get("control_jurisdiction")
        for label, value in (("country", country), ("control_jurisdiction", control)):
            if value is not None and _country(value) is None:
                self.problem(where, f"{label} {value!r} is not an ISO 3166-1 alpha-2 code")
        asns = []
        for asn in data.get("asns") or []:
            if isinstance(asn, int) and 0 < asn < 2**32:
                asns.append(asn)
            else:
                self.problem(where, f"AS number {asn!r} is not a positive integer")
        domains = self.domains(where, data.get("domains"))
        listed = data.get("listed_domains") or {}
        if not isinstance(listed, dict):
            self.problem(where, "listed_domains must map a source key to a list of domains")
            listed = {}
        for key, values in listed.items():
            if key not in self.sources:
                self.problem(where, f"listed_domains: source {key!r} is not defined under sources")
                continue
            if self.sources[key] not in sources:
                sources.append(self.sources[key])
            domains.extend(
                d for d in self.domains(f"{where}.listed_domains.{key}", values) if d not in domains
            )
        for tld in data.get("tlds") or []:
            if isinstance(tld, str) and _TLD.match(tld) and tld not in _OPEN_TLDS:
                domains.append(tld)
            else:
                self.problem(where, f"tld {tld!r} is not a lower-case brand top-level domain")
        self.entities.append(
            Entity(
                id=ident,
                schema=str(schema),
                name=str(data.get("name") or ""),
                aliases=tuple(str(a) for a in data.get("aliases") or ()),
                country=_country(country),
                control_jurisdiction=_country(control),
                is_state=bool(data.get("is_state", False)),
                sources=tuple(sources),
                asns=tuple(asns),
                domains=tuple(domains),
                group=str(data.get("group") or self.group),
                notes=data.get("notes"),
            )
        )

    def listed_domains(self, data: Any) -> None:
        """The file-level ``listed_domains``: entity id -> source key -> domains."""
        if data is None:
            return
        if not isinstance(data, dict):
            self.problem("listed_domains", "expected a mapping of entity id to source key to domains")
            return
        for ident, lists in data.items():
            where = f"listed_domains.{ident}"
            if not isinstance(lists, dict):
                self.problem(where, "expected a mapping of source key to a list of domains")
                continue
            for key, values in lists.items():
                source = self.sources.get(str(key))
                if source is None:
                    self.problem(where, f"source {key!r} is not defined under sources")
                    continue
                found = self.domains(f"{where}.{key}", values)
                self.extra_domains.append((where, str(ident), source, found))

    def domains(self, where: str, values: Any) -> list[str]:
        """The valid registrable domains of one list (each invalid one is a problem)."""
        if values is not None and not isinstance(values, list):
            self.problem(where, f"expected a list of domains, found {type(values).__name__}")
            return []
        found: list[str] = []
        for domain in values or []:
            if isinstance(domain, str) and _DOMAIN.match(domain):
                found.append(domain)
            else:
                self.problem(where, f"domain {domain!r} is not a lower-case registrable domain")
        return found

    def link(self, where: str, data: Any) -> None:
        if not isinstance(data, dict):
            self.problem(where, "expected a mapping")
            return
        self.keys(where, data, LINK_KEYS, required={"kind", "owner", "asset", "confidence", "source"})
        kind = data.get("kind")
        if kind not in LINK_KINDS:
            self.problem(where, f"kind {kind!r} is not one of {', '.join(LINK_KINDS)}")
        confidence = data.get("confidence")
        if confidence not in CONFIDENCES:
            self.problem(where, f"confidence {confidence!r} is not one of V, S, U")
        numbers: dict[str, float | None] = {}
        for key in ("share", "voting"):
            value = data.get(key)
            if value is None:
                numbers[key] = None
            elif isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 100:
                numbers[key] = float(value)
            else:
                self.problem(where, f"{key} {value!r} must be a percentage in (0, 100]")
                numbers[key] = None
        source = self.sources.get(str(data.get("source")))
        if source is None:
            self.problem(where, f"source {data.get('source')!r} is not defined under sources")
        owner, asset = str(data.get("owner") or ""), str(data.get("asset") or "")
        start, end = _date(data.get("start")), _date(data.get("end"))
        key = f"{kind}|{owner}|{asset}|{start}|{end}|{data.get('control_type')}"
        self.links.append(
            Link(
                id="derisk-link-" + hashlib.sha256(key.encode()).hexdigest()[:16],
                kind=str(kind),
                owner_id=owner,
                asset_id=asset,
                share=numbers["share"],
                voting=numbers["voting"],
                start=start,
                end=end,
                confidence=str(confidence),
                source=source,
                disputed=bool(data.get("disputed", False)),
                controlling=data.get("controlling"),
                control_type=data.get("control_type"),
                summary=data.get("summary"),
            )
        )


def check_groups(files: dict[str, Any]) -> tuple[list[Entity], list[Link], list[Problem]]:
    """Parse group documents (file name -> parsed YAML); return entities, links and every problem."""
    entities, links, _, problems = _read_all(files)
    return entities, links, problems


def _read_all(files: dict[str, Any]) -> tuple[list[Entity], list[Link], list[Assessment], list[Problem]]:
    problems: list[Problem] = []
    entities: list[Entity] = []
    links: list[Link] = []
    assessments: list[Assessment] = []
    extra: list[tuple[str, str, Source, list[str]]] = []
    for name in sorted(files):
        reader = _FileReader(name, files[name], problems)
        entities.extend(reader.entities)
        links.extend(reader.links)
        assessments.extend(reader.assessments)
        extra.extend((f"{name}: {where}", i, src, ds) for where, i, src, ds in reader.extra_domains)
    if extra:
        entities = _add_listed_domains(entities, extra, problems)
    seen: dict[str, str] = {}
    for entity in entities:
        if entity.id in seen:
            problems.append(
                Problem(entity.id, f"entity id defined twice ({seen[entity.id]}, {entity.group})")
            )
        seen[entity.id] = entity.group or ""
    link_ids: set[str] = set()
    for link in links:
        for role, ident in (("owner", link.owner_id), ("asset", link.asset_id)):
            if ident not in seen:
                problems.append(Problem(link.id, f"{role} {ident!r} is not a defined entity"))
        if link.id in link_ids:
            problems.append(Problem(link.id, f"link {link.owner_id} -> {link.asset_id} defined twice"))
        link_ids.add(link.id)
    return entities, links, assessments, problems


def _add_listed_domains(
    entities: list[Entity], extra: list[tuple[str, str, Source, list[str]]], problems: list[Problem]
) -> list[Entity]:
    """Entities with the domains other files list for them (file-level ``listed_domains``). A domain
    that any entity already has (as written in its own file, or listed earlier) is left out: a
    generated list never overrides the curated registry, and no domain gets two owners."""
    claimed = {domain for entity in entities for domain in entity.domains}
    position = {entity.id: i for i, entity in enumerate(entities)}
    out = list(entities)
    for where, ident, source, domains in extra:
        if ident not in position:
            problems.append(Problem(where, f"entity {ident!r} is not defined in any group file"))
            continue
        fresh = [d for d in dict.fromkeys(domains) if d not in claimed]
        if not fresh:
            continue
        claimed.update(fresh)
        entity = out[position[ident]]
        sources = entity.sources if source in entity.sources else (*entity.sources, source)
        out[position[ident]] = replace(entity, domains=(*entity.domains, *fresh), sources=sources)
    return out


def read_group_files() -> dict[str, Any]:
    """The shipped group files, parsed (file name -> document): the hand-written ``*.yaml`` and the
    generated ``*.json`` (same layout; JSON because a list of thousands of entities, such as
    ``universities.json``, parses a hundred times faster than YAML)."""
    files = read_yaml_folder("groups")
    root = resources.files("derisk.data").joinpath("groups")
    for name in sorted(entry.name for entry in root.iterdir() if entry.name.endswith(".json")):
        try:
            files[name] = json.loads(root.joinpath(name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"not valid JSON: {exc}", source=f"derisk/data/groups/{name}") from None
    return files


@lru_cache(maxsize=1)
def load_curated() -> Graph:
    """The curated graph (cached: the shipped files do not change while derisk runs), read from the
    compiled copy of an earlier run when its files and code are the same (:mod:`derisk.know.compiled`),
    else built by :func:`build_curated`."""
    from derisk.know.compiled import load

    return load(build_curated)


def build_curated() -> Graph:
    """The curated graph built from the shipped group files, every problem reported at once."""
    files = read_group_files()
    entities, links, assessments, problems = _read_all(files)
    raise_problems(problems, source="derisk/data/groups", kind=DataError, summary="curated registry invalid")
    graph = build_graph(entities, links)
    graph.assessments = tuple(assessments)
    graph.fingerprint = content_digest(files)
    return graph
