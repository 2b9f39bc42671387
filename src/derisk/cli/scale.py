"""``derisk export parquet`` and ``derisk load``: a flow store other engines read (Spark, Trino, pandas).

The dataset is Hive-partitioned Parquet (``site=…/day=…``) with a manifest; it is written to a
temporary folder and renamed into place, so a failed export publishes nothing.
"""

from __future__ import annotations

from pathlib import Path

import click

from derisk.cli.options import workspace_option
from derisk.cli.output import status_console
from derisk.safetext import visible


@click.group("export")
def export_group() -> None:
    """Export the workspace's flows and alerts for other engines."""


@export_group.command("parquet")
@click.argument("dest", type=click.Path(path_type=Path, file_okay=False))
@workspace_option
def export_parquet_cmd(dest: Path, workspace: Path) -> None:
    """Write flows and alerts as Hive-partitioned Parquet (site=…/day=…) with a manifest into DEST.

    DEST must not exist yet; nothing appears there unless the whole dataset was written.
    """
    from derisk.store.parquet import export_workspace

    manifest = export_workspace(workspace, dest)
    status_console(None).print(
        f"{manifest['rows']['flows']:,} flows and {manifest['rows']['alerts']:,} alerts written to "
        f"{visible(str(dest), 200)}"
    )


@click.command("load")
@click.argument("source", type=click.Path(path_type=Path, file_okay=False))
@workspace_option
def load_cmd(source: Path, workspace: Path) -> None:
    """Load a Parquet dataset (from `derisk export parquet` or `derisk analyze --engine spark`)
    into the workspace, replacing its flows and alerts, all or nothing."""
    from derisk.store.parquet import load_dataset

    manifest = load_dataset(source, workspace)
    status_console(None).print(
        f"{manifest['rows']['flows']:,} flows and {manifest['rows']['alerts']:,} alerts loaded into "
        f"{visible(str(workspace), 200)}"
    )


def register(group: click.Group) -> None:
    group.add_command(export_group)
    group.add_command(load_cmd)
