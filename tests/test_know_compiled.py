"""The cache of the compiled curated graph: what it gives back equals what is built, and a stale,
corrupt, foreign or unwritable cache is never trusted and never an error."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from derisk.know import cachekey, compiled
from derisk.know.attribution import build_index, load_index
from derisk.know.curated import build_curated
from derisk.know.graph import Graph

BUILT = build_curated()
INDEX = build_index(BUILT)


class Builds:
    """The graph ``build_curated`` built (once, for the whole module: building it takes a second),
    counting how often the cache had to ask for it."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> Graph:
        self.count += 1
        return BUILT


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DERISK_CACHE_DIR", str(folder))
    monkeypatch.setattr(compiled, "_current", compiled._current)  # restored after the test
    yield folder / compiled.FILE_NAME


def _same_as_built(graph: Graph) -> None:
    assert graph == BUILT and graph.version == BUILT.version
    assert list(graph.entities) == list(BUILT.entities)
    found = compiled.remembered(graph)
    assert found is not None
    index = found.index()
    assert list(index.by_asn.items()) == list(INDEX.by_asn.items())
    assert list(index.by_domain.items()) == list(INDEX.by_domain.items())
    assert index.conflicts == INDEX.conflicts and index.version == INDEX.version


def test_second_load_reads_the_cache_and_equals_the_built_graph(cache: Path) -> None:
    builds = Builds()
    _same_as_built(compiled.load(builds))
    assert builds.count == 1 and cache.exists()
    assert cache.stat().st_mode & 0o777 == 0o600
    assert cache.parent.stat().st_mode & 0o777 == 0o700
    graph = compiled.load(builds)
    assert builds.count == 1  # read back, not built
    _same_as_built(graph)
    entity = next(e for e in graph.entities.values() if e.asns and e.sources)
    assert entity == BUILT.entities[entity.id] and isinstance(entity.asns, tuple)
    # Attribution through the public function uses the index compiled with the graph.
    assert compiled.remembered(graph) is not None


def test_load_index_of_the_curated_graph_equals_build_index() -> None:
    index = load_index()
    assert list(index.by_asn.items()) == list(INDEX.by_asn.items())
    assert list(index.by_domain.items()) == list(INDEX.by_domain.items())
    assert index.version == INDEX.version
    # Each call gets its own lookups: changing one index does not change the next.
    index.by_asn.clear()
    assert load_index().by_asn


def _header(path: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads(path.read_bytes().partition(b"\n")[0])
    return doc


def test_altered_payload_is_rebuilt(cache: Path) -> None:
    builds = Builds()
    compiled.load(builds)
    data = cache.read_bytes()
    cache.write_bytes(data.replace(b'"asns"', b'"asnz"', 1) if b'"asns"' in data else data[:-10])
    _same_as_built(compiled.load(builds))
    assert builds.count == 2 and cache.read_bytes() == data  # rebuilt and written again


def test_consistent_but_foreign_payload_is_rebuilt(cache: Path) -> None:
    """A file whose key and digest match but whose payload is not what derisk writes."""
    builds = Builds()
    compiled.load(builds)
    for payload in (b'{"entity_fields": []}', b"[1, 2]", b'{"sources": "x"}', b"\xff\xfe"):
        header = _header(cache)
        header["sha256"] = __import__("hashlib").sha256(payload).hexdigest()
        cache.write_bytes(json.dumps(header).encode() + b"\n" + payload)
        _same_as_built(compiled.load(builds))
    assert builds.count == 5


def test_file_writable_by_others_is_not_read(cache: Path) -> None:
    builds = Builds()
    compiled.load(builds)
    cache.chmod(0o666)
    _same_as_built(compiled.load(builds))
    assert builds.count == 2
    assert cache.stat().st_mode & 0o777 == 0o600  # replaced by a file of this user's


def test_symbolic_link_is_not_followed(cache: Path, tmp_path: Path) -> None:
    builds = Builds()
    compiled.load(builds)
    elsewhere = tmp_path / "elsewhere.json"
    cache.rename(elsewhere)
    cache.symlink_to(elsewhere)
    _same_as_built(compiled.load(builds))
    assert builds.count == 2 and not cache.is_symlink()


def test_stale_key_is_rebuilt(cache: Path) -> None:
    builds = Builds()
    compiled.load(builds)
    header, _, payload = cache.read_bytes().partition(b"\n")
    doc = json.loads(header)
    doc["key"] = "0" * 64  # as if written by another version or for other group files
    cache.write_bytes(json.dumps(doc).encode() + b"\n" + payload)
    _same_as_built(compiled.load(builds))
    assert builds.count == 2 and _header(cache)["key"] == cachekey.cache_key()


def test_cache_off_and_unwritable_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled, "_current", compiled._current)
    monkeypatch.setenv("DERISK_CACHE_DIR", "off")
    assert compiled.cache_dir() is None
    _same_as_built(compiled.load(Builds()))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DERISK_CACHE_DIR", str(blocker / "derisk"))
    _same_as_built(compiled.load(Builds()))
    assert blocker.read_text() == "not a folder"


def test_default_folder_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DERISK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compiled.cache_dir() == tmp_path / "derisk"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert compiled.cache_dir() == tmp_path / ".cache" / "derisk"


def test_key_changes_with_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    key = cachekey.cache_key()
    assert key == cachekey.cache_key()
    monkeypatch.setattr(cachekey, "__version__", "0.0.0+other")
    assert cachekey.cache_key() != key
    assert os.sep not in key and len(key) == 64


def test_a_matching_stamp_spares_hashing_the_files(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = Builds()
    compiled.load(builds)
    header = _header(cache)
    assert header["stamp"] == cachekey.file_stamp(cachekey.cache_key(), cachekey._identities())

    def unexpected() -> str:
        raise AssertionError("the key was computed although the stamp matched")

    with monkeypatch.context() as patch:
        patch.setattr(cachekey, "cache_key", unexpected)
        _same_as_built(compiled.load(builds))
    assert builds.count == 1


def test_files_changed_since_the_stamp_are_hashed_again(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = Builds()
    compiled.load(builds)
    real = cachekey._identities()
    assert real is not None  # every file the key reads, in its order
    assert [line.split("\0")[0] for line in real.split("\n")] == [label for label, _ in cachekey._key_files()]
    hashed = []

    def counted() -> str:
        hashed.append(1)
        return key

    key = cachekey.cache_key()
    moved = real.replace(",", ";", 1)
    with monkeypatch.context() as patch:  # a file rewritten with the same bytes: its change time moved
        patch.setattr(cachekey, "_identities", lambda: moved)
        patch.setattr(cachekey, "cache_key", counted)
        _same_as_built(compiled.load(builds))
        assert hashed == [1] and builds.count == 1  # the same content: read, after hashing the files
        # ... and stamped again (the same files reinstalled or copied): the next run stats them only
        assert _header(cache)["stamp"] == cachekey.file_stamp(key, moved)
        compiled.load(builds)
        assert hashed == [1] and builds.count == 1
    with monkeypatch.context() as patch:  # other content: the key differs, the graph is rebuilt
        patch.setattr(cachekey, "_identities", lambda: real.replace(",", ":", 1))
        patch.setattr(compiled, "_identities", lambda: real.replace(",", ":", 1))
        patch.setattr(compiled, "cache_key", lambda: "1" * 64)
        patch.setattr(cachekey, "cache_key", lambda: "1" * 64)
        compiled.load(builds)
    assert builds.count == 2 and _header(cache)["key"] == "1" * 64
