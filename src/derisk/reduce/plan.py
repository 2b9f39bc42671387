"""The de-risking plan: catalogue mitigations applied to the register, ranked, with measures before and after.

Ranking rule (documented in docs/reduce.md, tested in tests/test_reduce_plan.py):

1. Candidates are the catalogue mitigations instantiated on each needed (system, role) that has a
   third-country-controlled supplier and to which the mitigation's effect still applies. Egress
   control is instantiated once per system and covers all its matching roles (an allow-list is set
   per system).
2. Each candidate is simulated on the current register and the measures recomputed
   (:mod:`derisk.reduce.measures`). Its *risk reduction* is the fall of the plan score
   2·(D + T) + (E + S): D the third-country dependency share of functions, T the third-country edge
   share, E the third-country exposure share, S the unmitigated third-country single-point share.
   Dependency weighs twice exposure: de-risking means reducing the dependency; egress control,
   escrow and continuity guarantees contain a dependency without removing it.
3. The next step is the candidate with the largest risk reduction per cost weight (low 1, medium 2,
   high 4, from the catalogue), then the larger dependency reduction, then the lower cost, then
   mitigation id and target.
4. The step is applied and the ranking repeats on the changed register (greedy), so every step's
   "before" is the previous step's "after". Candidates that had no effect on any figure at the start
   and were never chosen are listed separately as "considered" with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final

from derisk.i18n.data import T_, fill
from derisk.reduce.catalogue import Catalogue, Mitigation, load_catalogue
from derisk.reduce.jurisdictions import EU_PLACEHOLDER, EuMembers, eu_members
from derisk.reduce.measures import DIGITS, Measures, function_parts, measure
from derisk.reduce.register import ROLE_LABELS, Register, Resolved, Slot, Supplier

#: Name of the simulated replacement supplier.
EU_PROVIDER: Final = "EU-controlled provider (to be chosen)"
MAX_STEPS: Final = 20
_EPS: Final = 1e-12

RANKING_RULE: Final = T_(
    "Greedy: at each step, the candidate with the largest fall of the plan score 2*(D+T) + (E+S) per cost "
    "weight (D: third-country dependency share of functions; T: third-country edge share; E: third-country "
    "exposure share; S: unmitigated third-country single-point share), then the larger fall of D+T, then the "
    "lower cost, then mitigation id and target; each step is applied before the next is ranked."
)


def dependency_risk(m: Measures) -> float:
    return m.third_country_dependency + m.third_country_edge_share


def exposure_risk(m: Measures) -> float:
    return m.third_country_exposure + m.single_point_share


def plan_score(m: Measures) -> float:
    """The score a plan lowers: 2·(D + T) + (E + S), the measures' risk score."""
    return m.risk_score


@dataclass(frozen=True)
class Candidate:
    mitigation: Mitigation
    system: str
    roles: tuple[str, ...]

    @property
    def target(self) -> str:
        return f"{self.system}/{'+'.join(self.roles)}"

    def target_json(self) -> dict[str, Any]:
        return {"system": self.system, "roles": list(self.roles)}


@dataclass(frozen=True)
class Step:
    rank: int
    candidate: Candidate
    sentence: str
    before: Measures
    after: Measures

    @property
    def dependency_reduction(self) -> float:
        return dependency_risk(self.before) - dependency_risk(self.after)

    @property
    def exposure_reduction(self) -> float:
        return exposure_risk(self.before) - exposure_risk(self.after)

    @property
    def risk_reduction(self) -> float:
        return plan_score(self.before) - plan_score(self.after)

    def to_json(self) -> dict[str, Any]:
        m = self.candidate.mitigation
        return {
            "rank": self.rank,
            "mitigation": m.id,
            "title": m.title,
            "target": self.candidate.target_json(),
            "sentence": self.sentence,
            "reduces": m.reduces,
            "cost": m.cost.id,
            "cost_weight": m.cost.weight,
            "evidence": m.evidence,
            "source": m.source,
            "risk_reduction": round(self.risk_reduction, DIGITS),
            "dependency_reduction": round(self.dependency_reduction, DIGITS),
            "exposure_reduction": round(self.exposure_reduction, DIGITS),
            "before": self.before.headline(),
            "after": self.after.headline(),
        }


@dataclass(frozen=True)
class Considered:
    candidate: Candidate
    sentence: str

    def to_json(self) -> dict[str, Any]:
        m = self.candidate.mitigation
        return {
            "mitigation": m.id,
            "title": m.title,
            "target": self.candidate.target_json(),
            "cost": m.cost.id,
            "reduces": m.reduces,
            "source": m.source,
            "sentence": self.sentence,
        }


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    considered: tuple[Considered, ...]
    final: Measures

    def to_json(self) -> dict[str, Any]:
        return {
            "ranking_rule": RANKING_RULE,
            "steps": [s.to_json() for s in self.steps],
            "considered_without_effect": [c.to_json() for c in self.considered],
            "after_all_steps": self.final.headline(),
        }


def _eu_supplier() -> Supplier:
    return Supplier(
        name=EU_PROVIDER,
        resolved=Resolved(
            query=EU_PROVIDER,
            entity_id=None,
            entity_name=EU_PROVIDER,
            controller_id=None,
            controller_name=EU_PROVIDER,
            jurisdiction=EU_PLACEHOLDER,
            confidence="U",
            sentence="A simulated EU-controlled provider; the plan does not name one.",
        ),
    )


