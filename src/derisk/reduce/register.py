"""The dependency register: critical functions, the systems serving them, and who controls their suppliers.

In the site file::

    systems:
      - name: wms
        hosts: [10.10.1.0/28]
        vendor: Cainiao Smart Logistics Network      # software vendor
        hardware: Dell Technologies                    # hardware maker
        hosting: Alibaba Cloud                         # hosting / cloud provider
        support: [Cainiao Smart Logistics Network, Acme Support BV]   # a list: alternatives
    functions:
      - name: parcel sorting
        description: Sorting of inbound and outbound parcels
        systems: [wms]

Every system a function lists is needed for that function. A supplier given as a list names
alternatives: any one of them can carry the role, so none of them alone is a single point of
dependency. Each supplier name is resolved through the Know graph to its ultimate controller and the
jurisdiction control is exercised from; a name the graph does not know (or matches ambiguously) is
reported as a finding and left unresolved, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Final

from derisk.errors import ConfigError, Problem, raise_problems
from derisk.i18n.data import T_, fill
from derisk.reduce.findings import Finding
from derisk.site import Site

#: Supplier roles of a system, in report order, with the words a report uses for them.
ROLES: Final = ("vendor", "hardware", "hosting", "support")
ROLE_LABELS: Final = {
    "vendor": T_("software vendor"),
    "hardware": T_("hardware maker"),
    "hosting": T_("hosting/cloud provider"),
    "support": T_("support/update channel"),
}
FUNCTION_KEYS: Final = {"name", "description", "systems"}
_MAX_NAME: Final = 200


@dataclass(frozen=True)
class Resolved:
    """What the control graph says about one supplier name."""

    query: str
    entity_id: str | None
    entity_name: str | None
    controller_id: str | None
    controller_name: str | None
    jurisdiction: str | None
    state_controlled: bool = False
    confidence: str = "U"
    sentence: str = ""
    match_score: float | None = None
    #: Entity ids of the candidates when the name matched several entities (then nothing is resolved).
    candidates: tuple[str, ...] = ()
    #: The controller is a state or state body (then "same controller" proves little about traffic).
    controller_is_state: bool = False
    #: Ids on the control chain from the entity up to, not including, a state controller.
    chain_ids: tuple[str, ...] = ()

    @property
    def controller_key(self) -> str:
        """A stable key for "the same controller": its graph id, else its name folded."""
        if self.controller_id:
            return self.controller_id
        return (self.controller_name or self.entity_name or self.query).casefold()


#: Looks a supplier name up; ``None`` means "not known to the graph" (a finding, not a guess).
Resolver = Callable[[str], "Resolved | None"]


@dataclass(frozen=True)
class Supplier:
    name: str
    resolved: Resolved | None

    @property
    def jurisdiction(self) -> str | None:
        return self.resolved.jurisdiction if self.resolved else None

    @property
    def known(self) -> bool:
        """The control graph identified this supplier (not unknown, not ambiguous)."""
        return self.resolved is not None and self.resolved.entity_id is not None

    @property
    def controller_name(self) -> str | None:
        if self.resolved is None:
            return None
        return self.resolved.controller_name or self.resolved.entity_name


@dataclass(frozen=True)
class Slot:
    """One role of one system and the suppliers that can fill it (alternatives)."""

    system: str
    role: str
    suppliers: tuple[Supplier, ...]
    escrow: bool = False  # continuity secured: source code in escrow / continuity guarantees
    egress_controlled: bool = False  # the vendor's software may reach only allow-listed endpoints

    @property
    def key(self) -> tuple[str, str]:
        return (self.system, self.role)


@dataclass(frozen=True)
class Function:
    name: str
    description: str | None
    systems: tuple[str, ...]


@dataclass(frozen=True)
class Register:
    site: str | None
    functions: tuple[Function, ...]
    slots: tuple[Slot, ...]
    findings: tuple[Finding, ...] = ()

    @cached_property
    def _by_system(self) -> dict[str, list[Slot]]:
        index: dict[str, list[Slot]] = {}
        for s in self.slots:
            index.setdefault(s.system, []).append(s)
        return index

    @cached_property
    def _by_key(self) -> dict[tuple[str, str], Slot]:
        return {s.key: s for s in self.slots}

    def slots_of(self, system: str) -> list[Slot]:
        return self._by_system.get(system, [])

    def slot(self, key: tuple[str, str]) -> Slot | None:
        return self._by_key.get(key)

    def with_slot(self, new: Slot) -> Register:
        """A copy of the register with one slot replaced (used to simulate mitigations)."""
        return replace(self, slots=tuple(new if s.key == new.key else s for s in self.slots))

    @cached_property
    def _used(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s for f in self.functions for s in f.systems))

    def used_systems(self) -> list[str]:
        return list(self._used)

    @cached_property
    def functions_of(self) -> dict[str, tuple[str, ...]]:
        """System name → the functions that need it."""
        out: dict[str, list[str]] = {}
        for f in self.functions:
            for system in f.systems:
                out.setdefault(system, []).append(f.name)
        return {k: tuple(v) for k, v in out.items()}


# -- checking the site file section ------------------------------------------------------------------
def check_section(value: Any) -> list[Problem]:
    """Check the site file's ``functions`` section; called by :mod:`derisk.site` at load time."""
    problems: list[Problem] = []
    if not isinstance(value, list) or not value:
        return [Problem("", "must be a non-empty list of functions, each with name and systems")]
    seen: set[str] = set()
    for i, entry in enumerate(value):
        where = f"[{i}]"
        if not isinstance(entry, dict):
            problems.append(Problem(where, "must be a mapping with name, systems and optional description"))
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(Problem(f"{where}.name", "missing or not text"))
        else:
            if len(name) > _MAX_NAME:
                problems.append(Problem(f"{where}.name", f"longer than {_MAX_NAME} characters"))
            if name.casefold() in seen:
                problems.append(Problem(f"{where}.name", f"duplicate function name {name!r}"))
            seen.add(name.casefold())
            where = f"[{i}] ({name})"
        for key in sorted(set(entry) - FUNCTION_KEYS, key=str):
            problems.append(
                Problem(f"{where}.{key}", f"unknown key (expected: {', '.join(sorted(FUNCTION_KEYS))})")
            )
        if entry.get("description") is not None and not isinstance(entry.get("description"), str):
            problems.append(Problem(f"{where}.description", "must be text"))
        systems = entry.get("systems")
        if not isinstance(systems, list) or not systems:
            problems.append(
                Problem(
                    f"{where}.systems", "a critical function must list at least one system that serves it"
                )
            )
            continue
        names = [s for s in systems if isinstance(s, str) and s.strip()]
        if len(names) != len(systems):
            problems.append(Problem(f"{where}.systems", "every entry must be a system name (text)"))
        dupes = sorted({s for s in names if names.count(s) > 1})
        if dupes:
            problems.append(Problem(f"{where}.systems", f"listed twice: {', '.join(dupes)}"))
    return problems


