"""The deal file: who acquires what, how much, and when. Checked in full before any screening.

A deal file is YAML (or JSON, by the ``.json`` suffix)::

    title: 25% of a Belgian airport-logistics operator   # at most 1,024 characters, as every text field
    intragroup: false               # a restructuring inside one group (France: R151-7 exemption)
    investor:                       # the direct acquirer and its owners, up to the UBOs
      name: Example Holding Ltd
      country: HK
      kind: company                 # company | person | state
      owners:
        - {entity: Cainiao Smart Logistics Network, stake_pct: 100}   # or a node of the Know graph
    target:
      name: Example Cargo Handling SA
      country: BE
      sectors: [airport-logistics]  # controlled vocabulary: src/derisk/data/sectors.yaml
      turnover_eur: 150000000       # previous financial year; omit if unknown
      listed: false
      greenfield: false
      asset_deal: false             # the business's assets rather than its shares (needs control_after)
      branch: false
      subsidiaries: []              # for indirect acquisitions: {name, country, sectors, turnover_eur, held_pct, controlled}
    stake: {before_pct: 0, after_pct: 25, control_before: false, control_after: false}  # control: true | joint | false
    dates: {signing: 2025-03-03, closing: 2025-06-30, notification: 2025-03-10}  # + complete_documents (DE phase 2)
    information_requests:           # clock stops: the days after `requested` up to `answered`
      - {regime: BE, requested: 2025-03-20, answered: 2025-03-27}

Every problem is collected and raised together as one :class:`~derisk.errors.InputError`. The file is
read by :mod:`derisk.screen.document` first: at most 1 MB, no YAML aliases, at most 64 levels of nesting;
lists hold at most 1,000 entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Final

from rapidfuzz import process

from derisk.errors import InputError, Problem, raise_problems
from derisk.screen.deal import (
    KINDS,
    REGIME_CODES,
    Deal,
    InfoRequest,
    Party,
    Stake,
    Subsidiary,
    Target,
    country_code,
)
from derisk.screen.document import read_document

DEAL_SCHEMA: Final = "derisk.deal/1"
DEAL_KEYS: Final = {
    "schema",
    "title",
    "investor",
    "target",
    "stake",
    "dates",
    "information_requests",
    "intragroup",
}
PARTY_KEYS: Final = {
    "name",
    "entity",
    "country",
    "kind",
    "stake_pct",
    "controls",
    "main_activity_country",
    "owners",
}
TARGET_KEYS: Final = {
    "name",
    "country",
    "sectors",
    "turnover_eur",
    "listed",
    "greenfield",
    "asset_deal",
    "branch",
    "subsidiaries",
}
SUBSIDIARY_KEYS: Final = {"name", "country", "sectors", "turnover_eur", "held_pct", "controlled"}
STAKE_KEYS: Final = {"before_pct", "after_pct", "control_before", "control_after"}
DATE_KEYS: Final = {"signing", "closing", "notification", "complete_documents"}
REQUEST_KEYS: Final = {"regime", "requested", "answered"}
MAX_CHAIN_DEPTH: Final = 32
MAX_TEXT: Final = 1024  # characters of any text field (title, names, sectors)
MAX_ITEMS: Final = 1000  # entries of any list (owners, subsidiaries, sectors, information requests)
CONTROL_VALUES: Final = (True, False, "joint")


def load_deal(path: Path, sectors: Mapping[str, str]) -> Deal:
    """Read and check a deal file; ``sectors`` maps the controlled vocabulary to labels."""
    return parse_deal(read_document(path), sectors, source=str(path))


def parse_deal(raw: Any, sectors: Mapping[str, str], *, source: str) -> Deal:
    c = _Checker(sectors)
    if not isinstance(raw, dict):
        raise InputError("a deal file is a mapping with investor, target, stake and dates", source=source)
    c.keys(raw, DEAL_KEYS, "")
    for key in ("investor", "target", "stake", "dates"):
        if key not in raw:
            c.add(key, "missing")
    title = raw.get("title")
    investor = c.party(raw.get("investor"), "investor", ()) if "investor" in raw else None
    target = c.target(raw.get("target"), "target") if "target" in raw else None
    stake = c.stake(raw.get("stake"), "stake") if "stake" in raw else None
    dates = c.dates(raw.get("dates"), "dates") if "dates" in raw else None
    requests = c.requests(raw.get("information_requests", []), "information_requests")
    if raw.get("schema", DEAL_SCHEMA) != DEAL_SCHEMA:
        c.add("schema", f"must be {DEAL_SCHEMA!r}, found {raw.get('schema')!r}")
    if title is not None and not isinstance(title, str):
        c.add("title", "must be text")
    elif isinstance(title, str) and len(title) > MAX_TEXT:
        c.add("title", f"longer than {MAX_TEXT} characters ({len(title):,})")
        title = None
    intragroup = raw.get("intragroup", False)
    if not isinstance(intragroup, bool):
        c.add("intragroup", f"must be true or false, found {_short(intragroup)}")
        intragroup = False
    if stake is not None and target is not None and target.asset_deal and stake.control_after is None:
        c.add(
            "stake.control_after",
            "an asset deal needs control_after: true or false (asset deals count by control)",
        )
    raise_problems(c.problems, source=source, kind=InputError, summary="invalid deal file")
    assert investor is not None and target is not None and stake is not None and dates is not None
    return Deal(
        source=source,
        title=title if isinstance(title, str) else f"Acquisition of {target.name}",
        investor=investor,
        target=target,
        stake=stake,
        signing=dates[0],
        closing=dates[1],
        notification=dates[2],
        info_requests=tuple(requests),
        intragroup=intragroup,
        complete_documents=dates[3],
    )


def _short(value: Any) -> str:
    """A value as an error message shows it: repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


