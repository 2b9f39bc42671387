"""The flows behind each stored alert, summarised for exports (ECS, OCSF).

An alert keeps at most :data:`derisk.detect.alert.MAX_FLOW_IDS` flow ids and one representative
internal host; a SIEM needs every host and destination. :func:`alert_flows` finds the flows an alert
rests on again in the workspace — the same internal side (the system, else the host), the same
destination (any of the names and attributes the detections key on), within the alert's first and
last seen — plus the flows it cites, and aggregates them in DuckDB: one scan picks out the flows any
alert may rest on, then one grouped join matches them to the alerts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import duckdb
import pyarrow as pa

from derisk.detect.alert import Alert
from derisk.errors import StoreError
from derisk.store.workspace import Workspace, registered

#: Distinct values kept per list (an alert is about one system and one destination: far fewer).
MAX_VALUES: Final = 10_000

#: Columns an alert's ``destination`` may equal, by what the detections key on.
_DEST_COLUMNS: Final = (
    "server_name",
    "dst_ip",
    "dst_domain",
    "dst_org",
    "dst_as_org",
    "dst_controller",
    "dst_jurisdiction",
)


@dataclass(frozen=True)
class AlertFlows:
    """What the flows of one alert add up to (empty when none are found)."""

    flows: int = 0
    src_ips: tuple[str, ...] = ()
    dst_ips: tuple[str, ...] = ()
    server_names: tuple[str, ...] = ()
    dst_domains: tuple[str, ...] = ()
    dst_port: int | None = None
    dst_ports: tuple[int, ...] = ()
    protocol: int | None = None
    protocols: tuple[int, ...] = ()
    bytes_out: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    packets_in: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    dst_asn: int | None = None
    dst_as_org: str | None = None
    dst_geo_country: str | None = None
    #: (layer, controller, jurisdiction) of the infrastructure and service attribution layers.
    layers: tuple[tuple[str, str, str | None], ...] = field(default=())


def _where(alert: Alert) -> tuple[str, list[Any]]:
    t = alert.target
    clauses: list[str] = []
    params: list[Any] = []
    if t.system:
        clauses.append("system = ?")
        params.append(t.system)
    elif t.src_ip and alert.kind != "dns-tunnel":
        clauses.append("src_ip = ?")
        params.append(t.src_ip)
    if alert.kind == "dns-tunnel":
        clauses.append("(dns_query = ? OR dns_query LIKE ? ESCAPE '\\')")
        escaped = t.destination.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params += [t.destination, "%." + escaped]
    else:
        clauses.append("? IN (" + ", ".join(_DEST_COLUMNS) + ")")
        params.append(t.destination)
    if alert.first_seen is not None:
        clauses.append("first_seen >= ?")
        params.append(alert.first_seen)
    if alert.last_seen is not None:
        clauses.append("first_seen <= ?")
        params.append(alert.last_seen)
    where = " AND ".join(clauses)
    if alert.flow_ids:
        where = f"({where}) OR flow_id IN ({', '.join('?' * len(alert.flow_ids))})"
        params += list(alert.flow_ids)
    return where, params


def _distinct(col: str) -> str:
    return f"list_sort(list_distinct(list({col}) FILTER (WHERE {col} IS NOT NULL)))[1:{MAX_VALUES}]"


_SELECT: Final = ", ".join(
    [
        "count(*)",
        _distinct("src_ip"),
        _distinct("dst_ip"),
        _distinct("server_name"),
        _distinct("dst_domain"),
        "mode(dst_port)",
        _distinct("dst_port"),
        "mode(protocol)",
        _distinct("protocol"),
        "coalesce(sum(bytes_out), 0)",
        "coalesce(sum(bytes_in), 0)",
        "coalesce(sum(packets_out), 0)",
        "coalesce(sum(packets_in), 0)",
        "min(first_seen)",
        "max(coalesce(last_seen, first_seen))",
        "mode(dst_asn)",
        "mode(dst_as_org)",
        "mode(dst_geo_country)",
        _distinct(
            "CASE WHEN dst_infra_controller IS NOT NULL THEN "
            "['infrastructure', dst_infra_controller, dst_infra_jurisdiction] END"
        ),
        _distinct(
            "CASE WHEN dst_service_controller IS NOT NULL THEN "
            "['service', dst_service_controller, dst_service_jurisdiction] END"
        ),
    ]
)


def _summary(row: Sequence[Any]) -> AlertFlows:
    (n, srcs, dsts, names, domains, port, ports, proto, protos, bo, bi, po, pi, first, last, asn, asorg,
     geo, infra, service) = row  # fmt: skip
    layers = tuple((str(x[0]), str(x[1]), x[2]) for x in [*(infra or []), *(service or [])])
    return AlertFlows(
        flows=int(n),
        src_ips=tuple(srcs or ()),
        dst_ips=tuple(dsts or ()),
        server_names=tuple(names or ()),
        dst_domains=tuple(domains or ()),
        dst_port=None if port is None else int(port),
        dst_ports=tuple(int(p) for p in ports or ()),
        protocol=None if proto is None else int(proto),
        protocols=tuple(int(p) for p in protos or ()),
        bytes_out=int(bo),
        bytes_in=int(bi),
        packets_out=int(po),
        packets_in=int(pi),
        first_seen=first,
        last_seen=last,
        dst_asn=None if asn is None else int(asn),
        dst_as_org=asorg,
        dst_geo_country=geo,
        layers=layers,
    )


#: Columns the summaries read.
_COLUMNS: Final = (
    "flow_id",
    "system",
    "src_ip",
    "dst_ip",
    "dst_port",
    "protocol",
    "bytes_out",
    "bytes_in",
    "packets_out",
    "packets_in",
    "first_seen",
    "last_seen",
    "dst_asn",
    "dst_geo_country",
    "dns_query",
    *(c for c in _DEST_COLUMNS if c not in ("server_name", "dst_ip")),
    "server_name",
    "dst_infra_controller",
    "dst_infra_jurisdiction",
    "dst_service_controller",
    "dst_service_jurisdiction",
)

_VIEW: Final = "_derisk_alert_flows"


def _narrow(ws: Workspace, alerts: Sequence[Alert]) -> Any:
    """One scan of the flow table for the flows any of ``alerts`` may rest on (an Arrow table): the
    per-alert summaries then read this, not the whole table once per alert."""
    ids = sorted({i for a in alerts for i in a.flow_ids})
    dests = sorted({a.target.destination for a in alerts if a.target.destination})
    systems = sorted({a.target.system for a in alerts if a.target.system})
    hosts = sorted({a.target.src_ip for a in alerts if not a.target.system and a.target.src_ip})
    anyone = any(not a.target.system and not a.target.src_ip for a in alerts)
    params: list[Any] = []

    def within(col: str, values: list[str]) -> str:
        params.append(values)
        return f"{col} IN (SELECT unnest(?::VARCHAR[]))"

    dest = " OR ".join(within(c, dests) for c in _DEST_COLUMNS)
    side = "TRUE" if anyone else f"({within('system', systems)} OR {within('src_ip', hosts)})"
    times = [a.first_seen for a in alerts] + [a.last_seen for a in alerts]
    window = "TRUE"
    if all(t is not None for t in times):
        window = "first_seen BETWEEN ? AND ?"
        params += [min(t for t in times if t), max(t for t in times if t)]
    cited = within("flow_id", ids)
    cols = ", ".join(_COLUMNS)
    sql = f"SELECT row_number() OVER () AS k_row, {cols} FROM flows_attributed WHERE (({dest}) AND {side} AND {window}) OR {cited}"
    return ws.query_arrow(sql, params)


_KEYS: Final = "_derisk_alert_keys"

#: The internal side and the time window of an alert, for a flow ``v`` joined to its key ``k``.
_SIDE_AND_WINDOW: Final = (
    "((k.k_system IS NOT NULL AND v.system = k.k_system)"
    " OR (k.k_system IS NULL AND k.k_src_ip IS NOT NULL AND v.src_ip = k.k_src_ip)"
    " OR (k.k_system IS NULL AND k.k_src_ip IS NULL))"
    " AND (k.k_t0 IS NULL OR v.first_seen >= k.k_t0) AND (k.k_t1 IS NULL OR v.first_seen <= k.k_t1)"
)

#: (alert, narrowed row) pairs: one hash join per destination column (a flow matching on several
#: counts once), and the flows each alert cites. Rows, not flow ids: those need not be unique.
_PAIRS: Final = (
    " UNION ".join(
        f"SELECT k.k_alert_id, v.k_row FROM {{keys}} k JOIN {{view}} v"
        f" ON v.{c} = k.k_destination AND {_SIDE_AND_WINDOW}"
        for c in _DEST_COLUMNS
    )
    + " UNION SELECT c.k_alert_id, v.k_row FROM"
    " (SELECT k_alert_id, unnest(k_flow_ids) AS flow_id FROM {keys}) c JOIN {view} v USING (flow_id)"
)


def _keys(alerts: Sequence[Alert]) -> pa.Table:
    return pa.table(
        {
            "k_alert_id": pa.array([a.alert_id for a in alerts], pa.string()),
            "k_system": pa.array([a.target.system for a in alerts], pa.string()),
            "k_src_ip": pa.array([a.target.src_ip for a in alerts], pa.string()),
            "k_destination": pa.array([a.target.destination for a in alerts], pa.string()),
            "k_t0": pa.array([a.first_seen for a in alerts], pa.timestamp("us", tz="UTC")),
            "k_t1": pa.array([a.last_seen for a in alerts], pa.timestamp("us", tz="UTC")),
            "k_flow_ids": pa.array([list(a.flow_ids) for a in alerts], pa.list_(pa.string())),
        }
    )


def alert_flows(ws: Workspace, alerts: Sequence[Alert]) -> dict[str, AlertFlows]:
    """alert_id -> the summary of its flows in ``ws`` (an alert whose flows are gone maps to an empty one).

    DNS tunnels (a query under a domain) are summarised from the flow table itself, one query each;
    every other alert in one grouped query over the flows one scan picked out for all of them.
    """
    out: dict[str, AlertFlows] = {a.alert_id: AlertFlows() for a in alerts}
    unique = list({a.alert_id: a for a in alerts}.values())
    tunnels = [a for a in unique if a.kind == "dns-tunnel"]
    others = [a for a in unique if a.kind != "dns-tunnel"]
    try:
        for alert in tunnels:
            where, params = _where(alert)
            rows = ws.query(f"SELECT {_SELECT} FROM flows_attributed WHERE {where}", params)
            if rows and rows[0][0]:
                out[alert.alert_id] = _summary(rows[0])
        if others:
            with registered(ws.con, _VIEW, _narrow(ws, others)), registered(ws.con, _KEYS, _keys(others)):
                pairs = _PAIRS.format(keys=_KEYS, view=_VIEW)
                sql = (
                    f"SELECT m.k_alert_id, {_SELECT} FROM ({pairs}) m JOIN {_VIEW} USING (k_row)"
                    " GROUP BY m.k_alert_id"
                )
                for row in ws.query(sql):
                    out[str(row[0])] = _summary(row[1:])
    except duckdb.Error as exc:
        raise StoreError(f"could not read the flows of the alerts: {exc}", source=str(ws.path)) from None
    return out
