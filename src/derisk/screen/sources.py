"""Where a screening statement comes from: the texts cited, their reading status, and pending legislation.

Each regime file has a ``sources:`` registry (:class:`Source`: title, https URL, language version, kind,
the date a reviewer read it or ``None``). A statement names registry entries with a locator
(``"awv: § 56(2) + bmwk"``); :func:`resolve_source` expands them into citations a reader can follow.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from derisk.errors import Problem
from derisk.screen.deadlines import DeadlineSpec

SOURCE_KEYS: Final = {"title", "url", "language", "read", "publisher", "kind", "note"}
SOURCE_KINDS: Final = ("primary", "translation", "secondary", "derisk")


@dataclass(frozen=True)
class Source:
    """A text a statement rests on: the primary text where one is published, else the named source."""

    id: str
    title: str
    url: str | None
    language: str | None
    read: date | None
    kind: str
    publisher: str | None = None
    note: str | None = None

    def cite(self, locator: str = "") -> str:
        if self.kind == "derisk":
            return f"derisk's own reading{': ' + locator if locator else ''}"
        where = f", {locator}" if locator else ""
        seen = f"read {self.read.isoformat()}" if self.read else "not read by derisk's reviewers"
        extra = f"; {self.note}" if self.note else ""
        return f"{self.title}{where} ({self.language or '?'}; {self.url}; {seen}{extra})"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "url": self.url,
            "language": self.language,
            "read": self.read.isoformat() if self.read else None,
            "kind": self.kind,
            "publisher": self.publisher,
            "note": self.note,
        }


@dataclass(frozen=True)
class Pending:
    """Legislation agreed but not yet applicable: named in memos, applied only from ``applies_from``."""

    id: str
    title: str
    status: str
    agreed: date | None
    applies_from: date | None
    changes: tuple[str, ...]
    source: str
    confidence: str
    deadlines: tuple[DeadlineSpec, ...] = ()  # added to the member states' phases once it applies

    def applies_to(self, signing: date) -> bool:
        return self.applies_from is not None and signing >= self.applies_from


#: The sources registry of the file being loaded, per thread (the dashboard may load from several threads).
LOADING = threading.local()


def registry() -> Mapping[str, Source]:
    registry: Mapping[str, Source] = getattr(LOADING, "sources", {})
    return registry


def resolve_source(text: str, registry: Mapping[str, Source], where: str, problems: list[Problem]) -> str:
    """``"id: locator + id2"`` -> the citations, each naming its text, URL, language and reading date."""
    out: list[str] = []
    for part in text.split(" + "):
        sid, _, locator = part.partition(":")
        entry = registry.get(sid.strip())
        if entry is None:
            problems.append(
                Problem(where, f"source {part.strip()!r} names no entry of sources: ({', '.join(registry)})")
            )
            continue
        out.append(entry.cite(locator.strip()))
    return " + ".join(out)


def parse_sources(raw: Any, path: str, problems: list[Problem]) -> dict[str, Source]:
    out: dict[str, Source] = {}
    if not isinstance(raw, dict):
        problems.append(Problem(f"{path}: sources", "a registry of the texts cited is required"))
        return out
    for sid, s in raw.items():
        where = f"{path}: sources.{sid}"
        if not isinstance(s, dict):
            problems.append(Problem(where, "must be a mapping"))
            continue
        for key in s:
            if key not in SOURCE_KEYS:
                problems.append(Problem(where, f"unknown key {key!r}"))
        if not s.get("title"):
            problems.append(Problem(where, "missing 'title'"))
            continue
        kind = s.get("kind")
        if kind not in SOURCE_KINDS:
            problems.append(Problem(where, f"kind must be one of {', '.join(SOURCE_KINDS)}"))
            continue
        url = s.get("url")
        if kind != "derisk" and not (isinstance(url, str) and url.startswith("https://")):
            problems.append(Problem(where, "a published source needs an https:// url"))
        read = s.get("read")
        if read is not None and not isinstance(read, date):
            problems.append(Problem(where, "read must be a date (YYYY-MM-DD) or null (not read)"))
            read = None
        out[str(sid)] = Source(
            str(sid),
            str(s["title"]),
            url if isinstance(url, str) else None,
            s.get("language"),
            read,
            str(kind),
            s.get("publisher"),
            s.get("note"),
        )
    return out
