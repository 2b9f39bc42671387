"""Writing flows, inputs and attribution into the workspace, and the aggregate queries over them.

Callers hold a transaction (:meth:`Workspace.transaction`) around writes, so one analysis run is
all-or-nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import duckdb
import pyarrow as pa

from derisk.flows import STORED_SCHEMA
from derisk.store.workspace import ATTRIBUTION_TABLE_SCHEMA, Workspace, registered


@dataclass(frozen=True)
class InputRecord:
    input_id: str
    path: str
    format: str
    digest: str
    size_bytes: int
    site_digest: str
    ipdata_version: str
    flow_count: int = 0


def known_input(ws: Workspace, input_id: str) -> tuple[str, int] | None:
    """(site digest, flow count) of an input already in the workspace."""
    rows = ws.query("SELECT site_digest, flow_count FROM inputs WHERE input_id = ?", [input_id])
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def seen_path(ws: Workspace, path: str, size_bytes: int) -> bool:
    """Whether an input of this path and size was stored before (a hint that it is a repeat)."""
    return bool(
        ws.query("SELECT 1 FROM inputs WHERE path = ? AND size_bytes = ? LIMIT 1", [path, size_bytes])
    )


def forget_input(con: duckdb.DuckDBPyConnection, input_id: str) -> None:
    con.execute("DELETE FROM flows WHERE input_id = ?", [input_id])
    con.execute("DELETE FROM inputs WHERE input_id = ?", [input_id])


def insert_flows(con: duckdb.DuckDBPyConnection, batch: pa.RecordBatch | pa.Table) -> int:
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    table = table.select(STORED_SCHEMA.names).cast(STORED_SCHEMA)
    with registered(con, "_derisk_batch", table):
        con.execute("INSERT INTO flows BY NAME SELECT * FROM _derisk_batch")
    count: int = table.num_rows
    return count


#: Columns :func:`insert_stream` fills in itself, inside DuckDB: constant per input, or derived from
#: the flow's ordinal within its input.
FILLED_BY_STORE: Final = ("flow_id", "input_id", "ipdata_version")

#: What :func:`insert_stream` takes: the stored columns less those it fills, plus each flow's ordinal.
PREPARED_SCHEMA: Final = pa.schema(
    [f for f in STORED_SCHEMA if f.name not in FILLED_BY_STORE]
    + [pa.field("ordinal", pa.int64(), nullable=False)]
)

_FILLED_SQL: Final = {
    "flow_id": "$input_id || '#' || CAST(ordinal AS VARCHAR)",
    "input_id": "$input_id",
    "ipdata_version": "$ipdata_version",
}
_INSERT_PREPARED: Final = (
    "INSERT INTO flows ("
    + ", ".join(f'"{name}"' for name in STORED_SCHEMA.names)
    + ") SELECT "
    + ", ".join(_FILLED_SQL.get(name, f'"{name}"') for name in STORED_SCHEMA.names)
    + " FROM _derisk_stream"
)


def insert_stream(
    con: duckdb.DuckDBPyConnection, batches: Iterator[pa.RecordBatch], *, input_id: str, ipdata_version: str
) -> int:
    """One INSERT of an input's flows (:data:`PREPARED_SCHEMA` batches), fed by a stream.

    DuckDB writes full row groups to disk as they fill instead of holding a whole input in
    transaction-local memory, and builds the flow ids and constant columns itself. Insertion order is
    not preserved, which lets DuckDB insert in parallel (twice as fast); the stored flows carry their
    ordinal in ``flow_id``. An exception raised by the stream (a bad line in a log, an interruption)
    comes out as itself, not as DuckDB's wrapper of it.
    """
    failure: list[BaseException] = []
    count = 0

    def guarded() -> Iterator[pa.RecordBatch]:
        nonlocal count
        try:
            for batch in batches:
                table = pa.Table.from_batches([batch]).select(PREPARED_SCHEMA.names).cast(PREPARED_SCHEMA)
                for part in table.to_batches():
                    count += part.num_rows
                    yield part
        except BaseException as exc:
            failure.append(exc)
            raise

    reader = pa.RecordBatchReader.from_batches(PREPARED_SCHEMA, guarded())
    try:
        with registered(con, "_derisk_stream", reader):
            con.execute("SET preserve_insertion_order = false")
            try:
                con.execute(_INSERT_PREPARED, {"input_id": input_id, "ipdata_version": ipdata_version})
            finally:
                # An aborted transaction refuses every statement until it is rolled back; the
                # connection is closed after a failed run.
                with contextlib.suppress(duckdb.Error):
                    con.execute("RESET preserve_insertion_order")
    except (duckdb.Error, RuntimeError):
        if failure:
            raise failure[0] from None
        raise
    return count


def record_input(con: duckdb.DuckDBPyConnection, rec: InputRecord) -> None:
    con.execute(
        "INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            rec.input_id,
            rec.path,
            rec.format,
            rec.digest,
            rec.size_bytes,
            rec.site_digest,
            rec.ipdata_version,
            rec.flow_count,
            dt.datetime.now(dt.UTC),
        ],
    )


#: Flows that count as exposure: to or from an external destination, and not a connection attempt
#: that carried no payload (Zeek's S0, REJ …; Suricata's unanswered SYN), which is reported apart.
EXPOSED: Final = "direction IN ('outbound', 'inbound') AND is_attempt IS NOT TRUE"


def attempts(ws: Workspace, input_ids: list[str] | None) -> dict[str, int]:
    """Connection attempts without payload to external destinations: kept out of exposure."""
    where, params = _scope(input_ids)
    row = ws.query(
        "SELECT count(*), count(DISTINCT dst_ip), coalesce(sum(bytes_out), 0), coalesce(sum(bytes_in), 0)"
        f" FROM flows WHERE direction IN ('outbound', 'inbound') AND is_attempt AND {where}",
        params,
    )[0]
    return {
        "flows": int(row[0]),
        "destinations": int(row[1]),
        "bytes_out": int(row[2]),
        "bytes_in": int(row[3]),
    }


def attribution_keys(ws: Workspace) -> pa.Table:
    """Distinct (AS, domain, AS country) of external endpoints, with an AS organisation name."""
    return ws.query_arrow(
        "SELECT dst_asn, dst_domain, dst_as_country, any_value(dst_as_org) AS dst_as_org FROM flows"
        " WHERE direction IN ('outbound', 'inbound') GROUP BY ALL"
    )


def replace_attribution(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    table = table.select(ATTRIBUTION_TABLE_SCHEMA.names).cast(ATTRIBUTION_TABLE_SCHEMA)
    con.execute("DELETE FROM attribution")
    with registered(con, "_derisk_attr", table):
        con.execute("INSERT INTO attribution SELECT * FROM _derisk_attr")


def record_run(con: duckdb.DuckDBPyConnection, run: dict[str, Any]) -> None:
    con.execute(
        "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            run["run_id"],
            run["started_at"],
            run.get("site"),
            run.get("site_digest"),
            run.get("ipdata_version"),
            run.get("registry_version"),
            ",".join(run.get("inputs", [])),
        ],
    )


def list_inputs(ws: Workspace) -> list[dict[str, Any]]:
    rows = ws.query(
        "SELECT input_id, path, format, flow_count, ipdata_version, ingested_at FROM inputs ORDER BY ingested_at"
    )
    keys = ("input_id", "path", "format", "flows", "ipdata_version", "ingested_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]


# -- aggregates for the analysis document ------------------------------------------------------


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def _scope(input_ids: list[str] | None) -> tuple[str, list[Any]]:
    if not input_ids:
        return "TRUE", []
    marks = ", ".join("?" for _ in input_ids)
    return f"input_id IN ({marks})", list(input_ids)


def totals(ws: Workspace, input_ids: list[str] | None) -> dict[str, int]:
    where, params = _scope(input_ids)
    row = ws.query(
        f"SELECT count(*), coalesce(sum(bytes_out), 0), coalesce(sum(bytes_in), 0),"
        f" coalesce(sum(packets_out), 0), coalesce(sum(packets_in), 0) FROM flows WHERE {where}",
        params,
    )[0]
    return {
        "flows": int(row[0]),
        "bytes_out": int(row[1]),
        "bytes_in": int(row[2]),
        "packets_out": int(row[3]),
        "packets_in": int(row[4]),
    }


#: The attribution columns of one destination's answer, taken together from the same flows.
_ANSWER: Final = (
    "dst_org", "dst_org_id", "dst_org_basis", "dst_controller", "dst_controller_id", "dst_jurisdiction",
    "dst_jurisdiction_basis", "attribution_path",
)  # fmt: skip


def destinations(ws: Workspace, input_ids: list[str] | None, name_cap: int = 20) -> list[dict[str, Any]]:
    """One row per external address talking with the site, most bytes sent first.

    An address whose flows carry different attributions (an Akamai alias on one flow, Apple's
    server name on another) shows one of them whole, chosen in this order: flows that carry a server
    name the service layer was asked about (``dst_service_basis`` set) and whose answer names a
    controller; flows whose name derisk does not know (their answer names the operator's
    jurisdiction but no controller); flows without such a name (their answer is the operator's:
    an inbound half may carry a DNS answer's name without a service attribution); then as the two layers choose theirs
    (:func:`derisk.store.layers.destination_layers`): most flows, then most bytes sent, then the
    first in column order. A name derisk knows on one flow so leaves another flow's unknown name
    aside, and a name on one flow outranks the bare operator of another: the reply half of a
    connection split in two (replies on another VLAN) carries no name, and its operator (a cloud)
    is not the controller of the service the other half names. A choice per column could mix the
    organisation of one flow with the controller of another.
    """
    where, params = _scope(input_ids)
    answer = ", ".join(_ANSWER)
    order = ", ".join(f"{c} NULLS LAST" for c in _ANSWER)
    sql = f"""
        WITH answers AS (
            SELECT dst_ip, {answer}, count(*) AS n, sum(coalesce(bytes_out, 0)) AS b,
                   bool_or(dst_service_basis IS NOT NULL) AS named
            FROM flows_attributed WHERE {EXPOSED} AND {where} GROUP BY ALL
        ), chosen AS (
            SELECT * FROM answers
            QUALIFY row_number() OVER (
                PARTITION BY dst_ip
                ORDER BY CASE WHEN named AND dst_controller IS NOT NULL THEN 0 WHEN named THEN 1
                              WHEN dst_controller IS NOT NULL THEN 2 ELSE 3 END,
                         dst_jurisdiction IS NULL, n DESC, b DESC, {order}
            ) = 1
        ), totals AS (
            SELECT dst_ip, any_value(dst_asn) AS asn, any_value(dst_as_org) AS as_org,
                   any_value(dst_as_country) AS as_country, any_value(dst_geo_country) AS geo_country,
                   list_sort(list(DISTINCT server_name) FILTER (WHERE server_name IS NOT NULL))[1:{name_cap}]
                       AS server_names,
                   list_sort(list(DISTINCT server_name_source)
                       FILTER (WHERE server_name IS NOT NULL AND server_name_source IS NOT NULL))
                       AS server_name_sources,
                   list_sort(list(DISTINCT dst_domain) FILTER (WHERE dst_domain IS NOT NULL)) AS domains,
                   list_sort(list(DISTINCT application) FILTER (WHERE application IS NOT NULL)) AS applications,
                   count(*) AS flows, sum(coalesce(bytes_out, 0)) AS bytes_out,
                   sum(coalesce(bytes_in, 0)) AS bytes_in,
                   list_sort(list(DISTINCT coalesce(system, src_ip))
                       FILTER (WHERE coalesce(system, src_ip) IS NOT NULL)) AS systems,
                   min(first_seen) AS first_seen, max(last_seen) AS last_seen
            FROM flows_attributed
            WHERE {EXPOSED} AND {where}
            GROUP BY dst_ip
        )
        SELECT t.dst_ip AS ip, t.asn, t.as_org, t.as_country, t.geo_country, t.server_names,
               t.server_name_sources, t.domains,
               c.dst_org AS organisation, c.dst_org_id AS organisation_id, c.dst_org_basis AS organisation_basis,
               c.dst_controller AS controller, c.dst_controller_id AS controller_id,
               c.dst_jurisdiction AS jurisdiction, coalesce(c.dst_jurisdiction_basis, 'unknown') AS jurisdiction_basis,
               c.attribution_path AS attribution_path,
               t.applications, t.flows, t.bytes_out, t.bytes_in, t.systems, t.first_seen, t.last_seen
        FROM totals t JOIN chosen c ON c.dst_ip = t.dst_ip
        ORDER BY t.bytes_out DESC, t.flows DESC, ip
    """
    return _rows(ws.query_arrow(sql, params * 2))


def exposure(ws: Workspace, input_ids: list[str] | None, unknown: str) -> list[dict[str, Any]]:
    """Traffic by controlling jurisdiction, with the controllers behind each."""
    where, params = _scope(input_ids)
    sql = f"""
        SELECT coalesce(dst_jurisdiction, ?) AS jurisdiction,
               list_sort(list(DISTINCT dst_controller) FILTER (WHERE dst_controller IS NOT NULL))
                   AS controllers,
               list_sort(list(DISTINCT dst_jurisdiction_basis) FILTER (WHERE dst_jurisdiction_basis IS NOT NULL))
                   AS bases,
               count(*) AS flows, sum(coalesce(bytes_out, 0)) AS bytes_out, sum(coalesce(bytes_in, 0)) AS bytes_in,
               count(DISTINCT dst_ip) AS destinations,
               list_sort(list(DISTINCT system) FILTER (WHERE system IS NOT NULL)) AS systems
        FROM flows_attributed
        WHERE {EXPOSED} AND {where}
        GROUP BY ALL ORDER BY bytes_out DESC, jurisdiction
    """
    return _rows(ws.query_arrow(sql, [unknown, *params]))


def by_controller(ws: Workspace, input_ids: list[str] | None) -> list[dict[str, Any]]:
    where, params = _scope(input_ids)
    sql = f"""
        SELECT coalesce(dst_controller, dst_org, dst_as_org) AS controller,
               dst_controller IS NOT NULL AS resolved,
               mode(dst_jurisdiction) AS jurisdiction, mode(dst_jurisdiction_basis) AS jurisdiction_basis,
               list_sort(list(DISTINCT dst_geo_country) FILTER (WHERE dst_geo_country IS NOT NULL))
                   AS geo_countries,
               count(*) AS flows, sum(coalesce(bytes_out, 0)) AS bytes_out, sum(coalesce(bytes_in, 0)) AS bytes_in,
               count(DISTINCT dst_ip) AS destinations,
               list_sort(list(DISTINCT system) FILTER (WHERE system IS NOT NULL)) AS systems
        FROM flows_attributed
        WHERE {EXPOSED} AND {where}
        GROUP BY ALL ORDER BY bytes_out DESC, controller NULLS LAST
    """
    return _rows(ws.query_arrow(sql, params))


def by_system(ws: Workspace, input_ids: list[str] | None) -> list[dict[str, Any]]:
    where, params = _scope(input_ids)
    sql = f"""
        SELECT coalesce(system, '(unlabelled)') AS system, coalesce(dst_jurisdiction, 'ZZ') AS jurisdiction,
               coalesce(dst_controller, dst_org, dst_as_org) AS controller,
               count(*) AS flows, sum(coalesce(bytes_out, 0)) AS bytes_out, sum(coalesce(bytes_in, 0)) AS bytes_in,
               count(DISTINCT dst_ip) AS destinations
        FROM flows_attributed
        WHERE {EXPOSED} AND {where}
        GROUP BY ALL ORDER BY system, bytes_out DESC
    """
    return _rows(ws.query_arrow(sql, params))


def time_span(ws: Workspace, input_ids: list[str] | None) -> tuple[Any, Any]:
    where, params = _scope(input_ids)
    row = ws.query(f"SELECT min(first_seen), max(last_seen) FROM flows WHERE {where}", params)[0]
    return row[0], row[1]