def _supplier_names(value: Any, where: str, problems: list[Problem]) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    names: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            problems.append(Problem(where, "must be a supplier name or a list of alternative supplier names"))
            return []
        if len(item) > _MAX_NAME:
            problems.append(Problem(where, f"supplier name longer than {_MAX_NAME} characters"))
            return []
        names.append(item.strip())
    if isinstance(value, list) and not names:
        problems.append(Problem(where, "an empty list: omit the key when there is no such supplier"))
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        problems.append(Problem(where, f"listed twice: {', '.join(dupes)}"))
        return []
    return names


def build_register(site: Site, resolver: Resolver, *, source: str = "site file") -> Register:
    """Build the register of a loaded site, resolving every supplier through ``resolver``.

    Raises :class:`ConfigError` listing every problem at once: no ``functions`` section, functions
    naming systems the site does not define, supplier keys that are not names.
    """
    raw = site.sections.get("functions")
    if raw is None:
        raise ConfigError(
            "has no 'functions' section: list the critical functions and the systems serving each "
            "(see docs/reduce.md)",
            source=source,
        )
    problems = [Problem(f"functions{p.where}", p.what) for p in check_section(raw)]
    raise_problems(problems, source=source, kind=ConfigError, summary="invalid dependency register")
    known = {s.name: s for s in site.systems}
    functions: list[Function] = []
    for i, entry in enumerate(raw):
        systems = tuple(entry["systems"])
        for s in systems:
            if s not in known:
                candidates = ", ".join(sorted(known)) or "none defined"
                problems.append(
                    Problem(
                        f"functions[{i}] ({entry['name']}).systems",
                        f"unknown system {s!r} (systems: {candidates})",
                    )
                )
        functions.append(Function(name=entry["name"], description=entry.get("description"), systems=systems))

    used = {s for f in functions for s in f.systems}
    slots: list[Slot] = []
    findings: list[Finding] = []
    cache: dict[str, Resolved | None] = {}
    for system in site.systems:
        if system.name not in used:
            findings.append(
                Finding(
                    kind="system-outside-register",
                    severity="info",
                    subject=system.name,
                    sentence=fill(
                        T_(
                            "System {system} is in the site file but no critical function lists it, so its "
                            "suppliers are not measured; add it to a function if something critical needs it."
                        ),
                        system=repr(system.name),
                    ),
                    evidence={"system": system.name},
                )
            )
            continue
        declared = {"vendor": system.vendor, **{r: system.extra.get(r) for r in ROLES[1:]}}
        any_supplier = False
        for role in ROLES:
            names = _supplier_names(declared[role], f"systems ({system.name}).{role}", problems)
            if not names:
                continue
            any_supplier = True
            suppliers = []
            for name in names:
                if name not in cache:
                    cache[name] = resolver(name)
                suppliers.append(Supplier(name=name, resolved=cache[name]))
            slots.append(Slot(system=system.name, role=role, suppliers=tuple(suppliers)))
        if not any_supplier:
            findings.append(
                Finding(
                    kind="system-without-suppliers",
                    severity="medium",
                    subject=system.name,
                    sentence=fill(
                        T_(
                            "System {system} serves critical functions but the register names none "
                            "of its suppliers (vendor, hardware, hosting, support): its dependencies cannot "
                            "be measured."
                        ),
                        system=repr(system.name),
                    ),
                    evidence={"system": system.name},
                )
            )
    raise_problems(problems, source=source, kind=ConfigError, summary="invalid dependency register")

    for name, res in sorted(cache.items()):
        if res is None:
            where = sorted(
                f"{s.system} ({ROLE_LABELS[s.role]})" for s in slots for x in s.suppliers if x.name == name
            )
            findings.append(
                Finding(
                    kind="unknown-supplier",
                    severity="medium",
                    subject=name,
                    sentence=fill(
                        T_(
                            "Supplier {supplier} ({where_roles}) is not in the control graph, so its "
                            "controller and jurisdiction are unknown; add it to the graph (derisk entity "
                            "import, with --workspace) rather than guess."
                        ),
                        supplier=repr(name),
                        where_roles="; ".join(where),
                    ),
                    evidence={"supplier": name, "used_by": where},
                )
            )
        elif res.entity_id is None:
            findings.append(
                Finding(
                    kind="ambiguous-supplier",
                    severity="medium",
                    subject=name,
                    sentence=fill(
                        T_(
                            "{resolution}; name the supplier as in the control graph so that it can be "
                            "resolved (not guessed)."
                        ),
                        resolution=res.sentence,
                    ),
                    evidence={"supplier": name, "candidates": list(res.candidates)},
                )
            )
        elif res.jurisdiction is None:
            findings.append(
                Finding(
                    kind="unresolved-controller",
                    severity="low",
                    subject=name,
                    sentence=fill(
                        T_(
                            "Supplier {supplier} is in the control graph as {entity}, but no "
                            "controlling jurisdiction could be resolved for it."
                        ),
                        supplier=repr(name),
                        entity=repr(res.entity_name),
                    ),
                    evidence={"supplier": name, "entity_id": res.entity_id},
                )
            )
    return Register(site=site.name, functions=tuple(functions), slots=tuple(slots), findings=tuple(findings))


