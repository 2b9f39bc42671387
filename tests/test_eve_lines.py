"""EVE lines held in memory (``read_eve_lines``, what ``derisk watch`` reads a followed eve.json with)
give the flows the file reader gives: real Suricata output, pieces, bad lines, netflow events."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow as pa
import pytest

from derisk.flows import INGEST_SCHEMA
from derisk.ingest import eve
from derisk.ingest.eve import read_eve, read_eve_lines

EVE = Path(__file__).parent / "fixtures" / "eve"
KEYS = [("source_ref", "ascending"), ("first_seen", "ascending")]


def _table(batches: list[pa.RecordBatch]) -> pa.Table:
    return pa.Table.from_batches(batches, schema=INGEST_SCHEMA).sort_by(KEYS)


@pytest.mark.parametrize("name", ["firefox.eve.json", "http_ipv6.eve.json", "golden.eve.json"])
def test_lines_in_memory_give_the_flows_of_the_file(name: str) -> None:
    path = EVE / name
    expected = _table(list(read_eve(path)))
    assert expected.num_rows > 0
    assert _table(list(read_eve_lines(path.read_bytes(), name=name))).equals(expected)


def test_small_pieces_join_across_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Application events in one piece name the flows of a later one (pieces of 2 KiB)."""
    path = EVE / "golden.eve.json"
    expected = _table(list(read_eve(path)))
    monkeypatch.setattr(eve, "PIECE_BYTES", 2048)
    got = _table(list(read_eve_lines(path.read_bytes())))
    assert got.equals(expected)
    assert got.column("server_name").null_count < got.num_rows


def test_last_line_without_newline_and_bad_lines(caplog: pytest.LogCaptureFixture) -> None:
    data = (EVE / "firefox.eve.json").read_bytes()
    expected = _table(list(read_eve(EVE / "firefox.eve.json")))
    lines = data.rstrip(b"\n").split(b"\n")
    damaged = b"\n".join([lines[0], b'{"event_type": "flow", "flow_id": "x\xff', *lines[1:]])
    with caplog.at_level(logging.WARNING):
        got = _table(list(read_eve_lines(damaged, name="followed.json")))
    assert got.equals(expected)
    assert "followed.json: 1 line skipped" in caplog.text


def test_netflow_events_and_no_flows() -> None:
    netflow = EVE / "firefox.netflow.eve.json"
    assert _table(list(read_eve_lines(netflow.read_bytes()))).equals(_table(list(read_eve(netflow))))
    lines = (EVE / "golden.eve.json").read_bytes().split(b"\n")
    only_dns = b"\n".join(line for line in lines if b'"event_type":"dns"' in line)
    assert only_dns
    assert list(read_eve_lines(only_dns)) == []
