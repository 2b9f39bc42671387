"""``derisk entity import``: check a whole FtM file, then store it all or nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from derisk.errors import InputError, Problem, raise_problems
from derisk.know.curated import load_curated
from derisk.know.ftm import MAX_ERRORS, Record, check_graph, parse_lines
from derisk.know.graph import load_graph
from derisk.store.entities import imported_ids, save_import
from derisk.store.workspace import Workspace


@dataclass(frozen=True)
class ImportReport:
    path: str
    import_id: str
    entities: int
    nodes: int
    links: int


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected an FtM JSON lines file", source=str(path)) from None
    except PermissionError:
        raise InputError("cannot read (permission denied)", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", source=str(path)) from None


def check_file(path: Path, ws: Workspace | None) -> list[Record]:
    """Every problem of the file at once (InputError), or the checked records."""
    text = read_text(path)
    result = parse_lines(text.splitlines(), path.name)
    problems: list[Problem] = list(result.problems)
    if not result.records and not problems:
        problems.append(Problem("", "no entities in the file"))
    if not problems:
        known = (
            set(load_curated().entities)
            | {src.id for e in load_curated().entities.values() for src in e.sources}
            | {link.source.id for link in load_curated().links if link.source}
        )
        if ws is not None:
            known |= imported_ids(ws)
        problems.extend(check_graph(result.records, known, load_graph(ws)))
    if len(problems) > MAX_ERRORS:
        extra = len(problems) - MAX_ERRORS
        problems = [*problems[:MAX_ERRORS], Problem("", f"and {extra} more problems")]
    raise_problems(problems, source=str(path), kind=InputError, summary="cannot import")
    return result.records


def import_file(ws: Workspace, path: Path) -> ImportReport:
    """Check ``path`` completely, then store all its entities in one transaction."""
    records = check_file(path, ws)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    import_id = digest[:16]
    stamped = [Record(r.data, r.origin_file, r.line) for r in records]
    save_import(ws, stamped, import_id=import_id, path=str(path), digest=digest)
    links = sum(1 for r in records if r.schema in ("Ownership", "Control", "Directorship"))
    nodes = sum(1 for r in records if r.schema not in ("Ownership", "Control", "Directorship", "Article"))
    return ImportReport(str(path), import_id, len(records), nodes, links)
