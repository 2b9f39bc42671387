"""Rich renderables of an analysis document for the terminal (the CLI prints them).

Every value that came off the network passes through :func:`derisk.safetext.visible` and is
wrapped in :class:`rich.text.Text`, so neither control characters nor rich markup in a server name
can reach the terminal.
"""

from __future__ import annotations

from typing import Any, Final

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from derisk.report.formatting import country_name, human_bytes, law_citation, share
from derisk.safetext import visible


def _t(value: Any, limit: int = 60) -> Text:
    """A table cell: printable and one line; a long value ends in "…" (the full text is in the JSON)."""
    text = visible(None if value is None else str(value), 100_000)
    return Text(text if len(text) <= limit else text[: limit - 1] + "…")


#: How the terminal names the bases of the infrastructure layer.
BASIS_LABELS: Final = {
    "asn": "AS number in the control graph",
    "as-org-name": "AS organisation name in the control graph",
    "as-registration": "registration country (guess)",
    "unknown": "no AS data",
}


def _controlled_from(jurisdiction: str | None, basis: str | None) -> str:
    if basis == "as-registration":
        return f"{jurisdiction or '??'} (guess: AS registration)"
    return f"{jurisdiction or '??'} ({basis or 'unknown'})"


def _operator(row: dict[str, Any]) -> str:
    """The AS and the infrastructure layer's jurisdiction: ``AS20940 Akamai … [US]``, ``[SG guess]``."""
    text = f"AS{row['asn']} {row['as_org'] or ''}".rstrip()
    layer = row.get("infrastructure") or {}
    where = layer.get("jurisdiction")
    if where:
        text += f" [{where} guess]" if layer.get("basis") == "as-registration" else f" [{where}]"
    return text


def _layer_table(rows: list[dict[str, Any]], external_out: int) -> Table:
    table = Table(title="Laws reaching either layer (service or infrastructure)", title_justify="left")
    for col in (
        "Jurisdiction",
        "Through the service",
        "Through the infrastructure",
        "Registration guess",
        "Sent",
        "Share of sent",
    ):
        table.add_column(
            col, justify="right" if col in ("Registration guess", "Sent", "Share of sent") else "left"
        )
    for row in rows:
        service, infra, guess = row.get("service"), row.get("infrastructure"), row.get("registration_guess")
        table.add_row(
            _t(country_name(row["jurisdiction"])),
            _t(
                f"{', '.join(service['controllers'][:3])}: {human_bytes(service['bytes_out'])}"
                if service
                else "–",
                50,
            ),
            _t(
                f"{', '.join(infra['controllers'][:3])}: {human_bytes(infra['bytes_out'])}" if infra else "–",
                50,
            ),
            human_bytes(guess["bytes_out"]) if guess else "–",
            human_bytes(row["bytes_out"]),
            share(row["bytes_out"], external_out),
        )
    return table


def _basis_table(rows: list[dict[str, Any]], external_out: int) -> Table:
    table = Table(title="How the infrastructure operator was identified", title_justify="left")
    for col in ("Basis", "Destinations", "Sent", "Share of sent"):
        table.add_column(col, justify="left" if col == "Basis" else "right")
    for row in rows:
        table.add_row(
            _t(BASIS_LABELS.get(row["basis"], row["basis"])),
            f"{row['destinations']:,}",
            human_bytes(row["bytes_out"]),
            share(row["bytes_out"], external_out),
        )
    return table


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
            _t(", ".join(f"{b} (guess)" if b == "as-registration" else b for b in row.get("bases", []))),
            _t(", ".join(row["controllers"][:4]) or "–", 50),
            f"{row['flows']:,}",
            human_bytes(row["bytes_out"]),
            share(row["bytes_out"], external_out),
            _t(laws or "–", 70),
        )
    parts.append(exp)

    layered = doc.get("exposure_by_layer") or []
    if layered:
        parts.append(_layer_table(layered, external_out))
    bases = (doc.get("attribution_bases") or {}).get("infrastructure") or []
    if bases:
        parts.append(_basis_table(bases, external_out))

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
            _t(_operator(row) if row["asn"] is not None else "–", 36),
            _t(row["geo_country"] or "–"),
            # A controller only: an AS organisation name is an operator, never shown as controller.
            _t(row["controller"] or "unknown", 36),
            _t(_controlled_from(row["jurisdiction"], row["jurisdiction_basis"])),
            human_bytes(row["bytes_out"]),
            _t(", ".join(row["systems"][:3]), 30),
        )
    parts.append(dest)
    scope = doc.get("not_destinations") or {}
    if scope.get("flows"):
        kinds = ", ".join(f"{k['kind']} {k['flows']:,}" for k in scope["by_kind"])
        parts.append(
            Text(
                f"Not destinations (counted apart, never attributed): {scope['flows']:,} flows, "
                f"{human_bytes(scope['bytes_out'])} sent to {scope['addresses']:,} addresses ({kinds})."
            )
        )
    for notice in doc.get("notices") or []:
        parts.append(Text(f"Note: {notice['text']}", style="yellow"))
    for notes in ((doc.get("run") or {}).get("input_notes") or {}).values():  # what the readers said
        for warning in notes.get("warnings") or []:
            parts.append(Text(f"Note: {visible(str(warning), 2000)}", style="yellow"))  # it names files

    if doc.get("alerts"):
        alerts = Table(title=f"Alerts ({len(doc['alerts'])})", title_justify="left")
        for col in ("#", "Severity", "Kind", "System", "Destination"):
            alerts.add_column(col)
        alerts.add_column("Controller", overflow="fold")
        shown = doc["alerts"][:top]
        for number, alert in enumerate(shown, 1):
            alerts.add_row(
                str(number),
                _t(alert.get("severity")),
                _t(alert.get("kind")),
                _t(alert.get("system") or alert.get("src_ip")),
                _t(alert.get("destination"), 60),
                _t(alert.get("controller") or "unknown", 300),
            )
        parts.append(alerts)
        # each explanation whole, as a paragraph the terminal wraps (a table column would cut or squeeze it)
        for number, alert in enumerate(shown, 1):
            parts.append(Text(f"{number}. ") + _t(alert.get("sentence"), 4000))
    parts.append(Text(doc["disclaimer"], style="dim"))
    return Group(*parts)
