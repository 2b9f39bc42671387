"""``derisk entity export``: curated entities plus imported ones as FtM JSON lines.

Imported entities are written exactly as they were imported; a curated entity whose id was imported
is replaced by the imported version. Exporting, importing the result into an empty workspace and
exporting again gives the same lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from followthemoney import model

from derisk.know.curated import load_curated
from derisk.know.ftm import dumps, graph_to_ftm
from derisk.store.entities import load_imported
from derisk.store.workspace import Workspace


def _rank(data: dict[str, Any]) -> tuple[int, str]:
    schema = model.get(data["schema"])
    if schema is not None and schema.is_a("Document"):
        return (0, data["id"])
    if schema is not None and schema.is_a("Interval"):
        return (2, data["id"])
    return (1, data["id"])


def export_entities(ws: Workspace | None) -> Iterator[dict[str, Any]]:
    """Sources first, then organisations and people, then links; each group in id order."""
    imported = load_imported(ws) if ws is not None else []
    by_id = {data["id"]: data for data in graph_to_ftm(load_curated())}
    by_id.update({record.id: record.data for record in imported})
    yield from sorted(by_id.values(), key=_rank)


def export_lines(ws: Workspace | None) -> Iterator[str]:
    for data in export_entities(ws):
        yield dumps(data) + "\n"
