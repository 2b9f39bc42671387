"""ECS's own definitions (the vendored ``ecs_flat.yml``) as a checker for exported documents."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

import yaml

from derisk.detect.ecs import ECS_VERSION

ECS_FLAT: Final = Path(__file__).parent / "fixtures" / "ecs" / "ecs_flat.yml"


@cache
def ecs_definitions() -> dict[str, Any]:
    """Dotted field name -> its ECS definition (type, normalize, allowed_values...)."""
    defs: dict[str, Any] = yaml.safe_load(ECS_FLAT.read_text(encoding="utf-8"))
    return defs


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted name -> value, stopping at ``derisk`` (ours) and at leaves (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and name != "derisk":
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_ip(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: ECS field type -> the check a JSON value of that type passes.
TYPE_CHECKS: Final = {
    "keyword": lambda v: isinstance(v, str),
    "constant_keyword": lambda v: isinstance(v, str),
    "wildcard": lambda v: isinstance(v, str),
    "match_only_text": lambda v: isinstance(v, str),
    "text": lambda v: isinstance(v, str),
    "long": _is_int,
    "integer": _is_int,
    "short": _is_int,
    "byte": _is_int,
    "unsigned_long": lambda v: _is_int(v) and v >= 0,
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "scaled_float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "ip": _is_ip,
    "date": _is_date,
}


def ecs_problems(doc: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    """What in ``doc`` ECS's own definitions do not allow (empty when it conforms)."""
    problems = []
    for name, value in flatten(doc).items():
        if name == "derisk":
            continue
        spec = defs.get(name)
        if spec is None:
            problems.append(f"{name}: not an ECS field")
            continue
        check = TYPE_CHECKS.get(spec["type"])
        if check is None:
            problems.append(f"{name}: ECS type {spec['type']} not expected in an alert")
            continue
        is_array = "array" in (spec.get("normalize") or [])
        if isinstance(value, list) != is_array:
            problems.append(f"{name}: {'an array' if is_array else 'a single value'} expected, got {value!r}")
            continue
        for item in value if is_array else [value]:
            if not check(item):
                problems.append(f"{name}: {item!r} is not of ECS type {spec['type']}")
            allowed = spec.get("allowed_values")
            if allowed and item not in {a["name"] for a in allowed}:
                problems.append(f"{name}: {item!r} not among ECS's allowed values")
    if doc.get("ecs", {}).get("version") != ECS_VERSION:
        problems.append("ecs.version differs from the definitions the tests use")
    # Each event.category names the event.type values that go with it.
    cats = {a["name"]: a for a in defs["event.category"]["allowed_values"]}
    for cat in doc["event"]["category"]:
        expected = set(cats[cat].get("expected_event_types") or [])
        if expected and not expected & set(doc["event"]["type"]):
            problems.append(f"event.type {doc['event']['type']} has none of {cat}'s expected types")
    return problems
