"""One call per mode, for the command line and the demo: inputs in, ``derisk.reduce/1`` document out."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Final

from derisk.errors import UsageError
from derisk.know.graph import load_graph
from derisk.reduce.baci import find_beside, load_countries, load_products
from derisk.reduce.know_link import compelling_laws, know_resolver
from derisk.reduce.register import build_register
from derisk.reduce.report import analyse_site, site_document, third_country_jurisdictions, trade_document
from derisk.reduce.trade import TradeParams, load_production, run_trade
from derisk.reduce.traffic import FLOW_COLUMNS
from derisk.site import Site, load_site

SAMPLE_DIR: Final = "trade-sample"
SAMPLE_FILE: Final = "BACI_sample_Y2023.csv"


def reduce_site(site: Path | Site, *, workspace: Path | None = None) -> dict[str, Any]:
    """The document of a site: register resolved through Know (with the workspace's imported
    entities), measures, traffic from the workspace when given, findings, plan, compelling laws."""
    loaded = site if isinstance(site, Site) else load_site(site)
    source = str(site if not isinstance(site, Site) else (site.path or "site"))
    flows = None
    if workspace is not None:
        from derisk.store.workspace import Workspace

        with Workspace.open(workspace, create=False, read_only=True) as ws:
            graph = load_graph(ws)
            flows = ws.read_flows(list(FLOW_COLUMNS))
    else:
        graph = load_graph()
    register = build_register(loaded, know_resolver(graph), source=source)
    result = analyse_site(register, flows=flows, workspace=str(workspace) if workspace else None)
    laws = compelling_laws(third_country_jurisdictions(result))
    return site_document(result, source=source, laws=laws)


def sample_dir() -> Path:
    """The shipped illustrative (made-up) trade sample."""
    return Path(str(resources.files("derisk.data").joinpath(SAMPLE_DIR)))


def reduce_trade(
    trade_file: Path | None,
    *,
    sample: bool = False,
    countries: Path | None = None,
    products: Path | None = None,
    production: Path | None = None,
    params: TradeParams | None = None,
) -> dict[str, Any]:
    """The document of a trade-data run (BACI layout; tables beside the file are found)."""
    params = params or TradeParams()
    if sample:
        trade_file = sample_dir() / SAMPLE_FILE
        if params.denominator == "apparent-consumption" and production is None:
            production = sample_dir() / "production_sample.csv"
    if trade_file is None:
        raise UsageError("no trade file given")
    if params.denominator == "apparent-consumption" and production is None:
        raise UsageError("the apparent-consumption denominator needs a production table (--production FILE)")
    countries = countries or find_beside(trade_file, "country_codes*.csv")
    if countries is None:
        raise UsageError(
            "no country table: pass --countries FILE (BACI's country_codes_V*.csv), or put exactly one "
            "country_codes*.csv beside the trade file"
        )
    products = products or find_beside(trade_file, "product_codes*.csv")
    result = run_trade(
        trade_file,
        countries=load_countries(countries),
        params=params,
        products=load_products(products) if products else None,
        production=load_production(production) if production else None,
        illustrative=sample,
    )
    return trade_document(result)
