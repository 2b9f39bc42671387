"""Per-key aggregates over the whole history, kept batch by batch for :mod:`derisk.detect.incremental`:
compelled transfers per (system, controller), DNS-tunnel statistics per registrable domain, first
sightings per (system, destination), organisation and jurisdiction.

Every aggregate is exact and mergeable (sums, minima and maxima, sets, the first rows in time order);
a batch updates the keys it touches, and only those keys are scored again, with the scoring functions
of the batch detections (:func:`~derisk.detect.compelled.compelled_alert`,
:func:`~derisk.detect.dnstunnel.tunnel_alert`, :func:`~derisk.detect.newdest.new_alert`).

Order is (start time, arrival sequence): the sequence is the flow's position in the workspace, which
is the order in which a batch analysis sees the flows, so ties break the same way.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.alert import MAX_FLOW_IDS, Alert, LawsFor, compelling_laws
from derisk.detect.compelled import compelled_alert
from derisk.detect.config import DetectionConfig
from derisk.detect.dnstunnel import TunnelStats, entropy_bits, registrable, tunnel_alert, tunnel_score
from derisk.detect.newdest import EXAMPLES, NewSeen, new_alert
from derisk.detect.segments import F64, I64, B, column, first_value, ints, plain, segments
from derisk.detect.targets import rows_info

NULL: Final = "\x00"  # stands for a missing value where a JSON key is needed

#: (start, sequence, value): an entry of a list kept in time order.
Entry = list[Any]


def key_codes(arr: pa.ChunkedArray | pa.Array) -> tuple[I64, list[str]]:
    """A code per row (-1 for null) and the value of each code."""
    values = pc.cast(plain(arr), pa.string())
    uniq = pc.unique(values).drop_null()
    codes = np.asarray(pc.fill_null(pc.index_in(values, value_set=uniq), -1).to_numpy(zero_copy_only=False))
    return codes.astype(np.int64), [str(v) for v in uniq.to_pylist()]


def prefixed(table: pa.Table, first: str, second: str, tags: tuple[str, str]) -> pa.ChunkedArray:
    """``tags[0] + first`` where present, else ``tags[1] + second`` (null when both are missing)."""
    a = pc.cast(plain(column(table, first)), pa.string())
    b = pc.cast(plain(column(table, second)), pa.string())
    return pc.if_else(
        pc.is_valid(a),
        pc.binary_join_element_wise(tags[0], a, ""),
        pc.binary_join_element_wise(tags[1], b, ""),
    )


def grouped(codes: I64, start: F64, seq: I64, rows: I64) -> tuple[I64, Any]:
    """``rows`` sorted by (code, start, sequence) and their segments per code."""
    order = rows[np.lexsort((seq[rows], start[rows], codes[rows]))]
    return order, segments(codes[order])


def merge_first(old: list[Entry], new: list[Entry], cap: int = MAX_FLOW_IDS) -> list[Entry]:
    """The ``cap`` earliest entries of both lists (each already in order)."""
    if not new or (len(old) >= cap and (new[0][0], new[0][1]) > (old[-1][0], old[-1][1])):
        return old  # the usual case in a stream: nothing earlier than what is kept
    return list(heapq.merge(old, new, key=lambda e: (e[0], e[1])))[:cap]


def _texts(table: pa.Table, name: str, rows: I64) -> list[Any]:
    if len(rows) == 0:
        return []
    return pc.take(column(table, name), pa.array(rows, pa.int64())).to_pylist()  # type: ignore[no-any-return]


@dataclass
class Keyed:
    """Aggregates per key, the alerts scored from them, and which keys changed since the last save."""

    aggs: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerts: dict[str, list[Alert]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)  # aggregates changed since the last save
    dirty_alerts: set[str] = field(default_factory=set)  # alert lists changed since the last save

    def all_alerts(self) -> list[Alert]:
        return [a for v in self.alerts.values() for a in v]

    def set_alerts(self, key: str, found: list[Alert]) -> None:
        """Replace the alerts of ``key``; a key that had none and still has none is not marked changed
        (a batch re-scores far more keys than alert, and the save writes only changed keys)."""
        if found:
            self.alerts[key] = found
        elif self.alerts.pop(key, None) is None:
            return
        self.dirty_alerts.add(key)


@dataclass
class Compelled(Keyed):
    """Per (system or host, controller or organisation): bytes sent, first start, last end, flows."""

    def add(self, t: pa.Table, start: F64, end: F64, seq: I64, ok: B, laws_for: LawsFor) -> set[str]:
        juris = pc.cast(plain(column(t, "dst_jurisdiction")), pa.string())
        compelling = [
            j for j in pc.unique(juris).drop_null().to_pylist() if compelling_laws(laws_for, str(j))
        ]
        if not compelling:
            return set()
        in_scope = np.asarray(
            pc.fill_null(pc.is_in(juris, value_set=pa.array(compelling, pa.string())), False).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        who = prefixed(t, "system", "src_ip", ("s:", "i:"))
        ctrl = prefixed(t, "dst_controller", "dst_org", ("c:", "o:"))
        key = pc.binary_join_element_wise(who, ctrl, "\x1f")
        codes, names = key_codes(key)
        rows = np.flatnonzero(ok & in_scope & (codes >= 0))
        order, seg = grouped(codes, start, seq, rows)
        out_b = ints(t, "bytes_out")
        sent = seg.sum(out_b[order])
        first, last = seg.min(start[order]), seg.max(end[order])
        firsts = [order[a : a + min(n, MAX_FLOW_IDS)] for a, n in zip(seg.starts, seg.lengths, strict=True)]
        lasts = order[seg.ends - 1] if len(seg) else np.zeros(0, np.int64)
        infos = rows_info(t, lasts)
        ids_rows = np.concatenate(firsts) if firsts else np.zeros(0, np.int64)
        ids = _texts(t, "flow_id", ids_rows)
        dst = _texts(t, "dst_ip", order)
        sni = _texts(t, "server_name", order)
        touched = set()
        pos = 0
        for j, c in enumerate(seg.codes.tolist()):  # loop over touched keys
            k = names[c]
            a, n = int(seg.starts[j]), int(seg.lengths[j])
            agg = self.aggs.setdefault(
                k,
                {
                    "sent": 0,
                    "first": np.inf,
                    "last": -np.inf,
                    "count": 0,
                    "ids": [],
                    "info": None,
                    "dst": {},
                    "sni": {},
                },
            )
            agg["sent"] += int(sent[j])
            agg["first"] = min(agg["first"], float(first[j]))
            agg["last"] = max(agg["last"], float(last[j]))
            agg["count"] += n
            r = order[a : a + n]
            m = min(n, MAX_FLOW_IDS)
            new = [[float(start[x]), int(seq[x]), ids[pos + i]] for i, x in enumerate(r[:m].tolist())]
            pos += m
            agg["ids"] = merge_first(agg["ids"], new)
            lr = int(lasts[j])
            if agg["info"] is None or (float(start[lr]), int(seq[lr])) > (agg["info"][0], agg["info"][1]):
                agg["info"] = [float(start[lr]), int(seq[lr]), infos[j]]
            for name, values in (("dst", dst), ("sni", sni)):
                seen = agg[name]
                for i, x in enumerate(r.tolist()):  # rows of this key in time order
                    v = values[a + i]
                    if v is None and name == "sni":
                        continue
                    v = NULL if v is None else str(v)
                    if v not in seen or (float(start[x]), int(seq[x])) < tuple(seen[v]):
                        seen[v] = [float(start[x]), int(seq[x])]
            touched.add(k)
        self.dirty |= touched
        return touched

    def rescore(self, keys: set[str], cfg: DetectionConfig, laws_for: LawsFor) -> None:
        min_bytes = cfg.get("compelled", "min_bytes_out")
        min_hours = cfg.get("compelled", "min_hours")
        for k in keys:  # loop over touched keys
            agg = self.aggs[k]
            hours = (agg["last"] - agg["first"]) / 3600.0
            if not (agg["sent"] >= min_bytes and hours >= min_hours):
                self.set_alerts(k, [])
                continue
            dests = [
                None if v == NULL else v for v, _ in sorted(agg["dst"].items(), key=lambda e: tuple(e[1]))
            ]
            names = [v for v, _ in sorted(agg["sni"].items(), key=lambda e: tuple(e[1]))]
            ids = [str(e[2]) for e in agg["ids"] if e[2] is not None]
            alert = compelled_alert(
                agg["info"][2],
                float(agg["sent"]),
                agg["first"],
                agg["last"],
                dests,
                names,
                ids,
                agg["count"],
                cfg,
                laws_for,
            )
            self.set_alerts(k, [alert])


@dataclass
class DnsTunnels(Keyed):
    """Per registrable domain: its distinct query names (length and entropy of each), queries, hosts."""

    domain_of: dict[str, str | None] = field(default_factory=dict)
    names: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    new_names: list[tuple[str, str, float, float]] = field(default_factory=list)
    connected: set[str] = field(default_factory=set)
    connected_new: list[str] = field(default_factory=list)

    def add_name(self, domain: str, name: str, length: float, h: float) -> None:
        self.names.setdefault(domain, {})[name] = (length, h)

    def add(self, t: pa.Table, start: F64, valid: B, seq: I64) -> set[str]:
        touched: set[str] = set()
        for col in ("server_name", "dst_domain"):
            if col in t.column_names:
                vals = [str(v) for v in pc.unique(plain(column(t, col))).drop_null().to_pylist()]
                for d in registrable(vals):
                    if d and d not in self.connected:
                        self.connected.add(d)
                        self.connected_new.append(d)
                        touched.add(d)
        if "dns_query" not in t.column_names:
            return touched
        queries = column(t, "dns_query")
        rows = np.flatnonzero(np.asarray(pc.is_valid(queries).to_numpy(zero_copy_only=False), dtype=bool))
        if len(rows) == 0:
            return touched
        lowered = pc.utf8_lower(pc.cast(plain(pc.take(queries, pa.array(rows, pa.int64()))), pa.string()))
        codes, uniq = key_codes(lowered)
        unknown = [u for u in uniq if u not in self.domain_of]
        for u, d in zip(unknown, registrable(unknown), strict=True):
            self.domain_of[u] = d
        # new distinct names in order of first appearance, with their payload features
        first_row = np.full(len(uniq), len(codes), dtype=np.int64)
        np.minimum.at(first_row, codes, np.arange(len(codes)))
        fresh = []
        for c in np.argsort(first_row, kind="stable").tolist():  # distinct names of the batch
            u, d = uniq[c], self.domain_of[uniq[c]]
            if d is not None and u not in self.names.get(d, {}):
                fresh.append((d, u, u[: max(len(u) - len(d) - 1, 0)].replace(".", "")))
        h, length = entropy_bits([f[2] for f in fresh])
        for (d, u, _), hi, li in zip(fresh, h.tolist(), length.tolist(), strict=True):
            self.add_name(d, u, li, hi)
            self.new_names.append((d, u, li, hi))
        row_dom = [self.domain_of[uniq[c]] for c in codes.tolist()]
        src = _texts(t, "src_ip", rows)
        system = _texts(t, "system", rows)
        ids = _texts(t, "flow_id", rows)
        for i, d in enumerate(row_dom):  # loop over query rows of the batch
            if d is None:
                continue
            r = int(rows[i])
            agg = self.aggs.setdefault(
                d, {"queries": 0, "hosts": {}, "systems": {}, "first": None, "last": None, "ids": []}
            )
            agg["queries"] += 1
            hk = NULL if src[i] is None else str(src[i])
            agg["hosts"][hk] = agg["hosts"].get(hk, 0) + 1
            if system[i] is not None:
                agg["systems"][str(system[i])] = agg["systems"].get(str(system[i]), 0) + 1
            if valid[r]:
                s = float(start[r])
                agg["first"] = s if agg["first"] is None else min(agg["first"], s)
                agg["last"] = s if agg["last"] is None else max(agg["last"], s)
            if len(agg["ids"]) < MAX_FLOW_IDS and ids[i] is not None:
                agg["ids"].append(str(ids[i]))
            touched.add(d)
        self.dirty |= touched & set(self.aggs)
        return touched

    def rescore(self, keys: set[str], cfg: DetectionConfig, laws_for: LawsFor) -> None:
        min_unique = cfg.get("dns_tunnel", "min_unique_names")
        min_score = cfg.get("dns_tunnel", "min_score")
        for d in keys:  # loop over touched domains
            feats = self.names.get(d, {})
            agg = self.aggs.get(d)
            if agg is None or len(feats) < min_unique:
                self.set_alerts(d, [])
                continue
            length = np.array([f[0] for f in feats.values()])
            h = np.array([f[1] for f in feats.values()])
            order = np.argsort(length, kind="stable")
            ls = length[order]
            n = len(ls)
            median_len = float((ls[(n - 1) // 2] + ls[n // 2]) / 2)
            mean_h = float(np.add.reduceat(h[order], np.array([0]))[0] / n)
            connected = d in self.connected
            score = tunnel_score(n, median_len, mean_h, connected, cfg)
            if score < min_score:
                self.set_alerts(d, [])
                continue
            hosts = [(None if k == NULL else k, v) for k, v in agg["hosts"].items()]
            systems = sorted(agg["systems"].items(), key=lambda x: (-x[1], str(x[0])))
            stats = TunnelStats(
                n, median_len, mean_h, connected, agg["queries"], hosts,
                systems[0][0] if systems else None, agg["first"], agg["last"],
            )  # fmt: skip
            self.set_alerts(d, [tunnel_alert(d, score, stats, list(agg["ids"]), laws_for)])


SCOPES: Final = ("destination", "organisation", "jurisdiction")


@dataclass
class NewDestinations(Keyed):
    """Per (system, destination), organisation and jurisdiction: first start, bytes, flows, hosts.
    Keys are ``<scope>\\x1f<system>\\x1f<value>`` (system empty for the site-wide scopes); alerts are
    kept per system (scope destination) and per organisation or jurisdiction."""

    by_owner: dict[str, set[str]] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    odd_ids: bool = False
    any_ids: bool = False

    def single_input(self) -> bool:
        return self.any_ids and not self.odd_ids and len(self.inputs) == 1

    def add(self, t: pa.Table, start: F64, seq: I64, ok: B) -> set[str]:
        ids = pc.cast(plain(column(t, "flow_id")), pa.string())
        if ids.null_count < len(ids):
            self.any_ids = True
            parts = pc.split_pattern(ids, "#", max_splits=1)
            if not pc.all(pc.equal(pc.list_value_length(parts), 2)).as_py():
                self.odd_ids = True
            for i in pc.unique(pc.list_element(parts, 0)).drop_null().to_pylist():
                if i not in self.inputs and len(self.inputs) < 2:
                    self.inputs.append(str(i))
        size = ints(t, "bytes_out") + ints(t, "bytes_in")
        system = pc.cast(plain(column(t, "system")), pa.string())
        dest = prefixed(t, "dst_domain", "dst_ip", ("d:", "a:"))
        keys = {
            "destination": pc.binary_join_element_wise("destination", system, dest, "\x1f"),
            "organisation": pc.binary_join_element_wise("organisation", "", pc.cast(plain(column(t, "dst_org")), pa.string()), "\x1f"),
            "jurisdiction": pc.binary_join_element_wise(
                "jurisdiction", "", pc.cast(plain(column(t, "dst_jurisdiction")), pa.string()), "\x1f"
            ),
        }  # fmt: skip
        touched: set[str] = set()
        for scope in SCOPES:  # three scopes
            codes, names = key_codes(keys[scope])
            order, seg = grouped(codes, start, seq, np.flatnonzero(ok & (codes >= 0)))
            if len(seg) == 0:
                continue
            total = seg.sum(size[order])
            firsts = [
                order[a : a + min(n, MAX_FLOW_IDS)] for a, n in zip(seg.starts, seg.lengths, strict=True)
            ]
            ids_rows = np.concatenate(firsts)
            fids = _texts(t, "flow_id", ids_rows)
            src = _texts(t, "src_ip", order)
            pos = 0
            earlier: list[tuple[str, int]] = []  # keys whose first flow is in this batch
            for j, c in enumerate(seg.codes.tolist()):  # loop over touched keys
                k = names[c]
                a, n = int(seg.starts[j]), int(seg.lengths[j])
                r = order[a : a + n]
                agg = self.aggs.setdefault(
                    k, {"first": None, "first_seq": 0, "last": -np.inf, "bytes": 0, "flows": 0, "ids": [], "info": None, "hosts": {}}
                )  # fmt: skip
                f0, q0 = float(start[r[0]]), int(seq[r[0]])
                if agg["first"] is None or (f0, q0) < (agg["first"], agg["first_seq"]):
                    agg["first"], agg["first_seq"] = f0, q0
                    earlier.append((k, int(r[0])))
                agg["last"] = max(agg["last"], float(start[r].max()))
                agg["bytes"] += int(total[j])
                agg["flows"] += n
                m = min(n, MAX_FLOW_IDS)
                new = [[float(start[x]), int(seq[x]), fids[pos + i]] for i, x in enumerate(r[:m].tolist())]
                pos += m
                agg["ids"] = merge_first(agg["ids"], new)
                agg["hosts"].update(dict.fromkeys(NULL if s is None else str(s) for s in src[a : a + n]))
                _, owner, _ = k.split("\x1f", 2)
                ok_key = owner if scope == "destination" else k
                self.by_owner.setdefault(ok_key, set()).add(k)
                touched.add(ok_key)
                self.dirty.add(k)
            infos = rows_info(t, np.array([e[1] for e in earlier], dtype=np.int64))
            for (k, _), info in zip(earlier, infos, strict=True):
                self.aggs[k]["info"] = info
        return touched

    def owners(self) -> set[str]:
        return set(self.by_owner)

    def rescore(
        self, owners: set[str], cfg: DetectionConfig, laws_for: LawsFor, frame: tuple[float, float] | None
    ) -> None:
        baseline_end = frame[0] + cfg.get("new_destination", "baseline_hours") * 3600.0 if frame else 0.0
        live = frame is not None and frame[1] >= baseline_end and not self.single_input()
        min_bytes = cfg.get("new_destination", "min_bytes")
        max_per = int(cfg.get("new_destination", "max_per_system"))
        for owner in owners:  # loop over touched systems, organisations and jurisdictions
            new = []
            for k in self.by_owner.get(owner, ()):  # keys of this owner
                agg = self.aggs[k]
                if live and agg["first"] >= baseline_end and agg["bytes"] >= min_bytes:
                    new.append((k, agg))
            found: list[Alert] = []
            for k, agg in new if len(new) <= max_per else ():
                found.append(self._alert(k.split("\x1f", 1)[0], agg, baseline_end, [], 0, laws_for))
            if len(new) > max_per:
                new.sort(key=lambda e: (-e[1]["bytes"], e[1]["first_seq"]))
                examples = [str(first_value(e[1]["info"], "dst_domain", "dst_ip")) for e in new[1:EXAMPLES]]
                found.append(
                    self._alert("destinations", new[0][1], baseline_end, examples, len(new), laws_for)
                )
            self.set_alerts(owner, found)

    @staticmethod
    def _alert(
        scope: str,
        agg: dict[str, Any],
        baseline_end: float,
        examples: list[str],
        count: int,
        laws_for: LawsFor,
    ) -> Alert:
        seen = NewSeen(agg["flows"], agg["bytes"], len(agg["hosts"]), agg["first"], agg["last"])
        ids = [str(e[2]) for e in agg["ids"] if e[2] is not None]
        return new_alert(scope, agg["info"], baseline_end, seen, ids, examples, count, laws_for)
