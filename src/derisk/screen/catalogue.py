"""The screening catalogue as typed objects: regimes, their cited facts and lists, the sector vocabulary.

Built and checked by :mod:`derisk.screen.regimes` from the YAML files; read by the engine and the memo.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

from derisk.screen.deadlines import DeadlineSpec
from derisk.screen.rules import Rule, Term
from derisk.screen.sources import Pending, Source


@dataclass(frozen=True)
class Cited:
    """A statement with its source and confidence tag."""

    text: str
    source: str
    confidence: str


@dataclass(frozen=True)
class Fact:
    id: str
    value: bool | float | date | str
    unit: str
    text: str
    source: str
    confidence: str


@dataclass(frozen=True)
class SectorList:
    id: str
    label: str
    source: str
    confidence: str


@dataclass(frozen=True)
class Regime:
    code: str
    name: str
    title: str
    scope: str
    scope_countries: frozenset[str]
    authority: Cited
    instrument: Cited
    facts: Mapping[str, Fact]
    lists: Mapping[str, SectorList]
    thresholds: Mapping[str, Cited]
    terms: Mapping[str, Term]
    rules: tuple[Rule, ...]
    deadlines: tuple[DeadlineSpec, ...]
    standstill: Cited | None
    penalties: tuple[Cited, ...]
    notes: tuple[Cited, ...]
    advice: Mapping[str, Cited]
    file: str
    sources: Mapping[str, Source] = field(default_factory=dict)
    holidays: str | None = None
    rolls: Cited | None = None
    pending: tuple[Pending, ...] = ()


@dataclass(frozen=True)
class Sector:
    id: str
    label: str
    lists: Mapping[str, tuple[str, ...]]
    possibly: Mapping[str, tuple[str, ...]]
    note: str | None


@dataclass(frozen=True)
class Catalogue:
    """Every regime, the sector vocabulary and the country groups, as loaded and checked."""

    regimes: Mapping[str, Regime]
    sectors: Mapping[str, Sector]
    groups: Mapping[str, frozenset[str]]
    group_sources: Mapping[str, Cited]

    @property
    def vocabulary(self) -> dict[str, str]:
        return {s.id: s.label for s in self.sectors.values()}
