"""Uploads in :mod:`derisk.detect.incremental`: closed-slot sums for the baselines, and the senders
scored again per batch (only those whose window sums can pass the test reach
:func:`~derisk.detect.upload.upload_alerts`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from derisk.detect import incremental_rows
from derisk.detect.alert import Alert, LawsFor
from derisk.detect.config import DetectionConfig
from derisk.detect.incremental_interners import distinct
from derisk.detect.incremental_keys import prefixed
from derisk.detect.incremental_rows import strings_at
from derisk.detect.segments import F64, I64, B, ints
from derisk.detect.upload import baseline_slots, upload_alerts

if TYPE_CHECKING:
    from derisk.detect.incremental import DetectionState

#: Closed upload slots whose per-(sender, destination) sums are kept for flows arriving late.
KEEP_SLOTS = 2


def take_uploads(self: DetectionState, t: pa.Table, start: F64, ok: B, window: float) -> None:
    """What a batch changes at once, scored or not: the start of the baseline period, and late flows
    (before slots already closed) folded into the closed sums; their senders wait in ``pend_who``."""
    if ok.any():
        first = float(start[ok].min())
        self.up_t0 = first if self.up_t0 is None else min(self.up_t0, first)
    if self.fold_until is not None:
        late = np.flatnonzero(ok & (start < self.fold_until))
        if len(late):
            who_t, dest_t = (
                prefixed(t, "system", "src_ip", ("s:", "i:")),
                prefixed(t, "dst_domain", "dst_ip", ("d:", "a:")),
            )
            self.pend_who |= fold(self, who_t, dest_t, ints(t, "bytes_out"), start, late, window)


def score_uploads(
    self: DetectionState,
    new_rows: I64,
    crossing: I64,
    cuts: tuple[float, float, float],
    config: DetectionConfig,
    laws: LawsFor,
) -> None:
    """Fold the buffer's flows into closed upload slots and score again the senders whose window or
    baseline changed since the last scoring (``new_rows``: the buffer rows taken in since; ``cuts``:
    the window's start then and now, and its length)."""
    cut_old, cut, window = cuts
    touched: set[str] = set(self.pend_who)
    defined_before = self.pend_up_t0 is not None and self.pend_up_t0 < cut_old
    if (self.up_t0 is not None and self.up_t0 < cut) != defined_before:
        # the baseline period began: every sender in the window reads differently
        touched |= self._names("who", np.flatnonzero(self.b_ok["upload"] & (self.b_start >= cut)))
    fold_new = math.floor(cut / window) * window
    old = self.fold_until if self.fold_until is not None else -math.inf
    if fold_new > old:
        rows = np.flatnonzero(self.b_ok["upload"] & (self.b_start >= old) & (self.b_start < fold_new))
        for pos, sub in self._groups(rows):  # one part of the window at a time
            touched |= fold(
                self,
                prefixed(sub, "system", "src_ip", ("s:", "i:")),
                prefixed(sub, "dst_domain", "dst_ip", ("d:", "a:")),
                ints(sub, "bytes_out"),
                self.b_start[pos],
                np.arange(len(pos)),
                window,
            )
        self.fold_until = fold_new
        forget_slots(self, baseline_slots(np.array([fold_new]), window)[0] - KEEP_SLOTS)
    up_new = new_rows[self.b_ok["upload"][new_rows]]
    touched |= self._names("who", np.r_[up_new, crossing[self.b_ok["upload"][crossing]]])
    if not touched:
        return
    found: dict[str, list[Alert]] = {w: [] for w in touched}
    names = self._interner("who").names
    wk_all, dk_all = self.b_key["who"], self.b_key["dest"]
    sel = self._in("who", touched) & self.b_ok["upload"] & (self.b_start >= fold_new) & (dk_all >= 0)
    baseline = np.zeros(len(names) + 1)
    for w in distinct(wk_all[sel].astype(np.int64)).tolist():  # touched senders
        baseline[w] = self.up_base.get(names[w], 0.0)
    # whole senders at a time, at most SCORE_ROWS rows (a sender's sums and alerts read only its
    # rows): the arrays of a scoring and the rows read back follow a group, not the window
    defined = self.up_t0 is not None and self.up_t0 < cut
    for rows in sender_groups(wk_all, sel, len(names)):
        wk, dk = wk_all[rows].astype(np.int64), dk_all[rows].astype(np.int64)
        group = (rows, wk, dk, self.b_start[rows])
        for a in _senders(self, group, baseline, cut, defined, config, laws):
            found.setdefault(f"s:{a.system}" if a.system else f"i:{a.src_ip}", []).append(a)
    for w, got in found.items():
        self.upload.set_alerts(w, got)


def sender_groups(who: npt.NDArray[np.int32], sel: B, size: int) -> Iterator[I64]:
    """The positions of the ``sel`` rows (with a sender code in ``who``, -1 for none, below
    ``size``) in groups of whole senders of at most :data:`SCORE_ROWS` rows (a larger sender is a
    group alone), each rising. Made from per-sender counts and one radix sort of small group
    numbers: besides ``sel``, about 18 bytes a selected row while it runs (the int64 copies and the
    comparison sort of the whole window's codes cost about 90)."""
    rows = np.flatnonzero(sel & (who >= 0))
    limit = incremental_rows.SCORE_ROWS
    if len(rows) <= limit:
        if len(rows):
            yield rows
        return
    codes = who[rows]
    counts = np.bincount(codes, minlength=size)
    group_of = np.zeros(size, dtype=np.int16 if len(rows) // limit < 16_000 else np.int64)
    group, filled = 0, 0
    for code in np.flatnonzero(counts).tolist():  # senders, in code order
        n = int(counts[code])
        if filled and filled + n > limit:
            group, filled = group + 1, 0
        group_of[code] = group
        filled += n
    numbers = group_of[codes]
    del codes
    order = np.argsort(numbers, kind="stable")  # a radix sort on int16: positions stay rising
    bounds = np.r_[0, np.cumsum(np.bincount(numbers, minlength=group + 1))]
    del numbers
    for begin, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        yield rows[order[begin:end]]


def _senders(
    self: DetectionState,
    group: tuple[I64, I64, I64, F64],
    baseline: F64,
    cut: float,
    defined: bool,
    config: DetectionConfig,
    laws: LawsFor,
) -> list[Alert]:
    """The upload alerts of one group of whole senders (buffer rows, sender and destination codes,
    starts); ``baseline`` (per sender code) takes in the part of the slot the cut falls in."""
    rows, wk, dk, s = group
    out_b, in_b = self.b_out[rows].astype(np.float64), self.b_in[rows].astype(np.float64)
    pair = wk * (int(dk.max()) + 1 if len(dk) else 1) + dk
    part = s < cut
    if part.any():  # the slot the cut falls in, up to the cut: per (who, destination)
        inv = np.unique(pair[part], return_inverse=True)[1]
        sums = np.bincount(inv, weights=out_b[part])
        owner = np.zeros(len(sums), dtype=np.int64)
        owner[inv] = wk[part]
        np.maximum.at(baseline, owner, sums)
    # senders that can alert at all: a (sender, destination) or a sender's total passes the test
    win = ~part
    min_bytes = config.get("upload", "min_bytes_out")
    ratio, factor = config.get("upload", "min_ratio"), config.get("upload", "baseline_factor")
    cand: set[int] = set()
    for keys in (pair, wk):
        u, inv = np.unique(keys[win], return_inverse=True)
        o_sum = np.bincount(inv, weights=out_b[win])
        i_sum = np.bincount(inv, weights=in_b[win])
        who_of = np.zeros(len(u), dtype=np.int64)
        who_of[inv] = wk[win]
        ok = (o_sum >= min_bytes) & (o_sum >= ratio * i_sum) & (o_sum >= factor * baseline[who_of])
        cand |= set(who_of[ok].tolist())
    if not cand:
        return []
    at = np.flatnonzero(np.isin(wk, np.array(sorted(cand), dtype=np.int64)))
    sub = self._sub(rows[at])
    return upload_alerts(sub, config, laws, s[at], ~part[at], wk[at], dk[at], baseline, defined)


def forget_slots(self: DetectionState, before: int) -> None:
    """Drop the per-(sender, destination) sums of slots before ``before``: their maxima stay in
    ``up_base``; only a flow arriving later than :data:`KEEP_SLOTS` window-lengths would have
    needed them (it then counts from zero for its slot, a lower baseline)."""
    old = [k for k in self.up_closed if int(k.rsplit("\x1f", 1)[1]) < before]
    for k in old:  # slots closed long ago (once per window-length)
        del self.up_closed[k]
    self.up_forgotten.update(old)
    self.up_dirty.difference_update(old)


def fold(
    self: DetectionState, who: Any, dest: Any, out_b: I64, start: F64, rows: I64, window: float
) -> set[str]:
    if len(rows) == 0:
        return set()
    w, d = strings_at(who, rows), strings_at(dest, rows)
    slots = baseline_slots(start[rows], window).tolist()
    touched = set()
    for wi, di, sl, b in zip(w, d, slots, out_b[rows].tolist(), strict=True):  # rows of closed slots
        if wi is None or di is None:
            continue
        k = f"{wi}\x1f{di}\x1f{sl}"
        total = self.up_closed.get(k, 0.0) + float(b)
        self.up_closed[k] = total
        self.up_dirty.add(k)
        if total > self.up_base.get(wi, 0.0):
            self.up_base[wi] = total
            self.up_base_dirty.add(wi)
        touched.add(wi)
    return touched
