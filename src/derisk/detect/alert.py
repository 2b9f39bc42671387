"""The alert every detection returns: its numbers, the flows it rests on, who controls the other end,
the laws that reach them, and the sentence a report shows.

Severity weighs the detection score and who can be compelled: the same beacon ranks one level higher
when the destination's controlling jurisdiction has laws that oblige companies to cooperate with
intelligence or hand over data. Legal statements come only from :func:`derisk.know.laws.laws_for`
(injected), keep their confidence tags, and are decision support, not legal advice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from derisk.detect.explain import Phrase, explanation, sentence_of, summary_text
from derisk.i18n.data import T_
from derisk.kinds import SEVERITIES as SEVERITIES
from derisk.safetext import bound

MAX_FLOW_IDS: Final = 20

#: ``laws_for(jurisdiction) -> list of Law`` (see :mod:`derisk.know.laws`); injected so tests can pass a tiny table.
LawsFor = Callable[[str], Sequence[Any]]


def cached_laws(laws: LawsFor) -> LawsFor:
    """``laws`` asked once per jurisdiction (a run asks for the same few many times)."""
    cache: dict[str, list[Any]] = {}

    def cached(jurisdiction: str) -> list[Any]:
        if jurisdiction not in cache:
            cache[jurisdiction] = list(laws(jurisdiction))
        return cache[jurisdiction]

    return cached


@dataclass(frozen=True)
class LawRef:
    """The part of a law an alert shows; taken from :class:`derisk.know.laws.Law`."""

    jurisdiction: str
    law: str
    article: str | None
    confidence: str
    source: str | None
    citation: str | None = None

    @classmethod
    def from_law(cls, law: Any, jurisdiction: str) -> LawRef:
        article = getattr(law, "article", None)
        cite = getattr(law, "citation", None)
        return cls(
            jurisdiction=str(getattr(law, "jurisdiction", None) or jurisdiction),
            law=str(getattr(law, "law", "") or ""),
            article=str(article) if article not in (None, "") else None,
            confidence=str(getattr(law, "confidence", "U") or "U"),
            source=str(getattr(law, "source", "") or "") or None,
            citation=str(cite()) if callable(cite) else None,
        )

    def label(self) -> str:
        if self.citation:
            return self.citation
        art = f" art. {self.article}" if self.article else ""
        return f"{self.law}{art} [{self.confidence}]"

    def to_json(self) -> dict[str, Any]:
        return {
            "jurisdiction": self.jurisdiction,
            "law": self.law,
            "article": self.article,
            "confidence": self.confidence,
            "source": self.source,
            "citation": self.label(),
        }


def compelling_laws(laws_for: LawsFor, jurisdiction: str | None) -> tuple[LawRef, ...]:
    """The laws in force in ``jurisdiction`` that can compel cooperation (empty when none or unknown)."""
    if not jurisdiction:
        return ()
    refs = []
    for law in laws_for(jurisdiction):
        if getattr(law, "in_force", True) is False:
            continue
        refs.append(LawRef.from_law(law, jurisdiction))
    return tuple(refs)


@dataclass(frozen=True)
class ListingRef:
    """An entity of the destination's control chain that a sanctions or watch list names (taken from
    :class:`derisk.know.risk.Listing`): its role, FtM topics, datasets, sanctions and source."""

    entity_id: str
    name: str
    role: str
    topics: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    sanctions: tuple[str, ...] = ()
    source: str | None = None

    @classmethod
    def from_listing(cls, listing: Any) -> ListingRef:
        return cls.from_json(listing.to_json())

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ListingRef:
        def texts(key: str) -> tuple[str, ...]:
            return tuple(str(v) for v in doc.get(key) or ())

        return cls(
            entity_id=str(doc.get("entity_id") or ""),
            name=str(doc.get("name") or ""),
            role=str(doc.get("role") or ""),
            topics=texts("topics"),
            datasets=texts("datasets"),
            sanctions=texts("sanctions"),
            source=str(doc["source"]) if doc.get("source") else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "entity_id": self.entity_id,
            "name": self.name,
            "role": self.role,
            "topics": list(self.topics),
            "datasets": list(self.datasets),
            "sanctions": list(self.sanctions),
            "source": self.source,
        }

    def short(self) -> str:
        """``Name (role: topics; datasets)``, for the alert's sentence (details in :meth:`label`)."""
        what = [self.role, ", ".join(self.topics), ", ".join(self.datasets)]
        return f"{self.name} ({'; '.join(w for w in what if w)})"

    def label(self) -> str:
        """``Name (role): topics …; datasets …; sanction …; source …`` (plain text; renderers escape it)."""
        parts = []
        if self.topics:
            parts.append("topics " + ", ".join(self.topics))
        if self.datasets:
            parts.append("datasets " + ", ".join(self.datasets))
        parts.extend(f"sanction {line}" for line in self.sanctions)
        if self.source:
            parts.append(f"source {self.source}")
        return f"{self.name} ({self.role}): " + "; ".join(parts)


