"""Zeek logs in, canonical flow batches out.

:func:`read_zeek` takes a conn.log (plain or gzip, TSV or JSON lines) or a directory of Zeek logs and
yields batches of :data:`derisk.flows.INGEST_SCHEMA`. DuckDB is the one reader of every variant
(:mod:`derisk.store.zeekread`: its CSV reader for TSV, its JSON reader for JSON lines, its gzip
decompression); it streams the conn log in batches, so memory stays bounded whatever the log's
size. The companion logs (ssl, quic, http, dns) are read whole by the same DuckDB database and
joined by uid and by DNS answer there (see :mod:`.zeek_join`). Python only checks headers, names
the bad line when DuckDB refuses a file, and unescapes and bounds text.
Contract for users: ``docs/ingest-zeek.md``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError
from derisk.flows import BATCH_ROWS
from derisk.ingest import zeek_tsv
from derisk.ingest.zeek_convert import CONN_NOT_NULL, duck_flows
from derisk.ingest.zeek_damage import Damage, Said, cut_warning, gzip_cut, gzip_cut_warning
from derisk.ingest.zeek_io import bytes_per_line, read_error
from derisk.ingest.zeek_join import Companions
from derisk.ingest.zeek_log import ZeekLog, column, open_log, text, timestamps
from derisk.store import zeekread
from derisk.store.zeekjoin import Database, connect

_log = logging.getLogger(__name__)

#: conn.log columns we need, with the Zeek type each must be declared as.
CONN_REQUIRED: Final = {
    "ts": "time",
    "uid": "string",
    "id.orig_h": "addr",
    "id.orig_p": "port",
    "id.resp_h": "addr",
    "id.resp_p": "port",
    "proto": "enum",
    "orig_pkts": "count",
    "orig_ip_bytes": "count",
    "resp_pkts": "count",
    "resp_ip_bytes": "count",
}
CONN_OPTIONAL: Final = {
    "duration": "interval",
    "service": "string",
    "conn_state": "string",
    "orig_bytes": "count",
    "resp_bytes": "count",
    "ip_proto": "count",  # Zeek 6+: the IP protocol number, also of connections proto calls unknown_transport
}

SSL_REQUIRED: Final = {"uid": "string", "server_name": "string"}
SSL_OPTIONAL: Final = {"ja4": "string"}
HTTP_REQUIRED: Final = {"uid": "string", "host": "string"}
HTTP_OPTIONAL: Final = {"user_agent": "string"}
DNS_REQUIRED: Final = {"ts": "time", "uid": "string", "query": "string"}
DNS_OPTIONAL: Final = {"id.orig_h": "addr", "qtype_name": "string", "answers": "vector[string]"}

#: Text columns that may carry Zeek's ``\xHH`` escapes in TSV logs.
_TEXT_COLUMNS: Final = frozenset({"service", "server_name", "ja4", "host", "user_agent", "query"})


#: ``json_streaming_``: Corelight's json-streaming-logs package (``json_streaming_conn.1.log``, ...).
_LOG_NAME = re.compile(r"^(?:json_streaming_)?(conn|dns|ssl|quic|http)(\.[^/]+)?\.(log|json)(\.gz)?$")
#: The dated folders of Zeek's log archive (``zeekctl`` moves each day's rotated logs there).
_DAY_DIR = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


@dataclass
class ZeekInput:
    """The files of one Zeek input: conn logs to stream and companion logs to join."""

    conn: list[Path]
    companions: dict[str, list[Path]] = field(default_factory=dict)


def discover(path: Path) -> ZeekInput:
    """The logs that ``path`` (a conn.log or a directory of logs) stands for."""
    display = str(path)
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except OSError as exc:
        raise read_error(exc, display) from exc
    if not exists:
        raise InputError("no such file or directory", source=display)
    if not is_dir:
        return ZeekInput(conn=[path])
    found: dict[str, list[Path]] = {"conn": [], "dns": [], "ssl": [], "quic": [], "http": []}
    for entry in _archive_entries(path):
        match = _LOG_NAME.match(entry.name)
        if match and entry.is_file():
            found[match.group(1)].append(entry)
    if not found["conn"]:
        raise InputError("no Zeek conn log (conn*.log or conn*.log.gz) in this directory", source=display)
    # The package writes its logs beside Zeek's own by default (the same records): read one set.
    found = {k: [f for f in v if not f.name.startswith("json_")] or v for k, v in found.items()}
    return ZeekInput(conn=found.pop("conn"), companions=found)


def _archive_entries(path: Path) -> list[Path]:
    """The entries of a log directory: those of its dated folders (oldest first), then its own.

    Zeek's archive (``logs/2024-05-01/conn.00:00:00-01:00:00.log.gz``) is one folder per day; the
    directory itself may also hold logs (a folder of rotated logs, or one day's folder given alone).
    Other subdirectories (``current``, still being written) are not read.
    """
    display = str(path)
    try:
        entries = sorted(path.iterdir())
        days = [entry for entry in entries if _DAY_DIR.match(entry.name) and entry.is_dir()]
        inside = [sorted(day.iterdir()) for day in days]
    except OSError as exc:
        raise read_error(exc, display) from exc
    return [entry for day in inside for entry in day] + entries


def has_conn_log(path: Path) -> bool:
    """Whether a directory holds a Zeek conn log, itself or in its dated archive folders."""
    try:
        return any(
            (match := _LOG_NAME.match(entry.name)) and match.group(1) == "conn" and entry.is_file()
            for entry in _archive_entries(path)
        )
    except InputError:
        return False


def _read_companion(
    path: Path, kind: str, database: Database, strict: bool = True, said: Said | None = None
) -> pa.Table:
    required, optional = {
        "ssl": (SSL_REQUIRED, SSL_OPTIONAL),
        "quic": (SSL_REQUIRED, SSL_OPTIONAL),
        "http": (HTTP_REQUIRED, HTTP_OPTIONAL),
        "dns": (DNS_REQUIRED, DNS_OPTIONAL),
    }[kind]
    log = open_log(path, required, optional, frozenset({"uid", "ts"}))
    told = [cut_warning(log, strict)]
    if log.gzip and not strict:  # a companion is small: checked before it is read
        cut_log = gzip_cut(log, zeekread.check_gzip(log.path), strict)
        if cut_log is not None:
            log = cut_log
            told.append(gzip_cut_warning(log))
    damage = None if strict else Damage(log, frozenset({"uid"}))
    table = log.read(database, None if damage is None else damage.rejected)
    if log.gzip and not log.gzip_cut:
        _raise_if_damaged(log)
    if damage is not None:
        told.append(damage.conclude(table.num_rows, companion=True))
        table = table.slice(0, 0) if damage.whole else table
    if said is not None:
        said.cut(log)
    _warn(log, told, damage, said)
    if table.num_rows == 0:
        return pa.table({name: pa.array([], pa.string()) for name in log.columns})
    columns: dict[str, pa.Array] = {}
    for name in log.columns:
        values = column(table, name)
        if name == "ts":
            values = timestamps(values, log, frozenset({"ts"}))
        elif name == "answers":
            values = _answers(values, log)
        elif name in _TEXT_COLUMNS:
            values = text(values, log)
        columns[name] = values
    return pa.table(columns)


def _raise_if_damaged(log: ZeekLog) -> None:
    problem = zeekread.check_gzip(log.path)
    if problem == "truncated":
        raise InputError("gzip data is truncated", source=log.display)
    if problem is not None:
        raise InputError(f"gzip data is {problem}", source=log.display)


def _answers(values: pa.Array, log: ZeekLog) -> pa.Array:
    if log.header is not None:
        values = zeek_tsv.split_sets(values, log.header)
        flat = zeek_tsv.unescape_column(pc.list_flatten(values))
        values = pa.ListArray.from_arrays(values.offsets, flat, mask=pc.is_null(values))
    return values


def _warn(log: ZeekLog, told: list[str | None], damage: Damage | None, said: Said | None) -> None:
    for warning in told:
        if warning:
            _log.warning("%s: %s", log.display, warning)
            if said is not None:
                said.warnings.append(f"{log.display}: {warning}")
    if said is not None and damage is not None:
        said.lines_left_out += damage.left_out


def load_companions(
    zeek_input: ZeekInput,
    database: Database | None = None,
    *,
    strict: bool = True,
    said: Said | None = None,
) -> Companions:
    """Read the ssl, quic, http and dns logs of an input whole (they are small next to conn.log).

    Unless ``strict``, lines that cannot be read are left out, logged and told ``said`` (see
    :mod:`.zeek_damage`). ``database``: the input's DuckDB database (from :func:`derisk.store.zeekjoin.connect`), which the
    companions then own and close (the caller closes it if this raises); by default one is opened."""
    tables: dict[str, pa.Table | None] = {}
    own = database is None
    # The input's DuckDB database: its reads and joins (opening one costs 0.02-0.1 CPU s).
    database = database if database is not None else connect()
    try:
        for kind in ("ssl", "http", "dns"):
            paths = zeek_input.companions.get(kind, [])
            if kind == "ssl":  # QUIC's Initial carries the same SNI; quic.log has the same two columns
                paths = paths + zeek_input.companions.get("quic", [])
            parts = [
                _read_companion(
                    path, "quic" if path.name.startswith("quic") else kind, database, strict, said
                )
                for path in paths
            ]
            parts = [part for part in parts if part.num_rows]
            tables[kind] = pa.concat_tables(parts, promote_options="permissive") if parts else None
        return Companions(ssl=tables["ssl"], http=tables["http"], dns=tables["dns"], database=database)
    except BaseException:
        if own:
            database.close()
        raise


class _Started:
    """A conn log's :func:`~derisk.store.zeekread.read_conn` whose first batch is read on a thread
    from the start, so that DuckDB reads it while the caller does other work (the companions)."""

    def __init__(self, log: ZeekLog, database: Database, uid_hash: bool) -> None:
        # The read's own cursor of the database, made here: the thread then touches nothing shared.
        self._cursor = database.cursor()
        self._batches = zeekread.read_conn(
            log.source(), rows=BATCH_ROWS, database=self._cursor, uid_hash=uid_hash
        )
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="zeekfirst")
        self._first: Future[pa.RecordBatch | None] | None = self._pool.submit(next, self._batches, None)

    def __iter__(self) -> _Started:
        return self

    def __next__(self) -> pa.RecordBatch:
        if self._first is not None:
            first, self._first = self._first, None
            batch = first.result()
            if batch is None:
                raise StopIteration
            return batch
        return next(self._batches)

    def close(self) -> None:
        """Wait for the first batch (never two threads in the generator), then close the read."""
        if self._first is not None:
            wait([self._first])
            self._first = None
        self._pool.shutdown()
        self._batches.close()
        self._cursor.close()


class _Reading:
    """:func:`read_zeek`'s batches; closing them closes the reads and the companions' database even
    when no batch was asked for (a generator not started runs no ``finally`` on close)."""

    def __init__(self, batches: Generator[pa.RecordBatch, None, None], cleanup: Callable[[], None]) -> None:
        self._batches = batches
        self._cleanup = cleanup

    def __iter__(self) -> _Reading:
        return self

    def __next__(self) -> pa.RecordBatch:
        return next(self._batches)

    def close(self) -> None:
        self._batches.close()
        self._cleanup()


def _stream(
    log: ZeekLog,
    companions: Companions,
    progress: Callable[[int], None] | None,
    started: _Started | None = None,
    *,
    strict: bool = True,
    cut: str | None = None,
    said: Said | None = None,
) -> Iterator[pa.RecordBatch]:
    """Read a conn log (TSV or JSON, plain or gzip) with DuckDB (:mod:`derisk.store.zeekread`).

    When DuckDB fails, the file is re-read line by line to name the first bad line; when no line is
    bad (DuckDB's fast TSV options cut a line at a ``#`` inside it, or a line is longer than their
    limit), DuckDB reads on with its tolerant options after the rows already yielded. Unless
    ``strict``, a bad line in a TSV log does the same, the tolerant read leaving out (and counting)
    the lines that cannot be read, and a last line cut short is left out (:mod:`.zeek_damage`);
    what was left out (and ``cut``, :func:`.zeek_damage.cut_warning`'s) is logged and told ``said``. A gzip log's CRCs are checked on a thread beside the
    read (DuckDB does not check them); a mismatch raises after the last batch, so a run that stores
    the batches refuses the input whole. Progress is reported from an estimate of bytes per line and
    completed to the file's size at the end. ``started``: this log's first read (fast options, from
    its first row), already under way.
    """
    told = [cut]
    size = log.path.stat().st_size
    per_line = bytes_per_line(log.path) if progress is not None else 0.0
    yielded = consumed = reported = 0
    tolerant = False
    damage = None if strict or log.header is None else Damage(log, CONN_NOT_NULL)
    lenient = False  # a bad record was met: unusable records are left out and counted
    with ThreadPoolExecutor(1, thread_name_prefix="zeekcrc") as pool:
        check = pool.submit(zeekread.check_gzip, log.path) if log.gzip else None
        while True:
            batches: Generator[pa.RecordBatch, None, None] | _Started
            if started is not None:
                batches, started = started, None
            else:
                batches = zeekread.read_conn(
                    log.source(),
                    rows=BATCH_ROWS,
                    database=companions.database,
                    tolerant=tolerant,
                    skip=consumed,
                    uid_hash=companions.joins_by_uid,
                    rejected=None if damage is None else damage.rejected,
                )
            try:
                for batch in batches:
                    usable = damage.usable(batch) if lenient and damage is not None else batch
                    flows = duck_flows(usable, log, companions) if usable.num_rows else None
                    consumed += batch.num_rows  # DuckDB's rows, the next read's skip
                    if flows is None:
                        continue
                    yield flows
                    yielded += flows.num_rows
                    if progress is not None:
                        done = min(size - 1, int(consumed * per_line))
                        if done > reported:
                            progress(done - reported)
                            reported = done
                break
            except zeekread.ZeekReadError as exc:
                if check is not None and not log.gzip_cut and check.result() is not None:
                    cut_log = gzip_cut(log, check.result(), strict)
                    if cut_log is None:
                        _raise_if_damaged(log)
                        raise  # not reached: the gzip problem raises
                    log = cut_log
                    told.append(gzip_cut_warning(log))
                    if said is not None:
                        said.cut(log)
                    continue
                problem = log.diagnose(exc, CONN_NOT_NULL)
                unread = problem.message.startswith("cannot read the log")
                if lenient or log.header is None or (tolerant and unread) or (damage is None and not unread):
                    raise problem from None
                if damage is not None and not unread:
                    damage.first, lenient = problem.message, True
                _log.info("%s: DuckDB's fast options could not read the log (%s); reading on with "
                          "its tolerant options", log.display, exc)  # fmt: skip
                tolerant = True
            finally:
                batches.close()
        if check is not None and check.result() is not None and not log.gzip_cut:
            _raise_if_damaged(log)
    if (log.cut is not None or log.gzip_cut) and consumed == 0:
        what = "gzip data is truncated" if log.gzip_cut else "the last line is cut short"
        raise InputError(f"{what}, before the first record", source=log.display)
    if damage is not None:
        told.append(damage.conclude(yielded))
    _warn(log, told, damage, said)
    if progress is not None and size > reported:
        progress(size - reported)


def read_zeek(
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    strict: bool = False,
    notes: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield :data:`INGEST_SCHEMA` batches for a Zeek conn.log or a directory of Zeek logs.

    A last line cut short (a log still being written) and, in TSV logs, lines that cannot be read
    are left out with a warning, counted in ``notes`` (``lines_left_out``, ``last_lines_cut``,
    ``cut_at_byte``, ``warnings``) once the batches are exhausted; with ``strict`` they refuse the
    input instead, as does a log of which more lines are bad than read (:mod:`.zeek_damage`).

    Every file is found and every header checked, and the companion logs are read, before this
    returns; problems inside conn.log bodies (ragged lines, bad values, truncated gzip) raise
    :class:`InputError` while iterating, naming the file and line. ``progress`` is called with the
    number of bytes (as stored on disk) read since its previous call: first once for all companion
    logs (read before this returns), then as the conn logs are read; over a whole run the calls add
    up to the total size of the logs read (see :func:`log_files`).
    """
    zeek_input = discover(path)
    logs = [
        open_log(conn, CONN_REQUIRED, CONN_OPTIONAL, frozenset(CONN_REQUIRED)) for conn in zeek_input.conn
    ]
    cuts = [cut_warning(log, strict) for log in logs]
    said = Said()
    for log in logs:
        said.cut(log)
    database = connect()
    # DuckDB reads the first conn log's first batch on its threads while this thread reads and
    # prepares the companion logs (wall time: the work is the same). The uids are hashed for the
    # join whenever there are companion logs (a companion without rows leaves the hashes unused).
    try:
        started = _Started(logs[0], database, uid_hash=any(zeek_input.companions.values()))
    except BaseException:
        database.close()
        raise
    try:
        companions = load_companions(zeek_input, database, strict=strict, said=said)
    except BaseException:
        started.close()
        database.close()
        raise

    def generate() -> Generator[pa.RecordBatch, None, None]:
        companion_bytes = sum(p.stat().st_size for paths in zeek_input.companions.values() for p in paths)
        if progress is not None and companion_bytes:
            progress(companion_bytes)
        try:
            for n, log in enumerate(logs):
                first = started if n == 0 else None
                yield from _stream(log, companions, progress, first, strict=strict, cut=cuts[n], said=said)
            if notes is not None:
                notes.update(said.notes())
        finally:
            cleanup()

    def cleanup() -> None:
        if not closed:
            closed.append(True)
            started.close()  # closed already by its read, unless the first batch was never asked for
            companions.close()

    closed: list[bool] = []

    return _Reading(generate(), cleanup)


def log_files(path: Path) -> list[Path]:
    """Every file :func:`read_zeek` reads for ``path``: its conn logs, then its companion logs."""
    zeek_input = discover(path)
    return zeek_input.conn + [p for paths in zeek_input.companions.values() for p in paths]
