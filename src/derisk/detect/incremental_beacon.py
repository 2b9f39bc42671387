"""Beacons in :mod:`derisk.detect.incremental`: the host x server name and host x address pairs
scored again, with every pair that shares window rows with them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from derisk.detect.alert import Alert, LawsFor
from derisk.detect.beacon import detect_beacons
from derisk.detect.config import DetectionConfig
from derisk.detect.incremental_arrays import ok_of
from derisk.safetext import bound

if TYPE_CHECKING:
    from derisk.detect.incremental import DetectionState, Piece


def _pair_key(tag: str, pair: str) -> str:
    """The key of a beacon pair as its alert names it (the destination cut as alerts cut it)."""
    host, _, dest = pair.partition("\x1f")
    return f"{tag}\x1f{host}\x1f{bound(dest, 253)}"


def score_beacons(
    self: DetectionState, pend: int | None, cuts: tuple[float, float], config: DetectionConfig, laws: LawsFor
) -> None:
    """Score again the host x server name and host x address pairs of the rows taken in since the
    last scoring (from sequence number ``pend``) and of the rows leaving the window (starts between
    ``cuts``: the window's start then and now), with every pair that shares window rows with them (a
    name pair claims its rows from the address pairs), so each pair scored sees all of its rows.
    A pair's rows are its host's, so the closure is found one part of the buffer at a time."""
    cut_old, cut = cuts
    in_ip = np.zeros(len(self.keys["pair"]) + 1, dtype=bool)  # the last slot: code -1 (null)
    in_name = np.zeros(len(self.keys["hname"]) + 1, dtype=bool)
    seeded = False

    def picks() -> Iterator[Piece]:
        nonlocal seeded
        for part, rec in self.win:
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
            yield part, rec, np.flatnonzero(mask)

    found: dict[str, list[Alert]] = {}
    for _, sub in self.tables(picks()):
        for a in detect_beacons(sub, config, laws, frame=self.frame):
            tag = "n" if a.evidence.get("key") == "server_name" else "a"
            found.setdefault(f"{tag}\x1f{a.src_ip}\x1f{a.destination}", []).append(a)
    if not seeded:
        return
    want_ip, want_name = np.flatnonzero(in_ip), np.flatnonzero(in_name)
    # the pairs scored that alerted before and do not now: withdrawn (the many pairs scored that
    # never alerted are not named at all, so a batch costs no string per pair)
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
