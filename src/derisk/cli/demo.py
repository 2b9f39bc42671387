"""``derisk demo``: build the demo cargo hub, analyse it end to end and write every report."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from derisk.cli.options import data_dir_option, json_option
from derisk.cli.output import dumps, emit_json, status_console, write_atomic
from derisk.cli.watch import analyse
from derisk.errors import DataError, UsageError
from derisk.safetext import visible

if TYPE_CHECKING:  # rich is imported when something is shown, so that --help stays quick
    from rich.text import Text

#: A fixed start so that the demo capture is the same on every machine with the same IP data.
DEMO_START = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)
MARKER = ".derisk-demo"
#: The fictional investment the demo screens: a company controlled from China takes 25% of a Belgian
#: airport-logistics operator.
DEMO_DEAL = Path(__file__).resolve().parent.parent / "data" / "examples" / "liege-cargo.yaml"


def _prepare(out: Path) -> None:
    """The demo folder is ours: refuse to overwrite a folder derisk did not create."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise UsageError(f"{out} exists and was not made by `derisk demo`; choose another --out")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by derisk demo; safe to delete\n", encoding="utf-8")


def _story(doc: dict[str, Any]) -> Text:
    """The one-minute story for a security officer, from the analysis itself (not scripted)."""
    from rich.text import Text

    from derisk.report.formatting import human_bytes

    text = Text()
    sent = sum(e["bytes_out"] for e in doc["exposure"])
    for row in doc["exposure"]:
        if not row.get("laws"):
            continue
        share = 100.0 * row["bytes_out"] / sent if sent else 0.0
        laws = ", ".join(
            f"{law['law']} {law['article'] or ''}".strip() + f" [{law['confidence']}]"
            for law in row["laws"][:3]
        )
        text.append(
            f"• {share:.0f}% of what the site sent ({human_bytes(row['bytes_out'])}) went to organisations "
        )
        text.append(f"controlled from {row['jurisdiction']}", style="bold")
        text.append(
            f" ({visible(', '.join(row['controllers'][:3]), 120)}); laws that can compel access: {laws}.\n"
        )
    for dest in doc["destinations"]:
        if (
            dest["jurisdiction"]
            and dest["geo_country"]
            and dest["jurisdiction"] != dest["geo_country"]
            and dest["controller"]
        ):
            text.append(
                f"• {visible(dest['ip'])} ({visible(', '.join(dest['server_names'][:1]) or 'no name', 80)}) stands in "
                f"{dest['geo_country']} but is run by {visible(dest['controller'], 80)}, controlled from "
                f"{dest['jurisdiction']}: geolocation alone would have said {dest['geo_country']}.\n"
            )
            break
    for alert in doc.get("alerts", [])[:3]:
        text.append(
            f"• {visible(alert.get('severity'))} {visible(alert.get('kind'))}: {visible(alert.get('sentence'), 700)}\n"
        )
    return text


