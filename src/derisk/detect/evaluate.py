"""Scoring detections against labelled traffic (the harness behind ``scripts/eval_detect.py``).

An alert matches a labelled instance when it is of the same kind, names the instance's destination
(as destination, address, server name, organisation, controller or jurisdiction) and, when the
instance names one, its internal host or system. Precision counts alerts; recall counts instances.
RITA v5's baseline gets the same allow-list applied to its input.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa

from derisk.detect import detect
from derisk.detect.alert import Alert
from derisk.detect.allowlist import allow_masks
from derisk.detect.config import load_config
from derisk.detect.rita import REPORT_AT, rita_beacons
from derisk.gen.labelled import Truth, generate, harness_laws

KINDS = ("beacon", "long-connection", "dns-tunnel", "upload", "new-destination", "compelled-transfer")


def names_of(alert: Alert) -> set[str]:
    t = alert.target
    return {
        x for x in (t.destination, t.dst_ip, t.server_name, t.organisation, t.controller, t.jurisdiction) if x
    }


def matches(names: set[str], src: set[str], truth: Truth) -> bool:
    return (truth.destination == "*" or truth.destination in names) and (
        truth.src is None or truth.src in src
    )


def score(found: list[tuple[set[str], set[str]]], truths: list[Truth]) -> dict[str, Any]:
    pos = [t for t in truths if t.positive]
    neg = [t for t in truths if not t.positive]
    tp = sum(1 for n, s in found if any(matches(n, s, t) for t in pos))
    fp_labelled = sum(
        1 for n, s in found if not any(matches(n, s, t) for t in pos) and any(matches(n, s, t) for t in neg)
    )
    hit = [t for t in pos if any(matches(n, s, t) for n, s in found)]
    missed = [t.category for t in pos if t not in hit]
    return {
        "alerts": len(found),
        "tp": tp,
        "fp": len(found) - tp,
        "fp_labelled_negative": fp_labelled,
        "positives": len(pos),
        "precision": tp / len(found) if found else 1.0,
        "recall": len(hit) / len(pos) if pos else 1.0,
        "missed": missed,
    }


def rita_found(table: pa.Table, threshold: float) -> list[tuple[set[str], set[str]]]:
    rows = table.to_pylist()
    return [({r["destination"]}, {r["src_ip"]}) for r in rows if r["score"] >= threshold]


def run(seed: int, allow: bool) -> dict[str, Any]:
    data = generate(seed)
    cfg = load_config(None, data.allowlist if allow else None)
    t = time.perf_counter()
    result = detect(data.flows, cfg, laws_for=harness_laws)
    ours_s = time.perf_counter() - t
    by_kind: dict[str, list[Alert]] = defaultdict(list)
    for a in result.alerts:
        by_kind[a.kind].append(a)
    report: dict[str, Any] = {"flows": data.flows.num_rows, "seconds": ours_s, "kinds": {}}
    for kind in KINDS:
        truths = [x for x in data.truth if x.kind == kind]
        found = [(names_of(a), {a.src_ip or "", a.system or ""}) for a in by_kind.get(kind, [])]
        report["kinds"][kind] = score(found, truths)
    # RITA v5 on the same flows, with the same allow-list applied to its input
    flows = data.flows
    if allow:
        masks, _ = allow_masks(flows, cfg.allowlist)
        drop = np.zeros(flows.num_rows, dtype=bool)
        for m, e in zip(masks, cfg.allowlist, strict=True):
            if e.applies_to("beacon"):
                drop |= m
        flows = flows.filter(pa.array(~drop))
    t = time.perf_counter()
    rita = rita_beacons(flows)
    report["rita_seconds"] = time.perf_counter() - t
    truths = [x for x in data.truth if x.kind == "beacon"]
    report["rita_default"] = score(rita_found(rita, REPORT_AT), truths)
    ours = report["kinds"]["beacon"]
    best = None
    for thr in np.arange(0.30, 1.0001, 0.01):
        s = score(rita_found(rita, float(thr)), truths)
        if (
            s["alerts"]
            and s["precision"] >= ours["precision"]
            and (best is None or s["recall"] > best[1]["recall"])
        ):
            best = (float(thr), s)
    report["rita_equal_precision"] = best
    report["rita_curve"] = [(thr, score(rita_found(rita, thr), truths)) for thr in (0.5, 0.6, 0.7, 0.8, 0.9)]
    return report
