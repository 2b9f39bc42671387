"""The de-risking plan: the ranking rule on a register computed by hand, and the catalogue's checks."""

from __future__ import annotations

import copy
from importlib import resources

import pytest
import yaml

from derisk.errors import DataError
from derisk.reduce.catalogue import load_catalogue, parse_catalogue
from derisk.reduce.plan import build_plan, plan_score
from derisk.reduce.register import Register, build_register, table_resolver
from derisk.site import parse_site
from test_reduce_measures import res, site_doc

RESOLVER = table_resolver(
    {
        "CNV": res("CNV", "CN Group", "CN"),
        "CNC": res("CNC", "CN Group", "CN"),
        "USV": res("USV", "US Group", "US"),
    }
)


def plan_register() -> Register:
    """x: vendor CNV (CN), hosting CNC (CN); y: vendor USV (US). F1 needs x, F2 needs y."""
    doc = site_doc(
        [{"name": "x", "vendor": "CNV", "hosting": "CNC"}, {"name": "y", "vendor": "USV"}],
        [{"name": "F1", "systems": ["x"]}, {"name": "F2", "systems": ["y"]}],
    )
    return build_register(parse_site(doc, "plan"), RESOLVER)


def catalogue_doc() -> dict[str, object]:
    text = resources.files("derisk.data").joinpath("mitigations.yaml").read_text(encoding="utf-8")
    doc: dict[str, object] = yaml.safe_load(text)
    return doc


def test_plan_order_by_hand() -> None:
    # Start: D = 1 (both functions), E = 1, T = 1 (all 3 edges CN or US), S = 3/3 -> score 2(1+1) + 2 = 6.
    # Step 1 candidates (gain / cost weight): vendor-eu y: after D 1/2, T 2/3, E 1/2, S 2/3 ->
    #   score 3.5, gain 2.5 / 4 = 0.625; hosting-eu x: D 1, T 2/3, E 1, S 2/3 -> 5, gain 1 / 2 = 0.5;
    #   egress y: E 1/2 -> gain 0.5 / 1 = 0.5; escrow x or y: S 2/3 -> 1/3 / 1; multi-vendor y:
    #   D 1/2, T 5/6, E 1, S 2/3 -> gain 5/3 / 4 = 0.417.  -> vendor-eu on y.
    # Step 2 (score 3.5): hosting-eu x: D 1/2, T 1/3, E 1/2, S 1/3 -> 2.5, gain 1 / 2 = 0.5;
    #   escrow x 1/3; vendor-eu x gain 1 / 4; egress x has no effect (hosting keeps F1 exposed). -> hosting-eu x.
    # Step 3 (score 2.5): vendor-eu x removes everything: gain 2.5 / 4 = 0.625 > egress x 0.5 / 1.
    plan = build_plan(plan_register())
    order = [(s.candidate.mitigation.id, s.candidate.target) for s in plan.steps]
    assert order == [("vendor-eu", "y/vendor"), ("hosting-eu", "x/hosting"), ("vendor-eu", "x/vendor")]
    assert [round(s.risk_reduction, 9) for s in plan.steps] == [2.5, 1.0, 2.5]
    assert plan_score(plan.steps[0].before) == pytest.approx(6.0)
    assert plan.final.third_country_dependency == 0 and plan.final.third_country_edge_share == 0
    # every step's "before" is the previous step's "after"
    for prev, nxt in zip(plan.steps, plan.steps[1:], strict=False):
        assert prev.after == nxt.before
    considered = {(c.candidate.mitigation.id, c.candidate.system) for c in plan.considered}
    assert considered == {("egress-allowlist", "x"), ("data-localisation", "x")}
    localisation = next(c for c in plan.considered if c.candidate.mitigation.id == "data-localisation")
    assert "CLOUD Act" in localisation.sentence


