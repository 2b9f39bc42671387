"""Suricata EVE JSON ingest: real Suricata output against the same captures read as pcap, joins,
rotated and gzipped logs, netflow events, connection attempts, and the bad-input table."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from derisk.cli import main
from derisk.errors import InputError
from derisk.flows import INGEST_SCHEMA
from derisk.ingest import resolve_inputs, sniff
from derisk.ingest.eve import eve_files, read_eve
from derisk.ingest.pcap import read_pcap
from derisk.safetext import MAX_FIELD_CHARS

EVE = Path(__file__).parent / "fixtures" / "eve"
GOLDEN_PCAP = Path(__file__).parent / "fixtures" / "pcap" / "golden.pcap"
#: Each capture and Suricata 7.0.10's eve.json of it (tests/fixtures/README.md).
PAIRS = [
    (EVE / "firefox.pcap", EVE / "firefox.eve.json"),
    (EVE / "http_ipv6.pcap", EVE / "http_ipv6.eve.json"),
    (GOLDEN_PCAP, EVE / "golden.eve.json"),
]


def read_all(path: Path) -> pa.Table:
    return pa.Table.from_batches(list(read_eve(path)), schema=INGEST_SCHEMA)


def _key(row: dict[str, Any]) -> tuple[object, ...]:
    return (row["src_ip"], row["src_port"], row["dst_ip"], row["dst_port"], row["protocol"])


def _by_flow(table: pa.Table) -> dict[tuple[object, ...], dict[str, Any]]:
    rows = table.to_pylist()
    keyed = {_key(row): row for row in rows}
    assert len(keyed) == len(rows), "five-tuples repeat: the comparison would be ambiguous"
    return keyed


@pytest.mark.parametrize(("capture", "eve"), PAIRS, ids=[p[1].name for p in PAIRS])
def test_same_capture_as_pcap_and_as_eve_gives_the_same_flows(capture: Path, eve: Path) -> None:
    """Suricata counts captured bytes with the Ethernet header; less 14 bytes a packet they are the
    IP-layer bytes NFStream counts, exactly (these captures are Ethernet, not VLAN-tagged, not cut)."""
    from_pcap = _by_flow(pa.Table.from_batches(list(read_pcap(capture)), schema=INGEST_SCHEMA))
    from_eve = _by_flow(read_all(eve))
    assert from_eve.keys() == from_pcap.keys()
    for key, row in from_eve.items():
        expected = from_pcap[key]
        for column in ("bytes_out", "bytes_in", "packets_out", "packets_in"):
            assert row[column] == expected[column], (key, column)
        for column in ("first_seen", "last_seen"):  # NFStream keeps milliseconds, Suricata µs
            assert abs(row[column] - expected[column]) < timedelta(milliseconds=1), (key, column)
        # Suricata names fewer flows (no SNI from gQUIC or from the generator's bare ClientHellos),
        # never other names.
        if row["server_name"] is not None:
            assert row["server_name"] == expected["server_name"], key


def test_names_from_tls_http_and_dns_answers() -> None:
    flows = _by_flow(read_all(EVE / "golden.eve.json"))
    http = flows[("10.20.1.23", 50004, "93.184.216.34", 80, 6)]
    assert (http["server_name"], http["server_name_source"]) == ("cargo.example.net", "http-host")
    assert http["user_agent"] is not None and "<script>" in http["user_agent"]  # kept as text
    oss = next(r for k, r in flows.items() if k[2] == "47.254.129.10" and k[3] == 443)
    assert (oss["server_name"], oss["server_name_source"]) == ("oss-eu-central-1.aliyuncs.com", "dns-answer")
    v6 = next(r for k, r in flows.items() if k[2] == "2603:1026:3000::10")
    assert (v6["server_name"], v6["server_name_source"]) == ("login.microsoftonline.com", "dns-answer")
    dns = [r for r in flows.values() if r["application"] == "dns"]
    assert {r["dns_query"] for r in dns} >= {"oss-eu-central-1.aliyuncs.com", "nothing-here.example"}
    assert all(r["server_name"] is None for r in dns)
    tls = next(iter(_by_flow(read_all(EVE / "firefox.eve.json")).values()))
    assert (tls["server_name"], tls["server_name_source"], tls["application"]) == (
        "www.iit.cnr.it",
        "sni",
        "tls",
    )
    assert {r["conn_state"] for r in flows.values()} <= {"new", "established", "closed"}


def test_ipv6_addresses_in_their_short_form() -> None:
    table = read_all(EVE / "http_ipv6.eve.json")
    assert "2a00:d40:1:3:7aac:c0ff:fea7:d4c" in table["src_ip"].to_pylist()
    assert not any("0000" in ip for ip in table["dst_ip"].to_pylist())


def test_gzip_rotated_directory_reads_as_one_input(tmp_path: Path) -> None:
    lines = (EVE / "golden.eve.json").read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    folder = tmp_path / "suricata"
    folder.mkdir()
    # logrotate's names: .1 is newer than .2; the reader orders by each file's first event.
    (folder / "eve.json.2.gz").write_bytes(gzip.compress(b"".join(lines[:half]), mtime=0))
    (folder / "eve.json.1").write_bytes(b"".join(lines[half:]))
    (folder / "eve.json").write_bytes(b"")  # just rotated, still empty
    (folder / "fast.log").write_text("not read\n")
    ordered = [p.name for p in eve_files(folder)]
    assert sorted(ordered[:2]) == ["eve.json.1", "eve.json.2.gz"] and ordered[2] == "eve.json"
    specs = resolve_inputs([folder])
    assert [(s.format, len(s.files)) for s in specs] == [("eve", 3)]
    whole = read_all(EVE / "golden.eve.json")
    assert sorted(map(_key, read_all(folder).to_pylist()), key=str) == sorted(
        map(_key, whole.to_pylist()), key=str
    )
    gz = tmp_path / "eve.json.gz"
    gz.write_bytes(gzip.compress((EVE / "golden.eve.json").read_bytes(), mtime=0))
    assert sniff(gz) == "eve"
    assert read_all(gz).equals(whole)


def test_netflow_events_when_there_are_no_flow_events() -> None:
    """Suricata's netflow events are one per direction: two rows per connection, same byte total."""
    netflow = read_all(EVE / "firefox.netflow.eve.json")
    flows = read_all(EVE / "firefox.eve.json")
    assert netflow.num_rows == 2 * flows.num_rows
    total = sum(pa.compute.sum(t[c]).as_py() for t in (netflow,) for c in ("bytes_out", "bytes_in"))
    assert total == sum(pa.compute.sum(flows[c]).as_py() for c in ("bytes_out", "bytes_in"))
    assert set(netflow["server_name"].to_pylist()) == {"www.iit.cnr.it"}


