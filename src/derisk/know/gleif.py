"""GLEIF golden copy, CSV: Level 1 LEI records (LEI-CDF) and Level 2 relationship records (RR-CDF).

Published by GLEIF at https://www.gleif.org/en/lei-data/gleif-golden-copy (CC0). Read columns:

Level 1: ``LEI``, ``Entity.LegalName``, ``Entity.OtherEntityNames.OtherEntityName.1..5`` and
``Entity.TransliteratedOtherEntityNames.TransliteratedOtherEntityName.1..5`` (aliases),
``Entity.LegalJurisdiction`` (country of incorporation; ``US-DE`` → US; else
``Entity.LegalAddress.Country``), ``Entity.HeadquartersAddress.Country`` (where control is exercised,
when it differs), ``Entity.EntityStatus``, ``Registration.LastUpdateDate`` (the statement's date).

Level 2: ``Relationship.StartNode.NodeID`` (the child), ``Relationship.EndNode.NodeID`` (the
parent), both of type LEI, ``Relationship.RelationshipType``: ``IS_DIRECTLY_CONSOLIDATED_BY`` (a
controlling link, accounting consolidation), ``IS_ULTIMATELY_CONSOLIDATED_BY`` (used only for a child
without a direct parent in the file, so a chain is not short-circuited), ``IS_INTERNATIONAL_BRANCH_OF``;
``Relationship.RelationshipStatus`` (only ACTIVE), ``Relationship.Period.1.startDate``,
``Registration.ValidationSources`` (FULLY_CORROBORATED → [V], otherwise [S]).

Entity ids are ``lei-<LEI>``, so the two files join up and a re-import replaces.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import Problem
from derisk.know.csvread import batches, header, require, too_long
from derisk.know.graphdb import ENTITY_SCHEMA, HINT_SCHEMA, LINK_SCHEMA, NAME_SCHEMA
from derisk.know.names import comparable

L1_REQUIRED: Final = ["LEI", "Entity.LegalName"]
RR_REQUIRED: Final = [
    "Relationship.StartNode.NodeID",
    "Relationship.EndNode.NodeID",
    "Relationship.RelationshipType",
]
_ALIASES: Final = [
    *(f"Entity.OtherEntityNames.OtherEntityName.{n}" for n in range(1, 6)),
    *(f"Entity.TransliteratedOtherEntityNames.TransliteratedOtherEntityName.{n}" for n in range(1, 6)),
]
L1_COLUMNS: Final = [
    *L1_REQUIRED,
    *_ALIASES,
    "Entity.LegalJurisdiction",
    "Entity.LegalAddress.Country",
    "Entity.HeadquartersAddress.Country",
    "Entity.EntityStatus",
    "Registration.LastUpdateDate",
]
RR_COLUMNS: Final = [
    *RR_REQUIRED,
    "Relationship.StartNode.NodeIDType",
    "Relationship.EndNode.NodeIDType",
    "Relationship.RelationshipStatus",
    "Relationship.Period.1.startDate",
    "Registration.LastUpdateDate",
    "Registration.ValidationSources",
]
LEI_PATTERN: Final = r"^[A-Z0-9]{18}[0-9]{2}$"
RECORD_URL: Final = "https://search.gleif.org/#/record/"
_TYPES: Final = {
    "IS_DIRECTLY_CONSOLIDATED_BY": ("ownership", "accounting consolidation: direct parent"),
    "IS_ULTIMATELY_CONSOLIDATED_BY": ("ownership", "accounting consolidation: ultimate parent"),
    "IS_INTERNATIONAL_BRANCH_OF": ("control", "international branch"),
}


def looks_like_l1(columns: list[str]) -> bool:
    return all(c in columns for c in L1_REQUIRED)


def looks_like_rr(columns: list[str]) -> bool:
    return all(c in columns for c in RR_REQUIRED)


def _bad(table: pa.Table, mask: pa.ChunkedArray, problems: list[Problem], what: str) -> pa.Table:
    mask = pc.fill_null(mask, True)
    if pc.any(mask).as_py():
        for row in table.filter(mask).column("_row").to_pylist():
            problems.append(Problem(f"row {row}", f"{what}; dropped"))
        table = table.filter(pc.invert(mask))
    return table


def _country(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """Two upper-case letters from ``US``/``US-DE``/``us``; null otherwise."""
    upper = pc.utf8_upper(pc.utf8_trim_whitespace(values))
    valid = pc.match_substring_regex(upper, r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
    return pc.if_else(
        pc.fill_null(valid, False), pc.utf8_slice_codeunits(upper, 0, 2), pa.scalar(None, pa.string())
    )


def _empty(table: pa.Table, column: str) -> pa.ChunkedArray:
    return pc.fill_null(pc.equal(pc.utf8_trim_whitespace(table.column(column)), ""), True)


def read_l1(path: Path, problems: list[Problem]) -> Iterator[dict[str, pa.Table]]:
    require(path, header(path), L1_REQUIRED, "GLEIF Level 1 (LEI-CDF CSV)")
    for _first, raw in batches(path, L1_COLUMNS, problems):
        table = _bad(
            raw,
            pc.invert(pc.match_substring_regex(raw.column("LEI"), LEI_PATTERN)),
            problems,
            "LEI is not 20 characters of A-Z/0-9 with check digits",
        )
        table = _bad(table, _empty(table, "Entity.LegalName"), problems, "no legal name")
        table = too_long(table, "Entity.LegalName", problems, "legal name")
        if not table.num_rows:
            continue
        lei = table.column("LEI")
        ids = pc.binary_join_element_wise("lei-", lei, "")
        legal = _country(table.column("Entity.LegalJurisdiction"))
        country = pc.coalesce(legal, _country(table.column("Entity.LegalAddress.Country")))
        hq = _country(table.column("Entity.HeadquartersAddress.Country"))
        control = pc.if_else(pc.fill_null(pc.not_equal(hq, country), True), hq, pa.scalar(None, pa.string()))
        status = table.column("Entity.EntityStatus")
        notes = pc.if_else(
            pc.fill_null(pc.equal(status, "INACTIVE"), False),
            pa.scalar("GLEIF: entity status INACTIVE"),
            pa.scalar(None, pa.string()),
        )
        n = table.num_rows
        entities = pa.table(
            {
                "id": ids,
                "schema": pa.array(["Company"] * n, pa.string()),
                "name": table.column("Entity.LegalName"),
                "country": country,
                "control_jurisdiction": control,
                "is_state": pa.array([False] * n),
                "notes": notes,
                "extra": pa.nulls(n, pa.string()),
                "record_id": lei,
                "source_date": pc.utf8_slice_codeunits(table.column("Registration.LastUpdateDate"), 0, 10),
                "source_url": pc.binary_join_element_wise(RECORD_URL, lei, ""),
                "line": table.column("_row"),
            },
            schema=ENTITY_SCHEMA,
        )
        name_ids: list[pa.ChunkedArray] = []
        name_values: list[pa.ChunkedArray] = []
        for column in ["Entity.LegalName", *_ALIASES]:
            values = table.column(column)
            keep = pc.invert(_empty(table, column))
            keep = pc.and_(keep, pc.fill_null(pc.less_equal(pc.utf8_length(values), 2_000), False))
            name_ids.append(ids.filter(keep))
            name_values.append(values.filter(keep))
        all_ids = pa.chunked_array([c for a in name_ids for c in a.chunks], pa.string())
        all_names = pa.chunked_array([c for a in name_values for c in a.chunks], pa.string())
        norms = pa.array([comparable(v) for v in all_names.to_pylist()], pa.string())
        names = pa.table({"entity_id": all_ids, "name": all_names, "norm": norms}, schema=NAME_SCHEMA)
        yield {"kg_entities": entities, "kg_names": names}


def read_rr(path: Path, problems: list[Problem]) -> Iterator[dict[str, pa.Table]]:
    require(path, header(path), RR_REQUIRED, "GLEIF Level 2 relationship (RR-CDF CSV)")
    direct_children: set[str] = set()
    ultimate: list[pa.Table] = []
    skipped: dict[str, int] = {}
    for _first, raw in batches(path, RR_COLUMNS, problems):
        table = raw
        for col in ("Relationship.StartNode.NodeID", "Relationship.EndNode.NodeID"):
            table = _bad(
                table,
                pc.invert(pc.match_substring_regex(table.column(col), LEI_PATTERN)),
                problems,
                f"{col} is not an LEI",
            )
        for col in ("Relationship.StartNode.NodeIDType", "Relationship.EndNode.NodeIDType"):
            kind = table.column(col)
            table = _bad(
                table,
                pc.and_(pc.is_valid(kind), pc.not_equal(pc.fill_null(kind, "LEI"), "LEI")),
                problems,
                f"{col} is not LEI",
            )
        rtype = table.column("Relationship.RelationshipType")
        known = pc.is_in(rtype, value_set=pa.array(list(_TYPES)))
        status = pc.fill_null(table.column("Relationship.RelationshipStatus"), "ACTIVE")
        active = pc.equal(status, "ACTIVE")
        for value in pc.fill_null(rtype.filter(pc.invert(known)), "(none)").to_pylist():
            skipped[f"type {value}"] = skipped.get(f"type {value}", 0) + 1
        skipped["inactive"] = skipped.get("inactive", 0) + int(
            pc.sum(pc.and_(known, pc.invert(active))).as_py() or 0
        )
        table = table.filter(pc.and_(known, active))
        if not table.num_rows:
            continue
        links = _links(table)
        is_direct = pc.equal(table.column("Relationship.RelationshipType"), "IS_DIRECTLY_CONSOLIDATED_BY")
        direct_children.update(links.filter(is_direct).column("asset_id").to_pylist())
        is_ultimate = pc.equal(table.column("Relationship.RelationshipType"), "IS_ULTIMATELY_CONSOLIDATED_BY")
        ultimate.append(links.filter(is_ultimate))
        yield {"kg_links": links.filter(pc.invert(is_ultimate))}
    if ultimate:
        rest = pa.concat_tables(ultimate)
        keep = pc.invert(
            pc.is_in(rest.column("asset_id"), value_set=pa.array(sorted(direct_children), pa.string()))
        )
        yield {"kg_links": rest.filter(keep)}
    for what, count in sorted(skipped.items()):
        if count:
            problems.append(
                Problem(
                    "",
                    f"{count} relationship record(s) skipped ({what}: not an ownership or control statement derisk reads)",
                )
            )


def _links(table: pa.Table) -> pa.Table:
    child = pc.binary_join_element_wise("lei-", table.column("Relationship.StartNode.NodeID"), "")
    parent = pc.binary_join_element_wise("lei-", table.column("Relationship.EndNode.NodeID"), "")
    rtype = table.column("Relationship.RelationshipType")
    kinds = {k: v[0] for k, v in _TYPES.items()}
    labels = {k: v[1] for k, v in _TYPES.items()}
    kind = pa.array([kinds[v] for v in rtype.to_pylist()], pa.string())
    label = pa.array([labels[v] for v in rtype.to_pylist()], pa.string())
    corroborated = pc.fill_null(
        pc.equal(table.column("Registration.ValidationSources"), "FULLY_CORROBORATED"), False
    )
    n = table.num_rows
    return pa.table(
        {
            "id": pc.binary_join_element_wise(
                "gleif-rr-", pc.binary_join_element_wise(child, parent, rtype, "-"), ""
            ),
            "kind": kind,
            "owner_id": parent,
            "asset_id": child,
            "share": pa.nulls(n, pa.float64()),
            "start": pc.utf8_slice_codeunits(table.column("Relationship.Period.1.startDate"), 0, 10),
            "end": pa.nulls(n, pa.string()),
            "confidence": pc.if_else(corroborated, pa.scalar("V"), pa.scalar("S")),
            "controlling": pa.array([True] * n),
            "control_type": label,
            "summary": pa.nulls(n, pa.string()),
            "record_id": pc.binary_join_element_wise(
                table.column("Relationship.StartNode.NodeID"), rtype, " "
            ),
            "source_date": pc.utf8_slice_codeunits(table.column("Registration.LastUpdateDate"), 0, 10),
            "source_url": pc.binary_join_element_wise(
                RECORD_URL, table.column("Relationship.StartNode.NodeID"), ""
            ),
            "line": table.column("_row"),
        },
        schema=LINK_SCHEMA,
    )


__all__ = ["HINT_SCHEMA", "looks_like_l1", "looks_like_rr", "read_l1", "read_rr"]
