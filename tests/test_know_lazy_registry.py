"""Registration records (AS2Org, PeeringDB) looked up per AS seen give the attribution of reading them all."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from derisk.enrich.attribution import attribute, prefetch
from derisk.know.attribution import build_index, load_index
from derisk.know.graph import load_graph
from derisk.know.importing import import_file
from derisk.store.workspace import Workspace

FIXTURES = Path(__file__).parent / "fixtures" / "know"

#: (AS, AS organisation name as ip-location-db spells it, AS registration country, domain)
KEYS = [
    (8075, "Microsoft Corporation", "US", "microsoft.com"),
    (8068, "Microsoft Corporation", "IE", None),  # not curated: its AS2Org record names Microsoft
    (3356, "Level 3 Parent, LLC", "US", None),
    (1, "Level 3 Parent, LLC", "US", "www.example.net"),
    (32934, "Facebook, Inc.", "IE", "mmg-fna.whatsapp.net"),
    (20940, "Akamai International B.V.", "NL", None),
    (16625, "Akamai Technologies, Inc.", "US", None),
    (64501, "SAMPLE-CLOUD-CN", "CN", "cdn.example.net"),
    (64502, None, "CN", None),
    (64510, "Sample Hypergiant, Inc.", "US", None),
    (64511, None, "US", "a.b.example.net"),
    (64530, "SPN-AS", "BE", None),
    # Not in any registration file: only the AS organisation name can name someone (Sample Edge
    # Cloud's record is reached by no AS or domain above: only by its name).
    (65001, "Sample Cloud Computing (Beijing) Co., Ltd.", "CN", None),
    (65002, "Sample Port Networks NV", "BE", None),
    (65003, "Sample Edge Cloud GmbH", "DE", None),
    (65004, "Unheard Of Networks Ltd", "GB", None),
    (None, None, None, "www.example.net"),
]


def _keys() -> pa.Table:
    return pa.table(
        {
            "dst_asn": pa.array([k[0] for k in KEYS], pa.int64()),
            "dst_domain": pa.array([k[3] for k in KEYS], pa.string()),
            "dst_as_country": pa.array([k[2] for k in KEYS], pa.string()),
            "dst_as_org": pa.array([k[1] for k in KEYS], pa.string()),
        }
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lazy") / "ws"
    with Workspace.open(path) as ws:
        for name in ("as-org2info-sample.txt", "peeringdb-sample.json", "opensanctions-sample.ftm.json"):
            import_file(ws, FIXTURES / name)
    return path


def test_lazy_lookup_gives_the_eager_attribution(workspace: Path) -> None:
    with Workspace.open(workspace, create=False, read_only=True) as ws:
        eager_graph = load_graph(ws, lazy_registry=False)
        lazy_graph = load_graph(ws)
        eager = attribute(_keys(), build_index(eager_graph)).to_pylist()
        lazy = attribute(_keys(), build_index(lazy_graph)).to_pylist()
    assert eager_graph.registry is None and lazy_graph.registry is not None
    assert len(lazy) == len(KEYS)
    for got, want in zip(lazy, eager, strict=True):
        assert got == want
    by_asn = {row["dst_asn"]: row for row in lazy}
    # The sibling AS joins the curated group; the unknown organisation groups its own ASes.
    assert by_asn[8068]["dst_infra_org_id"] == "microsoft-corp"
    assert by_asn[64501]["dst_infra_org_id"] == by_asn[64502]["dst_infra_org_id"] == "as2org-ORG-SAMPLE-AP"
    assert by_asn[64530]["dst_infra_org"] == "Sample Port Networks NV"
    # A name the registry holds, on an AS it does not list: matched by name, in both.
    assert by_asn[65001]["dst_infra_basis"] == "as-org-name"
    assert by_asn[65001]["dst_infra_org_id"] == "as2org-ORG-SAMPLE-AP"
    assert by_asn[65003]["dst_infra_org_id"] == "peeringdb-org-11"
    assert by_asn[64511]["dst_service_org_id"] == "peeringdb-org-10"  # a.b.example.net → example.net
    assert by_asn[65004]["dst_infra_basis"] == "as-registration"


def test_only_the_records_asked_for_are_read(workspace: Path) -> None:
    keys = pa.table(
        {
            "dst_asn": pa.array([64501], pa.int64()),
            "dst_domain": pa.array([None], pa.string()),
            "dst_as_country": pa.array(["CN"], pa.string()),
            "dst_as_org": pa.array([None], pa.string()),
        }
    )
    with Workspace.open(workspace, create=False, read_only=True) as ws:
        index = load_index(ws)
        assert index.graph is not None
        before = {i for i in index.graph.entities if i.startswith(("as2org-", "peeringdb-org-"))}
        rows = attribute(keys, index).to_pylist()
        after = {i for i in index.graph.entities if i.startswith(("as2org-", "peeringdb-org-"))}
        # Asking again costs no lookup and changes nothing.
        prefetch(index, [64501])
    assert before == set()  # joined records live in the known entity, the others are not read
    assert after == {"as2org-ORG-SAMPLE-AP"}
    assert rows[0]["dst_infra_org_id"] == "as2org-ORG-SAMPLE-AP" and rows[0]["dst_infra_jurisdiction"] == "CN"
    # The record named like curated Microsoft was joined to it at load time (one join on the names).
    assert "as2org-MSFT-ARIN" in index.graph.registry_joined
    assert 8068 in index.graph.entities["microsoft-corp"].asns


def test_an_entity_nothing_owns_resolves_as_the_general_walk_would() -> None:
    from derisk.know import resolve
    from derisk.know.graph import Entity, Source, build_graph

    seen = Source("s", "https://example.org/r", "a record")
    unseen = Source("u", "https://example.org/u", "a claim", verified=False)
    entities = [
        Entity(
            f"e{i}",
            "PublicBody" if i % 5 == 0 else "Organization",
            f"Org {i}",
            country=(None, "DE", "CN")[i % 3],
            control_jurisdiction="US" if i % 7 == 0 else None,
            is_state=i % 5 == 0,
            sources=((seen,), (unseen,), ())[i % 3 if i % 4 else 0],
        )
        for i in range(40)
    ]
    graph = build_graph(entities, [])
    for entity in entities:
        assert resolve.resolve_controller(graph, entity.id) == resolve._walk(graph, entity, None)
