"""Done-when of the Know issue: an imported subsidiary changes the attribution of flows on the next analysis."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import yaml

from derisk.cli import main
from derisk.enrich.ipdata import load_ipdata
from derisk.gen.model import Conversation, Exchange
from derisk.gen.packets import write_capture

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
ASN = 58593  # in the IP data fixture, not in the curated registry
SITE = {
    "site": "Know test site",
    "internal_networks": ["10.0.0.0/8"],
    "systems": [{"name": "wms", "vendor": "Example vendor", "hosts": ["10.1.0.0/24"]}],
}


def _analyze(tmp_path: Path, name: str, *inputs: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.json"
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(SITE), encoding="utf-8")
    code = main(
        [
            "analyze",
            *inputs,
            "--site",
            str(site),
            "--workspace",
            str(tmp_path / "ws"),
            "--json",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return doc


def _destination(doc: dict[str, Any], ip: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in doc["destinations"] if d["ip"] == ip)
    return found


def test_imported_subsidiary_changes_attribution_on_next_analysis(tmp_path: Path, data_env: Path) -> None:
    ip = load_ipdata(data_env).sample_addresses(ASN, None, 1)[0]
    capture = tmp_path / "c.pcap"
    conversation = Conversation(
        "tcp", "10.1.0.5", ip, T0, 40000, 443, (Exchange("c2s", 5_000), Exchange("s2c", 300))
    )
    write_capture([conversation], capture)
    before = _destination(_analyze(tmp_path, "before", str(capture)), ip)
    assert before["asn"] == ASN and before["jurisdiction_basis"] == "as-registration"
    assert before["controller"] is None

    ftm = tmp_path / "subsidiary.jsonl"
    ftm.write_text(
        "".join(
            json.dumps(e) + "\n"
            for e in [
                {
                    "id": "test-parent",
                    "schema": "Company",
                    "properties": {
                        "name": ["Fictional Parent Holding"],
                        "jurisdiction": ["ky"],
                        "mainCountry": ["sg"],
                    },
                },
                {
                    "id": "test-sub",
                    "schema": "Company",
                    "properties": {
                        "name": ["Fictional Operator Ltd"],
                        "jurisdiction": ["cn"],
                        "keywords": [f"AS{ASN}"],
                    },
                },
                {
                    "id": "test-own",
                    "schema": "Ownership",
                    "properties": {"owner": ["test-parent"], "asset": ["test-sub"], "percentage": ["80"]},
                },
            ]
        ),
        encoding="utf-8",
    )
    assert main(["entity", "import", str(ftm), "--workspace", str(tmp_path / "ws")]) == 0

    after = _destination(_analyze(tmp_path, "after"), ip)  # no inputs: attribute the workspace again
    assert after["organisation"] == "Fictional Operator Ltd"
    assert after["controller"] == "Fictional Parent Holding"
    assert after["jurisdiction"] == "SG" and after["jurisdiction_basis"] == "registry"
    assert (after["bytes_out"], after["flows"]) == (before["bytes_out"], before["flows"])
