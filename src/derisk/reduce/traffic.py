"""The observed traffic behind each declared dependency, from a Watch workspace.

A declared dependency is *confirmed* when the system sent traffic to a destination attributed to
the same ultimate controller. A declared dependency with no such traffic, and traffic from a
register system to a controller the register does not declare for it, are both findings.
Aggregation is vectorised (Arrow group-by); the comparison then runs over the few groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from derisk.i18n.data import T_, fill
from derisk.reduce.findings import Finding
from derisk.reduce.jurisdictions import EuMembers, eu_members
from derisk.reduce.register import ROLE_LABELS, Register, Supplier

#: Flow columns this module reads.
FLOW_COLUMNS: Final = [
    "direction",
    "system",
    "dst_org_id",
    "dst_org",
    "dst_controller_id",
    "dst_controller",
    "dst_jurisdiction",
    "bytes_out",
]
_KEYS: Final = FLOW_COLUMNS[1:-1]
#: Flows with an external party (internal flows, e.g. to the site's own resolver, are no dependency).
_EXTERNAL: Final = ("outbound", "inbound")


@dataclass(frozen=True)
class TrafficGroup:
    """Flows from one system to one destination organisation and its controller."""

    system: str
    org_id: str | None
    org: str | None
    controller_id: str | None
    controller: str | None
    jurisdiction: str | None
    flows: int
    bytes_out: int

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "org_id": self.org_id,
            "org": self.org,
            "controller_id": self.controller_id,
            "controller": self.controller,
            "jurisdiction": self.jurisdiction,
            "flows": self.flows,
            "bytes_out": self.bytes_out,
        }

    def destination(self) -> str:
        """The destination organisation and, when different, who controls it."""
        if self.org and self.controller and self.org != self.controller:
            return fill(
                T_("{supplier} (controlled by {controller}, {jurisdiction})"),
                supplier=self.org,
                controller=self.controller,
                jurisdiction=self.jurisdiction or "jurisdiction unknown",
            )
        return f"{self.controller or self.org} ({self.jurisdiction or 'jurisdiction unknown'})"


@dataclass(frozen=True)
class Confirmation:
    """A declared dependency and the traffic that confirms it."""

    system: str
    role: str
    supplier: str
    controller: str | None
    jurisdiction: str | None
    flows: int
    bytes_out: int
    orgs: tuple[str, ...] = ()

    def sentence(self) -> str:
        return fill(
            T_(
                "{system} sent {size} in {flows} flows to {where}, controlled by {controller} "
                "({jurisdiction}), confirming its {role_label} {supplier}."
            ),
            system=self.system,
            size=human_bytes(self.bytes_out),
            flows=self.flows,
            where=", ".join(self.orgs) or "destinations",
            controller=self.controller,
            jurisdiction=self.jurisdiction or "jurisdiction unknown",
            role_label=ROLE_LABELS[self.role],
            supplier=self.supplier,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "role": self.role,
            "supplier": self.supplier,
            "controller": self.controller,
            "jurisdiction": self.jurisdiction,
            "flows": self.flows,
            "bytes_out": self.bytes_out,
            "orgs": list(self.orgs),
            "sentence": self.sentence(),
        }


@dataclass(frozen=True)
class TrafficReport:
    groups: tuple[TrafficGroup, ...]
    confirmations: tuple[Confirmation, ...]
    findings: tuple[Finding, ...]
    bytes_out_by_jurisdiction: dict[str, int]
    workspace: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "available": True,
            "workspace": self.workspace,
            "confirmed": [c.to_json() for c in self.confirmations],
            "groups": [g.to_json() for g in self.groups],
            "bytes_out_by_jurisdiction": dict(
                sorted(self.bytes_out_by_jurisdiction.items(), key=lambda kv: (-kv[1], kv[0]))
            ),
        }


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def group_flows(flows: pa.Table, systems: list[str]) -> list[TrafficGroup]:
    """Flows and bytes sent per (system, destination organisation, controller), for the given systems."""
    missing = sorted(set(FLOW_COLUMNS) - set(flows.column_names))
    if missing:
        raise ValueError(f"flow table lacks columns: {', '.join(missing)}")
    keep = pc.and_(
        pc.is_in(flows["system"], value_set=pa.array(systems, pa.string())),
        pc.is_in(flows["direction"], value_set=pa.array(_EXTERNAL, pa.string())),
    )
    table = flows.filter(keep).select([*_KEYS, "bytes_out"])
    table = table.set_column(len(_KEYS), "bytes_out", pc.fill_null(table["bytes_out"], 0))
    grouped = table.group_by(_KEYS, use_threads=False)
    agg = grouped.aggregate([("bytes_out", "sum"), ([], "count_all")])
    rows = agg.to_pylist()
    out = [
        TrafficGroup(
            system=r["system"],
            org_id=r["dst_org_id"],
            org=r["dst_org"],
            controller_id=r["dst_controller_id"],
            controller=r["dst_controller"],
            jurisdiction=r["dst_jurisdiction"],
            flows=int(r["count_all"]),
            bytes_out=int(r["bytes_out_sum"] or 0),
        )
        for r in rows
    ]
    return sorted(out, key=lambda g: (g.system, -g.bytes_out, g.controller or ""))


def _matches(supplier: Supplier, group: TrafficGroup) -> bool:
    """Traffic confirms a supplier when it goes to the same ultimate controller, or, when that
    controller is a state (which controls too many companies to prove anything), to an organisation
    on the supplier's own control chain below the state."""
    res = supplier.resolved
    if res is None or (group.controller_id is None and group.controller is None):
        return False
    if res.controller_is_state:
        return group.org_id is not None and group.org_id in res.chain_ids
    if res.controller_id and group.controller_id and res.controller_id == group.controller_id:
        return True
    names = {n.casefold() for n in (res.controller_name, res.entity_name) if n}
    return group.controller is not None and group.controller.casefold() in names


