"""The variables rules can read (``$name``): what a deal says, reduced to typed values per target.

A deal has one direct target and, for indirect acquisitions, the target's subsidiaries; each is a
*subject* screened on its own (an investor buying a foreign parent indirectly acquires its Belgian
subsidiary). Voting rights in a subsidiary are the investor's rights in the parent multiplied by the
parent's rights in the subsidiary (derisk's method, stated in the memo); control passes down when the
parent controls the subsidiary.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from derisk.screen.deal import Deal, Party
from derisk.screen.rules import T, Value


@dataclass(frozen=True)
class VarSpec:
    type: T
    label: str


VARIABLES: Final[dict[str, VarSpec]] = {
    "target.name": VarSpec(T.STR, "the target's name"),
    "target.country": VarSpec(T.STR, "the target's country"),
    "target.indirect": VarSpec(T.BOOL, "whether the target is acquired indirectly (through its parent)"),
    "target.parent": VarSpec(T.STR, "the parent through which the target is acquired"),
    "target.turnover_eur": VarSpec(T.NUMBER, "the target's turnover in the previous financial year"),
    "target.listed": VarSpec(T.BOOL, "whether the target is listed"),
    "target.greenfield": VarSpec(T.BOOL, "whether this is a greenfield investment"),
    "target.asset_deal": VarSpec(T.BOOL, "whether this is an asset deal"),
    "target.branch": VarSpec(T.BOOL, "whether the target is a branch"),
    "target.sectors": VarSpec(T.STR, "the target's sectors"),
    "stake.before": VarSpec(T.NUMBER, "the investor's voting rights before the deal"),
    "stake.after": VarSpec(T.NUMBER, "the investor's voting rights after the deal"),
    "control.before": VarSpec(T.BOOL, "whether the investor controlled the target before"),
    "control.after": VarSpec(T.BOOL, "whether the investor controls the target after the deal"),
    "control.acquired": VarSpec(T.BOOL, "whether the investor acquires control"),
    "investor.name": VarSpec(T.STR, "the investor's name"),
    "investor.kind": VarSpec(T.STR, "the kind of investor (company, person, state)"),
    "investor.country": VarSpec(T.STR, "the investor's country (incorporation, or residence of a person)"),
    "investor.countries": VarSpec(T.SET, "the investor's countries of incorporation, seat and main activity"),
    "investor.ubo_countries": VarSpec(T.SET, "the residence of the investor's ultimate beneficial owners"),
    "investor.open_tops": VarSpec(T.SET, "countries of undertakings or state bodies at the top of the chain"),
    "investor.chain_countries": VarSpec(T.SET, "the countries of every party in the investor chain"),
    "investor.controller_countries": VarSpec(T.SET, "the countries of the parties that control the investor"),
    "investor.control_chain_countries": VarSpec(
        T.SET, "the countries of the investor and of those controlling it"
    ),
    "investor.state_countries": VarSpec(T.SET, "states whose bodies control the investor"),
    "investor.chain_text": VarSpec(T.STR, "the investor's control chain"),
    "deal.signing": VarSpec(T.DATE, "the signing date"),
    "deal.closing": VarSpec(T.DATE, "the planned closing date"),
    "others.required": VarSpec(T.SET, "member states whose screening is required"),
    "others.unclear": VarSpec(T.SET, "member states whose screening is unclear"),
}


def controls(party: Party) -> bool:
    """Does this owner control its child? ``controls`` if given, else more than half the votes."""
    if party.controls is not None:
        return party.controls
    return party.stake_pct is not None and party.stake_pct > 50


def walk(party: Party) -> Iterator[Party]:
    yield party
    for owner in party.owners:
        yield from walk(owner)


def control_chain(party: Party) -> list[Party]:
    """The owners that control the investor, directly or through other controlling owners."""
    out: list[Party] = []
    for owner in party.owners:
        if controls(owner):
            out.append(owner)
            out.extend(control_chain(owner))
    return out


def _where(party: Party) -> str:
    run = party.main_activity_country
    return f"{party.country or '?'}, run from {run}" if run and run != party.country else party.country or "?"


def chain_text(party: Party) -> str:
    parts = [f"{party.label} ({_where(party)})"]
    current = party
    while True:
        ctl = [o for o in current.owners if controls(o)]
        if not ctl:
            break
        current = ctl[0]
        share = f"{current.stake_pct:g}%, " if current.stake_pct is not None else ""
        state = ", state body" if current.kind == "state" else ""
        parts.append(f"{current.label} ({share}{_where(current)}{state})")
    return " ← controlled by ".join(parts)


def investor_variables(investor: Party) -> dict[str, Value]:
    nodes = list(walk(investor))
    tops = [p for p in nodes if not p.owners]
    ctl = control_chain(investor)

    def codes(parties: list[Party]) -> frozenset[str]:
        return frozenset(p.country for p in parties if p.country)

    return {
        "investor.name": investor.label,
        "investor.kind": investor.kind,
        "investor.country": investor.country,
        "investor.countries": codes([investor])
        | frozenset(c for c in (investor.main_activity_country,) if c),
        "investor.ubo_countries": codes([p for p in tops if p.kind == "person"]),
        "investor.open_tops": codes([p for p in tops if p.kind != "person"]),
        "investor.chain_countries": codes(nodes),
        "investor.controller_countries": codes(ctl),
        "investor.control_chain_countries": codes([investor, *ctl])
        | frozenset(c for c in (investor.main_activity_country,) if c),
        "investor.state_countries": codes([p for p in [investor, *ctl] if p.kind == "state"]),
        "investor.chain_text": chain_text(investor),
    }


@dataclass(frozen=True)
class Subject:
    """One target screened on its own: the direct target or a subsidiary acquired through it."""

    name: str
    country: str
    sectors: tuple[str, ...]
    variables: dict[str, Value]


def subjects(deal: Deal, investor: Party, labels: Mapping[str, str] | None = None) -> list[Subject]:
    """The direct target and each subsidiary, with their variables (investor side included)."""
    t, s = deal.target, deal.stake

    def shown(sectors: tuple[str, ...]) -> str:
        return "; ".join((labels or {}).get(x, x) for x in sectors) or "no sector given"

    common: dict[str, Value] = {
        **investor_variables(investor),
        "target.listed": t.listed,
        "target.greenfield": t.greenfield,
        "target.asset_deal": t.asset_deal,
        "target.branch": t.branch,
        "deal.signing": deal.signing,
        "deal.closing": deal.closing,
        "others.required": frozenset(),
        "others.unclear": frozenset(),
    }
    acquired = None if s.control_after is None else (s.control_after and not s.control_before)
    out = [
        Subject(
            t.name,
            t.country,
            t.sectors,
            {
                **common,
                "target.name": t.name,
                "target.country": t.country,
                "target.indirect": False,
                "target.parent": None,
                "target.turnover_eur": t.turnover_eur,
                "target.sectors": shown(t.sectors),
                "stake.before": s.before_pct,
                "stake.after": s.after_pct,
                "control.before": s.control_before,
                "control.after": s.control_after,
                "control.acquired": acquired,
            },
        )
    ]
    for sub in t.subsidiaries:
        factor = sub.held_pct / 100
        after_ctl = None if s.control_after is None else (s.control_after and sub.controlled)
        before_ctl = s.control_before and sub.controlled
        sub_acquired = None if after_ctl is None else (after_ctl and not before_ctl)
        out.append(
            Subject(
                sub.name,
                sub.country,
                sub.sectors,
                {
                    **common,
                    "target.name": sub.name,
                    "target.country": sub.country,
                    "target.indirect": True,
                    "target.parent": t.name,
                    "target.turnover_eur": sub.turnover_eur,
                    "target.sectors": shown(sub.sectors),
                    "target.listed": False,
                    "stake.before": round(s.before_pct * factor, 4),
                    "stake.after": round(s.after_pct * factor, 4),
                    "control.before": before_ctl,
                    "control.after": after_ctl,
                    "control.acquired": sub_acquired,
                },
            )
        )
    return out
