"""OCSF's own definitions (the vendored ``dictionary.json`` and object files of OCSF 1.5.0) as a checker
for the parts of an exported finding py-ocsf-models does not model (the network endpoints and
connection info of an evidence)."""

from __future__ import annotations

import ipaddress
import json
from functools import cache
from pathlib import Path
from typing import Any, Final

OCSF_DIR: Final = Path(__file__).parent / "fixtures" / "ocsf" / "1.5.0"


@cache
def dictionary() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OCSF_DIR / "dictionary.json").read_text(encoding="utf-8"))
    return data


@cache
def object_attributes(name: str) -> dict[str, dict[str, Any]]:
    """The attributes of OCSF object ``name``, its ``extends`` chain merged (the child's win)."""
    path = OCSF_DIR / "objects" / f"{name}.json"
    if not path.exists():
        raise KeyError(f"OCSF object {name} is not vendored")
    spec = json.loads(path.read_text(encoding="utf-8"))
    attrs: dict[str, dict[str, Any]] = dict(object_attributes(spec["extends"])) if spec.get("extends") else {}
    for key, value in (spec.get("attributes") or {}).items():
        if key.startswith("$"):
            continue  # a profile's attributes ($include), none of which we emit
        attrs[key] = {**attrs.get(key, {}), **value}
    return attrs


def _ip(v: Any) -> bool:
    try:
        ipaddress.ip_address(v)
    except (TypeError, ValueError):
        return False
    return isinstance(v, str)


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: OCSF scalar type -> the check a JSON value of that type passes.
SCALARS: Final = {
    "ip_t": _ip,
    "integer_t": _int,
    "long_t": _int,
    "timestamp_t": _int,
    "float_t": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean_t": lambda v: isinstance(v, bool),
    "string_t": lambda v: isinstance(v, str),
    "hostname_t": lambda v: isinstance(v, str),
    "json_t": lambda v: True,
}


def _scalar_ok(type_name: str, value: Any) -> bool:
    types = dictionary()["types"]["attributes"]
    base = type_name
    while base not in SCALARS:  # port_t is an integer_t with a range, and so on
        parent = types.get(base, {}).get("type")
        if not parent or parent == base:
            return False
        base = parent
    if not SCALARS[base](value):
        return False
    low_high = types.get(type_name, {}).get("range")
    return not low_high or low_high[0] <= value <= low_high[1]


def ocsf_problems(value: Any, object_name: str, path: str = "") -> list[str]:
    """What in ``value`` (an instance of OCSF object ``object_name``) OCSF's definitions do not allow."""
    if not isinstance(value, dict):
        return [f"{path}: an object ({object_name}) expected, got {value!r}"]
    attrs = object_attributes(object_name)
    words = dictionary()["attributes"]
    problems = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        if key not in attrs:
            problems.append(f"{where}: not an attribute of OCSF object {object_name}")
            continue
        word = {**words.get(key, {}), **attrs[key]}
        type_name = word.get("type") or words.get(key, {}).get("type")
        items = item if word.get("is_array") else [item]
        if word.get("is_array") and not isinstance(item, list):
            problems.append(f"{where}: an array expected")
            continue
        for one in items:
            if type_name and type_name.endswith("_t"):
                if not _scalar_ok(type_name, one):
                    problems.append(f"{where}: {one!r} is not of OCSF type {type_name}")
                enum = word.get("enum")
                if enum and str(one) not in enum:
                    problems.append(f"{where}: {one!r} not among OCSF's values")
            elif type_name:
                problems += ocsf_problems(one, type_name, where)
    for key, spec in attrs.items():
        if spec.get("requirement") == "required" and key not in value:
            problems.append(f"{path}.{key}: required by OCSF object {object_name}")
    return problems
