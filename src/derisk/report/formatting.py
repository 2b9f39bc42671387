"""Formatting shared by every renderer: sizes, country names, law citations."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError

from derisk.i18n.data import install as install_data_filters

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_bytes(value: int | float | None) -> str:
    """Decimal units, as network tools show them: 1 kB = 1000 B."""
    if value is None:
        return "–"
    size = float(value)
    for unit in _UNITS:
        if abs(size) < 1000 or unit == _UNITS[-1]:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} PB"


@lru_cache(maxsize=4096)
def country_name(code: str | None, locale: str = "en") -> str:
    if not code:
        return "unknown"
    if code == "ZZ":
        return {"fr": "inconnue", "nl": "onbekend", "de": "unbekannt"}.get(locale, "unknown")
    try:
        name = Locale.parse(locale).territories.get(code.upper())
    except (UnknownLocaleError, ValueError):
        name = None
    return f"{name} ({code})" if name else code


def share(part: int | float, whole: int | float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "–"


def law_citation(law: dict[str, Any]) -> str:
    article = f", {law['article']}" if law.get("article") else ""
    return f"{law['law']}{article} [{law.get('confidence', 'U')}]"


def bound_text(text: object, limit: int = 200) -> str | None:
    """The ``bound`` filter: any value as text, cut at ``limit`` characters with the cut marked."""
    from derisk.safetext import bound

    return bound(None if text is None else str(text), limit)


def install_filters(env: Any, locale: str = "en") -> None:
    """The filters every page and report template uses (and the SVG pictures' macros need):
    ``bytes``, ``country`` (in ``locale``), ``law``, ``bound``, the data filters ``dt``, ``ds`` and
    ``dlaw`` (:mod:`derisk.i18n.data`); and the global ``share``."""
    env.filters["bytes"] = human_bytes
    env.filters["country"] = lambda code: country_name(code, locale)
    env.filters["law"] = law_citation
    env.filters["bound"] = bound_text
    env.globals["share"] = share
    install_data_filters(env, locale)  # dt, ds, dlaw: data strings and sentences in ``locale``
