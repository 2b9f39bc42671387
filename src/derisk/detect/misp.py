"""Alerts as one MISP event (PyMISP), for exchange with a CERT or another authority.

The event carries, per alert, a ``network-connection`` object (internal host, destination address and
name, first and last seen, flow count), the alert's evidence as an ``annotation`` object (plain text:
the sentence, the compelling laws, the evidence as JSON), and the controller as an ``organization``
object whose description names the controlling jurisdiction; objects reference each other
(``annotates``, ``attributed-to``). Destination addresses and names are also event attributes
(``ip-dst``, ``hostname``/``domain``) so that MISP correlates them. Tags: the TLP level (TLP 2.0,
``tlp:amber`` by default), the alert's severity and kind (``derisk:severity="…"``, ``derisk:kind="…"``),
the controlling jurisdiction, and the MITRE ATT&CK technique where a kind has one. ``to_ids`` stays
false: an attributed destination is a finding to examine, not a detection signature.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final

from derisk import __version__
from derisk.detect.alert import Alert
from derisk.detect.ecs import ATTACK
from derisk.detect.exchange import (
    DEFAULT_TLP,
    destination_domains,
    destination_ips,
    destination_names,
    evidence_text,
    short,
    stable_uuid,
)

if TYPE_CHECKING:
    from pymisp import MISPEvent, MISPObject

    from derisk.store.alert_flows import AlertFlows

#: derisk severity -> MISP threat level (1 high, 2 medium, 3 low, 4 undefined).
THREAT_LEVEL: Final = {"critical": 1, "high": 1, "medium": 2, "low": 3}
#: IANA protocol number -> MISP's layer4-protocol text.
TRANSPORT: Final = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMPv6", 132: "SCTP"}


def _tag(kind: str, value: str) -> str:
    return f'derisk:{kind}="{value}"'


def _attack_tag(kind: str) -> str | None:
    found = ATTACK.get(kind)
    return f'misp-galaxy:mitre-attack-pattern="{found[3]} - {found[2]}"' if found else None


def _when(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None


def _controller(event: MISPEvent, alert: Alert, seen: dict[str, MISPObject]) -> MISPObject | None:
    from pymisp import MISPObject

    name = short(alert.controller)
    if name is None:
        return None
    key = f"{name}\x1f{alert.jurisdiction or ''}"
    if key in seen:
        return seen[key]
    org = MISPObject("organization", standalone=False, strict=True)
    org.uuid = stable_uuid("misp", "controller", key)
    org.add_attribute("name", value=name)
    org.add_attribute("role", value="ultimate controller")
    juris = alert.jurisdiction or "unknown"
    basis = f" (basis: {alert.target.jurisdiction_basis})" if alert.target.jurisdiction_basis else ""
    org.add_attribute("description", value=f"Controlling jurisdiction: {juris}{basis}.")
    if alert.target.organisation and alert.target.organisation != alert.controller:
        org.add_attribute("alias", value=short(alert.target.organisation))
    event.add_object(org)
    seen[key] = org
    return org


def _connection(
    alert: Alert, ips: list[str], names: list[str], tags: list[str], flows: AlertFlows | None
) -> MISPObject | None:
    """The alert's ``network-connection`` object, or None when it has neither address nor time."""
    from pymisp import MISPObject

    conn = MISPObject("network-connection", standalone=False, strict=True)
    conn.uuid = stable_uuid("misp", "connection", alert.alert_id)
    conn.comment = short(f"derisk alert {alert.alert_id}: {alert.kind}, {alert.severity}", 512) or ""
    values: list[tuple[str, Any]] = [
        ("ip-src", alert.target.src_ip if alert.target.src_ip else None),
        ("ip-dst", ips[0] if ips else None),
        ("hostname-dst", names[0] if names else None),
        ("first-packet-seen", _when(alert.first_seen)),
        ("last-packet-seen", _when(alert.last_seen)),
        ("count", (flows.flows if flows else 0) or alert.flow_count or None),
    ]
    if flows is not None:
        values += [
            ("dst-port", flows.dst_port),
            ("layer4-protocol", TRANSPORT.get(flows.protocol) if flows.protocol is not None else None),
            ("src-bytes-count", flows.bytes_out or None),
            ("dst-bytes-count", flows.bytes_in or None),
            ("src-packets-count", flows.packets_out or None),
            ("dst-packets-count", flows.packets_in or None),
        ]
    if not any(v is not None for r, v in values if r in ("ip-src", "ip-dst", "first-packet-seen")):
        return None
    for relation, value in values:
        if value is None:
            continue
        attr = conn.add_attribute(relation, value=value, to_ids=False)
        if attr is not None and relation in ("ip-dst", "hostname-dst"):
            for tag in tags:
                attr.add_tag(tag)
    return conn


