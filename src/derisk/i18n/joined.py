"""A sentence joined from phrase templates, read back into its phrases and translated.

Know writes a controller resolution as phrases (``P_`` templates filled with names) joined by spaces
(:func:`derisk.know.explain.text`). Documents that carry only the English sentence (a screening
memo's evidence line quoting Know) cannot give the page the phrases' parts, so the page reads the
sentence back: phrase after phrase, each a catalogue template whose literal text must match exactly,
separated by one space, the whole sentence consumed. Anything else (a sentence not made of the
catalogue's phrases) is left in English rather than half translated.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from derisk.i18n import data

#: Phrases tried at each position: at most this many in one sentence (Know writes fewer than 20).
_MAX_PHRASES: Final = 64


@lru_cache(maxsize=16)
def _patterns(lang: str, sep: str) -> tuple[tuple[re.Pattern[str], str, dict[str, str]], ...]:
    found: list[tuple[int, re.Pattern[str], str, dict[str, str]]] = []
    for msgid in data.phrase_templates(lang):
        literal = len(data.PLACEHOLDER.sub("", msgid).strip())
        if literal < 3:  # "{note_sentence}" and the like would swallow any word
            continue
        pattern, groups = data.template_pattern(msgid)
        found.append(
            (literal, re.compile(pattern.pattern + rf"(?={re.escape(sep)}|\Z)", re.DOTALL), msgid, groups)
        )
    return tuple((p, m, g) for _, p, m, g in sorted(found, key=lambda item: -item[0]))


def _next(lang: str, english: str, pos: int, sep: str) -> tuple[int, str] | None:
    """The phrase of the catalogue that starts at ``pos`` and ends first, translated (of two ending at
    the same place, the one with more literal text). A phrase whose ``*_label`` value is no catalogue
    string is not the one meant (it would leave English words inside the translation)."""
    best: tuple[int, str, dict[str, str]] | None = None
    for pattern, msgid, groups in _patterns(lang, sep):
        m = pattern.match(english, pos)
        if m is None or m.end() <= pos or (best is not None and m.end() >= best[0]):
            continue
        values = {groups[group]: value for group, value in m.groupdict().items()}
        if any(key.endswith("_label") and data.text(lang, v) == v for key, v in values.items()):
            continue
        best = (m.end(), msgid, values)
    if best is None:
        return None
    translated = data.phrase(lang, {"template": best[1], "fields": best[2]})
    return None if translated is None else (best[0], translated)


def joined_sentence(lang: str, english: str, sep: str = " ") -> str | None:
    """``english`` as phrases of the catalogue joined by ``sep``, each translated; None when it is not
    made of them."""
    if not _patterns(lang, sep):
        return None
    shown: list[str] = []
    pos = 0
    while pos < len(english) and len(shown) < _MAX_PHRASES:
        found = _next(lang, english, pos, sep)
        if found is None:
            return None
        end, translated = found
        shown.append(translated)
        pos = end + len(sep)
    return sep.join(shown) if pos >= len(english) else None


#: What :meth:`derisk.know.graph.Link.describe` adds to a disputed link.
_DISPUTED: Final = " (disputed)"


def link_reason(lang: str, english: str) -> str:
    """A control link's reason as Know writes it on a path step: what the link says (phrases joined by
    ", ", perhaps marked disputed), then ``; `` and the link's curated summary. Translated part by
    part; left in English when it is not of that form."""
    head, sep, summary = english.partition("; ")
    disputed = head.endswith(_DISPUTED)
    said = joined_sentence(lang, head.removesuffix(_DISPUTED), ", ")
    if said is None:
        return str(data.sentence(lang, english))
    if disputed:
        said += f" {data.text(lang, _DISPUTED.strip())}"
    return f"{said}; {data.sentence(lang, summary)}" if sep else said
