"""The incremental detection state in the workspace: what :mod:`derisk.detect.incremental` keeps
between the batches of ``derisk watch``, written in the batch's own transaction.

``detect_state_meta`` holds small named values (JSON), ``detect_state_alerts`` the current alerts
(one JSON document each) and ``detect_state_parts`` the per-detection aggregates, one Arrow IPC
blob per named part, replaced as a whole when the part changed.
"""

from __future__ import annotations

import json
from typing import Any, Final

import duckdb
import pyarrow as pa

from derisk.errors import StoreError

_DDL: Final = (
    "CREATE TABLE IF NOT EXISTS detect_state_meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "CREATE TABLE IF NOT EXISTS detect_state_alerts (alert_id VARCHAR, doc VARCHAR)",
    "CREATE TABLE IF NOT EXISTS detect_state_parts (name VARCHAR PRIMARY KEY, data BLOB)",
)


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    try:
        for ddl in _DDL:
            con.execute(ddl)
    except duckdb.Error as exc:
        raise StoreError(f"could not create the detection state tables: {exc}") from None


def _exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return bool(rows and rows[0][0])


def read_meta(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    if not _exists(con, "detect_state_meta"):
        return {}
    try:
        rows = con.execute("SELECT key, value FROM detect_state_meta").fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"could not read the detection state: {exc}") from None
    return {str(k): json.loads(v) for k, v in rows}


def write_meta(con: duckdb.DuckDBPyConnection, values: dict[str, Any]) -> None:
    ensure(con)
    try:
        con.execute("DELETE FROM detect_state_meta")
        if values:
            con.executemany(
                "INSERT INTO detect_state_meta VALUES (?, ?)",
                [(k, json.dumps(v, ensure_ascii=False)) for k, v in values.items()],
            )
    except duckdb.Error as exc:
        raise StoreError(f"could not store the detection state: {exc}") from None


def read_alert_docs(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    if not _exists(con, "detect_state_alerts"):
        return []
    try:
        rows = con.execute("SELECT doc FROM detect_state_alerts ORDER BY alert_id").fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"could not read the detection state: {exc}") from None
    return [json.loads(r[0]) for r in rows]


def write_alert_docs(con: duckdb.DuckDBPyConnection, docs: list[dict[str, Any]]) -> None:
    ensure(con)
    try:
        con.execute("DELETE FROM detect_state_alerts")
        if docs:
            con.executemany(
                "INSERT INTO detect_state_alerts VALUES (?, ?)",
                [(str(d["alert_id"]), json.dumps(d, ensure_ascii=False)) for d in docs],
            )
    except duckdb.Error as exc:
        raise StoreError(f"could not store the detection state: {exc}") from None


def _to_blob(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def read_parts(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    if not _exists(con, "detect_state_parts"):
        return {}
    try:
        rows = con.execute("SELECT name, data FROM detect_state_parts").fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"could not read the detection state: {exc}") from None
    return {str(name): pa.ipc.open_stream(pa.py_buffer(data)).read_all() for name, data in rows}


def write_parts(con: duckdb.DuckDBPyConnection, parts: dict[str, pa.Table]) -> None:
    """Replace the named parts (others stay as stored)."""
    ensure(con)
    try:
        for name, table in parts.items():
            con.execute("DELETE FROM detect_state_parts WHERE name = ?", [name])
            con.execute("INSERT INTO detect_state_parts VALUES (?, ?)", [name, _to_blob(table)])
    except duckdb.Error as exc:
        raise StoreError(f"could not store the detection state: {exc}") from None
