"""ISO 3166-1 alpha-2 country codes and names, from Babel's copy of the Unicode CLDR.

One light source for every capability (the control graph, screening, reports), so that checking a
country code never needs the heavier FollowTheMoney model on the analysis path.
"""

from __future__ import annotations

from functools import lru_cache

from babel import Locale, UnknownLocaleError

#: Codes CLDR lists that are not countries (regions, user-assigned, "unknown").
_NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "ZZ", "XA", "XB"})


@lru_cache(maxsize=8)
def _territories(locale: str) -> dict[str, str]:
    try:
        names = Locale.parse(locale).territories
    except (UnknownLocaleError, ValueError):
        names = Locale.parse("en").territories
    return {code: name for code, name in names.items() if len(code) == 2 and code.isalpha()}


@lru_cache(maxsize=1)
def _by_english_name() -> dict[str, str]:
    return {name.casefold(): code for code, name in _territories("en").items() if code not in _NOT_COUNTRIES}


def is_country(code: str) -> bool:
    return len(code) == 2 and code.upper() in _territories("en") and code.upper() not in _NOT_COUNTRIES


def country_code(value: object) -> str | None:
    """An upper-case alpha-2 code for a code (any case) or an English country name; None if unknown."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if len(text) == 2:
        return text.upper() if is_country(text) else None
    return _by_english_name().get(text.casefold())


def country_name(code: str, locale: str = "en") -> str:
    """The country's name in ``locale`` (English when unknown), or the code itself."""
    return _territories(locale).get(code.upper(), code)