def test_cost_weight_changes_the_order_and_ties_go_to_the_larger_dependency_reduction() -> None:
    doc = catalogue_doc()
    for cost in doc["cost_classes"]:  # type: ignore[attr-defined]
        if cost["id"] == "high":
            cost["weight"] = 8
    catalogue = parse_catalogue(doc, "test")
    # With high = 8: vendor-eu y 2.5 / 8 = 0.3125. Tied at 0.5: hosting-eu x (gain 1, weight 2, lowers
    # D + T by 1/3) and egress y (gain 0.5, weight 1, lowers D + T by 0): the dependency reduction wins.
    # Step 2 (score 2(1 + 2/3) + (1 + 2/3) = 5): egress x now removes F1's exposure (its hosting is EU),
    # gain 0.5 / 1, tied with egress y in everything but the target: "x/vendor" < "y/vendor".
    plan = build_plan(plan_register(), catalogue)
    first = [(s.candidate.mitigation.id, s.candidate.target) for s in plan.steps[:3]]
    assert first == [
        ("hosting-eu", "x/hosting"),
        ("egress-allowlist", "x/vendor"),
        ("egress-allowlist", "y/vendor"),
    ]


def test_plan_steps_carry_risk_cost_evidence_and_source() -> None:
    plan = build_plan(plan_register())
    for step in plan.to_json()["steps"]:
        assert step["reduces"] and step["evidence"] and step["source"]
        assert "LEGAL-FACTS" not in step["source"]
        assert step["cost"] in {"low", "medium", "high"}
        assert step["after"]["risk_score"] <= step["before"]["risk_score"]


def test_register_without_third_country_suppliers_needs_no_plan() -> None:
    doc = site_doc([{"name": "a", "vendor": "EUV"}], [{"name": "F", "systems": ["a"]}])
    reg = build_register(parse_site(doc, "t"), table_resolver({"EUV": res("EUV", "EU Group", "BE")}))
    plan = build_plan(reg)
    assert plan.steps == () and plan.considered == ()


def test_shipped_catalogue_has_sources_and_the_required_measures() -> None:
    cat = load_catalogue()
    ids = {m.id for m in cat.mitigations}
    assert {
        "hosting-eu",
        "egress-allowlist",
        "source-escrow",
        "continuity-guarantee",
        "multi-vendor",
        "data-localisation",
    } <= ids
    for m in cat.mitigations:
        # a published text with its address, or a named report (never the reviewers' checklist)
        assert "https://" in m.source or "Financial Times" in m.source or "NIS Cooperation Group" in m.source
        assert "LEGAL-FACTS" not in m.source
        assert "[V]" in m.evidence or "[S]" in m.evidence or "[U]" in m.evidence


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["mitigations"][0].pop("source"), "source: missing or empty"),
        (lambda d: d["mitigations"][0].update(colour="red"), "colour: unknown key"),
        (lambda d: d["mitigations"][0].update(effect="teleport"), "effect: must be one of"),
        (lambda d: d["mitigations"][0].update(cost="free"), "cost: must be one of"),
        (lambda d: d["mitigations"][0].update(roles=["janitor"]), "roles: must be a non-empty list"),
        (lambda d: d.update(extra=1), "extra: unknown key"),
    ],
)
def test_catalogue_rejects_missing_sources_and_unknown_keys(mutate, message) -> None:  # type: ignore[no-untyped-def]
    doc = copy.deepcopy(catalogue_doc())
    mutate(doc)
    with pytest.raises(DataError) as err:
        parse_catalogue(doc, "mitigations.yaml")
    assert message in str(err.value)


def test_eu_member_list_is_sourced_and_checked() -> None:
    from derisk.reduce.jurisdictions import EU_PLACEHOLDER, eu_members, parse_members

    eu = eu_members()
    assert len(eu.codes) == 27 and "BE" in eu.codes and "GB" not in eu.codes and "GR" in eu.codes
    assert (
        eu.source and eu.is_eu(EU_PLACEHOLDER) and eu.is_third_country("CN") and not eu.is_third_country(None)
    )
    good = {
        "schema": "derisk.eu-members/1",
        "as_of": "2020-02-01",
        "source": "x",
        "members": {"BE": "Belgium"},
    }
    parse_members(good, "t")
    for bad in (
        {**good, "colour": 1},
        {k: v for k, v in good.items() if k != "source"},
        {**good, "source": " "},
        {**good, "members": {"Belgium": "BE"}},
    ):
        with pytest.raises(DataError):
            parse_members(bad, "t")
