"""Formatting shared by every renderer: sizes, country names, law citations."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal, format_percent

from derisk.i18n.filters import install as install_data_filters
from derisk.screen.findings import FINDING_LABELS

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def N_(text: str) -> str:
    """Marks an interface text for extraction (``derisk.po``); translated where it is shown."""
    return text


#: What each key of an alert's ``evidence`` (``derisk.alerts/1``) means, for the alert page; the key
#: itself stays visible (as the cell's title) since the JSON documents use it.
EVIDENCE_LABELS: Final = {
    "key": N_("grouped by"),
    "connections": N_("connections"),
    "span_hours": N_("time span (h)"),
    "window_hours": N_("window analysed (h)"),
    "bytes_out_median": N_("median bytes sent per connection"),
    "period_seconds": N_("period (s)"),
    "jitter_seconds": N_("jitter (s)"),
    "check_ins": N_("check-ins"),
    "expected_beats": N_("beats expected"),
    "skipped_share": N_("share of beats skipped"),
    "pauses": N_("pauses"),
    "active_hours": N_("active (h)"),
    "timing_score": N_("timing score"),
    "regularity_score": N_("regularity score"),
    "size_score": N_("size score"),
    "pause_share": N_("share of time paused"),
    "confidence": N_("confidence"),
    "duration_hours": N_("duration (h)"),
    "records_stitched": N_("flow records stitched"),
    "min_hours": N_("threshold (h)"),
    "domain": N_("domain"),
    "unique_names": N_("unique names"),
    "queries": N_("queries"),
    "median_label_chars": N_("median name length (characters)"),
    "entropy_bits_per_char": N_("entropy (bits per character)"),
    "connected_directly": N_("connected to directly"),
    "hosts": N_("hosts"),
    "host_count": N_("host count"),
    "src_ip": N_("internal address"),
    "host_scores": N_("score per host"),
    "score": N_("score"),
    "scope": N_("scope"),
    "bytes_out": N_("bytes sent"),
    "bytes_in": N_("bytes received"),
    "ratio_out_in": N_("sent / received"),
    "baseline_bytes_out": N_("baseline: bytes sent"),
    "baseline_defined": N_("baseline period in the data"),
    "destinations": N_("destinations"),
    "baseline_end": N_("baseline ends"),
    "flows_since": N_("flows since"),
    "bytes_since": N_("bytes since"),
    "new_destinations": N_("new destinations"),
    "examples": N_("examples"),
    "hours": N_("hours"),
    "destination_count": N_("destination count"),
    "server_names": N_("server names"),
    "min_bytes_out": N_("threshold (bytes sent)"),
    "jurisdiction_note": N_("note on the jurisdiction"),
}
#: What a risk factor (Know's supplier factors, Screen's deal factors) found: fixed words.
FINDINGS: Final = (N_("present"), N_("not found"), N_("disputed"), N_("indirect"), N_("unknown"))
#: Evidence keys whose values are fixed words (translated with the data catalogue), not names.
EVIDENCE_WORDS: Final = frozenset({"key", "scope", "jurisdiction_note"})


def human_bytes(value: int | float | None, locale: str = "en") -> str:
    """Decimal units, as network tools show them: 1 kB = 1000 B; the number as ``locale`` writes it."""
    if value is None:
        return "–"
    size = float(value)
    for unit in _UNITS:
        if abs(size) < 1000 or unit == _UNITS[-1]:
            break
        size /= 1000
    if locale == "en":
        return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
    return f"{format_decimal(size, format='0' if unit == 'B' else '0.0', locale=locale)} {unit}"


def number(value: int | float | None, locale: str = "en") -> str:
    """A measured number (an alert's evidence) as ``locale`` writes it: whole numbers grouped,
    fractions with up to three decimals."""
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(format_decimal(value, format="#,##0", locale=locale))
    return str(format_decimal(value, format="#,##0.0##", locale=locale))


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


def fit(text: object, width: float) -> str:
    """``text`` cut to about ``width`` characters with "…" (a label in a picture; the whole text is in
    the picture's title)."""
    value = "" if text is None else str(text)
    limit = max(4, int(width))
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def phase_label(label: object, locale: str = "en") -> str:
    """A deadline's label, ``"BE: Verification phase"``, with the phase (a data string) in ``locale``."""
    from derisk.i18n.data import text

    regime, sep, phase = str(label).partition(": ")
    return f"{regime}{sep}{text(locale, phase)}" if sep else str(text(locale, regime))


def share(part: int | float, whole: int | float, locale: str = "en") -> str:
    """``part`` as a percentage of ``whole`` with one decimal, as ``locale`` writes it (``87.4%``,
    ``87,4 %``)."""
    if not whole:
        return "–"
    if locale == "en":
        return f"{100.0 * part / whole:.1f}%"
    return str(format_percent(round(part / whole, 3), format=_percent_pattern(locale, ".0"), locale=locale))


def percent(value: int | float | None, locale: str = "en") -> str:
    """A percentage given as a number (a stake: ``38.88`` → ``38.88%``, ``38,88 %``); ``–`` for None."""
    if value is None:
        return "–"
    if locale == "en":
        return f"{value:g}%"
    from decimal import Decimal

    return str(
        format_percent(Decimal(f"{value:g}") / 100, format=_percent_pattern(locale, ".###"), locale=locale)
    )


@lru_cache(maxsize=8)
def _percent_pattern(locale: str, decimals: str) -> str:
    """``locale``'s percent pattern (``#,##0 %`` in French) with ``decimals`` after the units."""
    pattern = str(Locale.parse(locale).percent_formats[None].pattern)
    return pattern.replace("0", "0" + decimals, 1) if pattern.count("0") == 1 else pattern


def role_label(code: Any, locale: str = "en") -> Any:
    """A supplier's role in a dependency register (``vendor``) as its label in ``locale`` ("software
    vendor", "éditeur de logiciel"); an unknown code as it is."""
    from derisk.i18n.data import text
    from derisk.reduce.register import ROLE_LABELS

    return text(locale, ROLE_LABELS[code]) if code in ROLE_LABELS else code


def decimal(value: int | float | None, digits: int, locale: str = "en") -> str:
    """A number with ``digits`` decimals (an index such as the HHI) as ``locale`` writes it."""
    if value is None:
        return "–"
    if locale == "en":
        return f"{value:.{digits}f}"
    return str(format_decimal(value, format="0." + "0" * digits, locale=locale))


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
    env.filters["bytes"] = lambda value: human_bytes(value, locale)
    env.filters["num"] = lambda value: number(value, locale)
    env.filters["fit"] = fit
    env.filters["phase"] = lambda label: phase_label(label, locale)
    env.filters["country"] = lambda code: country_name(code, locale)
    env.filters["law"] = law_citation
    env.filters["bound"] = bound_text
    env.globals["share"] = lambda part, whole: share(part, whole, locale)
    env.filters["drole"] = lambda code: role_label(code, locale)
    env.filters["pct"] = lambda value: percent(value, locale)
    env.filters["dec"] = lambda value, digits=1: decimal(value, digits, locale)
    env.globals["evidence_labels"] = EVIDENCE_LABELS
    env.globals["evidence_words"] = EVIDENCE_WORDS
    env.globals["finding_words"] = frozenset(FINDINGS)
    env.globals["screen_findings"] = FINDING_LABELS
    install_data_filters(env, locale)  # dt, ds, dlaw: data strings and sentences in ``locale``
