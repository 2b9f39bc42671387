"""EVE logs without ``flow`` events: connections rebuilt from alert and protocol events.

The logs are real Suricata output with their ``flow`` events taken out (Suricata 7.0.10 on the
project's fixtures, and a Suricata 6 (or older) log of a real network with alerts: ``nicoaller-alerts.eve.json``,
tests/fixtures/README.md), so the rebuilt connections can be checked against the flow events the
same log had: same client and server, times within the flow's, bytes and packets never above.
"""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from derisk.cli import main
from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.ingest.eve import read_eve, rebuilt_warning

EVE = Path(__file__).parent / "fixtures" / "eve"
#: A Suricata 6 (or older) log of a real network (alerts with flow counters, tls/http/smb/smtp/dns events).
ALERTS = EVE / "nicoaller-alerts.eve.json"


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def _without_flows(tmp: Path, source: Path, name: str = "eve.json") -> Path:
    return _write(tmp / name, [e for e in _events(source) if e.get("event_type") != "flow"])


def _rows(path: Path, **kwargs: Any) -> dict[str, dict[str, Any]]:
    table = pa.Table.from_batches(list(read_eve(path, **kwargs)), schema=INGEST_SCHEMA)
    return {row["source_ref"]: row for row in table.to_pylist()}


def _tuple(row: dict[str, Any]) -> tuple[object, ...]:
    return (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"], row["protocol"])


def test_golden_without_flow_events_gives_its_connections_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events = [e for e in _events(EVE / "golden.eve.json") if e["event_type"] != "flow"]
    # Events written in the packet's direction (server to client) first: the http event still decides.
    events.sort(key=lambda e: e["event_type"] not in ("fileinfo", "anomaly"))
    path = _write(tmp_path / "eve.json", events)
    notes: dict[str, Any] = {}
    with caplog.at_level(logging.WARNING):
        rows = _rows(path, notes=notes)
    full = _rows(EVE / "golden.eve.json")
    assert len(rows) == 5
    http = rows["844425184109486"]
    assert _tuple(http) == ("10.20.1.23", 50004, "93.184.216.34", 80, 6) == _tuple(full["844425184109486"])
    assert (http["server_name"], http["server_name_source"], http["application"]) == (
        "cargo.example.net",
        "http-host",
        "http",
    )
    for ref, row in rows.items():
        assert _tuple(row) == _tuple(full[ref])
        assert full[ref]["first_seen"] <= row["first_seen"] <= row["last_seen"] <= full[ref]["last_seen"]
        # no event of these flows carries counters: 0, not a guess
        assert (row["bytes_out"], row["bytes_in"], row["packets_out"], row["packets_in"]) == (0, 0, 0, 0)
        assert row["conn_state"] is None
    assert rows["1688850952263934"]["src_ip"] == "fd00:20::20"  # addresses shortened as for flows
    warning = (
        "no flow events: 5 connections rebuilt from 14 alert/protocol events; bytes and packets are "
        "lower bounds counted up to each event, 0 where no event carries counters; enable the flow "
        "type in suricata.yaml's eve-log for whole flows"
    )
    assert rebuilt_warning(5, 14) == warning
    assert f"{path}: {warning}" in caplog.text
    assert notes["flows_rebuilt"] == 5 and notes["events_rebuilt_from"] == 14
    assert notes["warnings"] == [warning] and notes["bytes_lower_bounds"] is True


def test_tls_events_alone_give_the_flows_names(tmp_path: Path) -> None:
    full = _rows(EVE / "firefox.eve.json")
    rows = _rows(_without_flows(tmp_path, EVE / "firefox.eve.json"))
    assert set(rows) == set(full)
    for ref, row in rows.items():
        assert _tuple(row) == _tuple(full[ref])
        assert (row["server_name"], row["server_name_source"]) == (
            full[ref]["server_name"],
            full[ref]["server_name_source"],
        )
    assert sum(row["server_name"] is not None for row in rows.values()) == 6


def test_real_alert_log_rebuilt_against_its_own_flow_events(tmp_path: Path) -> None:
    full = _rows(ALERTS)
    events = _events(ALERTS)
    rows = _rows(_without_flows(tmp_path, ALERTS))
    assert set(rows) == set(full) and len(rows) == 42
    # The largest counters an alert of the flow carries, less an Ethernet header a packet.
    counted: dict[str, tuple[int, int, int, int]] = {}
    for event in events:
        flow = event.get("flow")
        if event["event_type"] == "alert" and flow:
            ref = str(event["flow_id"])
            new = (
                flow["pkts_toserver"],
                flow["pkts_toclient"],
                flow["bytes_toserver"],
                flow["bytes_toclient"],
            )
            counted[ref] = tuple(max(a, b) for a, b in zip(counted.get(ref, (0, 0, 0, 0)), new, strict=True))
    assert len(counted) == 32
    equal = 0
    for ref, row in rows.items():
        whole = full[ref]
        assert _tuple(row) == _tuple(whole), ref
        assert whole["first_seen"] <= row["first_seen"] <= row["last_seen"] <= whole["last_seen"], ref
        for name in ("bytes_out", "bytes_in", "packets_out", "packets_in"):
            assert row[name] <= whole[name], (ref, name)
        pkts_ts, pkts_tc, bytes_ts, bytes_tc = counted.get(ref, (0, 0, 0, 0))
        assert (row["packets_out"], row["packets_in"]) == (pkts_ts, pkts_tc)
        assert (row["bytes_out"], row["bytes_in"]) == (
            max(0, bytes_ts - 14 * pkts_ts),
            max(0, bytes_tc - 14 * pkts_tc),
        )
        equal += (row["bytes_out"], row["bytes_in"]) == (whole["bytes_out"], whole["bytes_in"])
        assert row["server_name"] == whole["server_name"], ref
    assert 0 < equal < len(rows)  # some alerts came at the flow's last packet, most did not
    # A pseudo-packet's event (flow timeout, shutdown) is stamped with the capture's first time;
    # it does not date the connection.
    assert str(rows["66125299428494"]["first_seen"]).startswith("2022-02-23 18:37:47")


def test_alert_direction_of_suricata_7_and_the_port_rule(tmp_path: Path) -> None:
    """Alerts alone: Suricata 7 names the flow's client (``flow.src_ip``) or the packet's direction;
    older alerts are in the packet's direction, and a service port below 1024 marks the server."""
    full = _rows(ALERTS)
    alerts = [e for e in _events(ALERTS) if e["event_type"] == "alert"]

    def swapped(event: dict[str, Any]) -> dict[str, Any]:
        out = dict(event)
        out["src_ip"], out["dest_ip"] = event["dest_ip"], event["src_ip"]
        out["src_port"], out["dest_port"] = event.get("dest_port"), event.get("src_port")
        return out

    named, directed = [], []
    for event in alerts:
        out = swapped(event)
        client = full[str(event["flow_id"])]["src_ip"]  # as the flow event has it
        out["flow"] = {**event["flow"], "src_ip": client}
        named.append(out)
        to_client = out["src_ip"] != client
        directed.append({**swapped(event), "direction": "to_client" if to_client else "to_server"})
    for name, events in (("named", named), ("directed", directed)):
        rows = _rows(_write(tmp_path / f"{name}.eve.json", events))
        assert len(rows) == 32
        for ref, row in rows.items():
            assert _tuple(row) == _tuple(full[ref]), (name, ref)
    rows = _rows(_write(tmp_path / "old.eve.json", [swapped(e) for e in alerts]))
    by_port = [ref for ref in rows if full[ref]["dst_port"] < 1024 <= full[ref]["src_port"]]
    assert by_port
    for ref in by_port:
        assert _tuple(rows[ref]) == _tuple(full[ref]), ref


def test_strict_refuses_and_a_log_naming_no_connection_is_refused(tmp_path: Path) -> None:
    path = _without_flows(tmp_path, EVE / "golden.eve.json")
    with pytest.raises(InputError, match=r"no flow events \(events read: .*\); refused with --strict"):
        list(read_eve(path, strict=True))
    bare = _write(tmp_path / "bare.eve.json", [{"event_type": "alert", "src_ip": "10.0.0.1", "alert": {}}])
    with pytest.raises(InputError, match="no event names a connection"):
        list(read_eve(bare))


def test_gzip_rotated_and_damaged_logs_give_the_same_connections(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = _without_flows(tmp_path, ALERTS)
    expected = _rows(plain)
    folder = tmp_path / "logs"
    folder.mkdir()
    lines = plain.read_bytes().splitlines(keepends=True)
    (folder / "eve.json.1.gz").write_bytes(gzip.compress(b"".join(lines[:50]), mtime=0))
    (folder / "eve.json").write_bytes(
        b"".join(lines[50:80]) + b'{"event_type":"alert","flow_id":"x"\n' + b"".join(lines[80:])
    )
    with caplog.at_level(logging.WARNING):
        assert _rows(folder) == expected
    assert "1 line skipped" in caplog.text and "42 connections rebuilt" in caplog.text


def test_many_events_through_duckdb_and_a_late_bad_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """DuckDB reads the log until a line it cannot read; Arrow reads it again and the summaries
    DuckDB's batches gave are not counted twice."""
    template = (
        '{{"timestamp":"2026-03-02T08:00:{s:02d}.000000+0000","flow_id":{i},"pcap_cnt":{c},"event_type":"alert",'
        '"src_ip":"198.51.100.7","src_port":443,"dest_ip":"10.0.0.1","dest_port":{port},"proto":"TCP",'
        '"alert":{{"signature_id":1}},"flow":{{"pkts_toserver":{p},"pkts_toclient":1,"bytes_toserver":{b},'
        '"bytes_toclient":60,"start":"2026-03-02T08:00:00.000000+0000"}}}}\n'
    )
    count = 140_000
    lines = [
        template.format(
            s=i % 2, i=i // 2 + 1, c=i + 1, port=1024 + i // 2 % 60000, p=2 + i % 2, b=128 + i % 2 * 100
        )
        for i in range(count)
    ]
    lines.insert(count - 10, '{"event_type":"alert","flow_id":"broken"\n')
    path = tmp_path / "eve.json"
    path.write_text("".join(lines))
    with caplog.at_level(logging.WARNING):
        table = pa.Table.from_batches(list(read_eve(path)), schema=INGEST_SCHEMA)
    assert table.num_rows == count // 2
    assert set(table["src_ip"].to_pylist()) == {"10.0.0.1"}  # the port rule: 443 is the server's
    assert set(table["bytes_out"].to_pylist()) == {228 - 3 * 14}
    assert set(table["packets_out"].to_pylist()) == {3}
    assert f"no flow events: {count // 2:,} connections rebuilt from {count:,}" in caplog.text
    assert "1 line skipped" in caplog.text


def test_cli_reads_the_log_and_strict_refuses_it(
    tmp_path: Path, data_env: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    from derisk.store.workspace import Workspace

    path = _without_flows(tmp_path, ALERTS)
    ws = tmp_path / "ws"
    assert main(["analyze", str(path), "-w", str(ws), "-q", "--strict"]) == 3
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "refused with --strict" in lines[0] and "Traceback" not in err, err
    out = tmp_path / "analysis.json"
    html = tmp_path / "report.html"
    with caplog.at_level(logging.WARNING):
        assert main(["analyze", str(path), "-w", str(ws), "--json", str(out), "--html", str(html)]) == 0
    assert f"{path}: {rebuilt_warning(42, 106)}" in caplog.text
    shown = " ".join(capsys.readouterr().out.split())  # the terminal summary, however wrapped
    assert "Note: no flow events: 42 connections rebuilt from 106 alert/protocol events" in shown
    assert "42 connections rebuilt from 106 alert/protocol events; bytes and packets are lower bounds" in (
        html.read_text()
    )
    with Workspace.open(ws, create=False, read_only=True) as w:
        assert w.flow_count() == 42
    notes = json.loads(out.read_text())["run"]["input_notes"]
    (note,) = notes.values()
    assert note["flows_rebuilt"] == 42 and note["warnings"] == [rebuilt_warning(42, 106)]
