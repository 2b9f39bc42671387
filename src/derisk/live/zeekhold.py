"""Hold conn.log records back until their companion records can have been written.

Zeek writes each log through its own buffered writer, so the lines of one connection reach the disk
in no fixed order: a conn.log line can be on disk before the ssl.log line that names its server. A
batch reader (``derisk analyze``) sees the finished files and joins them whole; a follower that
stored such a conn line at once would store it without its server name, for good, and attribute it
to whoever runs the address instead of the service it reached.

So ``derisk watch`` releases a record of the *current* conn.log only once every companion log of
the current period (ssl, quic, http, dns, those that exist) has been read past the record's start
time (its *mark*), or once it has waited ``wait_s`` seconds of wall-clock time (a companion writer
that has nothing to write, or has died, must not stop the watch). Records of a rotated or archived
conn.log are released at once: their period is closed, and its companions come first in the
reading order (:func:`derisk.live.sources.zeek_candidates`). A run that ends because no new
data came for ``--exit-when-idle`` seconds releases what it holds first (a replay's logs are
complete). A held record and every record after
it stay unread: the followed file's position is set back to the held record's line (so the flows
keep the ordinals of the file's line order, as ``derisk analyze`` gives them) and the next batch
reads them again. Marks are stored with the batch, so a restart does not hold what was released.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from derisk.store import checkpoints

#: Default seconds a conn record waits for its companions (Zeek's writers flush about every second).
DEFAULT_WAIT_S: Final = 2.0


def record_starts(data: bytes) -> list[int]:
    """Byte offsets of the record lines (not blank, not ``#`` header or footer lines) in ``data``."""
    starts = []
    at = 0
    for line in data.split(b"\n"):
        if line.strip() and not line.startswith(b"#"):
            starts.append(at)
        at += len(line) + 1
    return starts


@dataclass
class CompanionClock:
    """How far each current companion log has been read (in data time), and what is held."""

    source: str
    wait_s: float = DEFAULT_WAIT_S
    #: kind -> (position key of the current file, newest record start read, µs since the epoch)
    marks: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: conn position key -> when its records began to be held (monotonic), until none is
    _held_since: dict[str, float] = field(default_factory=dict)
    _staged: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: Records held back by the last batch (none: nothing waits).
    held: int = 0
    #: Records released after waiting ``wait_s`` (their companions had not been read past them).
    released_by_wait: int = 0
    #: Release everything held at the next batch (the run ends: a replay's logs are complete).
    flushing: bool = False

    def restore(self, con: duckdb.DuckDBPyConnection) -> None:
        self.marks = checkpoints.load_marks(con, self.source)
        self._staged = {}

    def saw(self, kind: str, key: str, table: pa.Table) -> None:
        """Companion records of a current log were read (``kind``: ssl, quic, http or dns)."""
        if "ts" not in table.column_names or table.num_rows == 0:
            return
        newest = pc.max(table.column("ts").cast(pa.int64())).as_py()
        if newest is None:
            return
        known = self._staged.get(kind) or self.marks.get(kind)
        if known is not None and known[0] == key:
            newest = max(newest, known[1])
        self._staged[kind] = (key, int(newest))

    def save(self, con: duckdb.DuckDBPyConnection) -> None:
        """Store the marks this batch moved (in the batch's transaction)."""
        checkpoints.save_marks(con, self.source, self._staged)

    def commit(self) -> None:
        self.marks.update(self._staged)
        self._staged = {}

    def abort(self) -> None:
        self._staged = {}

    def release(self, key: str, ts_us: pa.Array, kinds: set[str]) -> int:
        """How many of a current conn range's records (their start times ``ts_us``, in line order)
        go now; the rest is held. ``kinds``: the companion logs the current period has."""
        rows = len(ts_us)
        if not kinds or rows == 0 or self.flushing:
            return rows
        marks = [(self._staged.get(k) or self.marks.get(k)) for k in kinds]
        if any(m is None for m in marks):
            cut = 0
        else:
            mark = min(m[1] for m in marks if m is not None)
            late = pc.greater(ts_us.cast(pa.int64()), pa.scalar(mark, pa.int64()))
            first = pc.index(late, True).as_py()
            cut = rows if first is None or first < 0 else int(first)
        if cut >= rows:
            self._held_since.pop(key, None)
            return rows
        since = self._held_since.setdefault(key, time.monotonic())
        if time.monotonic() - since >= self.wait_s:
            self._held_since.pop(key, None)
            self.released_by_wait += rows - cut
            return rows
        self.held += rows - cut
        return cut

    def new_batch(self) -> None:
        self.held = 0

    def cancel_hold(self, count: int) -> None:
        """``count`` records :meth:`release` held go after all: the range's lines cannot be told
        apart (a bad line was skipped)."""
        self.held -= count
