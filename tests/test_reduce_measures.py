"""Measures of the dependency register on small registers computed by hand (numbers in the comments)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from derisk.reduce.measures import edges, hhi, measure
from derisk.reduce.register import Register, Resolved, build_register, table_resolver
from derisk.site import parse_site


def res(name: str, controller: str, jurisdiction: str, *, state: bool = False) -> Resolved:
    return Resolved(
        query=name,
        entity_id=name.lower().replace(" ", "-"),
        entity_name=name,
        controller_id=controller.lower().replace(" ", "-"),
        controller_name=controller,
        jurisdiction=jurisdiction,
        state_controlled=state,
        confidence="S",
        sentence=f"{name} is controlled by {controller}.",
    )


RESOLVER = table_resolver(
    {
        "V-CN": res("V-CN", "Group CN", "CN"),
        "H-US": res("H-US", "Group US", "US"),
        "V-BE": res("V-BE", "Group BE", "BE"),
        "HW-CN": res("HW-CN", "Group CN2", "CN", state=True),
        "HW-DE": res("HW-DE", "Group DE", "DE"),
    }
)


def site_doc(systems: list[dict[str, Any]], functions: list[dict[str, Any]]) -> dict[str, Any]:
    hosted = [{**s, "hosts": [f"10.0.{i}.0/24"]} for i, s in enumerate(systems)]
    return {"site": "hand", "systems": hosted, "functions": functions}


def hand_register() -> Register:
    """a: vendor V-CN, hosting H-US; b: vendor V-BE, hardware HW-CN or HW-DE; c: vendor unknown.
    F1 needs a; F2 needs a and b; F3 needs b and c."""
    doc = site_doc(
        [
            {"name": "a", "vendor": "V-CN", "hosting": "H-US"},
            {"name": "b", "vendor": "V-BE", "hardware": ["HW-CN", "HW-DE"]},
            {"name": "c", "vendor": "Unknown Co"},
        ],
        [
            {"name": "F1", "systems": ["a"]},
            {"name": "F2", "systems": ["a", "b"]},
            {"name": "F3", "systems": ["b", "c"]},
        ],
    )
    return build_register(parse_site(doc, "hand"), RESOLVER)


def test_edges_and_weights() -> None:
    reg = hand_register()
    # F1: a/vendor, a/hosting (2); F2: those 2 + b/vendor + 2 alternatives for b/hardware (5);
    # F3: b/vendor + 2 b/hardware + c/vendor (4): 11 edges; each alternative weighs 1/2.
    es = edges(reg)
    assert len(es) == 11
    assert sorted(e.weight for e in es if e.role == "hardware") == [0.5] * 4
    assert sum(e.weight for e in es) == pytest.approx(9.0)


def test_site_shares_and_hhi_by_hand() -> None:
    m = measure(hand_register())
    # Resolved edge weights: CN = a/vendor in F1 and F2 (1 + 1) + HW-CN in F2 and F3 (0.5 + 0.5) = 3;
    # US = a/hosting in F1 and F2 = 2; BE = b/vendor in F2 and F3 = 2; DE = 0.5 + 0.5 = 1. Total 8.
    assert m.edge_shares == pytest.approx({"CN": 3 / 8, "US": 2 / 8, "BE": 2 / 8, "DE": 1 / 8})
    # HHI = 0.375² + 0.25² + 0.25² + 0.125² = 0.140625 + 0.0625 + 0.0625 + 0.015625 = 0.28125
    assert m.hhi == pytest.approx(0.28125)
    assert m.edge_count == 11 and m.unresolved_edges == 1
    # F1 depends on CN and US (sole suppliers of a's roles); F2 on CN, US, BE (the hardware has an
    # alternative, so no sole jurisdiction); F3 only on BE (c's vendor is unknown).
    assert m.dependency_shares == pytest.approx({"CN": 2 / 3, "US": 2 / 3, "BE": 2 / 3})
    # Exposure counts every resolved supplier: F1 {CN, US}; F2 {CN, US, BE, DE}; F3 {BE, CN, DE}.
    assert m.exposure_shares == pytest.approx({"CN": 1.0, "US": 2 / 3, "BE": 2 / 3, "DE": 2 / 3})
    assert m.third_country_dependency == pytest.approx(2 / 3)  # F1, F2
    assert m.third_country_exposure == pytest.approx(1.0)
    assert m.third_country_edge_share == pytest.approx(0.625)  # CN 0.375 + US 0.25
    # Single points: a/vendor (CN), a/hosting (US), b/vendor (BE); b/hardware has two suppliers and
    # c/vendor is unknown. Needed roles: 5. Third-country and unmitigated: 2 -> S = 2/5.
    assert sorted((p.system, p.role, p.third_country) for p in m.single_points) == [
        ("a", "hosting", True),
        ("a", "vendor", True),
        ("b", "vendor", False),
    ]
    assert m.single_point_share == pytest.approx(0.4)
    # risk score 2(D + T) + (E + S) = 2(2/3 + 0.625) + (1 + 0.4)
    assert m.risk_score == pytest.approx(2 * (2 / 3 + 0.625) + 1.4)


def test_per_function_measures_by_hand() -> None:
    by_name = {f.name: f for f in measure(hand_register()).functions}
    # F1: CN 1, US 1 -> shares 0.5/0.5, HHI 0.5
    assert by_name["F1"].edge_shares == pytest.approx({"CN": 0.5, "US": 0.5})
    assert by_name["F1"].hhi == pytest.approx(0.5)
    # F3: BE 1, CN 0.5, DE 0.5 (of 2) -> 0.5, 0.25, 0.25 -> HHI 0.25 + 0.0625 + 0.0625 = 0.375
    assert by_name["F3"].edge_shares == pytest.approx({"BE": 0.5, "CN": 0.25, "DE": 0.25})
    assert by_name["F3"].hhi == pytest.approx(0.375)
    assert by_name["F3"].unresolved_edges == 1
    assert by_name["F3"].depends_on == ("BE",)
    assert by_name["F2"].depends_on == ("BE", "CN", "US")


def test_single_jurisdiction_register_has_hhi_one() -> None:
    doc = site_doc([{"name": "a", "vendor": "V-CN", "hardware": "HW-CN"}], [{"name": "F", "systems": ["a"]}])
    m = measure(build_register(parse_site(doc, "t"), RESOLVER))
    assert m.hhi == pytest.approx(1.0)
    assert m.dependency_shares == {"CN": 1.0}


def test_unknown_only_register_measures_nothing_but_says_so() -> None:
    doc = site_doc([{"name": "a", "vendor": "Nobody Ltd"}], [{"name": "F", "systems": ["a"]}])
    reg = build_register(parse_site(doc, "t"), RESOLVER)
    m = measure(reg)
    assert m.hhi is None and m.edge_shares == {} and m.unresolved_edges == 1
    assert [f.kind for f in reg.findings] == ["unknown-supplier"]
    assert "Nobody Ltd" in reg.findings[0].sentence


def test_hhi_definition() -> None:
    assert hhi({}) is None
    assert hhi({"A": 0.5, "B": 0.5}) == pytest.approx(0.5)
    assert hhi({"A": 0.6, "B": 0.3, "C": 0.1}) == pytest.approx(0.36 + 0.09 + 0.01)


SUPPLIERS = ["V-CN", "H-US", "V-BE", "HW-CN", "HW-DE", "Unknown Co"]


@st.composite
def registers(draw: st.DrawFn) -> Register:
    n_systems = draw(st.integers(1, 5))
    systems = []
    for k in range(n_systems):
        system: dict[str, Any] = {"name": f"s{k}"}
        for role in ("vendor", "hardware", "hosting", "support"):
            # the site file takes one vendor name; the other roles may list alternatives
            picked = draw(
                st.lists(st.sampled_from(SUPPLIERS), max_size=1 if role == "vendor" else 3, unique=True)
            )
            if len(picked) == 1:
                system[role] = picked[0]
            elif picked:
                system[role] = picked
        systems.append(system)
    names = [s["name"] for s in systems]
    functions = [
        {
            "name": f"F{n}",
            "systems": draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)),
        }
        for n in range(draw(st.integers(1, 4)))
    ]
    return build_register(parse_site(site_doc(systems, functions), "generated"), RESOLVER)


@settings(max_examples=60, deadline=None)
@given(registers())
def test_measure_invariants(reg: Register) -> None:
    m = measure(reg)
    if m.edge_shares:
        assert sum(m.edge_shares.values()) == pytest.approx(1.0)
        assert m.hhi is not None and 1 / len(m.edge_shares) - 1e-9 <= m.hhi <= 1 + 1e-9
    else:
        assert m.hhi is None
    for share_map in (m.edge_shares, m.dependency_shares, m.exposure_shares):
        assert all(0 < v <= 1 + 1e-9 for v in share_map.values())
    assert 0 <= m.risk_score <= 6
    # a function depending on a jurisdiction is also exposed to it
    for f in m.functions:
        assert set(f.depends_on) <= set(f.exposed_to)
    assert m.edge_count == len(edges(reg))


@settings(max_examples=30, deadline=None)
@given(registers())
def test_plan_never_raises_the_risk_score(reg: Register) -> None:
    from derisk.reduce.plan import build_plan

    plan = build_plan(reg)
    scores = [s.before.risk_score for s in plan.steps] + [plan.final.risk_score]
    assert all(b > a - 1e-12 for a, b in zip(scores[1:], scores, strict=False))
    assert plan.final.risk_score <= measure(reg).risk_score
    # when the plan stops, no candidate lowers the score further: every third-country role is handled
    assert plan.final.third_country_edge_share == pytest.approx(0.0) or len(plan.steps) == 20
