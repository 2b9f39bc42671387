"""Screening regimes and the sector vocabulary, loaded from cited YAML into typed objects.

One reviewed file per regime in ``derisk/data/regimes/`` (``be.yaml``, ``eu.yaml``, ``de.yaml``,
``fr.yaml``, ``nl.yaml``) and the controlled sector vocabulary in ``derisk/data/sectors.yaml``. Every
fact, list, rule, deadline and penalty carries ``source`` and ``confidence`` (``V`` seen in a source,
``S`` consistent across secondary sources, ``U`` unverified).

A ``source`` names entries of the file's ``sources:`` registry, each with its title, URL, language
version and the date it was read (or ``read: null``: not read): ``"awv: § 56(2)"`` or several joined by
``" + "``. The loader expands each to one citation a reader can follow ("Title, § 56(2) (de; URL; read
2026-12-06)"). A source that names no registry entry, a registry entry without a URL (other than
derisk's own method), an unknown key, an unknown confidence tag or a rule that does not type-check is
a :class:`~derisk.errors.DataError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from derisk.errors import DataError, Problem, raise_problems
from derisk.screen.catalogue import Catalogue, Cited, Fact, Regime, Sector, SectorList
from derisk.screen.deadlines import DeadlineSpec
from derisk.screen.regime_keys import (
    ANCHORS,
    CITED_KEYS,
    CONFIDENCES,
    DEADLINE_KEYS,
    FACT_KEYS,
    GROUP_KEYS,
    LIST_KEYS,
    PENDING_KEYS,
    REGIME_KEYS,
    REGIME_ORDER,
    RULE_KEYS,
    SECTOR_KEYS,
    TERM_KEYS,
    UNITS,
)
from derisk.screen.rules import (
    OUTCOMES,
    RULE_KINDS,
    Rule,
    RuleError,
    Schema,
    T,
    Template,
    Term,
    compile_expr,
    compile_template,
)
from derisk.screen.sources import LOADING, Pending, parse_sources, registry, resolve_source
from derisk.screen.variables import VARIABLES


def data_dir() -> Path:
    return Path(str(resources.files("derisk") / "data"))


@cache
def load_catalogue(directory: Path | None = None) -> Catalogue:
    """Load ``regimes/*.yaml`` and ``sectors.yaml`` from ``directory`` (default: the shipped data)."""
    base = directory or data_dir()
    problems: list[Problem] = []
    raws: dict[str, tuple[str, dict[str, Any]]] = {}
    for code in REGIME_ORDER:
        path = base / "regimes" / f"{code.lower()}.yaml"
        raw = _read(path, problems)
        if raw is not None:
            raws[code] = (str(path), raw)
    groups, group_sources = _groups(raws, problems)
    regimes: dict[str, Regime] = {}
    for code, (file, raw) in raws.items():
        regime = _regime(code, raw, file, groups, problems)
        if regime is not None:
            regimes[code] = regime
    sectors_path = base / "sectors.yaml"
    sectors = _sectors(_read(sectors_path, problems), regimes, str(sectors_path), problems)
    raise_problems(problems, source=str(base), kind=DataError, summary="invalid screening regimes")
    return Catalogue(regimes, sectors, groups, group_sources)


def _read(path: Path, problems: list[Problem]) -> dict[str, Any] | None:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(Problem(str(path), f"cannot read: {str(exc).splitlines()[0]}"))
        return None
    if not isinstance(raw, dict):
        problems.append(Problem(str(path), "must be a mapping"))
        return None
    return raw


def _keys(
    raw: Any,
    allowed: set[str],
    where: str,
    problems: list[Problem],
    required: frozenset[str] | set[str] = frozenset(),
) -> bool:
    if not isinstance(raw, dict):
        problems.append(Problem(where, "must be a mapping"))
        return False
    for key in raw:
        if key not in allowed:
            problems.append(Problem(where, f"unknown key {key!r}"))
    for key in sorted(required):
        if key not in raw or raw[key] in (None, ""):
            problems.append(Problem(where, f"missing {key!r}"))
    return True


def _tag(raw: Mapping[str, Any], where: str, problems: list[Problem]) -> tuple[str, str]:
    source, conf = raw.get("source"), raw.get("confidence")
    if not isinstance(source, str) or not source.strip():
        problems.append(Problem(where, "missing source"))
        source = ""
    else:
        source = resolve_source(source, registry(), where, problems)
    if conf not in CONFIDENCES:
        problems.append(Problem(where, f"confidence must be one of V, S, U, found {conf!r}"))
        conf = "U"
    return str(source), str(conf)


def _cited(raw: Any, where: str, problems: list[Problem]) -> Cited | None:
    if not _keys(raw, CITED_KEYS, where, problems, {"text"}):
        return None
    source, conf = _tag(raw, where, problems)
    return Cited(str(raw.get("text", "")), source, conf)


def _groups(
    raws: Mapping[str, tuple[str, dict[str, Any]]], problems: list[Problem]
) -> tuple[dict[str, frozenset[str]], dict[str, Cited]]:
    groups: dict[str, frozenset[str]] = {}
    sources: dict[str, Cited] = {}
    for path, raw in raws.values():
        LOADING.sources = parse_sources(raw.get("sources"), path, [])
        for name, g in (raw.get("country_groups") or {}).items():
            where = f"{path}: country_groups.{name}"
            if not _keys(g, GROUP_KEYS, where, problems, {"members", "label"}):
                continue
            source, conf = _tag(g, where, problems)
            members = g.get("members")
            if not isinstance(members, list) or not all(isinstance(m, str) and len(m) == 2 for m in members):
                problems.append(Problem(where, "members must be a list of two-letter country codes"))
                continue
            groups[name] = frozenset(m.upper() for m in members)
            sources[name] = Cited(str(g["label"]), source, conf)
    LOADING.sources = {}
    return groups, sources


def _fact_type(value: Any) -> T | None:
    if isinstance(value, bool):
        return T.BOOL
    if isinstance(value, int | float):
        return T.NUMBER
    if isinstance(value, date):
        return T.DATE
    if isinstance(value, str):
        return T.STR
    return None


def _regime(
    code: str, raw: dict[str, Any], path: str, groups: Mapping[str, frozenset[str]], problems: list[Problem]
) -> Regime | None:
    where = path
    _keys(
        raw,
        REGIME_KEYS,
        where,
        problems,
        {"regime", "name", "title", "scope", "authority", "instrument", "rules"},
    )
    if raw.get("regime") != code:
        problems.append(Problem(where, f"regime must be {code!r}, found {raw.get('regime')!r}"))
    sources = parse_sources(raw.get("sources"), path, problems)
    LOADING.sources = sources
    facts: dict[str, Fact] = {}
    for fid, f in (raw.get("facts") or {}).items():
        fw = f"{path}: facts.{fid}"
        if not _keys(f, FACT_KEYS, fw, problems, {"value", "text"}):
            continue
        source, conf = _tag(f, fw, problems)
        value = f.get("value")
        ftype = _fact_type(value)
        unit = f.get("unit", "text")
        if ftype is None or unit not in UNITS:
            problems.append(
                Problem(fw, f"value must be a number, date, true/false or text; unit one of {UNITS}")
            )
            continue
        facts[fid] = Fact(
            fid, float(value) if ftype is T.NUMBER else value, unit, str(f["text"]), source, conf
        )
    lists: dict[str, SectorList] = {}
    for lid, sl in (raw.get("lists") or {}).items():
        lw = f"{path}: lists.{lid}"
        if _keys(sl, LIST_KEYS, lw, problems, {"label"}):
            source, conf = _tag(sl, lw, problems)
            lists[lid] = SectorList(lid, str(sl["label"]), source, conf)
    thresholds: dict[str, Cited] = {}
    for tid, t in (raw.get("thresholds") or {}).items():
        c = _cited(t, f"{path}: thresholds.{tid}", problems)
        if c:
            thresholds[tid] = c
    schema = Schema(
        variables={k: v.type for k, v in VARIABLES.items()},
        facts={k: _fact_type(f.value) or T.STR for k, f in facts.items()},
        lists=frozenset(lists),
        groups=groups,
        terms=frozenset((raw.get("terms") or {}).keys()),
    )
    terms: dict[str, Term] = {}
    for name, t in (raw.get("terms") or {}).items():
        tw = f"{path}: terms.{name}"
        if not _keys(t, TERM_KEYS, tw, problems, {"when", "if_true", "if_false"}):
            continue
        try:
            terms[name] = Term(
                name,
                compile_expr(t["when"], schema, tw),
                compile_template(t["if_true"], schema, tw),
                compile_template(t["if_false"], schema, tw),
            )
        except RuleError as exc:
            problems.append(Problem("", str(exc)))
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, r in enumerate(raw.get("rules") or []):
        rw = f"{path}: rules[{i}]"
        if not _keys(r, RULE_KEYS, rw, problems, {"id", "when", "then", "say"}):
            continue
        rid = str(r.get("id"))
        rw = f"{path}: rule {rid}"
        if rid in seen:
            problems.append(Problem(rw, "duplicate rule id"))
        seen.add(rid)
        source, conf = _tag(r, rw, problems)
        if r.get("then") not in RULE_KINDS:
            problems.append(Problem(rw, f"then must be one of {', '.join(RULE_KINDS)}"))
            continue
        if r.get("threshold") is not None and r["threshold"] not in thresholds:
            problems.append(Problem(rw, f"unknown threshold {r['threshold']!r}"))
        try:
            ask: Template | None = compile_template(r["ask"], schema, rw) if "ask" in r else None
            rules.append(
                Rule(
                    rid,
                    str(r["then"]),
                    compile_expr(r["when"], schema, rw),
                    compile_template(r["say"], schema, rw),
                    source,
                    conf,
                    r.get("threshold"),
                    ask,
                )
            )
        except RuleError as exc:
            problems.append(Problem("", str(exc)))
    if rules and (rules[-1].kind == "note" or not isinstance(raw["rules"][-1].get("when"), bool)):
        problems.append(Problem(f"{path}: rules", "the last rule must decide unconditionally (when: true)"))
    deadlines = tuple(
        d
        for d in (
            _deadline(d, f"{path}: deadlines[{i}]", problems)
            for i, d in enumerate(raw.get("deadlines") or [])
        )
        if d
    )
    known_phases: set[str] = set()
    for d in deadlines:
        if d.start.startswith("after:") and d.start[6:] not in known_phases:
            problems.append(
                Problem(f"{path}: deadline {d.id}", f"starts after unknown earlier phase {d.start[6:]!r}")
            )
        known_phases.add(d.id)
    authority = _cited(raw.get("authority"), f"{path}: authority", problems)
    instrument = _cited(raw.get("instrument"), f"{path}: instrument", problems)
    standstill = _cited(raw["standstill"], f"{path}: standstill", problems) if raw.get("standstill") else None
    penalties = tuple(
        p
        for p in (
            _cited(p, f"{path}: penalties[{i}]", problems) for i, p in enumerate(raw.get("penalties") or [])
        )
        if p
    )
    notes = tuple(
        n
        for n in (_cited(n, f"{path}: notes[{i}]", problems) for i, n in enumerate(raw.get("notes") or []))
        if n
    )
    advice: dict[str, Cited] = {}
    for outcome, a in (raw.get("advice") or {}).items():
        if outcome not in OUTCOMES:
            problems.append(Problem(f"{path}: advice", f"unknown outcome {outcome!r}"))
            continue
        cited = _cited(a, f"{path}: advice.{outcome}", problems)
        if cited:
            advice[outcome] = cited
    scope_raw = raw.get("scope_countries")
    scope_countries = (
        groups.get(scope_raw)
        if isinstance(scope_raw, str)
        else (frozenset(str(c).upper() for c in scope_raw) if isinstance(scope_raw, list) else None)
    )
    if scope_countries is None:
        problems.append(Problem(path, "scope_countries must be a country group name or a list of codes"))
    rolls = _cited(raw["rolls"], f"{path}: rolls", problems) if raw.get("rolls") else None
    pending = tuple(
        p
        for p in (
            _pending(p, f"{path}: pending[{i}]", problems) for i, p in enumerate(raw.get("pending") or [])
        )
        if p
    )
    rule_ids = {r.id for r in rules}
    for d in deadlines:
        for rid in (*d.when_rules, *d.unless_rules):
            if rid not in rule_ids:
                problems.append(Problem(f"{path}: deadline {d.id}", f"unknown rule {rid!r}"))
    LOADING.sources = {}
    if authority is None or instrument is None or scope_countries is None:
        return None
    return Regime(
        code,
        str(raw.get("name")),
        str(raw.get("title")),
        str(raw.get("scope")),
        scope_countries,
        authority,
        instrument,
        facts,
        lists,
        thresholds,
        terms,
        tuple(rules),
        deadlines,
        standstill,
        penalties,
        notes,
        advice,
        path,
        sources,
        raw.get("holidays"),
        rolls,
        pending,
    )


def _pending(raw: Any, where: str, problems: list[Problem]) -> Pending | None:
    if not _keys(raw, PENDING_KEYS, where, problems, {"id", "title", "status", "changes"}):
        return None
    source, conf = _tag(raw, where, problems)
    changes = raw.get("changes")
    if not isinstance(changes, list) or not all(isinstance(c, str) for c in changes):
        problems.append(Problem(where, "changes must be a list of sentences"))
        return None
    dates = {k: raw.get(k) for k in ("agreed", "applies_from")}
    for k, v in dates.items():
        if v is not None and not isinstance(v, date):
            problems.append(Problem(f"{where}.{k}", "must be a date or null"))
            dates[k] = None
    deadlines = tuple(
        d
        for d in (
            _deadline(d, f"{where}.deadlines[{i}]", problems)
            for i, d in enumerate(raw.get("deadlines") or [])
        )
        if d
    )
    if any(d.start != "notification" for d in deadlines):
        problems.append(Problem(f"{where}.deadlines", "a pending deadline starts at the notification"))
    return Pending(
        str(raw["id"]),
        str(raw["title"]),
        str(raw["status"]),
        dates["agreed"],
        dates["applies_from"],
        tuple(changes),
        source,
        conf,
        deadlines,
    )


def _deadline(raw: Any, where: str, problems: list[Problem]) -> DeadlineSpec | None:
    if not _keys(raw, DEADLINE_KEYS, where, problems, {"id", "phase", "kind", "start"}):
        return None
    source, conf = _tag(raw, where, problems)
    amounts = [k for k in ("days", "months", "years") if raw.get(k) is not None]
    if len(amounts) != 1 or not all(isinstance(raw[k], int) and raw[k] > 0 for k in amounts):
        problems.append(Problem(where, "give exactly one of days, months, years (a positive whole number)"))
        return None
    start = str(raw.get("start"))
    if raw.get("kind") not in ("calendar", "business") or not (
        start in ANCHORS or start.startswith("after:")
    ):
        problems.append(
            Problem(where, f"kind must be calendar|business; start one of {ANCHORS} or after:<id>")
        )
        return None
    return DeadlineSpec(
        id=str(raw["id"]),
        phase=str(raw["phase"]),
        kind=raw["kind"],
        start=start,
        source=source,
        confidence=conf,
        days=raw.get("days"),
        months=raw.get("months"),
        years=raw.get("years"),
        conditional=raw.get("conditional"),
        note=raw.get("note"),
        stops=bool(raw.get("stops", True)),
        when_rules=tuple(str(r) for r in raw.get("when_rules") or ()),
        unless_rules=tuple(str(r) for r in raw.get("unless_rules") or ()),
    )


def _sectors(
    raw: dict[str, Any] | None, regimes: Mapping[str, Regime], path: str, problems: list[Problem]
) -> dict[str, Sector]:
    out: dict[str, Sector] = {}
    if raw is None:
        return out
    entries = raw.get("sectors")
    if set(raw) != {"sectors"} or not isinstance(entries, list):
        problems.append(Problem(path, "must hold one key, sectors, a list"))
        return out
    for i, s in enumerate(entries):
        where = f"{path}: sectors[{i}]"
        if not _keys(s, SECTOR_KEYS, where, problems, {"id", "label"}):
            continue
        maps: dict[str, dict[str, tuple[str, ...]]] = {}
        for key in ("lists", "possibly"):
            maps[key] = {}
            for code, ids in (s.get(key) or {}).items():
                regime = regimes.get(code)
                if regime is None or not isinstance(ids, list):
                    problems.append(Problem(f"{where}.{key}", f"unknown regime {code!r} or not a list"))
                    continue
                for lid in ids:
                    if lid not in regime.lists:
                        problems.append(Problem(f"{where}.{key}.{code}", f"unknown list {lid!r}"))
                maps[key][code] = tuple(ids)
        sid = str(s["id"])
        if sid in out:
            problems.append(Problem(where, f"duplicate sector {sid!r}"))
        out[sid] = Sector(sid, str(s["label"]), maps["lists"], maps["possibly"], s.get("note"))
    return out
