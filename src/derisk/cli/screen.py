"""``derisk screen``: does a deal need foreign-investment screening, where, by when, and why."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from derisk.cli.options import lang_option, pdf_option
from derisk.cli.output import emit_json, status_console, write_pages


def register(group: click.Group) -> None:
    group.add_command(screen_command)


@click.command("screen")
@click.argument("deal_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--workspace",
    "-w",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="A Watch workspace of the target's site: its flows become evidence of exposure.",
)
@click.option(
    "--json", "json_dest", metavar="FILE|-", help="Write the derisk.screening/1 document (- for stdout)."
)
@click.option(
    "--html",
    "html_dest",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the self-contained HTML memo here.",
)
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The date to reason from (YYYY-MM-DD) [default: today]; makes results reproducible.",
)
@pdf_option
@lang_option
@click.option("--quiet", "-q", is_flag=True, help="No terminal summary.")
def screen_command(
    deal_file: Path,
    workspace: Path | None,
    json_dest: str | None,
    html_dest: Path | None,
    pdf_dest: Path | None,
    today: dt.datetime | None,
    lang: str,
    quiet: bool,
) -> None:
    """Screen DEAL_FILE (YAML or JSON) under the Belgian, EU, German, French and Dutch regimes.

    Prints a summary; --json and --html write the full answer with reasons, deadlines, risk factors and
    evidence. Decision support, not legal advice.
    """
    from derisk.screen.document import read_document

    raw = read_document(deal_file)  # hostile files are refused here, before the heavy imports below
    from derisk.screen.memo import print_summary, render_html
    from derisk.screen.run import screen_raw

    doc = screen_raw(raw, str(deal_file), workspace=workspace, today=today.date() if today else None)
    emit_json(doc, json_dest)
    if html_dest is not None or pdf_dest is not None:
        write_pages(render_html(doc, lang), html_dest, pdf_dest)
    if not quiet:
        print_summary(status_console(json_dest), doc)
