"""Controller resolution on hand-built graphs whose answers are known by construction."""

from __future__ import annotations

import pytest

from derisk.errors import NotFoundError
from derisk.know.resolve import effective_ownership, resolve_controller
from know_helpers import ent, graph, own


def test_chain_follows_majorities_to_the_top() -> None:
    g = graph(
        [ent("a"), ent("b"), ent("c", country="KY", control="CN")], [own("b", "a", 60), own("c", "b", 51)]
    )
    res = resolve_controller(g, "a")
    assert res.controller is not None and res.controller.id == "c"
    assert [s.owner.id for s in res.path] == ["b", "c"]
    assert res.jurisdiction == "CN" and res.jurisdiction_basis == "control-jurisdiction"
    assert res.chain() == ("A Ltd", "B Ltd", "C Ltd", "control exercised from CN")
    assert not res.state_controlled
    assert effective_ownership(g, "a")[0] == {"b": 60.0, "c": pytest.approx(30.6)}
    assert "C Ltd" in res.sentence and "CN" in res.sentence


def test_minority_stake_does_not_control() -> None:
    g = graph([ent("a", country="DE"), ent("b")], [own("b", "a", 49.9)])
    res = resolve_controller(g, "a")
    assert res.controller is not None and res.controller.id == "a"
    assert res.path == () and res.jurisdiction == "DE"


def test_diamond_adds_stakes_of_holders_with_the_same_controller() -> None:
    # P controls X and Y fully; X and Y hold 30% each of T: P controls 60% of T.
    g = graph(
        [ent("t"), ent("x"), ent("y"), ent("p", country="US"), ent("q")],
        [own("p", "x", 100), own("p", "y", 100), own("x", "t", 30), own("y", "t", 30), own("q", "t", 40)],
    )
    res = resolve_controller(g, "t")
    assert res.controller is not None and res.controller.id == "p"
    assert res.jurisdiction == "US"
    shares, cycles = effective_ownership(g, "t")
    assert shares["p"] == pytest.approx(60.0) and shares["q"] == pytest.approx(40.0) and cycles == []


def test_joint_control_fifty_fifty() -> None:
    g = graph(
        [ent("jv"), ent("a", country="FR"), ent("b", country="CN")], [own("a", "jv", 50), own("b", "jv", 50)]
    )
    res = resolve_controller(g, "jv")
    assert res.controller is None
    assert {e.id for e in res.joint} == {"a", "b"}
    assert res.jurisdiction is None  # the two controllers sit in different jurisdictions
    assert "jointly controlled" in res.sentence


def test_joint_control_in_one_jurisdiction_names_it() -> None:
    g = graph(
        [ent("jv"), ent("a", country="CN"), ent("b", country="CN")], [own("a", "jv", 50), own("b", "jv", 50)]
    )
    res = resolve_controller(g, "jv")
    assert res.jurisdiction == "CN" and res.jurisdiction_basis == "joint"


def test_vie_contractual_control_beats_missing_shares() -> None:
    # The listed holding controls the PRC operating company by contract only (no shares).
    g = graph(
        [ent("opco", country="CN"), ent("holdco", country="KY", control="CN"), ent("nominee", country="CN")],
        [
            own("holdco", "opco", kind="control", control_type="VIE contractual arrangements"),
            own("nominee", "opco", 100, controlling=False),
        ],
    )
    res = resolve_controller(g, "opco")
    assert res.controller is not None and res.controller.id == "holdco"
    assert res.path[0].link.kind == "control" and "VIE" in res.path[0].reason
    assert res.jurisdiction == "CN"


def test_state_ownership_marks_state_control() -> None:
    g = graph(
        [ent("telco", country="CN"), ent("group", country="CN"), ent("sasac", country="CN", state=True)],
        [own("group", "telco", 70.89), own("sasac", "group", kind="state")],
    )
    res = resolve_controller(g, "telco")
    assert res.state_controlled and res.state == "CN"
    assert res.controller is not None and res.controller.id == "sasac"
    assert "state-controlled" in res.sentence


def test_bodies_of_one_state_add_up() -> None:
    g = graph(
        [ent("t"), ent("f1"), ent("m1", country="CN", state=True), ent("m2", country="CN", state=True)],
        [own("m1", "f1", kind="state"), own("f1", "t", 40), own("m2", "t", 30)],
    )
    res = resolve_controller(g, "t")
    assert res.state_controlled and res.state == "CN" and res.controller is None
    assert {e.id for e in res.joint} == {"m1", "m2"}


def test_cycle_is_detected_and_reported_without_looping() -> None:
    g = graph([ent("a", country="CN"), ent("b", country="CN")], [own("b", "a", 60), own("a", "b", 60)])
    res = resolve_controller(g, "a")
    assert res.controller is None and res.cycles
    assert res.confidence == "U" and "cycle" in res.sentence
    _, cycles = effective_ownership(g, "a")
    assert cycles  # the cross-holding is reported, not followed forever


def test_disputed_link_is_reported_not_followed() -> None:
    g = graph(
        [ent("hold", country="CN"), ent("union", country="CN"), ent("state", country="CN", state=True)],
        [own("union", "hold", 98.99), own("state", "union", kind="control", disputed=True, confidence="U")],
    )
    res = resolve_controller(g, "hold")
    assert res.controller is not None and res.controller.id == "union"
    assert not res.state_controlled
    assert [s.owner.id for s in res.disputed] == ["state"]
    assert "Disputed" in res.sentence


def test_ended_link_is_ignored_and_weakest_confidence_wins() -> None:
    g = graph(
        [ent("a"), ent("old"), ent("new", country="SG"), ent("top", country="US")],
        [
            own("old", "a", 100, end="2001-01-01"),
            own("new", "a", 100, confidence="S"),
            own("top", "new", 100, confidence="U"),
        ],
    )
    res = resolve_controller(g, "a", as_of="2025-01-01")
    assert res.controller is not None and res.controller.id == "top"
    assert res.confidence == "U"


def test_unknown_entity_is_not_found() -> None:
    with pytest.raises(NotFoundError):
        resolve_controller(graph([ent("a")], []), "nope")
