"""The dependency register in the site file: checks at load time, resolution through the Know graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from derisk.errors import ConfigError
from derisk.reduce.know_link import compelling_laws, know_resolver
from derisk.reduce.register import build_register, check_section, demo_functions, table_resolver
from derisk.site import load_site, parse_site

SYSTEMS = [
    {
        "name": "wms",
        "vendor": "Cainiao Smart Logistics Network",
        "hosting": "Alibaba Cloud",
        "hosts": ["10.1.0.0/24"],
    },
    {"name": "customs-gateway", "vendor": "Descartes Systems Group", "hosts": ["10.2.0.0/24"]},
    {"name": "airline-cargo", "vendor": "Champ Cargosystems", "hosts": ["10.3.0.0/24"]},
    {"name": "cctv", "vendor": "Hikvision", "hardware": "Hikvision", "hosts": ["10.4.0.0/24"]},
    {"name": "office", "vendor": "Microsoft", "hosting": "Microsoft", "hosts": ["10.5.0.0/24"]},
]


def demo_doc(**extra: Any) -> dict[str, Any]:
    return {"site": "demo", "systems": SYSTEMS, "functions": demo_functions(), **extra}


def test_demo_functions_are_a_valid_section() -> None:
    assert check_section(demo_functions()) == []
    names = {s for f in demo_functions() for s in f["systems"]}
    assert names == {s["name"] for s in SYSTEMS}
    renamed = demo_functions({"customs-gateway": "customs"})
    assert (
        renamed[1]["systems"] == ["customs", "wms"] and demo_functions()[1]["systems"][0] == "customs-gateway"
    )


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"name": "x"}, "must be a non-empty list of functions"),
        ([], "must be a non-empty list of functions"),
        (["parcel sorting"], "[0]: must be a mapping"),
        ([{"name": "sorting"}], "[0] (sorting).systems: a critical function must list at least one system"),
        ([{"name": "sorting", "systems": []}], "a critical function must list at least one system"),
        ([{"name": "sorting", "systems": ["wms", 3]}], "every entry must be a system name"),
        ([{"name": "sorting", "systems": ["wms", "wms"]}], "listed twice: wms"),
        ([{"systems": ["wms"]}], "[0].name: missing or not text"),
        (
            [{"name": "a", "systems": ["wms"]}, {"name": "A", "systems": ["wms"]}],
            "duplicate function name 'A'",
        ),
        ([{"name": "a", "systems": ["wms"], "owner": "me"}], "[0] (a).owner: unknown key"),
        ([{"name": "a", "systems": ["wms"], "description": 5}], "[0] (a).description: must be text"),
    ],
)
def test_check_section_reports_each_problem(section: Any, expected: str) -> None:
    problems = [str(p) for p in check_section(section)]
    assert any(expected in p for p in problems), problems


def test_site_loading_reports_register_problems_with_everything_else(tmp_path: Path) -> None:
    doc = demo_doc()
    doc["functions"] = [{"name": "sorting"}, {"name": "customs", "systems": ["wms"], "colour": "red"}]
    doc["systems"] = [*SYSTEMS, {"name": "bad", "hosts": ["not-an-ip"]}]
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_site(path)
    text = str(err.value)
    assert "[0] (sorting).systems: a critical function must list at least one system" in text
    assert "[1] (customs).colour: unknown key" in text
    assert "not a valid IP address" in text  # the site's own problems in the same message


def test_unknown_system_references_are_one_clear_error() -> None:
    doc = demo_doc(functions=[{"name": "sorting", "systems": ["wms", "sorter", "plc"]}])
    with pytest.raises(ConfigError) as err:
        build_register(parse_site(doc, "site.yaml"), table_resolver({}), source="site.yaml")
    assert err.value.exit_code == 4
    assert "unknown system 'sorter'" in str(err.value) and "unknown system 'plc'" in str(err.value)
    assert str(err.value).startswith("site.yaml: invalid dependency register (2 problems)")


def test_missing_functions_section_and_bad_supplier_values() -> None:
    with pytest.raises(ConfigError, match="has no 'functions' section"):
        build_register(parse_site({"systems": SYSTEMS}, "s"), table_resolver({}), source="s")
    systems = [
        {
            "name": "a",
            "vendor": "X",
            "hosting": [],
            "support": [1],
            "hardware": ["Y", "Y"],
            "hosts": ["10.0.0.1"],
        }
    ]
    doc = {"systems": systems, "functions": [{"name": "f", "systems": ["a"]}]}
    with pytest.raises(ConfigError) as err:
        build_register(parse_site(doc, "s"), table_resolver({}), source="s")
    assert "systems (a).hosting: an empty list" in str(err.value)
    assert "systems (a).support: must be a supplier name" in str(err.value)
    assert "systems (a).hardware: listed twice: Y" in str(err.value)


def test_system_without_suppliers_and_system_outside_register_are_findings() -> None:
    systems = [{"name": "a", "hosts": ["10.0.0.1"]}, {"name": "b", "vendor": "X", "hosts": ["10.0.0.2"]}]
    doc = {"systems": systems, "functions": [{"name": "f", "systems": ["a"]}]}
    reg = build_register(parse_site(doc, "s"), table_resolver({}))
    assert sorted((f.kind, f.subject) for f in reg.findings) == [
        ("system-outside-register", "b"),
        ("system-without-suppliers", "a"),
    ]


def test_know_resolves_the_demo_suppliers_and_lists_unknown_ones() -> None:
    reg = build_register(parse_site(demo_doc(), "demo"), know_resolver())
    by_key = {(s.system, s.role): s.suppliers[0] for s in reg.slots}
    wms_vendor, wms_hosting = by_key[("wms", "vendor")], by_key[("wms", "hosting")]
    assert wms_vendor.jurisdiction == "CN" and wms_hosting.jurisdiction == "CN"
    assert wms_vendor.controller_name == wms_hosting.controller_name == "Alibaba Group Holding Limited"
    cctv = by_key[("cctv", "hardware")]
    assert cctv.jurisdiction == "CN" and cctv.resolved is not None and cctv.resolved.state_controlled
    assert by_key[("office", "vendor")].jurisdiction == "US"
    # Names the graph does not hold are findings, never matched to a look-alike.
    unknown = sorted(f.subject for f in reg.findings if f.kind == "unknown-supplier")
    assert unknown == ["Champ Cargosystems", "Descartes Systems Group"]
    assert by_key[("customs-gateway", "vendor")].resolved is None


def test_compelling_laws_for_china_come_from_the_curated_legal_base() -> None:
    laws = compelling_laws(["CN"])
    cites = [law["citation"] for law in laws["CN"]]
    assert any(c.startswith("National Intelligence Law Art. 7") for c in cites)
    assert all(law["confidence"] in {"V", "S", "U"} for law in laws["CN"])
