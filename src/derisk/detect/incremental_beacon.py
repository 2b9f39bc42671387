"""Beacons in :mod:`derisk.detect.incremental`: the host x server name and host x address pairs
scored again, with every pair that shares window rows with them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from derisk.detect.alert import Alert, LawsFor
from derisk.detect.beacon import detect_beacons
from derisk.detect.config import DetectionConfig
from derisk.detect.incremental_rows import flags
from derisk.detect.segments import I64
from derisk.safetext import bound

if TYPE_CHECKING:
    from derisk.detect.incremental import DetectionState


def _pair_key(tag: str, pair: str) -> str:
    """The key of a beacon pair as its alert names it (the destination cut as alerts cut it)."""
    host, _, dest = pair.partition("\x1f")
    return f"{tag}\x1f{host}\x1f{bound(dest, 253)}"


def score_beacons(
    self: DetectionState, seeds: I64, cut: float, config: DetectionConfig, laws: LawsFor
) -> None:
    """Score again the host x server name and host x address pairs of the ``seeds`` rows, with
    every pair that shares window rows with them (a name pair claims its rows from the address
    pairs), so each pair scored sees all of its rows."""
    if len(seeds) == 0:
        return
    ips, names = self.b_key["pair"], self.b_key["hname"]
    eligible = self.b_ok["beacon"] & (self.b_start >= cut)
    in_ip = flags(len(self.keys["pair"]), ips[seeds].astype(np.int64))
    in_name = flags(len(self.keys["hname"]), names[seeds].astype(np.int64))
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
    want_ip, want_name = np.flatnonzero(in_ip), np.flatnonzero(in_name)
    found: dict[str, list[Alert]] = {}
    for _, sub in self._groups(np.flatnonzero(mask)):
        for a in detect_beacons(sub, config, laws, frame=self.frame):
            tag = "n" if a.evidence.get("key") == "server_name" else "a"
            found.setdefault(f"{tag}\x1f{a.src_ip}\x1f{a.destination}", []).append(a)
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
