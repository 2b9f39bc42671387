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
from datetime import date
from typing import Final

from derisk.i18n.data import T_, fill
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
    "control.acquired": VarSpec(T.BOOL, "whether the investor acquires control (sole or joint)"),
    "control.joint_to_sole": VarSpec(T.BOOL, "whether joint control becomes sole control"),
    "investor.name": VarSpec(T.STR, "the investor's name"),
    "investor.kind": VarSpec(T.STR, "the kind of investor (company, person, state)"),
    "investor.country": VarSpec(T.STR, "the investor's country (incorporation, or residence of a person)"),
    "investor.countries": VarSpec(T.SET, "the investor's countries of incorporation, seat and main activity"),
    "investor.ubo_countries": VarSpec(
        T.SET, "the residence of the investor's ultimate beneficial owners (more than 25%, or control)"
    ),
    "investor.minor_person_countries": VarSpec(
        T.SET, "the residence of natural persons holding 25% or less of the investor without control"
    ),
    "investor.open_tops": VarSpec(
        T.SET,
        "countries of undertakings or state bodies at the top of the chain holding more than 25% or control",
    ),
    "investor.chain_countries": VarSpec(T.SET, "the countries of every party in the investor chain"),
    "investor.controller_countries": VarSpec(T.SET, "the countries of the parties that control the investor"),
    "investor.control_chain_countries": VarSpec(
        T.SET, "the countries of the investor and of those controlling it"
    ),
    "investor.state_countries": VarSpec(T.SET, "states whose bodies control the investor"),
    "investor.chain_text": VarSpec(T.STR, "the investor's control chain"),
    "deal.signing": VarSpec(T.DATE, "the signing date"),
    "deal.closing": VarSpec(T.DATE, "the planned closing date"),
    "deal.intragroup": VarSpec(T.BOOL, "whether the deal is an intragroup restructuring"),
    "today": VarSpec(T.DATE, "the date of the screening"),
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


#: A natural person owning or controlling more than this share of the investor is an ultimate beneficial
#: owner (Belgian anti-money-laundering law, as the Belgian screening regime uses it).
UBO_PCT: Final = 25.0


def tops_with_weight(party: Party) -> Iterator[tuple[Party, float | None, bool]]:
    """Each party at the top of the chain, its effective share of the investor and whether it controls it.

    The share is the product of ``stake_pct`` along the path (None when a link gives no percentage);
    control holds when every link controls its child.
    """

    def go(p: Party, share: float | None, ctl: bool) -> Iterator[tuple[Party, float | None, bool]]:
        if not p.owners:
            yield p, share, ctl
            return
        for o in p.owners:
            s = None if share is None or o.stake_pct is None else share * o.stake_pct / 100
            yield from go(o, s, ctl and controls(o))

    if not party.owners:
        return
    for o in party.owners:
        yield from go(o, o.stake_pct, controls(o))


def significant(share: float | None, ctl: bool) -> bool:
    """More than 25% or control; an unknown share counts (the deal file did not rule it out)."""
    return ctl or share is None or share > UBO_PCT


#: How one party of the investor chain is written: its name, then the stake its owner holds (when the
#: deal file gives one), its country, where it is run from when that differs, and whether it is a state
#: body. Only the forms with words in them are templates (``T_``): a page translates the chain by
#: matching them (:func:`derisk.i18n.data.sentence`); the others are names, figures and codes.
CHAIN_PARTY: Final = {
    (False, True, False): T_("{name} ({country}, run from {run})"),
    (True, True, False): T_("{name} ({share}, {country}, run from {run})"),
    (False, False, True): T_("{name} ({country}, state body)"),
    (True, False, True): T_("{name} ({share}, {country}, state body)"),
    (False, True, True): T_("{name} ({country}, run from {run}, state body)"),
    (True, True, True): T_("{name} ({share}, {country}, run from {run}, state body)"),
}
#: How the target's sectors are joined in ``$target.sectors`` (pages translate each label), and what it
#: says when the deal file gives none.
SECTOR_JOIN: Final = "; "
NO_SECTOR: Final = T_("no sector given")
#: One link of the chain: a party, then the chain of those who control it (each ``*_sentence`` value is
#: translated in turn, so a chain of any length is).
CONTROLLED_BY: Final = T_("{party_sentence} ← controlled by {chain_sentence}")


