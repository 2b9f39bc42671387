"""The flows behind each stored alert, summarised for exports (ECS, OCSF).

An alert keeps at most :data:`derisk.detect.alert.MAX_FLOW_IDS` flow ids and one representative
internal host; a SIEM needs every host and destination. :func:`alert_flows` finds the flows an alert
rests on again in the workspace — the same internal side (the system, else the host), the same
destination (any of the names and attributes the detections key on), within the alert's first and
last seen — plus the flows it cites, and aggregates them in DuckDB, one query per alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import duckdb

from derisk.detect.alert import Alert
from derisk.errors import StoreError
from derisk.store.workspace import Workspace

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


def alert_flows(ws: Workspace, alerts: Sequence[Alert]) -> dict[str, AlertFlows]:
    """alert_id -> the summary of its flows in ``ws`` (an alert whose flows are gone maps to an empty one)."""
    out: dict[str, AlertFlows] = {}
    try:
        for alert in alerts:
            where, params = _where(alert)
            rows = ws.query(f"SELECT {_SELECT} FROM flows_attributed WHERE {where}", params)
            out[alert.alert_id] = _summary(rows[0]) if rows and rows[0][0] else AlertFlows()
    except duckdb.Error as exc:
        raise StoreError(f"could not read the flows of the alerts: {exc}", source=str(ws.path)) from None
    return out
