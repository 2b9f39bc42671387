"""A cache of the compiled curated control graph and its attribution index.

Parsing and checking the shipped group files (:func:`derisk.know.curated.build_curated`) and
resolving the controller of every entity that carries AS numbers or domains
(:func:`derisk.know.attribution.build_index`) cost most of a second with ten thousand entities,
whatever the size of the input an analysis reads. Both results depend only on the shipped files and
on the code that compiles them, so the first run writes them to one JSON file and later runs read it
back (about five times faster).

Where: ``$DERISK_CACHE_DIR``, else ``$XDG_CACHE_HOME/derisk``, else ``~/.cache/derisk``; the file is
``curated-graph.json``. ``DERISK_CACHE_DIR=off`` turns the cache off.

What makes it safe to read (JSON only: nothing in it is executed):

* **the key**: a SHA-256 of the derisk version, of every file of ``derisk/data/groups`` (name and
  bytes) and of the source of the modules that compile them; a file with another key is stale and
  is replaced;
  the header also holds a stamp, a SHA-256 of the key and of the identity of the files it covers
  (inode, size, modification and change times): while it matches, the files were not written
  since, and the key is not computed again (stat calls instead of reading and hashing 330 files);
* **the digests**: a SHA-256 of each section, in the header; a file cut or altered is rebuilt;
* **the owner**: the file must belong to the user running derisk and be writable by no one else
  (checked on the opened file), the folder likewise when derisk creates it, so a file that another
  user placed in a shared cache folder is never read;
* **the round trip**: before writing, the encoded graph and index are decoded again and compared
  with what was built; anything that would not come back equal is not cached.

Three sections: the attribution index (with sources and assessments) and the graph's entities and
links, a JSON line each, then the index's matches, a JSON line each. The graph is decoded (its digest
checked) when something first asks for its entities or links (an AS name to match, ``entity show``,
an imported graph to merge), a match when first read: most analyses read a few. The file is written
under a temporary name and renamed, so a reader sees the old file or the new one. Any problem with
the cache (no home, a read-only folder, a foreign or corrupt file) means the graph is built instead.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from derisk.errors import DataError
from derisk.know.attribution import Match
from derisk.know.cachekey import FORMAT, _identities, cache_key, current_key, file_stamp
from derisk.know.graph import Assessment, Entity, Graph, Link, Source

if TYPE_CHECKING:
    from derisk.know.attribution import AttributionIndex

log = logging.getLogger(__name__)
_T = TypeVar("_T")

FILE_NAME: Final = "curated-graph.json"

_ENTITY_FIELDS: Final = tuple(f.name for f in fields(Entity))
_LINK_FIELDS: Final = tuple(f.name for f in fields(Link))
_SOURCE_FIELDS: Final = tuple(f.name for f in fields(Source))
_ENTITY_TUPLES: Final = frozenset({"aliases", "asns", "domains", "topics", "datasets", "sanctions"})


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is off (``DERISK_CACHE_DIR=off``) or there is no home."""
    env = os.environ.get("DERISK_CACHE_DIR")
    if env:
        return None if env == "off" else Path(env)
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory to be found
            return None
    return Path(base) / "derisk"


@dataclass(frozen=True)
class Compiled:
    """The curated graph and the content of its attribution index."""

    graph: Graph
    by_asn: dict[int, Match]
    by_domain: dict[str, Match]
    conflicts: tuple[str, ...]

    def index(self) -> AttributionIndex:
        """A fresh :class:`~derisk.know.attribution.AttributionIndex` (its lookups copied, its lazy
        caches empty), equal to what ``build_index(self.graph)`` returns."""
        from derisk.know.attribution import AttributionIndex

        return AttributionIndex(
            version=self.graph.version,
            by_asn=dict(self.by_asn),
            by_domain=dict(self.by_domain),
            conflicts=list(self.conflicts),
            graph=self.graph,
        )


_lock = threading.Lock()
_current: Compiled | None = None


def remembered(graph: Graph) -> Compiled | None:
    """The compiled index of ``graph`` when ``graph`` is the curated graph this process loaded."""
    found = _current
    return found if found is not None and found.graph is graph else None


def load(build: Callable[[], Graph]) -> Graph:
    """The curated graph from the cache, else ``build()`` (its index built too, both cached)."""
    global _current
    from derisk.know.attribution import build_index

    with _lock:
        folder = cache_dir()
        found = _read(folder / FILE_NAME, build) if folder is not None else None
        if found is None:
            # The files' identity, then their key, then the graph: a file written in between makes
            # the stamp or the key differ from what the graph was built from, never the reverse.
            identities = _identities() if folder is not None else None
            key = cache_key() if folder is not None else ""
            graph = build()
            index = build_index(graph)
            found = Compiled(graph, index.by_asn, index.by_domain, tuple(index.conflicts))
            if folder is not None:
                _write(folder, key, file_stamp(key, identities), found)
        _current = found
        return found.graph


