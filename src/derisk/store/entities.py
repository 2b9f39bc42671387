"""Read access to the workspace tables of imported FollowTheMoney entities (written by Know).

The tables are defined and written by :mod:`derisk.know.ftmstore`; this module only reads them, as
plain rows, and imports nothing from ``derisk.know`` (store and know do not import each other).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb

from derisk.errors import StoreError
from derisk.store.workspace import Workspace


@dataclass(frozen=True)
class StoredEntity:
    """One imported FtM entity as stored: its JSON and where it came from."""

    data: dict[str, Any]
    origin_file: str = ""
    line: int = 0
    imported_at: str | None = None

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @property
    def schema(self) -> str:
        return str(self.data["schema"])


@dataclass(frozen=True)
class ImportRecord:
    import_id: str
    path: str
    digest: str
    entity_count: int
    imported_at: str


def _has_tables(ws: Workspace) -> bool:
    rows = ws.query("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'ftm_entities'")
    return bool(rows and rows[0][0])


def load_imported(ws: Workspace) -> list[StoredEntity]:
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
        StoredEntity(json.loads(data), origin or "", int(line or 0), (when or "")[:10] or None)
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
