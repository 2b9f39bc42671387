"""DuckDB adapter: the one reader of Zeek log bodies, TSV or JSON lines, plain or gzip.

Only modules under ``derisk.store`` may import duckdb; this one lends DuckDB's CSV and JSON readers
to :mod:`derisk.ingest.zeek`. It knows nothing of Zeek headers beyond what it is told in a
:class:`LogSource`: the caller (which has already checked ``#fields`` and ``#types``, or the first
JSON object) passes the columns to read with their Zeek types, and the layout of the file:

* **TSV** (:class:`TsvLayout`): ``read_csv`` with the declared separator, the ``#fields`` names and
  explicit column types, no quoting and no escape interpretation (Zeek's ``\\xHH`` escapes reach the
  caller as text), the unset and empty markers as nulls, strict column counts. The fast options
  skip ``#``-lines (header, ``#close``, the headers of concatenated logs) with DuckDB's comment
  character; that also cuts a line at a ``#`` inside it, which changes the column count (an error)
  unless the ``#`` is in the last field, so a log whose last field is a text column that is read is
  always read with the *tolerant* options: no comment character, lines up to
  :data:`MAX_LINE_BYTES`, every line DuckDB rejects stored in a rejects table, and afterwards every
  rejected line must be a ``#``-line (else :class:`ZeekReadError` names the first other one). The
  caller may also ask for the tolerant options after the fast ones failed on a log with no bad
  line (a ``#`` inside a line, a line past DuckDB's default 2 MB limit).
* **JSON lines** (:class:`JsonLayout`): ``read_json`` of newline-delimited objects with explicit
  column types; keys spelt with another scope separator are renamed to Zeek's names; ``ts`` is epoch
  seconds, epoch milliseconds or an ISO 8601 string.

gzip is decompressed by DuckDB; it does not check the CRC-32 in a member's trailer, so
:func:`check_gzip` (run by the caller beside the read, on another thread) does. A plain log whose
last line is cut short is read up to it through a named pipe (``LogSource.end``, see
:mod:`derisk.store.zeeklines`).

:func:`read_conn` converts in the ``SELECT`` what SQL does cheaply: ``ts`` to microseconds,
``ts + duration`` to the last-seen time, ``proto`` to the IP protocol number, ports of TCP and UDP
flows, and whether a connection was an attempt without payload (``docs/ingest-zeek.md``,
"Connection attempts"). :func:`read_table` reads a companion log whole. Any failure raises
:class:`ZeekReadError` carrying DuckDB's first message line; the caller re-reads the file line by
line to name the bad line. Given a :class:`Rejected`, a tolerant read counts the lines it rejected
there instead of raising at the first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Generator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import duckdb
import pyarrow as pa

from derisk.store.spill import spill_directory
from derisk.store.sqltext import ident, literal
from derisk.store.zeekconn import conversion
from derisk.store.zeeklines import GLOB_CHARACTERS, GlobPath, Rejected, check_gzip, readable_path

__all__ = ["Rejected", "check_gzip"]  # re-exported for the Zeek reader

#: Threads DuckDB may use for one read (it parallelises the CSV and JSON scans).
MAX_THREADS: Final = 4
#: Longest line the tolerant options accept (DuckDB's default, 2 MB, applies to the fast ones).
MAX_LINE_BYTES: Final = 1 << 26
#: Zeek ``conn_state`` values of connections that may have carried nothing (see ``_attempt``).

_DUCK_TYPES: Final = {
    "time": "DOUBLE",
    "interval": "DOUBLE",
    "double": "DOUBLE",
    "count": "BIGINT",
    "int": "BIGINT",
    "port": "INTEGER",
}
_LIST_TYPES: Final = ("set[", "vector[")
_names = itertools.count()

#: A private DuckDB database, as other layers hold it (they never use it themselves).
Database = duckdb.DuckDBPyConnection


class ZeekReadError(Exception):
    """DuckDB could not read the log; the message is DuckDB's first line (for the caller's log).

    ``line`` is the line DuckDB named, when it did.
    """

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class TsvLayout:
    """A Zeek TSV body: every ``#fields`` name, the separator and the null markers."""

    fields: tuple[str, ...]
    separator: str
    nulls: tuple[str, ...]


