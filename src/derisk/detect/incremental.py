"""Detections kept up to date batch by batch, for ``derisk watch``.

:class:`DetectionState` is what ``watch`` holds between batches: loaded from the workspace, updated
inside each batch's transaction after the batch's flows were stored and attributed, and saved in that
same transaction, so a restart resumes with the state of exactly the committed flows.

A batch costs O(batch + touched keys), not O(history): the flows of the keys it touches are scored
again, plus a few vectorised passes over the integer arrays of the buffer (O(window), a few
milliseconds). No sketch is needed: every statistic is kept exactly. Keys of buffer rows are integer
codes (:mod:`derisk.detect.incremental_interners`; a pair is two codes, not a joined string) that are
forgotten with the rows that used them, and the save writes only the aggregates and alert lists the
batch changed (a key scored again that did not alert before or after is not written).

While watch catches up (a replay, a backlog: more is waiting to be read at once), the window
detections are put off until :data:`DEFER_GROWTH` times as many rows wait as were scored before (at
least :data:`DEFER_ROWS`) and the log has moved on a window length (:data:`DEFER_WINDOWS`): where
every batch touches most of the window, scoring it per batch would cost O(window) each time,
O(n²/batch) for a replay; put off, a backlog shorter than the window is scored once, when caught up,
a longer one about once per window length of log, and the scoring equals one batch over everything
that waited. The history detections are updated per batch all the same. What waits is saved
with the state (the frame and upload baseline start at the last scoring, the senders whose closed
sums changed); after a restart every buffer row read back is scored again, which is exact.

* **Window detections** (beacons and strobes, uploads, long connections) read a buffer of recent flows:
  the last ``beacon.window_hours`` (the beacon and upload window), the upload slot the window's start
  falls in, and the records of long connections still open. The rows themselves are on disk
  (:class:`~derisk.store.detect_state.WindowRows`, one file per part of the hosts), and so are their
  per-row integers (start, sequence number, five key codes, bytes and flags, 53 bytes a row:
  :class:`~derisk.detect.incremental_arrays.PartArrays`, a small window cached in memory); a
  scoring works through one part (whole hosts) at a time, so memory follows a part, not the window. Only the host × server
  name and host × address pairs (beacons, with the pairs sharing flows with them), the senders whose
  window sums can pass the upload test, and the host × address pairs (long connections) that a batch
  touches, or whose flows leave the window, are scored again, by the batch detections themselves on
  their part of the buffer.
* **History detections** keep exact per-key aggregates (:mod:`derisk.detect.incremental_keys`):
  compelled transfers, DNS-tunnel statistics, first sightings for new destinations; upload baselines
  keep the bytes per (sender, destination, slot) of closed slots.

The alerts equal those of one batch ``derisk analyze`` of the same flows (a test feeds real-format
data in random batch splits), within these limits, each stated where it applies:

* a long connection's record that arrives more than a window-length after the newest flow start is
  stitched only to the records still held (exact for exporters that write a record when it ends);
  an upload that arrives more than
  :data:`~derisk.detect.incremental_upload.KEEP_SLOTS` window-lengths late adds to a fresh sum for its
  slot, so that slot's share of the baseline can be lower than a batch analysis finds;
* an earlier baseline start (flows older than every flow seen) re-scores every key, which is exact but
  costs O(keys) for that batch; a change of thresholds or allow-list rebuilds the state from the
  workspace's flows (exact only while no flow was aged out by :meth:`DetectionState.retain`);
* attribution is taken as the batch carried it; ties in time between two flows of one key are broken
  by arrival order, as the batch analysis breaks them by table order, so a batch must list its flows
  in the order they were stored; when a system has more new destinations than
  ``max_per_system``, equal byte counts are ranked by first sighting.

On :meth:`~DetectionState.load` the buffer is read back from the workspace (flows from the oldest one
it held): one scan at start-up; the state this process saved last is reused without reading. :meth:`~DetectionState.retain` deletes older flows and keeps the
aggregates, so later alerts are the same.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Iterable, Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect import default_laws_for, incremental_rows, merge_hosts
from derisk.detect.alert import Alert, LawsFor, cached_laws
from derisk.detect.config import DetectionConfig
from derisk.detect.incremental_arrays import PartArrays, Recs, ok_of, records
from derisk.detect.incremental_beacon import beacon_pairs
from derisk.detect.incremental_interners import Interner, PairInterner, compact_keys, distinct
from derisk.detect.incremental_keys import Compelled, DnsTunnels, Keyed, NewDestinations, key_codes, prefixed
from derisk.detect.incremental_long import evict
from derisk.detect.incremental_rows import (
    COLS,
    SCHEMA,
    compact,
    config_key_of,
    duration_of,
    flow_count,
    host_groups,
    plain_col,
    row_flags,
)
from derisk.detect.incremental_score import score_window
from derisk.detect.incremental_upload import score_uploads, take_uploads
from derisk.detect.segments import F64, I64, B, ints
from derisk.errors import StoreError
from derisk.store.alerts import read_flows_compact_con
from derisk.store.detect_state import WINDOW_PARTS, WindowRows, window_part

log = logging.getLogger(__name__)

#: Rows of one part of the buffer: the part, its records, positions into them.
Piece = tuple[int, Recs, I64]


def _order(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=lambda a: (-a.severity_rank, -a.score, a.kind, a.destination, a.src_ip or ""))


#: Rows taken in at least before the window detections are scored while catching up.
DEFER_ROWS = 200_000

#: While catching up, the window is scored once the rows waiting are this many times those scored
#: before: the rows a replay scores in all are about 1 + 1 / DEFER_GROWTH times the window's, not
#: twice as with 1 (a 10 M-line replay's detections took 116 CPU s with 1, analyze's 56).
DEFER_GROWTH = 3

#: While catching up, the window is also not scored before the newest flow start is this many window
#: lengths past the one scored last (the first start, before any scoring): until then every row a
#: scoring reads is still in the window at the next one, which reads it again wherever a batch
#: touched its key (on a replay's log, every key). A backlog shorter than the window is scored once,
#: when caught up (a 20 M-line replay scored 37 M rows with DEFER_GROWTH alone: 0.2, 0.8, 3.2, 12.8
#: and 20 M); a longer one about once a window length of log, which bounds what waits.
DEFER_WINDOWS = 1.0

#: Dropped rows a part's file may hold beyond twice its live rows before it is written again.
REWRITE_ROWS = 50_000

#: The state this process saved last (see :meth:`DetectionState.load`).
_LAST: dict[str, DetectionState] = {}


class DetectionState:
    """The current alerts of a workspace and the aggregates that keep them current."""

    def __init__(self) -> None:
        self.seq = 0
        self.frame: tuple[float, float] | None = None
        self.config_key: str | None = None
        self.rows = WindowRows()  # the buffer's rows themselves, on disk by part
        # per buffer row, on disk by part as well: start, sequence number, bytes, flags and the codes
        # of its internal host, sender (system or host), destination and its two pairs
        self.win = PartArrays(WINDOW_PARTS)
        self.keys: dict[str, Interner | PairInterner] = {k: Interner() for k in ("host", "who", "dest")}
        self.keys |= {k: PairInterner() for k in ("pair", "hname")}  # host x address, host x name
        self.fold_until: float | None = None
        self.up_closed: dict[str, float] = {}  # who \x1f dest \x1f slot -> bytes out
        self.up_base: dict[str, float] = {}  # who -> most sent to one destination in one closed slot
        self.up_t0: float | None = None
        self.up_dirty: set[str] = set()
        self.up_base_dirty: set[str] = set()
        self.up_forgotten: set[str] = set()  # closed-slot sums dropped since the last save
        self.beacon = Keyed()
        self.upload = Keyed()
        self.long_live = Keyed()
        self.long_final = Keyed()
        self.compelled = Compelled()
        self.dns = DnsTunnels()
        self.new = NewDestinations()
        self._current: dict[str, Alert] = {}
        self._full = True  # never saved: write everything
        self.state_id = uuid.uuid4().hex
        self.generation = 0
        self.hold_from: float | None = None  # the oldest start the buffer held when saved
        self.reload_pending = False  # the buffer is to be read back from the workspace
        # window scoring put off while catching up (see update): the buffer rows from pend_seq on,
        # the frame and the upload baseline start at the last scoring, senders whose sums changed
        self.pend_seq: int | None = None
        self.pend_frame: tuple[float, float] | None = None
        self.pend_up_t0: float | None = None
        self.pend_who: set[str] = set()
        self.n_new = 0  # buffer rows from pend_seq on

    # -- the interface watch calls -------------------------------------------------------------
    @classmethod
    def load(cls, con: duckdb.DuckDBPyConnection, *, cached: bool = True) -> DetectionState:
        """The stored state, or an empty one when none was stored yet.

        When this process saved that very state last (same state id and generation, so every change
        since was committed), the object in memory is returned instead of being read again: watch
        may reopen the workspace for every batch at the cost of one key lookup. ``cached=False``
        always reads."""
        from derisk.detect.incremental_store import load_into, stored_version

        last = _LAST.get("state")
        if cached and last is not None and stored_version(con) == (last.state_id, last.generation):
            return last
        state = cls()
        load_into(state, con)
        return state

    def update(
        self,
        con: duckdb.DuckDBPyConnection,
        batch: pa.Table,
        config: DetectionConfig,
        *,
        laws_for: LawsFor | None = None,
        catching_up: bool = False,
    ) -> list[Alert]:
        """Take in one batch (already stored and attributed in ``con``'s transaction); returns the
        alerts that are new or changed by it, most severe first.

        ``catching_up`` (more data is waiting to be read at once): the window detections may be put
        off until the rows taken in since they were last scored are :data:`DEFER_GROWTH` times those
        scored before (at least :data:`DEFER_ROWS`) and the log has moved on a window length
        (:data:`DEFER_WINDOWS`), so a replay scores the window a few times, not once per batch;
        the history detections are updated all the same. The next update without ``catching_up``,
        or :meth:`score`, scores what waits: the alerts are then those of one batch over all of it."""
        self.generation += 1  # changed in memory: no longer what was stored
        laws = cached_laws(laws_for or default_laws_for())
        key = config_key_of(config)
        stored = flow_count(con)
        if (self.config_key is not None and key != self.config_key) or (
            self.seq == 0 and stored > batch.num_rows
        ):
            # new thresholds or allow-list, or a workspace with flows from before watch: start over
            log.info("detection state rebuilt from the workspace's %d flows", stored)
            before = self._current
            fresh = DetectionState()
            fresh.config_key = key
            fresh._ingest(compact(read_flows_compact_con(con, COLS)), config, laws, False)
            self.__dict__.update(fresh.__dict__)
            return self._changed(before)
        self.config_key = key
        before = self._current
        if self.reload_pending:
            self._reload(con, batch, config)
        self._ingest(compact(batch), config, laws, catching_up)
        return self._changed(before)

    @property
    def pending(self) -> bool:
        """Whether window scoring was put off (:meth:`update` with ``catching_up``)."""
        return self.pend_seq is not None

    def score(
        self, con: duckdb.DuckDBPyConnection, config: DetectionConfig, *, laws_for: LawsFor | None = None
    ) -> list[Alert]:
        """Score what :meth:`update` put off (in ``con``'s transaction); returns the alerts new or
        changed by it."""
        if self.pend_seq is None or self.frame is None or self.config_key != config_key_of(config):
            return []  # nothing waits, or new settings (the next update rebuilds the state)
        self.generation += 1
        before = self._current
        if self.reload_pending:
            self._reload(con, SCHEMA.empty_table(), config)
        self._score(config, cached_laws(laws_for or default_laws_for()))
        return self._changed(before)

    def current_alerts(self) -> list[Alert]:
        """Every current alert, most severe first (those of a batch ``derisk analyze``)."""
        return _order(list(self._current.values()))

    def save(self, con: duckdb.DuckDBPyConnection) -> None:
        """Store what changed since the last save, in the transaction ``con`` holds."""
        from derisk.detect.incremental_store import save_from

        self.generation += 1
        save_from(self, con)
        _LAST["state"] = self

    def retain(self, con: duckdb.DuckDBPyConnection, before: dt.datetime) -> None:
        """Delete the flows that started before ``before`` (in the caller's transaction); the state keeps
        their aggregates, so later alerts stay the same. Flows the state still holds in its buffer are
        kept whatever ``before`` says."""
        if before.tzinfo is None:
            raise ValueError("retain needs an aware datetime (UTC)")
        cut = before.timestamp()
        oldest = self.win.min_start()
        if oldest is not None:
            cut = min(cut, oldest)
        try:
            con.execute("DELETE FROM flows WHERE first_seen < ?", [dt.datetime.fromtimestamp(cut, tz=dt.UTC)])
        except duckdb.Error as exc:
            raise StoreError(f"could not delete old flows: {exc}") from None

    # -- batch processing ----------------------------------------------------------------------
    def _changed(self, before: dict[str, Alert]) -> list[Alert]:
        groups: list[Keyed] = [self.beacon, self.upload, self.compelled, self.dns, self.new]
        alerts = [a for g in groups for a in g.all_alerts()]
        for pair in set(self.long_live.alerts) | set(self.long_final.alerts):
            cands = self.long_live.alerts.get(pair, []) + self.long_final.alerts.get(pair, [])
            alerts.append(max(cands, key=duration_of))
        fresh = {a.alert_id: a for a in merge_hosts(alerts)}
        self._current = fresh
        # an alert object not re-scored is the same object as before: only new objects are compared
        changed = [
            a
            for k, a in fresh.items()
            if k not in before or (before[k] is not a and before[k].to_json() != a.to_json())
        ]
        return _order(changed)

    def _ingest(self, t: pa.Table, config: DetectionConfig, laws: LawsFor, defer: bool = False) -> None:
        n = t.num_rows
        if n == 0:
            return
        seq = np.arange(self.seq, self.seq + n, dtype=np.int64)
        self.seq += n
        times, ok_out, held, ok, keep = row_flags(t, config)
        old_frame = self.frame
        if ok_out.any():
            lo, hi = float(times.start[ok_out].min()), float(times.start[ok_out].max())
            self.frame = (lo, hi) if old_frame is None else (min(old_frame[0], lo), max(old_frame[1], hi))
        self._history(t, times.start, times.end, times.valid, seq, ok_out, keep, config, laws, old_frame)
        if self.frame is None:
            return
        if self.pend_seq is None:  # the first rows since the last scoring
            self.pend_seq, self.pend_frame, self.pend_up_t0 = int(seq[0]), old_frame, self.up_t0
        self._append(
            t.filter(pa.array(held)), times.start[held], seq[held], {k: v[held] for k, v in ok.items()}
        )
        take_uploads(self, t, times.start, ok["upload"], config.get("beacon", "window_hours") * 3600.0)
        if not defer or self._due(config.get("beacon", "window_hours") * 3600.0):
            self._score(config, laws)

    def _due(self, window: float) -> bool:
        """While catching up: whether the window is to be scored now (:data:`DEFER_GROWTH`,
        :data:`DEFER_WINDOWS`)."""
        assert self.frame is not None
        if self.n_new < max(DEFER_ROWS, DEFER_GROWTH * (len(self.win) - self.n_new)):
            return False
        since = self.pend_frame[1] if self.pend_frame is not None else self.frame[0]
        return self.frame[1] >= since + DEFER_WINDOWS * window

    def _score(self, config: DetectionConfig, laws: LawsFor) -> None:
        """Score the window detections for the buffer rows taken in since they were last scored."""
        assert self.frame is not None and self.pend_seq is not None
        window = config.get("beacon", "window_hours") * 3600.0
        cut_old = self.pend_frame[1] - window if self.pend_frame else -math.inf
        cut = self.frame[1] - window
        pend = self.pend_seq
        # uploads first: they fold the rows of slots that closed, which the eviction below drops
        score_uploads(self, pend, (cut_old, cut, window), config, laws)
        # the beacon pairs are found before the eviction (rows leaving the window name them); it
        # drops only rows older than the window, which beacons do not read
        beacons = beacon_pairs(self, pend, (cut_old, cut))
        # long connections: the pairs of the new rows, with those whose records leave the buffer
        # (flagged part by part: after a replay's one scoring the new rows are the whole window, and
        # their codes joined in one array took 160 MB at 20 M rows, twice while joined)
        touched = np.zeros(len(self.keys["pair"]) + 1, dtype=bool)  # the last slot: code -1
        for _, rec in self.win:
            new = rec[self.new_from(rec, pend) :]
            touched[new["pair"][ok_of(new, "long")]] = True
        pairs = np.flatnonzero(touched[:-1])
        self.pend_seq, self.pend_frame, self.pend_up_t0, self.pend_who = None, None, None, set()
        self.n_new = 0
        pairs = distinct(np.r_[pairs, evict(self, config, laws)])
        score_window(self, beacons, cut, pairs, config, laws)  # a part's rows read once for both
        compact_keys(self.keys, self.win)

    def _history(
        self,
        t: pa.Table,
        start: F64,
        end: F64,
        valid: B,
        seq: I64,
        ok_out: B,
        keep: dict[str, B],
        config: DetectionConfig,
        laws: LawsFor,
        old_frame: tuple[float, float] | None,
    ) -> None:
        """Compelled transfers, DNS tunnels and new destinations: per-key aggregates."""

        def view(m: B) -> tuple[pa.Table, I64]:
            return (t, np.arange(t.num_rows)) if m.all() else (t.filter(pa.array(m)), np.flatnonzero(m))

        tc, rc = view(keep["compelled"])
        touched = self.compelled.add(tc, start[rc], end[rc], seq[rc], ok_out[rc], laws)
        self.compelled.rescore(touched, config, laws)
        td, rd = view(keep["dns"])
        touched = self.dns.add(td, start[rd], valid[rd], seq[rd])
        self.dns.rescore(touched, config, laws)
        tn, rn = view(keep["new"])
        single = self.new.single_input()
        owners = self.new.add(tn, start[rn], seq[rn], ok_out[rn])
        baseline = config.get("new_destination", "baseline_hours") * 3600.0
        live = self.frame is not None and self.frame[1] >= self.frame[0] + baseline
        was_live = old_frame is not None and old_frame[1] >= old_frame[0] + baseline
        if (
            old_frame is None
            or self.frame is None
            or old_frame[0] != self.frame[0]
            or live != was_live
            or single != self.new.single_input()
        ):
            owners = self.new.owners()
        self.new.rescore(owners, config, laws, self.frame)

    # -- the buffer ----------------------------------------------------------------------------
    def _reload(self, con: duckdb.DuckDBPyConnection, batch: pa.Table, config: DetectionConfig) -> None:
        """Read the buffer back from the workspace's flows after a load (the batch's own flows left out)."""
        from derisk.detect.incremental_store import arrival_order, held_rows

        self.reload_pending = False
        if self.hold_from is None:
            return
        where = f"first_seen >= to_timestamp({float(self.hold_from) - 1.0!r})"
        t = arrival_order(con, compact(read_flows_compact_con(con, COLS, where=where)), where)
        ids = batch.column("flow_id") if "flow_id" in batch.column_names else pa.array([], pa.string())
        t = t.take(pa.array(held_rows(t, ids), pa.int64()))
        times, _, held, ok, _ = row_flags(t, config)
        seq = np.arange(self.seq - t.num_rows, self.seq, dtype=np.int64)
        if self.pend_seq is not None:  # scoring was put off: every row read back is scored again
            self.pend_seq = int(self.seq - t.num_rows)
        self._append(
            t.filter(pa.array(held)), times.start[held], seq[held], {k: v[held] for k, v in ok.items()}
        )

    def _append(self, rows: pa.Table, start: F64, seq: I64, ok: dict[str, B]) -> None:
        if rows.num_rows == 0:
            return
        src = pc.cast(plain_col(rows, "src_ip"), pa.string())
        host_codes, hosts = key_codes(src)
        part = np.r_[window_part(hosts), np.int8(0)][host_codes]
        self.rows.append(rows, seq, part)
        arrays = {
            "host": src,
            "who": prefixed(rows, "system", "src_ip", ("s:", "i:")),
            "dest": prefixed(rows, "dst_domain", "dst_ip", ("d:", "a:")),
        }
        codes = {k: self._interner(k).codes(arr) for k, arr in arrays.items()}
        for k, right in (("pair", "dst_ip"), ("hname", "server_name")):
            codes[k] = self._pairs(k).codes(src, pc.cast(plain_col(rows, right), pa.string()))
        rec = records(start, seq, ints(rows, "bytes_out"), ints(rows, "bytes_in"), codes, ok)
        if self.pend_seq is not None:
            self.n_new += int(np.count_nonzero(seq >= self.pend_seq))
        order = np.argsort(part, kind="stable")
        bounds = np.flatnonzero(np.r_[True, part[order][1:] != part[order][:-1], True])
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            self.win.append(int(part[order[lo]]), rec[order[lo:hi]])

    @staticmethod
    def new_from(rec: Recs, pend: int | None) -> int:
        """Where the rows taken in since the last scoring begin in a part's records."""
        return len(rec) if pend is None else int(np.searchsorted(rec["seq"], pend))

    def _interner(self, key: str) -> Interner:
        interner = self.keys[key]
        assert isinstance(interner, Interner)
        return interner

    def _pairs(self, key: str) -> PairInterner:
        interner = self.keys[key]
        assert isinstance(interner, PairInterner)
        return interner

    @property
    def buffer_rows(self) -> int:
        """Rows the buffer holds."""
        return len(self.win)

    def keep_rows(self, part: int, rec: Recs, keep: B) -> None:
        """Keep only the ``keep`` rows of ``part`` (whose records are ``rec``)."""
        self.win.put(part, rec[keep])
        # a part's file is written again once its dropped rows outnumber its live ones
        live = int(np.count_nonzero(keep))
        if self.rows.written[part] > 2 * live + REWRITE_ROWS:
            self.rows.rewrite(part, rec["seq"][keep])

    def tables(self, picks: Iterable[tuple[int, Recs, I64]]) -> Iterator[tuple[list[Piece], pa.Table]]:
        """The rows picked (per part: its records and positions into them, rising) read back in
        groups of whole hosts, with the (part, records, positions) each group holds in its order:
        parts read one at a time and joined while a group stays within ``SCORE_ROWS`` rows (a
        detector call has a fixed cost, so small parts are scored together), a larger part cut by
        :func:`host_groups`; each host's rows in buffer order."""
        limit = incremental_rows.SCORE_ROWS
        held: list[tuple[Piece, pa.Table]] = []
        count = 0
        for part, rec, pos in picks:
            if len(pos) == 0:
                continue
            if held and count + len(pos) > limit:
                yield [h[0] for h in held], pa.concat_tables([h[1] for h in held])
                held, count = [], 0
            table = self.rows.take(part, rec["seq"][pos])
            if len(pos) <= limit:
                held.append(((part, rec, pos), table))
                count += len(pos)
                continue
            for group in host_groups(rec["host"][pos].astype(np.int64)):
                yield [(part, rec, pos[group])], table.take(pa.array(group, pa.int64()))
        if held:
            yield [h[0] for h in held], pa.concat_tables([h[1] for h in held])

    # -- keys ----------------------------------------------------------------------------------
