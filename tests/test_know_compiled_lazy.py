"""The compiled graph's cache decodes the graph section (entities, links) only when first asked
for; what it then gives equals the built graph, and a damaged section is built instead."""

from __future__ import annotations

import copy
import dataclasses
import operator
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from derisk.know import compiled
from derisk.know.attribution import build_index
from derisk.know.curated import build_curated
from derisk.know.graph import Graph

BUILT = build_curated()
INDEX = build_index(BUILT)


class Builds:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> Graph:
        self.count += 1
        return BUILT


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "cache"
    monkeypatch.setenv("DERISK_CACHE_DIR", str(folder))
    monkeypatch.setattr(compiled, "_current", compiled._current)
    yield folder / compiled.FILE_NAME


def test_graph_section_decoded_on_first_use(cache: Path) -> None:
    builds = Builds()
    compiled.load(builds)
    graph = compiled.load(builds)
    assert builds.count == 1
    assert "entities" not in graph.__dict__ and "links" not in graph.__dict__
    found = compiled.remembered(graph)
    assert found is not None
    index = found.index()  # attribution by AS number and domain needs no entity
    assert list(index.by_asn.items()) == list(INDEX.by_asn.items())
    assert index.version == BUILT.version and graph.assessments == BUILT.assessments
    assert "entities" not in graph.__dict__
    assert graph.links == BUILT.links  # one attribute decodes both
    assert "entities" in graph.__dict__
    assert graph == BUILT and operator.eq(BUILT, graph) and list(graph.entities) == list(BUILT.entities)
    assert graph.parents(next(iter(BUILT.links)).asset_id) == BUILT.parents(next(iter(BUILT.links)).asset_id)
    assert builds.count == 1


def test_copies_and_pickles_decode_first(cache: Path) -> None:
    builds = Builds()
    compiled.load(builds)
    for copier in (copy.copy, copy.deepcopy, lambda g: pickle.loads(pickle.dumps(g))):
        graph = compiled.load(builds)
        other = copier(graph)
        assert "_pending" not in other.__dict__
        assert other == BUILT and other.version == BUILT.version


def test_damaged_graph_section_is_built_instead(cache: Path) -> None:
    builds = Builds()
    compiled.load(builds)
    header, index, graph_part, matches = cache.read_bytes().split(b"\n", 3)
    damaged = graph_part.replace(b'"Company"', b'"Compan_"', 1)
    assert damaged != graph_part and len(damaged) == len(graph_part)
    cache.write_bytes(b"\n".join([header, index, damaged, matches]))
    graph = compiled.load(builds)
    assert builds.count == 1  # the index section is intact: read
    assert graph.entities == BUILT.entities and graph.links == BUILT.links
    assert builds.count == 2 and not cache.exists()  # built instead, and written again next time
    compiled.load(builds)
    assert builds.count == 3 and cache.exists()


def test_cut_file_is_rebuilt_at_once(cache: Path) -> None:
    builds = Builds()
    compiled.load(builds)
    cache.write_bytes(cache.read_bytes()[:-100])
    graph = compiled.load(builds)
    assert builds.count == 2 and graph == BUILT


def test_matches_decoded_when_first_read_and_equal_to_built(cache: Path) -> None:
    builds = Builds()
    compiled.load(builds)
    found = compiled.remembered(compiled.load(builds))
    assert found is not None
    asn, built = next(iter(INDEX.by_asn.items()))
    match = found.by_asn[asn]
    assert "_row" in match.__dict__ and "org_id" not in match.__dict__
    assert match.org_id == built.org_id and "_row" not in match.__dict__
    assert match == built and operator.eq(built, match) and hash(match) == hash(built)
    assert repr(match) == repr(built) and match.to_json() == built.to_json()
    assert {match: 1}[built] == 1
    other = next(m for m in found.by_domain.values() if m != built)
    assert other != built and isinstance(other.path, tuple)
    for copier in (copy.copy, copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        assert copier(found.by_domain[next(iter(INDEX.by_domain))]) == next(iter(INDEX.by_domain.values()))
    assert dataclasses.replace(match, confidence="U").confidence == "U"


@pytest.mark.parametrize("first", ["state_controlled", "sentence", "group", "joint", "origin", "state"])
def test_a_field_with_a_default_read_first_is_the_decoded_value(cache: Path, first: str) -> None:
    builds = Builds()
    compiled.load(builds)
    found = compiled.remembered(compiled.load(builds))
    assert found is not None
    for asn, built in INDEX.by_asn.items():
        assert getattr(found.by_asn[asn], first) == getattr(built, first), asn
    assert list(found.by_domain.items()) == list(INDEX.by_domain.items())
