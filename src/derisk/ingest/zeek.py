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

import dataclasses
import logging
import math
import re
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError
from derisk.flows import BATCH_ROWS, INGEST_SCHEMA, TS
from derisk.ingest import zeek_json, zeek_tsv
from derisk.ingest.zeek_fields import canonical_names
from derisk.ingest.zeek_io import (
    LineTooLong,
    bytes_per_line,
    is_arrow_read_error,
    read_error,
    segments,
    sniff,
)
from derisk.ingest.zeek_join import Companions, bound_text
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
CONN_NOT_NULL: Final = frozenset({"ts", "uid", "id.orig_h", "id.resp_h"})

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

#: Zeek ``conn_state`` values of connections that may have carried nothing: no SYN-ACK (S0), rejected
#: (REJ), reset before the responder's SYN-ACK (RSTOS0, RSTRH), a half-open remainder (SH, SHR) and
#: midstream traffic (OTH). With no payload in either direction they are attempts (``is_attempt``).
ATTEMPT_STATES: Final = ("S0", "REJ", "RSTOS0", "RSTRH", "SH", "SHR", "OTH")

_LOG_NAME = re.compile(r"^(conn|dns|ssl|quic|http)(\.[^/]+)?\.(log|json)(\.gz)?$")
#: The dated folders of Zeek's log archive (``zeekctl`` moves each day's rotated logs there).
_DAY_DIR = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_PROTOCOLS: Final = {"tcp": 6, "udp": 17, "icmp": 1}
_MAX_EPOCH_SECONDS: Final = 1e11
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


@dataclass(frozen=True)
class _Log:
    """One opened log: its format and what its header (TSV) or first line (JSON) told us."""

    path: Path
    display: str
    columns: Mapping[str, str]
    header: zeek_tsv.TsvHeader | None
    ts_kind: str
    #: Zeek's name of a column -> its key in a JSON log, where they differ (a scope separator).
    names: Mapping[str, str] = field(default_factory=dict)

    def segments(self) -> Generator[tuple[pa.Buffer, int], None, None]:
        return segments(self.path, self.display, zeek_tsv.SEGMENT_BYTES)

    def parse(self, data: pa.Buffer, dictionary: frozenset[str] = frozenset()) -> pa.Table:
        if self.header is not None:
            return zeek_tsv.parse_segment(data, self.header, self.columns, dictionary)
        return zeek_json.parse_segment(data, self.columns, self.ts_kind, self.names)

    def diagnose(self, cause: BaseException, not_null: frozenset[str]) -> InputError:
        if is_arrow_read_error(cause):
            return read_error(cause, self.display)
        text = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
        if self.header is not None:
            return zeek_tsv.diagnose(self.path, self.header, self.columns, self.display, text, not_null)
        return zeek_json.diagnose(
            self.path, self.columns, self.ts_kind, self.display, text, not_null, self.names
        )


def _open_log(
    path: Path, required: Mapping[str, str], optional: Mapping[str, str], always: frozenset[str]
) -> _Log:
    """Open a log; JSON logs leave unset fields out, so only ``always`` must be in the first line."""
    display = str(path)
    head = sniff(path, display)
    if not head.strip():
        raise InputError("empty file" if not head else "empty log: no records", source=display)
    if zeek_json.looks_json(head):
        ts_kind, names = zeek_json.first_record(path, [name for name in required if name in always], display)
        return _Log(path, display, {**required, **optional}, None, ts_kind, names)
    if not head.startswith(b"#"):
        raise InputError("not a Zeek log: no #fields header and not JSON lines", source=display)
    header = zeek_tsv.read_header(path, display)
    renamed = canonical_names(header.fields)
    if renamed:
        fields = tuple(renamed.get(name, name) for name in header.fields)
        if len(set(fields)) != len(fields):
            raise InputError("#fields names a column twice (with two scope separators)", source=display)
        header = dataclasses.replace(header, fields=fields)
    present = zeek_tsv.check_columns(header, required, optional, display)
    wanted = {**required, **optional}
    return _Log(path, display, {name: wanted[name] for name in present}, header, "number")


def _timestamps(values: pa.Array, log: _Log, not_null: frozenset[str]) -> pa.Array:
    """Zeek ``ts`` (epoch seconds or ISO 8601) as :data:`derisk.flows.TS`."""
    if pa.types.is_string(values.type):
        try:
            return values.cast(TS)
        except pa.ArrowInvalid:
            try:
                return values.cast(pa.timestamp("us")).cast(TS)
            except pa.ArrowInvalid as exc:
                raise log.diagnose(exc, not_null) from None
    if log.ts_kind == "millis":
        values = pc.divide(values.cast(pa.float64()), 1000.0)
    if len(values) > values.null_count:
        total = pc.sum(values).as_py()
        bounds = pc.min_max(values).as_py()
        if not math.isfinite(total) or bounds["min"] < 0 or bounds["max"] >= _MAX_EPOCH_SECONDS:
            raise log.diagnose(ValueError("implausible timestamp"), not_null)
    return _micros(values).cast(TS)


