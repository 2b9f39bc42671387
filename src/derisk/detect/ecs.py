"""Alerts as Elastic Common Schema (ECS) documents, one JSON object per line, for SIEMs.

Every document carries the fields in :data:`ECS_FIELDS` with the types given there (a test checks
each exported line against it); ``docs/detection.md`` lists them. Our own evidence goes under the
``derisk`` namespace, as ECS asks for custom fields.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Final

from derisk import __version__
from derisk.detect.alert import Alert

ECS_VERSION: Final = "8.11.0"
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

#: Dotted field -> Python type(s) of its value, present in every document.
ECS_FIELDS: Final[dict[str, tuple[type, ...]]] = {
    "@timestamp": (str,),
    "ecs.version": (str,),
    "event.kind": (str,),
    "event.category": (list,),
    "event.type": (list,),
    "event.module": (str,),
    "event.dataset": (str,),
    "event.id": (str,),
    "event.severity": (int,),
    "event.risk_score": (float,),
    "rule.name": (str,),
    "rule.id": (str,),
    "rule.description": (str,),
    "rule.ruleset": (str,),
    "observer.vendor": (str,),
    "observer.product": (str,),
    "observer.type": (str,),
    "observer.version": (str,),
    "message": (str,),
    "related.ip": (list,),
    "derisk.alert_id": (str,),
    "derisk.kind": (str,),
    "derisk.severity": (str,),
    "derisk.score": (float,),
    "derisk.destination": (str,),
    "derisk.laws": (list,),
    "derisk.evidence": (dict,),
    "derisk.flow_ids": (list,),
    "derisk.flow_count": (int,),
}

#: Fields present only when known, with their types.
ECS_OPTIONAL: Final[dict[str, tuple[type, ...]]] = {
    "event.start": (str,),
    "event.end": (str,),
    "source.ip": (str,),
    "destination.ip": (str,),
    "destination.domain": (str,),
    "observer.name": (str,),
    "threat.framework": (str,),
    "threat.tactic.id": (list,),
    "threat.tactic.name": (list,),
    "threat.technique.id": (list,),
    "threat.technique.name": (list,),
    "derisk.system": (str,),
    "derisk.organisation": (str,),
    "derisk.controller": (str,),
    "derisk.jurisdiction": (str,),
    "derisk.jurisdiction_basis": (str,),
}


def _is_ip(value: str | None) -> bool:
    if not value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def to_ecs(alert: Alert, *, observer_name: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """One ECS document for ``alert`` (nested objects, as Elasticsearch ingests them)."""
    t = alert.target
    when = alert.last_seen or alert.first_seen or now or datetime.now(UTC)
    event: dict[str, Any] = {
        "kind": "alert",
        "category": ["network"],
        "type": ["connection"],
        "module": "derisk",
        "dataset": "derisk.alerts",
        "id": alert.alert_id,
        "severity": SEVERITY_NUMBER[alert.severity],
        "risk_score": round(float(alert.score) * 100.0, 1),
    }
    if alert.first_seen:
        event["start"] = alert.first_seen.isoformat()
    if alert.last_seen:
        event["end"] = alert.last_seen.isoformat()
    doc: dict[str, Any] = {
        "@timestamp": when.isoformat(),
        "ecs": {"version": ECS_VERSION},
        "event": event,
        "rule": {
            "name": alert.kind,
            "id": f"derisk.detect.{alert.kind}",
            "description": DESCRIPTIONS.get(alert.kind, alert.kind),
            "ruleset": "derisk",
        },
        "observer": {"vendor": "derisk", "product": "derisk", "type": "ids", "version": __version__},
        "message": alert.sentence,
    }
    if observer_name:
        doc["observer"]["name"] = observer_name
    if _is_ip(t.src_ip):
        doc["source"] = {"ip": t.src_ip}
    dest: dict[str, Any] = {}
    if _is_ip(t.dst_ip):
        dest["ip"] = t.dst_ip
    elif _is_ip(t.destination):
        dest["ip"] = t.destination
    domain = t.server_name or (t.destination if alert.kind == "dns-tunnel" else None)
    if domain:
        dest["domain"] = domain
    if dest:
        doc["destination"] = dest
    doc["related"] = {"ip": sorted({ip for ip in (t.src_ip, dest.get("ip")) if ip})}
    mapped = ATTACK.get(alert.kind)
    if mapped:
        doc["threat"] = {
            "framework": "MITRE ATT&CK",
            "tactic": {"id": [mapped[0]], "name": [mapped[1]]},
            "technique": {"id": [mapped[2]], "name": [mapped[3]]},
        }
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
    doc["derisk"] = ours
    return doc


def ecs_lines(alerts: Iterable[Alert], *, observer_name: str | None = None) -> Iterator[str]:
    """JSON lines (no trailing newline on each) for ``alerts``."""
    for alert in alerts:
        yield json.dumps(to_ecs(alert, observer_name=observer_name), ensure_ascii=False, sort_keys=True)


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
