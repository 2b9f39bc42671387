"""Saving and loading a :class:`~derisk.detect.incremental.DetectionState`: every part as JSON
documents under keys (``<part>\\x1f<key>``), only what changed since the last save written.

The buffer of recent flows is not stored: it is read back from the workspace's flows (those from the
oldest start it held) at the first batch after loading, when the detection settings are known.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.alert import Alert
from derisk.detect.incremental_keys import Keyed
from derisk.errors import StoreError
from derisk.store import detect_state

if TYPE_CHECKING:
    from derisk.detect.incremental import DetectionState

SEP = "\x1f"


def _alerts_doc(alerts: list[Alert]) -> str:
    return json.dumps([a.to_json() for a in alerts], ensure_ascii=False)


def _keyed_docs(
    part: Keyed, agg_tag: str, alert_tag: str, full: bool, gone: list[str]
) -> Iterator[tuple[str, str]]:
    """The documents of the keys changed since the last save; keys whose alerts were all withdrawn
    are added to ``gone`` (deleted, not stored empty)."""
    for k in part.aggs if full else part.dirty:
        if k in part.aggs:
            yield f"{agg_tag}{SEP}{k}", json.dumps(part.aggs[k], ensure_ascii=False)
    for k in part.alerts if full else part.dirty_alerts:
        if k in part.alerts:
            yield f"{alert_tag}{SEP}{k}", _alerts_doc(part.alerts[k])
        else:
            gone.append(f"{alert_tag}{SEP}{k}")
    part.dirty.clear()
    part.dirty_alerts.clear()


def parts(state: DetectionState) -> dict[str, tuple[Keyed, str, str]]:
    return {
        "beacon": (state.beacon, "-", "b"),
        "upload": (state.upload, "-", "u"),
        "long_live": (state.long_live, "-", "ll"),
        "long_final": (state.long_final, "-", "lf"),
        "compelled": (state.compelled, "c", "ca"),
        "dns": (state.dns, "d", "da"),
        "new": (state.new, "n", "na"),
    }


def save_from(state: DetectionState, con: duckdb.DuckDBPyConnection) -> None:
    full = state._full
    docs: list[tuple[str, str]] = []
    meta = {
        "state_id": state.state_id,
        "generation": state.generation,
        "seq": state.seq,
        "frame": list(state.frame) if state.frame else None,
        "config_key": state.config_key,
        "fold_until": state.fold_until,
        "up_t0": state.up_t0,
        "hold_from": state.win.min_start() if len(state.win) else state.hold_from,
        "new_inputs": state.new.inputs,
        "new_odd": state.new.odd_ids,
        "new_any": state.new.any_ids,
        "pending": None
        if state.pend_seq is None
        else {
            "frame": list(state.pend_frame) if state.pend_frame else None,
            "up_t0": state.pend_up_t0,
            "who": sorted(state.pend_who),
        },
    }
    docs.append(("meta", json.dumps(meta)))
    gone: list[str] = []
    for part, agg_tag, alert_tag in parts(state).values():
        docs.extend(_keyed_docs(part, agg_tag, alert_tag, full, gone))
    for k in state.up_closed if full else state.up_dirty:
        docs.append((f"uc{SEP}{k}", json.dumps(state.up_closed[k])))
    state.up_dirty.clear()
    for w in state.up_base if full else state.up_base_dirty:
        docs.append((f"ub{SEP}{w}", json.dumps(state.up_base[w])))
    state.up_base_dirty.clear()
    gone.extend(f"uc{SEP}{k}" for k in state.up_forgotten)
    state.up_forgotten = set()
    connected = sorted(state.dns.connected) if full else state.dns.connected_new
    docs.extend((f"dc{SEP}{d}", "1") for d in connected)
    state.dns.connected_new = []
    if full:
        names = [(d, n, f[0], f[1]) for d, per in state.dns.names.items() for n, f in per.items()]
    else:
        names = list(state.dns.new_names)
    state.dns.new_names = []
    detect_state.write(con, docs, names, clear=full, delete=[] if full else gone)
    state._full = False


def load_into(state: DetectionState, con: duckdb.DuckDBPyConnection) -> None:
    docs = detect_state.read_docs(con)
    if not docs:
        return
    by_tag: dict[str, tuple[Keyed, bool]] = {}
    for part, agg_tag, alert_tag in parts(state).values():
        by_tag[alert_tag] = (part, True)
        if agg_tag != "-":
            by_tag[agg_tag] = (part, False)
    for key, doc in docs:  # one pass over the stored keys
        if key == "meta":
            _meta(state, json.loads(doc))
            continue
        tag, _, k = key.partition(SEP)
        if tag == "uc":
            state.up_closed[k] = float(json.loads(doc))
            who = k.split(SEP, 1)[0]
            state.up_base[who] = max(state.up_base.get(who, 0.0), state.up_closed[k])
        elif tag == "ub":
            state.up_base[k] = max(state.up_base.get(k, 0.0), float(json.loads(doc)))
        elif tag == "dc":
            state.dns.connected.add(k)
        elif tag in by_tag:
            part, is_alerts = by_tag[tag]
            if is_alerts:
                found = [Alert.from_json(d) for d in json.loads(doc)]
                if found:
                    part.alerts[k] = found
            else:
                part.aggs[k] = json.loads(doc)
    for d, n, length, h in detect_state.read_names(con):
        state.dns.add_name(d, n, length, h)
    for k in state.new.aggs:
        scope, owner, _ = k.split(SEP, 2)
        state.new.by_owner.setdefault(owner if scope == "destination" else k, set()).add(k)
    state._full = False
    state.reload_pending = True
    state._changed({})


def stored_version(con: duckdb.DuckDBPyConnection) -> tuple[str, int] | None:
    """(state id, generation) of the stored state; None when there is none."""
    doc = detect_state.read_doc(con, "meta")
    if doc is None:
        return None
    meta = json.loads(doc)
    return str(meta.get("state_id")), int(meta.get("generation") or 0)


def _meta(state: DetectionState, meta: dict[str, Any]) -> None:
    state.state_id = str(meta.get("state_id") or state.state_id)
    state.generation = int(meta.get("generation") or 0)
    state.seq = int(meta["seq"])
    frame = meta.get("frame")
    state.frame = (float(frame[0]), float(frame[1])) if frame else None
    state.config_key = meta.get("config_key")
    state.fold_until = meta.get("fold_until")
    state.up_t0 = meta.get("up_t0")
    state.hold_from = meta.get("hold_from")
    state.new.inputs = list(meta.get("new_inputs") or [])
    state.new.odd_ids = bool(meta.get("new_odd"))
    state.new.any_ids = bool(meta.get("new_any"))
    pending = meta.get("pending")
    if pending is not None:  # window scoring was put off: the buffer read back is scored again
        frame = pending.get("frame")
        state.pend_seq = state.seq
        state.pend_frame = (float(frame[0]), float(frame[1])) if frame else None
        state.pend_up_t0 = pending.get("up_t0")
        state.pend_who = set(pending.get("who") or [])


def held_rows(table: pa.Table, exclude_ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Rows of ``table`` whose flow id is not among ``exclude_ids`` (the batch being taken in)."""
    ids = table.column("flow_id")
    if len(exclude_ids) == 0:
        return np.arange(table.num_rows)
    inside = pc.fill_null(pc.is_in(ids, value_set=pc.unique(exclude_ids).drop_null()), False)
    return np.flatnonzero(~np.asarray(inside.to_numpy(zero_copy_only=False), dtype=bool))


def arrival_order(con: duckdb.DuckDBPyConnection, table: pa.Table, where: str) -> pa.Table:
    """``table`` (flows read back under ``where``) in the order the flows were stored: the buffer
    keeps arrival order, which breaks ties (and lists an alert's flows) as a batch analysis does;
    a read through the attribution join need not keep it."""
    try:
        stored = con.sql(f"SELECT flow_id FROM flows WHERE {where} ORDER BY rowid").to_arrow_table()[
            "flow_id"
        ]
    except duckdb.Error as exc:
        raise StoreError(f"could not read flow ids: {exc}") from None
    if len(stored) != table.num_rows or pc.count_distinct(stored).as_py() != len(stored):
        return table  # ids not unique: the order as read
    at = pc.index_in(stored, value_set=table.column("flow_id").combine_chunks())
    if at.null_count:
        return table
    return table.take(at)
