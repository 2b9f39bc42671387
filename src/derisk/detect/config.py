"""Per-site tuning of the detections: the ``detection`` and ``allowlist`` sections of the site file.

``detection`` holds thresholds per detection; every value is checked (type and range) and an absurd
value (a negative period, a score above 1) is a :class:`~derisk.errors.Problem`. ``allowlist`` is a
list of entries, each matching destinations by exactly one of ``domain`` (``*.example.com`` also
matches ``example.com`` itself), ``ip`` (address or CIDR), ``asn``, ``organisation`` or
``controller``, with a required ``reason`` that is recorded with what the entry suppressed.
Documented in ``docs/detection.md``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from typing import Any, Final

from derisk.errors import ConfigError, Problem, raise_problems
from derisk.kinds import KINDS as KINDS

# name -> (default, minimum, maximum, is_integer). Bounds are inclusive.
_Spec = tuple[float, float, float, bool]

SPECS: Final[dict[str, dict[str, _Spec]]] = {
    "beacon": {
        "min_score": (0.55, 0.0, 1.0, False),
        "min_connections": (6, 4, 1_000_000, True),
        "min_beats": (10, 3, 1_000_000, True),
        "min_active_minutes": (10.0, 0.0, 44_640.0, False),
        "min_period_seconds": (4.0, 0.5, 86_400.0, False),
        "max_period_seconds": (21_600.0, 1.0, 86_400.0, False),
        "max_skip": (6, 1, 1000, True),
        "window_hours": (24.0, 1.0, 744.0, False),
        "strobe_connections": (86_400, 100, 100_000_000, True),
    },
    "long_connection": {
        "min_hours": (1.0, 0.05, 720.0, False),
        "stitch_gap_seconds": (60.0, 0.0, 3600.0, False),
    },
    "dns_tunnel": {
        "min_score": (0.6, 0.0, 1.0, False),
        "min_unique_names": (100, 2, 100_000_000, True),
        "min_label_chars": (16.0, 1.0, 253.0, False),
    },
    "upload": {
        "min_score": (0.6, 0.0, 1.0, False),
        "min_bytes_out": (50_000_000, 1, 10**15, True),
        "min_ratio": (10.0, 1.0, 10**9, False),
        "baseline_factor": (10.0, 1.0, 10**6, False),
    },
    "new_destination": {
        "baseline_hours": (24.0, 1.0, 24.0 * 366, False),
        "min_bytes": (1, 0, 10**15, True),
        "max_per_system": (10, 1, 100_000, True),
    },
    "compelled": {
        "min_bytes_out": (1_000_000, 1, 10**15, True),
        "min_hours": (1.0, 0.0, 744.0, False),
    },
}

ALLOW_MATCHERS: Final = ("domain", "ip", "asn", "organisation", "controller")
ALLOW_KEYS: Final = {*ALLOW_MATCHERS, "reason", "kinds"}


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry: exactly one matcher, a reason, optionally the kinds it applies to."""

    matcher: str
    value: str
    reason: str
    kinds: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.matcher}={self.value}"

    def applies_to(self, kind: str) -> bool:
        return not self.kinds or kind in self.kinds


@dataclass(frozen=True)
class DetectionConfig:
    """Thresholds per detection (``section -> name -> value``) and the allow-list."""

    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    allowlist: tuple[AllowEntry, ...] = ()

    def get(self, section: str, name: str) -> float:
        value = self.thresholds.get(section, {}).get(name)
        return float(SPECS[section][name][0]) if value is None else float(value)

    def with_values(self, section: str, **values: float) -> DetectionConfig:
        merged = {k: dict(v) for k, v in self.thresholds.items()}
        merged.setdefault(section, {}).update(values)
        return replace(self, thresholds=merged)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def check_section(value: Any) -> list[Problem]:
    """Problems in a ``detection:`` section (empty when it is valid)."""
    problems: list[Problem] = []
    if value is None:
        return problems
    if not isinstance(value, dict):
        return [Problem("", f"must be a mapping of detections ({', '.join(SPECS)}) to thresholds")]
    for section, body in value.items():
        spec = SPECS.get(str(section))
        if spec is None:
            problems.append(Problem(str(section), f"unknown detection (expected one of: {', '.join(SPECS)})"))
            continue
        if body is None:
            continue
        if not isinstance(body, dict):
            problems.append(Problem(str(section), "must be a mapping of threshold names to numbers"))
            continue
        for name, v in body.items():
            where = f"{section}.{name}"
            if name not in spec:
                problems.append(Problem(where, f"unknown threshold (expected one of: {', '.join(spec)})"))
                continue
            _, lo, hi, integer = spec[name]
            if not _is_number(v):
                problems.append(Problem(where, f"must be a number, found {v!r}"))
            elif integer and float(v) != int(v):
                problems.append(Problem(where, f"must be a whole number, found {v!r}"))
            elif not lo <= float(v) <= hi:
                problems.append(Problem(where, f"{v!r} is out of range (expected {lo:g} to {hi:g})"))
        beacon = body if section == "beacon" else None
        if isinstance(beacon, dict):
            lo_p, hi_p = beacon.get("min_period_seconds"), beacon.get("max_period_seconds")
            if (
                isinstance(lo_p, int | float)
                and isinstance(hi_p, int | float)
                and _is_number(lo_p)
                and _is_number(hi_p)
                and float(lo_p) >= float(hi_p)
            ):
                problems.append(Problem("beacon", "min_period_seconds must be below max_period_seconds"))
    return problems