def _lines(name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (EVE / name).read_text().splitlines()]


def _write(path: Path, events: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def test_attempts_from_tcp_flags(tmp_path: Path) -> None:
    events = [e for e in _lines("firefox.eve.json") if e["event_type"] == "flow"]
    syn_only, rejected, unknown = (json.loads(json.dumps(e)) for e in events[:3])
    syn_only["tcp"] = {"tcp_flags": "02", "tcp_flags_ts": "02", "tcp_flags_tc": "00"}  # S0
    rejected["tcp"] = {"tcp_flags": "16", "tcp_flags_ts": "02", "tcp_flags_tc": "14"}  # REJ
    del unknown["tcp"]
    table = read_all(_write(tmp_path / "eve.json", [syn_only, rejected, unknown, *events[3:]]))
    assert table["is_attempt"].to_pylist() == [True, True, None] + [False] * (len(events) - 3)


def test_truncated_last_line_is_counted_and_the_rest_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = (EVE / "firefox.eve.json").read_bytes()
    path = tmp_path / "eve.json"
    path.write_bytes(data + data[:200])  # a log still being written
    with caplog.at_level(logging.WARNING):
        table = read_all(path)
    assert table.num_rows == read_all(EVE / "firefox.eve.json").num_rows
    assert "1 line skipped" in caplog.text and str(path) in caplog.text


@pytest.mark.parametrize(
    ("name", "bad_line"),
    [
        ("nul", b'{"event_type":"flow","src_ip":"1.2.3.4\x00","flow_id":1}'),
        ("non-utf8", b'{"event_type":"flow","src_ip":"\xff\xfe","dest_ip":"1.1.1.1","flow_id":1}'),
        ("wrong type", b'{"event_type":"flow","flow":{"bytes_toserver":"many"},"flow_id":1}'),
        ("object for a number", b'{"event_type":"flow","flow_id":{"x":1}}'),
        ("deep nesting", b'{"event_type":"flow","flow":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("not json", b"Nov 13 12:00:00 sensor suricata[42]: started"),
    ],
)
def test_bad_lines_are_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, name: str, bad_line: bytes
) -> None:
    lines = (EVE / "firefox.eve.json").read_bytes().splitlines()
    path = tmp_path / "eve.json"
    path.write_bytes(b"\n".join([*lines[:3], bad_line, *lines[3:]]) + b"\n")
    with caplog.at_level(logging.WARNING):
        table = read_all(path)
    assert table.num_rows == read_all(EVE / "firefox.eve.json").num_rows
    assert "1 line skipped" in caplog.text and "line 4" in caplog.text


def test_ten_megabyte_field_is_bounded(tmp_path: Path) -> None:
    events = _lines("firefox.eve.json")
    for event in events:
        if event["event_type"] == "tls":
            event["tls"]["sni"] = "a" * 10_000_000 + ".example"  # type: ignore[index]
    table = read_all(_write(tmp_path / "eve.json", events))
    names = [n for n in table["server_name"].to_pylist() if n]
    assert names and all(len(n) <= MAX_FIELD_CHARS for n in names)


def test_events_without_flows_are_an_error_with_strict(tmp_path: Path) -> None:
    events = [e for e in _lines("golden.eve.json") if e["event_type"] != "flow"]
    path = _write(tmp_path / "eve.json", events)
    with pytest.raises(InputError, match=r"no flow events \(events read: .*dns 8.*\); refused with --strict"):
        list(read_eve(path, strict=True))
    assert read_all(path).num_rows == 5  # without --strict, rebuilt (tests/test_eve_rebuild.py)


def test_events_that_name_no_connection_are_an_error(tmp_path: Path) -> None:
    events = [e for e in _lines("golden.eve.json") if e["event_type"] == "stats"]
    events += [{"event_type": "alert", "timestamp": "2026-03-02T08:00:00.000000+0000", "src_ip": "10.0.0.1"}]
    with pytest.raises(InputError, match=r"no flow events \(events read: alert 1, stats 1\); no event names"):
        read_all(_write(tmp_path / "eve.json", events))


def test_a_file_that_is_not_eve_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "eve.json").write_text('{"ts": 1, "uid": "C1"}\n')
    with pytest.raises(InputError, match="not Suricata EVE JSON"):
        read_eve(folder)