def _micros(seconds: pa.Array) -> pa.Array:
    return pc.round(pc.multiply(seconds, 1e6)).cast(pa.int64())


def _text(values: pa.Array, log: _Log) -> pa.Array:
    if log.header is not None:
        values = zeek_tsv.unescape_column(values)
    return bound_text(values)


def _column(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    column = batch.column(name)
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _read_companion(path: Path, kind: str) -> pa.Table:
    required, optional = {
        "ssl": (SSL_REQUIRED, SSL_OPTIONAL),
        "quic": (SSL_REQUIRED, SSL_OPTIONAL),
        "http": (HTTP_REQUIRED, HTTP_OPTIONAL),
        "dns": (DNS_REQUIRED, DNS_OPTIONAL),
    }[kind]
    log = _open_log(path, required, optional, frozenset({"uid", "ts"}))
    try:
        parts = [log.parse(data) for data, _ in log.segments()]
    except (pa.ArrowInvalid, LineTooLong, OSError, EOFError) as exc:
        raise log.diagnose(exc, frozenset({"uid"})) from None
    table = pa.concat_tables(parts) if parts else None
    if table is None or table.num_rows == 0:
        return pa.table({name: pa.array([], pa.string()) for name in log.columns})
    columns: dict[str, pa.Array] = {}
    for name in log.columns:
        values = _column(table, name)
        if name == "ts":
            values = _timestamps(values, log, frozenset({"ts"}))
        elif name == "answers":
            values = _answers(values, log)
        elif name in _TEXT_COLUMNS:
            values = _text(values, log)
        columns[name] = values
    return pa.table(columns)


def _answers(values: pa.Array, log: _Log) -> pa.Array:
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


def _encoded(values: pa.Array) -> pa.DictionaryArray:
    return values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)


def _protocols(proto: pa.Array, orig_h: pa.Array) -> pa.Array:
    """Zeek's transport names as IP protocol numbers (ICMP over IPv6 is 58); others null."""
    encoded = _encoded(proto)
    names = pa.array(list(_PROTOCOLS))
    numbers = pa.array(list(_PROTOCOLS.values()), pa.int16())
    per_name = numbers.take(pc.index_in(pc.utf8_lower(encoded.dictionary), value_set=names))
    number = per_name.take(encoded.indices)
    if 1 in per_name.to_pylist():
        icmp6 = pc.and_(pc.equal(number, 1), pc.match_substring(orig_h, ":"))
        number = pc.if_else(icmp6, pa.scalar(58, pa.int16()), number)
    return number


def _ports(ports: pa.Array, protocol: pa.Array) -> pa.Array:
    """Ports of TCP and UDP flows; null otherwise (Zeek puts ICMP type and code there)."""
    transport = pc.fill_null(pc.is_in(protocol, value_set=pa.array([6, 17], pa.int16())), False)
    return pc.if_else(transport, ports.cast(pa.int32()), pa.scalar(None, pa.int32()))


def _labels(values: pa.Array, log: _Log) -> pa.Array:
    """A text column with few distinct values, unescaped and bounded once per distinct value."""
    encoded = _encoded(values)
    return _text(encoded.dictionary, log).take(encoded.indices)


def to_flows(batch: pa.RecordBatch, log: _Log, companions: Companions) -> pa.RecordBatch:
    """Convert one conn.log batch (Zeek column names) into an :data:`INGEST_SCHEMA` batch."""
    for name in CONN_NOT_NULL:
        if _column(batch, name).null_count:
            raise log.diagnose(ValueError(f"{name} unset"), CONN_NOT_NULL)
    first = _timestamps(_column(batch, "ts"), log, CONN_NOT_NULL)
    if "duration" in log.columns:
        duration = _column(batch, "duration")
        last = pc.add(first.cast(pa.int64()), _micros(duration)).cast(TS)
    else:
        last = pa.nulls(batch.num_rows, TS)
    uid, orig_h, resp_h = _column(batch, "uid"), _column(batch, "id.orig_h"), _column(batch, "id.resp_h")
    extra = companions.enrich(uid, orig_h, resp_h, first)
    protocol = _protocols(_column(batch, "proto"), orig_h)
    service = (
        _labels(_column(batch, "service"), log)
        if "service" in log.columns
        else pa.nulls(batch.num_rows, pa.string())
    )
    arrays = {
        "first_seen": first,
        "last_seen": last,
        "src_ip": orig_h,
        "src_port": _ports(_column(batch, "id.orig_p"), protocol),
        "dst_ip": resp_h,
        "dst_port": _ports(_column(batch, "id.resp_p"), protocol),
        "protocol": protocol,
        "bytes_out": _column(batch, "orig_ip_bytes"),
        "bytes_in": _column(batch, "resp_ip_bytes"),
        "packets_out": _column(batch, "orig_pkts"),
        "packets_in": _column(batch, "resp_pkts"),
        "server_name": extra.server_name,
        "server_name_source": extra.server_name_source,
        "application": service,
        "ja4": extra.ja4,
        "user_agent": extra.user_agent,
        "dns_query": extra.dns_query,
        "source_ref": uid,
        **_attempts(batch, log),
    }
    return pa.RecordBatch.from_arrays(
        [arrays[f.name].cast(f.type) for f in INGEST_SCHEMA], schema=INGEST_SCHEMA
    )


