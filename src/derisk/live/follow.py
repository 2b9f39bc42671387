"""Follow growing line logs (Zeek, Suricata EVE) through rotation, archiving, truncation and removal.

A :class:`Follower` is given a function that lists the files of a source in reading order (oldest
first; the file being written last). Each poll it reads, from every file, the *complete* lines
written since its last position (a partial last line waits for the next poll), at most
``max_bytes`` in all. Positions are staged: they become the follower's own only when the caller's
transaction has committed (:meth:`Follower.commit`); a failed transaction drops them
(:meth:`Follower.abort`) and the same lines are read again.

A file is recognised by its identity, not its name:

* by device and inode, as long as it is the same file (renamed by a rotation, say), its first
  bytes (:data:`HEAD_BYTES`) unchanged and its size not below the position;
* else by the hash of its first bytes, decompressed: Zeek's archiver and Suricata's rotation gzip a
  finished log into a new file, which is then read on from the position reached in the plain one.
  Only heads that tell files apart are matched this way (one with a complete record or Zeek's
  ``#open`` line, which carries the time the log was opened).

A file truncated or replaced under the reader (same inode, head changed or size below the
position) is reported and read again from its start as a new file. A file that disappears with
lines not yet read is reported, with the bytes lost, once it has been missing for ``grace_s``.
Every such event is counted in :attr:`Follower.counters`.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import logging
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from derisk.flows import input_id_for
from derisk.store.checkpoints import Position

log = logging.getLogger(__name__)

#: Bytes of a file's start that identify it.
HEAD_BYTES: Final = 1024
#: A single line longer than this is skipped (and counted) instead of holding the reader back.
MAX_LINE: Final = 64 << 20


@dataclass(frozen=True)
class Candidate:
    """A file a source lists: its path and what kind of log it is (``conn``, ``ssl``, ``eve`` ...)."""

    path: Path
    kind: str


@dataclass
class Piece:
    """Complete lines read from one file in one poll."""

    kind: str
    path: Path
    data: bytes
    position: Position  # staged: offset already after ``data``; the caller adds the flows to ordinal
    start: int


@dataclass
class _Open:
    handle: IO[bytes]
    offset: int  # logical offset of the next byte the caller gets (carry included)
    carry: bytes = b""


_NO_CARRY: Final = _Open(handle=None, offset=0)  # type: ignore[arg-type]


@dataclass
class Counters:
    truncated: int = 0
    disappeared: int = 0
    bytes_lost: int = 0
    read_errors: int = 0
    long_lines: int = 0
    files: int = 0
    pending_bytes: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def _is_gzip(path: Path) -> bool:
    return path.name.endswith(".gz")


def _open(path: Path) -> IO[bytes]:
    if _is_gzip(path):
        return gzip.GzipFile(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def distinctive(head: bytes) -> bool:
    """Whether a file's head tells it apart: a complete record, or Zeek's ``#open`` line."""
    for line in head.split(b"\n")[:-1]:
        if line.startswith(b"#open") or (line.strip() and not line.startswith(b"#")):
            return True
    return False


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Follower:
    """Positions in the files of one source; see the module's description."""

    def __init__(
        self,
        source: str,
        fmt: str,
        discover: Callable[[], list[Candidate]],
        *,
        grace_s: float = 30.0,
    ) -> None:
        self.source = source
        self.fmt = fmt
        self.discover = discover
        self.grace_s = grace_s
        self.positions: dict[str, Position] = {}
        self.counters = Counters()
        self._staged: dict[str, Position] = {}
        self._missing_since: dict[str, float] = {}
        self._gone: list[str] = []
        self._open: dict[str, _Open] = {}
        #: The last poll stopped at its byte budget with lines left to read.
        self.more = False
        self._filled = False  # the last poll's reads got all they asked for

    # -- state ------------------------------------------------------------------------------
    def restore(self, positions: dict[str, Position]) -> None:
        self.positions = dict(positions)
        self._close_all()

    def staged(self) -> list[Position]:
        return list(self._staged.values())

    def gone(self) -> list[str]:
        """Keys of positions to delete with this batch (files gone for good)."""
        return list(self._gone)

    def commit(self) -> None:
        self.positions.update(self._staged)
        for key in self._gone:
            self.positions.pop(key, None)
            self._missing_since.pop(key, None)
            self._drop(key)
        for key, pos in self._staged.items():
            if pos.finished:
                self._drop(key)  # archived and read to its end: no handle kept
        self._staged, self._gone = {}, []

    def rewind(self, piece: Piece, offset: int) -> None:
        """Read ``piece``'s file again from ``offset`` (a line start within the piece) next time:
        the lines from there on were handed back unused (:mod:`derisk.live.zeekhold`)."""
        pos = piece.position
        if not piece.start <= offset <= pos.offset:
            raise ValueError(f"offset {offset} outside the piece read from {piece.start} to {pos.offset}")
        pos.offset = offset
        pos.finished = False
        self._drop(pos.key)  # reopened and sought at the next poll
        if pos == self.positions.get(pos.key):
            self._staged.pop(pos.key, None)
        else:
            self._staged[pos.key] = pos

    def abort(self) -> None:
        self._staged, self._gone = {}, []
        self._close_all()  # offsets went back: reopen at the committed positions

    def close(self) -> None:
        self._close_all()

    def _drop(self, key: str) -> None:
        opened = self._open.pop(key, None)
        if opened is not None:
            opened.handle.close()

    def _close_all(self) -> None:
        for opened in self._open.values():
            opened.handle.close()
        self._open = {}

    # -- reading ----------------------------------------------------------------------------
    def _head(self, path: Path) -> bytes:
        with _open(path) as fh:
            return fh.read(HEAD_BYTES)

    def _identify(self, found: list[tuple[Candidate, os.stat_result]]) -> list[tuple[Candidate, Position]]:
        """Match listed files to positions: by inode first, then by head; the rest are new files."""
        work = {key: copy.copy(pos) for key, pos in self.positions.items()}
        by_inode = {(p.device, p.inode): p for p in work.values()}
        claimed: set[str] = set()
        matched: list[tuple[Candidate, Position] | None] = [None] * len(found)
        heads: list[bytes | None] = [None] * len(found)
        for n, (cand, st) in enumerate(found):
            pos = by_inode.get((st.st_dev, st.st_ino))
            if pos is None or pos.key in claimed:
                continue
            if pos.finished and pos.size_seen == st.st_size:
                claimed.add(pos.key)  # read to its end before and unchanged: not opened again
                matched[n] = (cand, pos)
                continue
            head = heads[n] = self._head(cand.path)
            plain = not _is_gzip(cand.path)
            if _digest(head[: pos.head_len]) != pos.head_hash or (plain and st.st_size < pos.offset):
                self.counters.truncated += 1
                log.warning(
                    "%s: truncated or replaced under the reader (was read to byte %d, now %d bytes);"
                    " reading it again from its start",
                    cand.path,
                    pos.offset,
                    st.st_size,
                )
                pos.device = pos.inode = -1  # the old content may still turn up under another name
                self._drop(pos.key)
                continue
            claimed.add(pos.key)
            matched[n] = (cand, pos)
        by_head: dict[tuple[int, str], Position] = {}
        for pos in work.values():
            if pos.key not in claimed:
                by_head.setdefault((pos.head_len, pos.head_hash), pos)
        lengths = sorted({length for length, _ in by_head}, reverse=True)
        for n, (cand, st) in enumerate(found):
            if matched[n] is not None:
                continue
            try:
                known = heads[n]
                head = known if known is not None else self._head(cand.path)
            except (OSError, EOFError, zlib.error) as exc:
                self.counters.read_errors += 1
                log.warning("%s: cannot read its start (%s); tried again at the next poll", cand.path, exc)
                continue
            pos = None
            for length in lengths:
                if length <= len(head) and distinctive(head[:length]):
                    pos = by_head.get((length, _digest(head[:length])))
                    if pos is not None and pos.key not in claimed:
                        break
                    pos = None
            if pos is None:
                if not head:
                    continue  # an empty file: nothing to recognise it by yet
                # Unique even for two files that start alike (a log's header alone, before its records).
                key = _digest(head + f"|{st.st_dev}:{st.st_ino}:{time.time_ns()}".encode())[:32]
                pos = Position(
                    self.source, key, str(cand.path), st.st_dev, st.st_ino, len(head), _digest(head),
                    _is_gzip(cand.path), 0, st.st_size, 0, input_id_for(key, self.fmt),
                )  # fmt: skip
                if key in self.positions or key in claimed:
                    continue  # the same content listed twice (a copy): read once
            else:
                if pos.compressed != _is_gzip(cand.path) or pos.inode != st.st_ino:
                    log.info("%s: recognised as %s (rotated or archived); read on from byte %d",
                             cand.path, pos.path, pos.offset)  # fmt: skip
                self._drop(pos.key)
            pos.device, pos.inode, pos.path = st.st_dev, st.st_ino, str(cand.path)
            pos.compressed = _is_gzip(cand.path)
            if len(head) > pos.head_len and pos.head_len < HEAD_BYTES:
                pos.head_len, pos.head_hash = len(head), _digest(head)
            claimed.add(pos.key)
            matched[n] = (cand, pos)
        self._track_missing(claimed)
        return [m for m in matched if m is not None]

    def _track_missing(self, claimed: set[str]) -> None:
        now = time.monotonic()
        for key, pos in self.positions.items():
            if key in claimed:
                self._missing_since.pop(key, None)
                continue
            since = self._missing_since.setdefault(key, now)
            if now - since < self.grace_s:
                continue
            unread = max(0, pos.size_seen - pos.offset) if not pos.compressed else 0
            if not pos.finished and unread:
                self.counters.disappeared += 1
                self.counters.bytes_lost += unread
                log.warning(
                    "%s: disappeared before it was read to its end (%d bytes not read)", pos.path, unread
                )
            self._gone.append(key)

    def poll(self, max_bytes: int) -> list[Piece]:
        """Complete lines written since the last committed position, in the listed order."""
        found: list[tuple[Candidate, os.stat_result]] = []
        for cand in self.discover():
            try:
                found.append((cand, cand.path.stat()))
            except FileNotFoundError:
                continue  # rotated away between listing and looking
            except OSError as exc:
                self.counters.read_errors += 1
                log.warning("%s: cannot be read (%s)", cand.path, exc.strerror)
        pieces: list[Piece] = []
        budget = max_bytes
        pending = 0
        self._filled = False
        for cand, pos in self._identify(found):
            size = next(st.st_size for c, st in found if c is cand)
            if pos.finished and pos.size_seen == size:
                continue
            if budget <= 0:
                pending += max(0, size - pos.offset) if not pos.compressed else 0
                continue
            try:
                data, eof = self._read(cand.path, pos, budget)
            except (OSError, EOFError, zlib.error) as exc:
                # A gzip file still being written by the archiver, or a file removed while read.
                self._drop(pos.key)
                log.info("%s: not readable yet (%s); tried again at the next poll", cand.path, exc)
                continue
            start = pos.offset
            pos.offset += len(data)
            pos.size_seen = size
            if pos.compressed and eof:
                pos.finished = True
            if pos != self.positions.get(pos.key):  # unchanged positions are not written again
                self._staged[pos.key] = pos
            if not pos.compressed:
                pending += max(0, size - pos.offset)
            if data:
                budget -= len(data)
                pieces.append(Piece(cand.kind, cand.path, data, pos, start))
            elif not self._open.get(pos.key, _NO_CARRY).carry:
                self._drop(pos.key)  # nothing new: reopened (and sought) when it grows
        self.counters.files = len(found)
        self.counters.pending_bytes = pending
        # stopped by the budget (the budget spent, or a read that got all it asked for, its partial
        # last line carried): more is waiting, no pause before the next batch
        self.more = budget <= 0 or self._filled
        return pieces

    def _read(self, path: Path, pos: Position, budget: int) -> tuple[bytes, bool]:
        """Complete lines from ``pos.offset``, up to about ``budget`` bytes; (data, at end of file)."""
        opened = self._open.get(pos.key)
        if opened is None or opened.offset != pos.offset:
            if opened is not None:
                opened.handle.close()
            handle = _open(path)
            if pos.compressed:
                skip = pos.offset
                while skip:
                    got = handle.read(min(skip, 1 << 20))
                    if not got:
                        raise EOFError(f"shorter than the position {pos.offset}")
                    skip -= len(got)
            else:
                handle.seek(pos.offset)
            opened = self._open[pos.key] = _Open(handle, pos.offset)
        want = max(budget - len(opened.carry), 512)
        got = opened.handle.read(want)
        self._filled = self._filled or len(got) == want
        chunk = opened.carry + got
        eof = len(chunk) == len(opened.carry) or (pos.compressed and not opened.handle.peek(1))  # type: ignore[attr-defined]
        end = chunk.rfind(b"\n") + 1
        if end == 0 and len(chunk) > MAX_LINE:
            self.counters.long_lines += 1
            log.warning("%s: a line longer than %d bytes at byte %d is skipped", path, MAX_LINE, pos.offset)
            rest = opened.handle.readline()
            while rest and not rest.endswith(b"\n"):
                rest = opened.handle.readline()
            opened.offset += len(chunk) + len(rest)
            opened.carry = b""
            pos.offset = opened.offset  # skipped, not returned
            return b"", False
        opened.carry = chunk[end:]
        opened.offset += end
        return chunk[:end], eof and not opened.carry