@dataclass(frozen=True)
class JsonLayout:
    """Zeek JSON lines: ``ts`` as ``number`` (epoch s), ``millis`` or ``string`` (ISO 8601), and
    ``{Zeek's name: the key in this log}`` for keys spelt otherwise."""

    ts_kind: str
    keys: Mapping[str, str]


@dataclass(frozen=True)
class LogSource:
    """One log file to read: the columns wanted (Zeek name -> Zeek type) and its layout."""

    path: Path
    columns: Mapping[str, str]
    layout: TsvLayout | JsonLayout
    gzip: bool
    #: Read only the bytes before this offset (a plain log whose last line is cut short).
    end: int | None = None
    #: A gzip log cut short: read its content up to the last whole line before the cut.
    gzip_cut: bool = False

    def needs_tolerant(self) -> bool:
        """Whether the fast TSV options could cut a value short (a text column is the last field)."""
        if not isinstance(self.layout, TsvLayout) or not self.layout.fields:
            return False
        last = self.layout.fields[-1]
        return last in self.columns and self.columns[last] not in _DUCK_TYPES


def _duck_type(zeek_type: str, json_ts: str | None = None) -> str:
    if zeek_type == "time" and json_ts == "string":
        return "VARCHAR"
    if zeek_type.startswith(_LIST_TYPES) and json_ts is not None:
        return "VARCHAR[]"
    return _DUCK_TYPES.get(zeek_type, "VARCHAR")


def _location(path: Path) -> str:
    location = str(path.absolute())
    if any(char in location for char in GLOB_CHARACTERS):
        raise ZeekReadError("the path contains a glob character")  # see _readable
    return location


@contextlib.contextmanager
def _readable(source: LogSource) -> Iterator[LogSource]:
    """The source as DuckDB reads it (:func:`derisk.store.zeeklines.readable_path`: up to ``end``
    through a named pipe, and never under a path DuckDB would expand as a glob)."""
    try:
        with readable_path(source.path, source.end, gunzip=source.gzip and source.gzip_cut) as path:
            gzip = source.gzip and not source.gzip_cut
            yield dataclasses.replace(source, path=path, end=None, gzip=gzip, gzip_cut=False)
    except GlobPath as exc:
        raise ZeekReadError(str(exc)) from None


def relation(source: LogSource, *, tolerant: bool = False, rejects: str | None = None) -> str:
    """A ``SELECT`` of the source's columns under Zeek's names, in file order."""
    location = literal(_location(source.path))
    compression = "'gzip'" if source.gzip else "'none'"
    layout = source.layout
    if isinstance(layout, JsonLayout):
        keys = {name: layout.keys.get(name, name) for name in source.columns}
        columns = ", ".join(
            f"{literal(keys[name])}: {literal(_duck_type(kind, layout.ts_kind))}"
            for name, kind in source.columns.items()
        )
        select = ", ".join(f"{ident(keys[name])} AS {ident(name)}" for name in source.columns)
        return (
            f"SELECT {select} FROM read_json({location}, format='newline_delimited', "
            f"compression={compression}, maximum_object_size={MAX_LINE_BYTES}, columns={{{columns}}})"
        )
    columns = ", ".join(
        f"{literal(name)}: {literal(_duck_type(source.columns.get(name, 'string')))}"
        for name in layout.fields
    )
    options = (
        f"delim={literal(layout.separator)}, header=false, quote='', escape='', "
        f"nullstr=[{', '.join(literal(n) for n in layout.nulls)}], auto_detect=false, strict_mode=true, "
        f"null_padding=false, compression={compression}, columns={{{columns}}}"
    )
    select = ", ".join(ident(name) for name in source.columns)
    if not tolerant:
        return f"SELECT {select} FROM read_csv({location}, {options}, comment='#', ignore_errors=false)"
    assert rejects is not None
    first = layout.fields[0]
    where = (
        f" WHERE NOT starts_with({ident(first)}, '#')"
        if _duck_type(source.columns.get(first, "string")) == "VARCHAR"
        else ""
    )
    return (
        f"SELECT {select} FROM read_csv({location}, {options}, comment='', ignore_errors=true, "
        f"max_line_size={MAX_LINE_BYTES}, store_rejects=true, rejects_table={literal(rejects)}, "
        f"rejects_scan={literal(rejects + '_scan')}){where}"
    )