@click.command("demo")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("derisk-demo"),
    show_default=True,
    help="Folder for the demo's capture, site file, workspace and reports (recreated).",
)
@data_dir_option
@click.option(
    "--hours", default=6.0, show_default=True, type=click.FloatRange(0.25, 48), help="Hours of traffic."
)
@json_option
@click.option("-q", "--quiet", is_flag=True, help="No terminal output; the files are written all the same.")
def demo_cmd(out: Path, data_dir: Path | None, hours: float, json_dest: str | None, quiet: bool) -> None:
    """Build a demo cargo hub, capture its traffic, analyse it and write the reports.

    With --json, the demo's analysis document (derisk.analysis/1) goes there too.
    """
    import yaml
    from rich.console import Console
    from rich.panel import Panel

    try:
        from derisk.demo.scenario import SampledAddressBook, build_scenario
    except ModuleNotFoundError as exc:
        if exc.name != "scapy" and not str(exc.name).startswith("scapy."):
            raise
        raise DataError(
            "the demo writes its capture with scapy, which is not installed: pip install 'derisk[demo]'"
        ) from None
    from derisk.enrich.ipdata import load_ipdata
    from derisk.reduce.report import render_html as render_reduce_html
    from derisk.reduce.run import reduce_site
    from derisk.report.html import render_analysis_html
    from derisk.report.terminal import render_analysis
    from derisk.screen.memo import render_html as render_memo_html
    from derisk.site import load_site
    from derisk.web.readonly import report_series

    try:
        ipdata = load_ipdata(data_dir)
    except DataError as exc:
        raise DataError(
            exc.message + "; the demo takes its addresses from that data", source=exc.source
        ) from None
    console = Console(quiet=True) if quiet else status_console(json_dest)
    _prepare(out)
    scenario = build_scenario(SampledAddressBook(ipdata), start=DEMO_START, hours=hours)
    site_file = out / "site.yaml"
    site_file.write_text(
        "# The demo site (fictitious), written by `derisk demo`.\n"
        + yaml.safe_dump(_with_register(scenario.site), sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    capture = out / "cargo-hub.pcapng"
    with console.status(f"writing {len(scenario.conversations):,} conversations to {capture.name}"):
        ledger = scenario.write(capture, fmt="pcapng")
    console.print(
        f"capture: {visible(str(capture), 200)} ({ledger.packets:,} packets, {len(ledger):,} flows)"
    )
    site = load_site(site_file)
    workspace = out / "workspace"
    _attach_evidence(workspace)
    _, doc = analyse([capture], site, workspace, data_dir, console)
    write_atomic(out / "analysis.json", dumps(doc))
    emit_json(doc, json_dest)
    hourly, slot = report_series(workspace, doc)
    write_atomic(out / "report.html", render_analysis_html(doc, hourly=hourly, slot_minutes=slot))
    screening = _screen_demo_deal(workspace)
    write_atomic(out / "screening.json", dumps(screening))
    write_atomic(out / "screening.html", render_memo_html(screening))
    reduce_doc = reduce_site(site_file, workspace=workspace)
    write_atomic(out / "reduce.json", dumps(reduce_doc))
    write_atomic(out / "reduce.html", render_reduce_html(reduce_doc))
    console.print(render_analysis(doc, top=8))
    for story, title in (
        (_story(doc), "What the traffic shows"),
        (_screening_story(screening), "Investment screening of a fictional deal"),
        (_reduce_story(reduce_doc), "Dependencies and a de-risking plan"),
    ):
        console.print(Panel(story, title=title, title_align="left"))
    names = ("report.html", "analysis.json", "screening.html", "screening.json", "reduce.html", "reduce.json")
    console.print("Reports: " + ", ".join(visible(str(out / n), 200) for n in names))
    ws_text = visible(str(workspace), 200)
    console.print(
        "The dashboard: create an account once, then serve it (it listens on 127.0.0.1 only):\n"
        f"  derisk users add admin --role admin --workspace {ws_text}\n"
        f"  derisk serve --workspace {ws_text}\n"
        f"After a change to the control graph (`derisk entity import`), `derisk analyze --workspace {ws_text}` "
        "re-attributes the stored traffic."
    )


def _attach_evidence(workspace: Path) -> None:
    """The demo's public reporting (the seed article on Cainiao at Liège) attached to the graph."""
    from importlib.resources import files

    from derisk.know import evidence
    from derisk.store.workspace import Workspace

    text = files("derisk.data").joinpath("evidence", "demo.yaml").read_text(encoding="utf-8")
    with Workspace.open(workspace) as ws:
        for entry in evidence.from_yaml(text):
            evidence.add(ws, entry)


def _screen_demo_deal(workspace: Path) -> dict[str, Any]:
    """Screen the fictional deal; it also goes into the workspace's cases/ for the dashboard."""
    from derisk.screen.run import screen_file

    cases = workspace / "cases"
    cases.mkdir(exist_ok=True)
    deal_file = cases / DEMO_DEAL.name
    deal_file.write_bytes(DEMO_DEAL.read_bytes())
    return screen_file(deal_file, workspace=workspace, today=DEMO_START.date())


def _screening_story(doc: dict[str, Any]) -> Text:
    from rich.text import Text

    text = Text()
    for regime in doc["regimes"]:
        reason = regime["reasons"][0] if regime["reasons"] else {}
        sentence = reason.get("sentence") if isinstance(reason, dict) else str(reason)
        text.append(
            f"• {regime['regime']}: {regime['outcome']}",
            style="bold" if regime["outcome"] == "required" else "",
        )
        text.append(f" — {visible(sentence, 300)}\n" if sentence else "\n")
        for deadline in regime.get("deadlines", [])[:1]:
            ends = deadline.get("ends") or "open"
            text.append(
                f"  {visible(deadline['phase'], 80)}: {deadline['days']} {deadline['kind']} days, ends {ends}\n"
            )
    text.append(visible(doc.get("disclaimer", ""), 300), style="dim")
    return text


def _with_register(site: dict[str, Any]) -> dict[str, Any]:
    """The scenario's site plus its dependency register (critical functions and who supplies them)."""
    from derisk.reduce.register import SCENARIO_SYSTEM_NAMES, demo_functions

    systems = [dict(system) for system in site["systems"]]
    for system in systems:
        if system["name"] == SCENARIO_SYSTEM_NAMES["wms"]:
            system["hosting"] = "Alibaba Cloud"
    return {**site, "systems": systems, "functions": demo_functions(SCENARIO_SYSTEM_NAMES)}


def _reduce_story(doc: dict[str, Any]) -> Text:
    from rich.text import Text

    text = Text()
    shares = doc["shares"]["dependency"]
    parts = ", ".join(f"{cc} {100 * v:.0f}%" for cc, v in sorted(shares.items(), key=lambda kv: -kv[1]))
    text.append(f"• Share of critical functions depending on each jurisdiction: {parts}; ")
    text.append(
        f"HHI of dependency {doc['hhi']:.2f}.\n" if doc.get("hhi") is not None else "HHI not computable.\n"
    )
    for step in doc["plan"]["steps"][:3]:
        before, after = step["before"]["edge_shares"], step["after"]["edge_shares"]
        moved = ", ".join(
            f"{cc} {100 * before[cc]:.0f}% → {100 * after.get(cc, 0):.0f}%"
            for cc in before
            if cc in ("CN", "RU")
        )
        text.append(
            f"• Step {step['rank']}: {visible(step['title'], 160)} ({visible(step['target'].get('system'), 60)})"
        )
        text.append(f"; dependency edges {moved}.\n" if moved else ".\n")
    return text


def register(group: click.Group) -> None:
    group.add_command(demo_cmd)
