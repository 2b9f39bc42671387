"""Formatting shared by every renderer: sizes, country names, law citations."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError

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
