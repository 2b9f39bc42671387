"""Alerts as Elastic Common Schema (ECS) documents, one JSON object per line, for SIEMs.

Every document carries the fields in :data:`ECS_FIELDS`, and those of :data:`ECS_OPTIONAL` when known;
``docs/detection.md`` lists them. The tests check every field name and value against ECS's own
definitions (``ecs_flat.yml`` of the release in :data:`ECS_VERSION`). The hosts, destinations, ports,
bytes and AS of an alert come from the flows behind it (:mod:`derisk.store.alert_flows`). Our own
evidence goes under the ``derisk`` namespace, as ECS asks for custom fields.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from derisk import __version__
from derisk.detect.alert import Alert
from derisk.store.alert_flows import AlertFlows

ECS_VERSION: Final = "8.17.0"
SEVERITY_NUMBER: Final = {"low": 25, "medium": 50, "high": 75, "critical": 99}

#: kind -> (tactic id, tactic name, technique id, technique name), MITRE ATT&CK enterprise.
ATTACK: Final[dict[str, tuple[str, str, str, str]]] = {
    "beacon": ("TA0011", "Command and Control", "T1071", "Application Layer Protocol"),
    "dns-tunnel": ("TA0011", "Command and Control", "T1071.004", "DNS"),
    "upload": ("TA0010", "Exfiltration", "T1048", "Exfiltration Over Alternative Protocol"),
}

DESCRIPTIONS: Final = {
    "beacon": "Periodic check-ins from an internal host to one destination",
    "strobe": "A very large number of connections from an internal host to one destination",
    "long-connection": "One connection held open for hours",
    "dns-tunnel": "Many unique, long, high-entropy DNS names under one registrable domain",
    "upload": "A large or lopsided upload, against the system's own baseline",
    "new-destination": "A destination, organisation or jurisdiction first seen after the baseline period",
    "compelled-transfer": "Sustained transfers to a controller under laws that can compel cooperation",
}

#: Field names present in every document (``docs/detection.md`` lists each; their types come from
#: ECS's own definitions, which the tests check every document against).
ECS_FIELDS: Final[tuple[str, ...]] = (
    "@timestamp",
    "ecs.version",
    "event.kind",
    "event.category",
    "event.type",
    "event.module",
    "event.dataset",
    "event.id",
    "event.severity",
    "event.risk_score",
    "rule.name",
    "rule.id",
    "rule.category",
    "rule.description",
    "rule.ruleset",
    "observer.vendor",
    "observer.product",
    "observer.type",
    "observer.version",
    "agent.type",
    "agent.version",
    "message",
    "related.ip",
    "derisk.alert_id",
    "derisk.kind",
    "derisk.severity",
    "derisk.score",
    "derisk.destination",
    "derisk.laws",
    "derisk.evidence",
    "derisk.flow_ids",
    "derisk.flow_count",
)

#: Field names present only when known.
ECS_OPTIONAL: Final[tuple[str, ...]] = (
    "event.start",
    "event.end",
    "event.duration",
    "source.ip",
    "source.bytes",
    "source.packets",
    "destination.ip",
    "destination.port",
    "destination.domain",
    "destination.bytes",
    "destination.packets",
    "destination.as.number",
    "destination.as.organization.name",
    "destination.geo.country_iso_code",
    "network.transport",
    "network.iana_number",
    "network.bytes",
    "network.packets",
    "network.direction",
    "related.hosts",
    "observer.name",
    "agent.name",
    "threat.framework",
    "threat.tactic.id",
    "threat.tactic.name",
    "threat.technique.id",
    "threat.technique.name",
    "derisk.system",
    "derisk.organisation",
    "derisk.controller",
    "derisk.jurisdiction",
    "derisk.jurisdiction_basis",
    "derisk.layer",
    "derisk.layers",
    "derisk.hosts",
    "derisk.destinations",
    "derisk.dst_ports",
    "derisk.flows_found",
)

#: kind -> rule.category (what the detection looks for).
CATEGORY: Final = {
    "beacon": "covert channel",
    "strobe": "covert channel",
    "long-connection": "covert channel",
    "dns-tunnel": "covert channel",
    "upload": "exfiltration",
    "new-destination": "jurisdiction exposure",
    "compelled-transfer": "jurisdiction exposure",
}

#: IANA protocol number -> ECS ``network.transport`` (lowercase keyword, as ECS asks).
TRANSPORT: Final = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre", 50: "esp", 58: "ipv6-icmp", 132: "sctp"}


def _is_ip(value: str | None) -> bool:
    if not value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def controller_layer(controller: str | None, flows: AlertFlows) -> str | None:
    """Which attribution layer the alert's controller comes from: ``service`` (whose name the traffic
    carries) or ``infrastructure`` (who runs the server), as the flows behind the alert have it; the
    combined controller is the service's when known, so the service is looked at first."""
    if not controller:
        return None
    for wanted in ("service", "infrastructure"):
        if any(layer == wanted and ctrl == controller for layer, ctrl, _ in flows.layers):
            return wanted
    return None


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _network(alert: Alert, doc: dict[str, Any], flows: AlertFlows) -> None:
    """source.*, destination.*, network.* and related.* from the alert and the flows behind it."""
    t = alert.target
    source: dict[str, Any] = {}
    if _is_ip(t.src_ip):
        source["ip"] = t.src_ip
    elif flows.src_ips and _is_ip(flows.src_ips[0]):
        source["ip"] = flows.src_ips[0]
    dest: dict[str, Any] = {}
    if _is_ip(t.dst_ip):
        dest["ip"] = t.dst_ip
    elif _is_ip(t.destination):
        dest["ip"] = t.destination
    elif len(flows.dst_ips) == 1 and _is_ip(flows.dst_ips[0]):
        dest["ip"] = flows.dst_ips[0]
    domain = t.server_name or (t.destination if alert.kind == "dns-tunnel" else None)
    if not domain and len(flows.server_names) == 1:
        domain = flows.server_names[0]
    if domain:
        dest["domain"] = domain
    network: dict[str, Any] = {}
    if flows.flows:
        if flows.dst_port is not None:
            dest["port"] = flows.dst_port
        source["bytes"] = flows.bytes_out
        dest["bytes"] = flows.bytes_in
        if flows.packets_out or flows.packets_in:
            source["packets"] = flows.packets_out
            dest["packets"] = flows.packets_in
            network["packets"] = flows.packets_out + flows.packets_in
        network["bytes"] = flows.bytes_out + flows.bytes_in
        if flows.protocol is not None:
            network["iana_number"] = str(flows.protocol)
            if flows.protocol in TRANSPORT:
                network["transport"] = TRANSPORT[flows.protocol]
        if flows.dst_asn is not None:
            dest["as"] = {"number": flows.dst_asn}
            if flows.dst_as_org:
                dest["as"]["organization"] = {"name": flows.dst_as_org}
        if flows.dst_geo_country:
            dest["geo"] = {"country_iso_code": flows.dst_geo_country}
    if source:
        doc["source"] = source
        if alert.kind != "dns-tunnel":
            network["direction"] = "egress"
    if dest:
        doc["destination"] = dest
    if network:
        doc["network"] = network
    ips = {ip for ip in (*flows.src_ips, *flows.dst_ips, source.get("ip"), dest.get("ip")) if _is_ip(ip)}
    doc["related"] = {"ip": sorted(ips)}
    hosts = {h for h in (*flows.server_names, *flows.dst_domains, domain) if h}
    if hosts:
        doc["related"]["hosts"] = sorted(hosts)