# --- reading ---------------------------------------------------------------------------------------


def _owned_by_me(info: os.stat_result) -> bool:
    """A regular file of this user that no one else may write."""
    getuid = getattr(os, "geteuid", None)
    mine = getuid is None or info.st_uid == getuid()
    return stat.S_ISREG(info.st_mode) and mine and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _restamp(path: Path, header: dict[str, Any], stamp: str, parts: list[bytes]) -> None:
    """Write the cache file again with ``stamp`` in its header and its parts as they were read."""
    _replace(path, json.dumps({**header, "stamp": stamp}).encode() + b"\n" + b"".join(parts))


def _read(path: Path, build: Callable[[], Graph]) -> Compiled | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            if not _owned_by_me(os.fstat(fh.fileno())):
                log.warning("%s: not read: not a file of this user, or writable by others", path)
                return None
            header_line, index_part, graph_part = fh.readline(), fh.readline(), fh.readline()
            matches_part = fh.read()
    except OSError as exc:
        log.debug("%s: not read: %s", path, exc)
        return None
    try:
        header = json.loads(header_line)
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            return None  # another version: stale, rebuilt
        current, restamp = current_key(header)
        if not current:
            return None  # other data: stale, rebuilt
        rows = matches_part.split(b"\n")
        if (
            not index_part.endswith(b"\n")
            or header.get("index_sha256") != _digest(index_part)
            or header.get("graph_bytes") != len(graph_part)
            or header.get("matches_sha256") != hashlib.sha256(matches_part).hexdigest()
            or header.get("match_count") != len(rows)
        ):
            log.warning("%s: corrupt (its digest or length does not match); rebuilding it", path)
            return None
        with _collector_paused():
            doc = json.loads(index_part)
            sources, assessments = _decode_sources(doc)
            graph = _LazyGraph.pending(
                _Pending(path, graph_part, str(header["graph_sha256"]), sources, build),
                assessments,
                str(doc["fingerprint"]),
            )
            found = _decode_index(doc, graph, rows)
        if restamp is not None:
            _restamp(path, header, restamp, [index_part, graph_part, matches_part])
        return found
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        log.warning("%s: unreadable (%s); rebuilding it", path, exc)
        return None


def _digest(line: bytes) -> str:
    """SHA-256 of a section's line without its newline (not copied)."""
    return hashlib.sha256(memoryview(line)[:-1] if line.endswith(b"\n") else line).hexdigest()


def _make(cls: type[_T], values: dict[str, Any]) -> _T:
    """``cls(**values)`` (fields checked before) as :func:`copy.copy` makes it: 3x cheaper."""
    obj = object.__new__(cls)
    obj.__dict__.update(values)
    return obj


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: the payload makes a hundred thousand containers, none
    of them garbage, and the collections their number triggers would double the time to read it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _decode_sources(doc: dict[str, Any]) -> tuple[list[Source], tuple[Assessment, ...]]:
    """The index section's sources (the graph section refers to them by number) and assessments,
    once its data classes are checked to be those it was written for."""
    if (
        doc["entity_fields"] != list(_ENTITY_FIELDS)
        or doc["link_fields"] != list(_LINK_FIELDS)
        or doc["source_fields"] != list(_SOURCE_FIELDS)
        or doc["match_fields"] != list(_MATCH_FIELDS)
    ):
        raise ValueError("written for other data classes")
    sources = [_make(Source, dict(zip(_SOURCE_FIELDS, row, strict=True))) for row in doc["sources"]]
    assessments = tuple(Assessment(g, says, sources[s], c) for g, says, s, c in doc["assessments"])
    return sources, assessments


def _decode_index(doc: dict[str, Any], graph: Graph, rows: list[bytes]) -> Compiled:
    new = object.__new__
    matches = []
    for row in rows:  # a line of JSON each, decoded when the match is first read
        match = new(_LazyMatch)
        match.__dict__["_row"] = row
        matches.append(match)
    return Compiled(
        graph=graph,
        by_asn={int(asn): matches[i] for asn, i in doc["by_asn"]},
        by_domain={str(domain): matches[i] for domain, i in doc["by_domain"]},
        conflicts=tuple(str(c) for c in doc["conflicts"]),
    )


_MATCH_FIELDS: Final = tuple(f.name for f in fields(Match))
_MATCH_FIELD_SET: Final = frozenset(_MATCH_FIELDS)


