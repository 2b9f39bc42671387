"""The tables of ``derisk watch``: read positions, companion records waiting for their flows, batches.

Every batch of ``derisk watch`` is one transaction (:meth:`Workspace.transaction`) that stores its
flows *and* the positions it read them up to, through the functions of this module; so a restart
after SIGTERM or ``kill -9`` resumes exactly where the last committed batch ended.

* ``watch_positions``: one row per followed file (or live source): how the file is recognised
  (device, inode, a hash of its first bytes), how far it was read (bytes of complete lines, in the
  decompressed stream for a gzip file), how many flows it gave (the next flow's ordinal), the input
  id its flows are stored under.
* ``watch_zeek_ssl`` / ``_http`` / ``_dns``: records of Zeek's companion logs, kept for a window so
  that a conn.log record read in a later batch is still joined with them (server name, JA4, agent).
* ``watch_zeek_marks``: per companion log of the current period, the newest record start read, so
  that conn records are held until their companions can have been read
  (:mod:`derisk.live.zeekhold`).
* ``watch_eve_events``: Suricata application events (tls, http, quic, dns) kept the same way.
* ``watch_batches``: one row per committed batch (flows, bytes, lag, seconds it took before its commit),
  for the status, the tests and the benchmark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import duckdb
import pyarrow as pa

from derisk.store.workspace import ATTRIBUTION_TABLE_SCHEMA, registered

#: Companion record schemas (Zeek column names, as :class:`derisk.ingest.zeek_join.Companions` takes).
SSL_SCHEMA: Final = pa.schema([("uid", pa.string()), ("server_name", pa.string()), ("ja4", pa.string())])
HTTP_SCHEMA: Final = pa.schema([("uid", pa.string()), ("host", pa.string()), ("user_agent", pa.string())])
DNS_SCHEMA: Final = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("uid", pa.string()),
        ("query", pa.string()),
        ("id.orig_h", pa.string()),
        ("qtype_name", pa.string()),
        ("answers", pa.list_(pa.string())),
    ]
)
COMPANION_SCHEMAS: Final = {"ssl": SSL_SCHEMA, "http": HTTP_SCHEMA, "dns": DNS_SCHEMA}

_DDL: Final = (
    """CREATE TABLE IF NOT EXISTS watch_positions (
        source VARCHAR, key VARCHAR, path VARCHAR, device BIGINT, inode BIGINT, head_len BIGINT,
        head_hash VARCHAR, compressed BOOLEAN, "offset" BIGINT, size_seen BIGINT, ordinal BIGINT,
        input_id VARCHAR, finished BOOLEAN, updated_at TIMESTAMPTZ, PRIMARY KEY (source, key))""",
    """CREATE TABLE IF NOT EXISTS watch_zeek_ssl (
        seq BIGINT, horizon TIMESTAMPTZ, uid VARCHAR, server_name VARCHAR, ja4 VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS watch_zeek_http (
        seq BIGINT, horizon TIMESTAMPTZ, uid VARCHAR, host VARCHAR, user_agent VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS watch_zeek_dns (
        seq BIGINT, horizon TIMESTAMPTZ, ts TIMESTAMPTZ, uid VARCHAR, query VARCHAR, "id.orig_h" VARCHAR,
        qtype_name VARCHAR, answers VARCHAR[])""",
    "CREATE TABLE IF NOT EXISTS watch_eve_events (seq BIGINT, horizon TIMESTAMPTZ, line VARCHAR)",
    """CREATE TABLE IF NOT EXISTS watch_zeek_marks (
        source VARCHAR, kind VARCHAR, key VARCHAR, ts_us BIGINT, PRIMARY KEY (source, kind))""",
    """CREATE TABLE IF NOT EXISTS watch_batches (
        batch BIGINT PRIMARY KEY, committed_at TIMESTAMPTZ, flows BIGINT, bytes_out BIGINT,
        bytes_in BIGINT, alerts BIGINT, lag_seconds DOUBLE, sources VARCHAR, seconds DOUBLE)""",
)


@dataclass
class Position:
    """How far one followed file (or live source) has been read, and how it is recognised."""

    source: str
    key: str
    path: str
    device: int
    inode: int
    head_len: int
    head_hash: str
    compressed: bool
    offset: int
    size_seen: int
    ordinal: int
    input_id: str
    finished: bool = False


_POSITION_COLUMNS: Final = (
    'source, key, path, device, inode, head_len, head_hash, compressed, "offset", size_seen, ordinal,'
    " input_id, finished"
)


def ensure(con: duckdb.DuckDBPyConnection) -> None:
    """Create the watch tables (idempotent); the caller holds the transaction."""
    for ddl in _DDL:
        con.execute(ddl)


def load_positions(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, Position]:
    rows = con.execute(
        f"SELECT {_POSITION_COLUMNS} FROM watch_positions WHERE source = ?", [source]
    ).fetchall()
    return {
        str(r[1]): Position(
            str(r[0]),
            str(r[1]),
            str(r[2]),
            int(r[3]),
            int(r[4]),
            int(r[5]),
            str(r[6]),
            bool(r[7]),
            int(r[8]),
            int(r[9]),
            int(r[10]),
            str(r[11]),
            bool(r[12]),
        )
        for r in rows
    }


def save_positions(con: duckdb.DuckDBPyConnection, positions: Iterable[Position]) -> None:
    now = dt.datetime.now(dt.UTC)
    rows = [
        [
            p.source,
            p.key,
            p.path,
            p.device,
            p.inode,
            p.head_len,
            p.head_hash,
            p.compressed,
            p.offset,
            p.size_seen,
            p.ordinal,
            p.input_id,
            p.finished,
            now,
        ]
        for p in positions
    ]
    if rows:
        con.executemany(
            f"INSERT OR REPLACE INTO watch_positions ({_POSITION_COLUMNS}, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def load_marks(con: duckdb.DuckDBPyConnection, source: str) -> dict[str, tuple[str, int]]:
    rows = con.execute("SELECT kind, key, ts_us FROM watch_zeek_marks WHERE source = ?", [source]).fetchall()
    return {str(kind): (str(key), int(ts)) for kind, key, ts in rows}


def save_marks(con: duckdb.DuckDBPyConnection, source: str, marks: dict[str, tuple[str, int]]) -> None:
    if marks:
        con.executemany(
            "INSERT OR REPLACE INTO watch_zeek_marks VALUES (?, ?, ?, ?)",
            [[source, kind, key, ts] for kind, (key, ts) in marks.items()],
        )


def forget_positions(con: duckdb.DuckDBPyConnection, source: str, keys: Iterable[str]) -> None:
    for key in keys:
        con.execute("DELETE FROM watch_positions WHERE source = ? AND key = ?", [source, key])


def upsert_input(
    con: duckdb.DuckDBPyConnection,
    *,
    input_id: str,
    path: str,
    fmt: str,
    digest: str,
    size_bytes: int,
    site_digest: str,
    ipdata_version: str,
    flow_count: int,
) -> None:
    """The ``inputs`` row of a followed file, its flow count and size as of this batch."""
    con.execute(
        "INSERT OR REPLACE INTO inputs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            input_id,
            path,
            fmt,
            digest,
            size_bytes,
            site_digest,
            ipdata_version,
            flow_count,
            dt.datetime.now(dt.UTC),
        ],
    )


# -- companions -----------------------------------------------------------------------------------


def next_seq(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT coalesce(max(seq) + 1, 0) FROM {table}").fetchall()[0]
    return int(row[0])


def add_companions(con: duckdb.DuckDBPyConnection, kind: str, table: pa.Table, horizon: dt.datetime) -> None:
    """Keep Zeek companion records (``kind`` ssl, http or dns) in log order."""
    if table.num_rows == 0:
        return
    schema = COMPANION_SCHEMAS[kind]
    columns = {
        f.name: table[f.name].cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    }
    start = next_seq(con, f"watch_zeek_{kind}")
    data = pa.table(columns, schema=schema)
    names = ", ".join(f'"{f.name}"' for f in schema)
    with registered(con, "_derisk_companions", data):
        con.execute(
            f"INSERT INTO watch_zeek_{kind} (seq, horizon, {names})"
            f" SELECT ? + row_number() OVER () - 1, ?, {names} FROM _derisk_companions",
            [start, horizon],
        )


def companions_for(
    con: duckdb.DuckDBPyConnection, uids: pa.Array, addresses: pa.Array
) -> dict[str, pa.Table | None]:
    """The kept companion records a batch of conn records needs: same uid, or a DNS answer naming
    one of the batch's responder addresses (in log order, as the batch reader sees them)."""
    keys = pa.table({"v": pa.array(uids, pa.string())})
    found: dict[str, pa.Table | None] = {}
    with (
        registered(con, "_derisk_uids", keys),
        registered(con, "_derisk_addrs", pa.table({"v": pa.array(addresses, pa.string())})),
    ):
        for kind, schema in COMPANION_SCHEMAS.items():
            names = ", ".join(f'"{f.name}"' for f in schema)
            if kind == "dns":
                sql = (
                    f"SELECT {names} FROM watch_zeek_dns WHERE uid IN (SELECT v FROM _derisk_uids)"
                    " OR seq IN (SELECT seq FROM (SELECT seq, unnest(answers) AS a FROM watch_zeek_dns)"
                    " WHERE a IN (SELECT v FROM _derisk_addrs)) ORDER BY seq"
                )
            else:
                sql = f"SELECT {names} FROM watch_zeek_{kind} WHERE uid IN (SELECT v FROM _derisk_uids) ORDER BY seq"
            table = con.sql(sql).to_arrow_table().cast(schema)
            found[kind] = table if table.num_rows else None
    return found


def prune_companions(con: duckdb.DuckDBPyConnection, before: dt.datetime) -> None:
    """Drop companion records and EVE events kept since before ``before`` (the window's start)."""
    for table in ("watch_zeek_ssl", "watch_zeek_http", "watch_zeek_dns", "watch_eve_events"):
        con.execute(f"DELETE FROM {table} WHERE horizon < ?", [before])


def add_eve_events(con: duckdb.DuckDBPyConnection, lines: list[str], horizon: dt.datetime) -> None:
    if not lines:
        return
    start = next_seq(con, "watch_eve_events")
    con.executemany(
        "INSERT INTO watch_eve_events VALUES (?, ?, ?)",
        [[start + n, horizon, line] for n, line in enumerate(lines)],
    )


def eve_events(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [str(r[0]) for r in con.execute("SELECT line FROM watch_eve_events ORDER BY seq").fetchall()]


# -- attribution and batches ----------------------------------------------------------------------


def new_attribution_keys(con: duckdb.DuckDBPyConnection, flows: pa.Table) -> pa.Table:
    """The (AS, domain, AS country) keys of a batch's external flows not yet in ``attribution``."""
    wanted = flows.select(["direction", "dst_asn", "dst_domain", "dst_as_country", "dst_as_org"])
    with registered(con, "_derisk_keys", wanted):
        table: pa.Table = con.sql(
            "SELECT k.dst_asn, k.dst_domain, k.dst_as_country, any_value(k.dst_as_org) AS dst_as_org"
            " FROM _derisk_keys k WHERE k.direction IN ('outbound', 'inbound')"
            " AND NOT EXISTS (SELECT 1 FROM attribution a WHERE a.dst_asn IS NOT DISTINCT FROM k.dst_asn"
            " AND a.dst_domain IS NOT DISTINCT FROM k.dst_domain"
            " AND a.dst_as_country IS NOT DISTINCT FROM k.dst_as_country) GROUP BY ALL"
        ).to_arrow_table()
    return table


def add_attribution(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    if table.num_rows == 0:
        return
    table = table.select(ATTRIBUTION_TABLE_SCHEMA.names).cast(ATTRIBUTION_TABLE_SCHEMA)
    with registered(con, "_derisk_attr_new", table):
        con.execute("INSERT INTO attribution SELECT * FROM _derisk_attr_new")


def record_batch(con: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> int:
    """Log a committed batch; returns its number (1 for the first batch of the workspace)."""
    number = int(con.execute("SELECT coalesce(max(batch), 0) + 1 FROM watch_batches").fetchall()[0][0])
    con.execute(
        "INSERT INTO watch_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            number,
            dt.datetime.now(dt.UTC),
            row.get("flows", 0),
            row.get("bytes_out", 0),
            row.get("bytes_in", 0),
            row.get("alerts", 0),
            row.get("lag_seconds"),
            row.get("sources", ""),
            row.get("seconds"),
        ],
    )
    return number
