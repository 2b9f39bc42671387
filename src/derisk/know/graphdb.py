"""The imported part of the control graph, kept as DuckDB tables in the workspace (not Python objects).

Know owns these tables; the workspace only passes its database in (:class:`GraphDatabase`, which
:class:`derisk.store.workspace.Workspace` satisfies), so ``know`` never imports ``store`` and
``store`` never imports ``know``.

Tables (one row per statement, each with its provenance: import id → file and SHA-256 digest,
record id in the file, date the record states):

* ``kg_entities``: one row per organisation, public body or person (id, schema, name, countries …).
* ``kg_names``: every name and alias with its comparable form (:func:`derisk.know.names.comparable`),
  for the fuzzy search.
* ``kg_hints``: AS numbers and registrable domains an entity operates (what attribution matches).
* ``kg_links``: ownership and control statements (owner over asset).
* ``kg_imports``: one row per import (file, format, digest, counts, warnings, time).
* ``kg_documents``: evidence attached with ``derisk evidence add`` (FtM ``Article`` and
  ``Documentation`` entities as JSON).

Only what attribution and resolution need is ever materialised in Python: entities carrying hints
and their ownership ancestors (a recursive CTE), plus the entities a search or ``entity show`` asks for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Final, Protocol

import pyarrow as pa

ENTITY_SCHEMA: Final = pa.schema(
    [
        ("id", pa.string()),
        ("schema", pa.string()),
        ("name", pa.string()),
        ("country", pa.string()),
        ("control_jurisdiction", pa.string()),
        ("is_state", pa.bool_()),
        ("notes", pa.string()),
        ("extra", pa.string()),
        ("record_id", pa.string()),
        ("source_date", pa.string()),
        ("source_url", pa.string()),
        ("line", pa.int64()),
    ]
)
NAME_SCHEMA: Final = pa.schema([("entity_id", pa.string()), ("name", pa.string()), ("norm", pa.string())])
HINT_SCHEMA: Final = pa.schema([("entity_id", pa.string()), ("kind", pa.string()), ("value", pa.string())])
LINK_SCHEMA: Final = pa.schema(
    [
        ("id", pa.string()),
        ("kind", pa.string()),
        ("owner_id", pa.string()),
        ("asset_id", pa.string()),
        ("share", pa.float64()),
        ("start", pa.string()),
        ("end", pa.string()),
        ("confidence", pa.string()),
        ("controlling", pa.bool_()),
        ("control_type", pa.string()),
        ("summary", pa.string()),
        ("record_id", pa.string()),
        ("source_date", pa.string()),
        ("source_url", pa.string()),
        ("line", pa.int64()),
    ]
)
SCHEMAS: Final = {
    "kg_entities": ENTITY_SCHEMA,
    "kg_names": NAME_SCHEMA,
    "kg_hints": HINT_SCHEMA,
    "kg_links": LINK_SCHEMA,
}
_SQL_TYPES: Final = {
    pa.string(): "VARCHAR",
    pa.bool_(): "BOOLEAN",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
}
#: The column every statement table has in addition to its Arrow schema: which import wrote it.
_DDL: Final = [
    *(
        f"CREATE TABLE IF NOT EXISTS {table} ("
        + ", ".join(f'"{f.name}" {_SQL_TYPES[f.type]}' for f in schema)
        + ", import_id VARCHAR)"
        for table, schema in SCHEMAS.items()
    ),
    # One row per word of each comparable name (with the name), ordered by word within an import,
    # so a search reads only the row groups of its words.
    "CREATE TABLE IF NOT EXISTS kg_tokens (token VARCHAR, entity_id VARCHAR, norm VARCHAR, import_id VARCHAR)",
    # Point lookups by id (a search's hits, ``entity show``): string statistics cannot skip row
    # groups for ids sharing a prefix such as "lei-5299", an index can.
    "CREATE INDEX IF NOT EXISTS kg_entities_id ON kg_entities (id)",
    """CREATE TABLE IF NOT EXISTS kg_imports (
        import_id VARCHAR PRIMARY KEY, path VARCHAR, format VARCHAR, digest VARCHAR, entities BIGINT,
        links BIGINT, warnings BIGINT, imported_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS kg_documents (
        id VARCHAR PRIMARY KEY, schema VARCHAR, entity_id VARCHAR, document_id VARCHAR, data VARCHAR,
        added_at TIMESTAMPTZ)""",
]


def empty(schema: pa.Schema) -> pa.Table:
    """An empty table of ``schema`` (``Schema.empty_table`` would import pandas: a second of start-up)."""
    return pa.Table.from_batches([], schema=schema)


class GraphDatabase(Protocol):
    """What know needs from a workspace: its path, its DuckDB connection and a transaction."""

    path: Path

    @property
    def con(self) -> Any: ...

    def transaction(self) -> AbstractContextManager[Any]: ...


def has_tables(db: GraphDatabase) -> bool:
    rows = db.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'kg_entities'").fetchall()
    return bool(rows and rows[0][0])


def ensure_tables(con: Any) -> None:
    for ddl in _DDL:
        con.execute(ddl)


def arrow(con: Any, sql: str, params: list[Any] | None = None) -> pa.Table:
    """A query's result as an Arrow table."""
    table: pa.Table = con.sql(sql, params=params or None).to_arrow_table()
    return table


def fingerprint(db: GraphDatabase) -> str:
    """Which imports the graph tables hold (import ids and digests, in order), as one string."""
    if not has_tables(db):
        return ""
    rows = db.con.execute(
        "SELECT import_id, digest FROM kg_imports ORDER BY imported_at, import_id"
    ).fetchall()
    docs = db.con.execute("SELECT count(*), max(CAST(added_at AS VARCHAR)) FROM kg_documents").fetchall()
    return ";".join(f"{a}:{b}" for a, b in rows) + f"|docs:{docs[0][0]}:{docs[0][1]}"


_SUBGRAPH: Final = """
WITH RECURSIVE up(id) AS (
    SELECT id FROM _kg_seeds
    UNION
    SELECT l.owner_id FROM kg_links l JOIN up ON l.asset_id = up.id
)
SELECT id FROM up
"""


def _range(column: str, prefix: str) -> str:
    """``column`` starts with ``prefix`` (an ASCII id prefix of our importers), as a range, so that
    DuckDB skips the row groups of other imports by their min/max statistics."""
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return f"({column} >= '{prefix}' AND {column} < '{upper}')"


def _not_prefixed(column: str, prefixes: tuple[str, ...]) -> str:
    """A SQL condition: ``column`` starts with none of ``prefixes`` (literals: ids of our importers)."""
    if not prefixes:
        return "TRUE"
    return " AND ".join(f"NOT {_range(column, p)}" for p in prefixes if "'" not in p)


def _prefixed(column: str, prefixes: tuple[str, ...]) -> str:
    return "(" + " OR ".join(_range(column, p) for p in prefixes if "'" not in p) + ")"


def subgraph(
    db: GraphDatabase, seeds: list[str] | None, *, except_prefixes: tuple[str, ...] = ()
) -> dict[str, pa.Table]:
    """Entities (with names and hints) and links for ``seeds`` and all their ownership ancestors.

    ``seeds`` None: every entity that carries an attribution hint, except those whose id starts
    with one of ``except_prefixes`` (registration records, looked up per AS instead).
    """
    if not has_tables(db):
        return {name: empty(schema) for name, schema in SCHEMAS.items()}
    con = db.con
    try:
        hinted = (
            "UNION SELECT DISTINCT entity_id FROM kg_hints WHERE "
            + _not_prefixed("entity_id", except_prefixes)
            if seeds is None
            else ""
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _kg_seeds AS SELECT unnest(?::VARCHAR[]) AS id {hinted}",
            [list(seeds or [])],
        )
        owned = con.execute("SELECT count(*) FROM kg_links l SEMI JOIN _kg_seeds s ON l.asset_id = s.id")
        if owned.fetchall()[0][0]:
            con.execute(f"CREATE OR REPLACE TEMP TABLE _kg_ids AS {_SUBGRAPH}")
        else:  # nothing owns the seeds (registration records): no ancestors to walk up to
            con.execute("CREATE OR REPLACE TEMP TABLE _kg_ids AS SELECT DISTINCT id FROM _kg_seeds")
        count, low, high = con.execute("SELECT count(*), min(id), max(id) FROM _kg_ids").fetchall()[0]
        if not count:
            # Nothing carries a hint (GLEIF alone): no need to read the large tables at all.
            return {name: empty(schema) for name, schema in SCHEMAS.items()}
        # The ids' range lets DuckDB skip the row groups of other imports (min/max statistics):
        # a few registration records are read without scanning 2.5 million GLEIF rows.
        span = [low, high]
        out = {
            "kg_entities": arrow(
                con,
                "SELECT e.* FROM kg_entities e SEMI JOIN _kg_ids USING (id) WHERE e.id BETWEEN ? AND ?",
                span,
            ),
            "kg_names": arrow(
                con,
                "SELECT n.* EXCLUDE (import_id) FROM kg_names n"
                " SEMI JOIN _kg_ids ON n.entity_id = _kg_ids.id WHERE n.entity_id BETWEEN ? AND ?",
                span,
            ),
            "kg_hints": arrow(
                con,
                "SELECT h.* EXCLUDE (import_id) FROM kg_hints h"
                " SEMI JOIN _kg_ids ON h.entity_id = _kg_ids.id WHERE h.entity_id BETWEEN ? AND ?",
                span,
            ),
            "kg_links": arrow(
                con,
                "SELECT l.* FROM kg_links l SEMI JOIN _kg_ids ON l.asset_id = _kg_ids.id"
                " WHERE l.asset_id BETWEEN ? AND ?",
                span,
            ),
        }
    finally:
        con.execute("DROP TABLE IF EXISTS _kg_seeds")
        con.execute("DROP TABLE IF EXISTS _kg_ids")
    return out


def registry_claims(
    db: GraphDatabase, prefixes: tuple[str, ...], asns: list[int], domains: list[str]
) -> list[tuple[str, str, str]]:
    """(entity id, kind, value) of the registration records (ids starting with ``prefixes``) that
    claim one of ``asns`` or ``domains``: one join on ``kg_hints``, whatever the size of the table."""
    if not (asns or domains) or not prefixes:
        return []
    rows = _rows(
        db,
        f"""SELECT h.entity_id, h.kind, h.value FROM kg_hints h
            SEMI JOIN (SELECT 'asn' AS kind, unnest(?::VARCHAR[]) AS value
                       UNION ALL SELECT 'domain', unnest(?::VARCHAR[])) w
              ON h.kind = w.kind AND h.value = w.value
            WHERE {_prefixed("h.entity_id", prefixes)}
            ORDER BY h.entity_id, h.kind, h.value""",
        [[str(a) for a in asns], list(domains)],
    )
    return rows or []


def registry_named(
    db: GraphDatabase, prefixes: tuple[str, ...], norms: list[str]
) -> list[tuple[str, str, str | None]]:
    """(entity id, comparable name, country) of the registration records carrying attribution hints
    whose own name (not an alias), in its comparable form, is one of ``norms``."""
    if not norms or not prefixes:
        return []
    rows = _rows(
        db,
        f"""SELECT e.id, n.norm, e.country FROM kg_entities e
            JOIN kg_names n ON n.entity_id = e.id AND n.name = e.name
            SEMI JOIN (SELECT unnest(?::VARCHAR[]) AS norm) w ON n.norm = w.norm
            WHERE {_prefixed("e.id", prefixes)}
              AND e.id IN (SELECT entity_id FROM kg_hints WHERE {_prefixed("entity_id", prefixes)})
            ORDER BY e.id""",
        [list(norms)],
    )
    return [(str(a), str(b), None if c is None else str(c)) for a, b, c in rows or []]


def registry_sharing_words(db: GraphDatabase, prefixes: tuple[str, ...], words: list[str]) -> list[str]:
    """Ids of the registration records carrying attribution hints that have one of ``words`` in a
    comparable name (``kg_tokens``): the candidates an AS organisation name could be matched to."""
    if not words or not prefixes:
        return []
    rows = _rows(
        db,
        f"""SELECT DISTINCT t.entity_id FROM kg_tokens t
            SEMI JOIN (SELECT unnest(?::VARCHAR[]) AS token) w ON t.token = w.token
            WHERE {_prefixed("t.entity_id", prefixes)}
              AND t.entity_id IN (SELECT entity_id FROM kg_hints WHERE {_prefixed("entity_id", prefixes)})
            ORDER BY t.entity_id""",
        [list(words)],
    )
    return [str(r[0]) for r in rows or []]


def has_registry(db: GraphDatabase, formats: tuple[str, ...]) -> bool:
    """Whether a registration dump (one of ``formats``) was imported."""
    rows = _rows(
        db, "SELECT count(*) FROM kg_imports WHERE format IN (SELECT unnest(?::VARCHAR[]))", [list(formats)]
    )
    return bool(rows and rows[0][0])


def name_candidates(
    db: GraphDatabase, wanted: str, limit: int = 300, budget: int = 5_000
) -> list[tuple[str, str]]:
    """(entity id, comparable name) pairs worth scoring for the comparable query ``wanted``.

    A pre-filter in DuckDB over ``kg_tokens`` (every word of every comparable name, sorted by word
    so that a lookup reads only its row groups): the query's words are looked up rarest first until
    about ``budget`` rows are reached; a word found nowhere (a typo) is looked up by its first three
    letters instead. Names sharing the most of those words come first; rapidfuzz then scores the
    few hundred candidates (:mod:`derisk.know.names`).
    """
    words = sorted({w for w in wanted.split() if len(w) >= 2})[:8]
    if not words:
        return []
    con = db.con
    counted = _rows(
        db,
        " UNION ALL ".join("SELECT ? AS w, count(*) FROM kg_tokens WHERE token = ?" for _ in words),
        [x for w in words for x in (w, w)],
    )
    if counted is None:  # nothing was ever imported
        return []
    counts = dict(counted)
    parts: list[str] = []
    params: list[Any] = []
    used = 0
    for word in sorted(words, key=lambda w: (counts.get(w, 0), w)):
        found = int(counts.get(word, 0))
        if found == 0 and len(word) >= 4:
            parts.append("SELECT entity_id, norm, 1 AS w FROM kg_tokens WHERE token >= ? AND token < ?")
            params += [word[:3], word[:3] + "\uffff"]
        elif found and (used < budget or not parts):
            parts.append("SELECT entity_id, norm, 3 AS w FROM kg_tokens WHERE token = ?")
            params.append(word)
            used += found
    if not parts:
        return []
    rows = con.execute(
        f"""SELECT entity_id, norm FROM ({" UNION ALL ".join(parts)})
            GROUP BY entity_id, norm ORDER BY sum(w) DESC, entity_id LIMIT ?""",
        [*params, limit],
    ).fetchall()
    return [(str(a), str(b)) for a, b in rows]


def entity_rows(db: GraphDatabase, ids: list[str]) -> pa.Table:
    """The ``kg_entities`` rows of ``ids`` (through the index on id)."""
    import duckdb

    if not ids:
        return empty(ENTITY_SCHEMA)
    try:
        return arrow(db.con, "SELECT * FROM kg_entities WHERE id IN (SELECT unnest(?))", [list(ids)])
    except duckdb.CatalogException:
        return empty(ENTITY_SCHEMA)


def _rows(db: GraphDatabase, sql: str, params: list[Any]) -> list[tuple[Any, ...]] | None:
    """The query's rows, or None when its table does not exist (no import yet): one round trip on
    the search path instead of a catalogue lookup first."""
    import duckdb

    try:
        rows: list[tuple[Any, ...]] = db.con.execute(sql, params).fetchall()
    except duckdb.CatalogException:
        return None
    return rows


def exists(db: GraphDatabase, entity_id: str) -> bool:
    if not has_tables(db):
        return False
    rows = db.con.execute("SELECT 1 FROM kg_entities WHERE id = ? LIMIT 1", [entity_id]).fetchall()
    return bool(rows)


def existing(db: GraphDatabase, ids: list[str]) -> set[str]:
    """Which of ``ids`` are imported entities."""
    if not ids or not has_tables(db):
        return set()
    rows = db.con.execute("SELECT id FROM kg_entities WHERE id IN (SELECT unnest(?))", [ids]).fetchall()
    return {str(r[0]) for r in rows}


def import_rows(db: GraphDatabase) -> list[tuple[Any, ...]]:
    """(import id, path, format, digest, entities, links, warnings, time) per import, oldest first."""
    rows = _rows(
        db,
        "SELECT import_id, path, format, digest, entities, links, warnings, CAST(imported_at AS VARCHAR)"
        " FROM kg_imports ORDER BY imported_at",
        [],
    )
    return rows or []


def documents(db: GraphDatabase, entity_ids: list[str] | None = None) -> list[tuple[str, str, str, str]]:
    """Evidence rows (schema, entity id, document id, FtM JSON), for some entities or all."""
    if not has_tables(db):
        return []
    sql = "SELECT schema, coalesce(entity_id, ''), coalesce(document_id, ''), data FROM kg_documents"
    params: list[Any] = []
    if entity_ids is not None:
        sql += " WHERE schema <> 'Documentation' OR entity_id IN (SELECT unnest(?))"
        params.append(entity_ids)
    rows = db.con.execute(sql + " ORDER BY added_at, id", params).fetchall()
    return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]


def iter_entity_pages(db: GraphDatabase, page: int = 50_000) -> Iterator[pa.Table]:
    """Every imported entity row, a page at a time (for listing and exporting)."""
    if not has_tables(db):
        return
    reader = db.con.sql("SELECT * EXCLUDE (import_id) FROM kg_entities ORDER BY id").to_arrow_reader(page)
    for batch in reader:
        yield pa.Table.from_batches([batch])
