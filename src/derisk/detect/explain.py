"""The sentence an alert explains itself with, as data sentence templates with named values.

Every part of the sentence (who, what the detection saw, score and severity, who controls the other end,
listings, laws) is a :class:`Phrase`: an English template marked with ``P_()`` and the values that fill
it. The alert's ``sentence`` (the English text the ``derisk.*/1`` documents keep) is the parts filled and
joined by spaces; the documents also carry the parts themselves (``explanation``), so a renderer can
fill the template's translation from the ``derisk-data`` catalogue (:func:`derisk.i18n.filters.explained`)
without reading values back out of a sentence. Values are names from traffic, sizes and counts: they
are never translated (except a value whose name ends in ``_label``, a fixed word such as a severity)
and renderers escape them like any network text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from derisk.i18n.data import P_, T_, fill, names

if TYPE_CHECKING:
    from derisk.detect.alert import Alert

#: Fixed words an explanation carries as ``*_label`` values (and a few evidence values), translated by
#: exact lookup.
LABELS: Final = (
    T_("low"),
    T_("medium"),
    T_("high"),
    T_("critical"),
    T_("registry"),
    T_("as-registration"),
    T_("unknown"),
    T_("controlling jurisdiction inferred from AS registration"),
    # values of the evidence keys ``scope`` and ``key``
    T_("destination"),
    T_("system"),
    T_("organisation"),
    T_("jurisdiction"),
    T_("server_name"),
    T_("ip"),
)


@dataclass(frozen=True)
class Phrase:
    """A sentence template (``{name}`` placeholders) and its values; ``part`` names its role.
    ``fields`` None: a literal sentence, no template (shown as it is, never translated)."""

    template: str
    fields: Mapping[str, str] | None = field(default_factory=dict)
    part: str = "summary"

    def text(self) -> str:
        """The English sentence (values put in once; a value is never scanned for placeholders)."""
        return self.template if self.fields is None else fill(self.template, **self.fields)

    def to_json(self) -> dict[str, Any]:
        fields = None if self.fields is None else dict(self.fields)
        return {"part": self.part, "template": self.template, "fields": fields}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Phrase | None:
        template, values = doc.get("template"), doc.get("fields")
        if not isinstance(template, str) or not isinstance(values, Mapping | None):
            return None
        fields = None if values is None else {str(k): str(v) for k, v in values.items()}
        if fields is not None and any(name not in fields for name in names(template) if name != "dest"):
            return None
        return cls(template, fields, str(doc.get("part") or "summary"))


def phrase(template: str, part: str = "summary", **values: object) -> Phrase:
    """A :class:`Phrase` with every value as text (numbers formatted by the caller)."""
    return Phrase(template, {k: str(v) for k, v in values.items()}, part)


def literal(text: str, part: str = "summary") -> Phrase:
    """A sentence that is no template (an alert stored before templates, or written by other code):
    shown as it is, never translated."""
    return Phrase(text, None, part)


def summary_text(summary: Phrase) -> str:
    """The summary as alerts keep it: ``{dest}`` left in for the sentence to fill."""
    if summary.fields is None:
        return summary.template
    return fill(summary.template, **{"dest": "{dest}", **summary.fields})


def _who(alert: Alert) -> Phrase:
    t = alert.target
    others = int(alert.evidence.get("host_count", 1) or 1) - 1
    if t.system and t.src_ip and others > 0:
        template = (
            P_("System {system} ({src_ip} and {others} other hosts)")
            if others > 1
            else P_("System {system} ({src_ip} and {others} other host)")
        )
        return phrase(template, "who", system=t.system, src_ip=t.src_ip, others=others)
    if t.system and t.src_ip:
        return phrase(P_("System {system} ({src_ip})"), "who", system=t.system, src_ip=t.src_ip)
    if t.system:
        return phrase(P_("System {system}"), "who", system=t.system)
    if t.src_ip:
        return phrase(P_("Host {src_ip}"), "who", src_ip=t.src_ip)
    return phrase(P_("The site"), "who")


def _where(alert: Alert) -> str:
    t = alert.target
    dest = t.destination
    if t.server_name and t.dst_ip and t.server_name != dest:
        dest = f"{dest} ({t.server_name})"
    elif t.dst_ip and t.server_name and t.dst_ip != dest:
        dest = f"{dest} ({t.dst_ip})"
    return dest


def _summary(alert: Alert) -> Phrase:
    found = alert.summary_phrase
    if found is not None and found.fields is not None:
        fields = dict(found.fields)
        if "{dest}" in found.template:
            fields["dest"] = _where(alert)
        return Phrase(found.template, fields, "summary")
    # an alert without its template (stored before templates existed): English, as it was written
    return literal(alert.summary.replace("{dest}", _where(alert)))


def _control(alert: Alert) -> Phrase:
    t = alert.target
    if t.controller:
        owner = bool(t.organisation and t.organisation != t.controller)
        values: dict[str, object] = {"controller": t.controller}
        if owner:
            values["organisation"] = t.organisation
        if t.jurisdiction and t.jurisdiction_basis:
            values.update(jurisdiction=t.jurisdiction, basis_label=t.jurisdiction_basis)
            template = (
                P_(
                    "The endpoint belongs to {organisation}, controlled by {controller} "
                    "(jurisdiction {jurisdiction}, {basis_label})."
                )
                if owner
                else P_(
                    "The endpoint is controlled by {controller} (jurisdiction {jurisdiction}, {basis_label})."
                )
            )
        elif t.jurisdiction:
            values["jurisdiction"] = t.jurisdiction
            template = (
                P_(
                    "The endpoint belongs to {organisation}, controlled by {controller} (jurisdiction {jurisdiction})."
                )
                if owner
                else P_("The endpoint is controlled by {controller} (jurisdiction {jurisdiction}).")
            )
        else:
            template = (
                P_("The endpoint belongs to {organisation}, controlled by {controller}.")
                if owner
                else P_("The endpoint is controlled by {controller}.")
            )
        return phrase(template, "control", **values)
    if t.jurisdiction and t.jurisdiction_basis:
        return phrase(
            P_("Controlling jurisdiction: {jurisdiction} ({basis_label})."),
            "control",
            jurisdiction=t.jurisdiction,
            basis_label=t.jurisdiction_basis,
        )
    if t.jurisdiction:
        return phrase(
            P_("Controlling jurisdiction: {jurisdiction} (basis unknown)."),
            "control",
            jurisdiction=t.jurisdiction,
        )
    return phrase(P_("Its controller is unknown."), "control")


def explanation(alert: Alert) -> list[Phrase]:
    """The parts of ``alert``'s sentence, in order; their English texts joined by spaces are the sentence."""
    parts = [
        _who(alert),
        _summary(alert),
        phrase(
            P_("(score {score}, severity {severity_label})."),
            "score",
            score=f"{alert.score:.2f}",
            severity_label=alert.severity,
        ),
        _control(alert),
    ]
    if alert.listings:
        named = "; ".join(x.short() for x in alert.listings[:3])
        if len(alert.listings) > 3:
            parts.append(
                phrase(
                    P_("Listed in its control chain: {listed} and {more} more."),
                    "listings",
                    listed=named,
                    more=len(alert.listings) - 3,
                )
            )
        else:
            parts.append(phrase(P_("Listed in its control chain: {listed}."), "listings", listed=named))
    if alert.laws:
        labels = "; ".join(law.label() for law in alert.laws[:4])
        if len(alert.laws) > 4:
            template = P_(
                "Laws there can compel cooperation: {laws} and {more} more. Decision support, not legal advice."
            )
            parts.append(phrase(template, "laws", laws=labels, more=len(alert.laws) - 4))
        else:
            template = P_("Laws there can compel cooperation: {laws}. Decision support, not legal advice.")
            parts.append(phrase(template, "laws", laws=labels))
    if alert.destination_phrase is not None:
        parts.append(alert.destination_phrase)
    return parts


def sentence_of(parts: list[Phrase]) -> str:
    """The English sentence: the parts' texts joined by spaces (a ``destination`` part is no part of it)."""
    return " ".join(p.text() for p in parts if p.part != "destination")