def attempt_flags(state: pa.Array, orig_bytes: pa.Array | None, resp_bytes: pa.Array | None) -> pa.Array:
    """``is_attempt``: an attempt state and no payload either way (null when the log cannot say).

    ``state`` is Zeek's ``conn_state`` (null when unset); ``orig_bytes`` and ``resp_bytes`` Zeek's
    payload counts (None when the log has no such column: the flag is then null for attempt states,
    since the payload is unknown). An unset payload count is 0 (Zeek leaves it unset when it saw none).
    """
    encoded = _encoded(state)
    per_state = pc.is_in(encoded.dictionary, value_set=pa.array(ATTEMPT_STATES))
    attempt_state = per_state.take(encoded.indices)
    if orig_bytes is None or resp_bytes is None:
        return pc.if_else(attempt_state, pa.scalar(None, pa.bool_()), attempt_state)
    silent = pc.and_(pc.equal(pc.fill_null(orig_bytes, 0), 0), pc.equal(pc.fill_null(resp_bytes, 0), 0))
    return pc.and_(attempt_state, silent)


def _attempts(batch: pa.RecordBatch, log: _Log) -> dict[str, pa.Array]:
    """``conn_state`` (bounded text) and ``is_attempt`` of a conn.log batch in Zeek column names."""
    if "conn_state" not in log.columns:
        return {
            "conn_state": pa.nulls(batch.num_rows, pa.string()),
            "is_attempt": pa.nulls(batch.num_rows, pa.bool_()),
        }
    state = _labels(_column(batch, "conn_state"), log)
    payload = "orig_bytes" in log.columns and "resp_bytes" in log.columns
    flags = attempt_flags(
        state,
        _column(batch, "orig_bytes") if payload else None,
        _column(batch, "resp_bytes") if payload else None,
    )
    return {"conn_state": state, "is_attempt": flags}


def _stream_conn(
    log: _Log, companions: Companions, progress: Callable[[int], None] | None
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


def _duck_flows(batch: pa.RecordBatch, log: _Log, companions: Companions) -> pa.RecordBatch:
    """Convert a batch of :func:`derisk.store.zeekread.read_conn` into an :data:`INGEST_SCHEMA` batch."""
    for name in ("first_us", "uid", "src_ip", "dst_ip"):
        if batch.column(name).null_count:
            raise zeekread.ZeekReadError(f"{name} is unset")
    bounds = pc.min_max(batch.column("first_us")).as_py()
    if bounds["min"] < 0 or bounds["max"] >= _MAX_EPOCH_SECONDS * 1e6:
        raise zeekread.ZeekReadError("implausible timestamp")
    first = batch.column("first_us").cast(TS)
    uid, src_ip, dst_ip = batch.column("uid"), batch.column("src_ip"), batch.column("dst_ip")
    extra = companions.enrich(uid, src_ip, dst_ip, first)
    service = batch.column("service")
    arrays = {
        "first_seen": first,
        "last_seen": batch.column("last_us").cast(TS),
        "server_name": extra.server_name,
        "server_name_source": extra.server_name_source,
        "application": _labels(service, log) if service.null_count < len(service) else service,
        "ja4": extra.ja4,
        "user_agent": extra.user_agent,
        "dns_query": extra.dns_query,
        "source_ref": uid,
        **_duck_attempts(batch, log),
    }
    return pa.RecordBatch.from_arrays(
        [(arrays[f.name] if f.name in arrays else batch.column(f.name)).cast(f.type) for f in INGEST_SCHEMA],
        schema=INGEST_SCHEMA,
    )


def _duck_attempts(batch: pa.RecordBatch, log: _Log) -> dict[str, pa.Array]:
    state = batch.column("conn_state")
    if state.null_count == len(state):
        return {"conn_state": state, "is_attempt": pa.nulls(batch.num_rows, pa.bool_())}
    state = _labels(state, log)
    payload = "orig_bytes" in log.columns and "resp_bytes" in log.columns
    flags = attempt_flags(
        state,
        batch.column("orig_bytes") if payload else None,
        batch.column("resp_bytes") if payload else None,
    )
    return {"conn_state": state, "is_attempt": flags}


def _stream_tsv(
    log: _Log, companions: Companions, progress: Callable[[int], None] | None
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
    )
    try:
        for batch in batches:
            flows = _duck_flows(batch, log, companions)
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
    log: _Log, companions: Companions, progress: Callable[[int], None] | None, skip: int, reported: int
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
        _open_log(conn, CONN_REQUIRED, CONN_OPTIONAL, frozenset(CONN_REQUIRED)) for conn in zeek_input.conn
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
