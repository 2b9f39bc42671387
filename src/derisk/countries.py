"""ISO 3166-1 alpha-2 country codes and names, from Babel's copy of the Unicode CLDR.

One light source for every capability (the control graph, screening, reports), so that checking a
country code never needs the heavier FollowTheMoney model on the analysis path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Final

from babel import Locale, UnknownLocaleError

from derisk.data import read_yaml
from derisk.errors import DataError

#: Placeholder jurisdiction for an EU-controlled provider that a plan proposes but does not name.
EU_PLACEHOLDER: Final = "EU"
_EU_KEYS: Final = {"schema", "as_of", "source", "members"}

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


# -- the European Union's member states (one shipped list, eu-members.yaml) --------------------


@dataclass(frozen=True)
class EuMembers:
    codes: frozenset[str]
    names: dict[str, str]
    source: str
    as_of: str

    def is_eu(self, jurisdiction: str | None) -> bool:
        """True for a member state or the EU placeholder; unknown (None) is not EU."""
        return jurisdiction is not None and (jurisdiction == EU_PLACEHOLDER or jurisdiction in self.codes)

    def is_third_country(self, jurisdiction: str | None) -> bool:
        """True for a known jurisdiction outside the EU; unknown (None) is neither."""
        return jurisdiction is not None and not self.is_eu(jurisdiction)


def parse_members(doc: object, source: str) -> EuMembers:
    if not isinstance(doc, dict) or set(doc) != _EU_KEYS:
        raise DataError(f"expected exactly the keys {sorted(_EU_KEYS)}", source=source)
    members = doc["members"]
    if not isinstance(members, dict) or not members:
        raise DataError("members must be a mapping of ISO codes to names", source=source)
    if not isinstance(doc["source"], str) or not doc["source"].strip():
        raise DataError("missing source", source=source)
    bad = [str(k) for k in members if not (isinstance(k, str) and len(k) == 2 and k.isupper())]
    if bad:
        raise DataError("not ISO 3166-1 alpha-2 codes", source=source, details=bad)
    return EuMembers(
        codes=frozenset(members),
        names={str(k): str(v) for k, v in members.items()},
        source=str(doc["source"]),
        as_of=str(doc["as_of"]),
    )


@cache
def eu_members() -> EuMembers:
    """The shipped EU member list (read once)."""
    return parse_members(read_yaml("eu-members.yaml"), "derisk/data/eu-members.yaml")
