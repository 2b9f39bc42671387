"""The FollowTheMoney entities a user imported, kept exactly as checked (for a lossless export).

``ftm_entities`` keeps each imported entity's JSON keyed by its FtM id (importing an entity again
replaces it); ``ftm_imports`` records each import (file, digest, count, time). Writes happen in one
transaction: all or nothing. The workspace passes its database in (:class:`GraphDatabase`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa

from derisk.errors import StoreError
from derisk.know.graphdb import GraphDatabase

if TYPE_CHECKING:  # the FtM model and the domain splitter load only when FtM data is there
    from derisk.know.ftm import Record

_DDL: Final = (
    """CREATE TABLE IF NOT EXISTS ftm_entities (
        id VARCHAR PRIMARY KEY, schema VARCHAR NOT NULL, data VARCHAR NOT NULL,
        origin_file VARCHAR, line INTEGER, import_id VARCHAR, imported_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS ftm_imports (
        import_id VARCHAR PRIMARY KEY, path VARCHAR, digest VARCHAR, entity_count BIGINT,
        imported_at TIMESTAMPTZ)""",
)


def _has_tables(db: GraphDatabase) -> bool:
    rows = db.con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'ftm_entities'").fetchall()
    return bool(rows and rows[0][0])


def load_records(db: GraphDatabase) -> list[Record]:
    """Every imported FtM entity, in id order (empty when nothing was ever imported)."""
    if not _has_tables(db):
        return []
    rows = db.con.execute(
        "SELECT data, origin_file, line, CAST(imported_at AS VARCHAR) FROM ftm_entities ORDER BY id"
    ).fetchall()
    if not rows:
        return []
    from derisk.know.ftm import Record

    return [
        Record(json.loads(data), origin or "", int(line or 0), (when or "")[:10] or None)
        for data, origin, line, when in rows
    ]


def fingerprint(db: GraphDatabase) -> str:
    if not _has_tables(db):
        return ""
    rows = db.con.execute(
        "SELECT import_id, digest FROM ftm_imports ORDER BY imported_at, import_id"
    ).fetchall()
    return ";".join(f"{a}:{b}" for a, b in rows)


def imported_ids(db: GraphDatabase) -> set[str]:
    if not _has_tables(db):
        return set()
    return {str(row[0]) for row in db.con.execute("SELECT id FROM ftm_entities").fetchall()}


def save_records(
    db: GraphDatabase, records: Sequence[Record], *, import_id: str, path: str, digest: str
) -> int:
    """Store ``records`` (replacing entities with the same id) and the import, in one transaction."""
    import duckdb

    from derisk.know.ftm import dumps

    now = dt.datetime.now(dt.UTC)
    table = pa.table(
        {
            "id": [r.id for r in records],
            "schema": [r.schema for r in records],
            "data": [dumps(r.data) for r in records],
            "origin_file": [r.origin_file for r in records],
            "line": pa.array([r.line for r in records], type=pa.int32()),
            "import_id": [import_id] * len(records),
            "imported_at": pa.array([now] * len(records), type=pa.timestamp("us", tz="UTC")),
        }
    )
    try:
        with db.transaction() as con:
            for ddl in _DDL:
                con.execute(ddl)
            con.register("_derisk_ftm", table)
            try:
                con.execute("DELETE FROM ftm_entities WHERE id IN (SELECT id FROM _derisk_ftm)")
                con.execute("INSERT INTO ftm_entities SELECT * FROM _derisk_ftm")
            finally:
                con.unregister("_derisk_ftm")
            con.execute(
                "INSERT OR REPLACE INTO ftm_imports VALUES (?, ?, ?, ?, ?)",
                [import_id, path, digest, len(records), now],
            )
    except duckdb.Error as exc:
        raise StoreError(f"import failed, nothing was changed: {exc}", source=str(db.path)) from None
    return len(records)


def raw(db: GraphDatabase) -> list[dict[str, Any]]:
    return [r.data for r in load_records(db)]
