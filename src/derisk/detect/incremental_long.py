"""Long connections in :mod:`derisk.detect.incremental`: the host x address pairs scored again, and
the buffer rows no detection needs any more dropped (closed long connections kept as the best of
their pair)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from derisk.detect.alert import Alert, LawsFor
from derisk.detect.config import DetectionConfig
from derisk.detect.incremental_arrays import Recs, ok_of
from derisk.detect.incremental_interners import distinct
from derisk.detect.incremental_rows import duration_of, flags
from derisk.detect.longconn import detect_long_connections, five_tuple, stitch_records
from derisk.detect.segments import I64, B, flow_times, segments

if TYPE_CHECKING:
    from derisk.detect.incremental import DetectionState, Piece


def long_rows(self: DetectionState, pairs: I64) -> Callable[[Recs], B]:
    """Which rows of a part's records the long connections of these host x address pairs (codes)
    read."""
    wanted_at = flags(len(self.keys["pair"]), pairs)
    return lambda rec: np.asarray(wanted_at[rec["pair"]] & ok_of(rec, "long"), dtype=bool)


def long_alerts(sub: pa.Table, config: DetectionConfig, laws: LawsFor) -> dict[str, list[Alert]]:
    """The long-connection alerts of ``sub`` (whole pairs' rows) under their pairs."""
    found: dict[str, list[Alert]] = {}
    for a in detect_long_connections(sub, config, laws):
        found.setdefault(f"{a.src_ip}\x1f{a.target.dst_ip}", []).append(a)
    return found


def settle_long(self: DetectionState, pairs: I64, found: dict[str, list[Alert]]) -> None:
    """The live long-connection alerts of the pairs scored again: those ``found``; the others of
    these pairs withdrawn."""
    wanted, interner = set(pairs.tolist()), self._pairs("pair")
    for p in [p for p in self.long_live.alerts if p not in found]:  # current live alerts
        if interner.code_of(p) in wanted:
            self.long_live.set_alerts(p, [])
    for p, got in found.items():
        self.long_live.set_alerts(p, got)


def evict(self: DetectionState, config: DetectionConfig, laws: LawsFor) -> I64:
    """Drop the rows no detection needs any more; returns the pairs (codes) whose live connections
    changed. Closed long connections are kept as the best of their pair (``long_final``)."""
    until = self.fold_until
    if until is None:
        return np.zeros(0, dtype=np.int64)
    stitch = config.get("long_connection", "stitch_gap_seconds")
    olds = [p for p in self.win.parts() if self.win.oldest[p] < until]
    changed: list[I64] = [np.zeros(0, dtype=np.int64)]
    closed_at: dict[int, list[I64]] = {p: [] for p in olds}

    def picks() -> Iterator[Piece]:
        for p in olds:
            rec = self.win.get(p)
            long_ok = ok_of(rec, "long")
            cand = np.flatnonzero((rec["start"] < until) & long_ok)
            if len(cand):
                pairs = distinct(rec["pair"][cand].astype(np.int64))
                changed.append(pairs)
                yield p, rec, np.flatnonzero(flags(len(self.keys["pair"]), pairs)[rec["pair"]] & long_ok)

    # whole hosts at a time: a connection's records share its host
    for pieces, sub in self.tables(picks()):
        times = flow_times(sub, None)
        order, conn = stitch_records(five_tuple(sub), times.start, times.end, stitch)
        seg = segments(conn)
        run_end = seg.max(times.end[order])
        closed_rows = order[(run_end < until - stitch)[seg.index()]]
        if len(closed_rows):
            closed = sub.take(pa.array(closed_rows, pa.int64()))
            for a in detect_long_connections(closed, config, laws):
                p = f"{a.src_ip}\x1f{a.target.dst_ip}"
                prev = self.long_final.alerts.get(p, [])
                if not prev or duration_of(a) > duration_of(prev[0]):
                    self.long_final.set_alerts(p, [a])
            # the table's rows are the pieces' positions one after another
            part_of = np.concatenate([np.full(len(pos), p) for p, _, pos in pieces])
            pos_of = np.concatenate([pos for _, _, pos in pieces])
            for part in np.unique(part_of[closed_rows]).tolist():
                closed_at[part].append(pos_of[closed_rows][part_of[closed_rows] == part])
    for part in olds:
        rec = self.win.get(part)
        drop = (rec["start"] < until) & ~ok_of(rec, "long")
        for pos in closed_at[part]:
            drop[pos] = True
        if drop.any():
            self.keep_rows(part, rec, ~drop)
    return distinct(np.concatenate(changed))
