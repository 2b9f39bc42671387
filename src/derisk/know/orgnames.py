"""AS organisation names → entities of the control graph, by clear match only.

An AS is registered to an organisation ("Microsoft Corporation", "AKAMAI-AS", "Akamai International
B.V."). When that name clearly names an entity of the graph, the AS attaches to it, so a company's
other AS numbers (AS8068 beside the curated AS8075) are attributed without listing every one.

Names are reduced as supplier names are (:func:`derisk.know.names.comparable`: ASCII, lower case,
company-form words dropped), then registry decorations are dropped too: the words ``as``/``asn``
of handles such as ``AKAMAI-AS`` or ``AS-CHOOPA``, ``block``, and a short trailing number
(``AMAZON-02``).

The rule is the one used for supplier names (:func:`derisk.know.names.pick`), applied strictly:

1. an exact match of the reduced name against entity names and aliases, when all entities of that
   name lead to the same controller;
2. otherwise the longest entity name of two words or more, and at least half the AS name's words,
   that starts the AS name word for word ("China Telecom Global" names "China Telecom"; a one-word
   name never does this way, so "Apple Valley Internet" is not Apple);
3. otherwise a spelling variant: rapidfuzz's ``token_sort_ratio`` (whole names, no partial
   matching) over the candidates that share the first word (a token index built once), taken only
   at :data:`VARIANT_SCORE` or more and :data:`CLEAR_LEAD` ahead of the next entity.

Anything less is no match: the caller falls back to the registration country, labelled a guess.
The index is built once per graph (one pass over names and aliases) and queried once per distinct
AS organisation name of a run, never per flow.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from derisk.know.names import _FORMS, _NON_WORD, CLEAR_LEAD, comparable

#: Words of registry handles that say nothing about who holds the AS.
_REGISTRY_WORDS: Final = frozenset(["as", "asn", "block", "aut", "num"])
#: Legal forms that registries keep in AS names beyond the supplier search's list (after dotted
#: initials are joined: "s.r.o." → "sro", "sp. z o.o." → "sp z oo").
_LEGAL_FORMS: Final = frozenset(
    [
        "sro",
        "spol",
        "sp",
        "z",
        "oo",
        "oy",
        "oyj",
        "ab",
        "asa",
        "aps",
        "spa",
        "srl",
        "sl",
        "sarl",
        "sas",
        "sasu",
        "kg",
        "kgaa",
        "kft",
        "zrt",
        "ooo",
        "oao",
        "zao",
        "pao",
        "jsc",
        "pjsc",
        "ojsc",
        "cjsc",
        "llp",
        "lp",
        "ltda",
        "eireli",
        "kk",
        "pty",
        "bhd",
        "sdn",
        "tbk",
        "se",
        "ek",
        "ev",
    ]
)
_DROPPED: Final = _FORMS | _REGISTRY_WORDS | _LEGAL_FORMS
_SHORT_NUMBER: Final = re.compile(r"^\d{1,2}$")
_INITIALS: Final = re.compile(r"\b(?:[A-Za-z]\.){2,}")
#: Reduced names shorter than this never match (too many companies share them).
MIN_KEY_LENGTH: Final = 3
#: A spelling variant must score this much (token_sort_ratio, 0-100): stricter than the supplier
#: search's threshold because nobody confirms an AS match.
VARIANT_SCORE: Final = 90.0
#: Schemata whose names an AS can be registered to (people are never AS holders here).
ORG_SCHEMATA: Final = frozenset(["Company", "Organization", "PublicBody", "LegalEntity"])


#: Spellings of one legal form, mapped to one (for comparing the forms of two names).
_FORM_SYNONYMS: Final = {
    "corp": "corporation",
    "inc": "incorporated",
    "ltd": "limited",
    "co": "company",
}


def legal_forms(name: str) -> frozenset[str]:
    """The legal-form words of a name ("Microsoft Corporation" → {corporation}; "ORANGE LLC" → {llc})."""
    undotted = _INITIALS.sub(lambda m: m.group(0).replace(".", ""), name) if "." in name else name
    words = _NON_WORD.split(undotted.lower())
    return frozenset(_FORM_SYNONYMS.get(w, w) for w in words if w in _FORMS or w in _LEGAL_FORMS)


def reduce_name(name: str) -> str:
    """The comparable form of an organisation or AS name, registry decorations dropped.

    Dotted initials become one word first ("B.V." → "BV", a company form), and a short number at
    the end goes (``AMAZON-02``, ``GOOGLE-2``), never a number inside a name.
    """
    undotted = _INITIALS.sub(lambda m: m.group(0).replace(".", ""), name) if "." in name else name
    if undotted.isascii():  # the same reduction as comparable(), without transliteration
        words = [w for w in _NON_WORD.split(undotted.lower()) if w and w not in _DROPPED]
    else:
        words = [w for w in comparable(undotted).split() if w not in _DROPPED]
    while words and _SHORT_NUMBER.match(words[-1]) and len(words) > 1:
        words.pop()
    return " ".join(words)


@dataclass
class OrgNameIndex:
    """Reduced names and aliases → entity ids, with a first-word index for fuzzy candidates."""

    exact: dict[str, list[str]] = field(default_factory=dict)
    #: Reduced names by first word, shortest first (``_lengths`` holds their lengths).
    by_first_word: dict[str, list[str]] = field(default_factory=dict)
    _lengths: dict[str, list[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, entities: Iterable[tuple[str, str, Iterable[str]]]) -> OrgNameIndex:
        """From (entity id, name, aliases) triples."""
        exact: dict[str, list[str]] = defaultdict(list)
        for entity_id, name, aliases in entities:
            for key in dict.fromkeys(reduce_name(n) for n in (name, *aliases)):
                if len(key) >= MIN_KEY_LENGTH and entity_id not in exact[key]:
                    exact[key].append(entity_id)
        by_first: dict[str, list[str]] = defaultdict(list)
        for key in exact:
            by_first[key.split(" ", 1)[0]].append(key)
        for keys in by_first.values():
            keys.sort(key=len)
        lengths = {word: [len(k) for k in keys] for word, keys in by_first.items()}
        return cls(exact=dict(exact), by_first_word=dict(by_first), _lengths=lengths)

    def __len__(self) -> int:
        return len(self.exact)

    def candidates(self, as_org: str) -> tuple[list[str], float]:
        """Entity ids the name clearly names (all tied at the best score), and that score.

        Several ids come back only when one reduced name belongs to several entities; the caller
        keeps the match only if they share a controller.
        """
        wanted = reduce_name(as_org)
        if len(wanted) < MIN_KEY_LENGTH:
            return [], 0.0
        found = self.exact.get(wanted)
        if found:
            return sorted(found), 100.0
        words = wanted.split(" ")
        # At least two words and at least half of the AS name: "China Mobile" starts "China
        # Mobile Hong Kong", but a two-word name does not claim a six-word AS name.
        for end in range(len(words) - 1, max(1, (len(words) - 1) // 2), -1):
            found = self.exact.get(" ".join(words[:end]))
            if found:
                return sorted(found), 100.0 * end / len(words)
        # token_sort_ratio >= VARIANT_SCORE bounds the length difference: only names of a near
        # length can qualify, found by bisection in the first word's list.
        keys, lengths = self.by_first_word.get(words[0], []), self._lengths.get(words[0], [])
        slack = (100.0 - VARIANT_SCORE) / 100.0
        low = bisect_left(lengths, math.floor(len(wanted) * (1 - slack) / (1 + slack)))
        high = bisect_right(lengths, math.ceil(len(wanted) * (1 + slack) / (1 - slack)))
        pool = keys[low:high]
        if not pool:
            return [], 0.0
        from rapidfuzz import fuzz, process  # imported on the first AS name that needs it

        scored = process.extract(
            wanted, pool, scorer=fuzz.token_sort_ratio, limit=8, score_cutoff=VARIANT_SCORE
        )
        best: dict[str, float] = {}
        for key, score, _ in scored:
            for entity_id in self.exact[key]:
                best[entity_id] = max(best.get(entity_id, 0.0), float(score))
        if not best:
            return [], 0.0
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
        top = ranked[0][1]
        leaders = [entity_id for entity_id, score in ranked if score == top]
        runner_up = next((score for _, score in ranked if score < top), None)
        if runner_up is not None and top - runner_up < CLEAR_LEAD:
            return [], 0.0
        return leaders, top
