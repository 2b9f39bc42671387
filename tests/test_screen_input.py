"""Bad deal files: every problem is reported at once, in one InputError naming the file and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from derisk.errors import InputError
from derisk.screen.dealfile import load_deal, parse_deal
from derisk.screen.regimes import load_catalogue

VOCAB = load_catalogue().vocabulary

GOOD: dict[str, Any] = {
    "investor": {
        "name": "Holding Ltd",
        "country": "HK",
        "kind": "company",
        "owners": [{"name": "Parent Co", "country": "CN", "kind": "company", "stake_pct": 100}],
    },
    "target": {"name": "Cargo SA", "country": "BE", "sectors": ["airport-logistics"], "turnover_eur": 150e6},
    "stake": {"before_pct": 0, "after_pct": 25, "control_after": False},
    "dates": {"signing": "2025-03-03", "closing": "2025-06-30"},
}


def bad(path: str, value: Any) -> dict[str, Any]:
    """GOOD with the dotted ``path`` set to ``value`` (``...`` deletes it)."""
    d = copy.deepcopy(GOOD)
    keys = path.split(".")
    node: Any = d
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if value is ...:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return d


def problems(raw: Any) -> list[str]:
    with pytest.raises(InputError) as info:
        parse_deal(raw, VOCAB, source="deal.yaml")
    assert info.value.source == "deal.yaml"
    assert "\n" not in info.value.one_line()
    return list(info.value.details)


def test_good_deal_parses() -> None:
    deal = parse_deal(GOOD, VOCAB, source="deal.yaml")
    assert deal.target.sectors == ("airport-logistics",)
    assert deal.investor.owners[0].country == "CN"


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("stake.after_pct", 101, "stake.after_pct: percentage 101 outside 0-100"),
        ("stake.after_pct", -1, "stake.after_pct: percentage -1 outside 0-100"),
        ("stake.before_pct", 30, "stake: voting rights decrease from 30% to 25%"),
        ("stake.after_pct", "25%", "stake.after_pct: must be a percentage"),
        ("stake.after_pct", ..., "stake.after_pct: missing"),
        ("investor.owners.0.stake_pct", 150, "investor.owners[0].stake_pct: percentage 150 outside 0-100"),
        ("target.sectors", ["airport logistic"], "did you mean 'airport-logistics'?"),
        ("target.sectors", ["spaceships"], "unknown sector 'spaceships'"),
        ("target.country", "XX", "target.country: unknown country 'XX'"),
        ("target.country", False, 'write Norway as "NO"'),
        ("investor.country", "Atlantis", "investor.country: unknown country 'Atlantis'"),
        ("investor.kind", "trust", "investor.kind: must be one of company, person, state"),
        ("dates.signing", ..., "dates.signing: missing"),
        ("dates.closing", ..., "dates.closing: missing"),
        (
            "dates.closing",
            "2025-01-01",
            "dates.closing: planned closing 2025-01-01 is before signing 2025-03-03",
        ),
        ("dates.signing", "3 March 2025", "dates.signing: not a date"),
        ("dates", ..., "dates: missing"),
        ("target.turnover_eur", -5, "target.turnover_eur: must be an amount in EUR"),
        ("target.colour", "red", "target.colour: unknown key"),
        ("schema", "derisk.deal/2", "schema: must be 'derisk.deal/1'"),
        ("stake.control_after", "yes", "stake.control_after: must be true (sole control), joint or false"),
        ("target.subsidiaries", [{"name": "X", "country": "BE"}], "held_pct: missing"),
    ],
)
def test_bad_input_table(path: str, value: Any, expected: str) -> None:
    found = problems(bad(path, value))
    assert any(expected in p for p in found), found


def test_unknown_sector_lists_the_valid_ones() -> None:
    (p,) = problems(bad("target.sectors", ["spaceships"]))
    for sector in ("airport-logistics", "energy", "semiconductors"):
        assert sector in p


def test_cycle_in_investor_chain() -> None:
    raw = bad(
        "investor.owners",
        [
            {
                "name": "Parent Co",
                "country": "CN",
                "kind": "company",
                "stake_pct": 100,
                "owners": [{"name": "holding ltd", "country": "HK", "kind": "company", "stake_pct": 100}],
            }
        ],
    )
    found = problems(raw)
    assert any("cycle in the investor chain" in p and "holding ltd" in p for p in found), found


def test_recursive_yaml_alias_is_refused_not_a_hang(tmp_path: Path) -> None:
    path = tmp_path / "deal.yaml"
    path.write_text(
        "investor: &a {name: Loop, country: CN, kind: company, stake_pct: 100, owners: [*a]}\n"
        "target: {name: T, country: BE, sectors: [energy]}\n"
        "stake: {after_pct: 25, control_after: false}\n"
        "dates: {signing: 2025-03-03, closing: 2025-06-30}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="aliases"):
        load_deal(path, VOCAB)


def test_every_problem_is_reported_at_once() -> None:
    raw = bad("stake.after_pct", 120)
    raw["target"]["sectors"] = ["nope"]
    raw["target"]["country"] = "ZZ"
    raw["dates"]["closing"] = "2025-01-01"
    raw["investor"]["owners"][0]["country"] = "Narnia"
    found = problems(raw)
    assert len(found) == 5, found


def test_stakes_of_owners_cannot_exceed_100() -> None:
    raw = copy.deepcopy(GOOD)
    raw["investor"]["owners"] = [
        {"name": "A", "country": "CN", "kind": "person", "stake_pct": 60},
        {"name": "B", "country": "CN", "kind": "person", "stake_pct": 60},
    ]
    assert any("add up to 120%" in p for p in problems(raw))


def test_losing_control_is_not_an_acquisition() -> None:
    raw = bad("stake.control_after", False)
    raw["stake"]["control_before"] = True
    assert any("control is lost" in p for p in problems(raw))


def test_asset_deal_needs_control_stated() -> None:
    raw = bad("stake.control_after", ...)
    raw["target"]["asset_deal"] = True
    assert any("asset deal needs control_after" in p for p in problems(raw))


def test_information_request_checks() -> None:
    raw = copy.deepcopy(GOOD)
    raw["information_requests"] = [
        {"regime": "XX", "requested": "2025-03-10"},
        {"regime": "BE", "requested": "2025-03-10", "answered": "2025-03-01"},
    ]
    found = problems(raw)
    assert any("regime: must be one of BE, EU, DE, FR, NL" in p for p in found)
    assert any("answered 2025-03-01 before it was requested 2025-03-10" in p for p in found)


def test_not_a_mapping() -> None:
    with pytest.raises(InputError, match="a deal file is a mapping"):
        parse_deal(["a", "list"], VOCAB, source="deal.yaml")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the file") as info:
        load_deal(tmp_path / "missing.yaml", VOCAB)
    assert info.value.source == str(tmp_path / "missing.yaml")


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "deal.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="cannot read the file"):
        load_deal(path, VOCAB)


def test_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "deal.yaml"
    path.write_text("investor: [unclosed\n  target: {", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_deal(path, VOCAB)


def test_json_deal_file(tmp_path: Path) -> None:
    path = tmp_path / "deal.json"
    path.write_text(json.dumps(GOOD), encoding="utf-8")
    assert load_deal(path, VOCAB).stake.after_pct == 25
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON"):
        load_deal(path, VOCAB)


def test_country_names_and_codes_normalise() -> None:
    raw = bad("investor.country", "China")
    raw["target"]["country"] = "be"
    deal = parse_deal(raw, VOCAB, source="deal.yaml")
    assert (deal.investor.country, deal.target.country) == ("CN", "BE")
