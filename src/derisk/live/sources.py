"""What ``derisk watch`` reads from: followed Zeek logs, a followed Suricata EVE log, a folder of ring
captures. (Live capture and NetFlow, which arrive on their own, are in :mod:`derisk.live.capture`.)

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
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from derisk.errors import DeriskError, InputError
from derisk.live.follow import Candidate, Follower
from derisk.live.zeekrange import ZeekRanges
from derisk.store import checkpoints
from derisk.store.checkpoints import Position

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
    def busy(self) -> bool: ...
    def close(self) -> None: ...


def skip_to_end(follower: Follower, con: duckdb.DuckDBPyConnection) -> None:
    """Position every file of a first start at the end of its complete lines (``--from-end``)."""
    while True:
        pieces = follower.poll(64 << 20)
        follower.commit()
        if not pieces:
            break
    checkpoints.save_positions(con, follower.positions.values())


# -- Zeek ----------------------------------------------------------------------------------------

_LOG_NAME: Final = re.compile(r"^(conn|dns|ssl|quic|http)(\.([^/]+))?\.(log|json)(\.gz)?$")
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
            middle = match.group(3)
            period = (rank if middle else 3, label, middle or "")
            found.append(
                ((*period, _KIND_ORDER[match.group(1)]), Candidate(Path(entry.path), match.group(1)))
            )

    try:
        days = sorted(p.name for p in root.iterdir() if _DAY_DIR.match(p.name) and p.is_dir())
    except OSError:
        days = []
    for day in days:
        scan(root / day, 0, day)
    scan(root, 1, "")
    scan(root / "current", 2, "")
    return [cand for _, cand in sorted(found, key=lambda item: item[0])]


class ZeekSource:
    """Follows a Zeek log folder (see :func:`zeek_candidates`)."""

    def __init__(self, root: Path, *, from_end: bool = False) -> None:
        self.root = root
        self.name = f"zeek:{root}"
        self.follower = Follower(self.name, "zeek", lambda: zeek_candidates(root))
        self.ranges = ZeekRanges()
        self.from_end = from_end
        self.horizon: dt.datetime | None = None
        #: Whether the workspace keeps companion records (if not, conn ranges need no lookup).
        self.kept = False
        self._staged_horizon: dt.datetime | None = None
        self.flows = 0

    def restore(self, con: duckdb.DuckDBPyConnection) -> None:
        positions = checkpoints.load_positions(con, self.name)
        self.follower.restore(positions)
        rows = con.execute("SELECT max(horizon) FROM watch_zeek_dns").fetchall()
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
        for piece in self.follower.poll(ctx.budget):
            if piece.kind != "conn":
                table = self.ranges.companion(piece)
                if table is not None:
                    # stamped in data time (never the wall clock: a restart takes the newest stamp as
                    # the horizon, and a wall-clock one would prune every record the window still needs)
                    stamp = horizon or _newest(table) or dt.datetime.now(dt.UTC)
                    checkpoints.add_companions(ctx.con, _COMPANION_TABLE[piece.kind], table, stamp)
                    self.kept = True
                continue
            flows = self.ranges.conn(piece, ctx.con, lookup=self.kept)
            rows = sum(b.num_rows for b in flows)
            if rows:
                newest = max(pc.max(b.column("first_seen")).as_py() for b in flows)
                horizon = newest if horizon is None else max(horizon, newest)
            pos = piece.position
            chunks.append(
                Chunk(pos.input_id, "zeek", str(piece.path), pos.key, pos.size_seen, pos.ordinal, flows)
            )
            pos.ordinal += rows
        checkpoints.save_positions(ctx.con, self.follower.staged())
        checkpoints.forget_positions(ctx.con, self.name, self.follower.gone())
        if horizon is not None:
            checkpoints.prune_companions(ctx.con, horizon - ctx.window)
        self._staged_horizon = horizon
        return chunks

    def commit(self) -> None:
        for key in self.follower.gone():
            self.ranges.forget(key)
        self.follower.commit()
        self.horizon = self._staged_horizon

    def abort(self) -> None:
        self.follower.abort()

    def busy(self) -> bool:
        return self.follower.more

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


class EveSource:
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
                with tempfile.TemporaryDirectory(prefix="derisk-eve-") as tmp:
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


# -- ring captures ---------------------------------------------------------------------------------


@dataclass
class _Seen:
    stamp: tuple[int, int, int, int]
    digest: str


@dataclass
class PcapDirSource:
    """A folder that ``tcpdump -G/-W/-C`` writes ring files into: each closed file is read once.

    A file counts as closed once a newer file exists in the folder, or it has not changed for
    ``settle_s`` seconds. Each is one input, identified by its content's SHA-256 as ``derisk
    analyze`` identifies it, so a file is never stored twice, whoever read it first.
    """

    folder: Path
    settle_s: float = 60.0
    name: str = ""
    done: dict[str, _Seen] = field(default_factory=dict)
    failed: int = 0
    files: int = 0
    _staged: list[Position] = field(default_factory=list)
    _digests: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.name = f"pcap:{self.folder}"

    def restore(self, con: duckdb.DuckDBPyConnection) -> None:
        self._digests = set(checkpoints.load_positions(con, self.name))

    def _closed(self) -> list[tuple[Path, os.stat_result]]:
        try:
            entries = [
                (p, p.stat()) for p in self.folder.iterdir() if p.is_file() and not p.name.startswith(".")
            ]
        except OSError as exc:
            log.warning("%s: cannot list the folder (%s)", self.folder, exc.strerror)
            return []
        entries.sort(key=lambda e: (e[1].st_mtime_ns, e[0].name))
        newest = entries[-1][1].st_mtime_ns if entries else 0
        now = time.time_ns()
        self.files = len(entries)
        return [
            (p, st)
            for p, st in entries
            if st.st_mtime_ns < newest or now - st.st_mtime_ns >= self.settle_s * 1e9
        ]

    def collect(self, ctx: Context) -> list[Chunk]:
        from derisk.ingest import read_input, resolve_inputs

        chunks: list[Chunk] = []
        used = 0
        for path, st in self._closed():
            stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            seen = self.done.get(str(path))
            if seen is not None and seen.stamp == stamp:
                continue
            if used >= ctx.budget:
                break
            try:
                spec = resolve_inputs([path])[0]
                digest = spec.digest
            except (DeriskError, OSError) as exc:
                self.failed += 1
                log.warning("%s: skipped: %s", path, exc)
                self.done[str(path)] = _Seen(stamp, "")
                continue
            self.done[str(path)] = _Seen(stamp, digest)
            if (
                digest in self._digests
                or ctx.con.execute("SELECT 1 FROM inputs WHERE input_id = ?", [spec.input_id]).fetchall()
            ):
                continue
            try:
                flows = list(read_input(spec))
            except (DeriskError, OSError, ValueError, pa.ArrowException) as exc:
                self.failed += 1
                log.warning("%s: skipped, it cannot be read: %s", path, exc)
                flows = []
            used += st.st_size
            chunks.append(Chunk(spec.input_id, spec.format, str(path), digest, st.st_size, 0, flows))
            rows = sum(b.num_rows for b in flows)
            self._staged.append(Position(self.name, digest, str(path), st.st_dev, st.st_ino, 0, "", False,
                                         st.st_size, st.st_size, rows, spec.input_id, True))  # fmt: skip
        checkpoints.save_positions(ctx.con, self._staged)
        return chunks

    def commit(self) -> None:
        self._digests.update(p.key for p in self._staged)
        self._staged = []

    def abort(self) -> None:
        for pos in self._staged:
            self.done.pop(pos.path, None)
        self._staged = []

    def busy(self) -> bool:
        return False

    def status(self) -> dict[str, Any]:
        return {"files": self.files, "read": len(self._digests), "failed": self.failed}

    def close(self) -> None:
        return None
