"""Beacons in :mod:`derisk.detect.incremental`: the host x server name and host x address pairs
scored again, with every pair that shares window rows with them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from derisk.detect.alert import Alert, LawsFor
from derisk.detect.beacon import detect_beacons
from derisk.detect.config import DetectionConfig
from derisk.detect.incremental_arrays import Recs, ok_of
from derisk.detect.segments import B, Frame
from derisk.safetext import bound

if TYPE_CHECKING:
    from derisk.detect.incremental import DetectionState

#: Alerts found by a scoring, under their keys.
Found = dict[str, list[Alert]]


def _pair_key(tag: str, pair: str) -> str:
    """The key of a beacon pair as its alert names it (the destination cut as alerts cut it)."""
    host, _, dest = pair.partition("\x1f")
    return f"{tag}\x1f{host}\x1f{bound(dest, 253)}"


#: The host x address and host x server name pairs (code flags, the last slot for code -1) whose
#: beacons are scored again.
Pairs = tuple[B, B]


def beacon_pairs(self: DetectionState, pend: int | None, cuts: tuple[float, float]) -> Pairs | None:
    """The host x server name and host x address pairs to score again: those of the rows taken in
    since the last scoring (from sequence number ``pend``) and of the rows leaving the window
    (starts between ``cuts``: the window's start then and now), with every pair that shares window
    rows with them (a name pair claims its rows from the address pairs), so each pair scored sees all
    of its rows; None when there are none. A pair's rows are its host's, so the closure is found one
    part of the buffer at a time, from the per-row records alone (no row read back)."""
    cut_old, cut = cuts
    in_ip = np.zeros(len(self.keys["pair"]) + 1, dtype=bool)  # the last slot: code -1 (null)
    in_name = np.zeros(len(self.keys["hname"]) + 1, dtype=bool)
    seeded = False
    for _, rec in self.win:
        start, ips, names = rec["start"], rec["pair"], rec["hname"]
        eligible = ok_of(rec, "beacon") & (start >= cut)
        seeds = (start >= cut_old) & (start < cut)  # hosts with flows leaving the window
        seeds[self.new_from(rec, pend) :] |= eligible[self.new_from(rec, pend) :]  # or new ones
        if not seeds.any():
            continue
        seeded = True
        in_ip[ips[seeds]] = True
        in_name[names[seeds]] = True
        in_ip[-1] = in_name[-1] = False
        count = (int(in_ip.sum()), int(in_name.sum()))
        while True:  # closure over shared rows; a few rounds at most
            mask = eligible & (in_ip[ips] | in_name[names])
            in_ip[ips[mask]] = True
            in_name[names[mask]] = True
            in_ip[-1] = in_name[-1] = False
            more = (int(in_ip.sum()), int(in_name.sum()))
            if more == count:
                break
            count = more
    return (in_ip, in_name) if seeded else None


def beacon_rows(rec: Recs, pairs: Pairs, cut: float) -> B:
    """The rows of ``rec`` (a part's records) the beacons of ``pairs`` read (starts from ``cut``)."""
    in_ip, in_name = pairs
    m = ok_of(rec, "beacon") & (rec["start"] >= cut) & (in_ip[rec["pair"]] | in_name[rec["hname"]])
    return np.asarray(m, dtype=bool)


def beacon_alerts(sub: pa.Table, config: DetectionConfig, laws: LawsFor, frame: Frame | None) -> Found:
    """The beacon alerts of ``sub`` (whole pairs' rows) under their keys."""
    found: Found = {}
    for a in detect_beacons(sub, config, laws, frame=frame):
        tag = "n" if a.evidence.get("key") == "server_name" else "a"
        found.setdefault(f"{tag}\x1f{a.src_ip}\x1f{a.destination}", []).append(a)
    return found


def settle_beacons(self: DetectionState, pairs: Pairs, found: Found) -> None:
    """The alerts of the pairs scored again: those ``found``; the pairs that alerted before and do
    not now are withdrawn (the many pairs scored that never alerted are not named at all, so a batch
    costs no string per pair)."""
    in_ip, in_name = pairs
    want_ip, want_name = np.flatnonzero(in_ip), np.flatnonzero(in_name)
    wanted = {"a": set(want_ip.tolist()), "n": set(want_name.tolist())}
    cut_keys: set[str] | None = None
    for k in [k for k in self.beacon.alerts if k not in found]:  # the current beacon alerts
        tag, host, dest = k.split("\x1f", 2)
        interner = self._pairs("pair" if tag == "a" else "hname")
        if len(dest) < 253:  # not cut to fit an alert: its pair is named exactly
            hit = interner.code_of(f"{host}\x1f{dest}") in wanted[tag]
        else:
            if cut_keys is None:
                cut_keys = {_pair_key("a", self._pairs("pair").name(c)) for c in wanted["a"]}
                cut_keys |= {_pair_key("n", self._pairs("hname").name(c)) for c in wanted["n"]}
            hit = k in cut_keys
        if hit:
            self.beacon.set_alerts(k, [])
    for k, alerts in found.items():
        self.beacon.set_alerts(k, alerts)
