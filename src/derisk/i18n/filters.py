"""Documents' sentences in the reader's language, and the Jinja2 filters that show them.

An alert's sentence, a destination, sentence parts, a risk factor and an entity's kind, each read from
its stored English document (``derisk.alerts/1``, ``derisk.analysis/1``, Know's parts) and translated
through :mod:`derisk.i18n.data`; anything not found stays English.
"""

from __future__ import annotations

from typing import Any

from derisk.i18n import DEFAULT_LANGUAGE
from derisk.i18n.data import law_title, phrase, sentence, text, text_cut
from derisk.i18n.dates import day, moment


def explained(lang: str, doc: Any) -> Any:
    """An alert's sentence in ``lang`` (``doc`` a ``derisk.alerts/1`` alert): its ``explanation``
    parts translated and joined; an alert stored without parts keeps its English ``sentence``."""
    if not isinstance(doc, dict):
        doc = doc.to_json() if hasattr(doc, "to_json") else {}
    english = doc.get("sentence")
    parts = doc.get("explanation")
    if lang == DEFAULT_LANGUAGE or not isinstance(parts, list) or not parts:
        return english
    shown = [phrase(lang, p) for p in parts if not (isinstance(p, dict) and p.get("part") == "destination")]
    if any(s is None for s in shown):
        return english
    return " ".join(s for s in shown if s is not None)


def destination(lang: str, doc: Any) -> Any:
    """An alert's destination in ``lang``: an address or name as it is, a count ("3 new destinations")
    translated from its stored template."""
    if not isinstance(doc, dict):
        doc = doc.to_json() if hasattr(doc, "to_json") else {}
    for part in doc.get("explanation") or ():
        if isinstance(part, dict) and part.get("part") == "destination":
            found = phrase(lang, part)
            if found is not None:
                return found
    return doc.get("destination")


def parts(lang: str, found: Any, sep: str = " ") -> str | None:
    """Sentence parts (``(template, values)`` pairs, as :mod:`derisk.know.explain` builds them, or
    ``{"template": ..., "fields": ...}`` as documents store them) in ``lang``, filled and joined by
    ``sep``; None when any part is no valid phrase (the caller then shows the English sentence)."""
    if not found:
        return None
    shown: list[str] = []
    for item in found:
        doc = item if isinstance(item, dict) else {"template": item[0], "fields": dict(item[1])}
        filled = phrase(lang, doc)
        if filled is None:
            return None
        shown.append(filled)
    return sep.join(shown)


def factor(lang: str, doc: Any) -> Any:
    """A supplier-risk factor's sentence in ``lang`` (a :class:`derisk.know.risk.RiskFactor` or its
    JSON): its stored parts translated, else its English ``sentence`` matched as a data sentence."""
    stored = doc.get("explanation") if isinstance(doc, dict) else getattr(doc, "parts", None)
    english = doc.get("sentence") if isinstance(doc, dict) else getattr(doc, "sentence", None)
    if lang == DEFAULT_LANGUAGE:
        return english
    translated = parts(lang, stored) if isinstance(stored, list | tuple) else None
    return translated if translated is not None else sentence(lang, english)


def schema_label(schema: Any) -> Any:
    """The English label FollowTheMoney gives an entity's schema (``PublicBody`` → ``Public body``): the
    kind of entity a page shows beside its name; an unknown schema as it is."""
    if not isinstance(schema, str) or not schema:
        return schema
    from followthemoney import model

    found = model.get(schema)
    return str(found.label) if found is not None else schema


def install(env: Any, lang: str) -> None:
    """Jinja2 filters: ``dt`` (data string, also one cut short), ``ds`` (data sentence), ``dlaw``
    (law title), ``dalert`` (an alert's sentence), ``ddest`` (an alert's destination), ``dparts``
    (sentence parts), ``dfactor`` (a risk factor's sentence), ``ddate`` (a date), ``dtime`` (a timestamp)
    and ``dschema`` (the kind of an entity, from its FtM schema)."""
    env.filters["dt"] = lambda value: text_cut(lang, value)
    env.filters["ds"] = lambda value: sentence(lang, value)
    env.filters["dlaw"] = lambda value: law_title(lang, value)
    env.filters["dalert"] = lambda value: explained(lang, value)
    env.filters["ddest"] = lambda value: destination(lang, value)
    env.filters["dparts"] = lambda value, sep=" ": parts(lang, value, sep)
    env.filters["dfactor"] = lambda value: factor(lang, value)
    env.filters["ddate"] = lambda value: day(lang, value)
    env.filters["dtime"] = lambda value: moment(lang, value)
    env.filters["dschema"] = lambda value: text(lang, schema_label(value))