def misp_event(
    alerts: Sequence[Alert],
    *,
    tlp: str = DEFAULT_TLP,
    site: str | None = None,
    today: date | None = None,
    flows: Mapping[str, AlertFlows] | None = None,
) -> MISPEvent:
    """One MISP event holding ``alerts`` (see the module's description); ``flows``: alert id -> the
    flows behind it (:func:`derisk.store.alert_flows.alert_flows`), for every destination and the
    ports, transport and bytes."""
    from pymisp import MISPEvent, MISPObject

    event = MISPEvent()
    ids = sorted(a.alert_id for a in alerts)
    event.uuid = stable_uuid("misp", "event", site or "", *ids)
    where = f" at {short(site, 120)}" if site else ""
    event.info = f"derisk {__version__}: {len(alerts)} alert(s){where}"
    event.distribution = 0  # this organisation only; the sender widens it on its platform
    event.analysis = 0
    event.published = False  # the receiving platform publishes
    ranks = [THREAT_LEVEL.get(a.severity, 4) for a in alerts]
    event.threat_level_id = min(ranks) if ranks else 4
    firsts = [a.first_seen for a in alerts if a.first_seen is not None]
    event.set_date(today or (min(firsts).astimezone(UTC).date() if firsts else datetime.now(UTC).date()))
    event.add_tag(f"tlp:{tlp}")
    event.add_tag('derisk:producer="derisk"')
    controllers: dict[str, MISPObject] = {}
    seen_values: set[tuple[str, str]] = set()
    for alert in alerts:
        behind = flows.get(alert.alert_id) if flows else None
        ips, names = destination_ips(alert, behind), destination_names(alert, behind)
        domains = destination_domains(alert, behind)
        tags = [_tag("severity", alert.severity), _tag("kind", alert.kind)]
        if alert.jurisdiction:
            tags.append(_tag("jurisdiction", short(alert.jurisdiction, 64) or ""))
        attack = _attack_tag(alert.kind)
        if attack:
            tags.append(attack)
        conn = _connection(alert, ips, names or domains, tags, behind)
        if conn is not None:
            event.add_object(conn)
        note = MISPObject("annotation", standalone=False, strict=True)
        note.uuid = stable_uuid("misp", "annotation", alert.alert_id)
        note.add_attribute("text", value=evidence_text(alert))
        note.add_attribute("type", value="derisk alert evidence")
        note.add_attribute("format", value="text/plain")
        if conn is not None:
            note.add_reference(conn.uuid, "annotates")
        event.add_object(note)
        org = _controller(event, alert, controllers)
        if org is not None:
            (conn or note).add_reference(org.uuid, "attributed-to")
        comment = short(f"alert {alert.alert_id} ({alert.kind}, {alert.severity})", 512) or ""
        for typ, values in (("ip-dst", ips), ("hostname", names), ("domain", domains)):
            for value in values:
                if (typ, value) in seen_values:
                    continue
                seen_values.add((typ, value))
                added = event.add_attribute(typ, value, to_ids=False, comment=comment)
                for attr in added if isinstance(added, list) else [added]:
                    for tag in tags:
                        attr.add_tag(tag)
    return event


def misp_json(event: MISPEvent) -> str:
    """The event as MISP's import format: ``{"Event": {...}}``."""
    return json.dumps({"Event": json.loads(event.to_json())}, indent=2, ensure_ascii=False) + "\n"
