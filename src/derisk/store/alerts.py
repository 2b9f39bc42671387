"""The alerts of the last analysis, and what the allow-list suppressed, in the workspace.

``replace_alerts`` swaps the whole set in one transaction (an analysis recomputes every alert);
``load_alerts`` reads them back, filtered, most severe first. Each alert is stored as its JSON
document (:meth:`derisk.detect.alert.Alert.to_json`) next to the columns used to filter it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.alert import SEVERITIES, Alert
from derisk.detect.allowlist import Suppression
from derisk.errors import StoreError, UsageError
from derisk.flows import FLOW_SCHEMA
from derisk.store.workspace import Workspace

_DDL: Final = (
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id VARCHAR, kind VARCHAR, severity VARCHAR, severity_rank INTEGER, score DOUBLE,
        src_ip VARCHAR, system VARCHAR, destination VARCHAR, controller VARCHAR, jurisdiction VARCHAR,
        first_seen TIMESTAMPTZ, last_seen TIMESTAMPTZ, doc VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS alert_suppressions (
        matcher VARCHAR, value VARCHAR, reason VARCHAR, kinds VARCHAR, flows BIGINT)""",
)


def _ensure(con: duckdb.DuckDBPyConnection) -> None:
    for ddl in _DDL:
        con.execute(ddl)


def _has_table(ws: Workspace, name: str) -> bool:
    rows = ws.query("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])
    return bool(rows and rows[0][0])


def _write(con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], sup: list[tuple[Any, ...]]) -> None:
    _ensure(con)
    con.execute("DELETE FROM alerts")
    con.execute("DELETE FROM alert_suppressions")
    if rows:
        con.executemany("INSERT INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if sup:
        con.executemany("INSERT INTO alert_suppressions VALUES (?, ?, ?, ?, ?)", sup)


def replace_alerts(
    ws: Workspace,
    alerts: Sequence[Alert],
    suppressed: Iterable[Suppression] = (),
    *,
    con: duckdb.DuckDBPyConnection | None = None,
) -> int:
    """Replace the stored alerts (and suppression counts) with these, all or nothing; returns the count.

    With ``con`` (the connection of a transaction the caller holds, as ``derisk analyze`` does) the
    change joins that transaction; otherwise it runs in its own.
    """
    seen: set[str] = set()
    rows = []
    for a in alerts:
        if a.alert_id in seen:
            continue
        seen.add(a.alert_id)
        rows.append(
            (
                a.alert_id,
                a.kind,
                a.severity,
                a.severity_rank,
                float(a.score),
                a.src_ip,
                a.system,
                a.destination,
                a.controller,
                a.jurisdiction,
                a.first_seen,
                a.last_seen,
                json.dumps(a.to_json(), ensure_ascii=False),
            )
        )
    sup = [
        (s.entry.matcher, s.entry.value, s.entry.reason, ",".join(s.entry.kinds), s.flows) for s in suppressed
    ]
    try:
        if con is not None:
            _write(con, rows, sup)
        else:
            with ws.transaction() as own:
                _write(own, rows, sup)
    except duckdb.Error as exc:
        raise StoreError(f"could not store alerts: {exc}", source=str(ws.path)) from None
    return len(rows)


def load_alerts(
    ws: Workspace,
    *,
    kind: str | None = None,
    min_severity: str | None = None,
    system: str | None = None,
) -> list[Alert]:
    """Stored alerts, most severe first, filtered by kind, minimum severity and system."""
    if min_severity is not None and min_severity not in SEVERITIES:
        raise UsageError(f"unknown severity {min_severity!r} (expected one of: {', '.join(SEVERITIES)})")
    if not _has_table(ws, "alerts"):
        return []
    where: list[str] = []
    params: list[Any] = []
    if kind:
        where.append("kind = ?")
        params.append(kind)
    if min_severity:
        where.append("severity_rank >= ?")
        params.append(SEVERITIES.index(min_severity))
    if system:
        where.append("system = ?")
        params.append(system)
    sql = "SELECT doc FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")
    sql += " ORDER BY severity_rank DESC, score DESC, kind, destination"
    try:
        docs = ws.query(sql, params)
    except duckdb.Error as exc:
        raise StoreError(f"could not read alerts: {exc}", source=str(ws.path)) from None
    return [Alert.from_json(json.loads(d[0])) for d in docs]


#: String columns kept as they are when reading compactly (unique per flow: nothing to share).
_PLAIN: Final = {"flow_id"}


def read_flows_compact(ws: Workspace, columns: Sequence[str], *, batch_rows: int = 1_000_000) -> pa.Table:
    """The canonical flow table (``columns`` only), read in batches with string columns
    dictionary-encoded per batch: millions of flows take a fraction of the memory of plain strings,
    and the detections read both forms alike."""
    return read_flows_compact_con(ws.con, columns, batch_rows=batch_rows, source=str(ws.path))


def read_flows_compact_con(
    con: duckdb.DuckDBPyConnection,
    columns: Sequence[str],
    *,
    batch_rows: int = 1_000_000,
    source: str | None = None,
    where: str | None = None,
) -> pa.Table:
    """:func:`read_flows_compact` on a connection (inside a transaction the caller holds), with an
    optional SQL condition on ``flows_attributed``."""
    unknown = sorted(set(columns) - set(FLOW_SCHEMA.names))
    if unknown:
        raise StoreError(f"unknown flow columns: {', '.join(unknown)}", source=source)
    schema = pa.schema([FLOW_SCHEMA.field(c) for c in columns])
    cols = ", ".join(f'"{c}"' for c in columns)
    sql = f"SELECT {cols} FROM flows_attributed" + (f" WHERE {where}" if where else "")
    batches = []
    try:
        reader = con.sql(sql).to_arrow_reader(batch_rows)
        for batch in reader:  # loop over batches, each converted vectorised
            arrays = []
            for field in schema:
                col = batch.column(field.name).cast(field.type)
                if pa.types.is_string(field.type) and field.name not in _PLAIN:
                    col = pc.dictionary_encode(col)
                arrays.append(col)
            batches.append(pa.RecordBatch.from_arrays(arrays, names=schema.names))
    except duckdb.Error as exc:
        raise StoreError(f"could not read flows: {exc}", source=source) from None
    if not batches:
        return schema.empty_table()
    return pa.Table.from_batches(batches)


def load_suppressions(ws: Workspace) -> list[dict[str, Any]]:
    """What the allow-list suppressed in the last analysis, entry by entry."""
    if not _has_table(ws, "alert_suppressions"):
        return []
    rows = ws.query("SELECT matcher, value, reason, kinds, flows FROM alert_suppressions")
    return [
        {
            "matcher": m,
            "value": v,
            "reason": r,
            "kinds": [k for k in (ks or "").split(",") if k],
            "flows": int(f),
        }
        for m, v, r, ks, f in rows
    ]
