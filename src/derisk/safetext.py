"""Make attacker-controlled text (server names, user agents, DNS names) safe to show.

Everything that comes off the network is hostile until shown otherwise. HTML escaping is done by
Jinja2's autoescape and JSON escaping by the json module; this module covers the rest: bounding the
length of what we store and show, and neutralising control characters for terminals and
spreadsheet formulas for CSV.
"""

from __future__ import annotations

import re

#: Longest text kept from a single network field (a server name is at most 253 bytes; a user agent
#: rarely exceeds a few hundred). Longer values are cut and marked, never dropped silently.
MAX_FIELD_CHARS = 512
TRUNCATION_MARK = "…[truncated]"

#: C0 and C1 controls, and the invisible format characters that reorder or hide text on screen:
#: bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E/F, U+202A-E, U+2066-9),
#: zero-width and word-joining characters (U+200B-D, U+2060-4, U+FEFF), the Mongolian vowel
#: separator (U+180E), line and paragraph separators (U+2028/9), Hangul fillers (U+115F, U+1160,
#: U+3164, U+FFA0) and interlinear annotation marks (U+FFF9-B).
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0\ufff9-\ufffb]"
)
#: The same without tab, line feed and carriage return, which are harmless white space in HTML.
_CONTROL_IN_MARKUP = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u2064\u2066-\u2069\u3164\ufeff\uffa0\ufff9-\ufffb]"
)
#: Longest text one template expression may print (a 60 MB entity name must not make a 420 MB page).
MAX_SHOWN_CHARS = 10_000
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def bound(text: str | None, limit: int = MAX_FIELD_CHARS) -> str | None:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    if text is None:
        return None
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str | None, limit: int = 120) -> str:
    """A one-line, printable rendering: control and invisible format characters become ``\\xNN`` or
    ``\\uNNNN`` escapes, so that nothing from the network can reorder, hide or colour what is shown."""
    if text is None:
        return ""
    shown = _CONTROL.sub(_escape, text)
    return bound(shown, limit) or ""


def neutral(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """Text for an HTML or PDF page: invisible format and control characters escaped as in
    :func:`visible` (line breaks and tabs kept), and bounded. HTML escaping stays Jinja2's."""
    return bound(_CONTROL_IN_MARKUP.sub(_escape, text), limit) or ""


def finalize(value: object) -> object:
    """Jinja2's ``finalize`` for every environment that renders pages: each string a template prints
    goes through :func:`neutral`; markup the templates build themselves (``__html__``) is left alone."""
    if isinstance(value, str) and not hasattr(value, "__html__"):
        return neutral(value)
    return value


def csv_cell(text: str | None) -> str:
    """A CSV cell that a spreadsheet will not evaluate as a formula."""
    if text is None:
        return ""
    shown = visible(text, MAX_FIELD_CHARS)
    return "'" + shown if shown.startswith(_FORMULA_START) else shown
