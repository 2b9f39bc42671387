"""The workspace tables of Know: FollowTheMoney entities a user imported, and the imports themselves.

``ftm_entities`` keeps each imported entity's JSON exactly as checked (so an export gives back what
was imported), keyed by its FtM id: importing an entity again replaces it. ``ftm_imports`` records
each import (file, digest, count, time). Writes happen in one transaction: all or nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from derisk.errors import StoreError
from derisk.know.ftm import Record, dumps
from derisk.store.workspace import Workspace, registered

_DDL = (
    """CREATE TABLE IF NOT EXISTS ftm_entities (
        id VARCHAR PRIMARY KEY, schema VARCHAR NOT NULL, data VARCHAR NOT NULL,
        origin_file VARCHAR, line INTEGER, import_id VARCHAR, imported_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS ftm_imports (
        import_id VARCHAR PRIMARY KEY, path VARCHAR, digest VARCHAR, entity_count BIGINT,
        imported_at TIMESTAMPTZ)""",
)


@dataclass(frozen=True)
class ImportRecord:
    import_id: str
    path: str
    digest: str
    entity_count: int
    imported_at: str


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in _DDL:
        con.execute(ddl)


def _has_tables(ws: Workspace) -> bool:
    rows = ws.query("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'ftm_entities'")
    return bool(rows and rows[0][0])


def load_imported(ws: Workspace) -> list[Record]:
    """Every imported FtM entity, in id order (empty when nothing was ever imported)."""
    if not _has_tables(ws):
        return []
    try:
        rows = ws.query(
            "SELECT data, origin_file, line, CAST(imported_at AS VARCHAR) FROM ftm_entities ORDER BY id"
        )
    except duckdb.Error as exc:
        raise StoreError(f"cannot read imported entities: {exc}", source=str(ws.path)) from None
    return [
        Record(json.loads(data), origin or "", int(line or 0), (when or "")[:10] or None)
        for data, origin, line, when in rows
    ]


def imported_ids(ws: Workspace) -> set[str]:
    if not _has_tables(ws):
        return set()
    return {str(row[0]) for row in ws.query("SELECT id FROM ftm_entities")}


def list_imports(ws: Workspace) -> list[ImportRecord]:
    if not _has_tables(ws):
        return []
    rows = ws.query(
        "SELECT import_id, path, digest, entity_count, CAST(imported_at AS VARCHAR) FROM ftm_imports"
        " ORDER BY imported_at"
    )
    return [ImportRecord(str(a), str(b), str(c), int(d), str(e)) for a, b, c, d, e in rows]


def save_import(ws: Workspace, records: Sequence[Record], *, import_id: str, path: str, digest: str) -> int:
    """Store ``records`` (replacing entities with the same id) and the import, in one transaction."""
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
        with ws.transaction() as con:
            ensure_tables(con)
            with registered(con, "_derisk_ftm", table):
                con.execute("DELETE FROM ftm_entities WHERE id IN (SELECT id FROM _derisk_ftm)")
                con.execute("INSERT INTO ftm_entities SELECT * FROM _derisk_ftm")
            con.execute(
                "INSERT OR REPLACE INTO ftm_imports VALUES (?, ?, ?, ?, ?)",
                [import_id, path, digest, len(records), now],
            )
    except duckdb.Error as exc:
        raise StoreError(f"import failed, nothing was changed: {exc}", source=str(ws.path)) from None
    return len(records)
