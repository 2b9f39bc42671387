"""DuckDB adapter for reading the body of a Zeek TSV conn.log (the default path for TSV conn logs).

Only modules under ``derisk.store`` may import duckdb; this one is the adapter that lends DuckDB's
CSV reader to :mod:`derisk.ingest.zeek`. It knows nothing of Zeek headers beyond what it is told:
the caller (which has already checked ``#fields`` and ``#types``) passes the separator, the field
names and the unset and empty markers. The reader

* opens a private in-memory DuckDB connection (no database file, no extension loading);
* reads the log with ``read_csv``: the declared separator, the ``#fields`` names, explicit column
  types, no quoting and no escape interpretation (Zeek's ``\\xHH`` escapes reach the caller as
  text), the unset and empty markers as nulls, ``#``-lines (header, ``#close``, the headers of
  concatenated logs) skipped, strict column counts, no decompression (see below);
* converts in the ``SELECT`` what SQL does cheaply: ``ts`` to microseconds, ``ts + duration`` to the
  last-seen time, ``proto`` to the IP protocol number, ports of TCP and UDP flows, byte and packet
  counts as BIGINT (a ``ts`` or ``duration`` that is not finite fails the read; checking that
  values are set and plausible is left to the caller, which does it per batch on the Arrow side);
* streams the result as Arrow record batches of at most ``rows`` rows, in file order, reading one
  batch ahead on a thread while the caller converts the current one.

DuckDB's default line limit (2 MB) is kept: raised to the Arrow path's 64 MiB, DuckDB read a 1 million
line log on one thread in our measurement. A longer line is an error here, and the caller's own
parser takes over.

Any failure (a ragged line, a bad value, bytes that are not UTF-8 in a column read) raises
:class:`ZeekReadError` carrying DuckDB's first message line; the caller re-reads the file to name
the bad line. DuckDB's comment handling also cuts a line at a ``#`` inside it, which changes the
column count (an error, so the caller falls back to its own parser) unless the ``#`` is in the last
field: :func:`read_conn` therefore refuses (``ZeekReadError``) logs whose last field is a text
column it reads. A number in the last field is not checked for a ``#`` (Zeek never writes one
there; only a damaged file would have it, and its number would be read up to the ``#``).

gzip logs are not read here: DuckDB's gzip reader does not check the CRC in a member's trailer (a
damaged file could be read as plausible records), and DuckDB plus a second decompression to check
it was slower than Arrow's reader, which checks it.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from derisk.store.sqltext import ident, literal

#: Threads DuckDB may use for one read (it parallelises the CSV scan).
MAX_THREADS: Final = 4
#: The Zeek columns :func:`read_conn` reads (``duration`` and ``service`` when present).
CONN_COLUMNS: Final = (
    "ts", "uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto",
    "orig_pkts", "orig_ip_bytes", "resp_pkts", "resp_ip_bytes", "duration", "service",
    "conn_state", "orig_bytes", "resp_bytes",
)  # fmt: skip

_DUCK_TYPES: Final = {
    "time": "DOUBLE",
    "interval": "DOUBLE",
    "double": "DOUBLE",
    "count": "BIGINT",
    "int": "BIGINT",
    "port": "INTEGER",
}


class ZeekReadError(Exception):
    """DuckDB could not read the log; the message is DuckDB's first line (for the caller's log).

    ``unsupported`` is true when the reader declined before reading (a log it cannot read
    faithfully); the caller should then use its own parser without looking for a bad line.
    """

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


def csv_source(
    path: Path, fields: Sequence[str], types: Mapping[str, str], separator: str, nulls: Sequence[str]
) -> str:
    """The ``read_csv(...)`` of a conn.log body, as :func:`read_conn` reads it (its rows, its order)."""
    columns = ", ".join(
        f"{literal(name)}: {literal(_DUCK_TYPES.get(types.get(name, 'string'), 'VARCHAR'))}"
        for name in fields
    )
    return (
        f"read_csv({literal(str(path))}, delim={literal(separator)}, header=false, comment='#', "
        f"quote='', escape='', nullstr=[{', '.join(literal(n) for n in nulls)}], auto_detect=false, "
        f"strict_mode=true, null_padding=false, ignore_errors=false, "
        "compression='none', "
        f"columns={{{columns}}})"
    )


def _query(
    path: Path,
    fields: Sequence[str],
    types: Mapping[str, str],
    separator: str,
    nulls: Sequence[str],
) -> str:
    """The ``SELECT`` reading one conn.log; ``types`` maps each field read to its Zeek type."""
    source = csv_source(path, fields, types, separator, nulls)
    ts, uid, orig_h, resp_h = (ident(n) for n in ("ts", "uid", "id.orig_h", "id.resp_h"))
    proto = ident("proto")
    # Zeek writes the names in lower case; others are compared in lower case, as the Arrow path does.
    protocol = (
        f"CAST(CASE WHEN {proto} = 'tcp' THEN 6 WHEN {proto} = 'udp' THEN 17 WHEN {proto} = 'icmp' THEN "
        f"CASE WHEN contains({orig_h}, ':') THEN 58 ELSE 1 END "
        f"ELSE CASE lower({proto}) WHEN 'tcp' THEN 6 WHEN 'udp' THEN 17 "
        f"WHEN 'icmp' THEN CASE WHEN contains({orig_h}, ':') THEN 58 ELSE 1 END END END AS SMALLINT)"
    )
    first = f"CAST(round_even({ts} * 1000000, 0) AS BIGINT)"
    last = (
        f"first_us + CAST(round_even({ident('duration')} * 1000000, 0) AS BIGINT)"
        if "duration" in types
        else "CAST(NULL AS BIGINT)"
    )
    service = f"{ident('service')}" if "service" in types else "CAST(NULL AS VARCHAR)"
    state = ident("conn_state") if "conn_state" in types else "CAST(NULL AS VARCHAR)"
    orig_bytes = ident("orig_bytes") if "orig_bytes" in types else "CAST(NULL AS BIGINT)"
    resp_bytes = ident("resp_bytes") if "resp_bytes" in types else "CAST(NULL AS BIGINT)"
    transport = "protocol IN (6, 17)"

    return f"""
        WITH log AS (SELECT {first} AS first_us, {protocol} AS protocol, * FROM {source})
        SELECT
            first_us,
            {last} AS last_us,
            {orig_h} AS src_ip,
            CASE WHEN {transport} THEN {ident("id.orig_p")} END AS src_port,
            {resp_h} AS dst_ip,
            CASE WHEN {transport} THEN {ident("id.resp_p")} END AS dst_port,
            protocol,
            {ident("orig_ip_bytes")} AS bytes_out,
            {ident("resp_ip_bytes")} AS bytes_in,
            {ident("orig_pkts")} AS packets_out,
            {ident("resp_pkts")} AS packets_in,
            {service} AS service,
            {uid} AS uid,
            {state} AS conn_state,
            {orig_bytes} AS orig_bytes,
            {resp_bytes} AS resp_bytes
        FROM log
    """


def private_connection() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB connection (no database file, no extension loading)."""
    return _connect()