class _Decoded:
    """A field of :class:`_LazyMatch`, decoded on first read (then the instance's value comes first:
    not a data descriptor); on every field, so none yields its default in :class:`Match` instead."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, match: _LazyMatch | None, owner: type | None = None) -> Any:
        if match is None:
            return self
        values = match.__dict__
        row = values.get("_row")
        if row is not None and self.name not in values:
            try:
                decoded = dict(zip(_MATCH_FIELDS, json.loads(row), strict=True))
                decoded["path"], decoded["joint"] = tuple(decoded["path"]), tuple(decoded["joint"])
            except (ValueError, TypeError, KeyError) as exc:  # the section's digest matched: not ours
                raise DataError(f"damaged cache file; delete it ({exc})", source=FILE_NAME) from None
            values.update(decoded)  # whole, before the text goes: another thread sees one or the other
            values.pop("_row", None)
        return values[self.name]


class _LazyMatch(Match):
    """A :class:`~derisk.know.attribution.Match` read from the cache, its fields decoded from its
    JSON text when one is first read: an analysis reads the few matches of the ASes and domains it
    saw, of ten thousand (decoding them all was 0.06 CPU s). Equal to, and hashed as, the
    :class:`Match` of the same fields."""

    def _fields(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _MATCH_FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Match):
            return NotImplemented
        return self._fields() == tuple(getattr(other, name) for name in _MATCH_FIELDS)

    def __hash__(self) -> int:
        return hash(self._fields())  # as the data class hashes a Match: its fields in order

    def __repr__(self) -> str:
        return repr(Match(*self._fields()))

    def __getstate__(self) -> dict[str, Any]:  # pickle and copy: every field decoded
        return dict(zip(_MATCH_FIELDS, self._fields(), strict=True))


for _name in _MATCH_FIELDS:
    setattr(_LazyMatch, _name, _Decoded(_name))


def _decode_graph(doc: dict[str, Any], sources: list[Source]) -> tuple[dict[str, Entity], tuple[Link, ...]]:
    entities: dict[str, Entity] = {}
    for row in doc["entities"]:
        values = dict(zip(_ENTITY_FIELDS, row, strict=True))
        for name in _ENTITY_TUPLES:
            values[name] = tuple(values[name])
        values["sources"] = tuple([sources[i] for i in values["sources"]])
        entities[values["id"]] = _make(Entity, values)
    links = []
    for row in doc["links"]:
        values = dict(zip(_LINK_FIELDS, row, strict=True))
        values["source"] = None if values["source"] is None else sources[values["source"]]
        links.append(_make(Link, values))
    return entities, tuple(links)


@dataclass(frozen=True)
class _Pending:
    """The graph section of a cache file, not decoded yet, and how to build the graph instead."""

    path: Path
    payload: bytes
    sha256: str
    sources: list[Source]
    build: Callable[[], Graph]


_LAZY: Final = frozenset({"entities", "links"})  # of _LazyGraph: decoded on first use
_COMPARED: Final = tuple(f.name for f in fields(Graph) if f.compare)
_decoding = threading.Lock()


class _LazyGraph(Graph):
    """The curated graph read from the cache: a :class:`~derisk.know.graph.Graph` whose entities and
    links are decoded from the cache file's graph section when first asked for (equal, in every
    use, to the graph that section holds; if it turns out damaged, the graph is built instead)."""

    @classmethod
    def pending(cls, pending: _Pending, assessments: tuple[Assessment, ...], fingerprint: str) -> Graph:
        graph = object.__new__(cls)  # no __init__: the lazy fields stay unset until first asked for
        graph.__dict__.update(_pending=pending, assessments=assessments, fingerprint=fingerprint)
        return graph  # registry, registry_claimed, registry_joined: the class's defaults

    def __getattr__(self, name: str) -> Any:  # called only for attributes not set yet
        if name not in _LAZY:
            raise AttributeError(name)
        with _decoding:
            pending = self.__dict__.pop("_pending", None)
            if pending is not None:
                entities, links = _materialise(pending)
                self.__dict__.setdefault("entities", entities)
                self.__dict__.setdefault("links", links)
        return self.__dict__[name]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in _COMPARED)

    __hash__ = None  # type: ignore[assignment]  # as Graph's: mutable

    def __getstate__(self) -> dict[str, Any]:  # pickle and copy: everything decoded
        for name in _LAZY:
            getattr(self, name)
        return dict(self.__dict__)


def _materialise(pending: _Pending) -> tuple[dict[str, Entity], tuple[Link, ...]]:
    """The entities and links of a cache file's graph section, else of a built graph."""
    try:
        if _digest(pending.payload) != pending.sha256:
            raise ValueError("its digest does not match")
        with _collector_paused():
            return _decode_graph(json.loads(pending.payload), pending.sources)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        log.warning("%s: graph section unreadable (%s); building the graph", pending.path, exc)
        with contextlib.suppress(OSError):
            pending.path.unlink()  # the next run writes it again
        built = pending.build()
        return dict(built.entities), tuple(built.links)


