"""Read access to the workspace tables of imported FollowTheMoney entities (written by Know).

The tables are defined and written by :mod:`derisk.know.ftmstore`; this module only reads them, as
plain rows, and imports nothing from ``derisk.know`` (store and know do not import each other).
"""

from __future__ import annotations

from dataclasses import dataclass

from derisk.store.workspace import Workspace


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


def list_imports(ws: Workspace) -> list[ImportRecord]:
    if not _has_tables(ws):
        return []
    rows = ws.query(
        "SELECT import_id, path, digest, entity_count, CAST(imported_at AS VARCHAR) FROM ftm_imports"
        " ORDER BY imported_at"
    )
    return [ImportRecord(str(a), str(b), str(c), int(d), str(e)) for a, b, c, d, e in rows]
