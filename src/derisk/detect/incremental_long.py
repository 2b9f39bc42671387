"""Long connections in :mod:`derisk.detect.incremental`: the host x address pairs scored again, and
the buffer rows no detection needs any more dropped (closed long connections kept as the best of
their pair)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from derisk.detect.alert import Alert, LawsFor
from derisk.detect.config import DetectionConfig
from derisk.detect.incremental_rows import duration_of
from derisk.detect.longconn import detect_long_connections, five_tuple, stitch_records
from derisk.detect.segments import I64, flow_times, segments

if TYPE_CHECKING:
    from derisk.detect.incremental import DetectionState


def score_long(self: DetectionState, pairs: I64, config: DetectionConfig, laws: LawsFor) -> None:
    """Score again the long connections of these host x address pairs (codes)."""
    if len(pairs) == 0:
        return
    found: dict[str, list[Alert]] = {}
    for _, sub in self._groups(np.flatnonzero(self._pair_mask(pairs))):
        for a in detect_long_connections(sub, config, laws):
            found.setdefault(f"{a.src_ip}\x1f{a.target.dst_ip}", []).append(a)
    wanted, interner = set(pairs.tolist()), self._pairs("pair")
    for p in [p for p in self.long_live.alerts if p not in found]:  # current live alerts
        if interner.code_of(p) in wanted:
            self.long_live.set_alerts(p, [])
    for p, got in found.items():
        self.long_live.set_alerts(p, got)


def evict(self: DetectionState, config: DetectionConfig, laws: LawsFor) -> I64:
    """Drop the rows no detection needs any more; returns the pairs (codes) whose live connections
    changed. Closed long connections are kept as the best of their pair (``long_final``)."""
    pairs = np.zeros(0, dtype=np.int64)
    if self.fold_until is None:
        return pairs
    old = self.b_start < self.fold_until
    if not old.any():
        return pairs
    stitch = config.get("long_connection", "stitch_gap_seconds")
    drop = old & ~self.b_ok["long"]
    cand = np.flatnonzero(old & self.b_ok["long"])
    if len(cand):
        pairs = self._codes("pair", cand)
        # whole hosts at a time: a connection's records share its host
        for rows, sub in self._groups(np.flatnonzero(self._pair_mask(pairs))):
            times = flow_times(sub, None)
            order, conn = stitch_records(five_tuple(sub), times.start, times.end, stitch)
            seg = segments(conn)
            run_end = seg.max(times.end[order])
            closed_rows = order[(run_end < self.fold_until - stitch)[seg.index()]]
            if len(closed_rows):
                closed = sub.take(pa.array(closed_rows, pa.int64()))
                for a in detect_long_connections(closed, config, laws):
                    p = f"{a.src_ip}\x1f{a.target.dst_ip}"
                    prev = self.long_final.alerts.get(p, [])
                    if not prev or duration_of(a) > duration_of(prev[0]):
                        self.long_final.set_alerts(p, [a])
                drop[rows[closed_rows]] = True
    if drop.any():
        self._keep_rows(~drop)
    return pairs
