"""Sentences a person can follow for a controller resolution (reports, CLI, JSON ``sentence``).

Each sentence is built from parts: an English phrase template marked with ``P_()`` and the named
values that fill it (:data:`Part`). The English sentence (what the ``derisk.*/1`` documents and the
CLI keep) is the parts filled and joined; a page fills each template's translation from the
``derisk-data`` catalogue instead (:func:`derisk.i18n.filters.parts`). Values are names (entities,
jurisdictions, chains), tags and citations: never translated, except a value whose name ends in
``_label`` (a fixed phrase such as the basis of a jurisdiction), and escaped by the page like any
other data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from derisk.i18n.data import P_, T_, fill

if TYPE_CHECKING:
    from derisk.know.resolve import Resolution

#: One part of a sentence: a phrase template and the values that fill it.
Part = tuple[str, dict[str, str]]

_BASIS: Final = {
    "control-jurisdiction": T_("where its control is exercised"),
    "country-of-incorporation": T_(
        "its country of incorporation; where control is exercised is not recorded"
    ),
    "state": T_("the state whose bodies hold control"),
    "joint": T_("common to all joint controllers"),
    "cycle": T_("common to all members of the cycle"),
    "unknown": T_("unknown"),
}

#: Sentences that :mod:`derisk.know.resolve` writes as notes and path reasons (plain English there),
#: marked here so the catalogue translates them when a page shows them (matched as templates).
NOTES: Final = (T_("bodies of the state {state} hold {total}% together"), T_("no source"))


def part(template: str, **values: object) -> Part:
    """A :data:`Part` with every value as text."""
    return template, {k: str(v) for k, v in values.items()}


def text(parts: list[Part]) -> str:
    """The English sentence: the parts filled (values put in once) and joined by spaces."""
    return " ".join(fill(template, **values) for template, values in parts)


def resolution_parts(res: Resolution) -> list[Part]:
    """Who controls the entity, through what, from where, and how sure we are, as parts."""
    parts: list[Part] = []
    name = res.entity.name
    if res.cycles and res.controller is None and not res.joint:
        loops = "; ".join(" → ".join(cycle) for cycle in res.cycles)
        parts.append(
            part(
                P_("{name}: control runs in a cycle ({loops}); no ultimate controller can be named."),
                name=name,
                loops=loops,
            )
        )
    elif res.joint:
        names = " and ".join(e.name for e in res.joint)
        parts.append(part(P_("{name} is jointly controlled by {names}."), name=name, names=names))
    elif res.controller is not None and res.controller.id == res.entity.id:
        parts.append(
            part(
                P_("{name} has no recorded controlling owner; it is its own ultimate controller."), name=name
            )
        )
    elif res.controller is not None:
        chain = " → ".join(res.chain()[:-1] if res.jurisdiction else res.chain())
        parts.append(
            part(
                P_("{name} is ultimately controlled by {controller} ({chain})."),
                name=name,
                controller=res.controller.name,
                chain=chain,
            )
        )
    if res.jurisdiction:
        basis = _BASIS.get(res.jurisdiction_basis, "")
        if basis:
            parts.append(
                part(
                    P_("Control is exercised from {where} ({basis_label})."),
                    where=res.jurisdiction,
                    basis_label=basis,
                )
            )
        else:
            parts.append(part(P_("Control is exercised from {where} ()."), where=res.jurisdiction))
    else:
        parts.append(part(P_("The controlling jurisdiction is unknown.")))
    if res.state_controlled:
        parts.append(
            part(
                P_("A state body of {state} sits at the top: the entity is state-controlled."),
                state=res.state,
            )
        )
    if res.path:
        parts.append(
            part(P_("The weakest link in this chain is tagged [{confidence}]."), confidence=res.confidence)
        )
    for step in res.disputed:
        cite = step.link.source.cite() if step.link.source else "no source"
        parts.append(
            part(
                P_("Disputed: {owner} over {asset} ({reason}; {cite})."),
                owner=step.owner.name,
                asset=step.asset.name,
                reason=step.reason,
                cite=cite,
            )
        )
    for step in res.state_influence:
        parts.append(
            part(
                P_("State stake without control: {owner} in {asset} ({reason})."),
                owner=step.owner.name,
                asset=step.asset.name,
                reason=step.reason,
            )
        )
    parts.extend(part(P_("{note_sentence}"), note_sentence=note) for note in res.notes)
    return parts


def resolution_sentence(res: Resolution) -> str:
    """One paragraph: who controls the entity, through what, from where, and how sure we are."""
    return text(resolution_parts(res))
