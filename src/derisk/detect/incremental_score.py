"""The beacons and long connections a scoring of :mod:`derisk.detect.incremental` scores again, read
back from the window's files once for both: each part's rows that either detection reads are taken
in one pass (a part's file read once, not once per detection), then each detection is given its own
rows of every group of whole hosts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from derisk.detect.alert import Alert, LawsFor
from derisk.detect.config import DetectionConfig
from derisk.detect.incremental_arrays import Recs
from derisk.detect.incremental_beacon import Pairs, beacon_alerts, beacon_rows, settle_beacons
from derisk.detect.incremental_long import long_alerts, long_rows, settle_long
from derisk.detect.segments import I64, B

if TYPE_CHECKING:
    from derisk.detect.incremental import DetectionState, Piece


def _only(sub: pa.Table, mask: B) -> pa.Table:
    return sub if mask.all() else sub.filter(pa.array(mask))


def score_window(
    self: DetectionState,
    beacons: Pairs | None,
    cut: float,
    pairs: I64,
    config: DetectionConfig,
    laws: LawsFor,
) -> None:
    """Score again the beacons of ``beacons`` (rows from ``cut``; None: none) and the long
    connections of the host x address pairs ``pairs`` (codes), and settle their alerts."""
    if beacons is None and len(pairs) == 0:
        return
    want_long = long_rows(self, pairs)

    def wanted(rec: Recs) -> tuple[B, B]:
        b = beacon_rows(rec, beacons, cut) if beacons is not None else np.zeros(len(rec), dtype=bool)
        return b, want_long(rec) if len(pairs) else np.zeros(len(rec), dtype=bool)

    def picks() -> Iterator[Piece]:
        for part, rec in self.win:
            b, long_ok = wanted(rec)
            yield part, rec, np.flatnonzero(b | long_ok)

    found_b: dict[str, list[Alert]] = {}
    found_l: dict[str, list[Alert]] = {}
    for pieces, sub in self.tables(picks()):
        masks = [wanted(rec) for _, rec, _ in pieces]
        mb = np.concatenate([m[0][pos] for m, (_, _, pos) in zip(masks, pieces, strict=True)])
        ml = np.concatenate([m[1][pos] for m, (_, _, pos) in zip(masks, pieces, strict=True)])
        if mb.any():
            for k, got in beacon_alerts(_only(sub, mb), config, laws, self.frame).items():
                found_b.setdefault(k, []).extend(got)
        if ml.any():
            for k, got in long_alerts(_only(sub, ml), config, laws).items():
                found_l.setdefault(k, []).extend(got)
    if beacons is not None:
        settle_beacons(self, beacons, found_b)
    if len(pairs):
        settle_long(self, pairs, found_l)
