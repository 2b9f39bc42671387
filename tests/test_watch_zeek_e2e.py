"""Watch from Zeek logs end to end, against the Zeek generator's ledger: same attribution as captures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from derisk.cli import main
from derisk.enrich.ipdata import load_ipdata
from derisk.gen.zeek import Session, build_logs, write_logs

T0 = 1_793_000_000.0


def _sessions(data_dir: Path) -> tuple[list[Session], str]:
    ali = load_ipdata(data_dir).sample_addresses(134963, "DE", 1)[0]
    sessions = [
        Session(
            "10.1.0.5",
            ali,
            T0,
            48_000,
            900,
            name="oss-eu-central-1.aliyuncs.com",
            name_via="sni",
            service="ssl",
        ),
        Session(
            "10.1.0.5", ali, T0 + 60, 700, 300, name="oss-eu-central-1.aliyuncs.com", name_via="dns-answer"
        ),
        Session(
            "10.9.0.7", "8.8.8.10", T0 + 5, 900, 12_000, name="www.google.com", name_via="sni", service="ssl"
        ),
        Session(
            "10.9.0.7",
            "8.8.8.47",
            T0 + 9,
            None,
            None,
            port=80,
            name="<b>x</b>.example",
            name_via="http-host",
            user_agent="curl\x1b[0m",
            service="http",
        ),
        # an outside host opens a flow to one of ours: oriented so the site is src
        Session("8.8.8.84", "10.1.0.5", T0 + 20, 100, 5_000, port=22, service="ssh"),
    ]
    return sessions, ali


@pytest.mark.parametrize(("fmt", "compress"), [("tsv", False), ("json", True)])
def test_zeek_directory_matches_ledger_and_attributes_control(
    tmp_path: Path, data_env: Path, fmt: str, compress: bool
) -> None:
    sessions, ali = _sessions(data_env)
    logs, ledger = build_logs(sessions, seed=7)
    folder = tmp_path / "zeek"
    write_logs(folder, logs, fmt=fmt, compress=compress)  # type: ignore[arg-type]
    out = tmp_path / "out.json"
    site = tmp_path / "site.yaml"
    site.write_text("systems:\n  - {name: wms, vendor: Cainiao, hosts: [10.1.0.0/24]}\n")
    assert (
        main(
            [
                "analyze",
                str(folder),
                "--site",
                str(site),
                "-w",
                str(tmp_path / "ws"),
                "--json",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    doc: dict[str, Any] = json.loads(out.read_text())

    assert doc["totals"]["flows"] == len(ledger.flows)
    # bytes from the site's point of view: for the inbound flow the site sent what Zeek calls resp bytes
    assert doc["totals"]["bytes_out"] + doc["totals"]["bytes_in"] == ledger.bytes_out + ledger.bytes_in
    dest = {d["ip"]: d for d in doc["destinations"]}
    ali_expected = [e for e in ledger.flows.values() if e.dst_ip == ali]
    assert dest[ali]["bytes_out"] == sum(e.bytes_out or 0 for e in ali_expected)
    assert dest[ali]["geo_country"] == "DE" and dest[ali]["jurisdiction"] == "CN"
    assert dest[ali]["controller"] == "Alibaba Group Holding Limited"
    inbound = dest["8.8.8.84"]
    assert (inbound["bytes_out"], inbound["bytes_in"]) == (5_000, 100)
    assert inbound["systems"] == ["wms"]
    # unset Zeek byte counts stay null, so they add nothing rather than a fake zero flow size
    assert dest["8.8.8.47"]["bytes_out"] == 0 and dest["8.8.8.47"]["flows"] == 1


def test_stored_flows_carry_ordinal_ids_input_and_data_version(tmp_path: Path, data_env: Path) -> None:
    """The store builds flow ids, input ids and the data version itself (inside DuckDB's insert):
    ids are the input id and the flow's ordinal, one per flow, whatever order the rows land in."""
    from derisk.store.workspace import Workspace

    logs, ledger = build_logs(_sessions(data_env)[0] * 40, seed=3)
    folder = tmp_path / "zeek"
    write_logs(folder, logs)
    workspace = tmp_path / "ws"
    for _ in range(2):  # the second run finds the input stored and adds nothing
        assert main(["analyze", str(folder), "-w", str(workspace), "-q"]) == 0
    with Workspace.open(workspace, read_only=True) as ws:
        rows = ws.query("SELECT flow_id, input_id, ipdata_version FROM flows")
        inputs = ws.query("SELECT input_id, ipdata_version, flow_count FROM inputs")
    assert len(inputs) == 1
    input_id, version, count = inputs[0]
    assert count == len(ledger.flows) == len(rows)
    assert sorted(r[0] for r in rows) == sorted(f"{input_id}#{n}" for n in range(count))
    assert {(r[1], r[2]) for r in rows} == {(input_id, version)}
    assert version == load_ipdata(data_env).manifest.version


def _without_run_times(doc: Any) -> Any:
    """The document less what names the run itself: when it ran, its id, the workspace path."""
    if isinstance(doc, dict):
        skip = {"generated_at", "started_at", "ingested_at", "run_id", "workspace"}
        return {k: _without_run_times(v) for k, v in doc.items() if k not in skip}
    if isinstance(doc, list):
        return [_without_run_times(v) for v in doc]
    return doc


def test_results_do_not_depend_on_the_order_rows_are_stored_in(tmp_path: Path, data_env: Path) -> None:
    """DuckDB inserts in parallel, so two runs may store the same flows in different orders; the
    analysis document (totals, destinations, exposure, alerts and their evidence) must not change."""
    from derisk.gen.zeek_bench import write_bench_conn_log

    folder = tmp_path / "zeek"
    folder.mkdir()
    ledger = write_bench_conn_log(folder / "conn.log", 60_000, seed=11)
    docs = []
    for n in (1, 2):
        out = tmp_path / f"out{n}.json"
        assert main(["analyze", str(folder), "-w", str(tmp_path / f"ws{n}"), "--json", str(out), "-q"]) == 0
        docs.append(_without_run_times(json.loads(out.read_text())))
    assert docs[0]["totals"]["flows"] == 60_000
    assert (
        docs[0]["totals"]["bytes_out"] + docs[0]["totals"]["bytes_in"]
        == ledger.orig_ip_bytes + ledger.resp_ip_bytes
    )
    assert json.dumps(docs[0], sort_keys=True) == json.dumps(docs[1], sort_keys=True)
