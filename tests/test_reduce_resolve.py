"""Supplier names in a site file resolved through the control graph."""

from __future__ import annotations

from derisk.reduce.know_link import know_resolver


def test_a_name_shared_by_one_groups_companies_resolves_to_the_group() -> None:
    """'Microsoft' names Microsoft Corporation and Microsoft Limited equally; both lead to one controller."""
    found = know_resolver()("Microsoft")
    assert found is not None and found.entity_id == "microsoft-corp"
    assert found.controller_name == "Microsoft Corporation" and found.jurisdiction == "US"


def test_a_name_shared_by_different_groups_stays_ambiguous() -> None:
    found = know_resolver()("China")
    assert found is None or found.entity_id is None
