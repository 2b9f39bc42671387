"""Wikidata ownership statements: the JSON dump of entities, or a SPARQL query's JSON result.

Read properties: owned by (P127, with the proportion qualifier P1107 as the share), parent
organization (P749, a controlling link), country (P17) and headquarters location (P159, whose
country is where control is exercised). Wikidata is CC0 (https://www.wikidata.org/wiki/Wikidata:Licensing).

* Dump (``latest-all.json``: one entity per line inside ``[`` … ``]``, or JSON lines): countries and
  places are resolved through the ISO code (P297) and country (P17) of the entities in the same file.
* SPARQL JSON (``{"head": …, "results": {"bindings": […]}}``) with the variables ``item``,
  ``itemLabel``, ``countryCode``, ``hqCountryCode``, ``owner``, ``ownerLabel``, ``share`` (0–1),
  ``parent``, ``parentLabel``; see docs/know.md for the query.

Entity ids are ``wd-<Q-id>``; statements cite ``https://www.wikidata.org/wiki/<Q-id>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from derisk.errors import InputError, Problem
from derisk.know.graphdb import ENTITY_SCHEMA, LINK_SCHEMA, NAME_SCHEMA
from derisk.know.lines import numbered_lines, open_binary
from derisk.know.names import comparable

_QID: Final = re.compile(r"^Q\d{1,12}$")
WIKI: Final = "https://www.wikidata.org/wiki/"
MAX_SPARQL: Final = 512 << 20


def looks_like(first: str) -> bool:
    text = first.strip()
    if text in ("[", "["):
        return True
    if text.startswith("{"):
        return ('"claims"' in text and '"type":"item"' in text.replace(" ", "")) or (
            '"head"' in text[:2000] and '"vars"' in text[:2000]
        )
    return False


class _Out:
    def __init__(self) -> None:
        self.entities: dict[str, dict[str, Any]] = {}
        self.names: list[tuple[str, str]] = []
        self.links: dict[str, dict[str, Any]] = {}

    def entity(
        self, qid: str, label: str, country: str | None, hq: str | None, line: int, date: str | None
    ) -> None:
        ident = f"wd-{qid}"
        known = self.entities.get(ident)
        if known is not None:  # a SPARQL result repeats the item once per statement
            known["country"] = known["country"] or country
            known["control_jurisdiction"] = known["control_jurisdiction"] or hq
            return
        self.entities[ident] = {
            "id": ident,
            "schema": "Organization",
            "name": label,
            "country": country,
            "control_jurisdiction": hq if hq != country else None,
            "is_state": False,
            "notes": None,
            "extra": None,
            "record_id": qid,
            "source_date": date,
            "source_url": WIKI + qid,
            "line": line,
        }
        self.names.append((ident, label))

    def link(self, prop: str, owner: str, asset: str, share: float | None, line: int) -> None:
        ident = f"wd-{asset}-{prop}-{owner}"
        self.links[ident] = {
            "id": ident,
            "kind": "ownership",
            "owner_id": f"wd-{owner}",
            "asset_id": f"wd-{asset}",
            "share": share,
            "start": None,
            "end": None,
            "confidence": "S",
            "controlling": True if prop == "P749" else None,
            "control_type": "parent organization (P749)" if prop == "P749" else "owned by (P127)",
            "summary": None,
            "record_id": f"{asset} {prop}",
            "source_date": None,
            "source_url": WIKI + asset,
            "line": line,
        }

    def tables(self) -> dict[str, pa.Table]:
        names = [(i, n) for i, n in self.names if n]
        return {
            "kg_entities": pa.Table.from_pylist(list(self.entities.values()), schema=ENTITY_SCHEMA),
            "kg_names": pa.table(
                {
                    "entity_id": [i for i, _ in names],
                    "name": [n for _, n in names],
                    "norm": [comparable(n) for _, n in names],
                },
                schema=NAME_SCHEMA,
            ),
            "kg_links": pa.Table.from_pylist(list(self.links.values()), schema=LINK_SCHEMA),
        }


def read(path: Path, problems: list[Problem]) -> Iterator[dict[str, pa.Table]]:
    open_binary(path)
    with path.open("rb") as fh:
        head = fh.read(4096).decode("utf-8", errors="replace").lstrip("\ufeff \r\n\t")
    if (head.startswith("{") and '"head"' in head and '"results"' in head.replace(" ", "")[:4096]) or (
        head.startswith("{") and '"vars"' in head
    ):
        yield _sparql(path, problems)
    else:
        yield _dump(path, problems)


def _label(data: dict[str, Any]) -> str:
    labels = data.get("labels") or {}
    for lang in ("en", "mul", "de", "fr", "nl"):
        value = labels.get(lang, {}).get("value") if isinstance(labels.get(lang), dict) else None
        if value:
            return str(value)
    for value in labels.values():
        if isinstance(value, dict) and value.get("value"):
            return str(value["value"])
    return ""


def _claims(data: dict[str, Any], prop: str) -> list[dict[str, Any]]:
    claims = data.get("claims") or {}
    found = claims.get(prop) or []
    return [c for c in found if isinstance(c, dict) and c.get("rank") != "deprecated"]


def _item(claim: dict[str, Any]) -> str | None:
    value = ((claim.get("mainsnak") or {}).get("datavalue") or {}).get("value")
    if isinstance(value, dict) and isinstance(value.get("id"), str) and _QID.match(value["id"]):
        return str(value["id"])
    return None


def _string(claim: dict[str, Any]) -> str | None:
    value = ((claim.get("mainsnak") or {}).get("datavalue") or {}).get("value")
    return value if isinstance(value, str) else None


def _share(claim: dict[str, Any]) -> float | None:
    for qual in (claim.get("qualifiers") or {}).get("P1107", []):
        value = ((qual.get("datavalue") or {}).get("value") or {}).get("amount")
        try:
            share = float(str(value)) * 100
        except ValueError:
            continue
        if 0 <= share <= 100:
            return round(share, 4)
    return None


def _dump(path: Path, problems: list[Problem]) -> dict[str, pa.Table]:
    items: list[tuple[int, dict[str, Any]]] = []
    iso: dict[str, str] = {}
    place_country: dict[str, str] = {}
    for number, line in numbered_lines(path, problems):
        text = line.strip().rstrip(",")
        if text in ("", "[", "]"):
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(Problem(f"line {number}", f"not JSON ({exc.msg}); dropped"))
            continue
        except RecursionError:
            problems.append(Problem(f"line {number}", "JSON nested too deeply; dropped"))
            continue
        if not isinstance(data, dict) or not _QID.match(str(data.get("id", ""))):
            problems.append(Problem(f"line {number}", "not a Wikidata item (no Q id); dropped"))
            continue
        qid = str(data["id"])
        for claim in _claims(data, "P297"):
            if (code := _string(claim)) and len(code) == 2:
                iso[qid] = code.upper()
        for claim in _claims(data, "P17"):
            if country := _item(claim):
                place_country.setdefault(qid, country)
        if (
            _claims(data, "P127")
            or _claims(data, "P749")
            or _claims(data, "P159")
            or not _claims(data, "P297")
        ):
            items.append((number, data))
    out = _Out()
    wanted: set[str] = set()
    for number, data in items:
        qid = str(data["id"])
        own = [(p, c) for p in ("P127", "P749") for c in _claims(data, p)]
        if not own and qid not in wanted and not _claims(data, "P159"):
            continue
        label = _label(data)
        if not label:
            problems.append(Problem(f"line {number}", f"{qid} has no label; dropped"))
            continue
        if len(label) > 2_000:
            problems.append(Problem(f"line {number}", f"{qid} label of {len(label):,} characters; dropped"))
            continue
        country = next((iso.get(c) for c in map(_item, _claims(data, "P17")) if c and c in iso), None)
        hq_place = next((p for p in map(_item, _claims(data, "P159")) if p), None)
        hq = iso.get(place_country.get(hq_place, "")) if hq_place else None
        modified = str(data.get("modified") or "")[:10] or None
        out.entity(qid, label, country, hq, number, modified)
        for prop, claim in own:
            owner = _item(claim)
            if owner is None:
                problems.append(
                    Problem(f"line {number}", f"{qid} {prop} without an item value; statement dropped")
                )
                continue
            out.link(prop, owner, qid, _share(claim), number)
            wanted.add(owner)
    # Owners that appear only as values: entities named by their own lines when present.
    for number, data in items:
        qid = str(data["id"])
        if f"wd-{qid}" in out.entities or qid not in wanted:
            continue
        label = _label(data)
        if label and len(label) <= 2_000:
            country = next((iso.get(c) for c in map(_item, _claims(data, "P17")) if c and c in iso), None)
            out.entity(qid, label, country, None, number, str(data.get("modified") or "")[:10] or None)
    return out.tables()


def _sparql(path: Path, problems: list[Problem]) -> dict[str, pa.Table]:
    if path.stat().st_size > MAX_SPARQL:
        raise InputError("SPARQL result larger than 512 MB", source=str(path))
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON ({exc.msg} at line {exc.lineno}; truncated?)", source=str(path)) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", source=str(path)) from None
    bindings = ((data.get("results") or {}).get("bindings")) if isinstance(data, dict) else None
    if not isinstance(bindings, list):
        raise InputError("not a SPARQL JSON result: no results.bindings", source=str(path))
    out = _Out()

    def value(row: dict[str, Any], key: str) -> str | None:
        cell = row.get(key)
        return str(cell["value"]) if isinstance(cell, dict) and isinstance(cell.get("value"), str) else None

    def qid(row: dict[str, Any], key: str) -> str | None:
        text = value(row, key)
        found = text.rsplit("/", 1)[-1] if text else None
        return found if found and _QID.match(found) else None

    def code(row: dict[str, Any], key: str) -> str | None:
        text = (value(row, key) or "").upper()
        return text if len(text) == 2 and text.isalpha() else None

    for index, row in enumerate(bindings, start=1):
        where = f"binding {index}"
        if not isinstance(row, dict):
            problems.append(Problem(where, "not an object; dropped"))
            continue
        item = qid(row, "item")
        label = value(row, "itemLabel") or ""
        if item is None or not label or len(label) > 2_000:
            problems.append(Problem(where, "needs an item (Wikidata URI) and an itemLabel; dropped"))
            continue
        out.entity(item, label, code(row, "countryCode"), code(row, "hqCountryCode"), index, None)
        for prop, var in (("P127", "owner"), ("P749", "parent")):
            other = qid(row, var)
            if other is None:
                continue
            other_label = value(row, f"{var}Label") or other
            out.entity(other, other_label, code(row, f"{var}CountryCode"), None, index, None)
            share_text = value(row, "share") if prop == "P127" else None
            try:
                share = round(float(share_text) * 100, 4) if share_text else None
            except ValueError:
                problems.append(Problem(where, f"share {share_text!r} is not a number; share dropped"))
                share = None
            out.link(prop, other, item, share if share is None or 0 <= share <= 100 else None, index)
    return out.tables()
