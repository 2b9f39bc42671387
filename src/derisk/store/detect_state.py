"""The incremental detection state in the workspace: what :mod:`derisk.detect.incremental` keeps
between the batches of ``derisk watch``, written in the batch's own transaction.

``detect_state_keys`` holds one JSON document per key (aggregates, alert lists, the state's own
counters under ``meta``), replaced key by key when it changed (``INSERT OR REPLACE`` on the primary
key, so a batch writes what it touched, not the whole state); ``detect_state_names`` holds the
distinct DNS query names per registrable domain, appended as new ones are seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import duckdb
import pyarrow as pa

from derisk.errors import StoreError
from derisk.store.workspace import registered

_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS detect_state_keys (key VARCHAR PRIMARY KEY, doc VARCHAR)",
    "CREATE TABLE IF NOT EXISTS detect_state_names (domain VARCHAR, name VARCHAR, length DOUBLE, entropy DOUBLE)",
)
_TABLES: Final = ("detect_state_keys", "detect_state_names")


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return bool(rows and rows[0][0])


def read_docs(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Every (key, JSON document) stored; empty when no state was stored yet."""
    if not _exists(con, "detect_state_keys"):
        return []
    try:
        return [(str(k), str(d)) for k, d in con.execute("SELECT key, doc FROM detect_state_keys").fetchall()]
    except duckdb.Error as exc:
        raise StoreError(f"could not read the detection state: {exc}") from None


def read_doc(con: duckdb.DuckDBPyConnection, key: str) -> str | None:
    """The document stored under ``key`` (a primary-key lookup), or None."""
    if not _exists(con, "detect_state_keys"):
        return None
    try:
        rows = con.execute("SELECT doc FROM detect_state_keys WHERE key = ?", [key]).fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"could not read the detection state: {exc}") from None
    return str(rows[0][0]) if rows else None


def read_names(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, float, float]]:
    """The DNS names stored, in the order they were first seen."""
    if not _exists(con, "detect_state_names"):
        return []
    try:
        rows = con.execute("SELECT domain, name, length, entropy FROM detect_state_names").fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"could not read the detection state: {exc}") from None
    return [(str(d), str(n), float(ln), float(h)) for d, n, ln, h in rows]


def write(
    con: duckdb.DuckDBPyConnection,
    docs: Iterable[tuple[str, str]],
    names: list[tuple[str, str, float, float]],
    *,
    clear: bool = False,
    delete: list[str] | None = None,
) -> None:
    """Replace the documents of these keys, delete those of ``delete``, and append these names (after
    deleting everything when ``clear``), in the transaction ``con`` holds."""
    keys, values = [], []
    for k, d in docs:
        keys.append(k)
        values.append(d)
    try:
        for ddl in _DDL:
            con.execute(ddl)
        if clear:
            for table in _TABLES:
                con.execute(f"DELETE FROM {table}")
        if delete:
            gone = pa.table({"key": pa.array(delete, pa.string())})
            with registered(con, "_derisk_gone", gone):
                con.execute("DELETE FROM detect_state_keys WHERE key IN (SELECT key FROM _derisk_gone)")
        if keys:
            table = pa.table({"key": pa.array(keys, pa.string()), "doc": pa.array(values, pa.string())})
            with registered(con, "_derisk_state", table):
                con.execute("INSERT OR REPLACE INTO detect_state_keys SELECT key, doc FROM _derisk_state")
        if names:
            cols = list(zip(*names, strict=True))
            table = pa.table(
                {
                    "domain": pa.array(cols[0], pa.string()),
                    "name": pa.array(cols[1], pa.string()),
                    "length": pa.array(cols[2], pa.float64()),
                    "entropy": pa.array(cols[3], pa.float64()),
                }
            )
            with registered(con, "_derisk_names", table):
                con.execute("INSERT INTO detect_state_names SELECT * FROM _derisk_names")
    except duckdb.Error as exc:
        raise StoreError(f"could not store the detection state: {exc}") from None