class _Checker:
    def __init__(self, sectors: Mapping[str, str]) -> None:
        self.sectors = sectors
        self.problems: list[Problem] = []

    def add(self, where: str, what: str) -> None:
        self.problems.append(Problem(where, what))

    def keys(self, raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in raw:
            if key not in allowed:
                self.add(f"{where}.{key}".lstrip("."), f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def mapping(self, raw: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.add(where, f"must be a mapping, found {type(raw).__name__}")
            return None
        return raw

    def text(self, raw: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
        value = raw.get(key)
        if value is None:
            if required:
                self.add(f"{where}.{key}", "missing")
            return None
        if not isinstance(value, str) or not value.strip():
            self.add(f"{where}.{key}", "must be non-empty text")
            return None
        if len(value) > MAX_TEXT:
            self.add(f"{where}.{key}", f"longer than {MAX_TEXT} characters ({len(value):,})")
            return None
        return value.strip()

    def items(self, value: list[Any], where: str) -> list[Any]:
        if len(value) > MAX_ITEMS:
            self.add(where, f"more than {MAX_ITEMS} entries ({len(value):,})")
            return value[:0]
        return value

    def flag(self, raw: Mapping[str, Any], key: str, where: str, default: bool | None) -> bool | None:
        value = raw.get(key, default)
        if value is not None and not isinstance(value, bool):
            self.add(f"{where}.{key}", f"must be true or false, found {_short(value)}")
            return default
        return value

    def pct(self, raw: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float | None:
        value = raw.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.add(f"{where}.{key}", f"must be a percentage (number 0-100), found {_short(value)}")
            return None
        if not 0 <= value <= 100:
            self.add(f"{where}.{key}", f"percentage {value} outside 0-100")
            return None
        return float(value)

    def money(self, raw: Mapping[str, Any], key: str, where: str) -> float | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            self.add(f"{where}.{key}", f"must be an amount in EUR (a number >= 0), found {_short(value)}")
            return None
        return float(value)

    def country(self, raw: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
        value = raw.get(key)
        if value is None:
            if required:
                self.add(f"{where}.{key}", "missing (an ISO 3166 country code such as BE, CN, GB)")
            return None
        code = country_code(value)
        if isinstance(value, bool):
            self.add(
                f"{where}.{key}", f'unknown country {value!r} (YAML reads NO as false: write Norway as "NO")'
            )
        elif code is None:
            self.add(
                f"{where}.{key}", f"unknown country {_short(value)} (use an ISO 3166 code such as BE, CN, GB)"
            )
        return code

    def sector_list(self, raw: Mapping[str, Any], where: str) -> tuple[str, ...]:
        value = raw.get("sectors", [])
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            self.add(f"{where}.sectors", "must be a list of sector names")
            return ()
        value = self.items(value, f"{where}.sectors")
        known = sorted(self.sectors)
        for name in value:
            if len(name) > MAX_TEXT:
                self.add(f"{where}.sectors", f"a sector name longer than {MAX_TEXT} characters")
                continue
            if name not in self.sectors:
                best = process.extractOne(name, known)
                hint = f"; did you mean {best[0]!r}?" if best and best[1] >= 60 else ""
                self.add(f"{where}.sectors", f"unknown sector {name!r}{hint} (valid: {', '.join(known)})")
        return tuple(dict.fromkeys(s for s in value if s in self.sectors))

    def party(self, raw: Any, where: str, ancestors: tuple[str, ...]) -> Party | None:
        m = self.mapping(raw, where)
        if m is None:
            return None
        self.keys(m, PARTY_KEYS, where)
        entity = self.text(m, "entity", where, required=False)
        name = self.text(m, "name", where, required=entity is None)
        label = (name or entity or "").casefold()
        if label and label in ancestors:
            self.add(where, f"cycle in the investor chain: {name or entity!r} owns itself through its owners")
            return None
        if len(ancestors) >= MAX_CHAIN_DEPTH:
            self.add(where, f"investor chain deeper than {MAX_CHAIN_DEPTH} levels")
            return None
        inline = entity is None
        country = self.country(m, "country", where, required=inline)
        kind = m.get("kind")
        if kind is None and inline:
            self.add(f"{where}.kind", f"missing (one of {', '.join(KINDS)})")
        elif kind is not None and kind not in KINDS:
            self.add(f"{where}.kind", f"must be one of {', '.join(KINDS)}, found {_short(kind)}")
            kind = None
        owners_raw = m.get("owners", [])
        owners: list[Party] = []
        if not isinstance(owners_raw, list):
            self.add(f"{where}.owners", "must be a list")
        else:
            for i, owner in enumerate(self.items(owners_raw, f"{where}.owners")):
                p = self.party(owner, f"{where}.owners[{i}]", (*ancestors, label))
                if p is not None:
                    owners.append(p)
                    if p.stake_pct is None and p.controls is None:
                        self.add(f"{where}.owners[{i}]", "give stake_pct or controls: true")
        if kind == "person" and owners:
            self.add(f"{where}.owners", "a person has no owners")
        total = sum(o.stake_pct or 0 for o in owners)
        if total > 100.0001:
            self.add(f"{where}.owners", f"stakes add up to {total:g}%, more than 100%")
        return Party(
            where=where,
            name=name,
            entity=entity,
            country=country,
            kind=kind if isinstance(kind, str) else None,
            stake_pct=self.pct(m, "stake_pct", where),
            controls=self.flag(m, "controls", where, None),
            main_activity_country=self.country(m, "main_activity_country", where, required=False),
            owners=tuple(owners),
        )

    def target(self, raw: Any, where: str) -> Target | None:
        m = self.mapping(raw, where)
        if m is None:
            return None
        self.keys(m, TARGET_KEYS, where)
        subs: list[Subsidiary] = []
        subs_raw = m.get("subsidiaries", [])
        if not isinstance(subs_raw, list):
            self.add(f"{where}.subsidiaries", "must be a list")
            subs_raw = []
        for i, s in enumerate(self.items(subs_raw, f"{where}.subsidiaries")):
            sw = f"{where}.subsidiaries[{i}]"
            sm = self.mapping(s, sw)
            if sm is None:
                continue
            self.keys(sm, SUBSIDIARY_KEYS, sw)
            held = self.pct(sm, "held_pct", sw)
            if held is None and "held_pct" not in sm:
                self.add(f"{sw}.held_pct", "missing (the target's voting rights in it, %)")
            sname, scountry = self.text(sm, "name", sw), self.country(sm, "country", sw)
            controlled = self.flag(sm, "controlled", sw, None)
            if controlled is None:
                controlled = held is not None and held > 50
            sectors = self.sector_list(sm, sw)
            if sname and scountry and held is not None:
                subs.append(
                    Subsidiary(sname, scountry, sectors, self.money(sm, "turnover_eur", sw), held, controlled)
                )
        name, country = self.text(m, "name", where), self.country(m, "country", where)
        sectors = self.sector_list(m, where)
        turnover = self.money(m, "turnover_eur", where)
        flags = {
            k: bool(self.flag(m, k, where, False)) for k in ("listed", "greenfield", "asset_deal", "branch")
        }
        if name is None or country is None:
            return None
        return Target(name, country, sectors, turnover, subsidiaries=tuple(subs), **flags)

    def stake(self, raw: Any, where: str) -> Stake | None:
        m = self.mapping(raw, where)
        if m is None:
            return None
        self.keys(m, STAKE_KEYS, where)
        if "after_pct" not in m:
            self.add(f"{where}.after_pct", "missing (voting rights after the deal, %)")
        before, after = self.pct(m, "before_pct", where, 0.0), self.pct(m, "after_pct", where)
        cb_raw, ca_raw = m.get("control_before", False), m.get("control_after")
        for key, value in (("control_before", cb_raw), ("control_after", ca_raw)):
            if value is not None and value not in CONTROL_VALUES:
                self.add(
                    f"{where}.{key}", f"must be true (sole control), joint or false, found {_short(value)}"
                )
        joint_before, joint_after = cb_raw == "joint", ca_raw == "joint"
        cb = True if joint_before else (cb_raw if isinstance(cb_raw, bool) else False)
        ca = True if joint_after else (ca_raw if isinstance(ca_raw, bool) else None)
        if joint_after and cb_raw is True:
            self.add(where, "sole control before and joint control after: control is reduced, not acquired")
        if before is not None and after is not None and after < before:
            self.add(
                where,
                f"voting rights decrease from {before:g}% to {after:g}%: screening is about acquisitions",
            )
        if cb and ca is False:
            self.add(where, "control is lost (control_before true, control_after false): not an acquisition")
        if before is None or after is None:
            return None
        return Stake(before, after, bool(cb), ca, joint_before, joint_after)

    def date_of(self, raw: Mapping[str, Any], key: str, where: str, *, required: bool) -> date | None:
        value = raw.get(key)
        if value is None:
            if required:
                self.add(f"{where}.{key}", "missing (a date, YYYY-MM-DD)")
            return None
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        self.add(f"{where}.{key}", f"not a date (YYYY-MM-DD): {_short(value)}")
        return None

    def dates(self, raw: Any, where: str) -> tuple[date, date, date | None, date | None] | None:
        m = self.mapping(raw, where)
        if m is None:
            return None
        self.keys(m, DATE_KEYS, where)
        signing = self.date_of(m, "signing", where, required=True)
        closing = self.date_of(m, "closing", where, required=True)
        notification = self.date_of(m, "notification", where, required=False)
        complete = self.date_of(m, "complete_documents", where, required=False)
        if signing and closing and closing < signing:
            self.add(f"{where}.closing", f"planned closing {closing} is before signing {signing}")
        if signing is None or closing is None:
            return None
        return signing, closing, notification, complete

    def requests(self, raw: Any, where: str) -> Sequence[InfoRequest]:
        if not isinstance(raw, list):
            self.add(where, "must be a list")
            return []
        out: list[InfoRequest] = []
        for i, r in enumerate(self.items(raw, where)):
            rw = f"{where}[{i}]"
            m = self.mapping(r, rw)
            if m is None:
                continue
            self.keys(m, REQUEST_KEYS, rw)
            regime = m.get("regime")
            if regime not in REGIME_CODES:
                self.add(f"{rw}.regime", f"must be one of {', '.join(REGIME_CODES)}, found {_short(regime)}")
            requested = self.date_of(m, "requested", rw, required=True)
            answered = self.date_of(m, "answered", rw, required=False)
            if requested and answered and answered < requested:
                self.add(f"{rw}.answered", f"answered {answered} before it was requested {requested}")
            if regime in REGIME_CODES and requested is not None:
                out.append(InfoRequest(str(regime), requested, answered))
        return out
