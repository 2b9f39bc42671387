"""Sentences a person can follow for a controller resolution (reports, CLI, JSON ``sentence``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from derisk.know.resolve import Resolution

_BASIS = {
    "control-jurisdiction": "where its control is exercised",
    "country-of-incorporation": "its country of incorporation; where control is exercised is not recorded",
    "state": "the state whose bodies hold control",
    "joint": "common to all joint controllers",
    "cycle": "common to all members of the cycle",
    "unknown": "unknown",
}


def resolution_sentence(res: Resolution) -> str:
    """One paragraph: who controls the entity, through what, from where, and how sure we are."""
    parts: list[str] = []
    name = res.entity.name
    if res.cycles and res.controller is None and not res.joint:
        loops = "; ".join(" → ".join(cycle) for cycle in res.cycles)
        parts.append(f"{name}: control runs in a cycle ({loops}); no ultimate controller can be named.")
    elif res.joint:
        names = " and ".join(e.name for e in res.joint)
        parts.append(f"{name} is jointly controlled by {names}.")
    elif res.controller is not None and res.controller.id == res.entity.id:
        parts.append(f"{name} has no recorded controlling owner; it is its own ultimate controller.")
    elif res.controller is not None:
        chain = " → ".join(res.chain()[:-1] if res.jurisdiction else res.chain())
        parts.append(f"{name} is ultimately controlled by {res.controller.name} ({chain}).")
    if res.jurisdiction:
        parts.append(
            f"Control is exercised from {res.jurisdiction} ({_BASIS.get(res.jurisdiction_basis, '')})."
        )
    else:
        parts.append("The controlling jurisdiction is unknown.")
    if res.state_controlled:
        parts.append(f"A state body of {res.state} sits at the top: the entity is state-controlled.")
    if res.path:
        parts.append(f"The weakest link in this chain is tagged [{res.confidence}].")
    for step in res.disputed:
        cite = step.link.source.cite() if step.link.source else "no source"
        parts.append(f"Disputed: {step.owner.name} over {step.asset.name} ({step.reason}; {cite}).")
    for step in res.state_influence:
        parts.append(f"State stake without control: {step.owner.name} in {step.asset.name} ({step.reason}).")
    parts.extend(res.notes)
    return " ".join(parts)
