"""Measures of a dependency register: shares by jurisdiction, concentration, single points, risk score.

Definitions (also in docs/reduce.md; tests/test_reduce_measures.py checks them on hand-computed registers):

* A **dependency edge** is (function, system, role, supplier) for every system a function needs and
  every supplier named for a role of that system. An edge's **weight** is 1/n when the role names n
  alternative suppliers, so that a role always weighs 1 per function.
* **Edge share** of jurisdiction J: the summed weight of resolved edges whose supplier is controlled
  from J, divided by the summed weight of all resolved edges. Unresolved edges (unknown suppliers)
  are left out of the shares and counted in ``unresolved_edges``.
* **HHI** (Herfindahl-Hirschman index of dependency by jurisdiction): the sum over jurisdictions of
  the squared edge shares, between 1/(number of jurisdictions) and 1 (all edges in one jurisdiction).
* A function **depends on** J when some system it needs has a role whose suppliers are all
  controlled from J: the function cannot run without J. **Dependency share** of J: functions that
  depend on J divided by all functions.
* A function is **exposed to** J when one of its edges is controlled from J and that role has no
  egress control (hosting always counts: the data lives there). **Exposure share** likewise.
* A **single point of dependency** is a role of a needed system filled by exactly one resolved
  supplier. It is *mitigated* when continuity is secured (escrow / continuity guarantees).
* **Risk score** = 2·(D + T) + (E + S), between 0 and 6, each letter between 0 and 1: D the share
  of functions depending on some third-country (non-EU) jurisdiction, T the third-country edge
  share, E the share of functions exposed to a third-country jurisdiction, S the share of needed
  roles that are unmitigated third-country single points. Dependency weighs twice exposure.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from derisk.i18n.data import T_, fill
from derisk.reduce.jurisdictions import EuMembers, eu_members
from derisk.reduce.register import ROLE_LABELS, Register, Slot, Supplier

#: Digits kept in shares and scores (JSON and reports); computations use full precision.
DIGITS = 6


@dataclass(frozen=True)
class Edge:
    function: str
    system: str
    role: str
    supplier: Supplier
    weight: float

    @property
    def jurisdiction(self) -> str | None:
        return self.supplier.jurisdiction


@dataclass(frozen=True)
class SinglePoint:
    system: str
    role: str
    supplier: str
    controller: str | None
    jurisdiction: str | None
    functions: tuple[str, ...]
    mitigated: bool
    third_country: bool

    def sentence(self) -> str:
        if self.controller and self.controller != self.supplier:
            who = fill(
                T_("{supplier} (controlled by {controller}, {jurisdiction})"),
                supplier=self.supplier,
                controller=self.controller,
                jurisdiction=self.jurisdiction,
            )
        elif self.jurisdiction:
            who = f"{self.supplier} ({self.jurisdiction})"
        else:
            who = self.supplier
        template = (
            T_(
                "{who_sentence} is the only {role_label} of {system}, which {functions} cannot do "
                "without. Continuity is secured (escrow or guarantees)."
            )
            if self.mitigated
            else T_(
                "{who_sentence} is the only {role_label} of {system}, which {functions} cannot do without."
            )
        )
        return fill(
            template,
            who_sentence=who,
            role_label=ROLE_LABELS[self.role],
            system=self.system,
            functions=", ".join(self.functions),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "role": self.role,
            "supplier": self.supplier,
            "controller": self.controller,
            "jurisdiction": self.jurisdiction,
            "functions": list(self.functions),
            "mitigated": self.mitigated,
            "third_country": self.third_country,
            "sentence": self.sentence(),
        }


@dataclass(frozen=True)
class FunctionMeasure:
    name: str
    systems: tuple[str, ...]
    depends_on: tuple[str, ...]
    exposed_to: tuple[str, ...]
    edge_shares: dict[str, float]
    hhi: float | None
    unresolved_edges: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "systems": list(self.systems),
            "depends_on": list(self.depends_on),
            "exposed_to": list(self.exposed_to),
            "edge_shares": _rounded(self.edge_shares),
            "hhi": None if self.hhi is None else round(self.hhi, DIGITS),
            "unresolved_edges": self.unresolved_edges,
        }


@dataclass(frozen=True)
class Measures:
    function_count: int
    edge_count: int
    unresolved_edges: int
    edge_shares: dict[str, float]
    hhi: float | None
    dependency_shares: dict[str, float]
    exposure_shares: dict[str, float]
    third_country_dependency: float
    third_country_exposure: float
    third_country_edge_share: float
    single_point_share: float
    single_points: tuple[SinglePoint, ...]
    functions: tuple[FunctionMeasure, ...]

    @property
    def risk_score(self) -> float:
        """2·(D + T) + (E + S): the score a de-risking plan lowers (see the module docstring)."""
        dependency = self.third_country_dependency + self.third_country_edge_share
        return 2 * dependency + self.third_country_exposure + self.single_point_share

    def headline(self) -> dict[str, Any]:
        """The figures a plan step shows before and after."""
        return {
            "risk_score": round(self.risk_score, DIGITS),
            "hhi": None if self.hhi is None else round(self.hhi, DIGITS),
            "third_country_dependency": round(self.third_country_dependency, DIGITS),
            "third_country_exposure": round(self.third_country_exposure, DIGITS),
            "third_country_edge_share": round(self.third_country_edge_share, DIGITS),
            "single_point_share": round(self.single_point_share, DIGITS),
            "dependency_shares": _rounded(self.dependency_shares),
            "edge_shares": _rounded(self.edge_shares),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.headline(),
            "function_count": self.function_count,
            "edge_count": self.edge_count,
            "unresolved_edges": self.unresolved_edges,
            "exposure_shares": _rounded(self.exposure_shares),
            "single_points": [p.to_json() for p in self.single_points],
            "functions": [f.to_json() for f in self.functions],
        }


def _rounded(shares: dict[str, float]) -> dict[str, float]:
    return {k: round(v, DIGITS) for k, v in sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))}


def edges(register: Register) -> list[Edge]:
    """Every dependency edge of the register, in function, system and role order."""
    out: list[Edge] = []
    for function in register.functions:
        for system in function.systems:
            for slot in register.slots_of(system):
                weight = 1.0 / len(slot.suppliers)
                out.extend(Edge(function.name, system, slot.role, s, weight) for s in slot.suppliers)
    return out


def shares(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()} if total > 0 else {}


def hhi(share_map: dict[str, float]) -> float | None:
    """Herfindahl-Hirschman index: the sum of squared shares (None when there is nothing to share)."""
    return sum(v * v for v in share_map.values()) if share_map else None


@dataclass(frozen=True)
class _SlotSummary:
    """What one role of one system contributes to every function that needs the system."""

    sole: str | None  # the one jurisdiction all suppliers are controlled from, if any
    exposes: frozenset[str]
    weights: tuple[tuple[str, float], ...]
    edges: int
    unresolved: int


@lru_cache(maxsize=65_536)
def _summary(slot: Slot) -> _SlotSummary:
    found = {s.jurisdiction for s in slot.suppliers}
    weight = 1.0 / len(slot.suppliers)
    weights: dict[str, float] = defaultdict(float)
    for s in slot.suppliers:
        if s.jurisdiction is not None:
            weights[s.jurisdiction] += weight
    exposing = slot.role == "hosting" or not slot.egress_controlled
    return _SlotSummary(
        sole=next(iter(found)) if len(found) == 1 else None,
        exposes=frozenset(j for j in found if j is not None) if exposing else frozenset(),
        weights=tuple(sorted(weights.items())),
        edges=len(slot.suppliers),
        unresolved=sum(1 for s in slot.suppliers if s.jurisdiction is None),
    )


@dataclass(frozen=True)
class FunctionPart:
    """One function's contribution to the site measures (reused when a plan changes other systems)."""

    measure: FunctionMeasure
    weights: tuple[tuple[str, float], ...]
    edges: int
    third_dependent: bool
    third_exposed: bool


