"""Dates and times as the pages of each language write them (Babel), for :mod:`derisk.i18n.data`: the
documents keep ISO dates and English long dates; a page shows them the reader's way."""

from __future__ import annotations

import re
from typing import Any, Final

from derisk.i18n import DEFAULT_LANGUAGE

#: A date as the English pages write it: ``2026-03-15`` or ``15 March 2026``.
_ISO_DATE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_LONG_DATE: Final = re.compile(
    r"(\d{1,2}) (January|February|March|April|May|June|July|August|September|October|November|December) "
    r"(\d{4})"
)
_MONTHS: Final = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip


def day(lang: str, value: Any) -> Any:
    """A date (ISO ``2026-03-15`` or English ``15 March 2026``) written the way ``lang`` writes dates
    (Babel's long format: ``15 mars 2026``, ``15. März 2026``); anything else, and English, unchanged."""
    if lang == DEFAULT_LANGUAGE or not isinstance(value, str):
        return value
    import datetime

    from babel.dates import format_date

    iso, long = _ISO_DATE.fullmatch(value), _LONG_DATE.fullmatch(value)
    try:
        if iso is not None:
            when = datetime.date(int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        elif long is not None:
            month = _MONTHS.index(long.group(2)) + 1
            when = datetime.date(int(long.group(3)), month, int(long.group(1)))
        else:
            return value
    except ValueError:
        return value
    return str(format_date(when, format="long", locale=lang))


def moment(lang: str, value: Any) -> Any:
    """An ISO timestamp (``2026-11-02T06:00:01.927000Z``, as documents keep them) written the way
    ``lang`` writes a date and time, in UTC (``2 nov. 2026, 06:00:01 UTC``); anything else, and
    English, unchanged."""
    if lang == DEFAULT_LANGUAGE or not isinstance(value, str) or "T" not in value:
        return value
    import datetime

    from babel.dates import format_datetime

    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    shown = format_datetime(when, format="medium", tzinfo=datetime.UTC, locale=lang)
    return f"{shown} UTC"


def is_date(value: str) -> bool:
    """Whether ``value`` is a date as the English pages write it (ISO or ``15 March 2026``)."""
    return _LONG_DATE.fullmatch(value) is not None or _ISO_DATE.fullmatch(value) is not None
