"""``derisk analyze`` and ``derisk inputs``: Watch, from captures and logs to exposure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from derisk.cli.options import data_dir_option, json_option, lang_option, pdf_option, workspace_option
from derisk.cli.output import emit_json, status_console, write_pages
from derisk.safetext import visible

if TYPE_CHECKING:  # the library is imported when a command runs, so that --help stays instant
    from rich.console import Console

    from derisk.ingest import InputSpec
    from derisk.pipeline import RunResult
    from derisk.site import Site


def analyse(
    inputs: list[Path],
    site: Site,
    workspace: Path,
    data_dir: Path | None,
    console: Console | None,
    *,
    quiet: bool = False,
    strict: bool = False,
) -> tuple[RunResult, dict[str, Any]]:
    """Run the pipeline, with a progress display on a terminal, and build the analysis document."""
    from derisk.analysis import build_document
    from derisk.pipeline import run
    from derisk.store.workspace import Workspace

    if quiet or console is None or not console.is_terminal:  # no display: rich's progress not loaded
        result = run(workspace, inputs, site, data_root=data_dir, strict=strict)
    else:
        result = _run_with_progress(inputs, site, workspace, data_dir, console, strict=strict)
    with Workspace.open(workspace, create=False, read_only=True) as ws:
        doc = build_document(
            ws,
            site,
            input_ids=result.input_ids or None,
            run={
                "run_id": result.run_id,
                "started_at": result.started_at.isoformat(),
                "ingested": result.ingested,
                "already_present": result.skipped,
                "ipdata_version": result.ipdata_version,
                "registry_version": result.registry_version,
                # what the readers reported per input (captures: cut, packets with wild timestamps)
                "input_notes": {spec.input_id: spec.notes for spec in result.specs if spec.notes},
            },
            alerts=[a.to_json() if hasattr(a, "to_json") else a for a in result.alerts],
            data_root=data_dir,
        )
    return result, doc


def _run_with_progress(
    inputs: list[Path], site: Site, workspace: Path, data_dir: Path | None, console: Console, *, strict: bool
) -> RunResult:
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from derisk.pipeline import run

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(bar_width=None),
        TextColumn("{task.fields[flows]:,} flows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(spec: InputSpec, flows: int, read: int) -> None:
            if spec.input_id not in tasks:
                # Zeek readers report bytes of the logs, so the bar has an end; captures report packets.
                total = spec.size_bytes if spec.format in ("zeek", "eve") else None
                tasks[spec.input_id] = bar.add_task(visible(spec.path.name, 50), total=total, flows=0)
            task = tasks[spec.input_id]
            if spec.format in ("zeek", "eve"):
                bar.update(task, completed=min(read, spec.size_bytes), flows=flows)
            else:
                bar.update(task, flows=flows)

        return run(workspace, inputs, site, data_root=data_dir, progress=progress, strict=strict)


@click.command("analyze")
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--site", "site_file", type=click.Path(path_type=Path), help="Site file (YAML).")
@workspace_option
@data_dir_option
@json_option
@click.option(
    "--html", "html_dest", type=click.Path(path_type=Path, dir_okay=False), help="Write the HTML report here."
)
@pdf_option
@click.option(
    "--top",
    default=10,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Destinations shown in the terminal.",
)
@lang_option
@click.option("-q", "--quiet", is_flag=True, help="No terminal summary.")
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse a capture or Zeek log cut short, or a Zeek log with lines that cannot be read (exit 3), "
    "instead of reading what can be read, and an EVE log without flow events instead of rebuilding its "
    "connections from alerts.",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark"]),
    default="duckdb",
    show_default=True,
    help="Where the analysis runs: embedded DuckDB, or Apache Spark (pip install 'derisk[spark]').",
)
@click.option("--master", metavar="URL", help="Spark master (local[N], spark://…, yarn, k8s://…).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="With --engine spark: write the results here as a Parquet dataset (`derisk load` reads it).",
)
def analyze_cmd(
    inputs: tuple[Path, ...],
    site_file: Path | None,
    workspace: Path,
    data_dir: Path | None,
    json_dest: str | None,
    html_dest: Path | None,
    pdf_dest: Path | None,
    top: int,
    lang: str,
    quiet: bool,
    strict: bool,
    engine: str,
    master: str | None,
    out_dir: Path | None,
) -> None:
    """Attribute traffic to controllers and jurisdictions (captures, Zeek logs).

    INPUTS are pcap/pcapng files, Zeek conn.log files or Zeek log directories, or one Parquet
    dataset (`derisk export parquet`), read in place. Without INPUTS the whole workspace is
    attributed again (after a change to the control graph, say). With --engine spark, INPUTS are
    Zeek log directories or Parquet datasets, analysed on Apache Spark (docs/spark.md).
    """
    from derisk.cli.startup import pandas_deferred

    on_spark = engine == "spark" or master is not None or out_dir is not None
    with pandas_deferred(active=not on_spark):  # pandas: 0.25-0.45 CPU s of imports that no step uses
        _analyze(
            list(inputs),
            site_file,
            workspace,
            data_dir,
            _Outputs(json_dest, html_dest, pdf_dest, top, lang, quiet),
            strict=strict,
            on_spark=on_spark,
            master=master,
            out_dir=out_dir,
        )


@dataclass(frozen=True)
class _Outputs:
    """Where ``analyze`` writes its document, pages and terminal summary."""

    json_dest: str | None
    html_dest: Path | None
    pdf_dest: Path | None
    top: int
    lang: str
    quiet: bool


def _analyze(
    inputs: list[Path],
    site_file: Path | None,
    workspace: Path,
    data_dir: Path | None,
    outputs: _Outputs,
    *,
    strict: bool,
    on_spark: bool,
    master: str | None,
    out_dir: Path | None,
) -> None:
    from derisk.cli import scale

    json_dest, html_dest, pdf_dest = outputs.json_dest, outputs.html_dest, outputs.pdf_dest
    quiet = outputs.quiet
    from derisk.site import load_site

    site = load_site(site_file)
    skipped: dict[str, int] = {}
    series: dict[str, Any] = {}
    if on_spark:
        doc = scale.analyse_spark(
            inputs, site, data_dir, master=master, out=out_dir, workspace=workspace, strict=strict
        )
    elif any(scale.is_dataset(p) for p in inputs):
        doc = scale.analyse_dataset(scale.one_dataset(inputs), site, data_dir)
    else:
        console = None if quiet else status_console(json_dest)
        result, doc = analyse(inputs, site, workspace, data_dir, console, quiet=quiet, strict=strict)
        skipped = result.skipped
        if html_dest is not None or pdf_dest is not None:
            from derisk.web.readonly import report_series

            hourly, slot = report_series(workspace, doc)
            series = {"hourly": hourly, "slot_minutes": slot}
    if html_dest is not None or pdf_dest is not None:
        from derisk.report.html import render_analysis_html  # only when a page is asked for

        write_pages(render_analysis_html(doc, locale=outputs.lang, **series), html_dest, pdf_dest)
    emit_json(doc, json_dest)
    if not quiet:
        from derisk.report.terminal import render_analysis

        console = status_console(json_dest)
        for input_id, flows in skipped.items():
            console.print(
                f"[dim]{visible(input_id)}: already in the workspace ({flows:,} flows), not ingested again[/]"
            )
        console.print(render_analysis(doc, top=outputs.top))
        for dest, kind in ((html_dest, "HTML"), (pdf_dest, "PDF")):
            if dest is not None:
                console.print(f"{kind} report: {visible(str(dest), 200)}")


@click.command("inputs")
@workspace_option
@json_option
def inputs_cmd(workspace: Path, json_dest: str | None) -> None:
    """List the inputs stored in the workspace."""
    from derisk.store import flows as store
    from derisk.store.workspace import Workspace

    with Workspace.open(workspace, create=False, read_only=True) as ws:
        rows = store.list_inputs(ws)
    emit_json({"schema": "derisk.inputs/1", "inputs": rows}, json_dest)
    if json_dest != "-":
        console = status_console(json_dest)
        for r in rows:
            console.print(
                f"{visible(r['input_id'])}  {r['flows']:>9,} flows  {visible(r['format'])}  {visible(r['path'], 100)}"
            )


def register(group: click.Group) -> None:
    group.add_command(analyze_cmd)
    group.add_command(inputs_cmd)