def function_parts(
    register: Register, names: set[str] | None = None, eu: EuMembers | None = None
) -> dict[str, FunctionPart]:
    """Per-function contributions, for all functions or only those in ``names``."""
    eu = eu or eu_members()
    out: dict[str, FunctionPart] = {}
    for function in register.functions:
        if names is not None and function.name not in names:
            continue
        summaries = [_summary(slot) for system in function.systems for slot in register.slots_of(system)]
        f_weights: dict[str, float] = defaultdict(float)
        for x in summaries:
            for j, w in x.weights:
                f_weights[j] += w
        f_shares = shares(f_weights)
        depends = tuple(sorted({x.sole for x in summaries if x.sole is not None}))
        exposes = tuple(sorted(set().union(*(x.exposes for x in summaries))))
        out[function.name] = FunctionPart(
            measure=FunctionMeasure(
                name=function.name,
                systems=function.systems,
                depends_on=depends,
                exposed_to=exposes,
                edge_shares=f_shares,
                hhi=hhi(f_shares),
                unresolved_edges=sum(x.unresolved for x in summaries),
            ),
            weights=tuple(f_weights.items()),
            edges=sum(x.edges for x in summaries),
            third_dependent=any(eu.is_third_country(j) for j in depends),
            third_exposed=any(eu.is_third_country(j) for j in exposes),
        )
    return out


