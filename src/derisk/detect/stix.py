"""Alerts as a STIX 2.1 bundle (the ``stix2`` library), for exchange with a CERT or another authority.

Per alert: an ``observed-data`` with the destination addresses and host names (``ipv4-addr``,
``ipv6-addr``, ``domain-name``) between the alert's first and last flow; one ``indicator`` per destination
(``[ipv4-addr:value = '…']``), ``based-on`` that observation; the controller as an ``identity``
(organisation) ``located-at`` a ``location`` (the controlling jurisdiction's country) and
``related-to`` from each indicator; and a ``note`` with the evidence as plain text. Labels carry the
severity and kind (``severity:critical``, ``kind:beacon``). Every object bears the TLP marking (TLP:AMBER
by default) and is created by a ``derisk`` identity (the same id in every export). Domain objects and
relationships get random UUIDv4 ids, as STIX 2.1 asks (section 2.9); observables (addresses, names)
get the deterministic ids STIX defines for them. Indicators describe where traffic went, not
that it is malicious: their type is ``anomalous-activity``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from derisk import __version__
from derisk.detect.alert import Alert
from derisk.detect.exchange import (
    DEFAULT_TLP,
    destination_domains,
    destination_ips,
    destination_names,
    evidence_text,
    short,
)

if TYPE_CHECKING:
    from derisk.store.alert_flows import AlertFlows

#: TLP 2.0 level -> the STIX 2.1 TLP marking the ``stix2`` library defines (TLP 1.0 names;
#: ``amber+strict`` has no STIX 2.1 predefined marking and is exported as TLP:AMBER).
TLP_MARKING: Final = {
    "clear": "TLP_WHITE",
    "green": "TLP_GREEN",
    "amber": "TLP_AMBER",
    "amber+strict": "TLP_AMBER",
    "red": "TLP_RED",
}


#: The derisk identity that creates every object: one UUIDv4, generated once, the same in every export.
PRODUCER_ID: Final = "identity--8d0c5b1e-3f4a-4c2e-9b7d-6a1e2f3c4d5e"


def _literal(value: str) -> str:
    """``value`` as a STIX pattern string literal (quotes and backslashes escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _times(alert: Alert, now: datetime) -> tuple[datetime, datetime]:
    first = alert.first_seen.astimezone(UTC) if alert.first_seen else now
    last = alert.last_seen.astimezone(UTC) if alert.last_seen else first
    return first, max(first, last)


class _Builder:
    def __init__(self, tlp: str, now: datetime) -> None:
        import stix2

        self.stix2 = stix2
        self.marking = getattr(stix2, TLP_MARKING[tlp])
        self.now = now
        self.producer = stix2.Identity(
            id=PRODUCER_ID,
            name="derisk",
            identity_class="system",
            description=f"derisk {__version__}: attribution and detection of network flows",
            created=now,
            modified=now,
            object_marking_refs=[self.marking],
        )
        self.objects: dict[str, Any] = {self.marking.id: self.marking, self.producer.id: self.producer}
        self.ids: dict[tuple[str, ...], str] = {}

    def sid(self, kind: str, *parts: str) -> str:
        """One random (UUIDv4, as STIX 2.1 asks of SDOs and SROs) id per thing within this bundle."""
        return self.ids.setdefault((kind, *parts), f"{kind}--{uuid.uuid4()}")

    def common(self) -> dict[str, Any]:
        return {
            "created_by_ref": self.producer.id,
            "created": self.now,
            "modified": self.now,
            "object_marking_refs": [self.marking],
        }

    def add(self, obj: Any) -> Any:
        self.objects.setdefault(obj.id, obj)
        return self.objects[obj.id]

    def relate(self, source: str, rel: str, target: str, description: str | None = None) -> None:
        extra = {"description": description} if description else {}
        self.add(
            self.stix2.Relationship(
                id=self.sid("relationship", source, rel, target),
                relationship_type=rel,
                source_ref=source,
                target_ref=target,
                **extra,
                **self.common(),
            )
        )

    def controller(self, alert: Alert) -> str | None:
        name = short(alert.controller)
        if name is None:
            return None
        juris = alert.jurisdiction or "unknown"
        basis = f" (basis: {alert.target.jurisdiction_basis})" if alert.target.jurisdiction_basis else ""
        org = self.add(
            self.stix2.Identity(
                id=self.sid("identity", "controller", name, juris),
                name=name,
                identity_class="organization",
                description=f"Ultimate controller; controlling jurisdiction: {juris}{basis}.",
                **self.common(),
            )
        )
        country = alert.jurisdiction
        if country and len(country) == 2 and country.isalpha():
            place = self.add(
                self.stix2.Location(
                    id=self.sid("location", country.upper()), country=country.upper(), **self.common()
                )
            )
            self.relate(org.id, "located-at", place.id, "controlling jurisdiction")
        return str(org.id)

    def alert(self, alert: Alert, flows: AlertFlows | None) -> None:
        s = self.stix2
        labels = [f"severity:{alert.severity}", f"kind:{alert.kind}"]
        first, last = _times(alert, self.now)
        observables: list[tuple[str, Any]] = []
        for ip in destination_ips(alert, flows):
            cls = s.IPv6Address if ":" in ip else s.IPv4Address
            observables.append((f"{cls._type}:value = {_literal(ip)}", self.add(cls(value=ip))))
        for name in dict.fromkeys([*destination_names(alert, flows), *destination_domains(alert, flows)]):
            observables.append((f"domain-name:value = {_literal(name)}", self.add(s.DomainName(value=name))))
        refs: list[str] = []
        controller = self.controller(alert)
        if controller:
            refs.append(controller)
        if observables:
            seen = self.add(
                s.ObservedData(
                    id=self.sid("observed-data", alert.alert_id),
                    first_observed=first,
                    last_observed=last,
                    number_observed=max(1, flows.flows if flows else 0, alert.flow_count),
                    object_refs=[o.id for _, o in observables],
                    labels=labels,
                    **self.common(),
                )
            )
            refs.append(seen.id)
            for pattern, obj in observables:
                ind = self.add(
                    s.Indicator(
                        id=self.sid("indicator", alert.alert_id, obj.id),
                        name=short(f"{alert.kind} ({alert.severity}): {obj.value}", 300),
                        pattern=f"[{pattern}]",
                        description=short(f"derisk alert {alert.alert_id}: {alert.summary}", 1000),
                        pattern_type="stix",
                        valid_from=first,
                        indicator_types=["anomalous-activity"],
                        labels=labels,
                        **self.common(),
                    )
                )
                refs.append(ind.id)
                self.relate(ind.id, "based-on", seen.id)
                if controller:
                    self.relate(ind.id, "related-to", controller, "destination controlled by")
        if refs:
            self.add(
                s.Note(
                    id=self.sid("note", alert.alert_id),
                    abstract=short(f"derisk alert {alert.alert_id}: {alert.summary}", 300),
                    content=evidence_text(alert),
                    authors=["derisk"],
                    object_refs=refs,
                    labels=labels,
                    **self.common(),
                )
            )


def stix_bundle(
    alerts: Sequence[Alert],
    *,
    tlp: str = DEFAULT_TLP,
    now: datetime | None = None,
    flows: Mapping[str, AlertFlows] | None = None,
) -> Any:
    """A ``stix2.Bundle`` of ``alerts`` (see the module's description); ``flows`` as for MISP."""
    import stix2

    builder = _Builder(tlp, (now or datetime.now(UTC)).astimezone(UTC))
    for alert in alerts:
        builder.alert(alert, flows.get(alert.alert_id) if flows else None)
    return stix2.Bundle(objects=list(builder.objects.values()), id=f"bundle--{uuid.uuid4()}")


def stix_json(bundle: Any) -> str:
    return str(bundle.serialize(pretty=True, ensure_ascii=False)) + "\n"