def _bad_eve(tmp: Path, kind: str) -> Path:
    path = tmp / f"{kind}.eve.json"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "no-flows":  # nothing to rebuild connections from
        events = [e for e in _lines("golden.eve.json") if e["event_type"] == "stats"]
        _write(path, events)
    elif kind == "all-bad":
        path.write_bytes(b'{"event_type":"flow","flow_id":"x"\n' * 10)
    elif kind == "gzip-truncated":
        data = gzip.compress((EVE / "golden.eve.json").read_bytes(), mtime=0)
        path = tmp / "eve.json.gz"
        path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("empty", "empty file"),
        ("random", "not a capture"),
        ("no-flows", "no flow events"),
        ("all-bad", "no flow events"),
        ("gzip-truncated", "truncated"),
    ],
)
def test_cli_bad_eve_exits_3_and_leaves_the_workspace(
    tmp_path: Path, data_env: Path, capsys: pytest.CaptureFixture[str], kind: str, words: str
) -> None:
    from derisk.store.workspace import Workspace

    ws = tmp_path / "ws"
    good = tmp_path / "good" / "eve.json"
    good.parent.mkdir()
    shutil.copy(EVE / "firefox.eve.json", good)
    assert main(["analyze", str(good), "-w", str(ws), "-q"]) == 0
    with Workspace.open(ws, create=False, read_only=True) as w:
        before = (w.flow_count(), len(w.query("SELECT * FROM inputs")))
    assert before[0] == 6
    capsys.readouterr()
    bad = _bad_eve(tmp_path, kind)
    assert main(["analyze", str(bad), "-w", str(ws), "-q"]) == 3
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert "Traceback" not in err and bad.name in lines[0] and words in lines[0].lower(), err
    with Workspace.open(ws, create=False, read_only=True) as w:
        assert (w.flow_count(), len(w.query("SELECT * FROM inputs"))) == before


def test_a_bad_line_after_duckdbs_first_batches_loses_and_repeats_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """DuckDB reads a plain file until a line it cannot read; Arrow then reads it again from the
    start, and the flows already given are not given twice."""
    template = (
        '{{"timestamp":"2026-03-02T08:00:00.000000+0000","flow_id":{i},"event_type":"flow",'
        '"src_ip":"10.0.0.1","src_port":{port},"dest_ip":"198.51.100.7","dest_port":443,"proto":"TCP",'
        '"flow":{{"pkts_toserver":2,"pkts_toclient":1,"bytes_toserver":{b},"bytes_toclient":54,'
        '"start":"2026-03-02T08:00:00.000000+0000","end":"2026-03-02T08:00:01.000000+0000","state":"closed"}}}}\n'
    )
    count = 140_000
    lines = [template.format(i=i + 1, port=1024 + i % 60000, b=128 + i) for i in range(count)]
    lines.insert(count - 10, '{"event_type":"flow","flow_id":"broken"\n')
    path = tmp_path / "eve.json"
    path.write_text("".join(lines))
    with caplog.at_level(logging.WARNING):
        table = read_all(path)
    assert table["source_ref"].to_pylist() == [str(i + 1) for i in range(count)]
    assert table["bytes_out"].to_pylist() == [100 + i for i in range(count)]
    assert "1 line skipped" in caplog.text and f"line {count - 9}" in caplog.text


def test_a_utf8_bom_and_crlf_line_ends_change_nothing(tmp_path: Path) -> None:
    """An eve.json saved by a Windows editor: a byte-order mark before the first event, CR LF line ends."""
    source = EVE / "golden.eve.json"
    expected = pa.Table.from_batches(list(read_eve(source)), schema=INGEST_SCHEMA)
    path = tmp_path / "eve.json"
    path.write_bytes(b"\xef\xbb\xbf" + source.read_bytes().replace(b"\n", b"\r\n"))
    assert sniff(path) == "eve"
    got = pa.Table.from_batches(list(read_eve(path)), schema=INGEST_SCHEMA)
    keys = [(k, "ascending") for k in ("first_seen", "src_ip", "src_port", "dst_ip", "dst_port")]
    assert got.sort_by(keys).equals(expected.sort_by(keys))
