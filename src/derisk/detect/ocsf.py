"""Alerts as OCSF Detection Findings (class 2004, OCSF 1.5.0), one JSON object per line.

One finding per alert, not one Network Activity (4001) per flow: a SIEM gets what derisk concluded,
with the network details of the flows behind it, and the flows stay in the workspace. The finding is
built and validated by ``py-ocsf-models`` (Prowler's maintained OCSF models); the network details that
library does not model yet (``evidences[].src_endpoint``, ``dst_endpoint``, ``connection_info``, OCSF's
own attributes of the Evidence Artifacts object) are added to its output. Every address and name of
the alert's flows is an observable; derisk's own fields (controller, jurisdiction, layers, laws) go
under ``unmapped.derisk``, as OCSF asks for source fields it has no attribute for.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Final, TypeGuard

from py_ocsf_models.events.findings.activity_id import ActivityID
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.events.findings.detection_finding_type_id import DetectionFindingTypeID
from py_ocsf_models.events.findings.severity_id import SeverityID
from py_ocsf_models.events.findings.status_id import StatusID
from py_ocsf_models.objects.analytic import Analytic
from py_ocsf_models.objects.evidence_artifacts import EvidenceArtifacts
from py_ocsf_models.objects.finding_info import FindingInformation
from py_ocsf_models.objects.metadata import Metadata
from py_ocsf_models.objects.mitre_attack import MITREAttack, Tactic, Technique
from py_ocsf_models.objects.observable import Observable, TypeID
from py_ocsf_models.objects.product import Product

from derisk import __version__
from derisk.detect.alert import Alert
from derisk.detect.ecs import ATTACK, CATEGORY, DESCRIPTIONS, TRANSPORT, controller_layer
from derisk.store.alert_flows import AlertFlows

OCSF_VERSION: Final = "1.5.0"

SEVERITY_ID: Final = {
    "low": SeverityID.Low,
    "medium": SeverityID.Medium,
    "high": SeverityID.High,
    "critical": SeverityID.Critical,
}


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _is_ip(value: str | None) -> TypeGuard[str]:
    if not value:
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _observables(alert: Alert, flows: AlertFlows) -> list[Observable]:
    t = alert.target
    srcs = sorted({ip for ip in (*flows.src_ips, t.src_ip) if _is_ip(ip)})
    dsts = sorted({ip for ip in (*flows.dst_ips, t.dst_ip) if _is_ip(ip)} - set(srcs))
    tunnel = t.destination if alert.kind == "dns-tunnel" else None
    names = sorted({n for n in (*flows.server_names, *flows.dst_domains, t.server_name, tunnel) if n})
    out = [Observable(name="evidences.src_endpoint.ip", type_id=TypeID.IP_Address, value=ip) for ip in srcs]
    out += [Observable(name="evidences.dst_endpoint.ip", type_id=TypeID.IP_Address, value=ip) for ip in dsts]
    out += [
        Observable(name="evidences.dst_endpoint.hostname", type_id=TypeID.Hostname, value=n) for n in names
    ]
    return out


def _network(alert: Alert, flows: AlertFlows) -> dict[str, Any]:
    """OCSF's Network Endpoint and Network Connection Information objects for the alert's flows."""
    t = alert.target
    src: dict[str, Any] = {}
    if _is_ip(t.src_ip):
        src["ip"] = t.src_ip
    dst: dict[str, Any] = {}
    if _is_ip(t.dst_ip):
        dst["ip"] = t.dst_ip
    elif len(flows.dst_ips) == 1 and _is_ip(flows.dst_ips[0]):
        dst["ip"] = flows.dst_ips[0]
    if t.server_name or alert.kind == "dns-tunnel":
        dst["hostname"] = t.server_name or t.destination
    if flows.dst_domains and len(flows.dst_domains) == 1:
        dst["domain"] = flows.dst_domains[0]
    if flows.dst_port is not None:
        dst["port"] = flows.dst_port
    if flows.dst_asn is not None:
        dst["autonomous_system"] = {"number": flows.dst_asn}
        if flows.dst_as_org:
            dst["autonomous_system"]["name"] = flows.dst_as_org
    if flows.dst_geo_country:
        dst["location"] = {"country": flows.dst_geo_country}
    if t.organisation:
        dst["owner"] = {"org": {"name": t.organisation}}
    out: dict[str, Any] = {}
    if src:
        out["src_endpoint"] = src
    if dst:
        out["dst_endpoint"] = dst
    if flows.protocol is not None:
        conn: dict[str, Any] = {"protocol_num": flows.protocol}
        if flows.protocol in TRANSPORT:
            conn["protocol_name"] = TRANSPORT[flows.protocol]
        # A DNS tunnel is seen at the resolver, not on the way out: its direction is not known.
        outbound = alert.kind != "dns-tunnel"
        conn["direction_id"], conn["direction"] = (2, "Outbound") if outbound else (0, "Unknown")
        out["connection_info"] = conn
    return out


def to_ocsf(alert: Alert, *, flows: AlertFlows | None = None, now: datetime | None = None) -> dict[str, Any]:
    """One OCSF Detection Finding for ``alert``, validated by py-ocsf-models, with the network details."""
    found = flows or AlertFlows()
    first = alert.first_seen or found.first_seen
    last = alert.last_seen or found.last_seen
    when = last or first or now or datetime.now().astimezone()
    attacks = None
    mapped = ATTACK.get(alert.kind)
    if mapped:
        attacks = [
            MITREAttack(
                tactic=Tactic(uid=mapped[0], name=mapped[1]),
                technique=Technique(uid=mapped[2], name=mapped[3]),
            )
        ]
    t = alert.target
    ours: dict[str, Any] = {
        "kind": alert.kind,
        "severity": alert.severity,
        "score": float(alert.score),
        "destination": t.destination,
        "system": t.system,
        "organisation": t.organisation,
        "controller": t.controller,
        "layer": controller_layer(t.controller, found),
        "jurisdiction": t.jurisdiction,
        "jurisdiction_basis": t.jurisdiction_basis,
        "laws": [law.to_json() for law in alert.laws],
        "flow_ids": list(alert.flow_ids),
        "flow_count": alert.flow_count,
        "flows_found": found.flows,
        "hosts": list(found.src_ips),
        "destinations": list(found.dst_ips),
        "dst_ports": list(found.dst_ports),
        "layers": [{"layer": la, "controller": c, "jurisdiction": j} for la, c, j in found.layers],
        "bytes_out": found.bytes_out,
        "bytes_in": found.bytes_in,
    }
    finding = DetectionFinding(
        activity_id=ActivityID.Create,
        activity_name="Create",
        type_uid=DetectionFindingTypeID.Create,
        type_name="Detection Finding: Create",
        severity_id=SEVERITY_ID[alert.severity],
        severity=SEVERITY_ID[alert.severity].name,
        status_id=StatusID.New,
        status="New",
        time=_ms(when),
        start_time=_ms(first) if first else None,
        end_time=_ms(last) if last else None,
        count=found.flows or alert.flow_count or None,
        confidence_score=round(float(alert.score) * 100),
        message=alert.sentence,
        metadata=Metadata(
            product=Product(name="derisk", vendor_name="derisk", version=__version__),
            version=OCSF_VERSION,
            uid=alert.alert_id,
            labels=[alert.kind],
        ),
        finding_info=FindingInformation(
            uid=alert.alert_id,
            title=f"{alert.kind}: {t.destination}",
            desc=DESCRIPTIONS.get(alert.kind, alert.kind),
            types=[CATEGORY.get(alert.kind, "other")],
            analytic=Analytic(
                name=alert.kind,
                uid=f"derisk.detect.{alert.kind}",
                type_id=1,
                type="Rule",
                category=CATEGORY.get(alert.kind, "other"),
            ),
            attacks=attacks,
            data_sources=["network flows"],
            first_seen_time=_ms(first) if first else None,
            last_seen_time=_ms(last) if last else None,
        ),
        observables=_observables(alert, found) or None,
        evidences=[EvidenceArtifacts(name=alert.kind, data=dict(alert.evidence))],
        unmapped={"derisk": {k: v for k, v in ours.items() if v not in (None, [], "")}},
    )
    doc: dict[str, Any] = finding.model_dump(mode="json", exclude_none=True)
    doc["evidences"][0].update(_network(alert, found))
    return doc


def ocsf_lines(alerts: Iterable[Alert], *, flows: Mapping[str, AlertFlows] | None = None) -> Iterator[str]:
    """JSON lines (no trailing newline on each) for ``alerts``; ``flows`` maps alert ids to their flows."""
    for alert in alerts:
        summary = (flows or {}).get(alert.alert_id)
        yield json.dumps(to_ocsf(alert, flows=summary), ensure_ascii=False, sort_keys=True)
