"""``scripts/sweep_logs.py`` on the project's real Zeek and EVE fixtures: it finds each input, reads
it as ``derisk analyze`` does, and its own reading of the files agrees with derisk's flows."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SCRIPT = Path(__file__).parent.parent / "scripts" / "sweep_logs.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sweep_logs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["sweep_logs"] = module
    spec.loader.exec_module(module)
    return module


def test_sweep_reads_and_checks_zeek_and_eve(tmp_path: Path) -> None:
    sweep = _script()
    shutil.copytree(FIXTURES / "zeek" / "scope_sep", tmp_path / "zeek")
    shutil.copy(FIXTURES / "eve" / "firefox.eve.json", tmp_path / "firefox.eve.json")
    events = [json.loads(x) for x in (FIXTURES / "eve" / "golden.eve.json").read_text().splitlines() if x]
    (tmp_path / "eve.json").write_text(json.dumps(events))  # named as EVE, saved as a JSON array
    out = tmp_path / "rows.jsonl"
    assert sweep.main([str(tmp_path), "--jsonl", str(out)]) == 0
    rows = {Path(r["input"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(rows) == {"zeek", "firefox.eve.json", "eve.json"}
    zeek, eve = rows["zeek"], rows["firefox.eve.json"]
    conn_records = [x for x in (tmp_path / "zeek" / "conn.log").read_text().splitlines() if x[:1] != "#"]
    assert zeek["outcome"] == "flows" and zeek["flows"] == len(conn_records) and zeek["mismatch"] == {}
    flow_events = [x for x in (tmp_path / "firefox.eve.json").read_text().splitlines() if '"flow"' in x]
    assert eve["flows"] == sum('"event_type":"flow"' in x for x in flow_events) > 0
    assert eve["mismatch"] == {} and eve["sni_flows"] > 0
    assert rows["eve.json"]["outcome"] == "refused" and "JSON array" in rows["eve.json"]["message"]


@pytest.mark.skipif(shutil.which("nfdump") is None, reason="needs nfdump (Debian package nfdump)")
def test_sweep_checks_nfdump_files_against_nfdump(tmp_path: Path) -> None:
    sweep = _script()
    shutil.copy(FIXTURES / "netflow" / "nfpcapd" / "nfcapd.202603020800", tmp_path / "nfcapd.202603020800")
    out = tmp_path / "rows.jsonl"
    assert sweep.main([str(tmp_path), "--jsonl", str(out)]) == 0
    (row,) = map(json.loads, out.read_text().splitlines())
    assert row["outcome"] == "flows" and row["flows"] > 0
    assert row["expected"]["bytes"] == row["bytes"] > 0 and row["mismatch"] == {}


def test_sweep_checks_connections_rebuilt_from_alerts(tmp_path: Path) -> None:
    """An EVE file without flow events: the script's own count of flow ids and of the largest
    counters their events carry agrees with the connections derisk rebuilds."""
    sweep = _script()
    lines = (FIXTURES / "eve" / "nicoaller-alerts.eve.json").read_text().splitlines()
    (tmp_path / "eve.json").write_text("".join(x + "\n" for x in lines if '"event_type":"flow"' not in x))
    out = tmp_path / "rows.jsonl"
    assert sweep.main([str(tmp_path), "--jsonl", str(out)]) == 0
    (row,) = map(json.loads, out.read_text().splitlines())
    assert row["outcome"] == "flows" and row["flows"] == row["expected"]["flows"] == 42
    assert row["bytes_out"] == row["expected"]["bytes_out"] > 0 and row["mismatch"] == {}
    assert row["sni_flows"] > 0 and "connections rebuilt" in row["warnings"][0]
