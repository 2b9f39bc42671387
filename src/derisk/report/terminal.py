"""Rich renderables of an analysis document for the terminal (the CLI prints them).

Every value that came off the network passes through :func:`derisk.safetext.visible` and is
wrapped in :class:`rich.text.Text`, so neither control characters nor rich markup in a server name
can reach the terminal.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from derisk.report.formatting import country_name, human_bytes, law_citation, share
from derisk.safetext import visible


def _t(value: Any, limit: int = 60) -> Text:
    return Text(visible(None if value is None else str(value), limit))


def render_analysis(doc: dict[str, Any], *, top: int = 10) -> RenderableType:
    totals = doc["totals"]
    parts: list[RenderableType] = []
    head = Text.assemble(
        ("derisk analysis", "bold"),
        f" — site: {visible(doc.get('site') or 'unnamed', 80)}; ",
        f"{totals['flows']:,} flows, {human_bytes(totals['bytes_out'])} out, {human_bytes(totals['bytes_in'])} in",
    )
    parts.append(head)

    external_out = sum(e["bytes_out"] for e in doc["exposure"])
    exp = Table(title="Exposure by controlling jurisdiction", title_justify="left")
    for col in (
        "Jurisdiction",
        "Basis",
        "Controllers",
        "Flows",
        "Sent",
        "Share of sent",
        "Laws (confidence)",
    ):
        exp.add_column(col, justify="right" if col in ("Flows", "Sent", "Share of sent") else "left")
    for row in doc["exposure"]:
        laws = "; ".join(law_citation(law) for law in row.get("laws", [])[:3])
        exp.add_row(
            _t(country_name(row["jurisdiction"])),
            _t(", ".join(row.get("bases", []))),
            _t(", ".join(row["controllers"][:4]) or "–", 50),
            f"{row['flows']:,}",
            human_bytes(row["bytes_out"]),
            share(row["bytes_out"], external_out),
            _t(laws or "–", 70),
        )
    parts.append(exp)

    dest = Table(title=f"Top destinations (of {len(doc['destinations'])})", title_justify="left")
    for col in (
        "Address",
        "Server names",
        "AS",
        "Stands in",
        "Controller",
        "Controlled from",
        "Sent",
        "Systems",
    ):
        dest.add_column(col)
    for row in doc["destinations"][:top]:
        dest.add_row(
            _t(row["ip"], 40),
            _t(", ".join(row["server_names"][:2]) or "–", 40),
            _t(f"AS{row['asn']} {row['as_org'] or ''}" if row["asn"] is not None else "–", 36),
            _t(row["geo_country"] or "–"),
            _t(row["controller"] or row["organisation"] or "unknown", 36),
            _t(f"{row['jurisdiction'] or '??'} ({row['jurisdiction_basis']})"),
            human_bytes(row["bytes_out"]),
            _t(", ".join(row["systems"][:3]), 30),
        )
    parts.append(dest)

    if doc.get("alerts"):
        alerts = Table(title=f"Alerts ({len(doc['alerts'])})", title_justify="left")
        for col in ("Severity", "Kind", "System", "Destination", "Controller", "What"):
            alerts.add_column(col)
        for alert in doc["alerts"][:top]:
            alerts.add_row(
                _t(alert.get("severity")),
                _t(alert.get("kind")),
                _t(alert.get("system") or alert.get("src_ip")),
                _t(alert.get("destination"), 40),
                _t(alert.get("controller") or "unknown", 30),
                _t(alert.get("sentence"), 90),
            )
        parts.append(alerts)
    parts.append(Text(doc["disclaimer"], style="dim"))
    return Group(*parts)