def table_resolver(table: dict[str, Resolved]) -> Resolver:
    """A resolver over a fixed table of supplier names (case-insensitive), for plain inputs."""
    folded = {k.casefold(): v for k, v in table.items()}

    def resolve(name: str) -> Resolved | None:
        return folded.get(name.casefold())

    return resolve


#: System names of the demo scenario's site file (:mod:`derisk.demo.scenario`), for ``demo_functions``.
SCENARIO_SYSTEM_NAMES: Final = {
    "wms": "Warehouse management",
    "customs-gateway": "Customs gateway",
    "airline-cargo": "Airline cargo",
    "cctv": "CCTV",
    "office": "Office",
}


def demo_functions(rename: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The ``functions`` section of the Liège-style demo site (systems wms, customs-gateway,
    airline-cargo, cctv, office): critical functions of an air cargo hub and the systems they need.
    ``rename`` maps these system names to the names a site file uses."""
    names = rename or {}
    return [{**f, "systems": [names.get(s, s) for s in f["systems"]]} for f in _DEMO_FUNCTIONS]


_DEMO_FUNCTIONS: Final[tuple[dict[str, Any], ...]] = (
    {
        "name": "parcel sorting",
        "description": "Sorting and routing of inbound and outbound parcels",
        "systems": ["wms"],
    },
    {
        "name": "customs declarations",
        "description": "Electronic customs declarations for every consignment",
        "systems": ["customs-gateway", "wms"],
    },
    {
        "name": "airline cargo handling",
        "description": "Air waybills, load planning and hand-over to airlines",
        "systems": ["airline-cargo"],
    },
    {
        "name": "video surveillance",
        "description": "Camera surveillance of the warehouse and the airside perimeter",
        "systems": ["cctv"],
    },
    {
        "name": "administration and payments",
        "description": "Office, e-mail and supplier payments",
        "systems": ["office"],
    },
)