def _applies(m: Mitigation, slot: Slot, eu: EuMembers) -> bool:
    if slot.role not in m.roles or not any(eu.is_third_country(s.jurisdiction) for s in slot.suppliers):
        return False
    if m.effect == "escrow":
        return len(slot.suppliers) == 1 and not slot.escrow
    if m.effect == "egress-control":
        return slot.role != "hosting" and not slot.egress_controlled
    if m.effect == "add-eu-alternative":
        return not any(eu.is_eu(s.jurisdiction) for s in slot.suppliers)
    return True


def apply(register: Register, candidate: Candidate, eu: EuMembers | None = None) -> Register:
    """The register after the candidate's effect (pure: returns a new register)."""
    eu = eu or eu_members()
    effect = candidate.mitigation.effect
    for role in candidate.roles:
        slot = register.slot((candidate.system, role))
        if slot is None:
            continue
        if effect == "replace-eu":
            kept = [s for s in slot.suppliers if not eu.is_third_country(s.jurisdiction)]
            if not any(s.name == EU_PROVIDER for s in kept):
                kept.append(_eu_supplier())
            new = replace(slot, suppliers=tuple(kept))
        elif effect == "add-eu-alternative":
            new = replace(slot, suppliers=(*slot.suppliers, _eu_supplier()))
        elif effect == "escrow":
            new = replace(slot, escrow=True)
        elif effect == "egress-control":
            new = replace(slot, egress_controlled=True)
        else:
            continue
        register = register.with_slot(new)
    return register


def candidates(register: Register, catalogue: Catalogue, eu: EuMembers | None = None) -> list[Candidate]:
    """Every mitigation that still applies, on every needed role (egress control: per system)."""
    eu = eu or eu_members()
    used = set(register.used_systems())
    out: list[Candidate] = []
    for m in catalogue.mitigations:
        per_system: dict[str, list[str]] = {}
        for slot in register.slots:
            if slot.system in used and _applies(m, slot, eu):
                per_system.setdefault(slot.system, []).append(slot.role)
        for system, roles in per_system.items():
            if m.effect == "egress-control":
                out.append(Candidate(m, system, tuple(roles)))
            else:
                out.extend(Candidate(m, system, (role,)) for role in roles)
    return out


def _sentence(c: Candidate, register: Register) -> str:
    parts = []
    for role in c.roles:
        slot = register.slot((c.system, role))
        names = ", ".join(
            f"{s.name} ({s.jurisdiction or 'jurisdiction unknown'})"
            for s in (slot.suppliers if slot else ())
            if s.jurisdiction != EU_PLACEHOLDER
        )
        parts.append(f"{ROLE_LABELS[role]} {names or 'none named'}")
    return fill(
        T_("{mitigation_label} for {system} ({suppliers})."),
        mitigation_label=c.mitigation.title,
        system=c.system,
        suppliers="; ".join(parts),
    )


def build_plan(
    register: Register,
    catalogue: Catalogue | None = None,
    *,
    eu: EuMembers | None = None,
    max_steps: int = MAX_STEPS,
) -> Plan:
    """Rank and apply mitigations greedily (see the module docstring for the rule)."""
    catalogue = catalogue or load_catalogue()
    eu = eu or eu_members()
    current = register
    current_m = measure(current, eu)
    steps: list[Step] = []
    initial_no_effect: list[Considered] | None = None
    while len(steps) < max_steps:
        scored = []
        no_effect: list[Considered] = []
        base_parts = function_parts(current, eu=eu)
        for c in candidates(current, catalogue, eu):
            changed = apply(current, c, eu)
            affected = set(current.functions_of.get(c.system, ()))
            after = measure(changed, eu, {**base_parts, **function_parts(changed, affected, eu)})
            gain = plan_score(current_m) - plan_score(after)
            if gain <= _EPS:
                step = _sentence(c, current)
                no_effect.append(
                    Considered(
                        c,
                        fill(
                            T_("{step_sentence} No effect on the measured figures: {reduces_label}"),
                            step_sentence=step,
                            reduces_label=c.mitigation.reduces,
                        )
                        if c.mitigation.effect == "none"
                        else fill(
                            T_(
                                "{step_sentence} No effect on the measured figures while other "
                                "suppliers keep the system exposed."
                            ),
                            step_sentence=step,
                        ),
                    )
                )
                continue
            dep = dependency_risk(current_m) - dependency_risk(after)
            w = c.mitigation.cost.weight
            key = (-round(gain / w, 9), -round(dep, 9), w, c.mitigation.id, c.target)
            scored.append((key, c, after))
        if initial_no_effect is None:
            initial_no_effect = no_effect
        if not scored:
            break
        scored.sort(key=lambda t: t[0])
        _, best, after_m = scored[0]
        steps.append(Step(len(steps) + 1, best, _sentence(best, current), current_m, after_m))
        current = apply(current, best, eu)
        current_m = after_m
    taken = {(s.candidate.mitigation.id, s.candidate.system) for s in steps}
    considered = [
        c for c in initial_no_effect or () if (c.candidate.mitigation.id, c.candidate.system) not in taken
    ]
    return Plan(steps=tuple(steps), considered=tuple(considered), final=current_m)