def _check_matcher(matcher: str, value: object, where: str) -> list[Problem]:
    if matcher == "asn":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**32:
            return [Problem(where, f"asn must be a whole number from 1 to 4294967295, found {value!r}")]
        return []
    if not isinstance(value, str) or not value.strip():
        return [Problem(where, f"{matcher} must be non-empty text, found {value!r}")]
    if matcher == "ip":
        try:
            ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            return [Problem(where, f"{value!r} is not an IP address or CIDR")]
    if matcher == "domain":
        bare = value.strip().lower()
        if bare.startswith("*."):
            bare = bare[2:]
        if not bare or "*" in bare or " " in bare or bare.startswith(".") or bare.endswith("."):
            return [Problem(where, f"{value!r} is not a domain (use example.com or *.example.com)")]
    return []


def check_allowlist(value: Any) -> list[Problem]:
    """Problems in an ``allowlist:`` section (empty when it is valid)."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [
            Problem(
                "",
                "must be a list of entries, each with one of domain/ip/asn/organisation/controller and a reason",
            )
        ]
    problems: list[Problem] = []
    for i, entry in enumerate(value):
        where = f"[{i}]"
        if not isinstance(entry, dict):
            problems.append(
                Problem(where, "must be a mapping such as {domain: '*.example.com', reason: '...'}")
            )
            continue
        for key in sorted(set(map(str, entry)) - ALLOW_KEYS):
            problems.append(
                Problem(f"{where}.{key}", f"unknown key (expected: {', '.join(sorted(ALLOW_KEYS))})")
            )
        present = [m for m in ALLOW_MATCHERS if m in entry]
        if len(present) != 1:
            problems.append(
                Problem(where, f"needs exactly one of {', '.join(ALLOW_MATCHERS)}, found {len(present)}")
            )
        for m in present:
            problems.extend(_check_matcher(m, entry[m], f"{where}.{m}"))
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            problems.append(
                Problem(
                    f"{where}.reason",
                    "a reason is required: say why this is allowed (it is recorded with what it suppresses)",
                )
            )
        kinds = entry.get("kinds")
        if kinds is not None:
            if not isinstance(kinds, list) or not kinds:
                problems.append(Problem(f"{where}.kinds", "must be a non-empty list of detection kinds"))
            else:
                for k in kinds:
                    if k not in KINDS:
                        problems.append(
                            Problem(f"{where}.kinds", f"unknown kind {k!r} (expected: {', '.join(KINDS)})")
                        )
    return problems


def load_config(
    detection: Any = None, allowlist: Any = None, *, source: str = "site file"
) -> DetectionConfig:
    """Build a :class:`DetectionConfig` from the two site sections, raising ConfigError on any problem."""
    problems = [
        Problem(f"detection.{p.where}" if p.where else "detection", p.what) for p in check_section(detection)
    ]
    problems += [
        Problem(f"allowlist{p.where}" if p.where else "allowlist", p.what) for p in check_allowlist(allowlist)
    ]
    raise_problems(problems, source=source, kind=ConfigError, summary="invalid detection settings")
    thresholds = {
        str(k): {str(n): float(v) for n, v in (b or {}).items()} for k, b in (detection or {}).items()
    }
    entries: list[AllowEntry] = []
    for entry in allowlist or []:
        matcher = next(m for m in ALLOW_MATCHERS if m in entry)
        raw = entry[matcher]
        text = str(raw).strip()
        if matcher in ("domain", "organisation", "controller"):
            text = text.lower()
        entries.append(
            AllowEntry(
                matcher, text, str(entry["reason"]).strip(), tuple(str(k) for k in entry.get("kinds") or ())
            )
        )
    return DetectionConfig(thresholds=thresholds, allowlist=tuple(entries))


def threshold_names() -> dict[str, list[str]]:
    """Every threshold name per detection (for the documentation test)."""
    return {section: list(spec) for section, spec in SPECS.items()}
