"""What ``derisk watch`` reads from: followed Zeek logs and a followed Suricata EVE log. (A folder of
ring captures is in :mod:`derisk.live.ringdir`; live capture and NetFlow, which arrive on their own,
in :mod:`derisk.live.capture`.)

Every source works the same way inside a batch's transaction: :meth:`collect` reads what is new,
stores its own state (read positions, companion records) through ``con`` and hands back
:class:`Chunk` s of canonical flows; after the commit :meth:`commit` makes the new positions its
own, after a failure :meth:`abort` forgets them, so the same data is read again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from derisk import scratch
from derisk.errors import InputError
from derisk.ingest.zeek_log import column
from derisk.live.follow import Candidate, Follower, Piece
from derisk.live.zeekhold import DEFAULT_WAIT_S, CompanionClock, record_starts
from derisk.live.zeekrange import ZeekRanges
from derisk.store import checkpoints

log = logging.getLogger(__name__)


@dataclass
class Chunk:
    """Flows of one input read in one batch, numbered from ``first_ordinal``."""

    input_id: str
    fmt: str
    path: str
    digest: str
    size_bytes: int
    first_ordinal: int
    flows: list[pa.RecordBatch]

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.flows)


@dataclass
class Context:
    """What a batch gives its sources: the transaction, a byte budget, the companion window."""

    con: duckdb.DuckDBPyConnection
    budget: int
    window: dt.timedelta


class Source(Protocol):
    name: str

    def restore(self, con: duckdb.DuckDBPyConnection) -> None: ...
    def collect(self, ctx: Context) -> list[Chunk]: ...
    def commit(self) -> None: ...
    def abort(self) -> None: ...
    def status(self) -> dict[str, Any]: ...
    def close(self) -> None: ...

    # Defaults for sources that subclass the protocol (live capture, NetFlow, ring captures):
    def busy(self) -> bool:
        """More is waiting now: the next batch starts without the pause."""
        return False

    def waiting(self) -> bool:
        """Records are held back for a moment (for companions): not idleness."""
        return False

    def flush(self) -> None:
        """The run ends: release what is held."""
        return None


def skip_to_end(follower: Follower, con: duckdb.DuckDBPyConnection) -> None:
    """Position every file of a first start at the end of its complete lines (``--from-end``)."""
    while True:
        pieces = follower.poll(64 << 20)
        follower.commit()
        if not pieces:
            break
    checkpoints.save_positions(con, follower.positions.values())


# -- Zeek ----------------------------------------------------------------------------------------

#: ``json_streaming_``: Corelight's json-streaming-logs package, whose rotated logs are numbered from
#: the newest (``json_streaming_conn.1.log``) to the oldest (``.4`` by default).
_STREAMING: Final = "json_streaming_"
_LOG_NAME: Final = re.compile(r"^(json_streaming_)?(conn|dns|ssl|quic|http)(\.([^/]+))?\.(log|json)(\.gz)?$")
_DAY_DIR: Final = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
#: Within a rotation period, the companions are read before the conn log that needs them.
_KIND_ORDER: Final = {"ssl": 0, "quic": 1, "http": 2, "dns": 3, "conn": 4}
_COMPANION_TABLE: Final = {"ssl": "ssl", "quic": "ssl", "http": "http", "dns": "dns"}


def zeek_candidates(root: Path) -> list[Candidate]:
    """Zeek's logs under ``root`` in reading order: the dated archive folders (zeekctl), the rotated
    logs beside the current ones (``conn.2024-05-01-10-00-00.log``), then the current logs (in
    ``root`` or zeekctl's ``current/``). Within one rotation period the companions come first."""
    found: list[tuple[tuple[int, str, str, int], Candidate]] = []

    def scan(folder: Path, rank: int, label: str) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            match = _LOG_NAME.match(entry.name)
            if match is None or not entry.is_file():
                continue
            streaming, kind, middle = match.group(1), match.group(2), match.group(4)
            order = middle or ""
            if streaming and order.isdigit():  # .4 (oldest) before .1 (newest)
                order = f"{10**9 - int(order):010d}"
            period = (rank if middle else 3, label, order)
            found.append(((*period, _KIND_ORDER[kind]), Candidate(Path(entry.path), kind)))

    try:
        days = sorted(p.name for p in root.iterdir() if _DAY_DIR.match(p.name) and p.is_dir())
    except OSError:
        days = []
    for day in days:
        scan(root / day, 0, day)
    scan(root, 1, "")
    scan(root / "current", 2, "")
    listed = [cand for _, cand in sorted(found, key=lambda item: item[0])]
    # The package writes its logs beside Zeek's own by default (the same records): follow one set.
    own = {c.kind for c in listed if not c.path.name.startswith(_STREAMING)}
    return [c for c in listed if c.kind not in own or not c.path.name.startswith(_STREAMING)]


def is_current(path: Path) -> bool:
    """Whether a Zeek log is one being written (``conn.log``), not rotated or archived."""
    match = _LOG_NAME.match(path.name)
    return match is not None and match.group(4) is None and not _DAY_DIR.match(path.parent.name)


class ZeekSource(Source):
    """Follows a Zeek log folder (see :func:`zeek_candidates`); conn records of the current logs
    wait for their companions (:mod:`derisk.live.zeekhold`)."""

    def __init__(self, root: Path, *, from_end: bool = False, wait_s: float = DEFAULT_WAIT_S) -> None:
        self.root = root
        self.name = f"zeek:{root}"
        self.follower = Follower(self.name, "zeek", self._discover)
        self.ranges = ZeekRanges()
        self.clock = CompanionClock(self.name, wait_s)
        self.from_end = from_end
        self.horizon: dt.datetime | None = None
        #: Whether the workspace keeps companion records (if not, conn ranges need no lookup).
        self.kept = False
        self._staged_horizon: dt.datetime | None = None
        self._listed: list[Candidate] = []
        self.flows = 0

    def _discover(self) -> list[Candidate]:
        self._listed = zeek_candidates(self.root)
        return self._listed

    def restore(self, con: duckdb.DuckDBPyConnection) -> None:
        positions = checkpoints.load_positions(con, self.name)
        self.follower.restore(positions)
        self.clock.restore(con)
        rows = con.execute(
            "SELECT max(h) FROM (SELECT max(horizon) AS h FROM watch_zeek_dns UNION ALL"
            " SELECT max(horizon) FROM watch_zeek_ssl UNION ALL SELECT max(horizon) FROM watch_zeek_http)"
        ).fetchall()
        self.horizon = rows[0][0] if rows and rows[0][0] is not None else None
        self.kept = any(
            con.execute(f"SELECT 1 FROM watch_zeek_{kind} LIMIT 1").fetchall()
            for kind in ("ssl", "http", "dns")
        )
        if self.from_end and not positions:
            self._skip_to_end(con)

    def _skip_to_end(self, con: duckdb.DuckDBPyConnection) -> None:
        """First start with ``--from-end``: what the logs hold now is not read, only what follows."""
        skip_to_end(self.follower, con)

    def collect(self, ctx: Context) -> list[Chunk]:
        chunks: list[Chunk] = []
        horizon = self.horizon
        self.clock.new_batch()
        for piece in self.follower.poll(ctx.budget):
            if piece.kind != "conn":
                table = self.ranges.companion(piece)
                if table is not None:
                    # stamped in data time (never the wall clock: a restart takes the newest stamp as
                    # the horizon, and a wall-clock one would prune every record the window still needs)
                    stamp = horizon or _newest(table) or dt.datetime.now(dt.UTC)
                    checkpoints.add_companions(ctx.con, _COMPANION_TABLE[piece.kind], table, stamp)
                    self.kept = True
                    if is_current(piece.path):
                        self.clock.saw(piece.kind, piece.position.key, table)
                continue
            flows = self._conn(piece, ctx)
            rows = sum(b.num_rows for b in flows)
            if rows:
                newest = max(pc.max(b.column("first_seen")).as_py() for b in flows)
                horizon = newest if horizon is None else max(horizon, newest)
            pos = piece.position
            chunks.append(
                Chunk(pos.input_id, "zeek", str(piece.path), pos.key, pos.size_seen, pos.ordinal, flows)
            )
            pos.ordinal += rows
        self.clock.save(ctx.con)
        checkpoints.save_positions(ctx.con, self.follower.staged())
        checkpoints.forget_positions(ctx.con, self.name, self.follower.gone())
        if horizon is not None:
            checkpoints.prune_companions(ctx.con, horizon - ctx.window)
        self._staged_horizon = horizon
        return chunks

    def _conn(self, piece: Piece, ctx: Context) -> list[pa.RecordBatch]:
        """A range of conn records as flows; records of the current conn.log whose companions may
        not have been written yet are handed back to the follower, to be read again."""
        read = self.ranges.records(piece)
        if read is None:
            return []
        zlog, table = read
        if is_current(piece.path):
            kinds = {c.kind for c in self._listed if c.kind != "conn" and is_current(c.path)}
            keep = self.clock.release(piece.position.key, column(table, "ts"), kinds)
            if keep < table.num_rows:
                starts = record_starts(piece.data)
                if len(starts) == table.num_rows:  # else a bad line was skipped: lines and rows differ
                    self.follower.rewind(piece, piece.start + starts[keep])
                    table = table.slice(0, keep)
                else:
                    self.clock.cancel_hold(table.num_rows - keep)
        return self.ranges.conn(piece, zlog, table, ctx.con, lookup=self.kept)

    def commit(self) -> None:
        for key in self.follower.gone():
            self.ranges.forget(key)
        self.follower.commit()
        self.clock.commit()
        self.horizon = self._staged_horizon

    def abort(self) -> None:
        self.follower.abort()
        self.clock.abort()

    def busy(self) -> bool:
        # held records are read again after the usual pause, not at once
        return self.follower.more and not self.clock.held

    def waiting(self) -> bool:
        return self.clock.held > 0

    def flush(self) -> None:
        self.clock.flushing = True

    def status(self) -> dict[str, Any]:
        c = self.follower.counters
        return {
            "files": c.files,
            "pending_bytes": c.pending_bytes,
            "truncated": c.truncated,
            "disappeared": c.disappeared,
            "bytes_lost": c.bytes_lost,
            "read_errors": c.read_errors,
            "bad_lines": self.ranges.bad_lines,
            "held_for_companions": self.clock.held,
            "released_after_wait": self.clock.released_by_wait,
        }

    def close(self) -> None:
        self.follower.close()


# -- Suricata EVE ----------------------------------------------------------------------------------

_KEPT_EVENTS: Final = (
    b'"event_type":"tls"',
    b'"event_type":"http"',
    b'"event_type":"quic"',
    b'"event_type":"dns"',
)
_FLOW_EVENTS: Final = (b'"event_type":"flow"', b'"event_type":"netflow"')
_TIMESTAMP: Final = re.compile(rb'"timestamp"\s*:\s*"([^"]{10,40})"')


def eve_candidates(path: Path) -> list[Candidate]:
    """The EVE log and its rotated siblings (``eve.json.1``, ``eve.json-20240501.gz`` ...), oldest first."""
    folder = path.parent
    try:
        siblings = [
            p
            for p in folder.iterdir()
            if p.name != path.name and p.name.startswith(path.name) and p.name[len(path.name)] in ".-_"
        ]
        siblings.sort(key=lambda p: p.stat().st_mtime_ns)
    except OSError:
        siblings = []
    return [Candidate(p, "eve") for p in siblings] + [Candidate(path, "eve")]


def _event_time(line: bytes) -> dt.datetime | None:
    match = _TIMESTAMP.search(line)
    if match is None:
        return None
    try:
        return dt.datetime.fromisoformat(match.group(1).decode("ascii")).astimezone(dt.UTC)
    except ValueError:
        return None


def _newest(table: pa.Table) -> dt.datetime | None:
    """The newest ``ts`` of companion records, as an aware datetime (None if there is none)."""
    if "ts" not in table.column_names:
        return None
    newest = pc.max(table.column("ts")).as_py()
    if not isinstance(newest, dt.datetime):
        return None
    return newest if newest.tzinfo is not None else newest.replace(tzinfo=dt.UTC)


class EveSource(Source):
    """Follows a Suricata EVE log. Application events (tls, http, quic, dns) are kept for the window
    so that a ``flow`` event read in a later batch is still given its server name; each batch is
    read by the batch reader (:func:`derisk.ingest.eve.read_eve`) over the kept events and the new
    lines, so flows come only from the new lines."""

    def __init__(self, path: Path, *, from_end: bool = False) -> None:
        self.path = path
        self.name = f"eve:{path}"
        self.follower = Follower(self.name, "eve", lambda: eve_candidates(path))
        self.from_end = from_end
        self.bad = 0
        #: The newest event time read so far (data time), the window's reference.
        self.horizon: dt.datetime | None = None

    def restore(self, con: duckdb.DuckDBPyConnection) -> None:
        positions = checkpoints.load_positions(con, self.name)
        self.follower.restore(positions)
        if self.from_end and not positions:
            skip_to_end(self.follower, con)

    def collect(self, ctx: Context) -> list[Chunk]:
        from derisk.ingest.eve import read_eve

        chunks: list[Chunk] = []
        for piece in self.follower.poll(ctx.budget):
            lines = piece.data.split(b"\n")
            kept = [line for line in lines if any(tag in line for tag in _KEPT_EVENTS)]
            has_flows = any(any(tag in line for tag in _FLOW_EVENTS) for line in lines)
            flows: list[pa.RecordBatch] = []
            if has_flows:
                with scratch.directory("eve") as tmp:
                    file = Path(tmp) / "eve.json"
                    with file.open("wb") as fh:
                        for event in checkpoints.eve_events(ctx.con):
                            fh.write(event.encode() + b"\n")
                        fh.write(piece.data)
                    try:
                        flows = list(read_eve(file))
                    except InputError as exc:
                        self.bad += 1
                        log.warning(
                            "%s: lines from byte %d not read: %s", piece.path, piece.start, exc.message
                        )
            times = [t for t in (_event_time(line) for line in kept[-1:] + lines[-2:]) if t is not None]
            # data time only: a piece without a readable time keeps the last horizon and prunes nothing
            horizon = max(times) if times else self.horizon
            stamp = horizon or dt.datetime.now(dt.UTC)
            checkpoints.add_eve_events(ctx.con, [k.decode("utf-8", "replace") for k in kept], stamp)
            if horizon is not None:
                checkpoints.prune_companions(ctx.con, horizon - ctx.window)
                self.horizon = horizon
            pos = piece.position
            chunks.append(
                Chunk(pos.input_id, "eve", str(piece.path), pos.key, pos.size_seen, pos.ordinal, flows)
            )
            pos.ordinal += sum(b.num_rows for b in flows)
        checkpoints.save_positions(ctx.con, self.follower.staged())
        checkpoints.forget_positions(ctx.con, self.name, self.follower.gone())
        return chunks

    def commit(self) -> None:
        self.follower.commit()

    def abort(self) -> None:
        self.follower.abort()

    def busy(self) -> bool:
        return self.follower.more

    def status(self) -> dict[str, Any]:
        c = self.follower.counters
        return {"files": c.files, "pending_bytes": c.pending_bytes, "truncated": c.truncated,
                "disappeared": c.disappeared, "bytes_lost": c.bytes_lost, "unreadable_ranges": self.bad}  # fmt: skip

    def close(self) -> None:
        self.follower.close()