# --- writing ---------------------------------------------------------------------------------------


def _encode(compiled: Compiled) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """The index section, the graph section and the matches (one JSON line each)."""
    graph = compiled.graph
    source_ids: dict[Source, int] = {}

    def ref(source: Source) -> int:
        return source_ids.setdefault(source, len(source_ids))

    def value(obj: Entity | Link, name: str) -> Any:  # sources by their number
        found = getattr(obj, name)
        if name == "sources":
            return [ref(s) for s in found]
        return (None if found is None else ref(found)) if name == "source" else found

    entities = [[value(e, n) for n in _ENTITY_FIELDS] for e in graph.entities.values()]
    links = [[value(link, n) for n in _LINK_FIELDS] for link in graph.links]
    assessments = [[a.group, a.says, ref(a.source), a.confidence] for a in graph.assessments]
    match_ids: dict[Match, int] = {}
    for match in [*compiled.by_asn.values(), *compiled.by_domain.values()]:
        match_ids.setdefault(match, len(match_ids))
    index = {
        "entity_fields": _ENTITY_FIELDS,
        "link_fields": _LINK_FIELDS,
        "source_fields": _SOURCE_FIELDS,
        "match_fields": _MATCH_FIELDS,
        "fingerprint": graph.version,
        "sources": [[getattr(s, n) for n in _SOURCE_FIELDS] for s in source_ids],
        "assessments": assessments,
        "by_asn": [[asn, match_ids[m]] for asn, m in compiled.by_asn.items()],
        "by_domain": [[domain, match_ids[m]] for domain, m in compiled.by_domain.items()],
        "conflicts": list(compiled.conflicts),
    }
    lines = [_dumps([getattr(m, n) for n in _MATCH_FIELDS]) for m in match_ids]
    return index, {"entities": entities, "links": links}, b"\n".join(lines)


def _decode(index_payload: bytes, graph_payload: bytes, matches: bytes) -> Compiled:
    """Every section decoded (the round trip before writing)."""
    doc = json.loads(index_payload)
    sources, assessments = _decode_sources(doc)
    entities, links = _decode_graph(json.loads(graph_payload), sources)
    graph = Graph(entities=entities, links=links, assessments=assessments)
    graph.fingerprint = str(doc["fingerprint"])
    return _decode_index(doc, graph, matches.split(b"\n"))


def _same(a: Compiled, b: Compiled) -> bool:
    same_graph = a.graph == b.graph and a.graph.version == b.graph.version
    same_order = list(a.graph.entities) == list(b.graph.entities) and a.conflicts == b.conflicts
    same_index = list(a.by_asn.items()) == list(b.by_asn.items())
    return same_graph and same_order and same_index and list(a.by_domain.items()) == list(b.by_domain.items())


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()  # one line: no newline


def _write(folder: Path, key: str, stamp: str | None, compiled: Compiled) -> None:
    """Write the cache file atomically; any failure only leaves the cache as it was."""
    try:
        index_doc, graph_doc, matches = _encode(compiled)
        index, graph = _dumps(index_doc), _dumps(graph_doc)
        if not _same(_decode(index, graph, matches), compiled):
            log.warning("the curated graph does not survive a JSON round trip; not cached")
            return
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        log.warning("the curated graph cannot be cached (%s)", exc)
        return
    header = {
        "format": FORMAT,
        "key": key,
        "stamp": stamp,
        "index_sha256": hashlib.sha256(index).hexdigest(),
        "graph_sha256": hashlib.sha256(graph).hexdigest(),
        "graph_bytes": len(graph) + 1,
        "matches_sha256": hashlib.sha256(matches).hexdigest(),
        "match_count": matches.count(b"\n") + 1,
    }
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        log.debug("%s: the compiled graph is not cached: %s", folder, exc)
        return
    _replace(folder / FILE_NAME, b"\n".join([json.dumps(header).encode(), index, graph, matches]))


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` atomically (a temporary file renamed over it); a failure leaves it as it was."""
    temp: str | None = None
    try:
        fd, temp = tempfile.mkstemp(prefix=".curated-graph-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        Path(temp).replace(path)
        temp = None
    except OSError as exc:
        log.debug("%s: the compiled graph is not cached: %s", path.parent, exc)
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                Path(temp).unlink()
