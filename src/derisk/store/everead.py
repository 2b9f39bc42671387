"""DuckDB adapter for reading Suricata EVE JSON lines in bulk (the fast path of :mod:`derisk.ingest.eve`).

Only modules under ``derisk.store`` may import duckdb; this one lends DuckDB's newline-delimited JSON
reader to EVE ingest. The caller passes the Arrow schema of the keys it reads; the reader

* opens a private in-memory DuckDB connection (no database file, no extension loading);
* reads the file with ``read_ndjson`` and explicit ``columns`` (the schema's types in DuckDB's
  terms, so keys not named are skipped by the parser), lines up to 64 MiB, no decompression;
* streams the rows as Arrow record batches in file order (DuckDB preserves insertion order), one
  batch read ahead on a thread while the caller converts the current one.

DuckDB refuses a whole file for any line it cannot read (not JSON, truncated, bytes that are not
UTF-8, a NUL, a value of the wrong type, a duplicate key): :class:`EveReadError` carries its first
message line, and the caller reads the file with its own parser, which skips and counts such lines.
gzip files are not read here: DuckDB's gzip reader does not check the CRC in a member's trailer
(see ``docs/ingest-zeek.md``), so a damaged file could be read as plausible events.
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from derisk.store.spill import spill_directory
from derisk.store.sqltext import ident, literal

#: Threads DuckDB may use for one read.
MAX_THREADS: Final = 4
#: Longest line read (DuckDB's ``maximum_object_size``).
MAX_LINE_BYTES: Final = 1 << 26


class EveReadError(Exception):
    """DuckDB could not read the file; ``unsupported`` when it declined before reading."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


def duck_type(kind: pa.DataType) -> str:
    """An Arrow type (strings, integers, booleans, structs and lists of them) in DuckDB's terms."""
    if pa.types.is_string(kind):
        return "VARCHAR"
    if pa.types.is_int64(kind):
        return "BIGINT"
    if pa.types.is_boolean(kind):
        return "BOOLEAN"
    if pa.types.is_floating(kind):
        return "DOUBLE"
    if pa.types.is_struct(kind):
        fields = ", ".join(
            f"{ident(kind.field(i).name)} {duck_type(kind.field(i).type)}" for i in range(kind.num_fields)
        )
        return f"STRUCT({fields})"
    if pa.types.is_list(kind):
        return f"{duck_type(kind.value_type)}[]"
    raise ValueError(f"no DuckDB type for {kind}")


def _query(path: Path, schema: pa.Schema) -> str:
    columns = ", ".join(f"{literal(f.name)}: {literal(duck_type(f.type))}" for f in schema)
    return (
        f"SELECT * FROM read_ndjson({literal(str(path))}, columns={{{columns}}}, "
        f"maximum_object_size={MAX_LINE_BYTES}, compression='none', ignore_errors=false)"
    )


def connect() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB database (no file, no extension loading, no progress bar); an EVE
    input opens one for its reads and its DNS-answer lookups (opening one costs about 0.1 s)."""
    con = duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "temp_directory": spill_directory(),
            "threads": max(1, min(MAX_THREADS, pa.cpu_count())),
        },
    )
    con.execute("SET enable_progress_bar = false")
    return con


#: An input's private DuckDB database, as other layers hold it (they never use it themselves).
Database = duckdb.DuckDBPyConnection


def read_events(
    path: Path, schema: pa.Schema, *, rows: int, database: Database | None = None
) -> Generator[pa.RecordBatch, None, None]:
    """Stream an EVE file's events as Arrow batches of ``schema`` (at most ``rows`` rows), in file order.

    ``database``: a connection from :func:`connect` to read through (a cursor of it is used).

    Raises :class:`EveReadError` on any failure, while iterating or before.
    """
    location = str(path.absolute())
    if any(char in location for char in "*?[{"):
        raise EveReadError("the path contains a glob character", unsupported=True)
    try:
        con = database.cursor() if database is not None else connect()
    except duckdb.Error as exc:
        raise EveReadError(_first_line(exc)) from None
    try:
        try:
            reader = con.sql(_query(Path(location), schema)).to_arrow_reader(rows)
        except duckdb.Error as exc:
            raise EveReadError(_first_line(exc)) from None
        with ThreadPoolExecutor(1, thread_name_prefix="everead") as pool:
            ahead = pool.submit(_next_batch, reader, schema)
            try:
                while (batch := ahead.result()) is not None:
                    ahead = pool.submit(_next_batch, reader, schema)
                    if batch.num_rows:
                        yield batch
            finally:
                ahead.cancel()
                wait([ahead])
                reader.close()
    finally:
        con.close()


def _next_batch(reader: pa.RecordBatchReader, schema: pa.Schema) -> pa.RecordBatch | None:
    try:
        batch = reader.read_next_batch()
    except StopIteration:
        return None
    except (duckdb.Error, pa.ArrowException, OSError) as exc:
        raise EveReadError(_first_line(exc)) from None
    try:
        return batch.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise EveReadError(_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
