"""Writing one import into the graph tables: all of it in one transaction, or nothing.

The reader of a format (:mod:`derisk.know.gleif`, :mod:`~derisk.know.as2org` …) streams Arrow
batches of rows and collects the problems of single records (dropped, reported). This module then
checks what only the whole file shows, in DuckDB: ids used twice (the first record is kept), links to
entities that exist nowhere (dropped), cycles of control (the links closing them dropped). When
nothing usable remains, the transaction is rolled back and an :class:`InputError` lists every problem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

from derisk.errors import InputError, Problem
from derisk.know.graphdb import SCHEMAS, GraphDatabase, ensure_tables

MAX_SHOWN = 200


@dataclass(frozen=True)
class WriteResult:
    import_id: str
    entities: int
    links: int
    problems: tuple[Problem, ...]


def _insert(con: object, table: str, part: pa.Table, import_id: str) -> None:
    schema = SCHEMAS[table]
    data = part.select(schema.names).cast(schema)
    con.register("_kg_part", data)  # type: ignore[attr-defined]
    try:
        con.execute(  # type: ignore[attr-defined]
            f"INSERT INTO {table} BY NAME SELECT *, ? AS import_id FROM _kg_part", [import_id]
        )
    finally:
        con.unregister("_kg_part")  # type: ignore[attr-defined]


def _dedupe(con: object, table: str, import_id: str, label: str) -> list[Problem]:
    rows = con.execute(  # type: ignore[attr-defined]
        f"""SELECT id, list(line ORDER BY line) FROM {table} WHERE import_id = ?
            GROUP BY id HAVING count(*) > 1 ORDER BY min(line) LIMIT {MAX_SHOWN + 1}""",
        [import_id],
    ).fetchall()
    if not rows:
        return []
    con.execute(  # type: ignore[attr-defined]
        f"""DELETE FROM {table} WHERE import_id = ? AND (id, line) IN (
              SELECT id, line FROM (
                SELECT id, line, row_number() OVER (PARTITION BY id ORDER BY line) AS n
                FROM {table} WHERE import_id = ?) WHERE n > 1)""",
        [import_id, import_id],
    )
    return [
        Problem(f"line {lines[1]}", f"{label} id {ident!r} already used on line {lines[0]}; first kept")
        for ident, lines in rows
    ]


def _dangling(con: object, import_id: str) -> list[Problem]:
    """Links of this import whose owner or asset is neither imported nor curated: dropped."""
    rows = con.execute(  # type: ignore[attr-defined]
        """SELECT l.line, l.id, CASE WHEN o.id IS NULL THEN l.owner_id ELSE l.asset_id END
           FROM kg_links l
           LEFT JOIN (SELECT id FROM kg_entities UNION SELECT id FROM _kg_known) o ON o.id = l.owner_id
           LEFT JOIN (SELECT id FROM kg_entities UNION SELECT id FROM _kg_known) a ON a.id = l.asset_id
           WHERE l.import_id = ? AND (o.id IS NULL OR a.id IS NULL) ORDER BY l.line""",
        [import_id],
    ).fetchall()
    if rows:
        con.execute(  # type: ignore[attr-defined]
            """DELETE FROM kg_links WHERE import_id = ? AND (
                 owner_id NOT IN (SELECT id FROM kg_entities UNION SELECT id FROM _kg_known)
                 OR asset_id NOT IN (SELECT id FROM kg_entities UNION SELECT id FROM _kg_known))""",
            [import_id],
        )
    return [
        Problem(f"line {line}", f"link {ident!r} refers to {ref!r}, which is not in the graph; link dropped")
        for line, ident, ref in rows
    ]


def _cycles(con: object, import_id: str) -> list[Problem]:
    """Links of this import that close a cycle of control (A controls B controls A): dropped."""
    table: pa.Table = con.sql(  # type: ignore[attr-defined]
        """SELECT id, owner_id, asset_id, import_id = ? AS mine, line FROM kg_links
           WHERE coalesce(controlling, share > 50, kind IN ('control', 'state'))
             AND kind <> 'directorship' ORDER BY mine, line""",
        params=[import_id],
    ).to_arrow_table()
    problems: list[Problem] = []
    closing: list[str] = []
    ids = table.column("id").to_pylist()
    owners = table.column("owner_id").to_pylist()
    assets = table.column("asset_id").to_pylist()
    mine = table.column("mine").to_pylist()
    lines = table.column("line").to_pylist()
    # Links are taken in order (earlier imports first, then this file's lines); a new link closes a
    # cycle when its asset is reachable upwards from its owner through the links kept so far.
    up: dict[str, list[str]] = {}
    for ident, owner, asset, new, line in zip(ids, owners, assets, mine, lines, strict=True):
        seen = {asset}
        stack = [owner]
        cyclic = False
        while stack:
            node = stack.pop()
            if node in seen:
                if node == asset:
                    cyclic = True
                    break
                continue
            seen.add(node)
            stack.extend(up.get(node, ()))
        if cyclic and new:
            closing.append(ident)
            problems.append(
                Problem(
                    f"line {line}",
                    f"link {ident!r} ({owner} over {asset}) closes a cycle of control; dropped",
                )
            )
            continue
        up.setdefault(asset, []).append(owner)
    if closing:
        con.register("_kg_cyclic", pa.table({"id": closing}))  # type: ignore[attr-defined]
        try:
            con.execute(  # type: ignore[attr-defined]
                "DELETE FROM kg_links WHERE import_id = ? AND id IN (SELECT id FROM _kg_cyclic)", [import_id]
            )
        finally:
            con.unregister("_kg_cyclic")  # type: ignore[attr-defined]
    return problems


def write_import(
    db: GraphDatabase,
    batches: Iterable[dict[str, pa.Table]],
    *,
    import_id: str,
    path: str,
    fmt: str,
    digest: str,
    problems: list[Problem],
    known_ids: Iterable[str],
) -> WriteResult:
    """Insert the batches, check the whole import, record it; roll back when nothing usable remains.

    ``problems`` is the reader's list: it is complete only once ``batches`` is exhausted.
    """
    now = dt.datetime.now(dt.UTC)
    with db.transaction() as con:
        ensure_tables(con)
        for table in [*SCHEMAS, "kg_tokens"]:  # importing the same file again replaces its earlier import
            con.execute(f"DELETE FROM {table} WHERE import_id = ?", [import_id])
        con.execute("DELETE FROM kg_imports WHERE import_id = ?", [import_id])
        for batch in batches:
            for table, part in batch.items():
                if part.num_rows:
                    _insert(con, table, part, import_id)
        found = [*problems]
        found += _dedupe(con, "kg_entities", import_id, "entity")
        found += _dedupe(con, "kg_links", import_id, "link")
        # The newest statement about an id wins: rows of earlier imports with the same ids go.
        con.execute(
            "DELETE FROM kg_entities WHERE import_id <> ? AND id IN (SELECT id FROM kg_entities WHERE import_id = ?)",
            [import_id, import_id],
        )
        for table in ("kg_names", "kg_hints", "kg_tokens"):
            con.execute(
                f"DELETE FROM {table} WHERE import_id <> ? AND entity_id IN"
                " (SELECT id FROM kg_entities WHERE import_id = ?)",
                [import_id, import_id],
            )
        con.execute(
            "DELETE FROM kg_links WHERE import_id <> ? AND id IN (SELECT id FROM kg_links WHERE import_id = ?)",
            [import_id, import_id],
        )
        con.register("_kg_known", pa.table({"id": pa.array(sorted(set(known_ids)), type=pa.string())}))
        try:
            found += _dangling(con, import_id)
        finally:
            con.unregister("_kg_known")
        found += _cycles(con, import_id)
        entities = int(
            con.execute("SELECT count(*) FROM kg_entities WHERE import_id = ?", [import_id]).fetchall()[0][0]
        )
        links = int(
            con.execute("SELECT count(*) FROM kg_links WHERE import_id = ?", [import_id]).fetchall()[0][0]
        )
        hints = int(
            con.execute("SELECT count(*) FROM kg_hints WHERE import_id = ?", [import_id]).fetchall()[0][0]
        )
        con.execute(
            """INSERT INTO kg_tokens
               SELECT token, entity_id, norm, ? FROM (
                 SELECT DISTINCT unnest(string_split(norm, ' ')) AS token, entity_id, norm
                 FROM kg_names WHERE import_id = ?)
               WHERE length(token) >= 2 ORDER BY token""",
            [import_id, import_id],
        )
        if entities + links + hints == 0:
            shown = [str(p) for p in found[:MAX_SHOWN]]
            if len(found) > MAX_SHOWN:
                shown.append(f"and {len(found) - MAX_SHOWN} more problems")
            if not shown:
                shown = ["no usable records in the file"]
            raise InputError(
                f"cannot import as {fmt}: nothing usable ({len(found)} problems)", source=path, details=shown
            )
        con.execute(
            "INSERT INTO kg_imports VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [import_id, path, fmt, digest, entities, links, len(found), now],
        )
    return WriteResult(import_id, entities, links, tuple(found))
