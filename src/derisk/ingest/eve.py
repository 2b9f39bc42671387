"""Suricata EVE JSON in, canonical flow batches out.

:func:`read_eve` takes an ``eve.json`` (plain or gzip, current or rotated) or a directory of them and
yields batches of :data:`derisk.flows.INGEST_SCHEMA`, one row per ``flow`` event. Server names come
from the same flow's ``tls`` (or ``quic``) and ``http`` events, joined by ``flow_id``, else from the
``dns`` answers that gave the destination address (:mod:`derisk.store.answers`). The log is read in
pieces of about 8 MiB at line ends, which a few threads parse with Arrow's JSON reader
(:mod:`.eve_events`); every conversion is column-wise. Contract for users: ``docs/ingest-eve.md``.

Suricata writes a flow's application events (handshake, request, answer) when it sees them and the
``flow`` event when the flow ends, so every event a flow needs comes before it in the log. Events
waiting for their flow are kept until it ends; DNS answers are kept for the whole input.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import InputError
from derisk.flows import BATCH_ROWS
from derisk.ingest.eve_convert import (
    Pending,
    app_events,
    column,
    dns_answers,
    flow_rows,
    to_batch,
)
from derisk.ingest.eve_events import EVE_SCHEMA, Skipped, parse_piece
from derisk.ingest.eve_rebuild import Rebuild, event_rows
from derisk.ingest.zeek_io import LineTooLong, bytes_per_line, read_error, segments, sniff
from derisk.ingest.zeek_tsv import is_gzip
from derisk.store import everead
from derisk.store.answers import AnswerIndex

_log = logging.getLogger(__name__)

#: File names of EVE logs in a directory: ``eve.json``, ``eve.json.1``, ``eve.json.2.gz``,
#: ``eve-2024-05-01-10:00.json``, ``eve.json.1714557600`` (Suricata's own rotation).
EVE_NAME: Final = re.compile(r"^eve[^/]*\.json(\.[0-9]+)?(\.gz)?$")
#: Bytes of log parsed at a time (about 16,000 flow events).
PIECE_BYTES: Final = 1 << 23
_MAX_WORKERS: Final = 4


def eve_files(path: Path) -> list[Path]:
    """The EVE logs ``path`` stands for: itself, or a directory's ``eve*.json*`` files, oldest first.

    Files are ordered by the time of their first event (rotated names do not sort by age:
    ``eve.json.1`` is newer than ``eve.json.2``); a file whose first line has no time goes last.
    """
    display = str(path)
    try:
        if not path.is_dir():
            if not path.exists():
                raise InputError("no such file or directory", source=display)
            return [path]
        entries = sorted(p for p in path.iterdir() if EVE_NAME.match(p.name) and p.is_file())
    except OSError as exc:
        raise read_error(exc, display) from exc
    if not entries:
        raise InputError("no Suricata EVE log (eve*.json, eve*.json.gz) in this directory", source=display)
    return sorted(entries, key=lambda p: (_first_time(p), p.name))


def _first_time(path: Path) -> str:
    head = sniff(path, str(path), 1 << 16)
    match = re.search(rb'"timestamp"\s*:\s*"([^"]{10,40})"', head.split(b"\n", 1)[0])
    return match.group(1).decode("ascii", "replace") if match else "\uffff"


def is_eve(head: bytes) -> bool:
    """Whether content starts like EVE JSON: an object on its first line with an ``event_type``."""
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
    return first.startswith(b"{") and b'"event_type"' in first


def export_hint(head: bytes) -> str | None:
    """Why content that holds EVE events is not EVE JSON lines, and how to convert it (else None).

    Suricata writes one event per line; the events re-saved as one JSON array (``jq -s``, a SIEM's
    export) or pretty-printed over several lines (``jq .``) are not read, and were refused as "not a
    capture ..." or as a Zeek log's bad first line."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if b'"event_type"' not in text or is_eve(text):
        return None
    if text.startswith(b"["):
        return (
            "Suricata EVE events as one JSON array, not EVE JSON lines (one event per line, as Suricata "
            "writes eve.json); convert with `jq -c '.[]' FILE > eve.json`"
        )
    if text.startswith(b"{"):
        return (
            "Suricata EVE events pretty-printed over several lines, not EVE JSON lines (one event per "
            "line, as Suricata writes eve.json); convert with `jq -c . FILE > eve.json`"
        )
    return None


