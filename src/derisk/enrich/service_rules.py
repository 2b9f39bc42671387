"""Rules that name a service the control graph does not list, from facts the graph already holds.

A server name whose registrable domain the graph does not know is usually left unattributed (see
:mod:`derisk.enrich.attribution`). Two general rules attribute part of that long tail, each only
when the infrastructure layer of the same flow corroborates it, and each weaker than a curated
fact (confidence :data:`INFERRED_CONFIDENCE`, below the graph's V/S/U; the basis says which rule):

1. **Brand under another public suffix** (basis :data:`BRAND_BASIS`): the registrable domain's
   label (the part before the public suffix: ``google`` of ``google.it``) is the label of a domain
   the graph holds (``google.com``), that label is a name of the entity holding it, of its
   controller or of its group (a brand, not a service word: ``run`` of ``run.app`` is no brand),
   and the flow's server is run by that same group (the AS answers the same controller or
   group). ``google.it`` on Google's AS is Google; on Akamai, or a look-alike anywhere, it stays
   unknown.
2. **The operator's own service** (basis :data:`OPERATOR_BASIS`): the label clearly names the
   entity that runs the server (its name or an alias, its controller's, its group's or the AS's
   registered name, compared whole, company forms dropped: ``ing`` names "ING" but not "ING Bank"),
   so ``mijn.ing.nl`` on ING's own AS is ING. A customer's domain on a CDN or cloud never names the
   CDN or cloud, so it stays unknown; no spelling variant or part of a name counts (a look-alike
   such as ``g00gle`` or ``google-seo`` names nobody).

Labels and names are compared compacted: lower-case ASCII letters and digits only, company-form
words dropped (:func:`derisk.know.orgnames.reduce_name`), and at least :data:`MIN_LABEL`
characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from derisk.enrich.domains import split_name
from derisk.know.attribution import AttributionIndex, Match
from derisk.know.orgnames import reduce_name

BRAND_BASIS: Final = "brand-domain"
OPERATOR_BASIS: Final = "operator-domain"
#: Below the control graph's V/S/U: a rule's inference from facts, not a fact.
INFERRED_CONFIDENCE: Final = "inferred"
#: Labels shorter than this never match (two letters name too many things).
MIN_LABEL: Final = 3
#: Id prefixes of registration records (CAIDA AS2Org, PeeringDB): they are looked up lazily per
#: capture, so their domains would make a brand depend on the other names of the same capture.
_REGISTRY_PREFIXES: Final = ("as2org-", "peeringdb-org-")
_NOT_ALNUM: Final = re.compile(r"[^a-z0-9]+")
_HOST_LABEL: Final = re.compile(r"[A-Za-z0-9-]+")


def compact(text: str) -> str:
    """``deutsche-telekom`` and "Deutsche Telekom AG" both → ``deutschetelekom``."""
    return _NOT_ALNUM.sub("", text.lower())


def name_key(name: str) -> str:
    """An organisation name reduced (company forms and registry words dropped) and compacted."""
    return compact(reduce_name(name))


def domain_label(domain: str) -> str | None:
    """The compacted label of a registrable domain (``google.co.uk`` → ``google``), else None.

    Only a host-name label (ASCII letters, digits, hyphens) has one: a server name is attacker-
    controlled text, and compacting ``goo\x00gle`` or ``g\u200boogle`` would make a look-alike
    read as the brand."""
    parts = split_name(domain)
    if not parts.suffix or not parts.domain or parts.subdomain:
        return None
    if not _HOST_LABEL.fullmatch(parts.domain):
        return None
    label = compact(parts.domain)
    return label if len(label) >= MIN_LABEL else None


@dataclass
class ServiceRules:
    """The two rules over one attribution index; caches built on first use."""

    index: AttributionIndex
    _heads: dict[str, list[str]] | None = field(default=None, repr=False)
    _stamp: int = field(default=-1, repr=False)
    _names: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    def _by_head(self) -> dict[str, list[str]]:
        """The graph's domains by their compacted first label (a string split, no suffix list):
        a registrable domain of label ``x`` is ``x.<suffix>``, so only these need the suffix list."""
        if self._heads is None or self._stamp != len(self.index.by_domain):
            heads: dict[str, list[str]] = {}
            for domain, match in self.index.by_domain.items():
                head, dot, _ = domain.partition(".")
                if dot and not match.org_id.startswith(_REGISTRY_PREFIXES):
                    heads.setdefault(compact(head), []).append(domain)
            self._heads, self._stamp = heads, len(self.index.by_domain)
        return self._heads

    def holders(self, label: str) -> list[tuple[str, Match]]:
        """The graph's registrable domains of ``label`` and their matches (the first domain of each
        entity, in name order)."""
        found: list[tuple[str, Match]] = []
        for domain in sorted(self._by_head().get(label, [])):
            match = self.index.by_domain[domain]
            if domain_label(domain) == label and all(m.org_id != match.org_id for _, m in found):
                found.append((domain, match))
        return found

    def _entity_names(self, entity_id: str | None) -> frozenset[str]:
        if entity_id is None:
            return frozenset()
        found = self._names.get(entity_id)
        if found is None:
            graph = self.index.graph
            entity = graph.entities.get(entity_id) if graph is not None else None
            names = (entity.name, *entity.aliases) if entity is not None else ()
            found = self._names[entity_id] = frozenset(k for n in names if len(k := name_key(n)) >= MIN_LABEL)
        return found

    def names_of(self, match: Match, *extra: str | None) -> frozenset[str]:
        """The compacted names of a match's entity, its controller and its group (and ``extra``)."""
        names = set(self._entity_names(match.org_id)) | self._entity_names(match.controller_id)
        for other in (match.group, *extra):
            if other and len(key := name_key(other)) >= MIN_LABEL:
                names.add(key)
        return frozenset(names)

    def brand(self, domain: str, infra: Match | None) -> Match | None:
        """Rule 1: the group whose brand ``domain`` carries, when the same group runs the server."""
        label = domain_label(domain)
        if label is None or infra is None:
            return None
        same = [(d, m) for d, m in self.holders(label) if _same_group(m, infra) and label in self.names_of(m)]
        if len({m.controller_id or m.org_id for _, m in same}) != 1:
            return None
        known, chosen = next(((d, m) for d, m in same if m.org_id == infra.org_id), same[0])
        note = (
            f"{domain}: the brand {label!r} of {chosen.org_name} ({known} in the graph), served from the"
            f" network of {infra.org_name}, the same group (inferred)"
        )
        return _inferred(chosen, note)

    def operator(self, domain: str, infra: Match | None, as_org: str | None) -> Match | None:
        """Rule 2: the operator of the server, when ``domain``'s label clearly names it."""
        label = domain_label(domain)
        if label is None or infra is None or label not in self.names_of(infra, as_org):
            return None
        note = f"{domain}: the label {label!r} names the server's operator, {infra.org_name} (inferred)"
        return _inferred(infra, note)


def _same_group(candidate: Match, infra: Match) -> bool:
    """Whether the infrastructure answer is the candidate's entity, controller or group."""
    if candidate.org_id == infra.org_id:
        return True
    ours = {i for i in (candidate.controller_id, candidate.org_id) if i}
    if infra.controller_id is not None and infra.controller_id in ours:
        return True
    return candidate.group is not None and candidate.group == infra.group


def _inferred(match: Match, note: str) -> Match:
    return Match(
        org_id=match.org_id,
        org_name=match.org_name,
        controller_id=match.controller_id,
        controller_name=match.controller_name,
        jurisdiction=match.jurisdiction,
        path=(note, *match.path),
        confidence=INFERRED_CONFIDENCE,
        group=match.group,
        state_controlled=match.state_controlled,
        state=match.state,
        joint=match.joint,
        origin=match.origin,
        sentence=match.sentence,
    )
