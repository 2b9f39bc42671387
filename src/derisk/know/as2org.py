"""CAIDA AS-to-Organization (``as-org2info.txt`` and ``as-org2info.jsonl``): sibling ASes per organisation.

Published by CAIDA at https://www.caida.org/catalog/datasets/as-organizations/ (CAIDA AUA). The text
format has two sections, each announced by a ``# format:`` line::

    # format:org_id|changed|org_name|country|source
    # format:aut|changed|aut_name|org_id|opaque_id|source

The JSON lines format has one object per line with ``"type": "Organization"`` (``organizationId``,
``name``, ``country``, ``changed``) or ``"type": "ASN"`` (``asn``, ``name``, ``organizationId``).

Each organisation becomes an ``Organization`` entity ``as2org-<org_id>`` (name, country of
registration); each AS number an attribution hint of its organisation, so all of an organisation's
ASes (its siblings) lead to one entity. AS names (``aut_name``) become aliases for the search.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from derisk.errors import Problem
from derisk.know.graphdb import ENTITY_SCHEMA, HINT_SCHEMA, NAME_SCHEMA
from derisk.know.lines import MAX_LINE, numbered_lines
from derisk.know.names import comparable

PAGE: Final = 50_000
_ASN: Final = re.compile(r"^(?:AS)?(\d{1,10})$", re.IGNORECASE)
_COUNTRY: Final = re.compile(r"^[A-Z]{2}$")
URL: Final = "https://www.caida.org/catalog/datasets/as-organizations/"


def looks_like(first: str) -> bool:
    text = first.strip()
    if text.startswith("# format:") or text.startswith("# format: "):
        return "org_id" in text or "aut" in text
    if text.startswith("{"):
        return '"organizationId"' in text and ('"type"' in text)
    return False


class _Pages:
    def __init__(self) -> None:
        self.entities: dict[str, list[Any]] = {f: [] for f in ENTITY_SCHEMA.names}
        self.names: dict[str, list[Any]] = {f: [] for f in NAME_SCHEMA.names}
        self.hints: dict[str, list[Any]] = {f: [] for f in HINT_SCHEMA.names}

    def org(self, org_id: str, name: str, country: str, changed: str, line: int) -> None:
        ident = f"as2org-{org_id}"
        row = {
            "id": ident,
            "schema": "Organization",
            "name": name,
            "country": country if _COUNTRY.match(country) else None,
            "control_jurisdiction": None,
            "is_state": False,
            "notes": None,
            "extra": None,
            "record_id": org_id,
            "source_date": _date(changed),
            "source_url": URL,
            "line": line,
        }
        for key, value in row.items():
            self.entities[key].append(value)
        self.name(ident, name)

    def name(self, ident: str, name: str) -> None:
        self.names["entity_id"].append(ident)
        self.names["name"].append(name)
        self.names["norm"].append(comparable(name))

    def asn(self, org_id: str, asn: int, aut_name: str) -> None:
        ident = f"as2org-{org_id}"
        self.hints["entity_id"].append(ident)
        self.hints["kind"].append("asn")
        self.hints["value"].append(str(asn))
        if aut_name:
            self.name(ident, aut_name)

    def size(self) -> int:
        return len(self.entities["id"]) + len(self.hints["entity_id"])

    def flush(self) -> dict[str, pa.Table]:
        out = {
            "kg_entities": pa.table(self.entities, schema=ENTITY_SCHEMA),
            "kg_names": pa.table(self.names, schema=NAME_SCHEMA),
            "kg_hints": pa.table(self.hints, schema=HINT_SCHEMA),
        }
        self.__init__()  # type: ignore[misc]
        return out


def _date(changed: str) -> str | None:
    text = changed.strip()
    if re.fullmatch(r"\d{8}", text):
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text[:10] or None


def read(path: Path, problems: list[Problem]) -> Iterator[dict[str, pa.Table]]:
    pages = _Pages()
    section: str | None = None
    for number, line in numbered_lines(path, problems):
        text = line.strip()
        if not text:
            continue
        if text.startswith("#"):
            if text.startswith("# format:"):
                fields = text.removeprefix("# format:").strip()
                section = (
                    "org" if fields.startswith("org_id") else "aut" if fields.startswith("aut") else None
                )
            continue
        if text.startswith("{"):
            _json_line(text, number, pages, problems)
        elif section == "org":
            parts = text.split("|")
            if len(parts) < 4 or not parts[0] or not parts[2]:
                problems.append(
                    Problem(
                        f"line {number}", "organisation line needs org_id|changed|org_name|country; dropped"
                    )
                )
                continue
            pages.org(parts[0], parts[2], parts[3].strip().upper(), parts[1], number)
        elif section == "aut":
            parts = text.split("|")
            match = _ASN.match(parts[0]) if parts else None
            if len(parts) < 4 or match is None or not parts[3]:
                problems.append(
                    Problem(f"line {number}", "AS line needs aut|changed|aut_name|org_id; dropped")
                )
                continue
            pages.asn(parts[3], int(match.group(1)), parts[2])
        else:
            problems.append(Problem(f"line {number}", "data before any '# format:' line; dropped"))
        if pages.size() >= PAGE:
            yield pages.flush()
    yield pages.flush()


def _json_line(text: str, number: int, pages: _Pages, problems: list[Problem]) -> None:
    where = f"line {number}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(Problem(where, f"not JSON ({exc.msg}); dropped"))
        return
    except RecursionError:
        problems.append(Problem(where, "JSON nested too deeply; dropped"))
        return
    if not isinstance(data, dict):
        problems.append(Problem(where, "expected a JSON object; dropped"))
        return
    kind = data.get("type")
    org_id = data.get("organizationId")
    if not isinstance(org_id, str) or not org_id:
        problems.append(Problem(where, "no organizationId; dropped"))
        return
    if kind == "Organization":
        name = data.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(Problem(where, "organisation without a name; dropped"))
            return
        country = data.get("country")
        pages.org(org_id, name, str(country or "").upper(), str(data.get("changed") or ""), number)
    elif kind == "ASN":
        match = _ASN.match(str(data.get("asn", "")))
        if match is None:
            problems.append(Problem(where, f"asn {data.get('asn')!r} is not an AS number; dropped"))
            return
        pages.asn(org_id, int(match.group(1)), str(data.get("name") or ""))
    else:
        problems.append(Problem(where, f"unknown type {kind!r}; dropped"))


__all__ = ["MAX_LINE", "looks_like", "read"]
