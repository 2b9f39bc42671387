"""Pages over the Watch workspace: overview, destinations, alerts, entities, search, the full report."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Final
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from derisk.know.explain import resolution_parts
from derisk.know.graph import DISPUTED
from derisk.know.laws import laws_for
from derisk.know.resolve import resolve_controller
from derisk.know.risk import supplier_risk
from derisk.report import svg
from derisk.report.html import geo_vs_control, render_analysis_html
from derisk.store import readonly as store
from derisk.web import cases
from derisk.web.export import EXPORT_CSP
from derisk.web.pdf import html_to_pdf
from derisk.web.session_views import Page, Visit, guarded

MAX_QUERY: Final = 200
_ENTITY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")
_ALERT_ID = re.compile(r"^[a-z0-9-]{1,40}:[0-9a-f]{1,64}$")
_PAGE_SIZES: Final = (25, 50, 100, 200)
#: Seconds between reloads of the alert list (``?refresh=N`` per view; 0 turns it off).
ALERTS_REFRESH: Final = 30


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise HTTPException(400, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def _law_rows(jurisdiction: str | None) -> list[dict[str, Any]]:
    return (
        [law.to_json() | {"citation": law.citation()} for law in laws_for(jurisdiction)]
        if jurisdiction
        else []
    )


@guarded()
def overview(visit: Visit) -> Page:
    snap = visit.config.reader.snapshot()
    doc = snap.doc
    ids = snap.entity_ids
    links = {f"1:{name}": f"/entities/{eid}" for name, eid in ids.items()}
    external_out = sum(e["bytes_out"] for e in doc["exposure"])
    return Page(
        "overview.html.j2",
        {
            "doc": doc,
            "alerts": snap.alerts[:10],
            "alert_count": len(snap.alerts),
            "external_out": external_out,
            "diagram": svg.flow_diagram(doc["systems"], links=links),
            "trend": svg.trend_chart(snap.hourly, slot_minutes=snap.slot_minutes, alerts=snap.alerts),
            "matrix": geo_vs_control(doc["destinations"]),
            "geo_picture": svg.geo_control_diagram(doc["destinations"]),
            "entity_ids": ids,
            "bar": svg.bar_width,
        },
        "overview",
    )


@guarded()
def destinations(visit: Visit) -> Page:
    request = visit.request
    snap = visit.config.reader.snapshot()
    size = _int_param(request, "size", 50, 1, 200)
    page = _int_param(request, "page", 1, 1, 1_000_000)
    rows = snap.doc["destinations"]
    start = (page - 1) * size
    if start and start >= len(rows):
        raise HTTPException(404)
    return Page(
        "destinations.html.j2",
        {
            "rows": rows[start : start + size],
            "page": page,
            "size": size,
            "total": len(rows),
            "entity_ids": snap.entity_ids,
        },
        "destinations",
    )


@guarded()
def destination(visit: Visit) -> Page:
    ip = visit.request.path_params["ip"]
    snap = visit.config.reader.snapshot()
    dest = snap.destination(ip)
    if dest is None:
        raise HTTPException(404)
    with visit.config.reader.view() as view:
        flows = store.flows_to(view, ip, limit=200)
    alerts = [a for a in snap.alerts if a.get("dst_ip") == ip]
    return Page(
        "destination.html.j2",
        {
            "d": dest,
            "flows": flows,
            "alerts": alerts,
            "laws": _law_rows(dest["jurisdiction"]),
            "entity_ids": snap.entity_ids,
        },
        f"destination-{ip}",
        csv_rows=flows,
    )


@guarded()
def alerts(visit: Visit) -> Page:
    """The alert list; it reloads itself every ``?refresh=N`` seconds (default
    :data:`ALERTS_REFRESH`, 0: never) through a ``Refresh`` header, no JavaScript, so the alerts
    ``derisk watch`` stores appear without a restart (the reader re-reads a changed workspace)."""
    snap = visit.config.reader.snapshot()
    kind = visit.request.query_params.get("kind")
    refresh = _int_param(visit.request, "refresh", ALERTS_REFRESH, 0, 3600)
    if 0 < refresh < 5:
        raise HTTPException(400, "refresh must be 0 (off) or 5 to 3600 seconds")
    rows = [a for a in snap.alerts if not kind or a.get("kind") == kind]
    kinds = sorted({str(a.get("kind")) for a in snap.alerts})
    if kind is not None and kind not in kinds:
        raise HTTPException(400, "unknown alert kind")
    headers = {"Refresh": str(refresh)} if refresh else {}
    return Page("alerts.html.j2", {"rows": rows, "kinds": kinds, "kind": kind}, "alerts", headers=headers)


@guarded()
def alert(visit: Visit) -> Page:
    alert_id = visit.request.path_params["alert_id"]
    if not _ALERT_ID.match(alert_id):
        raise HTTPException(404)
    snap = visit.config.reader.snapshot()
    found = snap.alert(alert_id)
    if found is None:
        raise HTTPException(404)
    with visit.config.reader.view() as view:
        ids = list(found.get("flow_ids") or [])
        span = (found.get("first_seen"), found.get("last_seen"))
        between = (str(span[0]), str(span[1])) if span[0] and span[1] else None
        flows = store.flows_by_ids(view, ids, limit=200, src_ip=found.get("src_ip"), between=between)
    return Page(
        "alert.html.j2",
        {
            "a": found,
            "flows": flows,
            "entity_ids": snap.entity_ids,
            "dest": snap.destination(str(found.get("dst_ip"))),
            "timing": svg.timing_plot(flows) if found.get("kind") == "beacon" else None,
        },
        f"alert-{alert_id.replace(':', '-')}",
        csv_rows=flows,
    )


def _chain_box(e: Any) -> dict[str, Any]:
    return {"label": e.name, "country": e.jurisdiction or e.country, "href": f"/entities/{quote(e.id, safe='')}",
            "state": e.is_state}  # fmt: skip


def _chain_step(step: Any, lang: str) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    return (
        _chain_box(step.asset),
        _chain_box(step.owner),
        f"{step.owner.name}: {_reason(step, lang)}",
        step.confidence,
    )


def _reason(step: Any, lang: str) -> str:
    """A path step's reason in ``lang``: the link's phrase translated from its parts, a summary or
    note after it matched as a data sentence (names stay as they are; the picture escapes them)."""
    from derisk.i18n import data, filters

    said, reason = step.link.describe(), str(step.reason)
    if lang == "en" or not (reason == said or reason.startswith(said + "; ")):
        return str(data.sentence(lang, reason))
    shown = filters.parts(lang, step.link.describe_parts(), ", ") or said
    if step.link.disputed:
        shown += " " + str(data.text(lang, DISPUTED))
    rest = reason[len(said) + 2 :]
    return f"{shown}; {data.sentence(lang, rest)}" if rest else shown


@guarded()
def entity(visit: Visit) -> Page:
    entity_id = visit.request.path_params["entity_id"]
    if not _ENTITY_ID.match(entity_id):
        raise HTTPException(404)
    from derisk.know.evidence import load as load_evidence
    from derisk.know.graphload import expand

    graph = visit.config.reader.graph()
    with visit.config.reader.view() as view:
        if entity_id not in graph.entities:  # an imported entity not needed for attribution
            graph = replace(graph, entities=dict(graph.entities))
            expand(graph, view.ws, [entity_id])
        if entity_id not in graph.entities:
            raise HTTPException(404)
        dests = store.destinations_of(view, entity_id)
        evidence = load_evidence(view.ws, [entity_id])
    res = resolve_controller(graph, entity_id)
    risk = supplier_risk(graph, entity_id)
    from derisk.know.risk import chain_listings

    listed = [x for x in chain_listings(graph, entity_id) if x.entity_id != entity_id]
    parents = [(link, graph.entities.get(link.owner_id)) for link in graph.parents(entity_id)]
    children = [(link, graph.entities.get(link.asset_id)) for link in graph.children(entity_id)]
    return Page(
        "entity.html.j2",
        {
            "e": graph.entities[entity_id],
            "res": res,
            "res_parts": resolution_parts(res),
            "laws": _law_rows(res.jurisdiction),
            "risk": risk,
            "dests": dests,
            "parents": parents,
            "children": children,
            "evidence": evidence,
            "listed": listed,
            "chain": svg.chain_diagram([_chain_step(step, visit.lang) for step in res.path]),
        },
        f"entity-{entity_id}",
    )


@guarded()
def entities(visit: Visit) -> Page:
    snap = visit.config.reader.snapshot()
    graph = visit.config.reader.graph()
    seen = sorted({eid for eid in snap.entity_ids.values() if eid in graph.entities})
    return Page("entities.html.j2", {"rows": [graph.entities[e] for e in seen]}, "entities")


@guarded()
def search(visit: Visit) -> Page:
    q = visit.request.query_params.get("q", "").strip()
    if len(q) > MAX_QUERY:
        raise HTTPException(400, f"a search has at most {MAX_QUERY} characters")
    hosts: list[dict[str, Any]] = []
    found: list[tuple[Any, float]] = []
    matched_alerts: list[dict[str, Any]] = []
    if q:
        from derisk.know.graph import find_entities

        hosts = visit.config.reader.search(q)
        graph = visit.config.reader.graph()
        with visit.config.reader.view() as view:  # imported names too; found entities join a copy
            found = find_entities(replace(graph, entities=dict(graph.entities)), q, limit=10, source=view.ws)
        low = q.lower()
        matched_alerts = [
            a for a in visit.config.reader.snapshot().alerts
            if any(low in str(a.get(k) or "").lower() for k in ("destination", "system", "controller", "organisation"))
        ][:20]  # fmt: skip
    return Page(
        "search.html.j2", {"q": q, "hosts": hosts, "found": found, "matched_alerts": matched_alerts}, "search"
    )


@guarded()
def analysis_report(visit: Visit) -> Response:
    """The full analysis report (derisk.report's renderer) in the visitor's language."""
    fmt = visit.request.path_params["fmt"]
    if fmt not in ("html", "pdf"):
        raise HTTPException(404)
    snap = visit.config.reader.snapshot()
    html = render_analysis_html(
        snap.doc, locale=visit.lang, hourly=snap.hourly, slot_minutes=snap.slot_minutes
    )
    if fmt == "pdf":
        body, media = html_to_pdf(html), "application/pdf"
    else:
        body, media = html.encode("utf-8"), "text/html; charset=utf-8"
    return Response(
        body,
        media_type=media,
        headers={
            "content-disposition": f'attachment; filename="derisk-analysis-{visit.lang}.{fmt}"',
            "content-security-policy": EXPORT_CSP,
        },
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/", overview),
        Route("/destinations", destinations),
        Route("/destinations/{ip}", destination),
        Route("/alerts", alerts),
        Route("/alerts/{alert_id}", alert),
        Route("/entities", entities),
        Route("/entities/{entity_id}", entity),
        Route("/search", search),
        Route("/report/analysis.{fmt:str}", analysis_report),
        *cases.routes(),
    ]
