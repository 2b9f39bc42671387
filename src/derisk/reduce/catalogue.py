"""The mitigation catalogue (``derisk/data/mitigations.yaml``) loaded into typed objects.

Every entry must carry a source and evidence; an unknown key, an unknown effect, role or cost class
is a :class:`DataError`, so a typo cannot silently drop a mitigation from a plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from derisk.data import read_yaml
from derisk.errors import DataError, Problem, raise_problems
from derisk.reduce.register import ROLES

EFFECTS: Final = ("replace-eu", "add-eu-alternative", "escrow", "egress-control", "none")
_TOP_KEYS: Final = {"schema", "cost_classes", "mitigations"}
_COST_KEYS: Final = {"id", "weight", "meaning"}
_ENTRY_KEYS: Final = {"id", "title", "roles", "effect", "cost", "reduces", "evidence", "source"}
SCHEMA: Final = "derisk.mitigations/1"


@dataclass(frozen=True)
class CostClass:
    id: str
    weight: float
    meaning: str


@dataclass(frozen=True)
class Mitigation:
    id: str
    title: str
    roles: tuple[str, ...]
    effect: str
    cost: CostClass
    reduces: str
    evidence: str
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "roles": list(self.roles),
            "effect": self.effect,
            "cost": self.cost.id,
            "reduces": self.reduces,
            "evidence": self.evidence,
            "source": self.source,
        }


@dataclass(frozen=True)
class Catalogue:
    cost_classes: tuple[CostClass, ...]
    mitigations: tuple[Mitigation, ...]


def _text(entry: dict[str, Any], key: str, where: str, problems: list[Problem]) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(f"{where}.{key}", "missing or empty"))
        return ""
    return " ".join(value.split())


def parse_catalogue(doc: Any, source: str) -> Catalogue:
    problems: list[Problem] = []
    if not isinstance(doc, dict):
        raise DataError("must be a YAML mapping", source=source)
    for key in sorted(set(doc) ^ _TOP_KEYS, key=str):
        problems.append(Problem(str(key), "unknown key" if key in doc else "missing key"))
    if doc.get("schema") != SCHEMA:
        problems.append(Problem("schema", f"expected {SCHEMA}"))
    costs: dict[str, CostClass] = {}
    for i, entry in enumerate(doc.get("cost_classes") or []):
        where = f"cost_classes[{i}]"
        if not isinstance(entry, dict) or set(entry) != _COST_KEYS:
            problems.append(Problem(where, f"must have exactly the keys {sorted(_COST_KEYS)}"))
            continue
        weight = entry["weight"]
        if not isinstance(weight, int | float) or isinstance(weight, bool) or weight <= 0:
            problems.append(Problem(f"{where}.weight", "must be a positive number"))
            continue
        costs[str(entry["id"])] = CostClass(
            str(entry["id"]), float(weight), _text(entry, "meaning", where, problems)
        )
    mitigations: list[Mitigation] = []
    seen: set[str] = set()
    for i, entry in enumerate(doc.get("mitigations") or []):
        where = f"mitigations[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(where, "must be a mapping"))
            continue
        for key in sorted(set(entry) - _ENTRY_KEYS, key=str):
            problems.append(Problem(f"{where}.{key}", "unknown key"))
        mid = _text(entry, "id", where, problems)
        if mid in seen:
            problems.append(Problem(f"{where}.id", f"duplicate id {mid!r}"))
        seen.add(mid)
        roles = entry.get("roles")
        if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
            problems.append(Problem(f"{where}.roles", f"must be a non-empty list of {', '.join(ROLES)}"))
            roles = []
        effect = entry.get("effect")
        if effect not in EFFECTS:
            problems.append(Problem(f"{where}.effect", f"must be one of {', '.join(EFFECTS)}"))
        cost = costs.get(str(entry.get("cost")))
        if cost is None:
            problems.append(
                Problem(f"{where}.cost", f"must be one of {', '.join(costs) or 'the cost classes'}")
            )
        texts = {k: _text(entry, k, where, problems) for k in ("title", "reduces", "evidence", "source")}
        if cost is not None and effect in EFFECTS:
            mitigations.append(
                Mitigation(
                    id=mid,
                    roles=tuple(roles),
                    effect=str(effect),
                    cost=cost,
                    title=texts["title"],
                    reduces=texts["reduces"],
                    evidence=texts["evidence"],
                    source=texts["source"],
                )
            )
    if not mitigations and not problems:
        problems.append(Problem("mitigations", "no mitigations"))
    raise_problems(problems, source=source, kind=DataError, summary="invalid mitigation catalogue")
    return Catalogue(cost_classes=tuple(costs.values()), mitigations=tuple(mitigations))


@cache
def load_catalogue() -> Catalogue:
    """The shipped catalogue (read and checked once)."""
    return parse_catalogue(read_yaml("mitigations.yaml"), "derisk/data/mitigations.yaml")
