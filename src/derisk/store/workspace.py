"""The workspace: a directory holding one embedded DuckDB database.

This module is the one adapter to DuckDB (with its siblings in :mod:`derisk.store`). One writer at a
time: DuckDB locks the file for a read-write process. Every change happens inside
:meth:`Workspace.transaction`, so an error or an interruption leaves the workspace as it was; a
workspace that did not exist before a failed first write is removed again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import duckdb
import pyarrow as pa

from derisk import interrupts
from derisk.errors import StoreError
from derisk.flows import ATTRIBUTION_FIELDS, FLOW_SCHEMA, STORED_SCHEMA
from derisk.store import DB_FILE, DEFAULT_WORKSPACE

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
#: DuckDB settings for every workspace connection. The memory limit bounds the buffer pool (DuckDB
#: otherwise keeps up to 80% of RAM of written pages), so an ingest's memory does not grow with its
#: input; DuckDB spills to a temporary folder beside the database instead. No progress bar: only
#: derisk's own output reaches the terminal. No extension is ever downloaded.
ENGINE_SETTINGS: Final[dict[str, str | bool | int]] = {
    "memory_limit": "512MB",
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}

_ARROW_TO_SQL: Final = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.int32(): "INTEGER",
    pa.int16(): "SMALLINT",
    pa.bool_(): "BOOLEAN",
    pa.float64(): "DOUBLE",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",
}


def sql_columns(schema: pa.Schema) -> str:
    """Column definitions for a CREATE TABLE from an Arrow schema."""
    return ", ".join(f'"{f.name}" {_ARROW_TO_SQL[f.type]}' for f in schema)


ATTRIBUTION_TABLE_SCHEMA: Final = pa.schema(
    [
        pa.field("dst_asn", pa.int64()),
        pa.field("dst_domain", pa.string()),
        pa.field("dst_as_country", pa.string()),
        *ATTRIBUTION_FIELDS,
    ]
)

_CREATE: Final = [
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE IF NOT EXISTS inputs (
        input_id VARCHAR PRIMARY KEY, path VARCHAR, format VARCHAR, digest VARCHAR, size_bytes BIGINT,
        site_digest VARCHAR, ipdata_version VARCHAR, flow_count BIGINT, ingested_at TIMESTAMPTZ)""",
    f"CREATE TABLE IF NOT EXISTS flows ({sql_columns(STORED_SCHEMA)})",
    f"CREATE TABLE IF NOT EXISTS attribution ({sql_columns(ATTRIBUTION_TABLE_SCHEMA)})",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, started_at TIMESTAMPTZ, site VARCHAR, site_digest VARCHAR,
        ipdata_version VARCHAR, registry_version VARCHAR, inputs VARCHAR)""",
]
#: Columns added after schema version 1 was first written (inserts name their columns): a workspace
#: created by an older derisk gains them; a new one has them from its CREATE TABLE.
_UPGRADE: Final = [
    "ALTER TABLE flows ADD COLUMN IF NOT EXISTS conn_state VARCHAR",
    "ALTER TABLE flows ADD COLUMN IF NOT EXISTS is_attempt BOOLEAN",
    # The attribution table is rebuilt at every analysis; an older one gains the layer columns
    # (appended in the order of ATTRIBUTION_FIELDS, so positional inserts stay right).
    *(
        f'ALTER TABLE attribution ADD COLUMN IF NOT EXISTS "{f.name}" {_ARROW_TO_SQL[f.type]}'
        for f in ATTRIBUTION_FIELDS
    ),
]

# The canonical flow table as analyses see it: stored flows with the current attribution.
_FLOWS_VIEW: Final = (
    "CREATE OR REPLACE VIEW flows_attributed AS SELECT f.*, "
    + ", ".join(f'a."{f.name}"' for f in ATTRIBUTION_FIELDS)
    + " FROM flows f LEFT JOIN attribution a"
    " ON f.dst_asn IS NOT DISTINCT FROM a.dst_asn AND f.dst_domain IS NOT DISTINCT FROM a.dst_domain"
    " AND f.dst_as_country IS NOT DISTINCT FROM a.dst_as_country"
)


def _database(path: Path | None) -> tuple[Path, Path]:
    """(workspace directory, its database file); the default workspace when ``path`` is None."""
    folder = Path(path) if path is not None else DEFAULT_WORKSPACE
    return folder, folder / DB_FILE


def _keep_private(folder: Path, db: Path) -> None:
    """Flows and alerts are for the workspace's owner only: the folder 0700, the database 0600.

    Applied whenever a workspace is opened for writing, so a workspace made by an older derisk (or
    copied with other modes) is tightened too; DuckDB's own files (the write-ahead log) are created
    inside the private folder. A folder owned by someone else is left as it is.
    """
    try:
        if folder.stat().st_uid != os.getuid():
            return
        folder.chmod(0o700)
        if db.exists():
            db.chmod(0o600)
    except OSError as exc:
        log.warning("could not restrict the permissions of %s: %s", folder, exc.strerror)


def is_interrupt(exc: BaseException) -> bool:
    """Ctrl-C that landed inside DuckDB: its own exception, or a RuntimeError from an Arrow scan."""
    return isinstance(exc, duckdb.InterruptException) or (
        isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()
    )


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[str]:
    """Expose an Arrow table to SQL as ``name`` for the block.

    Unregistering never hides the block's own error: after an interrupted statement DuckDB refuses
    every call, ``unregister`` included, until the transaction is rolled back.
    """
    con.register(name, table)
    try:
        yield name
    finally:
        try:
            con.unregister(name)
        except duckdb.Error:
            log.debug("could not unregister %s (transaction aborted)", name)


#: DuckDB's write-ahead log and the files of a checkpoint in progress, beside the database file.
_LOG_SUFFIXES: Final = (".wal", ".wal.checkpoint", ".wal.recovery")


def _prepare(con: duckdb.DuckDBPyConnection, statements: list[str]) -> None:
    """Run the schema statements and record the schema version, in one transaction: one commit to
    the write-ahead log instead of one per statement."""
    con.execute("BEGIN TRANSACTION")
    try:
        for ddl in statements:
            con.execute(ddl)
        con.execute(
            "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) DO NOTHING",
            [str(SCHEMA_VERSION)],
        )
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # an interrupted statement aborts it already
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def _remove_database_files(db: Path) -> None:
    for file in (db, *(db.with_name(db.name + suffix) for suffix in _LOG_SUFFIXES)):
        file.unlink(missing_ok=True)


def _create_database(db: Path) -> None:
    """Make a new workspace database all at once.

    It is built and checkpointed under a temporary name in the workspace folder, then linked to its
    name, which fails if another process made one first (theirs is kept). A process killed while
    creating leaves only a temporary file, removed by the next creation, never a half-written
    database that every later open would refuse.
    """
    for stale in db.parent.glob(f".{db.name}.creating-*"):
        if not _alive(stale.name.rpartition("-")[2]):
            _remove_database_files(stale)
    building = db.with_name(f".{db.name}.creating-{os.getpid()}")
    _remove_database_files(building)
    try:
        con = duckdb.connect(str(building), config=dict(ENGINE_SETTINGS))
        try:
            _prepare(con, [*_CREATE, _FLOWS_VIEW])
            con.execute("CHECKPOINT")
        finally:
            con.close()
        building.chmod(0o600)
        with contextlib.suppress(FileExistsError):  # made by another process meanwhile: use theirs
            os.link(building, db)
    except OSError as exc:
        raise StoreError(f"cannot create workspace: {exc.strerror}", source=str(db.parent)) from None
    except duckdb.Error as exc:
        raise StoreError(f"cannot create workspace: {_first_line(exc)}", source=str(db.parent)) from None
    finally:
        _remove_database_files(building)


def _alive(pid: str) -> bool:
    """Whether the process numbered ``pid`` (a temporary file's suffix) still runs."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _first_line(exc: BaseException) -> str:
    """DuckDB's message, one line (it may carry a stack trace after it)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _connect(db: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """Open the database; for a read-only open, finish a recovery a crash left undone first.

    After a writer was killed (``kill -9``, power loss) its last commits are in the write-ahead log.
    A read-write open replays the log into the database; a read-only open replays it in memory, and
    DuckDB's read-only replay fails on some logs its read-write replay takes. Then, when no process
    holds the database (a writer's lock would have refused the read-only open already), the log is
    replayed once by a read-write open, as the next writer would, and the read-only open tried again.
    """
    try:
        return duckdb.connect(str(db), read_only=read_only, config=dict(ENGINE_SETTINGS))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreError("locked by another derisk process", source=str(db)) from None
        problem: BaseException = exc
    except duckdb.Error as exc:
        problem = exc
    logs = [db.with_name(db.name + suffix) for suffix in _LOG_SUFFIXES]
    if read_only and any(log_file.exists() for log_file in logs):
        log.info("%s: replaying the write-ahead log a crash left (%s)", db, _first_line(problem))
        try:
            duckdb.connect(str(db), config=dict(ENGINE_SETTINGS)).close()
            return duckdb.connect(str(db), read_only=True, config=dict(ENGINE_SETTINGS))
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreError("locked by another derisk process", source=str(db)) from None
            problem = exc
        except duckdb.Error as exc:
            problem = exc
    raise StoreError(f"not a usable workspace database ({_first_line(problem)})", source=str(db))


class Workspace:
    """An open workspace. Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: Path, con: duckdb.DuckDBPyConnection, *, read_only: bool, created: bool) -> None:
        self.path = path
        self.con = con
        self.read_only = read_only
        self._created = created
        self._wrote = False

    # -- opening -------------------------------------------------------------------------------
    @staticmethod
    def exists(path: Path | None = None) -> bool:
        """Whether ``path`` holds a workspace database already."""
        return _database(path)[1].exists()

    @classmethod
    def open(cls, path: Path | None = None, *, create: bool = True, read_only: bool = False) -> Workspace:
        path, db = _database(path)
        if path.exists() and not path.is_dir():
            raise StoreError("is not a directory (a workspace is a directory)", source=str(path))
        created = False
        new = not db.exists()
        if new:
            if not create or read_only:
                raise StoreError(
                    "no workspace here (run `derisk analyze` to create one, or pass --workspace)",
                    source=str(path),
                )
            try:
                created = not path.exists()
                path.parent.mkdir(parents=True, exist_ok=True)
                path.mkdir(mode=0o700, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create workspace: {exc.strerror}", source=str(path)) from None
            _create_database(db)
        if not read_only:
            _keep_private(path, db)
        con = _connect(db, read_only=read_only)
        try:
            con.execute("SET enable_progress_bar = false")  # a session setting, not a connect option
        except duckdb.Error:
            log.debug("this DuckDB has no progress-bar setting")
        ws = cls(path, con, read_only=read_only, created=created)
        if not read_only:
            ws._migrate()
        else:
            ws._check_version()
        return ws

    def _migrate(self) -> None:
        """Bring the tables of a workspace made by an older derisk up to date (a no-op on a current
        one), in one transaction."""
        try:
            _prepare(self.con, [*_CREATE, *_UPGRADE, _FLOWS_VIEW])
        except duckdb.Error as exc:
            raise StoreError(f"cannot prepare workspace: {exc}", source=str(self.path)) from None
        self._check_version()

    def _check_version(self) -> None:
        try:
            rows = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
            row = rows[0] if rows else None
        except duckdb.Error:
            raise StoreError("not a derisk workspace (no meta table)", source=str(self.path)) from None
        if row is None or int(row[0]) != SCHEMA_VERSION:
            found = row[0] if row else "none"
            raise StoreError(
                f"workspace schema version {found}, this derisk expects {SCHEMA_VERSION}",
                source=str(self.path),
            )

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
        if exc_type is not None and self._created and not self._wrote:
            # A workspace created for a write that then failed: leave the disk as it was.
            shutil.rmtree(self.path, ignore_errors=True)

    # -- writing -------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """All-or-nothing: commits when the block ends normally, rolls back on any exception."""
        if self.read_only:
            raise StoreError("workspace opened read-only", source=str(self.path))
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
            interrupts.check()  # a Ctrl-C the engine swallowed still means: do not commit
        except BaseException as exc:
            try:
                self.con.execute("ROLLBACK")
            except duckdb.Error:
                # An interrupted statement can leave the transaction aborted; closing the
                # connection discards it all the same.
                log.debug("rollback failed; the uncommitted transaction is discarded on close")
            if is_interrupt(exc):
                raise KeyboardInterrupt from None
            raise
        try:
            self.con.execute("COMMIT")
        except duckdb.Error as exc:
            raise StoreError(f"could not commit: {exc}", source=str(self.path)) from None
        self._wrote = True

    # -- reading -------------------------------------------------------------------------------
    def read_flows(
        self, columns: list[str] | None = None, where: str | None = None, params: list[Any] | None = None
    ) -> pa.Table:
        """The canonical flow table (stored flows with the current attribution) as Arrow."""
        names = columns or FLOW_SCHEMA.names
        unknown = sorted(set(names) - set(FLOW_SCHEMA.names))
        if unknown:
            raise StoreError(f"unknown flow columns: {', '.join(unknown)}", source=str(self.path))
        cols = ", ".join(f'"{n}"' for n in names)
        sql = f"SELECT {cols} FROM flows_attributed" + (f" WHERE {where}" if where else "")
        table = self.query_arrow(sql, params)
        return table.cast(pa.schema([FLOW_SCHEMA.field(n) for n in names]))

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()

    def query_arrow(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        relation = self.con.sql(sql, params=params or None)
        if relation is None:
            raise StoreError("query returned no result set", source=str(self.path))
        table: pa.Table = relation.to_arrow_table()
        return table

    def flow_count(self) -> int:
        return int(self.con.execute("SELECT count(*) FROM flows").fetchall()[0][0])
