"""One call from a deal to its ``derisk.screening/1`` document, shared by the CLI, the dashboard and the demo."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from derisk.know.graph import Graph, load_graph
from derisk.screen.catalogue import Catalogue
from derisk.screen.deal import Deal
from derisk.screen.dealfile import load_deal, parse_deal
from derisk.screen.engine import screen
from derisk.screen.memo import document
from derisk.screen.regimes import load_catalogue
from derisk.screen.risk import Resolved, resolve_investor, risk_factors
from derisk.screen.variables import walk


def _graph(workspace: Path | None) -> Graph:
    from derisk.store.workspace import Workspace

    if workspace is None:
        return load_graph()
    with Workspace.open(workspace, create=False, read_only=True) as ws:
        return load_graph(ws)


def screen_deal(
    deal: Deal, catalogue: Catalogue, *, workspace: Path | None = None, today: dt.date | None = None
) -> dict[str, Any]:
    """Screen a checked deal; investors named by ``entity:`` are resolved through the control graph."""
    resolved = Resolved(deal.investor)
    graph = None
    if any(p.entity for p in walk(deal.investor)):
        graph = _graph(workspace)
        resolved = resolve_investor(deal.investor, graph)
    as_of = today or dt.datetime.now(dt.UTC).date()
    screening = screen(deal, catalogue, today=as_of, investor=resolved.investor)
    return document(screening, risk_factors(deal, catalogue, resolved, workspace, graph))


def screen_file(path: Path, *, workspace: Path | None = None, today: dt.date | None = None) -> dict[str, Any]:
    catalogue = load_catalogue()
    return screen_deal(load_deal(path, catalogue.vocabulary), catalogue, workspace=workspace, today=today)


def screen_raw(
    raw: Any, source: str, *, workspace: Path | None = None, today: dt.date | None = None
) -> dict[str, Any]:
    catalogue = load_catalogue()
    deal = parse_deal(raw, catalogue.vocabulary, source=source)
    return screen_deal(deal, catalogue, workspace=workspace, today=today)
