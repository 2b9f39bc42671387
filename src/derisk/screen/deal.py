"""The deal: who acquires what, how much and when, as typed objects (read by :mod:`derisk.screen.dealfile`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from derisk import countries

KINDS: Final = ("company", "person", "state")
REGIME_CODES: Final = ("BE", "EU", "DE", "FR", "NL")


@dataclass(frozen=True)
class Party:
    """A node of the investor chain: inline facts, or ``entity`` naming a node of the Know graph."""

    where: str
    name: str | None
    entity: str | None
    country: str | None
    kind: str | None
    stake_pct: float | None
    controls: bool | None
    main_activity_country: str | None
    owners: tuple[Party, ...]

    @property
    def label(self) -> str:
        return self.name or self.entity or "?"


@dataclass(frozen=True)
class Subsidiary:
    name: str
    country: str
    sectors: tuple[str, ...]
    turnover_eur: float | None
    held_pct: float
    controlled: bool


@dataclass(frozen=True)
class Target:
    name: str
    country: str
    sectors: tuple[str, ...]
    turnover_eur: float | None
    listed: bool
    greenfield: bool
    asset_deal: bool
    branch: bool
    subsidiaries: tuple[Subsidiary, ...]


@dataclass(frozen=True)
class Stake:
    before_pct: float
    after_pct: float
    control_before: bool
    control_after: bool | None
    joint_before: bool = False  # control_before is joint control
    joint_after: bool = False  # control_after is joint control


@dataclass(frozen=True)
class InfoRequest:
    regime: str
    requested: date
    answered: date | None


@dataclass(frozen=True)
class Deal:
    source: str
    title: str
    investor: Party
    target: Target
    stake: Stake
    signing: date
    closing: date
    notification: date | None
    info_requests: tuple[InfoRequest, ...]
    intragroup: bool = False
    complete_documents: date | None = None

    def to_json(self) -> dict[str, Any]:
        def party(p: Party) -> dict[str, Any]:
            out: dict[str, Any] = {
                k: v
                for k, v in (
                    ("name", p.name),
                    ("entity", p.entity),
                    ("country", p.country),
                    ("kind", p.kind),
                    ("stake_pct", p.stake_pct),
                    ("controls", p.controls),
                    ("main_activity_country", p.main_activity_country),
                )
                if v is not None
            }
            if p.owners:
                out["owners"] = [party(o) for o in p.owners]
            return out

        t = self.target
        return {
            "title": self.title,
            "investor": party(self.investor),
            "target": {
                "name": t.name,
                "country": t.country,
                "sectors": list(t.sectors),
                "turnover_eur": t.turnover_eur,
                "listed": t.listed,
                "greenfield": t.greenfield,
                "asset_deal": t.asset_deal,
                "branch": t.branch,
                "subsidiaries": [
                    {
                        "name": s.name,
                        "country": s.country,
                        "sectors": list(s.sectors),
                        "turnover_eur": s.turnover_eur,
                        "held_pct": s.held_pct,
                        "controlled": s.controlled,
                    }
                    for s in t.subsidiaries
                ],
            },
            "stake": {
                "before_pct": self.stake.before_pct,
                "after_pct": self.stake.after_pct,
                "control_before": "joint" if self.stake.joint_before else self.stake.control_before,
                "control_after": "joint" if self.stake.joint_after else self.stake.control_after,
            },
            "intragroup": self.intragroup,
            "dates": {
                "signing": self.signing.isoformat(),
                "closing": self.closing.isoformat(),
                "notification": self.notification.isoformat() if self.notification else None,
                "complete_documents": (
                    self.complete_documents.isoformat() if self.complete_documents else None
                ),
            },
            "information_requests": [
                {
                    "regime": r.regime,
                    "requested": r.requested.isoformat(),
                    "answered": r.answered.isoformat() if r.answered else None,
                }
                for r in self.info_requests
            ],
        }


def country_code(value: Any) -> str | None:
    """An ISO 3166 alpha-2 code (upper case) for a code or English name, or None if unknown."""
    return countries.country_code(value)


def country_name(code: str) -> str:
    return countries.country_name(code)
