"""Self-contained HTML reports rendered with Jinja2 (autoescaped: network text is hostile)."""

from __future__ import annotations

import gettext
from collections import defaultdict
from typing import Any

from jinja2 import Environment

from derisk.report import svg
from derisk.report.pages import page_environment

_ENVIRONMENTS: dict[str, Environment] = {}


def environment(locale: str = "en", translations: gettext.NullTranslations | None = None) -> Environment:
    """A Jinja2 environment for ``derisk.report`` templates in one language."""
    env = _ENVIRONMENTS.get(locale) if translations is None else None
    if env is None:
        env = page_environment("derisk.report", locale, translations)
        if translations is None:
            _ENVIRONMENTS[locale] = env
    return env


def geo_vs_control(destinations: list[dict[str, Any]]) -> dict[str, Any]:
    """Bytes sent by (where the server stands, who controls it): the heart of the report."""
    cells: dict[tuple[str, str], int] = defaultdict(int)
    for d in destinations:
        cells[(d["geo_country"] or "ZZ", d["jurisdiction"] or "ZZ")] += d["bytes_out"]
    geos = sorted({g for g, _ in cells})
    juris = sorted({j for _, j in cells})
    mismatched = sum(v for (g, j), v in cells.items() if g != j and j != "ZZ" and g != "ZZ")
    return {"geos": geos, "jurisdictions": juris, "cells": dict(cells), "mismatched_bytes": mismatched}


def render_analysis_html(
    doc: dict[str, Any],
    *,
    locale: str = "en",
    hourly: list[dict[str, Any]] | None = None,
    slot_minutes: int = 60,
) -> str:
    """The analysis report of ``doc``; ``hourly`` (bytes per time slot and jurisdiction, as the
    workspace reader gives them) adds the time chart with the alerts marked on it."""
    env = environment(locale)
    template = env.get_template("analysis.html.j2")
    external_out = sum(e["bytes_out"] for e in doc["exposure"])
    trend = None
    if hourly is not None:
        trend = svg.trend_chart(hourly, slot_minutes=slot_minutes, alerts=doc.get("alerts") or [])
    return template.render(
        doc=doc,
        locale=locale,
        external_out=external_out,
        matrix=geo_vs_control(doc["destinations"]),
        top_destinations=doc["destinations"][:50],
        diagram=svg.flow_diagram(doc["systems"], links={}),
        geo_picture=svg.geo_control_diagram(doc["destinations"]),
        trend=trend,
    )