@dataclass
class _Tally:
    """What was read, for the warnings and the error when nothing was usable."""

    events: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, Skipped] = field(default_factory=dict)
    flows: int = 0

    def count(self, kinds: pa.Array) -> None:
        for row in pc.value_counts(kinds).to_pylist():
            key = row["values"] if row["values"] is not None else "(none)"
            self.events[key] = self.events.get(key, 0) + row["counts"]


@dataclass(frozen=True)
class _Piece:
    """One parsed piece of a log, split into what the sequential join needs."""

    flows: pa.Table
    app: pa.Table
    answers: pa.Table | None
    kinds: pa.Array
    #: Per-flow summaries of alert and protocol events (the ``events`` pass only).
    events: pa.Table | None
    skipped: Skipped
    lines: int


def _split(table: pa.Table, record: str, skipped: Skipped, lines: int) -> _Piece:
    kinds = column(table, "event_type")
    rebuilding = record == "events"
    return _Piece(
        flows=flow_rows(table, kinds, "flow" if rebuilding else record),
        app=app_events(table, kinds),
        answers=dns_answers(table, kinds),
        kinds=kinds,
        events=event_rows(table, kinds) if rebuilding else None,
        skipped=skipped,
        lines=lines,
    )


def _prepare(data: pa.Buffer, record: str) -> _Piece:
    """Parse a piece with Arrow and split its events (runs on a worker thread)."""
    table, skipped = parse_piece(data, 0)
    return _split(table, record, skipped, data.to_pybytes().count(b"\n"))


def _duck_pieces(file: Path, record: str, database: everead.Database) -> Iterator[tuple[_Piece, int]]:
    """The file read by DuckDB (the fast path): pieces with an estimate of the bytes read so far."""
    size = file.stat().st_size
    per_line = bytes_per_line(file)
    rows = 0
    for batch in everead.read_events(file, EVE_SCHEMA, rows=BATCH_ROWS, database=database):
        rows += batch.num_rows
        table = pa.Table.from_batches([batch])
        yield _split(table, record, Skipped(), 0), min(size - 1, int(rows * per_line))


def _arrow_pieces(file: Path, record: str) -> Iterator[tuple[_Piece, int]]:
    """The file cut into pieces at line ends, parsed by Arrow on a few threads, in file order."""
    display = str(file)
    workers = max(1, min(_MAX_WORKERS, pa.cpu_count()))
    source = segments(file, display, PIECE_BYTES)
    queue: deque[tuple[Future[_Piece], int]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="eve") as pool:
        try:
            while True:
                while len(queue) <= workers:
                    try:
                        data, offset = next(source)
                    except StopIteration:
                        break
                    except (LineTooLong, OSError, EOFError) as exc:
                        raise _file_error(exc, display) from None
                    queue.append((pool.submit(_prepare, data, record), offset))
                if not queue:
                    break
                job, offset = queue.popleft()
                yield job.result(), offset
        finally:
            for job, _ in queue:
                job.cancel()
            source.close()


