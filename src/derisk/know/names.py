"""Fuzzy, accent- and transliteration-tolerant name matching over the control graph.

Names and aliases are reduced to a comparable form with ``normality.ascii_text`` (which
transliterates, e.g. "Liège" → "Liege", "阿里巴巴" → "a li ba ba") and company-form words are dropped
("Co., Ltd.", "Limited", "GmbH" …) so that "Cainiao" matches "Cainiao Smart Logistics Network
Limited". Candidates are scored with rapidfuzz (WRatio, 0–100).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from derisk.know.graph import Entity, Graph
    from derisk.know.graphdb import GraphDatabase

_FORMS: Final = frozenset(
    [
        "co",
        "ltd",
        "limited",
        "inc",
        "incorporated",
        "corp",
        "corporation",
        "company",
        "plc",
        "llc",
        "gmbh",
        "ag",
        "sa",
        "sas",
        "nv",
        "bv",
        "srl",
        "pte",
        "private",
        "pvt",
        "group",
        "holding",
        "holdings",
        "the",
        "of",
        "and",
    ]
)
_NON_WORD = re.compile(r"[^a-z0-9]+")
#: A best match at least this far ahead of the next candidate is taken without asking.
CLEAR_LEAD: Final = 8.0
MIN_SCORE: Final = 60.0
#: Below this, a best candidate is only "the nearest name", not a match.
MATCH_SCORE: Final = 80.0
#: Keys this short are matched exactly, never fuzzily: partial scoring finds a three-letter acronym
#: inside any longer name ("STE", Syrian Telecom's, inside "Zzyzx Nonexistent Holdings").
SHORT_KEY: Final = 3


@lru_cache(maxsize=65536)
def comparable(name: str) -> str:
    """Lower-case ASCII words without company-form words."""
    from normality import ascii_text  # imported on first use: 0.1 CPU s that an analysis rarely needs

    text = ascii_text(name) or name
    words = [w for w in _NON_WORD.split(text.lower()) if w and w not in _FORMS]
    return " ".join(words)


def _keys(entity: Entity) -> list[str]:
    return [k for k in dict.fromkeys(comparable(n) for n in (entity.name, *entity.aliases)) if k]


def _graph_keys(graph: Graph) -> tuple[list[str], list[str]]:
    """Comparable keys of the graph's entities and their owners, kept with the graph until it changes
    (a search in a large workspace must not rebuild them for every query)."""
    stamp = (len(graph.entities), graph.__dict__.get("_revision", 0))
    cached = graph.__dict__.get("_name_keys")
    if cached is not None and cached[0] == stamp:
        return cached[1], cached[2]
    keys: list[str] = []
    owners: list[str] = []
    for entity in graph.entities.values():
        for key in _keys(entity):
            keys.append(key)
            owners.append(entity.id)
    graph.__dict__["_name_keys"] = (stamp, keys, owners)
    return keys, owners


def find_entities(
    graph: Graph, name: str, limit: int = 5, source: GraphDatabase | None = None
) -> list[tuple[Entity, float]]:
    """Entities whose name or an alias resembles ``name``, best first, with scores 0–100.

    An exact match (after normalisation) of the name, an alias or the id scores 100. With a
    ``source`` (a workspace), the imported name table is searched too (a DuckDB pre-filter, then the
    same scoring on the candidates) and the entities found are added to ``graph`` (without their
    owners: :func:`derisk.know.graphload.expand` completes the one that is shown).
    """
    wanted = comparable(name)
    if not wanted:
        return []
    known, ids = _graph_keys(graph)
    choices, owners = list(known), list(ids)
    best: dict[str, float] = {}
    if source is not None:
        from derisk.know.graphdb import exists, name_candidates
        from derisk.know.graphload import REGISTRY_PREFIXES, add_found

        found = name_candidates(source, wanted)
        known_keys = set(choices)
        for ident, key in found:
            # A registration record named like a known entity is that entity (its ASes joined it).
            if ident not in graph.entities and not (
                ident.startswith(REGISTRY_PREFIXES) and key in known_keys
            ):
                choices.append(key)
                owners.append(ident)
        if " " not in name and name not in graph.entities and exists(source, name):
            choices.append(wanted)
            owners.append(name)
    for entity_id in (name, name.lower()):
        if entity_id in graph.entities or entity_id in owners:
            best[entity_id] = 100.0
    from rapidfuzz import fuzz, process  # imported on first search, not by every analysis

    # A key of up to three letters ("ly" for LY Corp, "ste") matches only itself: partial scoring
    # would find it inside any name.
    fuzzy = [c if len(c) > SHORT_KEY else "" for c in choices]
    for index, choice in enumerate(choices):
        if choice == wanted:
            best[owners[index]] = 100.0
    for _choice, score, index in process.extract(
        wanted, fuzzy, scorer=fuzz.WRatio, limit=max(limit * 8, 40), score_cutoff=MIN_SCORE
    ):
        owner = owners[index]
        value = 100.0 if choices[index] == wanted else float(score)
        best[owner] = max(best.get(owner, 0.0), value)
    if source is not None:
        top = sorted(best.items(), key=lambda kv: -kv[1])[: max(limit * 2, 10)]
        add_found(graph, source, [k for k, _ in top if k not in graph.entities])
        best = {k: v for k, v in best.items() if k in graph.entities}
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], graph.entities[kv[0]].name, kv[0]))
    return [(graph.entities[k], round(v, 1)) for k, v in ranked[:limit]]


def pick(candidates: list[tuple[Entity, float]], name: str | None = None) -> Entity | None:
    """The single candidate a user obviously meant, or None when the choice is ambiguous.

    Several candidates equal to ``name`` after normalisation ("Microsoft Corporation" and
    "Microsoft Limited" both reduce to "microsoft"): the one whose name or alias is ``name`` itself
    (ignoring case) is meant.
    """
    if not candidates or candidates[0][1] < MATCH_SCORE:
        return None
    exact = [entity for entity, score in candidates if score >= 100.0]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1 and name:
        wanted = name.strip().casefold()
        literal = [e for e in exact if wanted in {n.casefold() for n in (e.name, *e.aliases)} or e.id == name]
        if len(literal) == 1:
            return literal[0]
    if exact:
        return None
    if len(candidates) == 1 or candidates[0][1] - candidates[1][1] >= CLEAR_LEAD:
        return candidates[0][0]
    return None
