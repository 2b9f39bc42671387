"""``derisk reduce``: the dependency register and de-risking plan of a site, or product dependencies from trade data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from derisk.cli.options import lang_option, pdf_option
from derisk.cli.output import emit_json, status_console, write_pages
from derisk.errors import UsageError
from derisk.safetext import visible

if TYPE_CHECKING:  # rich is imported when something is shown, so that --help stays quick
    from rich.console import Console
    from rich.text import Text


def _emit(
    doc: dict[str, Any], json_out: str | None, html_out: Path | None, pdf_out: Path | None, lang: str = "en"
) -> None:
    emit_json(doc, json_out)
    if html_out is not None or pdf_out is not None:
        from derisk.reduce.report import render_html

        write_pages(render_html(doc, lang), html_out, pdf_out)


def _t(value: object, limit: int = 80) -> Text:
    """A table cell that rich shows literally (no markup), with control characters escaped."""
    from rich.text import Text

    return Text(visible(None if value is None else str(value), limit))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _site_summary(doc: dict[str, Any], console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    m = doc["measures"]
    console.print(Text(f"derisk reduce: {visible(doc['site'] or doc['source'])}", style="bold"))
    console.print(Text(doc["disclaimer"], style="dim"))
    hhi = "–" if m["hhi"] is None else f"{m['hhi']:.3f}"
    console.print(
        Text(
            f"{m['function_count']} critical functions, {m['edge_count']} dependency edges; HHI by jurisdiction "
            f"{hhi}; {_pct(m['third_country_dependency'])} of functions cannot run without a third-country "
            f"controlled supplier; {_pct(m['third_country_edge_share'])} of edges are controlled from third countries."
        )
    )
    shares = Table(title="Shares by controlling jurisdiction")
    for col in ("jurisdiction", "functions depending", "functions exposed", "edges"):
        shares.add_column(col)
    for j in dict.fromkeys([*doc["shares"]["edges"], *doc["shares"]["dependency"]]):
        shares.add_row(
            _t(j),
            _pct(doc["shares"]["dependency"].get(j)),
            _pct(doc["shares"]["exposure"].get(j)),
            _pct(doc["shares"]["edges"].get(j)),
        )
    console.print(shares)
    funcs = Table(title="Critical functions")
    for col in ("function", "systems", "depends on", "exposed to"):
        funcs.add_column(col)
    for f in m["functions"]:
        funcs.add_row(
            _t(f["name"]),
            _t(", ".join(f["systems"])),
            _t(", ".join(f["depends_on"]) or "–"),
            _t(", ".join(f["exposed_to"]) or "–"),
        )
    console.print(funcs)
    if doc["traffic"]["available"]:
        for c in doc["traffic"]["confirmed"]:
            console.print(Text("traffic: " + visible(c["sentence"], 400)))
    console.print(Text("Findings", style="bold"))
    for f in doc["findings"]:
        console.print(Text(f"[{f['severity']}] {visible(f['sentence'], 600)}"))
    plan = Table(title="De-risking plan (first steps first)")
    for col in ("#", "step", "cost", "3rd-country dependency", "HHI"):
        plan.add_column(col)
    for s in doc["plan"]["steps"][:10]:
        before, after = s["before"], s["after"]
        hb = "–" if before["hhi"] is None else f"{before['hhi']:.3f}"
        ha = "–" if after["hhi"] is None else f"{after['hhi']:.3f}"
        plan.add_row(
            str(s["rank"]),
            _t(s["sentence"], 300),
            _t(s["cost"]),
            f"{_pct(before['third_country_dependency'])} → {_pct(after['third_country_dependency'])}",
            f"{hb} → {ha}",
        )
    console.print(plan)


def _trade_summary(doc: dict[str, Any], console: Console) -> None:
    from rich.table import Table
    from rich.text import Text

    t = doc["trade"]
    console.print(
        Text(f"derisk reduce --trade: {visible(t['source'], 200)} (year {t['year']})", style="bold")
    )
    if t["illustrative"]:
        console.print(Text("Illustrative sample: made-up figures, not real trade data.", style="yellow"))
    p = t["parameters"]
    console.print(
        Text(
            f"Dependent when HHI > {p['hhi_threshold']} [S], share in demand > {p['demand_share_threshold']} [U] "
            f"({p['denominator']}: {p['denominator_definition']}), imports/exports > {p['import_export_threshold']} [S]."
        )
    )
    s = t["summary"]
    console.print(
        Text(
            f"{s['products_dependent']} of {s['products_screened']} products dependent, "
            f"{_pct(s['dependent_share_of_imports'])} of extra-EU import value."
        )
    )
    by_supplier = doc["shares"]["dependent_imports_by_supplier"]
    if by_supplier:
        shown = ", ".join(f"{visible(k, 40)} {_pct(v)}" for k, v in list(by_supplier.items())[:5])
        console.print(Text(f"Suppliers of the dependent products' extra-EU imports: {shown}."))
    table = Table(title="Dependent products")
    for col in ("HS6", "product", "HHI", "share in demand", "imports/exports", "main suppliers"):
        table.add_column(col)
    for prod in t["products"]:
        if not prod["dependent"]:
            continue
        ratio = "no exports" if prod["exports_zero"] else f"{prod['import_export_ratio']:.2f}"
        demand = "–" if prod["demand_share"] is None else f"{prod['demand_share']:.3f}"
        suppliers = ", ".join(f"{x['country']} {_pct(x['share'])}" for x in prod["main_suppliers"])
        table.add_row(
            _t(prod["code"]),
            _t(prod["description"] or "?"),
            f"{prod['hhi']:.3f}",
            demand,
            ratio,
            _t(suppliers, 200),
        )
    console.print(table)
    for f in doc["findings"]:
        if f["kind"] != "dependent-product":
            console.print(Text(f"{f['severity']}: {visible(f['sentence'], 400)}"))


@click.command("reduce")
@click.argument("site_file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--workspace",
    "-w",
    type=click.Path(path_type=Path, file_okay=False),
    help="Watch workspace: check declared dependencies against observed traffic.",
)
@click.option(
    "--trade",
    "trade_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Trade data in CEPII BACI CSV layout (t,i,j,k,v,q).",
)
@click.option("--trade-sample", is_flag=True, help="Use the shipped illustrative (made-up) trade sample.")
@click.option(
    "--countries",
    type=click.Path(path_type=Path, dir_okay=False),
    help="BACI country table (default: country_codes*.csv beside the trade file).",
)
@click.option(
    "--products",
    type=click.Path(path_type=Path, dir_okay=False),
    help="BACI product table (default: product_codes*.csv beside the trade file).",
)
@click.option(
    "--production",
    type=click.Path(path_type=Path, dir_okay=False),
    help="EU production by product (k,v) for --denominator apparent-consumption.",
)
@click.option(
    "--denominator",
    type=click.Choice(["total-imports", "apparent-consumption"]),
    default="total-imports",
    show_default=True,
    help="Denominator of the share of extra-EU imports in demand [U].",
)
@click.option("--year", type=int, help="Year to analyse (default: the latest in the file).")
@click.option(
    "--hhi-threshold",
    type=click.FloatRange(0, 1),
    default=0.4,
    show_default=True,
    help="Concentrated when the HHI of extra-EU imports by supplier exceeds this [S].",
)
@click.option(
    "--demand-threshold",
    type=click.FloatRange(0, min_open=True),
    default=0.5,
    show_default=True,
    help="Import-dependent when extra-EU imports / denominator exceed this [U].",
)
@click.option(
    "--ratio-threshold",
    type=click.FloatRange(0, min_open=True),
    default=1.0,
    show_default=True,
    help="Hard to substitute when extra-EU imports / extra-EU exports exceed this [S].",
)
@click.option(
    "--json",
    "json_out",
    metavar="FILE|-",
    help="Write the derisk.reduce/1 JSON document (- for standard output).",
)
@click.option(
    "--html",
    "html_out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a self-contained HTML report.",
)
@pdf_option
@lang_option
@click.option("-q", "--quiet", is_flag=True, help="No terminal summary.")
@click.pass_context
def reduce_command(
    ctx: click.Context,
    site_file: Path | None,
    workspace: Path | None,
    trade_file: Path | None,
    trade_sample: bool,
    countries: Path | None,
    products: Path | None,
    production: Path | None,
    denominator: str,
    year: int | None,
    hhi_threshold: float,
    demand_threshold: float,
    ratio_threshold: float,
    json_out: str | None,
    html_out: Path | None,
    pdf_dest: Path | None,
    lang: str,
    quiet: bool,
) -> None:
    """Dependency register and de-risking plan of SITE_FILE, or product dependencies with --trade FILE.

    Site mode measures which critical functions depend on suppliers controlled from which
    jurisdiction, how concentrated that is (HHI), what the traffic in --workspace shows, and ranks
    mitigations. Trade mode applies the European Commission's three dependency indicators.
    Decision support, not legal advice.
    """
    from derisk.reduce.run import reduce_site, reduce_trade

    modes = sum(x for x in (site_file is not None, trade_file is not None, trade_sample))
    if modes != 1:
        raise UsageError("give exactly one of SITE_FILE, --trade FILE or --trade-sample")
    trade_opts = [countries, products, production, year]
    if site_file is not None:
        if any(o is not None for o in trade_opts) or denominator != "total-imports":
            raise UsageError("--countries, --products, --production, --year and --denominator need --trade")
        doc = reduce_site(site_file, workspace=workspace)
        summary = _site_summary
    else:
        source = ctx.get_parameter_source("workspace")
        if workspace is not None and source is not None and source.name == "COMMANDLINE":
            raise UsageError("--workspace is for SITE_FILE, not for trade data")
        from derisk.reduce.trade import TradeParams

        params = TradeParams(
            hhi_threshold=hhi_threshold,
            demand_share_threshold=demand_threshold,
            import_export_threshold=ratio_threshold,
            denominator=denominator,
            year=year,
        )
        doc = reduce_trade(
            trade_file,
            sample=trade_sample,
            countries=countries,
            products=products,
            production=production,
            params=params,
        )
        summary = _trade_summary
    _emit(doc, json_out, html_out, pdf_dest, lang)
    if not quiet:
        summary(doc, status_console(json_out))


def register(group: click.Group) -> None:
    group.add_command(reduce_command)