def measure(
    register: Register, eu: EuMembers | None = None, parts: dict[str, FunctionPart] | None = None
) -> Measures:
    """Compute every measure of the register (pure: no I/O).

    ``parts`` may hold precomputed :func:`function_parts` of this very register (a plan passes the
    unchanged functions' parts from the previous state); missing ones are computed.
    """
    eu = eu or eu_members()
    parts = parts if parts is not None else function_parts(register, eu=eu)
    per_function: list[FunctionMeasure] = []
    dependent: dict[str, int] = defaultdict(int)
    exposed: dict[str, int] = defaultdict(int)
    weights: dict[str, float] = defaultdict(float)
    third_dependent = third_exposed = edge_count = unresolved = 0
    for function in register.functions:
        part = parts[function.name]
        fm = part.measure
        for j in fm.depends_on:
            dependent[j] += 1
        for j in fm.exposed_to:
            exposed[j] += 1
        third_dependent += part.third_dependent
        third_exposed += part.third_exposed
        for j, w in part.weights:
            weights[j] += w
        edge_count += part.edges
        unresolved += fm.unresolved_edges
        per_function.append(fm)

    edge_shares = shares(weights)
    n = len(register.functions)

    used = set(register.used_systems())
    needed = [slot for slot in register.slots if slot.system in used]
    functions_of = register.functions_of
    points: list[SinglePoint] = []
    for slot in needed:
        if len(slot.suppliers) != 1 or not slot.suppliers[0].known:
            continue
        sup = slot.suppliers[0]
        points.append(
            SinglePoint(
                system=slot.system,
                role=slot.role,
                supplier=sup.name,
                controller=sup.controller_name,
                jurisdiction=sup.jurisdiction,
                functions=tuple(functions_of[slot.system]),
                mitigated=slot.escrow,
                third_country=eu.is_third_country(sup.jurisdiction),
            )
        )
    risky_points = sum(1 for p in points if p.third_country and not p.mitigated)
    return Measures(
        function_count=n,
        edge_count=edge_count,
        unresolved_edges=unresolved,
        edge_shares=edge_shares,
        hhi=hhi(edge_shares),
        dependency_shares={j: c / n for j, c in dependent.items()} if n else {},
        exposure_shares={j: c / n for j, c in exposed.items()} if n else {},
        third_country_dependency=third_dependent / n if n else 0.0,
        third_country_exposure=third_exposed / n if n else 0.0,
        third_country_edge_share=sum(v for j, v in edge_shares.items() if eu.is_third_country(j)),
        single_point_share=risky_points / len(needed) if needed else 0.0,
        single_points=tuple(points),
        functions=tuple(per_function),
    )