def to_ecs(
    alert: Alert,
    *,
    flows: AlertFlows | None = None,
    observer_name: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """One ECS document for ``alert`` (nested objects, as Elasticsearch ingests them).

    ``flows`` is the summary of the flows behind the alert (:func:`derisk.store.alert_flows.alert_flows`);
    without it the document carries only what the alert record holds (one host, no ports or bytes).
    """
    found = flows or AlertFlows()
    first = alert.first_seen or found.first_seen
    last = alert.last_seen or found.last_seen
    when = last or first or now or datetime.now(UTC)
    event: dict[str, Any] = {
        "kind": "alert",
        "category": ["network", "intrusion_detection"],
        "type": ["connection", "info"],
        "module": "derisk",
        "dataset": "derisk.alerts",
        "id": alert.alert_id,
        "severity": SEVERITY_NUMBER[alert.severity],
        "risk_score": round(float(alert.score) * 100.0, 1),
    }
    if first:
        event["start"] = _iso(first)
    if last:
        event["end"] = _iso(last)
    if first and last and last >= first:
        event["duration"] = int((last - first).total_seconds() * 1e9)  # ECS: nanoseconds
    doc: dict[str, Any] = {
        "@timestamp": _iso(when),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "rule": {
            "name": alert.kind,
            "id": f"derisk.detect.{alert.kind}",
            "category": CATEGORY.get(alert.kind, "other"),
            "description": DESCRIPTIONS.get(alert.kind, alert.kind),
            "ruleset": "derisk",
        },
        "observer": {"vendor": "derisk", "product": "derisk", "type": "ids", "version": __version__},
        "agent": {"type": "derisk", "version": __version__},
        "message": alert.sentence,
    }
    if observer_name:
        doc["observer"]["name"] = observer_name
        doc["agent"]["name"] = observer_name
    _network(alert, doc, found)
    mapped = ATTACK.get(alert.kind)
    if mapped:
        doc["threat"] = {
            "framework": "MITRE ATT&CK",
            "tactic": {"id": [mapped[0]], "name": [mapped[1]]},
            "technique": {"id": [mapped[2]], "name": [mapped[3]]},
        }
    t = alert.target
    ours: dict[str, Any] = {
        "alert_id": alert.alert_id,
        "kind": alert.kind,
        "severity": alert.severity,
        "score": float(alert.score),
        "destination": t.destination,
        "laws": [law.to_json() for law in alert.laws],
        "evidence": alert.evidence,
        "flow_ids": list(alert.flow_ids),
        "flow_count": int(alert.flow_count),
    }
    for key in ("system", "organisation", "controller", "jurisdiction", "jurisdiction_basis"):
        value = getattr(t, key)
        if value:
            ours[key] = value
    layer = controller_layer(t.controller, found)
    if layer:
        ours["layer"] = layer
    if flows is not None:
        ours["flows_found"] = found.flows
        ours["hosts"] = list(found.src_ips)
        ours["destinations"] = list(found.dst_ips)
        ours["dst_ports"] = list(found.dst_ports)
        if found.layers:
            ours["layers"] = [
                {"layer": layer, "controller": ctrl, "jurisdiction": juris}
                for layer, ctrl, juris in found.layers
            ]
    doc["derisk"] = ours
    return doc


def ecs_lines(
    alerts: Iterable[Alert],
    *,
    flows: Mapping[str, AlertFlows] | None = None,
    observer_name: str | None = None,
) -> Iterator[str]:
    """JSON lines (no trailing newline on each) for ``alerts``; ``flows`` maps alert ids to their flows."""
    for alert in alerts:
        summary = flows.get(alert.alert_id) if flows is not None else None
        if flows is not None and summary is None:
            summary = AlertFlows()
        doc = to_ecs(alert, flows=summary, observer_name=observer_name)
        yield json.dumps(doc, ensure_ascii=False, sort_keys=True)


def lookup(doc: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted ECS path (``event.kind``) of a nested document, or None."""
    if dotted in doc:
        return doc[dotted]
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