def _party_text(party: Party, share: float | None, state: bool) -> str:
    run = party.main_activity_country
    runs = bool(run and run != party.country)
    values = {"name": party.label, "share": f"{share:g}%" if share is not None else "",
              "country": party.country or "?", "run": run or ""}  # fmt: skip
    template = CHAIN_PARTY.get((share is not None, runs, state))
    if template is None:  # no words to translate: name (share, country)
        figures = f"{values['share']}, " if share is not None else ""
        return f"{party.label} ({figures}{values['country']})"
    return fill(template, **values)


def chain_text(party: Party) -> str:
    """The investor and the chain of those who control it, in English (documents keep it; pages
    translate it through the ``T_`` templates above)."""
    parts = [_party_text(party, None, False)]
    current = party
    while True:
        ctl = [o for o in current.owners if controls(o)]
        if not ctl:
            break
        current = ctl[0]
        parts.append(_party_text(current, current.stake_pct, current.kind == "state"))
    text = parts[-1]
    for head in reversed(parts[:-1]):
        text = fill(CONTROLLED_BY, party_sentence=head, chain_sentence=text)
    return text


def investor_variables(investor: Party) -> dict[str, Value]:
    nodes = list(walk(investor))
    weighted = list(tops_with_weight(investor))
    ubos = [p for p, share, c in weighted if p.kind == "person" and significant(share, c)]
    minor = [p for p, share, c in weighted if p.kind == "person" and not significant(share, c)]
    open_tops = [p for p, share, c in weighted if p.kind != "person" and significant(share, c)]
    ctl = control_chain(investor)

    def codes(parties: list[Party]) -> frozenset[str]:
        return frozenset(p.country for p in parties if p.country)

    return {
        "investor.name": investor.label,
        "investor.kind": investor.kind,
        "investor.country": investor.country,
        "investor.countries": codes([investor])
        | frozenset(c for c in (investor.main_activity_country,) if c),
        "investor.ubo_countries": codes(ubos),
        "investor.minor_person_countries": codes(minor),
        "investor.open_tops": codes(open_tops),
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


def subjects(
    deal: Deal, investor: Party, labels: Mapping[str, str] | None = None, today: date | None = None
) -> list[Subject]:
    """The direct target and each subsidiary, with their variables (investor side included)."""
    t, s = deal.target, deal.stake

    def shown(sectors: tuple[str, ...]) -> str:
        # the sectors' labels (data strings of sectors.yaml), joined as pages split them to translate
        return SECTOR_JOIN.join((labels or {}).get(x, x) for x in sectors) or NO_SECTOR

    common: dict[str, Value] = {
        **investor_variables(investor),
        "target.listed": t.listed,
        "target.greenfield": t.greenfield,
        "target.asset_deal": t.asset_deal,
        "target.branch": t.branch,
        "deal.signing": deal.signing,
        "deal.closing": deal.closing,
        "deal.intragroup": deal.intragroup,
        "today": today,
        "others.required": frozenset(),
        "others.unclear": frozenset(),
    }
    joint_to_sole = s.joint_before and s.control_after is True and not s.joint_after
    acquired = (
        None if s.control_after is None else (s.control_after and not s.control_before) or joint_to_sole
    )
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
                "control.joint_to_sole": joint_to_sole,
            },
        )
    ]
    for sub in t.subsidiaries:
        factor = sub.held_pct / 100
        after_ctl = None if s.control_after is None else (s.control_after and sub.controlled)
        before_ctl = s.control_before and sub.controlled
        sub_j2s = joint_to_sole and sub.controlled
        sub_acquired = None if after_ctl is None else (after_ctl and not before_ctl) or sub_j2s
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
                    "control.joint_to_sole": sub_j2s,
                },
            )
        )
    return out
