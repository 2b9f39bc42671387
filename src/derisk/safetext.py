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

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def bound(text: str | None, limit: int = MAX_FIELD_CHARS) -> str | None:
    """Cut ``text`` to ``limit`` characters, marking the cut."""
    if text is None:
        return None
    if len(text) <= limit:
        return text
    return text[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def visible(text: str | None, limit: int = 120) -> str:
    """A one-line, printable rendering for terminals: control characters become ``\\xNN`` escapes."""
    if text is None:
        return ""
    shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return bound(shown, limit) or ""


def csv_cell(text: str | None) -> str:
    """A CSV cell that a spreadsheet will not evaluate as a formula."""
    if text is None:
        return ""
    shown = visible(text, MAX_FIELD_CHARS)
    return "'" + shown if shown.startswith(_FORMULA_START) else shown
