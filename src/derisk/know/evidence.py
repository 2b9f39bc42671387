"""Public reporting as evidence: a cited article or report attached to entities of the graph.

``derisk evidence add`` stores one FtM ``Article`` (title, sourceUrl, publisher, publishedAt,
language, summary = the quoted passage) and one FtM ``Documentation`` per entity (document → entity,
``role`` = "evidence"), in the workspace table ``kg_documents``. Evidence never changes who controls
what: it is shown beside the answer (``entity show``, entity pages, reports) as what public
reporting says.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Final

from derisk.errors import InputError, Problem, raise_problems
from derisk.know.graphdb import GraphDatabase, documents, ensure_tables

MAX_QUOTE: Final = 2_000
MAX_FIELD: Final = 500
_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LANG: Final = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class Evidence:
    """A cited piece of public reporting and the entities it is attached to."""

    id: str
    url: str
    title: str
    publisher: str
    date: str
    language: str
    quote: str
    entity_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "title": self.title,
            "publisher": self.publisher,
            "date": self.date,
            "language": self.language,
            "quote": self.quote,
            "entities": list(self.entity_ids),
        }

    def cite(self) -> str:
        return f"{self.publisher}, {self.date}: “{self.title}” ({self.url})"


def check(url: str, title: str, publisher: str, date: str, language: str, quote: str) -> None:
    """InputError listing every problem of the citation at once."""
    problems = []
    if not re.match(r"^https?://[^\s/]+", url) or len(url) > MAX_FIELD:
        problems.append(Problem("--url", "must be an http(s) URL of at most 500 characters"))
    for name, value in (("--title", title), ("--publisher", publisher)):
        if not value.strip() or len(value) > MAX_FIELD or any(ord(c) < 32 for c in value):
            problems.append(Problem(name, "must be 1–500 characters on one line"))
    if not _DATE.match(date):
        problems.append(Problem("--date", "must be YYYY-MM-DD"))
    else:
        try:
            dt.date.fromisoformat(date)
        except ValueError:
            problems.append(Problem("--date", f"{date} is not a calendar date"))
    if not _LANG.match(language):
        problems.append(Problem("--language", "must be an ISO 639 code such as de, en, fr, nl"))
    if not quote.strip() or len(quote) > MAX_QUOTE:
        problems.append(Problem("--quote", f"must be 1–{MAX_QUOTE:,} characters"))
    raise_problems(problems, source="evidence", kind=InputError, summary="cannot add evidence")


def _proxy(schema: str, ident: str, props: dict[str, list[str]]) -> dict[str, Any]:
    from followthemoney import model

    proxy = model.make_entity(schema)
    proxy.id = ident
    for name, values in props.items():
        for value in values:
            proxy.add(name, value)
    data: dict[str, Any] = proxy.to_dict()
    return {"id": data["id"], "schema": data["schema"], "properties": data["properties"]}


def add(db: GraphDatabase, ev: Evidence) -> Evidence:
    """Store the article and one Documentation per entity (one transaction); the stored evidence."""
    check(ev.url, ev.title, ev.publisher, ev.date, ev.language, ev.quote)
    ident = "evidence-" + hashlib.sha256(f"{ev.url}\n{ev.quote}".encode()).hexdigest()[:16]
    article = _proxy(
        "Article",
        ident,
        {
            "title": [ev.title],
            "sourceUrl": [ev.url],
            "publisher": [ev.publisher],
            "publishedAt": [ev.date],
            "language": [ev.language],
            "summary": [ev.quote],
        },
    )
    now = dt.datetime.now(dt.UTC)
    with db.transaction() as con:
        ensure_tables(con)
        con.execute("DELETE FROM kg_documents WHERE id = ? OR document_id = ?", [ident, ident])
        con.execute(
            "INSERT INTO kg_documents VALUES (?, 'Article', NULL, NULL, ?, ?)",
            [ident, json.dumps(article, ensure_ascii=False, sort_keys=True), now],
        )
        for entity_id in dict.fromkeys(ev.entity_ids):
            doc_id = f"{ident}-{hashlib.sha256(entity_id.encode()).hexdigest()[:12]}"
            link = _proxy(
                "Documentation",
                doc_id,
                {"document": [ident], "entity": [entity_id], "role": ["evidence"]},
            )
            con.execute(
                "INSERT INTO kg_documents VALUES (?, 'Documentation', ?, ?, ?, ?)",
                [doc_id, entity_id, ident, json.dumps(link, ensure_ascii=False, sort_keys=True), now],
            )
    return Evidence(ident, ev.url, ev.title, ev.publisher, ev.date, ev.language, ev.quote, ev.entity_ids)


def _first(data: dict[str, Any], prop: str) -> str:
    values = data.get("properties", {}).get(prop) or [""]
    return str(values[0])


def load(db: GraphDatabase | None, entity_ids: list[str] | None = None) -> list[Evidence]:
    """Stored evidence (for the given entities, or all), oldest first."""
    if db is None:
        return []
    rows = documents(db, entity_ids)
    attached: dict[str, list[str]] = {}
    articles: dict[str, dict[str, Any]] = {}
    for schema, entity_id, document_id, data in rows:
        if schema == "Documentation":
            attached.setdefault(document_id, []).append(entity_id)
        else:
            articles[json.loads(data)["id"]] = json.loads(data)
    out = []
    for ident, article in articles.items():
        if entity_ids is not None and ident not in attached:
            continue
        out.append(
            Evidence(
                ident,
                _first(article, "sourceUrl"),
                _first(article, "title"),
                _first(article, "publisher"),
                _first(article, "publishedAt"),
                _first(article, "language"),
                _first(article, "summary"),
                tuple(attached.get(ident, ())),
            )
        )
    return out


def from_yaml(text: str) -> list[Evidence]:
    """Evidence entries of a YAML document ``{evidence: [{url, title, publisher, date, language,
    quote, entities}]}`` (the demo's data), each checked."""
    import yaml

    data = yaml.safe_load(text) or {}
    out = []
    for item in data.get("evidence", []):
        entry = Evidence(
            "",
            str(item["url"]),
            str(item["title"]),
            str(item["publisher"]),
            str(item["date"]),
            str(item.get("language", "en")),
            str(item["quote"]),
            tuple(str(e) for e in item.get("entities", [])),
        )
        check(entry.url, entry.title, entry.publisher, entry.date, entry.language, entry.quote)
        out.append(entry)
    return out