def _microseconds(source: LogSource, ts: str) -> str:
    layout = source.layout
    if isinstance(layout, JsonLayout) and layout.ts_kind == "string":
        return f"epoch_us(CAST({ts} AS TIMESTAMPTZ))"
    scale = 1000 if isinstance(layout, JsonLayout) and layout.ts_kind == "millis" else 1000000
    return f"CAST(round_even({ts} * {scale}, 0) AS BIGINT)"


def conn_query(
    source: LogSource, *, tolerant: bool = False, rejects: str | None = None, uid_hash: bool = True
) -> str:
    """The ``SELECT`` reading one conn log into :func:`read_conn`'s columns."""
    inner = relation(source, tolerant=tolerant, rejects=rejects)
    return conversion(inner, source.columns, _microseconds(source, ident("ts")), uid_hash)


def private_connection() -> duckdb.DuckDBPyConnection:
    """A private in-memory DuckDB connection (no database file, no extension loading), in UTC."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "temp_directory": spill_directory(),
        "threads": max(1, min(MAX_THREADS, pa.cpu_count())),
    }
    con = duckdb.connect(":memory:", config=config)
    con.execute("SET enable_progress_bar = false")  # only derisk's own output reaches the terminal
    with contextlib.suppress(duckdb.Error):  # without ICU, DuckDB's time zone is UTC already
        con.execute("SET TimeZone = 'UTC'")  # ISO 8601 times without an offset are UTC
    return con


def _connection(database: duckdb.DuckDBPyConnection | None) -> duckdb.DuckDBPyConnection:
    """A cursor of ``database`` (in UTC: a cursor does not inherit its session settings), else a
    new private connection."""
    if database is None:
        return private_connection()
    con = database.cursor()
    with contextlib.suppress(duckdb.Error):  # without ICU, DuckDB's time zone is UTC already
        con.execute("SET TimeZone = 'UTC'")  # ISO 8601 times without an offset are UTC
    return con


def read_conn(
    source: LogSource,
    *,
    rows: int,
    database: duckdb.DuckDBPyConnection | None = None,
    tolerant: bool = False,
    skip: int = 0,
    uid_hash: bool = True,
    rejected: Rejected | None = None,
) -> Generator[pa.RecordBatch, None, None]:
    """Stream a conn log's records as Arrow batches of at most ``rows`` rows, in file order.

    ``database``: a private in-memory connection to read through (a cursor of it is used and
    closed), saving the cost of opening one. ``tolerant``: the tolerant TSV options (see the
    module's description; also chosen when :meth:`LogSource.needs_tolerant`). ``skip``: rows to
    leave out at the start (those a failed fast read yielded already). ``uid_hash``: whether to
    compute ``uid_hash`` (null otherwise: no companion log to join by uid). ``rejected``: filled
    with the lines the tolerant options rejected, after the last batch, instead of raising at the
    first of them.

    Batches have the columns ``first_us``/``last_us`` (int64 microseconds since the epoch),
    ``src_ip``, ``src_port``, ``dst_ip``, ``dst_port``, ``protocol``, ``bytes_out``, ``bytes_in``,
    ``packets_out``, ``packets_in``, ``service`` and ``conn_state`` (raw text, Zeek escapes
    intact), ``uid``, ``is_attempt``, ``uid_hash`` (DuckDB's ``hash(uid)``, for
    :meth:`derisk.store.zeekjoin.UidJoin.join`) and ``plain_text`` (see :func:`_plain_text`). Raises :class:`ZeekReadError` on any failure, while
    iterating or before.
    """
    with _readable(source) as readable:
        yield from _read_conn(
            readable, rows, database, tolerant or source.needs_tolerant(), skip, uid_hash, rejected
        )


def _read_conn(
    source: LogSource,
    rows: int,
    database: duckdb.DuckDBPyConnection | None,
    tolerant: bool,
    skip: int,
    uid_hash: bool,
    rejected: Rejected | None = None,
) -> Generator[pa.RecordBatch, None, None]:
    rejects = f"_zeek_rejects_{next(_names)}" if tolerant else None
    query = conn_query(source, tolerant=tolerant, rejects=rejects, uid_hash=uid_hash)
    if skip:
        query = f"SELECT * FROM ({query}) OFFSET {int(skip)}"
    try:
        con = _connection(database)
    except duckdb.Error as exc:
        raise _error(exc) from None
    try:
        try:
            reader = con.sql(query).to_arrow_reader(rows)
        except duckdb.Error as exc:
            raise _error(exc) from None
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
        if rejects is not None:
            _check_rejects(con, rejects, rejected)
    finally:
        con.close()


def read_table(
    source: LogSource, database: duckdb.DuckDBPyConnection | None = None, rejected: Rejected | None = None
) -> pa.Table:
    """A companion log whole, its columns under Zeek's names; ``ts`` (when read) as int64 µs.

    TSV companions are read with the tolerant options (their text columns may hold a ``#``);
    ``rejected`` as for :func:`read_conn`.
    """
    with _readable(source) as readable:
        return _read_table(readable, database, rejected)


def _read_table(
    source: LogSource, database: duckdb.DuckDBPyConnection | None, rejected: Rejected | None
) -> pa.Table:
    tolerant = isinstance(source.layout, TsvLayout)
    rejects = f"_zeek_rejects_{next(_names)}" if tolerant else None
    inner = relation(source, tolerant=tolerant, rejects=rejects)
    columns = ", ".join(
        f"{_microseconds(source, ident(name))} AS {ident(name)}" if name == "ts" else ident(name)
        for name in source.columns
    )
    try:
        con = _connection(database)
    except duckdb.Error as exc:
        raise _error(exc) from None
    try:
        try:
            table = con.sql(f"SELECT {columns} FROM ({inner})").to_arrow_table()
        except (duckdb.Error, pa.ArrowException) as exc:
            raise _error(exc) from None
        if rejects is not None:
            _check_rejects(con, rejects, rejected)
        return table
    finally:
        con.close()


def convert_records(
    records: pa.Table, columns: Mapping[str, str], database: duckdb.DuckDBPyConnection | None = None
) -> pa.Table:
    """conn records already read (:func:`read_table`'s columns: Zeek's names, ``ts`` in int64 µs)
    converted by the same ``SELECT`` as :func:`read_conn`, in the same order."""
    try:
        con = _connection(database)
    except duckdb.Error as exc:
        raise _error(exc) from None
    try:
        con.register("_records", records)
        try:
            query = conversion("SELECT * FROM _records", columns, ident("ts"))
            return con.sql(query).to_arrow_table()
        except (duckdb.Error, pa.ArrowException) as exc:
            raise _error(exc) from None
        finally:
            con.unregister("_records")
    finally:
        con.close()


def _check_rejects(con: duckdb.DuckDBPyConnection, rejects: str, rejected: Rejected | None) -> None:
    """Every line the tolerant options rejected must be a ``#``-line (a header or ``#close``); with
    ``rejected``, the others are counted there instead (DuckDB stores one row per error of a line)."""
    try:
        bad = con.execute(
            f"SELECT line, error_message FROM {ident(rejects)} "
            "WHERE NOT starts_with(coalesce(csv_line, ''), '#') ORDER BY line LIMIT 1"
        ).fetchone()
        count = 0
        if bad is not None and rejected is not None:
            found = con.execute(
                f"SELECT count(DISTINCT line) FROM {ident(rejects)} "
                "WHERE NOT starts_with(coalesce(csv_line, ''), '#')"
            ).fetchone()
            count = int(found[0]) if found is not None else 0
        con.execute(f"DROP TABLE IF EXISTS {ident(rejects)}; DROP TABLE IF EXISTS {ident(rejects + '_scan')}")
    except duckdb.Error as exc:
        raise _error(exc) from None
    if bad is None:
        return
    if rejected is None:
        raise ZeekReadError(_first_line(str(bad[1])), line=int(bad[0]))
    if rejected.first_line is None or int(bad[0]) < rejected.first_line:
        rejected.first_line, rejected.first_message = int(bad[0]), _first_line(str(bad[1]))
    rejected.lines += count


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None
    except (duckdb.Error, pa.ArrowException, OSError) as exc:
        raise _error(exc) from None


def _error(exc: BaseException) -> ZeekReadError:
    text = _first_line(str(exc))
    return ZeekReadError(text or type(exc).__name__)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
