"""The done-when of Reduce on the demo scenario: generated capture → derisk analyze → derisk reduce.

The sorting and customs functions depend on a China-controlled vendor and cloud, the shares and the
HHI say so, the workspace's traffic confirms it, and the plan's first step lowers those figures.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

from derisk.cli import main
from derisk.demo.scenario import SampledAddressBook, build_scenario
from derisk.enrich.ipdata import load_ipdata
from derisk.reduce.register import SCENARIO_SYSTEM_NAMES, demo_functions


def test_demo_site_reduce(tmp_path: Path, data_env: Path) -> None:
    scenario = build_scenario(
        SampledAddressBook(load_ipdata(data_env)), start=dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC), hours=0.5
    )
    capture = tmp_path / "demo.pcap"
    scenario.write(capture)
    site: dict[str, Any] = {**scenario.site, "systems": [dict(s) for s in scenario.site["systems"]]}
    wms = next(s for s in site["systems"] if s["name"] == SCENARIO_SYSTEM_NAMES["wms"])
    wms["hosting"] = "Alibaba Cloud"
    site["functions"] = demo_functions(SCENARIO_SYSTEM_NAMES)
    site_file = tmp_path / "site.yaml"
    site_file.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
    ws = tmp_path / "ws"
    assert main(["analyze", str(capture), "--site", str(site_file), "--workspace", str(ws), "-q"]) == 0
    out = tmp_path / "reduce.json"
    assert main(["reduce", str(site_file), "--workspace", str(ws), "--json", str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))

    funcs = {f["name"]: f for f in doc["measures"]["functions"]}
    for name in ("parcel sorting", "customs declarations"):
        assert "CN" in funcs[name]["depends_on"], name
    deps = {(d["system"], d["role"]): d["suppliers"][0] for d in doc["register"]["dependencies"]}
    for role in ("vendor", "hosting"):
        supplier = deps[(wms["name"], role)]
        assert (supplier["controller"], supplier["jurisdiction"]) == ("Alibaba Group Holding Limited", "CN")
    assert doc["shares"]["dependency"]["CN"] >= 0.4 and doc["hhi"] is not None

    confirmed = {(c["system"], c["role"]) for c in doc["traffic"]["confirmed"]}
    assert {(wms["name"], "vendor"), (wms["name"], "hosting")} <= confirmed
    assert doc["traffic"]["bytes_out_by_jurisdiction"]["CN"] > 0

    first = doc["plan"]["steps"][0]
    assert first["target"]["system"] == wms["name"]
    assert first["after"]["edge_shares"].get("CN", 0) < first["before"]["edge_shares"]["CN"]
    assert first["after"]["hhi"] < first["before"]["hhi"]
