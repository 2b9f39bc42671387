"""Sustained transfers to controllers in jurisdictions whose laws compel cooperation.

Per (system, or internal host without a system label; controller), over outbound flows whose
destination's controlling jurisdiction has laws in force that oblige companies to cooperate with
intelligence or hand over data (``laws_for``, injected): alert when the host sent at least
``min_bytes_out`` and the traffic spans at least ``min_hours``. Score 0.8, plus 0.1 at ten times the
byte threshold and 0.1 at four times the duration. Decision support, not legal advice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.alert import Alert, LawsFor, compelling_laws, make_alert
from derisk.detect.config import DetectionConfig
from derisk.detect.explain import phrase
from derisk.detect.segments import (
    as_datetime,
    coalesce_codes,
    column,
    combine,
    ints,
    outbound_rows,
    segments,
    string_mask,
)
from derisk.detect.targets import flow_ids_for, rows_info, target_from
from derisk.detect.upload import _fmt_bytes
from derisk.i18n.data import P_


def detect_compelled(
    flows: pa.Table,
    cfg: DetectionConfig,
    laws_for: LawsFor,
    *,
    now: datetime | None = None,
    frame: object = None,
) -> list[Alert]:
    found = outbound_rows(flows, now)
    if found is None:
        return []
    times, ok = found
    juris = column(flows, "dst_jurisdiction")
    compelling = [j for j in pc.unique(juris).drop_null().to_pylist() if compelling_laws(laws_for, str(j))]
    if not compelling:
        return []
    values = pa.array(compelling, pa.string())
    in_scope = string_mask(juris, lambda a: pc.is_in(pc.cast(a, pa.string()), value_set=values))
    controller = coalesce_codes(column(flows, "dst_controller"), column(flows, "dst_org"))
    who = coalesce_codes(column(flows, "system"), column(flows, "src_ip"))
    key = combine(who, controller)
    rows = np.flatnonzero(ok & in_scope & (key >= 0))
    if len(rows) == 0:
        return []
    order = rows[np.lexsort((times.start[rows], key[rows]))]
    seg = segments(key[order])
    out_b = ints(flows, "bytes_out").astype(np.float64)
    sent = seg.sum(out_b[order])
    first = seg.min(times.start[order])
    last = seg.max(times.end[order])
    hours = (last - first) / 3600.0
    min_bytes = cfg.get("compelled", "min_bytes_out")
    min_hours = cfg.get("compelled", "min_hours")
    hit = np.flatnonzero((sent >= min_bytes) & (hours >= min_hours))
    if len(hit) == 0:
        return []
    row_lists = [order[seg.starts[i] : seg.ends[i]] for i in hit]
    infos = rows_info(flows, np.array([r[-1] for r in row_lists], dtype=np.int64))
    ids = flow_ids_for(flows, row_lists)
    alerts = []
    for j, i in enumerate(hit):
        r = row_lists[j]
        dests = pc.unique(pc.take(column(flows, "dst_ip"), pa.array(r, pa.int64()))).to_pylist()
        names = (
            pc.unique(pc.take(column(flows, "server_name"), pa.array(r, pa.int64()))).drop_null().to_pylist()
        )
        alerts.append(
            compelled_alert(
                infos[j],
                float(sent[i]),
                float(first[i]),
                float(last[i]),
                dests,
                names,
                ids[j],
                len(r),
                cfg,
                laws_for,
            )
        )
    return alerts


def compelled_alert(
    info: dict[str, Any],
    sent: float,
    first: float,
    last: float,
    dests: list[Any],
    names: list[Any],
    flow_ids: list[str],
    flow_count: int,
    cfg: DetectionConfig,
    laws_for: LawsFor,
) -> Alert:
    """The alert of one (system, controller): ``info`` is the attribution of its latest flow, ``dests``
    and ``names`` its addresses and server names in the order first seen."""
    min_bytes = cfg.get("compelled", "min_bytes_out")
    min_hours = cfg.get("compelled", "min_hours")
    hours = (last - first) / 3600.0
    ctrl = info.get("dst_controller") or info.get("dst_org") or "unknown"
    target = target_from(info, str(ctrl))
    score = (
        0.8 + (0.1 if sent >= 10 * min_bytes else 0.0) + (0.1 if hours >= 4 * max(min_hours, 0.25) else 0.0)
    )
    evidence = {
        "bytes_out": int(sent),
        "hours": round(float(hours), 2),
        "destinations": [str(d) for d in dests[:10]],
        "destination_count": len(dests),
        "server_names": [str(n) for n in names[:10]],
        "min_bytes_out": int(min_bytes),
        "min_hours": min_hours,
    }
    many = len(dests) > 1
    if names:
        template = (
            P_("sent {sent} over {hours} h to {controller} ({addresses} addresses, e.g. {example})")
            if many
            else P_("sent {sent} over {hours} h to {controller} ({addresses} address, e.g. {example})")
        )
    else:
        template = (
            P_("sent {sent} over {hours} h to {controller} ({addresses} addresses)")
            if many
            else P_("sent {sent} over {hours} h to {controller} ({addresses} address)")
        )
    values = {"example": str(names[0])} if names else {}
    summary = phrase(
        template,
        sent=_fmt_bytes(float(sent)),
        hours=f"{float(hours):.1f}",
        controller=ctrl,
        addresses=len(dests),
        **values,
    )
    return make_alert(
        "compelled-transfer",
        score,
        target,
        summary,
        evidence,
        laws_for,
        flow_ids=flow_ids,
        flow_count=flow_count,
        first_seen=as_datetime(first),
        last_seen=as_datetime(last),
    )
