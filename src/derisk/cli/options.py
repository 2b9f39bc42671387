"""Options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path

import click

from derisk.i18n import LANGUAGES
from derisk.store import DEFAULT_WORKSPACE

workspace_option = click.option(
    "--workspace",
    "-w",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_WORKSPACE,
    show_default=True,
    help="Workspace directory (an embedded database).",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Reference data directory [default: $DERISK_DATA_DIR or ~/.local/share/derisk].",
)
json_option = click.option(
    "--json", "json_dest", metavar="FILE|-", help="Write the JSON document here (- for stdout)."
)
pdf_option = click.option(
    "--pdf",
    "pdf_dest",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report as PDF here (the HTML report, printed with WeasyPrint).",
)
lang_option = click.option(
    "--lang",
    type=click.Choice(LANGUAGES),
    default="en",
    show_default=True,
    help="Language of the HTML/PDF output (JSON documents and the terminal stay English).",
)
