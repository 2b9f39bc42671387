"""``derisk export parquet`` and ``derisk load``: a flow store other engines read (Spark, Trino, pandas).

The dataset is Hive-partitioned Parquet (``site=…/day=…``) with a manifest; it is written to a
temporary folder and renamed into place, so a failed export publishes nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from derisk import scratch
from derisk.cli.options import workspace_option
from derisk.cli.output import status_console
from derisk.safetext import visible

if TYPE_CHECKING:
    from derisk.site import Site

#: The file that marks a folder as a Parquet dataset (:data:`derisk.store.parquet.MANIFEST`), named
#: here so that recognising one does not load the engines.
MANIFEST_NAME = "manifest.json"


def is_dataset(path: Path) -> bool:
    """Whether ``path`` is a Parquet dataset folder (a manifest in it), without loading any engine."""
    return path.is_dir() and (path / MANIFEST_NAME).is_file()


def dataset_run(ws: Any, manifest: dict[str, Any], folder: Path, engine: str) -> dict[str, Any]:
    """The ``run`` section of a document built from a dataset: its last recorded run."""
    rows = (
        ws.query(
            "SELECT run_id, started_at, ipdata_version, registry_version FROM runs ORDER BY started_at DESC LIMIT 1"
        )
        if "runs" in manifest["rows"]
        else []
    )
    run_id, started, ipdata, registry = rows[0] if rows else (None, None, None, None)
    return {
        "run_id": run_id,
        "started_at": started.isoformat() if started is not None else None,
        "ingested": {},
        "already_present": {},
        "ipdata_version": ipdata,
        "registry_version": registry,
        "input_notes": {},
        "engine": engine,
        "dataset": str(folder),
    }


def one_dataset(inputs: list[Path]) -> Path:
    """The one Parquet dataset among ``inputs``; a dataset is analysed alone by DuckDB."""
    from derisk.errors import UsageError

    if len(inputs) != 1:
        raise UsageError(
            "a Parquet dataset is analysed alone with --engine duckdb (several inputs: use --engine spark)"
        )
    return inputs[0]


def analyse_spark(
    inputs: list[Path],
    site: Site,
    data_dir: Path | None,
    *,
    master: str | None,
    out: Path | None,
    workspace: Path | None,
    strict: bool = False,
) -> dict[str, Any]:
    """Analyse ``inputs`` on Spark into a Parquet dataset (``out``, else a temporary folder) and
    build its ``derisk.analysis/1`` document from that dataset; the control graph (imported entities)
    is the dataset's, else that of ``workspace`` when it exists."""

    from derisk.errors import UsageError

    if not inputs:
        raise UsageError("--engine spark needs INPUTS (Zeek log directories or Parquet datasets)")
    from derisk.spark import analyse

    with scratch.directory("spark") as tmp:
        dest = out if out is not None else Path(tmp) / "results"
        analyse(
            inputs, site, dest, master=master, data_root=data_dir, graph_workspace=workspace, strict=strict
        )
        doc = analyse_dataset(dest, site, data_dir, engine="spark")
        if out is None:  # the temporary folder is gone once the document is returned
            doc["run"]["dataset"] = None
        return doc


def analyse_dataset(
    folder: Path, site: Site, data_dir: Path | None, *, engine: str = "duckdb"
) -> dict[str, Any]:
    """``derisk.analysis/1`` of a Parquet dataset, read in place by DuckDB (nothing copied)."""
    from derisk.analysis import build_document
    from derisk.store.parquet import DATASET_MEMORY, SPARK_DRIVER_MEMORY, open_dataset, stored_alerts

    limit = SPARK_DRIVER_MEMORY if engine == "spark" else DATASET_MEMORY
    with open_dataset(folder, memory_default=limit) as (ws, manifest):
        return build_document(
            ws,
            site,
            input_ids=None,
            run=dataset_run(ws, manifest, folder, engine),
            alerts=stored_alerts(ws),
            data_root=data_dir,
        )


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
@click.option("--replace", is_flag=True, help="Replace the flows and alerts the workspace holds already.")
def load_cmd(source: Path, workspace: Path, replace: bool) -> None:
    """Load a Parquet dataset (from `derisk export parquet` or `derisk analyze --engine spark`)
    into the workspace, replacing its flows and alerts, all or nothing."""
    from derisk.store.parquet import load_dataset

    manifest = load_dataset(source, workspace, replace=replace)
    status_console(None).print(
        f"{manifest['rows']['flows']:,} flows and {manifest['rows']['alerts']:,} alerts loaded into "
        f"{visible(str(workspace), 200)}"
    )


def register(group: click.Group) -> None:
    group.add_command(export_group)
    group.add_command(load_cmd)