def _connect() -> duckdb.DuckDBPyConnection:
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "threads": max(1, min(MAX_THREADS, pa.cpu_count())),
    }
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")  # only derisk's own output reaches the terminal
    return con


def read_conn(
    path: Path,
    *,
    fields: Sequence[str],
    types: Mapping[str, str],
    separator: str,
    nulls: Sequence[str],
    rows: int,
    database: duckdb.DuckDBPyConnection | None = None,
) -> Generator[pa.RecordBatch, None, None]:
    """Stream a Zeek TSV conn.log's records as Arrow batches (see the module's description).

    ``database``: a private in-memory connection to read through (a cursor of it is used and
    closed), saving the cost of opening one; by default one is opened for the read.

    ``fields`` is the ``#fields`` line; ``types`` maps each column to read (those of
    :data:`CONN_COLUMNS` present in the log) to its Zeek type. Batches have the columns
    ``first_us``/``last_us`` (int64 microseconds since the epoch), ``src_ip``, ``src_port``,
    ``dst_ip``, ``dst_port``, ``protocol``, ``bytes_out``, ``bytes_in``, ``packets_out``,
    ``packets_in``, ``service`` (raw text, Zeek escapes intact) and ``uid``. Raises
    :class:`ZeekReadError` on any failure, while iterating or before.
    """
    if fields and fields[-1] in types and types[fields[-1]] not in _DUCK_TYPES:
        raise ZeekReadError(
            f"the last field {fields[-1]!r} is text that is read; a '#' in it would cut it short",
            unsupported=True,
        )
    location = str(path.absolute())
    if any(char in location for char in "*?[{"):
        raise ZeekReadError("the path contains a glob character", unsupported=True)
    query = _query(Path(location), fields, types, separator, nulls)
    try:
        con = database.cursor() if database is not None else _connect()
    except duckdb.Error as exc:
        raise ZeekReadError(_first_line(exc)) from None
    try:
        try:
            reader = con.sql(query).to_arrow_reader(rows)
        except duckdb.Error as exc:
            raise ZeekReadError(_first_line(exc)) from None
        # One batch is read ahead on a thread while the caller works on the current one (DuckDB
        # and Arrow release the GIL), so reading and the caller's conversion overlap.
        with ThreadPoolExecutor(1, thread_name_prefix="zeekread") as pool:
            ahead = pool.submit(_next_batch, reader)
            try:
                while (batch := ahead.result()) is not None:
                    ahead = pool.submit(_next_batch, reader)
                    if batch.num_rows:
                        yield batch
            finally:
                ahead.cancel()
                wait([ahead])
                reader.close()
    finally:
        con.close()


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None
    except (duckdb.Error, pa.ArrowException, OSError) as exc:
        raise ZeekReadError(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