def read_eve(
    path: Path,
    *,
    progress: Callable[[int], None] | None = None,
    strict: bool = False,
    notes: dict[str, Any] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Yield :data:`INGEST_SCHEMA` batches for a Suricata EVE log or a directory of them.

    Every file is found and its first line checked before this returns. Lines that are not EVE JSON
    objects of the expected types are skipped and counted (a warning names the file, the count and
    the first such line). An input without a single ``flow`` (or ``netflow``) event gives the
    connections rebuilt from its alert and protocol events (:mod:`.eve_rebuild`; bytes and packets
    are lower bounds), with a warning and ``notes`` saying so; with ``strict``, or when no event names
    a flow, it raises :class:`InputError` at the end of the iteration, so the caller commits nothing.
    ``progress`` is called with the number of bytes (as stored on disk) read since its previous call.
    """
    files = eve_files(path)
    for file in files:
        head = sniff(file, str(file))
        if not head.strip():
            if len(files) == 1:
                raise InputError("empty file" if not head else "empty log: no events", source=str(file))
            continue
        if not is_eve(head):
            raise InputError(
                export_hint(head) or "not Suricata EVE JSON: the first line is no object with an event_type",
                source=str(file),
            )
    return _generate(files, progress, strict, notes)


#: Event types that cannot stand for a connection (``stats``) or are flows themselves.
_NOT_CONNECTIONS: Final = frozenset({"flow", "netflow", "stats", "(none)"})


def _next_pass(record: str, tally: _Tally, strict: bool) -> str | None:
    """The kind of events to read the input again for, when the last pass gave no flow."""
    if tally.flows:
        return None
    if record == "flow" and tally.events.get("netflow"):
        return "netflow"
    others = any(kind not in _NOT_CONNECTIONS for kind in tally.events)
    return "events" if record != "events" and others and not strict else None


def _generate(
    files: list[Path],
    progress: Callable[[int], None] | None,
    strict: bool,
    notes: dict[str, Any] | None,
) -> Iterator[pa.RecordBatch]:
    tally = _Tally()
    where = str(files[0]) if len(files) == 1 else str(files[0].parent)
    record: str | None = "flow"
    rebuilt: tuple[int, int] | None = None
    while record is not None:
        database = everead.connect()  # one per pass: the reads and the DNS-answer lookups
        answers = AnswerIndex(database)
        rebuild = Rebuild() if record == "events" else None
        try:
            pending = Pending()
            for file in files:
                for batch in _stream_file(file, record, tally, pending, answers, progress, database, rebuild):
                    tally.flows += batch.num_rows
                    yield batch
            progress = None  # a later pass (netflow or other events) reads bytes already reported
            if rebuild is not None:
                flows = rebuild.flows()
                events = flows.column("events")
                rebuilt = (flows.num_rows, int(pc.sum(events).as_py() or 0))
                names = pending.take(column(flows, "flow_id"))
                for start in range(0, flows.num_rows, BATCH_ROWS):
                    part = flows.slice(start, BATCH_ROWS)
                    part_names = {k: v.slice(start, BATCH_ROWS) for k, v in names.items()}
                    batch = to_batch(part, part_names, answers, False)
                    tally.flows += batch.num_rows
                    yield batch
        finally:
            answers.close()
            database.close()
        record = _next_pass(record, tally, strict)
    for name, skipped in tally.skipped.items():
        if skipped.count:
            _log.warning(
                "%s: %d line%s skipped, not EVE JSON of the expected form (the first: line %s, %s)",
                name,
                skipped.count,
                "" if skipped.count == 1 else "s",
                skipped.first_line,
                skipped.first_cause,
            )
    if tally.flows == 0:
        seen = ", ".join(f"{kind} {count:,}" for kind, count in sorted(tally.events.items())) or "none"
        why = (
            "; refused with --strict"
            if strict and any(k not in _NOT_CONNECTIONS for k in tally.events)
            else ""
        )
        if rebuilt is not None:
            why = "; no event names a connection (a flow_id with both addresses) to rebuild it from"
        raise InputError(
            f"no flow events (events read: {seen}){why}; enable the flow type in suricata.yaml's eve-log",
            source=where,
        )
    if rebuilt is not None:
        warning = rebuilt_warning(*rebuilt)
        _log.warning("%s: %s", where, warning)
        if notes is not None:
            notes.update(
                file_format="eve",
                flows_rebuilt=rebuilt[0],
                events_rebuilt_from=rebuilt[1],
                bytes_lower_bounds=True,
                warnings=[warning],
            )


def rebuilt_warning(connections: int, events: int) -> str:
    """The warning (and analysis note) for an input whose connections were rebuilt from its events."""
    return (
        f"no flow events: {connections:,} connection{'' if connections == 1 else 's'} rebuilt from "
        f"{events:,} alert/protocol event{'' if events == 1 else 's'}; bytes and packets are lower "
        "bounds counted up to each event, 0 where no event carries counters; enable the flow type in "
        "suricata.yaml's eve-log for whole flows"
    )


def _stream_file(
    file: Path,
    record: str,
    tally: _Tally,
    pending: Pending,
    answers: AnswerIndex,
    progress: Callable[[int], None] | None,
    database: everead.Database,
    rebuild: Rebuild | None = None,
) -> Iterator[pa.RecordBatch]:
    """The flow batches of one file, joined in file order (none in the ``events`` pass, which
    summarises the events in ``rebuild``).

    DuckDB reads a plain file (:mod:`derisk.store.everead`); when it refuses the file (a line it
    cannot read), the file is read again by Arrow in pieces, which skips and counts bad lines, from
    the state before the file, and the flows DuckDB's reading already gave are not given again.
    """
    display = str(file)
    skipped = tally.skipped.setdefault(display, Skipped()) if record == "flow" else Skipped()
    before = (pending.snapshot(), len(answers), dict(tally.events))
    summaries = rebuild.snapshot() if rebuild is not None else None
    state = _JoinState(record, tally, pending, answers, skipped, rebuild)

    def joined(pieces: Iterator[tuple[_Piece, int]]) -> Iterator[pa.RecordBatch]:
        for batch, offset in _join(pieces, state):
            if batch is not None:
                yield batch
            if progress is not None and offset > state.reported:
                progress(offset - state.reported)
                state.reported = offset

    if not is_gzip(file):
        given = 0
        try:
            for batch in joined(_duck_pieces(file, record, database)):
                given += batch.num_rows
                yield batch
            _complete(file, progress, state.reported)
            return
        except everead.EveReadError as exc:
            _log.info("%s: DuckDB could not read the log (%s); reading it with Arrow", display, exc)
            pending.restore(before[0])
            answers.truncate(before[1])
            tally.events = before[2]
            if rebuild is not None and summaries is not None:
                rebuild.restore(summaries)
            state.skip = given
    yield from joined(_arrow_pieces(file, record))
    _complete(file, progress, state.reported)


@dataclass
class _JoinState:
    """What joining one source's pieces in order carries from piece to piece."""

    record: str
    tally: _Tally
    pending: Pending
    answers: AnswerIndex
    skipped: Skipped
    rebuild: Rebuild | None = None
    lines: int = 0
    #: Flows already given (a file DuckDB refused part-way and Arrow reads again).
    skip: int = 0
    reported: int = 0


def _join(
    pieces: Iterator[tuple[_Piece, int]], state: _JoinState
) -> Iterator[tuple[pa.RecordBatch | None, int]]:
    """Flow batches of parsed pieces, in order, each with the offset its piece reached (a piece
    without flows gives ``(None, offset)``): names by ``flow_id``, else from DNS answers."""
    record = state.record
    for piece, offset in pieces:
        if piece.skipped.count and piece.skipped.first_line is not None:
            state.skipped.add(state.lines + piece.skipped.first_line + 1, piece.skipped.first_cause or "")
            state.skipped.count += piece.skipped.count - 1
        state.lines += piece.lines
        if record == "flow":
            state.tally.count(piece.kinds)
        state.pending.add(piece.app)
        if piece.answers is not None:
            state.answers.add(piece.answers)
        if piece.events is not None and state.rebuild is not None:
            state.rebuild.add(piece.events)
        flows = piece.flows
        if state.skip:
            dropped = min(state.skip, flows.num_rows)
            state.skip -= dropped
            flows = flows.slice(dropped)
        if flows.num_rows:
            names = state.pending.take(column(flows, "flow_id"), forget=record == "flow")
            for start in range(0, flows.num_rows, BATCH_ROWS):
                part = flows.slice(start, BATCH_ROWS)
                part_names = {k: v.slice(start, BATCH_ROWS) for k, v in names.items()}
                yield to_batch(part, part_names, state.answers, record == "netflow"), offset
        else:
            yield None, offset


def read_eve_lines(data: bytes, *, name: str = "eve.json") -> Iterator[pa.RecordBatch]:
    """The flows of EVE lines held in memory (``derisk watch``: a followed log's new complete lines,
    the application events kept from earlier batches in front of them).

    The same conversion and joins as :func:`read_eve`, parsed by Arrow's JSON reader in pieces of
    :data:`PIECE_BYTES` on a few threads (no file, no DuckDB read). A last line without its newline is
    read as a line. Bad lines are skipped and counted (one warning naming ``name``); lines without a
    single flow give no batch and no error. ``netflow`` events are read when there is no ``flow`` event.
    """
    tally = _Tally()
    for record in ("flow", "netflow"):
        database = everead.connect()
        answers = AnswerIndex(database)
        skipped = tally.skipped.setdefault(name, Skipped()) if record == "flow" else Skipped()
        state = _JoinState(record, tally, Pending(), answers, skipped)
        try:
            for batch, _ in _join(_memory_pieces(data, record), state):
                if batch is not None:
                    tally.flows += batch.num_rows
                    yield batch
        finally:
            answers.close()
            database.close()
        if tally.flows or not tally.events.get("netflow"):
            break
    skipped = tally.skipped[name]
    if skipped.count:
        _log.warning("%s: %d line%s skipped, not EVE JSON of the expected form (the first: line %s, %s)",
                     name, skipped.count, "" if skipped.count == 1 else "s", skipped.first_line,
                     skipped.first_cause)  # fmt: skip


def _memory_pieces(data: bytes, record: str) -> Iterator[tuple[_Piece, int]]:
    """``data`` cut at line ends into pieces of about :data:`PIECE_BYTES`, parsed on a few threads
    (a few pieces ahead of the join), in order, each with the offset it reaches in ``data``."""
    workers = max(1, min(_MAX_WORKERS, pa.cpu_count()))
    queue: deque[tuple[Future[_Piece], int]] = deque()
    start = 0
    with ThreadPoolExecutor(workers, thread_name_prefix="eve") as pool:
        while start < len(data) or queue:
            while start < len(data) and len(queue) <= workers:
                end = len(data)
                if end - start > PIECE_BYTES:
                    end = data.rfind(b"\n", start, start + PIECE_BYTES) + 1
                    if end <= start:  # a line longer than a piece
                        end = data.find(b"\n", start + PIECE_BYTES) + 1 or len(data)
                buffer = pa.py_buffer(_whole_lines(data[start:end]))
                queue.append((pool.submit(_prepare, buffer, record), end))
                start = end
            job, end = queue.popleft()
            yield job.result(), end


def _whole_lines(piece: bytes) -> bytes:
    return piece if piece.endswith(b"\n") else piece + b"\n"


def _complete(file: Path, progress: Callable[[int], None] | None, reported: int) -> None:
    if progress is not None:
        size = file.stat().st_size
        if size > reported:
            progress(size - reported)


def _file_error(exc: BaseException, display: str) -> InputError:
    if isinstance(exc, LineTooLong):
        return InputError(f"{exc}; not an EVE log line", source=display)
    return read_error(exc, display)