def compare(
    register: Register, flows: pa.Table, *, workspace: str | None = None, eu: EuMembers | None = None
) -> TrafficReport:
    """Compare the register with the observed flows of its systems."""
    eu = eu or eu_members()
    systems = register.used_systems()
    groups = group_flows(flows, systems)
    confirmations: list[Confirmation] = []
    findings: list[Finding] = []
    matched: set[int] = set()
    for system in systems:
        sys_groups = [(i, g) for i, g in enumerate(groups) if g.system == system]
        slots = register.slots_of(system)
        if not sys_groups:
            if slots:
                findings.append(
                    Finding(
                        kind="system-without-traffic",
                        severity="low",
                        subject=system,
                        sentence=fill(
                            T_(
                                "The workspace holds no flows from {system}: its declared dependencies "
                                "cannot be checked against traffic (check its hosts in the site file, or "
                                "capture where it runs)."
                            ),
                            system=system,
                        ),
                        evidence={"system": system},
                    )
                )
            continue
        for slot in slots:
            for sup in slot.suppliers:
                if not sup.known:
                    continue
                hits = [(i, g) for i, g in sys_groups if _matches(sup, g)]
                matched.update(i for i, _ in hits)
                if hits:
                    confirmations.append(
                        Confirmation(
                            system=system,
                            role=slot.role,
                            supplier=sup.name,
                            controller=sup.controller_name,
                            jurisdiction=sup.jurisdiction,
                            flows=sum(g.flows for _, g in hits),
                            bytes_out=sum(g.bytes_out for _, g in hits),
                            orgs=tuple(dict.fromkeys(g.org for _, g in hits if g.org)),
                        )
                    )
                else:
                    findings.append(
                        Finding(
                            kind="declared-without-traffic",
                            severity="info" if slot.role == "hardware" else "low",
                            subject=f"{system}/{slot.role}",
                            sentence=fill(
                                T_(
                                    "{system} declares {supplier} as its {role_label} (controlled by "
                                    "{controller}, {jurisdiction}), but the workspace shows no traffic from it "
                                    "to that controller: check that the dependency is still real or that the "
                                    "capture covers it."
                                ),
                                system=system,
                                supplier=sup.name,
                                role_label=ROLE_LABELS[slot.role],
                                controller=sup.controller_name,
                                jurisdiction=sup.jurisdiction or "jurisdiction unknown",
                            ),
                            evidence={"system": system, "role": slot.role, "supplier": sup.name},
                        )
                    )
        unattributed = [g for _, g in sys_groups if g.controller_id is None and g.controller is None]
        if unattributed:
            flows, sent = sum(g.flows for g in unattributed), sum(g.bytes_out for g in unattributed)
            findings.append(
                Finding(
                    kind="unattributed-traffic",
                    severity="low",
                    subject=system,
                    sentence=fill(
                        T_(
                            "{system} sent {size} in {flows} flows to destinations with no attributed "
                            "controller: they cannot be compared with the register (see derisk analyze)."
                        ),
                        system=system,
                        size=human_bytes(sent),
                        flows=flows,
                    ),
                    evidence={"system": system, "flows": flows, "bytes_out": sent},
                )
            )
        for i, g in sys_groups:
            if i in matched or (g.controller_id is None and g.controller is None):
                continue
            severity = (
                "medium"
                if eu.is_third_country(g.jurisdiction)
                else "info"
                if eu.is_eu(g.jurisdiction)
                else "low"
            )
            findings.append(
                Finding(
                    kind="undeclared-traffic",
                    severity=severity,
                    subject=f"{system}->{g.org or g.controller}",
                    sentence=fill(
                        T_(
                            "{system} sent {size} in {flows} flows to {destination_sentence}, which the register "
                            "does not list among {system}'s suppliers: declare the dependency or stop the "
                            "traffic."
                        ),
                        system=system,
                        size=human_bytes(g.bytes_out),
                        flows=g.flows,
                        destination_sentence=g.destination(),
                    ),
                    evidence=g.to_json(),
                )
            )
    by_jurisdiction: dict[str, int] = {}
    for g in groups:
        key = g.jurisdiction or "unknown"
        by_jurisdiction[key] = by_jurisdiction.get(key, 0) + g.bytes_out
    return TrafficReport(
        groups=tuple(groups),
        confirmations=tuple(confirmations),
        findings=tuple(findings),
        bytes_out_by_jurisdiction=by_jurisdiction,
        workspace=workspace,
    )
