"""The vocabulary of a regime file: confidence tags, units, deadline anchors and the keys each
section of ``derisk/data/regimes/*.yaml`` may hold (anything else is a :class:`~derisk.errors.DataError`
raised by :mod:`derisk.screen.regimes`)."""

from __future__ import annotations

from typing import Final

CONFIDENCES: Final = ("V", "S", "U")
REGIME_ORDER: Final = ("BE", "EU", "DE", "FR", "NL")
UNITS: Final = ("percent", "eur", "days", "months", "years", "date", "flag", "text")
ANCHORS: Final = ("notification", "closing", "member-state-notification", "complete-documents")
REGIME_KEYS: Final = {
    "regime",
    "name",
    "title",
    "scope",
    "scope_countries",
    "authority",
    "instrument",
    "facts",
    "lists",
    "country_groups",
    "thresholds",
    "terms",
    "rules",
    "deadlines",
    "standstill",
    "penalties",
    "notes",
    "advice",
    "sources",
    "holidays",
    "rolls",
    "pending",
}
PENDING_KEYS: Final = {
    "id",
    "title",
    "status",
    "agreed",
    "applies_from",
    "changes",
    "deadlines",
    "source",
    "confidence",
}
CITED_KEYS: Final = {"text", "source", "confidence"}
FACT_KEYS: Final = {"value", "unit", "text", "source", "confidence"}
LIST_KEYS: Final = {"label", "source", "confidence"}
GROUP_KEYS: Final = {"label", "members", "source", "confidence"}
TERM_KEYS: Final = {"when", "if_true", "if_false"}
RULE_KEYS: Final = {"id", "when", "then", "say", "ask", "source", "confidence", "threshold"}
DEADLINE_KEYS: Final = {
    "id",
    "phase",
    "days",
    "months",
    "years",
    "kind",
    "start",
    "conditional",
    "note",
    "stops",
    "source",
    "confidence",
    "when_rules",
    "unless_rules",
}
SECTOR_KEYS: Final = {"id", "label", "lists", "possibly", "note"}
