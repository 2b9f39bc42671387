"""DNS tunnelling: many unique, long, high-entropy names under one registrable domain.

Per registrable domain (the public-suffix list bundled with tldextract; no network), over the
distinct query names of the flow table:

* volume: ``0.5 + 0.5 * log10(unique names / min_unique_names)`` (RITA counts unique subdomains too);
* payload: half from the median length of the part left of the domain (0 at ``min_label_chars``,
  1 at twice that) and half from its Shannon entropy in bits per character (0 at 2.5, 1 at 4.0);
* score = ``0.3 * volume + 0.7 * payload``, halved when the domain is also connected to directly (a
  server name or attributed domain of a flow): busy CDN names have many unique labels but are
  connected to and their labels are short.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from derisk.detect.alert import MAX_FLOW_IDS, Alert, LawsFor, Target, make_alert
from derisk.detect.config import DetectionConfig
from derisk.detect.explain import phrase
from derisk.detect.segments import F64, as_datetime, column, flow_times, plain, segments
from derisk.detect.targets import flow_ids_for
from derisk.enrich.domains import registrable_clean
from derisk.i18n.data import P_

CONNECTED_FACTOR = 0.5


def registrable(names: list[str]) -> list[str | None]:
    """Registrable domain (``example.co.uk``) of each name, or None (an IP, a bare suffix, junk)."""
    return [registrable_clean(name.rstrip(".").lower()) for name in names]  # over distinct names


def query_domains(flows: pa.Table) -> pa.Array:
    """The registrable domain of each flow's DNS query (null without one): what
    :func:`detect_dns_tunnels` groups by, so the flows of one domain can be scored apart from the rest."""
    names = pc.utf8_lower(plain(column(flows, "dns_query")))
    uniq = pc.unique(names).drop_null()
    domains = pa.array(registrable([str(x) for x in uniq.to_pylist()]), pa.string())
    return pc.take(domains, pc.index_in(names, value_set=uniq))


def entropy_bits(strings: list[str]) -> tuple[F64, F64]:
    """(Shannon entropy in bits per byte, length in bytes) of each string, vectorised over all of them."""
    arr = pa.array(strings, pa.large_binary())
    n = len(strings)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[: n + 1]
    data = (
        np.frombuffer(arr.buffers()[2], dtype=np.uint8)[: offsets[-1]]
        if offsets[-1]
        else np.zeros(0, np.uint8)
    )
    lengths = np.diff(offsets).astype(np.float64)
    owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
    key = np.sort(owner * 256 + data.astype(np.int64))
    seg = segments(key)
    counts = seg.lengths.astype(np.float64)
    who = seg.codes // 256
    p = counts / lengths[who]
    h = np.zeros(n)
    np.add.at(h, who, -p * np.log2(p))
    return h, lengths


def detect_dns_tunnels(
    flows: pa.Table,
    cfg: DetectionConfig,
    laws_for: LawsFor,
    *,
    now: datetime | None = None,
    frame: object = None,
) -> list[Alert]:
    if flows.num_rows == 0 or "dns_query" not in flows.column_names:
        return []
    queries = column(flows, "dns_query")
    has_query = np.asarray(pc.is_valid(queries).to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(has_query)
    if len(rows) == 0:
        return []
    names = pc.utf8_lower(plain(pc.take(queries, pa.array(rows, pa.int64()))))
    uniq = pc.unique(names)
    min_unique = cfg.get("dns_tunnel", "min_unique_names")
    if len(uniq) < min_unique:  # no domain can have that many distinct names: the suffix list not needed
        return []
    uniq_list = [str(x) for x in uniq.to_pylist()]
    domains = registrable(uniq_list)
    dom_codes_u = np.array([-1 if d is None else 0 for d in domains], dtype=np.int64)
    dom_names = sorted({d for d in domains if d})
    dom_index = {d: i for i, d in enumerate(dom_names)}
    dom_codes_u = np.array([dom_index[d] if d else -1 for d in domains], dtype=np.int64)
    counts_u = np.bincount(dom_codes_u[dom_codes_u >= 0], minlength=len(dom_names))
    candidates = np.flatnonzero(counts_u >= min_unique)
    if len(candidates) == 0:
        return []
    # payload features over the distinct names of candidate domains
    sel = np.flatnonzero(np.isin(dom_codes_u, candidates))
    subs = [
        uniq_list[i][: max(len(uniq_list[i]) - len(dom_names[dom_codes_u[i]]) - 1, 0)].replace(".", "")
        for i in sel
    ]
    h, length = entropy_bits(subs)
    order = np.lexsort((length, dom_codes_u[sel]))
    seg = segments(dom_codes_u[sel][order])
    len_sorted = length[order]
    median_len = (
        len_sorted[seg.starts + (seg.lengths - 1) // 2] + len_sorted[seg.starts + seg.lengths // 2]
    ) / 2
    mean_h = seg.sum(h[order]) / seg.lengths
    # connected directly? registrable domains of server names and attributed domains of flows
    connected: set[str] = set()
    for col in ("server_name", "dst_domain"):
        if col in flows.column_names:
            vals = [str(v) for v in pc.unique(column(flows, col)).drop_null().to_pylist()]
            connected.update(d for d in registrable(vals) if d)
    min_score = cfg.get("dns_tunnel", "min_score")
    uniq_codes = pc.index_in(names, value_set=uniq)
    row_dom = dom_codes_u[np.asarray(uniq_codes.to_numpy(zero_copy_only=False), dtype=np.int64)]
    times = flow_times(flows, now)
    hits = []
    for j, d in enumerate(seg.codes.tolist()):  # loop over candidate domains (few)
        n = int(counts_u[d])
        is_connected = dom_names[d] in connected
        score = tunnel_score(n, float(median_len[j]), float(mean_h[j]), is_connected, cfg)
        if score >= min_score:
            hits.append((d, n, score, float(median_len[j]), float(mean_h[j]), is_connected))
    if not hits:
        return []
    src_col = column(flows, "src_ip")
    alerts = []
    row_lists = [rows[row_dom == d] for d, *_ in hits]
    ids = flow_ids_for(flows, [_earliest(flows, r, times.valid, times.start) for r in row_lists])
    for (d, n, score, mlen, mh, is_connected), r, fids in zip(hits, row_lists, ids, strict=True):
        hosts = [
            (x["values"], x["counts"])
            for x in pc.value_counts(pc.take(src_col, pa.array(r, pa.int64()))).to_pylist()
        ]
        valid = times.valid[r]
        first = float(times.start[r][valid].min()) if valid.any() else None
        last = float(times.start[r][valid].max()) if valid.any() else None
        stats = TunnelStats(n, mlen, mh, is_connected, len(r), hosts, _main_system(flows, r), first, last)
        alerts.append(tunnel_alert(dom_names[d], score, stats, fids, laws_for))
    return alerts


def _earliest(flows: pa.Table, rows: np.ndarray, valid: np.ndarray, start: F64) -> np.ndarray:
    """The :data:`MAX_FLOW_IDS` rows an alert lists: the earliest queries first (then by flow id;
    without a start time last), so the same flows are named whatever order the table is in (one
    table on DuckDB, partitions of it on Spark)."""
    if len(rows) == 0 or "flow_id" not in flows.column_names:
        return rows
    when = np.where(valid[rows], start[rows], np.inf)
    ids = pc.cast(plain(pc.take(column(flows, "flow_id"), pa.array(rows, pa.int64()))), pa.string())
    order = pc.select_k_unstable(
        pa.table({"s": when, "i": ids}),
        k=min(MAX_FLOW_IDS, len(rows)),
        sort_keys=[("s", "ascending"), ("i", "ascending")],
    )
    return np.asarray(rows)[np.asarray(order.to_numpy(zero_copy_only=False), dtype=np.int64)]


def tunnel_score(
    unique: int, median_len: float, mean_h: float, connected: bool, cfg: DetectionConfig
) -> float:
    """The score of a domain from its unique names, their median length and mean entropy."""
    min_unique = cfg.get("dns_tunnel", "min_unique_names")
    label_chars = cfg.get("dns_tunnel", "min_label_chars")
    volume = min(1.0, max(0.0, 0.5 + 0.5 * np.log10(unique / min_unique)))
    length_score = min(1.0, max(0.0, (median_len - label_chars) / label_chars))
    ent_score = min(1.0, max(0.0, (mean_h - 2.5) / 1.5))
    payload = 0.5 * length_score + 0.5 * ent_score
    return float((0.3 * volume + 0.7 * payload) * (CONNECTED_FACTOR if connected else 1.0))


@dataclass(frozen=True)
class TunnelStats:
    """What an alert shows about one domain; ``hosts`` are (internal host, queries)."""

    unique: int
    median_len: float
    mean_h: float
    connected: bool
    queries: int
    hosts: list[tuple[Any, int]]
    system: str | None
    first: float | None
    last: float | None


def tunnel_alert(domain: str, score: float, st: TunnelStats, flow_ids: list[str], laws_for: LawsFor) -> Alert:
    hosts = sorted(st.hosts, key=lambda x: (-x[1], str(x[0])))
    top = hosts[0][0] if hosts else None
    evidence = {
        "domain": domain,
        "unique_names": st.unique,
        "queries": st.queries,
        "median_label_chars": round(st.median_len, 1),
        "entropy_bits_per_char": round(st.mean_h, 2),
        "connected_directly": st.connected,
        "hosts": [{"src_ip": h, "queries": c} for h, c in hosts[:10]],
        "host_count": len(hosts),
    }
    template = (
        P_(
            "sent {names} unique DNS names under {domain} (median {chars} characters, {bits} bits per character)"
        )
        if st.connected
        else P_(
            "sent {names} unique DNS names under {domain} (median {chars} characters, {bits} bits per character, "
            "a domain never connected to directly)"
        )
    )
    summary = phrase(
        template, names=f"{st.unique:,}", domain=domain, chars=f"{st.median_len:.0f}", bits=f"{st.mean_h:.1f}"
    )
    target = Target(src_ip=top, system=st.system, destination=domain)
    return make_alert(
        "dns-tunnel",
        score,
        target,
        summary,
        evidence,
        laws_for,
        flow_ids=flow_ids,
        flow_count=st.queries,
        first_seen=as_datetime(st.first) if st.first is not None else None,
        last_seen=as_datetime(st.last) if st.last is not None else None,
    )


def _main_system(flows: pa.Table, rows: np.ndarray) -> str | None:
    """The site system most of these queries came from (None when no querying host has one)."""
    if "system" not in flows.column_names:
        return None
    counts = pc.value_counts(
        pc.drop_null(pc.take(column(flows, "system"), pa.array(rows, pa.int64())))
    ).to_pylist()
    if not counts:
        return None
    counts.sort(key=lambda x: (-x["counts"], str(x["values"])))
    return str(counts[0]["values"])
