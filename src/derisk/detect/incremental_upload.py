"""Uploads in :mod:`derisk.detect.incremental`: closed-slot sums for the baselines, and the senders
scored again per batch (only those whose window sums can pass the test reach
:func:`~derisk.detect.upload.upload_alerts`)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from derisk.detect import incremental_rows
from derisk.detect.alert import Alert, LawsFor
from derisk.detect.config import DetectionConfig
from derisk.detect.incremental_arrays import Recs, ok_of
from derisk.detect.incremental_interners import distinct
from derisk.detect.incremental_keys import prefixed
from derisk.detect.incremental_rows import flags, strings_at
from derisk.detect.segments import F64, I64, B, ints
from derisk.detect.upload import baseline_slots, upload_alerts

if TYPE_CHECKING:
    from derisk.detect.incremental import DetectionState, Piece

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
    pend: int | None,
    cuts: tuple[float, float, float],
    config: DetectionConfig,
    laws: LawsFor,
) -> None:
    """Fold the buffer's flows into closed upload slots and score again the senders whose window or
    baseline changed since the last scoring (``pend``: the sequence number the rows taken in since
    begin at; ``cuts``: the window's start then and now, and its length). The buffer is read one
    part at a time; a sender (a system) may span parts, so its sums are added up over the parts
    before its rows are read back."""
    cut_old, cut, window = cuts
    touched: set[str] = set(self.pend_who)
    defined_before = self.pend_up_t0 is not None and self.pend_up_t0 < cut_old
    # the baseline period began: every sender in the window reads differently
    began = (self.up_t0 is not None and self.up_t0 < cut) != defined_before
    fold_new = math.floor(cut / window) * window
    old = self.fold_until if self.fold_until is not None else -math.inf
    named = np.zeros(len(self.keys["who"]) + 1, dtype=bool)  # senders of new or leaving rows

    def picks() -> Iterator[Piece]:
        for part, rec in self.win:
            up, s = ok_of(rec, "upload"), rec["start"]
            moved = (s >= cut_old) & (s < cut)
            moved[self.new_from(rec, pend) :] = True
            if began:
                moved |= s >= cut
            named[rec["who"][up & moved]] = True
            if fold_new > old:
                yield part, rec, np.flatnonzero(up & (s >= old) & (s < fold_new))

    for pieces, sub in self.tables(picks()):  # one part of the window at a time
        touched |= fold(
            self,
            prefixed(sub, "system", "src_ip", ("s:", "i:")),
            prefixed(sub, "dst_domain", "dst_ip", ("d:", "a:")),
            ints(sub, "bytes_out"),
            np.concatenate([rec["start"][pos] for _, rec, pos in pieces]),
            np.arange(sub.num_rows),
            window,
        )
    if fold_new > old:
        self.fold_until = fold_new
        forget_slots(self, baseline_slots(np.array([fold_new]), window)[0] - KEEP_SLOTS)
    names = self._interner("who").names
    named[-1] = False
    touched |= {names[c] for c in np.flatnonzero(named).tolist()}
    if not touched:
        return
    found: dict[str, list[Alert]] = {w: [] for w in touched}
    codes = self._interner("who").known(touched)
    chosen = flags(len(names), codes)
    baseline = np.zeros(len(names) + 1)
    for w in codes.tolist():
        baseline[w] = self.up_base.get(names[w], 0.0)

    def selected(rec: Recs) -> B:
        m = chosen[rec["who"]] & ok_of(rec, "upload") & (rec["start"] >= fold_new) & (rec["dest"] >= 0)
        return np.asarray(m, dtype=bool)

    sums = _Sums(len(names), len(self.keys["dest"]) + 1)
    for part, rec in self.win:
        sums.add(part, rec[selected(rec)], cut)
    cand = sums.candidates(baseline, config)
    cand = cand[np.lexsort((cand, sums.first[cand]))]  # by part: a group reads few parts
    # whole senders at a time, at most SCORE_ROWS rows (a sender's sums and alerts read only its
    # rows): the rows read back follow a group, not the window
    defined = self.up_t0 is not None and self.up_t0 < cut
    for group in count_groups(cand, sums.count):
        want = flags(len(names), group)
        read: list[tuple[Recs, pa.Table]] = []
        for part in sums.parts_of(group):
            rec = self.win.get(part)
            pos = np.flatnonzero(selected(rec) & want[rec["who"]])
            read.append((rec[pos], self.rows.take(part, rec["seq"][pos])))
        rec = np.concatenate([r for r, _ in read])
        order = pa.array(np.argsort(rec["seq"], kind="stable"), pa.int64())
        sub = pa.concat_tables([t for _, t in read]).take(order)
        rec = rec[order.to_numpy()]
        s, wk, dk = rec["start"], rec["who"].astype(np.int64), rec["dest"].astype(np.int64)
        for a in upload_alerts(sub, config, laws, s, s >= cut, wk, dk, baseline, defined):
            found.setdefault(f"s:{a.system}" if a.system else f"i:{a.src_ip}", []).append(a)
    for w, got in found.items():
        self.upload.set_alerts(w, got)


class _Sums:
    """Per sender and per (sender, destination) sums of the selected rows of the buffer, added up
    part by part: bytes out in the slot the window's start falls in (before the cut, for the
    baseline), bytes out and in inside the window, and the rows of each sender and the parts they
    are in. Memory follows the senders and pairs, not the rows."""

    def __init__(self, senders: int, dests: int) -> None:
        self.dests = dests
        self.count = np.zeros(senders + 1, dtype=np.int64)
        self.w_out, self.w_in = np.zeros(senders + 1), np.zeros(senders + 1)
        self.w_win = np.zeros(senders + 1, dtype=bool)  # senders with rows inside the window
        self.first = np.full(senders + 1, np.iinfo(np.int64).max)  # the first part of each sender
        self.part_who: list[tuple[int, I64]] = []
        self.base: list[tuple[I64, F64]] = []  # (pair key, bytes out) before the cut
        self.win: list[tuple[I64, F64, F64]] = []  # (pair key, bytes out, bytes in) inside

    def add(self, part: int, rec: Recs, cut: float) -> None:
        if len(rec) == 0:
            return
        wk = rec["who"].astype(np.int64)
        key = wk * self.dests + rec["dest"]
        out_b, in_b = rec["out"].astype(np.float64), rec["in"].astype(np.float64)
        senders = distinct(wk)
        self.part_who.append((part, senders))
        np.minimum.at(self.first, senders, part)
        self.count += np.bincount(wk, minlength=len(self.count))
        before = rec["start"] < cut
        if before.any():
            u, inv = np.unique(key[before], return_inverse=True)
            self.base.append((u, _f64(np.bincount(inv, weights=out_b[before]))))
        inside = ~before
        if inside.any():
            u, inv = np.unique(key[inside], return_inverse=True)
            self.win.append(
                (
                    u,
                    _f64(np.bincount(inv, weights=out_b[inside])),
                    _f64(np.bincount(inv, weights=in_b[inside])),
                )
            )
            self.w_out += np.bincount(wk[inside], weights=out_b[inside], minlength=len(self.count))
            self.w_in += np.bincount(wk[inside], weights=in_b[inside], minlength=len(self.count))
            self.w_win[wk[inside]] = True

    def candidates(self, baseline: F64, config: DetectionConfig) -> I64:
        """Take the slot the cut falls in into ``baseline`` (per sender code); returns the senders
        that can alert at all: a (sender, destination) or a sender's total passes the test."""
        if self.base:
            key, out_b = _summed([k for k, _ in self.base], [o for _, o in self.base])
            np.maximum.at(baseline, key // self.dests, out_b[0])
        min_bytes = config.get("upload", "min_bytes_out")
        ratio, factor = config.get("upload", "min_ratio"), config.get("upload", "baseline_factor")
        cand = np.zeros(0, dtype=np.int64)
        if self.win:
            key, (o_sum, i_sum) = _summed(
                [k for k, _, _ in self.win], [o for _, o, _ in self.win], [i for _, _, i in self.win]
            )
            who = key // self.dests
            ok = (o_sum >= min_bytes) & (o_sum >= ratio * i_sum) & (o_sum >= factor * baseline[who])
            cand = who[ok]
        n = len(self.count)
        ok_w = self.w_win & (self.w_out >= min_bytes) & (self.w_out >= ratio * self.w_in)
        ok_w &= self.w_out >= factor * baseline[:n]
        return distinct(np.r_[cand, np.flatnonzero(ok_w)])

    def parts_of(self, senders: I64) -> list[int]:
        want = flags(len(self.count), senders)
        return [p for p, w in self.part_who if want[w].any()]


def _summed(keys: list[I64], *values: list[F64]) -> tuple[I64, list[F64]]:
    """The distinct keys of ``keys`` (one array per part) with each value list summed per key."""
    u, inv = np.unique(np.concatenate(keys), return_inverse=True)
    return u, [_f64(np.bincount(inv, weights=np.concatenate(v), minlength=len(u))) for v in values]


def _f64(arr: Any) -> F64:
    return np.asarray(arr, dtype=np.float64)


def count_groups(senders: I64, count: I64) -> Iterator[I64]:
    """``senders`` in groups of at most :data:`SCORE_ROWS` rows by their row ``count`` (a larger
    sender is a group alone), in the order given."""
    limit = incremental_rows.SCORE_ROWS
    group: list[int] = []
    filled = 0
    for code in senders.tolist():
        n = int(count[code])
        if group and filled + n > limit:
            yield np.array(group, dtype=np.int64)
            group, filled = [], 0
        group.append(code)
        filled += n
    if group:
        yield np.array(group, dtype=np.int64)


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
