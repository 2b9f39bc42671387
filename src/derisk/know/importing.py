"""``derisk entity import``: read a published data file into the workspace's graph, all or nothing.

Formats (``--format``, else detected from the content when that is unambiguous):

* ``ftm``: FollowTheMoney JSON lines (OpenSanctions, Aleph, derisk's own export), checked as a
  whole (:mod:`derisk.know.ftm`); kept verbatim for a lossless export.
* ``gleif-lei`` / ``gleif-rr``: GLEIF golden copy CSV, Level 1 and Level 2 (:mod:`derisk.know.gleif`).
* ``as2org``: CAIDA AS-to-Organization (:mod:`derisk.know.as2org`).
* ``peeringdb``: a PeeringDB dump of ``org`` and ``net`` objects (:mod:`derisk.know.peeringdb`).
* ``wikidata``: Wikidata JSON dump or SPARQL JSON result (:mod:`derisk.know.wikidata`).

The large formats stream into DuckDB tables inside one transaction: a broken record is dropped and
reported, the import goes ahead with the rest; when nothing usable remains, nothing is changed and
an :class:`InputError` (exit 3) lists every problem.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa

from derisk.errors import InputError, Problem, raise_problems
from derisk.know.curated import load_curated
from derisk.know.ftm import MAX_ERRORS, Record, check_graph, parse_lines
from derisk.know.graph import load_graph
from derisk.know.graphdb import GraphDatabase

FORMATS: Final = ("ftm", "gleif-lei", "gleif-rr", "as2org", "peeringdb", "wikidata")
Reader = Callable[[Path, list[Problem]], Iterator[dict[str, pa.Table]]]


@dataclass(frozen=True)
class ImportReport:
    path: str
    import_id: str
    entities: int
    nodes: int
    links: int
    format: str = "ftm"
    warnings: tuple[Problem, ...] = field(default=())


def regular_file(path: Path) -> None:
    """Refuse what is not a regular file before reading: a named pipe would block, a device never ends."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise InputError("not a regular file (a pipe, socket or device cannot be imported)", source=str(path))


def read_text(path: Path) -> str:
    regular_file(path)
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


def detect(path: Path) -> str:
    """The format of ``path`` from its first lines; FtM JSON lines when nothing else fits."""
    from derisk.know import as2org, peeringdb, wikidata
    from derisk.know.lines import first_line, head

    first = first_line(path)
    if not first:
        return "ftm"
    start = head(path)
    if any(line.startswith("# format:") for line in start.splitlines()[:50]):
        return "as2org"
    compact = "".join(start.split())
    if compact.startswith("{") and '"head":{' in compact and '"results":{' in compact:
        return "wikidata"
    if first.startswith('"LEI"') or first.startswith("LEI,"):
        return "gleif-lei"
    if first.lstrip('"').startswith("Relationship."):
        return "gleif-rr"
    if as2org.looks_like(first):
        return "as2org"
    if first.startswith("{") and '"schema"' in first and '"properties"' in first:
        return "ftm"
    if peeringdb.looks_like(first):
        return "peeringdb"
    if wikidata.looks_like(first):
        return "wikidata"
    # The historic default: FtM JSON lines, whose checker lists every problem of the file.
    return "ftm"


def _reader(fmt: str) -> Reader:
    from derisk.know import as2org, gleif, peeringdb, wikidata

    readers: dict[str, Reader] = {
        "gleif-lei": gleif.read_l1,
        "gleif-rr": gleif.read_rr,
        "as2org": as2org.read,
        "peeringdb": peeringdb.read,
        "wikidata": wikidata.read,
    }
    return readers[fmt]


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                sha.update(chunk)
    except FileNotFoundError:
        raise InputError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None
    return sha.hexdigest()


def import_file(db: GraphDatabase, path: Path, fmt: str | None = None) -> ImportReport:
    """Import ``path`` (format given or detected) into the workspace ``db``, in one transaction."""
    regular_file(path)
    digest = _digest(path)
    chosen = fmt or detect(path)
    if chosen == "ftm":
        return _import_ftm(db, path, digest)
    if chosen not in FORMATS:
        raise InputError(f"unknown format {chosen!r} (one of {', '.join(FORMATS)})", source=str(path))
    from derisk.know import ftmstore
    from derisk.know.graphwrite import write_import

    curated = load_curated()
    known = {*curated.entities, *ftmstore.imported_ids(db)}
    problems: list[Problem] = []
    result = write_import(
        db,
        _reader(chosen)(path, problems),
        import_id=f"{chosen}-{digest[:16]}",
        path=str(path),
        fmt=chosen,
        digest=digest,
        problems=problems,
        known_ids=known,
    )
    return ImportReport(
        str(path),
        result.import_id,
        result.entities + result.links,
        result.entities,
        result.links,
        chosen,
        result.problems,
    )


def check_file(path: Path, db: GraphDatabase | None) -> tuple[list[Record], list[Problem]]:
    """Every problem of an FtM file at once (InputError), or the checked records and the warnings."""
    from derisk.know import ftmstore

    text = read_text(path)
    result = parse_lines(text.splitlines(), path.name)
    problems: list[Problem] = list(result.problems)
    if not result.records and not problems:
        problems.append(Problem("", "no entities in the file"))
    if not problems:
        curated = load_curated()
        known = (
            set(curated.entities)
            | {src.id for e in curated.entities.values() for src in e.sources}
            | {link.source.id for link in curated.links if link.source}
        )
        if db is not None:
            known |= ftmstore.imported_ids(db)
            known |= _in_tables(db, result.records, known)
        problems.extend(check_graph(result.records, known, load_graph(db)))
    if len(problems) > MAX_ERRORS:
        extra = len(problems) - MAX_ERRORS
        problems = [*problems[:MAX_ERRORS], Problem("", f"and {extra} more problems")]
    raise_problems(problems, source=str(path), kind=InputError, summary="cannot import")
    return result.records, list(result.warnings)


def _in_tables(db: GraphDatabase, records: list[Record], known: set[str]) -> set[str]:
    """Ids the FtM records refer to that live in the imported tables (e.g. a GLEIF parent ``lei-…``)."""
    from derisk.know.graphdb import existing

    refs = {
        value
        for record in records
        if record.schema in ("Ownership", "Control", "Directorship")
        for values in record.data.get("properties", {}).values()
        for value in values
        if isinstance(value, str) and value not in known
    }
    return existing(db, sorted(refs)) if refs else set()


def _import_ftm(db: GraphDatabase, path: Path, digest: str) -> ImportReport:
    from derisk.know import ftmstore

    records, warnings = check_file(path, db)
    import_id = digest[:16]
    ftmstore.save_records(db, records, import_id=import_id, path=str(path), digest=digest)
    links = sum(1 for r in records if r.schema in ("Ownership", "Control", "Directorship"))
    nodes = sum(1 for r in records if r.schema not in ("Ownership", "Control", "Directorship", "Article"))
    return ImportReport(str(path), import_id, len(records), nodes, links, "ftm", tuple(warnings))