@dataclass(frozen=True)
class Target:
    """Who an alert is about: the internal side and the attributed destination."""

    src_ip: str | None
    system: str | None
    destination: str
    dst_ip: str | None = None
    server_name: str | None = None
    organisation: str | None = None
    controller: str | None = None
    jurisdiction: str | None = None
    jurisdiction_basis: str | None = None


@dataclass(frozen=True)
class Alert:
    kind: str
    score: float
    severity: str
    target: Target
    summary: str
    evidence: dict[str, Any]
    laws: tuple[LawRef, ...] = ()
    flow_ids: tuple[str, ...] = ()
    flow_count: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    alert_id: str = field(default="")
    #: Listed entities (sanctions, watch lists) of the destination's control chain.
    listings: tuple[ListingRef, ...] = ()
    #: ``summary`` as a data sentence template and its values (None: written as plain text).
    summary_phrase: Phrase | None = None
    #: A destination that is no address but a count ("3 new destinations"), as a template.
    destination_phrase: Phrase | None = None

    # -- convenience ---------------------------------------------------------------------------
    @property
    def src_ip(self) -> str | None:
        return self.target.src_ip

    @property
    def system(self) -> str | None:
        return self.target.system

    @property
    def destination(self) -> str:
        return self.target.destination

    @property
    def controller(self) -> str | None:
        return self.target.controller

    @property
    def jurisdiction(self) -> str | None:
        return self.target.jurisdiction

    @property
    def severity_rank(self) -> int:
        return SEVERITIES.index(self.severity)

    @property
    def sentence(self) -> str:
        return alert_sentence(self)

    def to_json(self) -> dict[str, Any]:
        t = self.target
        parts = explanation(self)
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "severity": self.severity,
            "score": round(self.score, 3),
            "src_ip": t.src_ip,
            "system": t.system,
            "destination": t.destination,
            "dst_ip": t.dst_ip,
            "server_name": t.server_name,
            "organisation": t.organisation,
            "controller": t.controller,
            "jurisdiction": t.jurisdiction,
            "jurisdiction_basis": t.jurisdiction_basis,
            "laws": [law.to_json() for law in self.laws],
            "listings": [item.to_json() for item in self.listings],
            "first_seen": self.first_seen.isoformat() if self.first_seen else None,
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "flow_count": self.flow_count,
            "flow_ids": list(self.flow_ids),
            "summary": self.summary,
            "evidence": self.evidence,
            "sentence": sentence_of(parts),
            "explanation": [p.to_json() for p in parts],
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Alert:
        def ts(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        target = Target(
            src_ip=doc.get("src_ip"),
            system=doc.get("system"),
            destination=str(doc.get("destination") or ""),
            dst_ip=doc.get("dst_ip"),
            server_name=doc.get("server_name"),
            organisation=doc.get("organisation"),
            controller=doc.get("controller"),
            jurisdiction=doc.get("jurisdiction"),
            jurisdiction_basis=doc.get("jurisdiction_basis"),
        )
        laws = tuple(
            LawRef(
                jurisdiction=str(x.get("jurisdiction") or ""),
                law=str(x.get("law") or ""),
                article=x.get("article"),
                confidence=str(x.get("confidence") or "U"),
                source=x.get("source"),
                citation=x.get("citation"),
            )
            for x in doc.get("laws") or []
        )
        return cls(
            kind=str(doc["kind"]),
            score=float(doc["score"]),
            severity=str(doc["severity"]),
            target=target,
            summary=str(doc.get("summary") or ""),
            evidence=dict(doc.get("evidence") or {}),
            laws=laws,
            flow_ids=tuple(doc.get("flow_ids") or ()),
            flow_count=int(doc.get("flow_count") or 0),
            first_seen=ts(doc.get("first_seen")),
            last_seen=ts(doc.get("last_seen")),
            alert_id=str(doc.get("alert_id") or ""),
            listings=tuple(ListingRef.from_json(x) for x in doc.get("listings") or [] if isinstance(x, dict)),
            summary_phrase=_part(doc, "summary"),
            destination_phrase=_part(doc, "destination"),
        )


def _part(doc: dict[str, Any], name: str) -> Phrase | None:
    """The ``name`` part of a stored alert's ``explanation`` as a template (None for an alert stored
    without one, and for a literal part: that is the alert's plain text, which it keeps anyway)."""
    parts = doc.get("explanation")
    for item in parts if isinstance(parts, list) else ():
        if isinstance(item, dict) and item.get("part") == name:
            found = Phrase.from_json(item)
            return found if found is not None and found.fields is not None else None
    return None


def base_severity(score: float) -> int:
    """Severity index from the detection score alone: <0.8 low, <0.9 medium, else high."""
    if score >= 0.9:
        return 2
    if score >= 0.8:
        return 1
    return 0


def make_alert(
    kind: str,
    score: float,
    target: Target,
    summary: str | Phrase,
    evidence: dict[str, Any],
    laws_for: LawsFor,
    *,
    flow_ids: Sequence[str] = (),
    flow_count: int = 0,
    first_seen: datetime | None = None,
    last_seen: datetime | None = None,
    floor: int = 0,
    destination: Phrase | None = None,
) -> Alert:
    """Build an alert: attach the compelling laws, weigh severity by them, give it a stable id.
    ``summary`` is best a :class:`Phrase` (a ``T_()`` template with ``{dest}`` and its values), so
    renderers can translate it; ``destination`` the template of a destination that is a count."""
    summary_phrase = summary if isinstance(summary, Phrase) else None
    summary = summary_text(summary) if isinstance(summary, Phrase) else summary
    score = min(max(float(score), 0.0), 1.0)
    laws = compelling_laws(laws_for, target.jurisdiction)
    level = max(base_severity(score), floor)
    if laws:
        level += 1
        if target.jurisdiction_basis not in (None, "registry"):
            evidence = {
                **evidence,
                "jurisdiction_note": T_("controlling jurisdiction inferred from AS registration"),
            }
    level = min(level, len(SEVERITIES) - 1)
    target = Target(
        src_ip=target.src_ip,
        system=target.system,
        destination=bound(target.destination, 253) or "",
        dst_ip=target.dst_ip,
        server_name=bound(target.server_name, 253),
        organisation=target.organisation,
        controller=target.controller,
        jurisdiction=target.jurisdiction,
        jurisdiction_basis=target.jurisdiction_basis,
    )
    key = json.dumps([kind, target.src_ip, target.system, target.destination], ensure_ascii=True)
    alert_id = f"{kind}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    return Alert(
        kind=kind,
        score=round(score, 3),
        severity=SEVERITIES[level],
        target=target,
        summary=summary,
        evidence=evidence,
        laws=laws,
        flow_ids=tuple(flow_ids[:MAX_FLOW_IDS]),
        flow_count=int(flow_count),
        first_seen=first_seen,
        last_seen=last_seen,
        alert_id=alert_id,
        summary_phrase=summary_phrase,
        destination_phrase=replace(destination, part="destination") if destination else None,
    )


def alert_sentence(alert: Alert) -> str:
    """The one-paragraph sentence a report shows for an alert (plain text; renderers escape it): the
    English texts of its :func:`~derisk.detect.explain.explanation` joined."""
    return sentence_of(explanation(alert))


def with_listings(
    alerts: Sequence[Alert],
    entities_of: Callable[[Alert], Sequence[str]],
    listed: Callable[[str], Sequence[Any]],
) -> list[Alert]:
    """``alerts`` with the listed entities of their destinations' control chains attached.

    ``entities_of(alert)``: the graph ids of the organisations an alert's flows were attributed to;
    ``listed(entity_id)``: the :class:`derisk.know.risk.Listing` items of that entity's chain
    (both injected, so detect needs neither the store nor the control graph).
    """
    out = []
    for alert in alerts:
        refs: dict[str, ListingRef] = {}
        for entity_id in entities_of(alert):
            for item in listed(entity_id):
                ref = ListingRef.from_listing(item)
                refs.setdefault(ref.entity_id, ref)
        out.append(replace(alert, listings=tuple(refs.values())) if refs else alert)
    return out
