"""Zeek logs in, canonical flow batches out.

:func:`read_zeek` takes a conn.log (plain or gzip, TSV or JSON lines) or a directory of Zeek logs and
yields batches of :data:`derisk.flows.INGEST_SCHEMA`. A plain TSV conn.log is read by DuckDB's CSV
reader (:mod:`derisk.store.zeekread`); gzip and JSON conn logs, and TSV ones DuckDB cannot read
faithfully, are cut into pieces at line ends, which a few threads parse with Arrow's CSV or JSON
reader. Batches are converted column-wise, so memory stays bounded whatever the log's size; the
companion logs (ssl, http, dns) are loaded whole and joined by uid (see :mod:`.zeek_join`).
Contract for users: ``docs/ingest-zeek.md``.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError
from derisk.flows import BATCH_ROWS
from derisk.ingest import zeek_tsv
from derisk.ingest.zeek_convert import CONN_NOT_NULL, duck_flows, to_flows
from derisk.ingest.zeek_io import (
    LineTooLong,
    bytes_per_line,
    read_error,
)
from derisk.ingest.zeek_join import Companions
from derisk.ingest.zeek_log import ZeekLog, column, open_log, text, timestamps
from derisk.store import zeekread

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
}

SSL_REQUIRED: Final = {"uid": "string", "server_name": "string"}
SSL_OPTIONAL: Final = {"ja4": "string"}
HTTP_REQUIRED: Final = {"uid": "string", "host": "string"}
HTTP_OPTIONAL: Final = {"user_agent": "string"}
DNS_REQUIRED: Final = {"ts": "time", "uid": "string", "query": "string"}
DNS_OPTIONAL: Final = {"id.orig_h": "addr", "qtype_name": "string", "answers": "vector[string]"}

#: Text columns that may carry Zeek's ``\xHH`` escapes in TSV logs.
_TEXT_COLUMNS: Final = frozenset({"service", "server_name", "ja4", "host", "user_agent", "query"})

#: conn.log columns with few distinct values: read dictionary-encoded and converted per distinct value.
_DICTIONARY_COLUMNS: Final = frozenset({"proto", "service", "conn_state"})

_LOG_NAME = re.compile(r"^(conn|dns|ssl|quic|http)(\.[^/]+)?\.(log|json)(\.gz)?$")
#: The dated folders of Zeek's log archive (``zeekctl`` moves each day's rotated logs there).
_DAY_DIR = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
#: Threads that parse and convert conn.log segments (bounded: each holds a segment in memory).
_MAX_WORKERS: Final = 4


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
            entry.name.startswith("conn") and _LOG_NAME.match(entry.name) and entry.is_file()
            for entry in _archive_entries(path)
        )
    except InputError:
        return False


def _read_companion(path: Path, kind: str) -> pa.Table:
    required, optional = {
        "ssl": (SSL_REQUIRED, SSL_OPTIONAL),
        "quic": (SSL_REQUIRED, SSL_OPTIONAL),
        "http": (HTTP_REQUIRED, HTTP_OPTIONAL),
        "dns": (DNS_REQUIRED, DNS_OPTIONAL),
    }[kind]
    log = open_log(path, required, optional, frozenset({"uid", "ts"}))
    try:
        parts = [log.parse(data) for data, _ in log.segments()]
    except (pa.ArrowInvalid, LineTooLong, OSError, EOFError) as exc:
        raise log.diagnose(exc, frozenset({"uid"})) from None
    table = pa.concat_tables(parts) if parts else None
    if table is None or table.num_rows == 0:
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


def _answers(values: pa.Array, log: ZeekLog) -> pa.Array:
    if log.header is not None:
        values = zeek_tsv.split_sets(values, log.header)
        flat = zeek_tsv.unescape_column(pc.list_flatten(values))
        values = pa.ListArray.from_arrays(values.offsets, flat, mask=pc.is_null(values))
    return values


def load_companions(zeek_input: ZeekInput) -> Companions:
    """Read the ssl, quic, http and dns logs of an input whole (they are small next to conn.log)."""
    tables: dict[str, pa.Table | None] = {}
    for kind in ("ssl", "http", "dns"):
        paths = zeek_input.companions.get(kind, [])
        if kind == "ssl":  # QUIC's Initial carries the same SNI; quic.log has the same two columns
            paths = paths + zeek_input.companions.get("quic", [])
        parts = [_read_companion(path, "quic" if path.name.startswith("quic") else kind) for path in paths]
        parts = [part for part in parts if part.num_rows]
        tables[kind] = pa.concat_tables(parts, promote_options="permissive") if parts else None
    return Companions(ssl=tables["ssl"], http=tables["http"], dns=tables["dns"])


def _stream_conn(
    log: ZeekLog, companions: Companions, progress: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    """Parse and convert segments of a conn log on a few threads; yield the batches in file order.

    Arrow's parsing and compute kernels release the GIL, so segments are worked on in parallel while
    at most ``workers + 1`` of them are in memory at once.
    """
    workers = max(1, min(_MAX_WORKERS, pa.cpu_count()))

    def work(data: pa.Buffer) -> list[pa.RecordBatch]:
        table = log.parse(data, _DICTIONARY_COLUMNS).combine_chunks()
        return [
            to_flows(batch, log, companions)
            for batch in table.to_batches(max_chunksize=BATCH_ROWS)
            if batch.num_rows
        ]

    source = log.segments()
    pending: deque[tuple[Future[list[pa.RecordBatch]], int]] = deque()
    reported = 0
    with ThreadPoolExecutor(workers, thread_name_prefix="zeek") as pool:
        try:
            while True:
                while len(pending) <= workers:
                    try:
                        data, offset = next(source)
                    except StopIteration:
                        break
                    except (LineTooLong, OSError, EOFError) as exc:
                        raise log.diagnose(exc, CONN_NOT_NULL) from None
                    pending.append((pool.submit(work, data), offset))
                if not pending:
                    break
                job, offset = pending.popleft()
                try:
                    batches = job.result()
                except (pa.ArrowInvalid, OSError, EOFError) as exc:
                    raise log.diagnose(exc, CONN_NOT_NULL) from None
                yield from batches
                if progress is not None and offset > reported:
                    progress(offset - reported)
                    reported = offset
        finally:
            for job, _ in pending:
                job.cancel()
            source.close()
    if progress is not None:
        size = log.path.stat().st_size
        if size > reported:
            progress(size - reported)


def _stream_tsv(
    log: ZeekLog, companions: Companions, progress: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    """Read a plain (not gzip) TSV conn log with DuckDB (:mod:`derisk.store.zeekread`).

    When DuckDB fails, the file is re-read line by line to name the first bad line; when no line is
    bad (DuckDB cut a line at a ``#`` inside it, or a line is longer than DuckDB's limit), Arrow's
    reader (:func:`_stream_conn`) takes over after the rows already yielded. Progress is reported
    from an estimate of bytes per line and completed to the file's size at the end.
    """
    header = log.header
    assert header is not None
    size = log.path.stat().st_size
    per_line = bytes_per_line(log.path) if progress is not None else 0.0
    yielded = reported = 0
    batches = zeekread.read_conn(
        log.path,
        fields=header.fields,
        types=dict(log.columns),
        separator=header.separator,
        nulls=[header.unset_field, header.empty_field],
        rows=BATCH_ROWS,
        database=companions.database,
    )
    try:
        for batch in batches:
            flows = duck_flows(batch, log, companions)
            yielded += flows.num_rows
            yield flows
            if progress is not None:
                done = min(size - 1, int(yielded * per_line))
                if done > reported:
                    progress(done - reported)
                    reported = done
    except zeekread.ZeekReadError as exc:
        if not exc.unsupported:
            problem = zeek_tsv.find_problem(log.path, header, log.columns, log.display, CONN_NOT_NULL)
            if problem is not None:
                raise problem from None
        _log.info("%s: DuckDB could not read the log (%s); reading it with Arrow", log.display, exc)
        yield from _resume(log, companions, progress, yielded, reported)
        return
    finally:
        batches.close()
    if progress is not None and size > reported:
        progress(size - reported)


def _resume(
    log: ZeekLog, companions: Companions, progress: Callable[[int], None] | None, skip: int, reported: int
) -> Iterator[pa.RecordBatch]:
    """Arrow's reading of a conn log, without its first ``skip`` rows and the progress already reported."""
    seen = 0

    def later(count: int) -> None:
        nonlocal seen, reported
        seen += count
        if progress is not None and seen > reported:
            progress(seen - reported)
            reported = seen

    for batch in _stream_conn(log, companions, later):
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        yield batch.slice(skip) if skip else batch
        skip = 0


def read_zeek(path: Path, *, progress: Callable[[int], None] | None = None) -> Iterator[pa.RecordBatch]:
    """Yield :data:`INGEST_SCHEMA` batches for a Zeek conn.log or a directory of Zeek logs.

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
    companions = load_companions(zeek_input)

    def generate() -> Iterator[pa.RecordBatch]:
        companion_bytes = sum(p.stat().st_size for paths in zeek_input.companions.values() for p in paths)
        if progress is not None and companion_bytes:
            progress(companion_bytes)
        try:
            for log in logs:
                # gzip goes to Arrow's reader, which checks the CRCs (DuckDB's does not) and was faster
                # than DuckDB plus a second decompression to check them (docs/ingest-zeek.md).
                plain_tsv = log.header is not None and not zeek_tsv.is_gzip(log.path)
                stream = _stream_tsv if plain_tsv else _stream_conn
                yield from stream(log, companions, progress)
        finally:
            companions.close()

    return generate()


def log_files(path: Path) -> list[Path]:
    """Every file :func:`read_zeek` reads for ``path``: its conn logs, then its companion logs."""
    zeek_input = discover(path)
    return zeek_input.conn + [p for paths in zeek_input.companions.values() for p in paths]
