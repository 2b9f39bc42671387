"""A PeeringDB dump: the JSON of ``org`` and ``net`` objects, as the PeeringDB API and CAIDA's
daily PeeringDB archive publish them::

    {"org": {"data": [{"id": 1, "name": ..., "aka": ..., "website": ..., "country": ...}, ...]},
     "net": {"data": [{"id": 2, "org_id": 1, "asn": 15169, "name": ..., "aka": ..., "website": ...}, ...]}}

Each ``org`` becomes an ``Organization`` entity ``peeringdb-org-<id>`` (name, ``aka`` as alias,
country); each ``net`` adds its AS number and the registrable domain of its website as attribution
hints of its organisation, and its name and ``aka`` as aliases. PeeringDB data is CC0-like open data
under its Acceptable Use Policy (https://www.peeringdb.com/aup).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from derisk.errors import InputError, Problem
from derisk.know.graphdb import ENTITY_SCHEMA, HINT_SCHEMA, NAME_SCHEMA
from derisk.know.lines import open_binary
from derisk.know.names import comparable

MAX_FILE: Final = 1 << 30
MAX_TEXT: Final = 2_000
URL: Final = "https://www.peeringdb.com/org/"


def looks_like(first: str) -> bool:
    text = first.lstrip()
    return (
        text.startswith("{")
        and ('"net"' in text[:4000] or '"org"' in text[:4000])
        and '"data"' in text[:4000]
    )


def _load(path: Path) -> Any:
    open_binary(path)
    if path.stat().st_size > MAX_FILE:
        raise InputError(f"larger than {MAX_FILE >> 30} GB; not a PeeringDB dump", source=str(path))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})", source=str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}; truncated?)", source=str(path)
        ) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", source=str(path)) from None


def _objects(data: Any, key: str, problems: list[Problem]) -> list[dict[str, Any]]:
    section = data.get(key) if isinstance(data, dict) else None
    if section is None:
        return []
    rows = section.get("data") if isinstance(section, dict) else section
    if not isinstance(rows, list):
        problems.append(Problem(key, "expected a list under 'data'; section ignored"))
        return []
    out = []
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            out.append(row)
        else:
            problems.append(Problem(f"{key}[{index}]", "not an object; dropped"))
    return out


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def read(path: Path, problems: list[Problem]) -> Iterator[dict[str, pa.Table]]:
    from derisk.enrich.domains import extractor

    data = _load(path)
    if not isinstance(data, dict) or ("org" not in data and "net" not in data):
        raise InputError("not a PeeringDB dump: no 'org' or 'net' objects", source=str(path))
    entities: dict[str, list[Any]] = {f: [] for f in ENTITY_SCHEMA.names}
    names: dict[str, list[Any]] = {f: [] for f in NAME_SCHEMA.names}
    hints: dict[str, list[Any]] = {f: [] for f in HINT_SCHEMA.names}

    def name(ident: str, value: str) -> None:
        if value and len(value) <= MAX_TEXT:
            names["entity_id"].append(ident)
            names["name"].append(value)
            names["norm"].append(comparable(value))

    def hint(ident: str, kind: str, value: str) -> None:
        hints["entity_id"].append(ident)
        hints["kind"].append(kind)
        hints["value"].append(value)

    def domain(url: str) -> str | None:
        return extractor()(url).top_domain_under_public_suffix or None if url else None

    orgs = _objects(data, "org", problems)
    for index, org in enumerate(orgs):
        where = f"org[{index}]"
        org_id, org_name = org.get("id"), _text(org.get("name"))
        if not isinstance(org_id, int) or not org_name:
            problems.append(Problem(where, "org needs an integer id and a name; dropped"))
            continue
        if len(org_name) > MAX_TEXT:
            problems.append(Problem(where, f"name of {len(org_name):,} characters; dropped"))
            continue
        ident = f"peeringdb-org-{org_id}"
        country = _text(org.get("country")).upper()
        row = {
            "id": ident,
            "schema": "Organization",
            "name": org_name,
            "country": country if len(country) == 2 and country.isalpha() else None,
            "control_jurisdiction": None,
            "is_state": False,
            "notes": None,
            "extra": None,
            "record_id": f"org {org_id}",
            "source_date": _text(org.get("updated"))[:10] or None,
            "source_url": f"{URL}{org_id}",
            "line": index,
        }
        for key, value in row.items():
            entities[key].append(value)
        name(ident, org_name)
        name(ident, _text(org.get("aka")))
        if site := domain(_text(org.get("website"))):
            hint(ident, "domain", site)
    for index, net in enumerate(_objects(data, "net", problems)):
        where = f"net[{index}]"
        org_id, asn = net.get("org_id"), net.get("asn")
        if not isinstance(org_id, int) or not isinstance(asn, int) or not 0 < asn < 2**32:
            problems.append(Problem(where, "net needs an integer org_id and asn; dropped"))
            continue
        ident = f"peeringdb-org-{org_id}"
        hint(ident, "asn", str(asn))
        name(ident, _text(net.get("name")))
        name(ident, _text(net.get("aka")))
        if site := domain(_text(net.get("website"))):
            hint(ident, "domain", site)
    yield {
        "kg_entities": pa.table(entities, schema=ENTITY_SCHEMA),
        "kg_names": pa.table(names, schema=NAME_SCHEMA),
        "kg_hints": pa.table(hints, schema=HINT_SCHEMA),
    }
