"""Languages of the interface and the reports: English, French, Dutch and German.

Message catalogues are gettext ``.po`` files under ``locale/<lang>/LC_MESSAGES/derisk.po``, read
directly with Babel (no compile step): each is parsed once, turned into an in-memory ``.mo`` and
loaded as :class:`babel.support.Translations`. English is the source language (msgids are English).
"""

from __future__ import annotations

import gettext
import io
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Final

from derisk.errors import DataError

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

LANGUAGES: Final = ("en", "fr", "nl", "de")
DEFAULT_LANGUAGE: Final = "en"
DOMAIN: Final = "derisk"
#: Each language's own name, for the language switch.
NATIVE_NAMES: Final = {"en": "English", "fr": "Français", "nl": "Nederlands", "de": "Deutsch"}


def catalog(lang: str) -> Catalog:
    """The parsed ``.po`` catalogue of ``lang`` (not English, which has none)."""
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE:
        raise DataError(f"no message catalogue for language {lang!r}")
    from babel.messages.pofile import read_po

    ref = resources.files("derisk.i18n") / "locale" / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    try:
        with ref.open("rb") as fh:
            return read_po(fh, locale=lang, domain=DOMAIN)
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable message catalogue: {exc}", source=str(ref)) from None


@lru_cache(maxsize=8)
def translations(lang: str) -> gettext.NullTranslations:
    """Translations for ``lang``; English (and anything unknown) gets the identity."""
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE:
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.support import Translations

    buf = io.BytesIO()
    write_mo(buf, catalog(lang), use_fuzzy=False)
    buf.seek(0)
    return Translations(fp=buf, domain=DOMAIN)


def gettext_for(lang: str) -> gettext.NullTranslations:
    return translations(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)


def pick(value: str | None) -> str | None:
    """``value`` if it names a supported language (``fr``, ``fr-BE``, ``nl_BE`` ...), else None."""
    if not value:
        return None
    code = value.strip().replace("_", "-").split("-", 1)[0].lower()
    return code if code in LANGUAGES else None


def negotiate(accept_language: str | None) -> str:
    """The best supported language for an HTTP ``Accept-Language`` header (English by default)."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    prefs: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language[:1000].split(",")[:30]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag.strip() and quality > 0:
            prefs.append((-quality, index, tag.strip()))
    for _, _, tag in sorted(prefs):
        found = pick(tag)
        if found:
            return found
    return DEFAULT_LANGUAGE


def locale_name(lang: str) -> str:
    """A Babel locale identifier for number and country names (``fr`` → ``fr_BE`` for Belgium)."""
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(lang)
    except (UnknownLocaleError, ValueError):
        return DEFAULT_LANGUAGE
    return lang
